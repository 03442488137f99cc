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
        let lg: Int32 = log ? 1 : 0
        let nt: Int32 = runtime.streams(outputBytes: outer * D * inner * 4, workers: runtime.threads) ? 1 : 0
        if inner > 1 {
            // slabs of w columns: all D rows summed per column, then the slab written
            let w = min(inner, max(16, (runtime.tileBytes / max(D * 8, 1)) & ~15))
            let plan = runtime.plan(units: outer * ((inner + w - 1) / w), bytesPerUnit: D * w * 8, nsPerUnit: Double(D * w) * 0.3,
                                    unitsPerTile: 1)
            var job = SoftmaxBackwardSplitJob(table: table, y: y, dy: dy, dx: dx, D: D, inner: inner, w: w, chunk: 0,
                                              sy: sy, sdy: sdy, sdx: sdx, log: lg, nt: nt)
            withUnsafePointer(to: &job) { runtime.run(plan, scratchBytes: w * 16, raw: SoftmaxBackwardSplitJob.slab, context: $0) }
            return
        }
        if case .split(let chunk) = rowStrategy(rows: outer, length: D, runtime: runtime) {
            // per group of rows (backwardGroupRows): pass 1 a sum per chunk; combined per row in
            // chunk order; pass 2 each chunk written while the group is still in the LLC; one
            // worker writes the chunks last first, those pass 1 read last (with more, each worker
            // claims its own block of chunks first: reversed, the blocks would swap workers).
            // 8x2^21: 0.90-0.94x the time (1 worker), 0.95-0.97x (2 workers);
            // docs/records/zen3-avx2/README.md, session 14.
            let perRow = (D + chunk - 1) / chunk
            let group = backwardGroupRows(length: D, runtime: runtime)
            var layout = WorkspaceLayout()
            let sumsAt = layout.reserve(Double.self, outer * perRow)
            let rowAt = layout.reserve(Float.self, outer * 2)
            runtime.withWorkspace(bytes: layout.bytes) { ws in
                var job = SoftmaxBackwardSplitJob(table: table, y: y, dy: dy, dx: dx, D: D, inner: 1, w: 0, chunk: chunk,
                                                  sy: sy, sdy: sdy, sdx: sdx, log: lg, nt: nt)
                job.sums = (ws + sumsAt).bindMemory(to: Double.self, capacity: outer * perRow)
                job.rowSums = (ws + rowAt).bindMemory(to: Float.self, capacity: outer * 2)
                var r0 = 0
                while r0 < outer {
                    let rows = min(group, outer - r0)
                    job.firstChunk = r0 * perRow
                    job.chunks = rows * perRow
                    let plan = runtime.plan(units: rows * perRow, bytesPerUnit: chunk * 8, nsPerUnit: Double(chunk) * 0.2,
                                            unitsPerTile: 1)
                    withUnsafePointer(to: &job) { runtime.run(plan, raw: SoftmaxBackwardSplitJob.chunkSum, context: $0) }
                    for r in r0..<r0 + rows {
                        var total = 0.0
                        for c in 0..<perRow { total += job.sums![r * perRow + c] }
                        (job.rowSums![2 * r], job.rowSums![2 * r + 1]) = SoftmaxMath.split(total)
                    }
                    job.lastFirst = plan.workers == 1
                    withUnsafePointer(to: &job) { runtime.run(plan, raw: SoftmaxBackwardSplitJob.chunkFinish, context: $0) }
                    r0 += rows
                }
            }
            return
        }
        let plan = rowPlan(rows: outer, length: D, runtime: runtime)
        var job = SoftmaxBackwardRowsJob(table: table, y: y, dy: dy, dx: dx, rows: outer, D: D, sy: sy, sdy: sdy, sdx: sdx, log: lg, nt: nt)
        withUnsafePointer(to: &job) { runtime.run(plan, raw: SoftmaxBackwardRowsJob.body, context: $0) }
    }

    /// Rows per group of a split softmax backward: y and dy of the group in half the LLC, at
    /// least one row, and at least 32 times the executor's break-even of work (both passes take
    /// ~1 ns per element at one worker: docs/records/zen3-avx2/README.md, session 14), so that a
    /// group's two parallel calls cost a few percent of it where the counted LLC is small.
    static func backwardGroupRows(length D: Int, runtime: Runtime) -> Int {
        let breakEven = runtime.parallelThresholdNs.isFinite ? max(runtime.parallelThresholdNs, 0) : 0
        let floor = Int(min(breakEven * 32, 1e15)) * 8 // bytes of y and dy: 8 per element
        return max(1, max(runtime.cache.llcBytes / 2, floor) / max(D * 8, 1))
    }

    static func describeSoftmaxBackward(log: Bool, shape: [Int], dim: Int, runtime: Runtime) -> String {
        let (outer, D, inner) = softmaxGeometry(shape, dim)
        let name = log ? "log_softmax backward" : "softmax backward"
        if inner > 1 { return "\(name) along dim \(dim): \(outer) x [\(D) rows x \(inner) columns], per-column sums over slabs of columns, then one output pass\n" }
        if case .split(let chunk) = rowStrategy(rows: outer, length: D, runtime: runtime) {
            let group = backwardGroupRows(length: D, runtime: runtime)
            return "\(name) over \(outer) rows of \(D): per group of \(min(group, outer)) rows (y and dy in half the LLC, or 32 parallel break-evens of work), "
                + "per-chunk sums (chunks of \(chunk)) across workers, combined in chunk order, then each chunk written "
                + "(by one worker: last first)\n"
        }
        return "\(name) over \(outer) rows of \(D): whole rows per tile, a sum pass and an output pass over a cache-resident row\n"
    }
}

