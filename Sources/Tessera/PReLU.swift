import CTesseraKernels
import TesseraKernels
import TesseraRuntime

/// PReLU: x for x > 0, else `weight[c] * x`, with one learnable weight per channel (dim 1, as
/// PyTorch) or one for the whole tensor.  Its backward gives the input's gradient and the
/// weight's.  Not a pipeline step: its weight varies along dim 1 (a single weight is LeakyReLU).
public struct PReLU: Sendable {
    public var weight: [Float]

    /// `weight`: one value, or one per channel (`shape[1]` of the inputs).  PyTorch's default
    /// initial weight is 0.25.
    public init(weight: [Float] = [0.25]) throws {
        guard !weight.isEmpty else { throw TesseraError.invalidArgument("PReLU needs at least one weight") }
        self.weight = weight
    }

    public func forward(_ x: Tensor, runtime: Runtime = .default) throws -> Tensor {
        let (blocks, channels, inner) = try PReLU.geometry(x.shape, weights: weight.count)
        let y = Tensor(uninitialized: x.shape, count: x.count, runtime: runtime)
        weight.withUnsafeBufferPointer { w in
            Engine.prelu(x: x.storage.pointer, y: y.storage.pointer, blocks: blocks, channels: channels, inner: inner,
                         weight: w.baseAddress!, runtime: runtime)
        }
        return y
    }

    public func callAsFunction(_ x: Tensor, runtime: Runtime = .default) throws -> Tensor { try forward(x, runtime: runtime) }

    /// The gradients with respect to the input and to the weight (same count as `weight`).
    public func backward(input x: Tensor, gradOutput dy: Tensor, runtime: Runtime = .default) throws
        -> (gradInput: Tensor, gradWeight: [Float]) {
        guard dy.shape == x.shape else { throw TesseraError.gradientShapeMismatch(name: "gradOutput", expected: x.shape, got: dy.shape) }
        let (blocks, channels, inner) = try PReLU.geometry(x.shape, weights: weight.count)
        let dx = Tensor(uninitialized: x.shape, count: x.count, runtime: runtime)
        var dw = [Float](repeating: 0, count: weight.count)
        weight.withUnsafeBufferPointer { w in
            dw.withUnsafeMutableBufferPointer { g in
                Engine.preluBackward(x: x.storage.pointer, dy: dy.storage.pointer, dx: dx.storage.pointer, blocks: blocks,
                                     channels: channels, inner: inner, weight: w.baseAddress!, gradWeight: g.baseAddress!,
                                     runtime: runtime)
            }
        }
        return (dx, dw)
    }

    /// (blocks, channels, inner): the tensor as blocks of `inner` contiguous elements, block b in
    /// channel b % channels.  One weight: one channel, one block per element run.
    static func geometry(_ shape: [Int], weights: Int) throws -> (Int, Int, Int) {
        let count = try elementCount(shape)
        if weights == 1 { return (count > 0 ? 1 : 0, 1, count) }
        guard shape.count >= 2, shape[1] == weights else {
            throw TesseraError.invalidArgument("PReLU with \(weights) weights needs a tensor of rank >= 2 with \(weights) channels along dim 1, got shape \(shape)")
        }
        let inner = shape[2...].reduce(1, *)
        return (inner > 0 ? shape[0] * shape[1] : 0, shape[1], inner)
    }
}

extension Engine {
    /// PReLU forward: leaky_relu's kernel per block with the block's channel weight.
    static func prelu(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, blocks: Int, channels: Int, inner: Int,
                      weight: UnsafePointer<Float>, runtime: Runtime, table: KernelTable = .best) {
        guard blocks > 0, inner > 0 else { return }
        if channels == 1 { // one weight: leaky_relu over the whole tensor, tiled as any element-wise op
            elementwise(ElementwiseStep(.leakyReLU, weight.pointee), x: x, y: y, count: blocks * inner, runtime: runtime, table: table)
            return
        }
        let plan = runtime.plan(units: blocks, bytesPerUnit: inner * 4, nsPerUnit: Double(inner) * 0.05)
        var job = PReLUJob(table: table, x: x, dy: nil, out: y, weight: weight, channels: channels, inner: inner, chunk: 0,
                           sums: nil, nt: streams(runtime, bytes: blocks * inner * 4, plan: plan))
        withUnsafePointer(to: &job) { runtime.run(plan, raw: PReLUJob.forward, context: $0) }
    }

