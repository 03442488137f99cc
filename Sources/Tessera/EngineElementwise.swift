import CTesseraKernels
import Foundation
import TesseraGraph
import TesseraKernels
import TesseraRuntime

// Strategy: a group of element-wise steps as one sweep over memory.
extension Engine {
    /// Elements per L1 block when a fused group runs op by op (numexpr's way): 4 KiB in,
    /// 4 KiB scratch -- both stay in L1 while every step runs over the block.
    static let blockElements = 1024

    /// y = step(x) over `count` elements; x == y allowed.  Small calls run the kernel
    /// directly on the caller's thread: no plan, no allocation.
    static func elementwise(_ step: ElementwiseStep, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                            count: Int, runtime: Runtime, table: KernelTable = .best) {
        guard count > 0 else { return }
        let inline = runtime.runsInline(units: count, nsPerUnit: step.nsPerElement)
        let nt = streams(runtime, bytes: count * 4, inline: inline)
        if inline {
            step.apply(table, x, y, count, streaming: nt)
            return
        }
        let plan = elementwisePlan(nsPerElement: step.nsPerElement, count: count, runtime: runtime)
        var job = KernelJob(forward: step.op.kernel(in: table), x: x, y: y, a: step.a, b: step.b, nt: nt ? 1 : 0)
        withUnsafePointer(to: &job) { runtime.run(plan, raw: KernelJob.body, context: $0) }
    }

    /// y = x over `count` elements (the bandwidth yardstick): the element-wise plan and stores.
    static func copy(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, count: Int, runtime: Runtime,
                     table: KernelTable = .best) {
        let plan = elementwisePlan(nsPerElement: 0.05, count: count, runtime: runtime)
        let nt: Int32 = streams(runtime, bytes: count * 4, plan: plan) ? 1 : 0
        var job = KernelJob(copy: table.kernels.copy, x: x, y: y, nt: nt)
        withUnsafePointer(to: &job) { runtime.run(plan, raw: KernelJob.body, context: $0) }
    }

    /// y = steps(x) over `count` elements; x == y allowed.
    static func elementwise(_ steps: [ElementwiseStep], x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                            count: Int, runtime: Runtime, execution: FusedExecution = .hybrid,
                            table: KernelTable = .best) {
        guard count > 0 else { return }
        if steps.isEmpty {
            if UnsafePointer(y) != x { y.update(from: x, count: count) }
            return
        }
        if steps.count == 1 {
            elementwise(steps[0], x: x, y: y, count: count, runtime: runtime, table: table)
            return
        }
        let (flat, bounds) = FusedChains.shared.lowered(steps, execution)
        let segmentCount = bounds.count - 1
        let cost = steps.reduce(0) { $0 + $1.nsPerElement }
        let inline = runtime.runsInline(units: count, nsPerUnit: cost)
        let nt = streams(runtime, bytes: count * 4, inline: inline)
        flat.withUnsafeBufferPointer { fb in
            let cs = SendablePointer(fb.baseAddress!)
            if inline {
                withUnsafeTemporaryAllocation(of: Float.self, capacity: blockElements) { s in
                    bounds.withUnsafeBufferPointer { bb in
                        runSegments(table, cs.base, bb, x: x, y: y, count: count, scratch: s.baseAddress!, streaming: nt)
                    }
                }
                return
            }
            let plan = elementwisePlan(nsPerElement: cost, count: count, runtime: runtime)
            bounds.withUnsafeBufferPointer { bb in
                var job = ChainJob(table: table, steps: cs.base, bounds: bb, x: x, y: y, streaming: nt)
                withUnsafePointer(to: &job) {
                    runtime.run(plan, scratchBytes: segmentCount > 1 ? blockElements * 4 : 0, raw: ChainJob.body, context: $0)
                }
            }
        }
    }

    // MARK: backward

