import CTesseraKernels
import Foundation
import TesseraGraph
import TesseraKernels
import TesseraRuntime

// Strategy: softmax along a non-last dim, vectorised across contiguous columns, no transpose.
extension Engine {
    /// How a softmax along a non-last dim is split; which one is a function of the shape only,
    /// and the slab width (columns are independent) changes no bit either.
    enum StridedStrategy: Equatable {
        /// Columns of at most `columnChunk` rows, or a slice (D x inner) that the cache holds:
        /// one slab (all D rows of `width` columns) per tile, in L2 where it fits: max, exps from
        /// it (kept in the worker's scratch), their sum, the output.
        case slabs(width: Int)
        /// Longer columns, read in whole rows (or `block`-column segments of them) instead of
        /// short strided segments: per (chunk, block of columns) the statistics in one read
        /// (`cols_stats`); per column their combination; per tile of rows the output, which
        /// recomputes the exps.  x is read twice; memory streams as for a last-dim softmax
        /// (docs/records/zen3-avx2/README.md, session 10).
        case rows(block: Int)
    }

    /// Rows per chunk of a long column: 512, more for longer columns so that a column has at
    /// most 64 chunks (the statistics stay ~1 % of the tensor).  A function of the shape only:
    /// the combination order, and so every bit of the result, depends on nothing else.
    static func columnChunk(_ D: Int) -> Int { max(512, ((D + 63) / 64 + 7) & ~7) }

    /// Columns per tile of the rows strategy's first phase: 4 KiB row segments, long enough runs
    /// for the memory system; 1 KiB with a prologue, whose packed tile is the worker's scratch.
    static func rowsBlock(inner: Int, prologue: Bool) -> Int { min(inner, prologue ? 256 : 1024) }

    /// A slice of at most this many elements (1 MiB) takes slabs whatever its D: it stays in
    /// cache, where the rows strategy's second exp would cost more than the strided reads.
    static let slabSliceElements = 1 << 18

    static func stridedStrategy(outer: Int, D: Int, inner: Int, prologue: Bool, runtime: Runtime) -> StridedStrategy {
        guard D <= columnChunk(D) || D * inner <= slabSliceElements else {
            return .rows(block: rowsBlock(inner: inner, prologue: prologue))
        }
        // a slab in half of L2, at least 16 columns; narrower where that gives every worker a slab
        let fit = max(16, (runtime.cache.l2Bytes / 2 / max(D * 4, 1)) & ~15)
        let perWorker = ((outer * inner + runtime.threads - 1) / runtime.threads + 15) & ~15
        let small = runtime.runsInline(units: outer * D * inner, nsPerUnit: 0.5)
        return .slabs(width: min(inner, fit, small || outer >= runtime.threads ? fit : max(64, perWorker)))
    }

    /// Softmax along a non-last dim: [outer, D, inner], vectorised across the inner columns.
    static func softmaxColumns(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, outer: Int, D: Int, inner: Int,
                               log: Bool, prologue: [ElementwiseStep], runtime: Runtime, table: KernelTable) {
        let strategy = stridedStrategy(outer: outer, D: D, inner: inner, prologue: !prologue.isEmpty, runtime: runtime)
        withUnsafePointer(to: prologue) { pro in
            var job = ColumnsJob(table: table, x: x, y: y, outer: outer, D: D, inner: inner, log: log, prologue: pro)
            switch strategy {
            case .slabs(let w):
                job.w = w
                let plan = slabPlan(outer: outer, D: D, inner: inner, width: w, runtime)
                job.ntFlag = streams(runtime, bytes: outer * D * inner * 4, plan: plan) ? 1 : 0
                withUnsafePointer(to: &job) {
                    runtime.run(plan, scratchBytes: $0.pointee.slabScratchBytes, raw: ColumnsJob.slab, context: $0)
                }
            case .rows(let block):
                job.w = block
                job.ntFlag = streams(runtime, bytes: outer * D * inner * 4, inline: false) ? 1 : 0
                softmaxColumnsByRows(&job, runtime: runtime)
            }
        }
    }

    static func slabPlan(outer: Int, D: Int, inner: Int, width w: Int, _ runtime: Runtime) -> TilePlan {
        runtime.plan(units: outer * ((inner + w - 1) / w), bytesPerUnit: D * w * 4, nsPerUnit: Double(D * w) * 0.5,
                     unitsPerTile: 1)
    }

