import CTesseraKernels
import Foundation
import TesseraGraph
import TesseraKernels
import TesseraRuntime

// Strategy: softmax along a non-last dim, slabs of contiguous columns vectorised across them.
extension Engine {
    /// How a softmax along a non-last dim is split.  Both ways give the same bits: each
    /// reduces a column in chunks of `columnChunk` rows with the same kernels and combines
    /// the chunks in order, so the choice may depend on the runtime.
    enum StridedStrategy: Equatable {
        /// one slab (all D rows, `width` columns) per tile; the exps stay in a per-worker
        /// scratch slab and the output is written once
        case slabs(width: Int)
        /// chunks of `columnChunk` rows of a slab per tile, across workers: for few slabs.
        /// The exps go through the output, which is then rescaled in place.
        case chunks(width: Int)

        var width: Int {
            switch self { case .slabs(let w), .chunks(let w): return w }
        }
    }

    /// A worker's scratch slab is at most this large: it must stay in the cache between
    /// the slab's first and last pass.
    static let slabScratchLimit = 2 << 20

    static func stridedStrategy(outer: Int, D: Int, inner: Int, runtime: Runtime) -> StridedStrategy {
        // Slabs of at least 64 columns: 256 contiguous bytes per row segment.  Measured on
        // dim 0 of 4096x4096 (1 worker, time / last-dim time, packed slabs): 64 columns
        // 1.3-1.5x, 128 columns 1.4-1.6x, 256 columns 1.7x (the chunks outgrow L2).
        let w = min(inner, max(64, (runtime.tileBytes / max(D * 4, 1)) & ~15))
        let slabs = outer * ((inner + w - 1) / w)
        if D <= columnChunk || (D * w * 4 <= slabScratchLimit && slabs >= runtime.threads) { return .slabs(width: w) }
        // chunk tiles are 512 rows whatever the width: wider row segments read memory in longer
        // runs (65536x256 dim 0, 1 worker: 64 columns 2.7 ns/element, 256 columns 1.9)
        return .chunks(width: min(inner, max(w, 256)))
    }

    /// The tile plan of a strided softmax: units are slabs, or chunks of slabs.
    static func stridedPlan(outer: Int, D: Int, inner: Int, runtime: Runtime) -> (strategy: StridedStrategy, plan: TilePlan) {
        let strategy = stridedStrategy(outer: outer, D: D, inner: inner, runtime: runtime)
        let w = strategy.width
        let slabs = outer * ((inner + w - 1) / w)
        switch strategy {
        case .slabs:
            return (strategy, runtime.plan(units: slabs, bytesPerUnit: D * w * 4, nsPerUnit: Double(D * w) * 0.4, unitsPerTile: 1))
        case .chunks:
            let chunks = (D + columnChunk - 1) / columnChunk
            return (strategy, runtime.plan(units: slabs * chunks, bytesPerUnit: columnChunk * w * 4,
                                           nsPerUnit: Double(columnChunk * w) * 0.4, unitsPerTile: 1))
        }
    }

    /// Rows per chunk along a non-last softmax dim.  A library constant: the combination
    /// order, and so every bit of the result, depends on the shape only.
    static let columnChunk = 512

    /// Softmax along a non-last dim: [outer, D, inner] in slabs of `w` contiguous columns,
    /// vectorised across the columns; no transpose.  Each column is reduced in chunks of
    /// `columnChunk` rows (per-column max and sum of exps per chunk, softmax keeping the
    /// exps), the chunks combined in order, then one pass writes the output.
    static func softmaxColumns(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, outer: Int, D: Int, inner: Int,
                               log: Bool, prologue: [ElementwiseStep], runtime: Runtime, table: KernelTable) {
        let (strategy, plan) = stridedPlan(outer: outer, D: D, inner: inner, runtime: runtime)
        let w = strategy.width
        let chunks = (D + columnChunk - 1) / columnChunk
        let ntFlag: Int32 = streams(runtime, bytes: outer * D * inner * 4, plan: plan) ? 1 : 0
        withUnsafePointer(to: prologue) { pro in
            var job = ColumnsJob(table: table, x: x, y: y, outer: outer, D: D, inner: inner, w: w, log: log,
                                 prologue: pro, ntFlag: ntFlag)
            switch strategy {
            case .slabs:
                // scratch: the slab packed contiguously (then its exps, for softmax), maxima, sums, minima
                let (eBytes, mBytes) = job.slabScratch
                withUnsafePointer(to: &job) {
                    runtime.run(plan, scratchBytes: eBytes + mBytes + chunks * w * 8 + w * 8, raw: ColumnsJob.slab, context: $0)
                }
            case .chunks:
                var layout = WorkspaceLayout()
                let pmAt = layout.reserve(Float.self, outer * job.mRows * inner)
                let psAt = layout.reserve(Double.self, outer * chunks * inner)
                runtime.withWorkspace(bytes: layout.bytes) { ws in
                    job.pm = (ws + pmAt).bindMemory(to: Float.self, capacity: outer * job.mRows * inner)
                    job.ps = (ws + psAt).bindMemory(to: Double.self, capacity: outer * chunks * inner)
                    withUnsafePointer(to: &job) { j in
                        // pass 1: per chunk of rows, per column: max and sum of exp(x - max) over the
                        // packed chunk; softmax copies the exps to the output, log_softmax with a
                        // prologue its output
                        let eBytes = (columnChunk * w * 4 + 63) & ~63 // doubles follow: aligned
                        runtime.run(plan, scratchBytes: eBytes + w * 24, raw: ColumnsJob.chunkPartial, context: j)
                        // the sums have `chunks` rows per outer, the maxima `mRows`: combine per outer
                        let combine = runtime.plan(units: outer * inner, bytesPerUnit: chunks * 12, nsPerUnit: Double(chunks) * 20,
                                                   unitsPerTile: max(64, inner / 4))
                        runtime.run(combine, raw: ColumnsJob.combine, context: j)
                        // pass 2: rescale the stored exps, or subtract the offset from the (prologue'd) input
                        runtime.run(plan, raw: ColumnsJob.chunkFinish, context: j)
                    }
                }
            }
        }
    }

