import CTesseraKernels
import Foundation
import TesseraGraph
import TesseraKernels
import TesseraRuntime

// Strategy: a last-dim softmax, whole rows per tile (rows up to `splitChunk`).
extension Engine {
    /// How a last-dim softmax is split; a pure function of shape and runtime (testable).
    enum RowStrategy: Equatable {
        /// whole rows per tile, three passes over a cache-resident row
        case rows(rowsPerTile: Int)
        /// rows split in chunks across workers; per-chunk (max, sum) combined in chunk order
        case split(chunk: Int)
    }

    /// Rows longer than this are split into chunks of `splitChunk`.  Both are constants of
    /// the library, not of the runtime: the reduction order -- and so every bit of the
    /// result -- depends only on the shape, never on thread count or tile size.
    static let splitChunk = 16384

    static func rowStrategy(rows: Int, length: Int, runtime: Runtime) -> RowStrategy {
        if length > splitChunk { return .split(chunk: splitChunk) }
        return .rows(rowsPerTile: max(1, runtime.tileBytes / max(length * 4, 1)))
    }

    /// The tile plan of a last-dim softmax: units are rows, or row chunks when split.
    static func rowPlan(rows: Int, length D: Int, runtime: Runtime) -> TilePlan {
        switch rowStrategy(rows: rows, length: D, runtime: runtime) {
        case .rows(let rowsPerTile):
            return runtime.plan(units: rows, bytesPerUnit: D * 4, nsPerUnit: Double(D) * 0.4, unitsPerTile: rowsPerTile)
        case .split(let chunk):
            let perRow = (D + chunk - 1) / chunk
            return runtime.plan(units: rows * perRow, bytesPerUnit: chunk * 4, nsPerUnit: Double(chunk) * 0.4, unitsPerTile: 1)
        }
    }

    /// `xStride`, `yStride`: floats from one row to the next (default D: contiguous rows).
    static func softmaxRows(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, rows: Int, length D: Int,
                            log: Bool, prologue: [ElementwiseStep], runtime: Runtime, table: KernelTable,
                            xStride: Int? = nil, yStride: Int? = nil) {
        let sx = xStride ?? D, sy = yStride ?? D
        let plan = rowPlan(rows: rows, length: D, runtime: runtime)
        // the line carry needs a tile's rows contiguous in y: strided outputs store normally
        let nt = sy == D && streams(runtime, bytes: rows * D * 4, plan: plan)
        // Streaming rows go through a line carry: a tile's rows are contiguous in y, so the
        // line two rows share (every row of 256 floats in an output 16 bytes into a line)
        // is streamed once, whole, instead of stored normally by both (measurements:
        // docs/records/zen3-avx2/README.md), and a tile ends with one fence, not one per row.
        // scratch: two rows of exps per worker (SoftmaxRowsJob.scratchRow), or the prologue's output
        withUnsafePointer(to: prologue) { pro in
            var job = SoftmaxRowsJob(table: table, x: x, y: y, rows: rows, D: D, sx: sx, sy: sy, log: log, nt: nt, prologue: pro)
            withUnsafePointer(to: &job) {
                runtime.run(plan, scratchBytes: 2 * SoftmaxRowsJob.scratchRow(D) * 4, raw: SoftmaxRowsJob.body, context: $0)
            }
        }
    }

    /// Whether a softmax row (or chunk) of max m and min mn takes exp_store_sum's `near` path:
    /// every value within TS_SOFTMAX_NEAR of m.  m - mn rounds up where the exact difference
    /// is at least the bound (which is representable), so the test is never wrongly true;
    /// rows with NaN, infinities or only -inf fail it or produce NaN either way.
    @inline(__always) static func near(_ m: Float, _ mn: Float) -> Int32 { m - mn < TS_SOFTMAX_NEAR ? TS_EXP_NEAR : TS_EXP_EXACT }