    /// The rows strategy's plans for `outers` outer indices.
    static func rowsPlans(D: Int, inner: Int, block: Int, outers: Int, _ runtime: Runtime)
        -> (stats: TilePlan, combine: TilePlan, output: TilePlan) {
        let chunk = columnChunk(D), chunks = (D + chunk - 1) / chunk
        let blocks = (inner + block - 1) / block
        let stats = runtime.plan(units: outers * chunks * blocks, bytesPerUnit: chunk * block * 4,
                                 nsPerUnit: Double(chunk * block) * 0.6, unitsPerTile: 1)
        let combine = runtime.plan(units: outers * inner, bytesPerUnit: chunks * 16, nsPerUnit: Double(chunks) * 15,
                                   unitsPerTile: max(64, inner / 4))
        let output = runtime.plan(units: outers * D, bytesPerUnit: inner * 4, nsPerUnit: Double(inner) * 0.4)
        return (stats, combine, output)
    }

    /// The rows strategy: groups of outer indices whose statistics fit half the kept workspace,
    /// each through the three phases.
    static func softmaxColumnsByRows(_ job: inout ColumnsJob, runtime: Runtime) {
        let (outer, inner, chunks) = (job.outer, job.inner, job.chunks)
        let perOuter = chunks * inner * 20 + inner * 12
        let group = max(1, min(outer, runtime.workspaceKeptBytes / 2 / max(perOuter, 1)))
        var layout = WorkspaceLayout()
        let rAt = layout.reserve(Float.self, group * chunks * inner)
        let mxAt = layout.reserve(Float.self, group * chunks * inner)
        let mnAt = layout.reserve(Float.self, group * chunks * inner)
        let sAt = layout.reserve(Double.self, group * chunks * inner)
        let cAt = layout.reserve(Float.self, group * 3 * inner)
        runtime.withWorkspace(bytes: layout.bytes) { ws in
            job.r = (ws + rAt).assumingMemoryBound(to: Float.self)
            job.mx = (ws + mxAt).assumingMemoryBound(to: Float.self)
            job.mn = (ws + mnAt).assumingMemoryBound(to: Float.self)
            job.s = (ws + sAt).assumingMemoryBound(to: Double.self)
            job.consts = (ws + cAt).assumingMemoryBound(to: Float.self)
            var o0 = 0
            while o0 < outer {
                job.o0 = o0
                job.g = min(group, outer - o0)
                let (stats, combine, output) = rowsPlans(D: job.D, inner: inner, block: job.w, outers: job.g, runtime)
                let scratch = job.hasPrologue ? job.chunk * job.w * 4 : 0
                withUnsafePointer(to: &job) { j in
                    runtime.run(stats, scratchBytes: scratch, raw: ColumnsJob.rowsStats, context: j)
                    runtime.run(combine, raw: ColumnsJob.rowsCombine, context: j)
                    runtime.run(output, raw: ColumnsJob.rowsOutput, context: j)
                }
                o0 += group
            }
        }
    }

    static func describeColumns(_ name: String, dim d: Int, outer: Int, D: Int, inner: Int, log: Bool, prologue: Bool,
                                runtime: Runtime) -> String {
        let head = "\(name) along dim \(d): \(outer) x [\(D) rows x \(inner) columns], vectorised across columns"
        switch stridedStrategy(outer: outer, D: D, inner: inner, prologue: prologue, runtime: runtime) {
        case .slabs(let w):
            return head + "; one slab of \(w) columns per tile: per column the max, the exps (kept in the worker's "
                + "scratch) and their sum, then the output\n" + slabPlan(outer: outer, D: D, inner: inner, width: w, runtime).description
        case .rows(let block):
            let plans = rowsPlans(D: D, inner: inner, block: block, outers: outer, runtime)
            return head + "; by rows: phase 1 per chunk of \(columnChunk(D)) rows x \(block) columns the statistics "
                + "(max, min, sum of exps) in one read, phase 2 per column their combination in chunk order, phase 3 per tile "
                + "of whole rows the output (\(log ? "x - offset" : "the exps recomputed"))\nphase 1: "
                + plans.stats.description + "phase 3: " + plans.output.description
        }
    }
}