    /// dx = dy * step'(saved) over `count` elements (12 bytes per element: two reads, one
    /// write); dx == dy allowed.  `saved` is the tensor the op's row names (nil: none).
    static func elementwiseBackward(_ step: ElementwiseStep, saved: UnsafePointer<Float>?, dy: UnsafePointer<Float>,
                                    dx: UnsafeMutablePointer<Float>, count: Int, runtime: Runtime,
                                    table: KernelTable = .best) {
        guard count > 0 else { return }
        let cost = step.nsPerElement * 1.5
        let plan = runtime.plan(units: count, bytesPerUnit: 8, nsPerUnit: cost)
        let nt = streams(runtime, bytes: count * 8, plan: plan)
        if plan.inline {
            step.applyBackward(table, saved: saved, dy, dx, count, streaming: nt)
            return
        }
        var job = KernelJob(backward: step.op.backwardKernel(in: table), saved: saved, dy: dy, dx: dx, a: step.a, b: step.b,
                            nt: nt ? 1 : 0)
        withUnsafePointer(to: &job) { runtime.run(plan, raw: KernelJob.body, context: $0) }
    }

    /// dx = the backward of `steps` at x for dy, in one sweep: each tile recomputes the forward
    /// intermediates its steps' gradients read, block by block in L1 (`chain_backward`), so a
    /// k-step chain reads x and dy and writes dx once.  Same bits as `unfusedBackward`.
    static func elementwiseBackward(_ steps: [ElementwiseStep], x: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                                    dx: UnsafeMutablePointer<Float>, count: Int, runtime: Runtime,
                                    table: KernelTable = .best) {
        guard count > 0 else { return }
        if steps.isEmpty {
            if dy != UnsafePointer(dx) { dx.update(from: dy, count: count) }
            return
        }
        let maxSteps = Int(TS_BW_MAX_STEPS)
        if steps.count > maxSteps {
            // longer chains in segments: the input of the last segment is stored, its backward
            // run, then the rest backward with that gradient (exactly what one sweep would give)
            let head = Array(steps[..<(steps.count - maxSteps)]), tail = Array(steps[(steps.count - maxSteps)...])
            let mid = AlignedStorage(count: count)
            elementwise(head, x: x, y: mid.pointer, count: count, runtime: runtime, table: table)
            elementwiseBackward(tail, x: mid.pointer, dy: dy, dx: dx, count: count, runtime: runtime, table: table)
            elementwiseBackward(head, x: x, dy: dx, dx: dx, count: count, runtime: runtime, table: table)
            return
        }
        let cost = steps.reduce(0) { $0 + $1.nsPerElement * 2.5 }
        let plan = runtime.plan(units: count, bytesPerUnit: 8, nsPerUnit: cost)
        let nt: Int32 = streams(runtime, bytes: count * 8, plan: plan) ? 1 : 0
        let cSteps = steps.map(\.cStep)
        cSteps.withUnsafeBufferPointer { cb in
            let cs = SendablePointer(cb.baseAddress!)
            let k = Int32(cb.count)
            if plan.inline {
                table.kernels.chain_backward(x, dy, dx, count, cs.base, k, nt)
                return
            }
            var job = KernelJob(chainBackward: table.kernels.chain_backward, x: x, dy: dy, dx: dx, steps: cs.base, k: k, nt: nt)
            withUnsafePointer(to: &job) { runtime.run(plan, raw: KernelJob.body, context: $0) }
        }
    }

    /// The reference the fused backward must match bit for bit: every intermediate stored, then
    /// each step's backward over the whole tensor, last step first (3k sweeps for k steps).
    static func unfusedBackward(_ steps: [ElementwiseStep], x: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                                dx: UnsafeMutablePointer<Float>, count: Int, runtime: Runtime,
                                table: KernelTable = .best) {
        guard count > 0 else { return }
        var values = [UnsafePointer<Float>](repeating: x, count: steps.count + 1)
        var owned: [AlignedStorage] = []
        for (j, s) in steps.enumerated() where j + 1 < steps.count || s.op.saved == .output {
            let out = AlignedStorage(count: count)
            elementwise(s, x: values[j], y: out.pointer, count: count, runtime: runtime, table: table)
            owned.append(out)
            values[j + 1] = UnsafePointer(out.pointer)
        }
        var src = dy
        for j in stride(from: steps.count - 1, through: 0, by: -1) {
            let s = steps[j]
            let saved: UnsafePointer<Float>? = switch s.op.saved {
            case .output: values[j + 1]
            case .none: nil
            case .input, .either: values[j]
            }
            elementwiseBackward(s, saved: saved, dy: src, dx: dx, count: count, runtime: runtime, table: table)
            src = UnsafePointer(dx)
        }
        withExtendedLifetime(owned) {}
    }

