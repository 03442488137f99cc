// The implementation of include/tessera.h (Sources/CTesseraABI/include/tessera.h).
// Every entry point validates its arguments, catches every Swift error, and turns it into a
// status code plus a per-thread message; nothing traps on bad input.
@_exported import CTesseraABI // the C functions of tessera.h for Swift callers of the TesseraC product
import Foundation
import Tessera
import TesseraRuntime // Locked: ThreadSanitizer does not see Synchronization.Mutex's ordering on Linux

final class RuntimeBox {
    let runtime: Runtime
    init(_ r: Runtime) { runtime = r }
}

final class PipelineBox {
    /// The nodes added so far and their compiled program (compiled at the first run after an
    /// add, then reused: "build once, run many times").
    let state = Locked<(nodes: [PipelineNode], program: Program?)>(([], nil))

    func program() -> Program {
        state.withLock { s in
            if let p = s.program { return p }
            let p = Pipeline(nodes: s.nodes).compile()
            s.program = p
            return p
        }
    }
}

/// Live handles.  A destroyed or forged handle is not in the set and is rejected.
private let liveHandles = Locked<Set<UInt>>([])

private func register(_ obj: AnyObject) -> UnsafeMutableRawPointer {
    let p = Unmanaged.passRetained(obj).toOpaque()
    liveHandles.withLock { _ = $0.insert(UInt(bitPattern: p)) }
    return p
}

private func lookup<T: AnyObject>(_ p: UnsafeRawPointer?, as: T.Type) throws -> T? {
    guard let p else { return nil }
    let ok = liveHandles.withLock { $0.contains(UInt(bitPattern: p)) }
    guard ok, let obj = Unmanaged<AnyObject>.fromOpaque(p).takeUnretainedValue() as? T else {
        throw ABIError(status: TESSERA_ERROR_INVALID_HANDLE, message: "\(T.self == RuntimeBox.self ? "runtime" : "pipeline") handle \(p) is not live (destroyed or never created)")
    }
    return obj
}

private func unregister(_ p: UnsafeMutableRawPointer?, kind: String) throws {
    guard let p else { throw ABIError(status: TESSERA_ERROR_NULL_POINTER, message: "\(kind) handle is NULL") }
    let removed = liveHandles.withLock { $0.remove(UInt(bitPattern: p)) != nil }
    guard removed else { throw ABIError(status: TESSERA_ERROR_INVALID_HANDLE, message: "\(kind) handle \(p) is not live (destroyed twice?)") }
    Unmanaged<AnyObject>.fromOpaque(p).release()
}

struct ABIError: Error {
    var status: tessera_status
    var message: String
}

/// Runs `body`, mapping errors to statuses and messages.
private func guarded(_ body: () throws -> Void) -> tessera_status {
    do {
        try body()
        tessera_internal_set_error("")
        return TESSERA_OK
    } catch let e as ABIError {
        tessera_internal_set_error(e.message)
        return e.status
    } catch let e as TesseraError {
        tessera_internal_set_error(e.description)
        switch e {
        case .dimOutOfRange: return TESSERA_ERROR_DIM_OUT_OF_RANGE
        case .overlappingBuffers: return TESSERA_ERROR_OVERLAP
        case .nullPointer, .missingSavedTensor: return TESSERA_ERROR_NULL_POINTER
        default: return TESSERA_ERROR_INVALID_ARGUMENT
        }
    } catch let e as RuntimeError {
        tessera_internal_set_error(e.description)
        return TESSERA_ERROR_INVALID_ARGUMENT
    } catch let e as TopologyFileError {
        tessera_internal_set_error(e.description)
        return TESSERA_ERROR_INVALID_ARGUMENT
    } catch {
        tessera_internal_set_error("\(error)")
        return TESSERA_ERROR_INTERNAL
    }
}

private func runtime(_ h: OpaquePointer?) throws -> Runtime {
    try lookup(UnsafeRawPointer(h), as: RuntimeBox.self)?.runtime ?? Runtime.default
}

/// The shapes most recently converted (valid ones only): a call that repeats one gets the same
/// array back, retained, so that a repeated call of the same shape allocates nothing (building
/// the [Int] was the one allocation left in a softmax call through the ABI).
private let recentShapes = Locked<[[Int]]>([])