    /// Where a column chunk's partial reads from: x itself (packed by the kernel), or the
    /// prologue's output written packed into `into` (the kernel then reads it in place).
    static func packedSource(_ prologue: [ElementwiseStep], _ table: KernelTable, x: UnsafeMutablePointer<Float>, stride: Int,
                             rows: Int, width: Int, into e: UnsafeMutablePointer<Float>) -> (UnsafePointer<Float>, Int) {
        if prologue.isEmpty { return (UnsafePointer(x), stride) }
        for d in 0..<rows { applySteps(prologue, table, x: x + d * stride, y: e + d * width, count: width) }
        return (UnsafePointer(e), width)
    }


    static func describeColumns(_ name: String, dim d: Int, outer: Int, D: Int, inner: Int, runtime: Runtime) -> String {
        let (strategy, plan) = stridedPlan(outer: outer, D: D, inner: inner, runtime: runtime)
        let w = strategy.width
        let reduce = "per-column (max, sum) per chunk of \(columnChunk) rows, combined in chunk order"
        let how: String
        switch strategy {
        case .slabs: how = "one slab per tile: \(reduce), exps kept in a per-worker scratch slab, one output pass"
        case .chunks: how = "chunks of slabs across workers: \(reduce), exps stored in the output, then a rescaling pass"
        }
        return "\(name) along dim \(d): \(outer) x [\(D) rows x \(inner) columns], slabs of \(w) columns, vectorised across columns, \(how)\n" + plan.description
    }
}

/// A softmax along a non-last dim as raw tile bodies' context: [outer, D, inner] in slabs of `w`
/// contiguous columns (see `Engine.softmaxColumns`).
struct ColumnsJob {
    var table: KernelTable
    var x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>
    var outer: Int, D: Int, inner: Int, w: Int
    var log: Bool
    var prologue: UnsafePointer<[ElementwiseStep]>
    var ntFlag: Int32
    /// The chunks strategy's per-chunk maxima (`mRows` rows of `inner` per outer) and sums
    /// (`chunks` rows per outer).
    var pm: UnsafeMutablePointer<Float>? = nil, ps: UnsafeMutablePointer<Double>? = nil

    var chunks: Int { (D + Engine.columnChunk - 1) / Engine.columnChunk }
    /// log_softmax's offset takes two rows of maxima.
    var mRows: Int { max(chunks, 2) }
    var perOuter: Int { (inner + w - 1) / w }
    /// A slab tile's scratch: the packed slab (or its exps) and the maxima; the sums follow.
    var slabScratch: (eBytes: Int, mBytes: Int) {
        ((D * w * 4 + 63) & ~63, // the sums after it are doubles: 8-byte (here 64-byte) aligned (UBSan)
         (mRows * w * 4 + 7) & ~7)
    }

    static let slab: RawTileBody = { context, first, count, scratch in
        let job = context!.assumingMemoryBound(to: ColumnsJob.self)
        for t in first..<first + count { job.pointee.slab(t, scratch!) }
    }
    static let chunkPartial: RawTileBody = { context, first, count, scratch in
        let job = context!.assumingMemoryBound(to: ColumnsJob.self)
        for t in first..<first + count { job.pointee.chunkPartial(t, scratch!) }
    }
    static let combine: RawTileBody = { context, first, count, _ in
        context!.assumingMemoryBound(to: ColumnsJob.self).pointee.combine(first..<first + count)
    }
    static let chunkFinish: RawTileBody = { context, first, count, _ in
        let job = context!.assumingMemoryBound(to: ColumnsJob.self)
        for t in first..<first + count { job.pointee.chunkFinish(t) }
    }