/// Whole rows of a last-dim softmax backward, as a raw tile body's context (no closure: a
/// repeated call allocates nothing; see KernelJob).
struct SoftmaxBackwardRowsJob {
    var table: KernelTable
    var y: UnsafePointer<Float>, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>
    var rows: Int, D: Int, sy: Int, sdy: Int, sdx: Int
    var log: Int32, nt: Int32

    /// Rows up to this long fetch a row ahead while they work: the row's two passes are
    /// short, and the hardware prefetcher does not run ahead across rows (65536x256, 1 worker:
    /// 0.90x; prefetching whole 4096-float rows evicted the row being worked on: 1.1-1.2x;
    /// docs/records/zen3-avx2/README.md).  Rows under a page fetch the row a page ahead (the
    /// hardware prefetcher also stops at 4 KiB pages: 0.95-1.01x on 65536x256, session 9).
    static let prefetchedRow = 512

    static let body: RawTileBody = { context, first, count, _ in
        let j = context!.assumingMemoryBound(to: SoftmaxBackwardRowsJob.self).pointee
        let k = j.table.kernels
        let short = j.D <= SoftmaxBackwardRowsJob.prefetchedRow
        let ahead = short ? Engine.pageAheadRows(length: j.D) : 0 // short rows are under a page
        // one fence per tile, not per row: a fence drains the write-combining buffers, and
        // short rows paid for it (65536x256 into an output 16 bytes into a line: 1.66 vs 1.10
        // ns/element aligned; docs/records/zen3-avx2/README.md)
        for r in first..<first + count {
            if ahead > 0 && r + ahead < j.rows {
                ts_prefetch(j.y + (r + ahead) * j.sy, j.D * 4)
                ts_prefetch(j.dy + (r + ahead) * j.sdy, j.D * 4)
            }
            let (hi, lo) = SoftmaxMath.split(k.grad_sum(j.y + r * j.sy, j.dy + r * j.sdy, j.D, j.log))
            k.grad_finish(j.y + r * j.sy, j.dy + r * j.sdy, j.dx + r * j.sdx, j.D, hi, lo, j.log, j.nt != 0 ? 3 : 0)
        }
        if j.nt != 0 { ts_store_fence() }
    }
}

/// A softmax backward along a non-last dim (slabs of `w` columns) or over rows split in chunks
/// of `chunk`, as raw tile bodies' context.
struct SoftmaxBackwardSplitJob {
    var table: KernelTable
    var y: UnsafePointer<Float>, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>
    var D: Int, inner: Int, w: Int, chunk: Int
    var sy: Int, sdy: Int, sdx: Int
    var log: Int32, nt: Int32
    /// Split rows: each chunk's sum, then each row's as two floats.
    var sums: UnsafeMutablePointer<Double>? = nil, rowSums: UnsafeMutablePointer<Float>? = nil
    /// Split rows: the group's first chunk and its chunk count (tile t is chunk firstChunk + t;
    /// with `lastFirst`, in pass 2 the group's t-th from its end).
    var firstChunk = 0, chunks = 0
    var lastFirst = false

    /// A slab of columns: all D rows summed per column, then the slab written.
    static let slab: RawTileBody = { context, first, count, scratch in
        let j = context!.assumingMemoryBound(to: SoftmaxBackwardSplitJob.self).pointee
        let k = j.table.kernels
        let perOuter = (j.inner + j.w - 1) / j.w
        for t in first..<first + count {
            let (o, sl) = t.quotientAndRemainder(dividingBy: perOuter)
            let j0 = sl * j.w, ww = min(j.w, j.inner - j0), base = o * j.D * j.inner + j0
            let sum = scratch!.assumingMemoryBound(to: Double.self)
            let hi = (scratch! + j.w * 8).assumingMemoryBound(to: Float.self), lo = hi + j.w
            k.cols_grad_sum(j.y + base, j.dy + base, j.inner, j.D, ww, j.log, sum)
            for c in 0..<ww { (hi[c], lo[c]) = SoftmaxMath.split(sum[c]) }
            k.cols_grad_finish(j.y + base, j.dy + base, j.dx + base, j.inner, j.D, ww, j.log, hi, lo)
        }
    }

    /// Split-row tile t: its row, the chunk's first element and its length.
    func span(ofChunk t: Int) -> (r: Int, lo: Int, n: Int) {
        let (r, c) = t.quotientAndRemainder(dividingBy: (D + chunk - 1) / chunk)
        return (r, c * chunk, min(chunk, D - c * chunk))
    }

    static let chunkSum: RawTileBody = { context, first, count, _ in
        let j = context!.assumingMemoryBound(to: SoftmaxBackwardSplitJob.self).pointee
        for u in first..<first + count {
            let t = j.firstChunk + u
            let (r, lo, n) = j.span(ofChunk: t)
            j.sums![t] = j.table.kernels.grad_sum(j.y + r * j.sy + lo, j.dy + r * j.sdy + lo, n, j.log)
        }
    }

    static let chunkFinish: RawTileBody = { context, first, count, _ in
        let j = context!.assumingMemoryBound(to: SoftmaxBackwardSplitJob.self).pointee
        for u in first..<first + count {
            let (r, lo, n) = j.span(ofChunk: j.firstChunk + (j.lastFirst ? j.chunks - 1 - u : u))
            j.table.kernels.grad_finish(j.y + r * j.sy + lo, j.dy + r * j.sdy + lo, j.dx + r * j.sdx + lo, n,
                                        j.rowSums![2 * r], j.rowSums![2 * r + 1], j.log, j.nt)
        }
    }
}