    /// How log_softmax's rows form x - ref: rounded once (exact) against 0, else exactly.
    @inline(__always) static func againstZero(_ ref: Float) -> Int32 { ref == 0 ? TS_EXP_ROUNDED : TS_EXP_EXACT }

    /// What log_softmax's row of max m sums its exps against, `ref` (SoftmaxMath.logReference:
    /// 0 where |m| <= 40), and what its offset m + log(sum of exp(x - m)) is formed from: the
    /// offset is M + log(sum / em).  Against 0 the max's own term em = exp(m) (as the kernel
    /// computes it) is divided back out and M = m, so that the max counts as exactly 1 as with m
    /// as the reference: a row of one finite value (a scalar, a masked row) gives exactly 0.
    /// em is known before the row's exps, off its critical path (a correction after the sum
    /// left 65536x256 at 0.78 ns/element instead of 0.68; records, session 12); one log per row,
    /// not log(sum) - log(em) (records, session 13).
    @inline(__always)
    static func logBase(max m: Float, _ k: ts_kernels) -> (ref: Float, M: Float, em: Double) {
        let ref = SoftmaxMath.logReference(m)
        return ref != 0 || m == 0 ? (ref, ref, 1) : (ref, m, Double(k.exp_near_one(m, 0)))
    }

    /// How many rows of `D` floats ahead softmax's row loops prefetch: a page's worth (at least 2)
    /// for rows under a page, whose next page the hardware prefetcher -- it stops at 4 KiB pages,
    /// which a caller's buffer without huge pages has -- would not fetch in time (65536x256:
    /// 0.87-0.94x at 2 workers; docs/records/zen3-avx2, session 9); 0 for longer rows.
    static func pageAheadRows(length D: Int) -> Int { D * 4 < 4096 ? max(2, 4096 / (D * 4)) : 0 }

    static func describeRows(_ name: String, rows: Int, length D: Int, runtime: Runtime) -> String {
        "\(name) over \(rows) rows of \(D): whole rows per tile, 3 passes over a cache-resident row (without a prologue, its max taken during the previous row's exps)\n" + rowPlan(rows: rows, length: D, runtime: runtime).description
    }
}

/// A last-dim softmax's tiles of whole rows, as a raw tile body's context (no closure: a
/// repeated call allocates nothing; see KernelJob).
struct SoftmaxRowsJob {
    var table: KernelTable
    var x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>
    var rows: Int, D: Int, sx: Int, sy: Int
    var log: Bool, nt: Bool
    var prologue: UnsafePointer<[ElementwiseStep]>

    /// Floats per row of exps in the scratch, a whole number of lines: 16 more than the row, as a
    /// streamed row's exps start at its output's offset in a line.
    static func scratchRow(_ D: Int) -> Int { (D + 16 + 15) & ~15 }

    static let body: RawTileBody = { context, first, count, scratch in
        context!.assumingMemoryBound(to: SoftmaxRowsJob.self).pointee.tile(first..<first + count, scratch!)
    }

    /// y's row r = src * a (softmax) or (src - a) - b (log_softmax)
    @inline(__always)
    private func store(_ src: UnsafePointer<Float>, row r: Int, _ a: Float, _ b: Float, _ carry: inout ts_line_carry) {
        let k = table.kernels
        if nt {
            k.rows_store(src, y + r * sy, D, a, b, log ? 1 : 0, &carry)
        } else if log {
            k.shift(src, y + r * sy, D, a, b, 0)
        } else {
            k.scale(src, y + r * sy, D, a, 0)
        }
    }

