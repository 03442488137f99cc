import CTesseraKernels
import Foundation
import TesseraKernels
import TesseraRuntime

// Strategy: softmax / log_softmax backward from the forward's output y along any dim.
//   softmax:     dx = y * (dy - sum(dy * y))     log_softmax: dx = dy - exp(y) * sum(dy)
// The same split as the forward: whole rows per tile; rows longer than `splitChunk` in chunks
// across workers (per-chunk sums combined in chunk order); a non-last dim in slabs of
// contiguous columns, vectorised across them.  The sums' order depends on the shape only.
extension Engine {
    /// `strides`: floats from one row to the next of y, dy and dx for a last-dim backward of
    /// 2-D strided views (nil: contiguous).
    static func softmaxBackward(y: UnsafePointer<Float>, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
                                shape: [Int], dim: Int, log: Bool, runtime: Runtime, table: KernelTable = .best,
                                strides: (y: Int, dy: Int, dx: Int)? = nil) {
        guard shape.reduce(1, *) > 0 else { return }
        let (outer, D, inner) = softmaxGeometry(shape, dim)
        let (sy, sdy, sdx) = strides ?? (D, D, D)
        let ys = SendablePointer(y), dys = SendablePointer(dy), dxs = SendablePointer(dx)
        let lg: Int32 = log ? 1 : 0
        let nt: Int32 = runtime.streams(outputBytes: outer * D * inner * 4, workers: runtime.threads) ? 1 : 0
        if inner > 1 {
            // slabs of w columns: all D rows summed per column, then the slab written
            let w = min(inner, max(16, (runtime.tileBytes / max(D * 8, 1)) & ~15))
            let perOuter = (inner + w - 1) / w
            let plan = runtime.plan(units: outer * perOuter, bytesPerUnit: D * w * 8, nsPerUnit: Double(D * w) * 0.3,
                                    unitsPerTile: 1)
            runtime.run(plan, scratchBytes: w * 16) { ctx in
                let k = table.kernels
                let (o, sl) = ctx.tile.quotientAndRemainder(dividingBy: perOuter)
                let j0 = sl * w, ww = min(w, inner - j0), base = o * D * inner + j0
                let sum = ctx.scratch!.assumingMemoryBound(to: Double.self)
                let hi = (ctx.scratch! + w * 8).assumingMemoryBound(to: Float.self), lo = hi + w
                k.cols_grad_sum(ys[base], dys[base], inner, D, ww, lg, sum)
                for j in 0..<ww { (hi[j], lo[j]) = SoftmaxMath.split(sum[j]) }
                k.cols_grad_finish(ys[base], dys[base], dxs[base], inner, D, ww, lg, hi, lo)
            }
            return
        }
        if case .split(let chunk) = rowStrategy(rows: outer, length: D, runtime: runtime) {
            // pass 1: a sum per chunk; combined per row in chunk order; pass 2: each chunk written
            let perRow = (D + chunk - 1) / chunk
            let sums = UnsafeMutablePointer<Double>.allocate(capacity: outer * perRow)
            defer { sums.deallocate() }
            let ss = SendablePointer(sums)
            let plan = runtime.plan(units: outer * perRow, bytesPerUnit: chunk * 8, nsPerUnit: Double(chunk) * 0.2,
                                    unitsPerTile: 1)
            runtime.run(plan) { ctx in
                let (r, c) = ctx.tile.quotientAndRemainder(dividingBy: perRow)
                let lo = c * chunk, n = min(chunk, D - c * chunk)
                ss[ctx.tile].pointee = table.kernels.grad_sum(ys[r * sy + lo], dys[r * sdy + lo], n, lg)
            }
            let rowSum = (0..<outer).map { r in SoftmaxMath.split((0..<perRow).reduce(0.0) { $0 + sums[r * perRow + $1] }) }
            rowSum.withUnsafeBufferPointer { rb in
                let rs = SendablePointer(rb.baseAddress!)
                runtime.run(plan) { ctx in
                    let (r, c) = ctx.tile.quotientAndRemainder(dividingBy: perRow)
                    let lo = c * chunk, n = min(chunk, D - c * chunk)
                    table.kernels.grad_finish(ys[r * sy + lo], dys[r * sdy + lo], dxs[r * sdx + lo], n,
                                              rs[r].pointee.0, rs[r].pointee.1, lg, nt)
                }
            }
            return
        }
        let plan = rowPlan(rows: outer, length: D, runtime: runtime)
        var job = SoftmaxBackwardRowsJob(table: table, y: y, dy: dy, dx: dx, D: D, sy: sy, sdy: sdy, sdx: sdx, log: lg, nt: nt)
        withUnsafePointer(to: &job) { runtime.run(plan, raw: SoftmaxBackwardRowsJob.body, context: $0) }
    }

    static func describeSoftmaxBackward(log: Bool, shape: [Int], dim: Int, runtime: Runtime) -> String {
        let (outer, D, inner) = softmaxGeometry(shape, dim)
        let name = log ? "log_softmax backward" : "softmax backward"
        if inner > 1 { return "\(name) along dim \(dim): \(outer) x [\(D) rows x \(inner) columns], per-column sums over slabs of columns, then one output pass\n" }
        if case .split(let chunk) = rowStrategy(rows: outer, length: D, runtime: runtime) {
            return "\(name) over \(outer) rows of \(D): per-chunk sums (chunks of \(chunk)) across workers, combined in chunk order, then each chunk written\n"
        }
        return "\(name) over \(outer) rows of \(D): whole rows per tile, a sum pass and an output pass over a cache-resident row\n"
    }
}

/// Whole rows of a last-dim softmax backward, as a raw tile body's context (no closure: a
/// repeated call allocates nothing; see KernelJob).
struct SoftmaxBackwardRowsJob {
    var table: KernelTable
    var y: UnsafePointer<Float>, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>
    var D: Int, sy: Int, sdy: Int, sdx: Int
    var log: Int32, nt: Int32

    static let body: RawTileBody = { context, first, count, _ in
        let j = context!.assumingMemoryBound(to: SoftmaxBackwardRowsJob.self).pointee
        let k = j.table.kernels
        // one fence per tile, not per row: a fence drains the write-combining buffers, and
        // short rows paid for it (65536x256 into an output 16 bytes into a line: 1.66 vs 1.10
        // ns/element aligned; docs/records/zen3-avx2/README.md)
        for r in first..<first + count {
            let (hi, lo) = SoftmaxMath.split(k.grad_sum(j.y + r * j.sy, j.dy + r * j.sdy, j.D, j.log))
            k.grad_finish(j.y + r * j.sy, j.dy + r * j.sdy, j.dx + r * j.sdx, j.D, hi, lo, j.log, j.nt != 0 ? 3 : 0)
        }
        if j.nt != 0 { ts_store_fence() }
    }
}