/// A softmax along a non-last dim as raw tile bodies' context (see `Engine.softmaxColumns`).
struct ColumnsJob {
    var table: KernelTable
    var x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>
    var outer: Int, D: Int, inner: Int
    var log: Bool
    var prologue: UnsafePointer<[ElementwiseStep]>
    var ntFlag: Int32 = 0
    /// Slab width (slabs) or columns per phase-1 tile (rows).
    var w = 0
    /// The rows strategy's group of outer indices [o0, o0 + g) and its workspace: per (outer,
    /// chunk, column) the statistics, per (outer, column) three constants (combineColumnStats).
    var o0 = 0, g = 0
    var r: UnsafeMutablePointer<Float>? = nil, mx: UnsafeMutablePointer<Float>? = nil, mn: UnsafeMutablePointer<Float>? = nil
    var s: UnsafeMutablePointer<Double>? = nil, consts: UnsafeMutablePointer<Float>? = nil

    init(table: KernelTable, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, outer: Int, D: Int, inner: Int, log: Bool,
         prologue: UnsafePointer<[ElementwiseStep]>) {
        (self.table, self.x, self.y, self.outer, self.D, self.inner, self.log, self.prologue) =
            (table, x, y, outer, D, inner, log, prologue)
    }

    var chunk: Int { Engine.columnChunk(D) }
    var chunks: Int { (D + chunk - 1) / chunk }
    var hasPrologue: Bool { !prologue.pointee.isEmpty }

    /// Starts statistics: reference and max -inf, min +inf, sum 0.
    static func reset(_ mx: UnsafeMutablePointer<Float>, _ mn: UnsafeMutablePointer<Float>, _ s: UnsafeMutablePointer<Double>,
                      _ r: UnsafeMutablePointer<Float>?, _ n: Int) {
        mx.update(repeating: -.infinity, count: n)
        mn.update(repeating: .infinity, count: n)
        s.update(repeating: 0, count: n)
        r?.update(repeating: -.infinity, count: n)
    }

    /// `rows` rows of `ww` columns at `src` (rows `ss` apart) with the prologue applied, packed
    /// into `into` (rows `ww` apart); without a prologue, `src` itself.
    func source(_ src: UnsafePointer<Float>, _ ss: Int, rows: Int, _ ww: Int,
                into: UnsafeMutablePointer<Float>?) -> (UnsafePointer<Float>, Int) {
        guard hasPrologue, let into else { return (src, ss) }
        for d in 0..<rows { Engine.applySteps(prologue.pointee, table, x: src + d * ss, y: into + d * ww, count: ww) }
        return (UnsafePointer(into), ww)
    }

    // MARK: slabs

    /// A slab tile's scratch for `ww` columns: the slab (the prologue's output, then the exps),
    /// and per column max, min, sum and the three constants -- one layout for its size and use.
    func slabLayout(_ ww: Int) -> (bytes: Int, e: Int, mx: Int, mn: Int, s: Int, c: Int) {
        var layout = WorkspaceLayout()
        let e = layout.reserve(Float.self, D * ww)
        let mx = layout.reserve(Float.self, ww), mn = layout.reserve(Float.self, ww)
        let s = layout.reserve(Double.self, ww), c = layout.reserve(Float.self, 3 * ww)
        return (layout.bytes, e, mx, mn, s, c)
    }
    var slabScratchBytes: Int { slabLayout(w).bytes }

    static let slab: RawTileBody = { context, first, count, scratch in
        let job = context!.assumingMemoryBound(to: ColumnsJob.self)
        for t in first..<first + count { job.pointee.slab(t, scratch!) }
    }

    /// One slab (all D rows of `w` columns): the max, the exps from it (kept in the scratch
    /// slab) and their sum, then the output.
    func slab(_ tile: Int, _ scratch: UnsafeMutableRawPointer) {
        let k = table.kernels
        let perOuter = (inner + w - 1) / w
        let (o, sl) = tile.quotientAndRemainder(dividingBy: perOuter)
        let j0 = sl * w, ww = min(w, inner - j0)
        let base = o * D * inner + j0
        let at = slabLayout(ww)
        let e = (scratch + at.e).assumingMemoryBound(to: Float.self)
        let mx = (scratch + at.mx).assumingMemoryBound(to: Float.self), mn = (scratch + at.mn).assumingMemoryBound(to: Float.self)
        let s = (scratch + at.s).assumingMemoryBound(to: Double.self), c = (scratch + at.c).assumingMemoryBound(to: Float.self)
        let (src, ss) = source(x + base, inner, rows: D, ww, into: e)
        ColumnsJob.reset(mx, mn, s, nil, ww)
        k.cols_max(src, ss, D, ww, mx, mn)
        // softmax keeps the exps (over the packed prologue output, if any); log_softmax the sums
        k.cols_exp_sum(src, ss, D, ww, mx, mn, log ? nil : e, ww, s, log ? 0 : 1)
        SoftmaxMath.combineColumnStats(r: mx, s: s, mx: mx, mn: mn, chunks: 1, stride: ww, columns: 0..<ww, log: log, out: c)
        if log {
            k.cols_finish(src, ss, y + base, inner, D, ww, 1, c, c + ww, ntFlag)
        } else {
            k.cols_finish(e, ww, y + base, inner, D, ww, 0, c + ww, nil, ntFlag)
        }
    }