    func tile(_ range: Range<Int>, _ scratch: UnsafeMutableRawPointer) {
        var carry = ts_line_carry()
        defer {
            if nt {
                ts_line_carry_flush(&carry)
                ts_store_fence()
            }
        }
        let k = table.kernels
        let s = scratch.assumingMemoryBound(to: Float.self)
        let prologue = self.prologue.pointee
        if prologue.isEmpty {
            // Each row's exp pass also takes the next row's max (its loads overlap the exps):
            // no separate max pass waiting on memory after the first row.  And each row's exp
            // pass runs before the previous row's store pass, so that the sum's log (or
            // reciprocal), ~15 ns of latency per row, overlaps the exps instead of stalling
            // the store pass (rows of 256 floats: docs/records/zen3-avx2, session 10).  Softmax
            // keeps two rows of exps for it, alternating halves of the scratch.
            var m = k.row_max(x + range.lowerBound * sx, D)
            var mn = log ? m : k.row_min(x + range.lowerBound * sx, D)
            // contiguous rows under a page also fetch the row a page ahead
            let ahead = sx == D ? Engine.pageAheadRows(length: D) : 0
            let half = SoftmaxRowsJob.scratchRow(D)
            // row r's exp pass: its sum, its exps in the scratch half r % 2 (softmax)
            // (M, em: log_softmax's offset is M + log(sum / em); see logBase)
            func expPass(_ r: Int) -> (sum: Double, e: UnsafeMutablePointer<Float>, M: Float, em: Double) {
                let src = x + r * sx
                if ahead > 0 && r + ahead < range.upperBound { ts_prefetch(x + (r + ahead) * sx, D * 4) }
                let next: UnsafePointer<Float>? = r + 1 < range.upperBound ? x + (r + 1) * sx : nil
                var nextMax: Float = 0, nextMin: Float = 0
                let sum: Double, e: UnsafeMutablePointer<Float>
                var (M, em) = (m, 1.0)
                if log {
                    // log_softmax keeps x - ref exact: its 4e-7 bound leaves no room for a
                    // rounding repeated alike over many equal values
                    let ref: Float
                    (ref, M, em) = Engine.logBase(max: m, k)
                    // (no min: log_softmax's rows have no near path to choose)
                    (sum, e) = (k.exp_sum_peek(src, nil, D, ref, Engine.againstZero(ref), next, &nextMax, nil), s)
                } else {
                    // the exps at y's offset in a line: the store pass's loads then align with
                    // its streamed lines (it took 2x as long with split loads), the exp pass's
                    // stores split instead: the whole row 0-4 % faster (docs/records/zen3-avx2)
                    e = s + (r % 2) * half + (nt ? (Int(bitPattern: y + r * sy) & 63) / 4 : 0)
                    sum = k.exp_sum_peek(src, e, D, m, Engine.near(m, mn), next, &nextMax, &nextMin)
                }
                defer { (m, mn) = (nextMax, nextMin) }
                return (sum, e, M, em)
            }
            var cur = expPass(range.lowerBound)
            for r in range {
                let following = r + 1 < range.upperBound ? expPass(r + 1) : cur
                if log {
                    let (hi, lo) = SoftmaxMath.offset(Double(cur.M), Foundation.log(cur.sum / cur.em))
                    store(x + r * sx, row: r, hi, lo, &carry)
                } else {
                    store(cur.e, row: r, Float(1 / cur.sum), 0, &carry)
                }
                cur = following
            }
            return
        }
        // with a prologue: the row goes through it into the scratch row first
        for r in range {
            Engine.applySteps(prologue, table, x: x + r * sx, y: s, count: D)
            let src = UnsafePointer(s)
            let m = k.row_max(src, D)
            // fetch the next row while this one's exps are computed
            if r + 1 < rows { ts_prefetch(x + (r + 1) * sx, D * 4) }
            if log {
                var unusedMax: Float = 0, unusedMin: Float = 0
                let (ref, M, em) = Engine.logBase(max: m, k)
                let sum = k.exp_sum_peek(src, nil, D, ref, Engine.againstZero(ref), nil, &unusedMax, &unusedMin)
                let (hi, lo) = SoftmaxMath.offset(Double(M), Foundation.log(sum / em))
                store(src, row: r, hi, lo, &carry)
            } else {
                let sum = k.exp_store_sum(src, s, D, m, 0, Engine.near(m, k.row_min(src, D)))
                store(s, row: r, Float(1 / sum), 0, &carry)
            }
        }
    }
}