private func shapeArray(_ shape: UnsafePointer<Int64>?, _ rank: Int32) throws -> [Int] {
    guard rank >= 0, rank <= TESSERA_MAX_RANK else {
        throw ABIError(status: TESSERA_ERROR_INVALID_ARGUMENT, message: "rank must be 0...\(TESSERA_MAX_RANK), got \(rank)")
    }
    if rank == 0 { return [] }
    guard let shape else { throw ABIError(status: TESSERA_ERROR_NULL_POINTER, message: "shape is NULL for rank \(rank)") }
    let r = Int(rank)
    func matches(_ dims: [Int]) -> Bool {
        guard dims.count == r else { return false }
        for i in 0..<r where Int64(dims[i]) != shape[i] { return false }
        return true
    }
    let hit = recentShapes.withLock { recent in recent.first(where: matches) }
    if let hit { return hit }
    let dims = try validShape(shape, r)
    recentShapes.withLock { recent in
        if recent.count == 8 { recent.removeFirst() }
        recent.append(dims)
    }
    return dims
}

private func validShape(_ shape: UnsafePointer<Int64>, _ rank: Int) throws -> [Int] {
    let dims = (0..<rank).map { Int(shape[$0]) }
    if let bad = dims.first(where: { $0 < 0 }) {
        throw ABIError(status: TESSERA_ERROR_INVALID_ARGUMENT, message: "shape \(dims) has a negative extent \(bad)")
    }
    var n = 1
    for d in dims {
        let (p, o) = n.multipliedReportingOverflow(by: d)
        guard !o, p <= Int.max / 4 else { throw ABIError(status: TESSERA_ERROR_INVALID_ARGUMENT, message: "shape \(dims) is too large") }
        n = p
    }
    return dims
}

private func activation(_ op: tessera_activation) throws -> UnaryOp {
    guard let u = UnaryOp(index: Int(op.rawValue)) else {
        throw ABIError(status: TESSERA_ERROR_INVALID_ARGUMENT,
                       message: "unknown activation \(Int32(bitPattern: op.rawValue)) (expected 0..<\(UnaryOp.allCases.count), tessera_op_count())")
    }
    return u
}

/// The op with the caller's parameters, checked (clamp's a <= b, ...).
private func step(_ op: tessera_activation, _ a: Float, _ b: Float) throws -> ElementwiseStep {
    let u = try activation(op)
    guard u.accepts(a, b) else {
        throw ABIError(status: TESSERA_ERROR_INVALID_ARGUMENT, message: "invalid parameters (\(a), \(b)) for \(u.rawValue)")
    }
    return ElementwiseStep(u, a, b)
}

private func countOf(_ count: Int) throws -> Int {
    guard count >= 0, count <= Int.max / 4 else {
        throw ABIError(status: TESSERA_ERROR_INVALID_ARGUMENT, message: "count \(UInt(bitPattern: count)) is too large (a negative value passed as size_t?)")
    }
    return count
}

@_cdecl("tessera_runtime_create")
public func tessera_runtime_create(_ threads: Int32, _ tileBytes: Int, _ topologyPath: UnsafePointer<CChar>?,
                                   _ out: UnsafeMutablePointer<OpaquePointer?>?) -> tessera_status {
    guarded {
        guard let out else { throw ABIError(status: TESSERA_ERROR_NULL_POINTER, message: "out is NULL") }
        guard threads >= 0, threads <= Runtime.maxThreads else {
            throw ABIError(status: TESSERA_ERROR_INVALID_ARGUMENT, message: "threads must be 0...\(Runtime.maxThreads) (0 = default), got \(threads)")
        }
        let topo = try topologyPath.map { try Topology.load(path: String(cString: $0)) }
        let rt = try Runtime(threads: threads == 0 ? nil : Int(threads), tileBytes: tileBytes == 0 ? nil : tileBytes, topology: topo)
        out.pointee = OpaquePointer(register(RuntimeBox(rt)))
    }
}

/// A C `tessera_executor` as a HostExecutor.  @unchecked Sendable: the pool's context is the
/// embedder's, which tessera.h makes responsible for its thread safety and lifetime.
final class CHostExecutor: HostExecutor, @unchecked Sendable {
    let raw: tessera_executor
    let threadCount: Int

    init(_ e: tessera_executor, threads: Int) {
        raw = e
        threadCount = threads
    }