    /// PReLU backward: dx from leaky_relu's backward per block; the weight's gradient from one
    /// sum per block, combined per channel in block order (the bits depend on the shape only).
    static func preluBackward(x: UnsafePointer<Float>, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, blocks: Int,
                              channels: Int, inner: Int, weight: UnsafePointer<Float>, gradWeight: UnsafeMutablePointer<Float>,
                              runtime: Runtime, table: KernelTable = .best) {
        guard blocks > 0, inner > 0 else { return }
        if channels == 1 && blocks == 1 {
            // one weight: the weight's sum over fixed chunks (bits independent of the workers),
            // then dx as leaky_relu's backward over the whole tensor
            let chunk = 16384, n = inner, parts = (n + chunk - 1) / chunk
            runtime.withWorkspace(bytes: parts * 8) { ws in
                let sums = ws.bindMemory(to: Double.self, capacity: parts)
                var job = PReLUJob(table: table, x: x, dy: dy, out: dx, weight: weight, channels: 1, inner: n, chunk: chunk,
                                   sums: sums, nt: false)
                withUnsafePointer(to: &job) {
                    runtime.run(runtime.plan(units: parts, bytesPerUnit: chunk * 8, nsPerUnit: Double(chunk) * 0.05, unitsPerTile: 1),
                                raw: PReLUJob.chunkSum, context: $0)
                }
                var s = 0.0
                for p in 0..<parts { s += sums[p] }
                gradWeight[0] = Float(s)
            }
            elementwiseBackward(ElementwiseStep(.leakyReLU, weight.pointee), saved: x, dy: dy, dx: dx, count: n, runtime: runtime,
                                table: table)
            return
        }
        let plan = runtime.plan(units: blocks, bytesPerUnit: inner * 8, nsPerUnit: Double(inner) * 0.1)
        runtime.withWorkspace(bytes: blocks * 8) { ws in
            let sums = ws.bindMemory(to: Double.self, capacity: blocks)
            var job = PReLUJob(table: table, x: x, dy: dy, out: dx, weight: weight, channels: channels, inner: inner, chunk: 0,
                               sums: sums, nt: streams(runtime, bytes: blocks * inner * 4, plan: plan))
            withUnsafePointer(to: &job) { runtime.run(plan, raw: PReLUJob.backward, context: $0) }
            for c in 0..<channels {
                var s = 0.0
                for b in stride(from: c, to: blocks, by: channels) { s += sums[b] }
                gradWeight[c] = Float(s)
            }
        }
    }
}

/// PReLU's tiles as raw tile bodies' context: blocks of `inner` elements, block b with channel
/// b % channels's weight (forward: out = y; backward: out = dx and the weight's sums per block),
/// or one weight's sums over chunks of `chunk`.
struct PReLUJob {
    var table: KernelTable
    var x: UnsafePointer<Float>, dy: UnsafePointer<Float>?
    var out: UnsafeMutablePointer<Float>
    var weight: UnsafePointer<Float>
    var channels: Int, inner: Int, chunk: Int
    var sums: UnsafeMutablePointer<Double>?
    var nt: Bool

    static let forward: RawTileBody = { context, first, count, _ in
        let j = context!.assumingMemoryBound(to: PReLUJob.self).pointee
        for b in first..<first + count {
            ElementwiseStep(.leakyReLU, j.weight[b % j.channels]).apply(j.table, j.x + b * j.inner, j.out + b * j.inner, j.inner,
                                                                        streaming: j.nt)
        }
    }
    static let backward: RawTileBody = { context, first, count, _ in
        let j = context!.assumingMemoryBound(to: PReLUJob.self).pointee
        for b in first..<first + count {
            let o = b * j.inner
            // the weight's sum first: dx may be dy
            j.sums![b] = j.table.kernels.prelu_wsum(j.x + o, j.dy! + o, j.inner)
            ElementwiseStep(.leakyReLU, j.weight[b % j.channels]).applyBackward(j.table, saved: j.x + o, j.dy! + o, j.out + o, j.inner,
                                                                                streaming: j.nt)
        }
    }
    static let chunkSum: RawTileBody = { context, first, count, _ in
        let j = context!.assumingMemoryBound(to: PReLUJob.self).pointee
        for t in first..<first + count {
            let o = t * j.chunk
            j.sums![t] = j.table.kernels.prelu_wsum(j.x + o, j.dy! + o, min(j.chunk, j.inner - o))
        }
    }
}