    /// One slab (all D rows of `w` columns): partials per chunk, combined, one output pass.
    func slab(_ tile: Int, _ scratch: UnsafeMutableRawPointer) {
        let k = table.kernels
        let chunks = self.chunks, columnChunk = Engine.columnChunk
        let (o, sl) = tile.quotientAndRemainder(dividingBy: perOuter)
        let j0 = sl * w, ww = min(w, inner - j0)
        let base = o * D * inner + j0
        let (eBytes, mBytes) = slabScratch
        let e = scratch.assumingMemoryBound(to: Float.self)
        let pm = (scratch + eBytes).assumingMemoryBound(to: Float.self)
        let ps = (scratch + eBytes + mBytes).assumingMemoryBound(to: Double.self)
        let mn = (scratch + eBytes + mBytes + chunks * w * 8).assumingMemoryBound(to: Float.self)
        let (src, srcStride) = Engine.packedSource(prologue.pointee, table, x: UnsafeMutablePointer(mutating: x + base),
                                                   stride: inner, rows: D, width: ww, into: e)
        k.cols_partial(src, srcStride, e, D, columnChunk, ww, log ? 0 : 1, pm, ps, log ? nil : mn)
        SoftmaxMath.combineColumns(m: pm, s: ps, chunks: chunks, stride: ww, columns: 0..<ww, log: log)
        for c in 0..<chunks {
            let r0 = c * columnChunk, rows = min(columnChunk, D - r0)
            // softmax: the chunk's exps times its factor; log_softmax: packed x minus the offset
            k.cols_finish(e + r0 * ww, ww, y + base + r0 * inner, inner, rows, ww, log ? 1 : 0,
                          log ? pm : pm + c * ww, log ? pm + ww : nil, ntFlag)
        }
    }

    /// Tile t of the chunks strategy: (outer, slab, chunk), chunks varying fastest -- workers
    /// taking neighbouring tiles read different rows, not neighbouring 256-byte segments of
    /// the same rows.
    func chunkTile(_ t: Int) -> (o: Int, c: Int, j0: Int, ww: Int, rows: Int, base: Int) {
        let (os, c) = t.quotientAndRemainder(dividingBy: chunks)
        let (o, sl) = os.quotientAndRemainder(dividingBy: perOuter)
        let j0 = sl * w, ww = min(w, inner - j0), r0 = c * Engine.columnChunk, rows = min(Engine.columnChunk, D - r0)
        return (o, c, j0, ww, rows, o * D * inner + r0 * inner + j0)
    }

    /// Pass 1 of a chunk: per-column max and sum of exps; softmax copies the exps to the
    /// output, log_softmax with a prologue its output.
    func chunkPartial(_ t: Int, _ scratch: UnsafeMutableRawPointer) {
        let k = table.kernels
        let (o, c, j0, ww, rows, base) = chunkTile(t)
        let eBytes = (Engine.columnChunk * w * 4 + 63) & ~63
        let e = scratch.assumingMemoryBound(to: Float.self)
        let sums = (scratch + eBytes).assumingMemoryBound(to: Double.self)
        let mx = (scratch + eBytes + w * 8).assumingMemoryBound(to: Float.self)
        let ones = (scratch + eBytes + w * 12).assumingMemoryBound(to: Float.self)
        let mn = (scratch + eBytes + w * 16).assumingMemoryBound(to: Float.self)
        ones.update(repeating: 1, count: ww)
        let prologue = self.prologue.pointee
        let (src, srcStride) = Engine.packedSource(prologue, table, x: UnsafeMutablePointer(mutating: x + base), stride: inner,
                                                   rows: rows, width: ww, into: e)
        // per-column partials: maxima in rows of `inner` (mRows per outer), sums likewise
        k.cols_partial(src, srcStride, e, rows, Engine.columnChunk, ww, log ? 0 : 1, mx, sums, log ? nil : mn)
        (pm! + (o * mRows + c) * inner + j0).update(from: mx, count: ww)
        (ps! + (o * chunks + c) * inner + j0).update(from: sums, count: ww)
        if !log || !prologue.isEmpty {
            k.cols_finish(e, ww, y + base, inner, rows, ww, 0, ones, nil, ntFlag) // x * 1: an exact copy
        }
    }

    /// Combines the chunks of columns (outer * inner + column) in `range`, in chunk order.
    func combine(_ range: Range<Int>) {
        var u = range.lowerBound
        while u < range.upperBound {
            let (o, j) = u.quotientAndRemainder(dividingBy: inner)
            let n = min(range.upperBound - u, inner - j)
            SoftmaxMath.combineColumns(m: pm! + o * mRows * inner, s: ps! + o * chunks * inner, chunks: chunks, stride: inner,
                                       columns: j..<j + n, log: log)
            u += n
        }
    }

    /// Pass 2 of a chunk: rescale the stored exps, or subtract the offset from the (prologue'd) input.
    func chunkFinish(_ t: Int) {
        let k = table.kernels
        let (o, c, j0, ww, rows, base) = chunkTile(t)
        if log {
            let readsY = !prologue.pointee.isEmpty
            k.cols_finish(readsY ? UnsafePointer(y + base) : x + base, inner, y + base, inner, rows, ww, 1,
                          pm! + o * mRows * inner + j0, pm! + (o * mRows + 1) * inner + j0, ntFlag)
        } else {
            k.cols_finish(UnsafePointer(y + base), inner, y + base, inner, rows, ww, 0, pm! + (o * mRows + c) * inner + j0, nil, ntFlag)
        }
    }
}