    /// The task as C sees it: `arg` points at the Swift closure for the duration of the call.
    private struct Task { let body: @Sendable (Int) -> Void }
    private static let trampoline: @convention(c) (UnsafeMutableRawPointer?, Int) -> Void = { arg, i in
        arg!.assumingMemoryBound(to: Task.self).pointee.body(i)
    }

    func parallelFor(_ n: Int, _ task: @Sendable (Int) -> Void) {
        withoutActuallyEscaping(task) { body in
            var t = Task(body: body)
            withUnsafeMutablePointer(to: &t) { raw.parallel_for(raw.context, n, CHostExecutor.trampoline, $0) }
        }
    }

    var isInParallelRegion: Bool { raw.in_parallel.map { $0(raw.context) != 0 } ?? false }
}

@_cdecl("tessera_runtime_create_with_executor")
public func tessera_runtime_create_with_executor(_ e: UnsafePointer<tessera_executor>?, _ tileBytes: Int,
                                                 _ topologyPath: UnsafePointer<CChar>?,
                                                 _ out: UnsafeMutablePointer<OpaquePointer?>?) -> tessera_status {
    guarded {
        guard let out else { throw ABIError(status: TESSERA_ERROR_NULL_POINTER, message: "out is NULL") }
        guard let e else { throw ABIError(status: TESSERA_ERROR_NULL_POINTER, message: "executor is NULL") }
        let ex = e.pointee
        guard let count = ex.num_threads, ex.parallel_for != nil else {
            throw ABIError(status: TESSERA_ERROR_NULL_POINTER,
                           message: "executor's \(ex.num_threads == nil ? "num_threads" : "parallel_for") is NULL")
        }
        let n = Int(count(ex.context))
        guard n >= 1, n <= Runtime.maxThreads else {
            throw ABIError(status: TESSERA_ERROR_INVALID_ARGUMENT, message: "executor reports \(n) threads (expected 1...\(Runtime.maxThreads))")
        }
        let topo = try topologyPath.map { try Topology.load(path: String(cString: $0)) }
        let rt = try Runtime(tileBytes: tileBytes == 0 ? nil : tileBytes, topology: topo, host: CHostExecutor(ex, threads: n))
        out.pointee = OpaquePointer(register(RuntimeBox(rt)))
    }
}

@_cdecl("tessera_runtime_destroy")
public func tessera_runtime_destroy(_ h: OpaquePointer?) -> tessera_status {
    guarded {
        _ = try lookup(UnsafeRawPointer(h), as: RuntimeBox.self)
        try unregister(UnsafeMutableRawPointer(h), kind: "runtime")
    }
}

@_cdecl("tessera_op_count")
public func tessera_op_count() -> Int32 { Int32(UnaryOp.allCases.count) }

@_cdecl("tessera_op_name")
public func tessera_op_name(_ op: Int32) -> UnsafePointer<CChar>? {
    UnaryOp(index: Int(op))?.cName
}

@_cdecl("tessera_op_parameter_count")
public func tessera_op_parameter_count(_ op: Int32) -> Int32 { UnaryOp(index: Int(op)).map { Int32($0.parameterCount) } ?? -1 }

@_cdecl("tessera_op_default_parameters")
public func tessera_op_default_parameters(_ op: Int32, _ a: UnsafeMutablePointer<Float>?, _ b: UnsafeMutablePointer<Float>?) -> Int32 {
    guard let u = UnaryOp(index: Int(op)) else { return -1 }
    a?.pointee = u.defaultParameters.0
    b?.pointee = u.defaultParameters.1
    return Int32(u.parameterCount)
}

@_cdecl("tessera_op_from_name")
public func tessera_op_from_name(_ name: UnsafePointer<CChar>?) -> Int32 {
    guard let name, let op = UnaryOp(rawValue: String(cString: name)) else { return -1 }
    return Int32(op.index)
}

@_cdecl("tessera_activation_run")
public func tessera_activation_run(_ h: OpaquePointer?, _ op: tessera_activation, _ x: UnsafePointer<Float>?,
                                   _ y: UnsafeMutablePointer<Float>?, _ count: Int) -> tessera_status {
    guarded {
        let s = ElementwiseStep(try activation(op))
        try RawOps.apply(s, input: x, output: y, count: try countOf(count), runtime: try runtime(h))
    }
}