    /// One segment: all its steps per vector in registers, one pass.  Several: segment by
    /// segment over L1-sized blocks, x -> scratch -> ... -> y.
    @inline(__always)
    static func runSegments(_ table: KernelTable, _ steps: UnsafePointer<ts_step>, _ bounds: UnsafeBufferPointer<Int>, x: UnsafePointer<Float>,
                            y: UnsafeMutablePointer<Float>, count n: Int, scratch s: UnsafeMutablePointer<Float>?,
                            streaming nt: Bool) {
        let k = table.kernels
        let last = bounds.count - 2
        if last == 0 {
            k.chain(x, y, n, steps, Int32(bounds[1]), nt ? 1 : 0)
            return
        }
        let s = s!
        var i = 0
        while i < n {
            let m = min(blockElements, n - i)
            for g in 0...last {
                let src = g == 0 ? x + i : UnsafePointer(s)
                let dst = g == last ? y + i : s
                // streamed blocks leave their fence to the end of the tile (nt == 3): one fence
                // per block of 1024 cost chain4 ~3 % at 1 worker (docs/records/zen3-avx2, session 13)
                k.chain(src, dst, m, steps + bounds[g], Int32(bounds[g + 1] - bounds[g]), g == last && nt ? 3 : 0)
            }
            i += m
        }
        if nt { ts_store_fence() }
    }

    /// Element tiles of `tileBytes` input; the cost decides inline vs parallel.
    static func elementwisePlan(nsPerElement: Double, count: Int, runtime: Runtime) -> TilePlan {
        runtime.plan(units: count, bytesPerUnit: 4, nsPerUnit: nsPerElement)
    }

    /// All steps over one contiguous range, first x -> y then in place.
    @inline(__always)
    static func applySteps(_ steps: [ElementwiseStep], _ table: KernelTable, x: UnsafePointer<Float>,
                           y: UnsafeMutablePointer<Float>, count: Int) {
        steps[0].apply(table, x, y, count, streaming: false)
        for s in steps.dropFirst() { s.apply(table, y, y, count, streaming: false) }
    }

    static func describeElementwise(_ steps: [ElementwiseStep], count: Int, runtime: Runtime) -> String {
        let plan = elementwisePlan(nsPerElement: steps.reduce(0) { $0 + $1.nsPerElement }, count: count, runtime: runtime)
        let segs = FusedExecution.hybrid.segments(steps)
        let how = steps.count == 1 ? "one kernel per tile"
            : segs.count == 1 ? "all steps per vector in registers, one pass per tile"
            : "\(segs.map { "[\($0.map(\.description).joined(separator: ", "))]" }.joined(separator: " then ")) over \(blockElements)-element L1 blocks per tile"
        return "elementwise: \(how), \(streams(runtime, bytes: count * 4, plan: plan) ? "streaming" : "regular") stores\n" + plan.description
    }
}

/// One kernel over a tensor as a raw tile body's context (Runtime.run(_:raw:context:)): the
/// workers call the C kernel on their tile with no Swift closure, so the call allocates nothing.
/// The pointers are the whole tensor's; the body offsets them by the tile's first element.
struct KernelJob {
    enum Kind { case forward, backward, copy, chainBackward }
    var kind: Kind
    var forward: ts_ew_fn? = nil
    var backward: ts_bw_fn? = nil
    var copy: ts_unary_fn? = nil
    var chainBackward: ChainBackwardFn? = nil
    /// the forward's input, or the saved tensor (nil: none), or the chain's input
    var x: UnsafePointer<Float>?
    var dy: UnsafePointer<Float>? = nil
    var y: UnsafeMutablePointer<Float>
    var a: Float = 0, b: Float = 0
    var steps: UnsafePointer<ts_step>? = nil
    var k: Int32 = 0
    var nt: Int32

    init(forward: ts_ew_fn, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, a: Float, b: Float, nt: Int32) {
        (kind, self.forward, self.x, self.y, self.a, self.b, self.nt) = (.forward, forward, x, y, a, b, nt)
    }
    init(backward: ts_bw_fn, saved: UnsafePointer<Float>?, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
         a: Float, b: Float, nt: Int32) {
        (kind, self.backward, x, self.dy, y, self.a, self.b, self.nt) = (.backward, backward, saved, dy, dx, a, b, nt)
    }
    typealias ChainBackwardFn = @convention(c) (UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafeMutablePointer<Float>?,
                                                Int, UnsafePointer<ts_step>?, Int32, Int32) -> Void