    // MARK: rows

    static let rowsStats: RawTileBody = { context, first, count, scratch in
        let job = context!.assumingMemoryBound(to: ColumnsJob.self)
        for t in first..<first + count { job.pointee.rowsStats(t, scratch) }
    }
    static let rowsCombine: RawTileBody = { context, first, count, _ in
        context!.assumingMemoryBound(to: ColumnsJob.self).pointee.rowsCombine(first..<first + count)
    }
    static let rowsOutput: RawTileBody = { context, first, count, _ in
        context!.assumingMemoryBound(to: ColumnsJob.self).pointee.rowsOutput(first..<first + count)
    }

    /// Phase 1, tile t of the group: (outer, chunk, block of columns), blocks varying fastest.
    func rowsStats(_ t: Int, _ scratch: UnsafeMutableRawPointer?) {
        let blocks = (inner + w - 1) / w
        let (oc, b) = t.quotientAndRemainder(dividingBy: blocks)
        let (og, c) = oc.quotientAndRemainder(dividingBy: chunks)
        let j0 = b * w, ww = min(w, inner - j0), r0 = c * chunk, rows = min(chunk, D - r0)
        let at = (og * chunks + c) * inner + j0
        let (r, mx, mn, s) = (self.r! + at, self.mx! + at, self.mn! + at, self.s! + at)
        ColumnsJob.reset(mx, mn, s, r, ww)
        let (src, ss) = source(x + ((o0 + og) * D + r0) * inner + j0, inner, rows: rows, ww,
                               into: scratch?.assumingMemoryBound(to: Float.self))
        table.kernels.cols_stats(src, ss, rows, ww, r, mx, mn, s, log ? 0 : 1)
    }

    /// Phase 2: columns (og * inner + j) in `range` of the group.
    func rowsCombine(_ range: Range<Int>) {
        var u = range.lowerBound
        while u < range.upperBound {
            let (og, j) = u.quotientAndRemainder(dividingBy: inner)
            let n = min(range.upperBound - u, inner - j)
            let at = og * chunks * inner, c = consts! + og * 3 * inner
            SoftmaxMath.combineColumnStats(r: r! + at, s: s! + at, mx: mx! + at, mn: mn! + at, chunks: chunks, stride: inner,
                                           columns: j..<j + n, log: log, out: c)
            // softmax: the max and min become cols_softmax_out's shift and near marks
            if !log { table.kernels.cols_out_prepare(c + j, c + 2 * inner + j, n) }
            u += n
        }
    }

    /// Phase 3: rows (og * D + d) in `range` of the group, whole rows of `inner` columns; with a
    /// prologue row by row (the prologue into y, then the output in place).
    func rowsOutput(_ range: Range<Int>) {
        let k = table.kernels
        var u = range.lowerBound
        while u < range.upperBound {
            let (og, d) = u.quotientAndRemainder(dividingBy: D)
            let n = min(range.upperBound - u, D - d)
            let at = ((o0 + og) * D + d) * inner
            let c = UnsafePointer(consts! + og * 3 * inner)
            for i in 0..<(hasPrologue ? n : 1) {
                let row = at + i * inner, rows = hasPrologue ? 1 : n
                let (src, ss) = source(x + row, inner, rows: 1, inner, into: hasPrologue ? y + row : nil)
                if log {
                    k.cols_finish(src, ss, y + row, inner, rows, inner, 1, c, c + inner, ntFlag)
                } else {
                    k.cols_softmax_out(src, ss, y + row, inner, rows, inner, c, c + 2 * inner, c + inner, ntFlag)
                }
            }
            u += n
        }
    }
}