@_cdecl("tessera_activation_run_with")
public func tessera_activation_run_with(_ h: OpaquePointer?, _ op: tessera_activation, _ a: Float, _ b: Float,
                                        _ x: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>?, _ count: Int) -> tessera_status {
    guarded {
        try RawOps.apply(try step(op, a, b), input: x, output: y, count: try countOf(count), runtime: try runtime(h))
    }
}

@_cdecl("tessera_op_saved")
public func tessera_op_saved(_ op: Int32) -> Int32 {
    guard let u = UnaryOp(index: Int(op)) else { return -1 }
    return switch u.saved { case .input: 0; case .output: 1; case .either: 2; case .none: 3 }
}

@_cdecl("tessera_activation_backward_with")
public func tessera_activation_backward_with(_ h: OpaquePointer?, _ op: tessera_activation, _ a: Float, _ b: Float,
                                             _ x: UnsafePointer<Float>?, _ y: UnsafePointer<Float>?,
                                             _ dy: UnsafePointer<Float>?, _ dx: UnsafeMutablePointer<Float>?,
                                             _ count: Int) -> tessera_status {
    guarded {
        try RawOps.backward(try step(op, a, b), input: x, output: y, gradOutput: dy, gradInput: dx,
                            count: try countOf(count), runtime: try runtime(h))
    }
}

private func softmaxBackwardABI(_ h: OpaquePointer?, _ y: UnsafePointer<Float>?, _ dy: UnsafePointer<Float>?,
                                _ dx: UnsafeMutablePointer<Float>?, _ shape: UnsafePointer<Int64>?, _ rank: Int32,
                                _ dim: Int32, log: Bool) -> tessera_status {
    guarded {
        let s = try shapeArray(shape, rank)
        try RawOps.softmaxBackward(output: y, gradOutput: dy, gradInput: dx, shape: s, dim: Int(dim), log: log,
                                   runtime: try runtime(h))
    }
}

@_cdecl("tessera_softmax_backward")
public func tessera_softmax_backward(_ h: OpaquePointer?, _ y: UnsafePointer<Float>?, _ dy: UnsafePointer<Float>?,
                                     _ dx: UnsafeMutablePointer<Float>?, _ shape: UnsafePointer<Int64>?, _ rank: Int32,
                                     _ dim: Int32) -> tessera_status {
    softmaxBackwardABI(h, y, dy, dx, shape, rank, dim, log: false)
}

@_cdecl("tessera_log_softmax_backward")
public func tessera_log_softmax_backward(_ h: OpaquePointer?, _ y: UnsafePointer<Float>?, _ dy: UnsafePointer<Float>?,
                                         _ dx: UnsafeMutablePointer<Float>?, _ shape: UnsafePointer<Int64>?, _ rank: Int32,
                                         _ dim: Int32) -> tessera_status {
    softmaxBackwardABI(h, y, dy, dx, shape, rank, dim, log: true)
}

private func softmaxABI(_ h: OpaquePointer?, _ x: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>?,
                        _ shape: UnsafePointer<Int64>?, _ rank: Int32, _ dim: Int32, log: Bool) -> tessera_status {
    guarded {
        let s = try shapeArray(shape, rank)
        try RawOps.softmax(input: x, output: y, shape: s, dim: Int(dim), log: log, runtime: try runtime(h))
    }
}

@_cdecl("tessera_softmax")
public func tessera_softmax(_ h: OpaquePointer?, _ x: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>?,
                            _ shape: UnsafePointer<Int64>?, _ rank: Int32, _ dim: Int32) -> tessera_status {
    softmaxABI(h, x, y, shape, rank, dim, log: false)
}

@_cdecl("tessera_log_softmax")
public func tessera_log_softmax(_ h: OpaquePointer?, _ x: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>?,
                                _ shape: UnsafePointer<Int64>?, _ rank: Int32, _ dim: Int32) -> tessera_status {
    softmaxABI(h, x, y, shape, rank, dim, log: true)
}

@_cdecl("tessera_pipeline_create")
public func tessera_pipeline_create(_ out: UnsafeMutablePointer<OpaquePointer?>?) -> tessera_status {
    guarded {
        guard let out else { throw ABIError(status: TESSERA_ERROR_NULL_POINTER, message: "out is NULL") }
        out.pointee = OpaquePointer(register(PipelineBox()))
    }
}