    init(copy: ts_unary_fn, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, nt: Int32) {
        (kind, self.copy, self.x, self.y, self.nt) = (.copy, copy, x, y, nt)
    }
    init(chainBackward: ChainBackwardFn, x: UnsafePointer<Float>, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, steps: UnsafePointer<ts_step>,
         k: Int32, nt: Int32) {
        (kind, self.chainBackward, self.x, self.dy, y, self.steps, self.k, self.nt) = (.chainBackward, chainBackward, x, dy, dx, steps, k, nt)
    }

    static let body: RawTileBody = { context, first, n, _ in
        let j = context!.assumingMemoryBound(to: KernelJob.self)
        switch j.pointee.kind {
        case .forward: j.pointee.forward!(j.pointee.x! + first, j.pointee.y + first, n, j.pointee.a, j.pointee.b, j.pointee.nt)
        case .backward:
            j.pointee.backward!(j.pointee.x.map { $0 + first }, j.pointee.dy! + first, j.pointee.y + first, n, j.pointee.a,
                                j.pointee.b, j.pointee.nt)
        case .copy: j.pointee.copy!(j.pointee.x! + first, j.pointee.y + first, n, j.pointee.nt)
        case .chainBackward:
            j.pointee.chainBackward!(j.pointee.x! + first, j.pointee.dy! + first, j.pointee.y + first, n, j.pointee.steps,
                                     j.pointee.k, j.pointee.nt)
        }
    }
}

/// A fused chain's segments over a tensor as a raw tile body's context (see KernelJob).
struct ChainJob {
    var table: KernelTable
    var steps: UnsafePointer<ts_step>
    var bounds: UnsafeBufferPointer<Int>
    var x: UnsafePointer<Float>
    var y: UnsafeMutablePointer<Float>
    var streaming: Bool

    static let body: RawTileBody = { context, first, n, scratch in
        let j = context!.assumingMemoryBound(to: ChainJob.self).pointee
        Engine.runSegments(j.table, j.steps, j.bounds, x: j.x + first, y: j.y + first, count: n,
                           scratch: scratch?.assumingMemoryBound(to: Float.self), streaming: j.streaming)
    }
}

/// Recently run chains lowered to the kernels' form (the C steps of every segment, back to
/// back, and where each segment starts), so that a repeated call of a compiled pipeline builds
/// no arrays: lowering allocated five per call.
final class FusedChains: Sendable {
    static let shared = FusedChains()
    static let capacity = 16
    private let entries = Locked<[(steps: [ElementwiseStep], execution: FusedExecution, flat: [ts_step], bounds: [Int])]>([])

    func lowered(_ steps: [ElementwiseStep], _ execution: FusedExecution) -> (flat: [ts_step], bounds: [Int]) {
        if let hit = entries.withLock({ e in e.first { $0.execution == execution && $0.steps == steps } }) {
            return (hit.flat, hit.bounds)
        }
        let segments = execution.segments(steps)
        let flat = segments.flatMap { $0 }.map(\.cStep)
        let bounds = segments.reduce(into: [0]) { $0.append($0.last! + $1.count) }
        entries.withLock { e in
            if e.count >= FusedChains.capacity { e.removeFirst() }
            e.append((steps, execution, flat, bounds))
        }
        return (flat, bounds)
    }
}

/// How a fused group of element-wise steps is executed (all give the same bits).
public enum FusedExecution: String, Sendable, CaseIterable {
    /// cheap steps (affine, clamp, relu) composed in registers with their neighbour; each
    /// costly (exp/erf) step its own pass over an L1-sized block.  The default.
    case hybrid
    /// every step its own pass over an L1-sized block (numexpr's way)
    case opByOp = "op-by-op"
    /// the whole chain applied to each vector in registers, one pass
    case registers

    /// The passes: each inner array is applied in registers in one pass over a block.
    func segments(_ steps: [ElementwiseStep]) -> [[ElementwiseStep]] {
        switch self {
        case .opByOp: return steps.map { [$0] }
        case .registers: return [steps]
        case .hybrid:
            var out: [[ElementwiseStep]] = [[]]
            var hasCostly = false
            for s in steps {
                if !s.isCheap && hasCostly {
                    out.append([])
                    hasCostly = false
                }
                out[out.count - 1].append(s)
                if !s.isCheap { hasCostly = true }
            }
            return out
        }
    }
}