@_cdecl("tessera_pipeline_destroy")
public func tessera_pipeline_destroy(_ h: OpaquePointer?) -> tessera_status {
    guarded {
        _ = try lookup(UnsafeRawPointer(h), as: PipelineBox.self)
        try unregister(UnsafeMutableRawPointer(h), kind: "pipeline")
    }
}

private func pipelineBox(_ h: OpaquePointer?) throws -> PipelineBox {
    guard let box = try lookup(UnsafeRawPointer(h), as: PipelineBox.self) else {
        throw ABIError(status: TESSERA_ERROR_NULL_POINTER, message: "pipeline handle is NULL")
    }
    return box
}

private func add(_ h: OpaquePointer?, _ node: () throws -> PipelineNode) -> tessera_status {
    guarded {
        let box = try pipelineBox(h)
        let n = try node()
        box.state.withLock { s in
            s.nodes.append(n)
            s.program = nil
        }
    }
}

@_cdecl("tessera_pipeline_add_activation")
public func tessera_pipeline_add_activation(_ h: OpaquePointer?, _ op: tessera_activation) -> tessera_status {
    add(h) { .step(.unary(try activation(op))) }
}

@_cdecl("tessera_pipeline_add_activation_with")
public func tessera_pipeline_add_activation_with(_ h: OpaquePointer?, _ op: tessera_activation, _ a: Float, _ b: Float) -> tessera_status {
    add(h) { .step(try step(op, a, b)) }
}

@_cdecl("tessera_pipeline_add_affine")
public func tessera_pipeline_add_affine(_ h: OpaquePointer?, _ scale: Float, _ bias: Float) -> tessera_status {
    add(h) { .step(.affine(scale: scale, bias: bias)) }
}

@_cdecl("tessera_pipeline_add_clamp")
public func tessera_pipeline_add_clamp(_ h: OpaquePointer?, _ lower: Float, _ upper: Float) -> tessera_status {
    add(h) { .step(.clamp(lower: lower, upper: upper)) }
}

@_cdecl("tessera_pipeline_add_softmax")
public func tessera_pipeline_add_softmax(_ h: OpaquePointer?, _ dim: Int32, _ log: Int32) -> tessera_status {
    add(h) { .softmax(dim: Int(dim), log: log != 0) }
}

@_cdecl("tessera_pipeline_run")
public func tessera_pipeline_run(_ rt: OpaquePointer?, _ h: OpaquePointer?, _ x: UnsafePointer<Float>?,
                                 _ y: UnsafeMutablePointer<Float>?, _ shape: UnsafePointer<Int64>?, _ rank: Int32) -> tessera_status {
    guarded {
        let box = try pipelineBox(h)
        let s = try shapeArray(shape, rank)
        try RawOps.run(box.program(), input: x, output: y, shape: s, runtime: try runtime(rt))
    }
}

@_cdecl("tessera_prelu")
public func tessera_prelu(_ h: OpaquePointer?, _ x: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>?,
                          _ shape: UnsafePointer<Int64>?, _ rank: Int32, _ w: UnsafePointer<Float>?, _ wc: Int) -> tessera_status {
    guarded {
        let s = try shapeArray(shape, rank)
        guard let w else { throw ABIError(status: TESSERA_ERROR_NULL_POINTER, message: "weight is NULL") }
        try RawOps.prelu(input: x, output: y, shape: s, weight: UnsafeBufferPointer(start: w, count: try countOf(wc)),
                         runtime: try runtime(h))
    }
}

@_cdecl("tessera_prelu_backward")
public func tessera_prelu_backward(_ h: OpaquePointer?, _ x: UnsafePointer<Float>?, _ dy: UnsafePointer<Float>?,
                                   _ dx: UnsafeMutablePointer<Float>?, _ shape: UnsafePointer<Int64>?, _ rank: Int32,
                                   _ w: UnsafePointer<Float>?, _ wc: Int, _ dw: UnsafeMutablePointer<Float>?) -> tessera_status {
    guarded {
        let s = try shapeArray(shape, rank)
        guard let w, let dw else { throw ABIError(status: TESSERA_ERROR_NULL_POINTER, message: "weight or grad_weight is NULL") }
        let n = try countOf(wc)
        try RawOps.preluBackward(input: x, gradOutput: dy, gradInput: dx, shape: s, weight: UnsafeBufferPointer(start: w, count: n),
                                 gradWeight: UnsafeMutableBufferPointer(start: dw, count: n), runtime: try runtime(h))
    }
}

@_cdecl("tessera_pipeline_backward")
public func tessera_pipeline_backward(_ rt: OpaquePointer?, _ h: OpaquePointer?, _ x: UnsafePointer<Float>?,
                                      _ dy: UnsafePointer<Float>?, _ dx: UnsafeMutablePointer<Float>?,
                                      _ shape: UnsafePointer<Int64>?, _ rank: Int32) -> tessera_status {
    guarded {
        let box = try pipelineBox(h)
        let s = try shapeArray(shape, rank)
        try RawOps.backward(box.program(), input: x, gradOutput: dy, gradInput: dx, shape: s, runtime: try runtime(rt))
    }
}

@_cdecl("tessera_pipeline_explain")
public func tessera_pipeline_explain(_ h: OpaquePointer?) -> UnsafePointer<CChar>? {
    do {
        let box = try pipelineBox(h)
        let text = box.program().explain()
        tessera_internal_set_error("")
        return tessera_internal_set_text(text)
    } catch let e as ABIError {
        tessera_internal_set_error(e.message)
        return tessera_internal_set_text("")
    } catch {
        tessera_internal_set_error("\(error)")
        return tessera_internal_set_text("")
    }
}

// MARK: strided rows

@_cdecl("tessera_activation_run_strided")
public func tessera_activation_run_strided(_ h: OpaquePointer?, _ op: tessera_activation, _ a: Float, _ b: Float,
                                           _ x: UnsafePointer<Float>?, _ xs: Int, _ y: UnsafeMutablePointer<Float>?, _ ys: Int,
                                           _ rows: Int, _ cols: Int) -> tessera_status {
    guarded {
        try RawOps.apply(try step(op, a, b), input: x, inputStride: try countOf(xs), output: y, outputStride: try countOf(ys),
                         rows: try countOf(rows), cols: try countOf(cols), runtime: try runtime(h))
    }
}

@_cdecl("tessera_activation_backward_strided")
public func tessera_activation_backward_strided(_ h: OpaquePointer?, _ op: tessera_activation, _ a: Float, _ b: Float,
                                                _ x: UnsafePointer<Float>?, _ xs: Int, _ y: UnsafePointer<Float>?, _ ys: Int,
                                                _ dy: UnsafePointer<Float>?, _ dys: Int, _ dx: UnsafeMutablePointer<Float>?,
                                                _ dxs: Int, _ rows: Int, _ cols: Int) -> tessera_status {
    guarded {
        try RawOps.backward(try step(op, a, b), input: x, inputStride: try countOf(xs), output: y, outputStride: try countOf(ys),
                            gradOutput: dy, gradOutputStride: try countOf(dys), gradInput: dx, gradInputStride: try countOf(dxs),
                            rows: try countOf(rows), cols: try countOf(cols), runtime: try runtime(h))
    }
}

@_cdecl("tessera_softmax_strided")
public func tessera_softmax_strided(_ h: OpaquePointer?, _ x: UnsafePointer<Float>?, _ xs: Int, _ y: UnsafeMutablePointer<Float>?,
                                    _ ys: Int, _ rows: Int, _ cols: Int, _ log: Int32) -> tessera_status {
    guarded {
        try RawOps.softmax(input: x, inputStride: try countOf(xs), output: y, outputStride: try countOf(ys),
                           rows: try countOf(rows), cols: try countOf(cols), log: log != 0, runtime: try runtime(h))
    }
}

@_cdecl("tessera_softmax_backward_strided")
public func tessera_softmax_backward_strided(_ h: OpaquePointer?, _ y: UnsafePointer<Float>?, _ ys: Int,
                                             _ dy: UnsafePointer<Float>?, _ dys: Int, _ dx: UnsafeMutablePointer<Float>?,
                                             _ dxs: Int, _ rows: Int, _ cols: Int, _ log: Int32) -> tessera_status {
    guarded {
        try RawOps.softmaxBackward(output: y, outputStride: try countOf(ys), gradOutput: dy, gradOutputStride: try countOf(dys),
                                   gradInput: dx, gradInputStride: try countOf(dxs), rows: try countOf(rows),
                                   cols: try countOf(cols), log: log != 0, runtime: try runtime(h))
    }
}
