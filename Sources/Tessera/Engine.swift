import CTesseraKernels
import Foundation
import TesseraGraph
import TesseraKernels
import TesseraRuntime

/// Where the algorithm (stages) meets the schedule (tile plans): binds each stage to its
/// kernels and hands the runtime a tile body.  All inputs are validated before this point.
enum Engine {
    /// Elements per L1 block when a fused group runs op by op (numexpr's way): 4 KiB in,
    /// 4 KiB scratch -- both stay in L1 while every step runs over the block.
    static let blockElements = 1024

    static func streaming(outputBytes: Int) -> Bool { outputBytes >= Runtime.lastLevelCacheBytes }

    // MARK: element-wise

    /// y = step(x) over `count` elements; x == y allowed.  Small calls run the kernel
    /// directly on the caller's thread: no plan, no allocation.
    static func elementwise(_ step: ElementwiseStep, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                            count: Int, runtime: Runtime, table: KernelTable = .best) {
        guard count > 0 else { return }
        let nt = streaming(outputBytes: count * 4)
        if runtime.runsInline(units: count, nsPerUnit: step.nsPerElement) {
            step.apply(table, x, y, count, streaming: nt)
            return
        }
        let plan = elementwisePlan(nsPerElement: step.nsPerElement, count: count, runtime: runtime)
        let xs = SendablePointer(x), ys = SendablePointer(y)
        runtime.run(plan) { ctx in
            step.apply(table, xs[ctx.range.lowerBound], ys[ctx.range.lowerBound], ctx.range.count, streaming: nt)
        }
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
        let nt = streaming(outputBytes: count * 4)
        let segments = execution.segments(steps)
        let flat = segments.flatMap { $0 }.map(\.cStep)
        let bounds = segments.reduce(into: [0]) { $0.append($0.last! + $1.count) }
        let cost = steps.reduce(0) { $0 + $1.nsPerElement }
        flat.withUnsafeBufferPointer { fb in
            let cs = SendablePointer(fb.baseAddress!)
            if runtime.runsInline(units: count, nsPerUnit: cost) {
                withUnsafeTemporaryAllocation(of: Float.self, capacity: blockElements) { s in
                    runSegments(table, cs.base, bounds, x: x, y: y, count: count, scratch: s.baseAddress!, streaming: nt)
                }
                return
            }
            let plan = elementwisePlan(nsPerElement: cost, count: count, runtime: runtime)
            let xs = SendablePointer(x), ys = SendablePointer(y)
            runtime.run(plan, scratchBytes: segments.count > 1 ? blockElements * 4 : 0) { ctx in
                runSegments(table, cs.base, bounds, x: xs[ctx.range.lowerBound], y: ys[ctx.range.lowerBound],
                            count: ctx.range.count, scratch: ctx.scratch?.assumingMemoryBound(to: Float.self), streaming: nt)
            }
        }
    }

    /// One segment: all its steps per vector in registers, one pass.  Several: segment by
    /// segment over L1-sized blocks, x -> scratch -> ... -> y.
    @inline(__always)
    static func runSegments(_ table: KernelTable, _ steps: UnsafePointer<ts_step>, _ bounds: [Int], x: UnsafePointer<Float>,
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
                k.chain(src, dst, m, steps + bounds[g], Int32(bounds[g + 1] - bounds[g]), g == last && nt ? 1 : 0)
            }
            i += m
        }
    }

    /// Element tiles of `tileBytes` input; the cost decides inline vs parallel.
    static func elementwisePlan(nsPerElement: Double, count: Int, runtime: Runtime) -> TilePlan {
        runtime.plan(units: count, bytesPerUnit: 4, nsPerUnit: nsPerElement)
    }

    // MARK: softmax

    /// Softmax / log_softmax of a contiguous tensor along `dim` (already normalised),
    /// with an element-wise `prologue` folded into its first read.
    static func softmax(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, shape: [Int], dim: Int,
                        log: Bool, prologue: [ElementwiseStep] = [], runtime: Runtime, table: KernelTable = .best) {
        let count = shape.reduce(1, *)
        guard count > 0 else { return }
        let dims = shape.isEmpty ? [1] : shape
        let D = dims[dim]
        let outer = dims[..<dim].reduce(1, *)
        let inner = dims[(dim + 1)...].reduce(1, *)
        if inner == 1 {
            softmaxRows(x: x, y: y, rows: outer, length: D, log: log, prologue: prologue, runtime: runtime, table: table)
        } else {
            softmaxStrided(x: x, y: y, outer: outer, D: D, inner: inner, log: log, prologue: prologue,
                           runtime: runtime, table: table)
        }
    }

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

    /// Column-slab width and tile plan of a softmax along a non-last dim.
    static func stridedPlan(outer: Int, D: Int, inner: Int, runtime: Runtime) -> (width: Int, plan: TilePlan) {
        // Slabs of at least 64 columns: 256 contiguous bytes per row segment.  Measured on
        // dim 0 of 4096x4096 (1 worker): 16 columns 5.5 ns/element, 64 columns 1.6, 256
        // columns 3.3 (the slab outgrows L2).
        let w = min(inner, max(64, (runtime.tileBytes / max(D * 4, 1)) & ~15))
        let perOuter = (inner + w - 1) / w
        return (w, runtime.plan(units: outer * perOuter, bytesPerUnit: D * w * 4, nsPerUnit: Double(D * w) * 0.4, unitsPerTile: 1))
    }

    static func softmaxRows(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, rows: Int, length D: Int,
                            log: Bool, prologue: [ElementwiseStep], runtime: Runtime, table: KernelTable) {
        let nt = streaming(outputBytes: rows * D * 4)
        let xs = SendablePointer(x), ys = SendablePointer(y)
        let ntFlag: Int32 = nt ? 1 : 0
        switch rowStrategy(rows: rows, length: D, runtime: runtime) {
        case .rows:
            let plan = rowPlan(rows: rows, length: D, runtime: runtime)
            // scratch: the row's exps (and the prologue's output), one row per worker
            runtime.run(plan, scratchBytes: D * 4) { ctx in
                let k = table.kernels
                let s = ctx.scratch!.assumingMemoryBound(to: Float.self)
                for r in ctx.range {
                    var src = UnsafePointer(xs[r * D])
                    let out = ys[r * D]
                    if !prologue.isEmpty {
                        applySteps(prologue, table, x: src, y: s, count: D)
                        src = UnsafePointer(s)
                    }
                    let m = k.row_max(src, D)
                    // fetch the next row while this one's exps are computed
                    if r + 1 < rows { ts_prefetch(xs[(r + 1) * D], D * 4) }
                    if log {
                        let sum = k.exp_sum(src, D, m)
                        let (hi, lo) = split(Double(m) + Foundation.log(sum))
                        k.shift(src, out, D, hi, lo, ntFlag)
                    } else {
                        let sum = k.exp_store_sum(src, s, D, m, 0)
                        k.scale(s, out, D, Float(1 / sum), ntFlag)
                    }
                }
            }
        case .split(let chunk):
            let perRow = (D + chunk - 1) / chunk
            let plan = rowPlan(rows: rows, length: D, runtime: runtime)
            let partial = UnsafeMutablePointer<Double>.allocate(capacity: rows * perRow * 2)
            defer { partial.deallocate() }
            let ps = SendablePointer(partial)
            let scratchBytes = prologue.isEmpty ? 0 : chunk * 4
            // pass 1: per chunk, its max m and sum of exp(x - m); softmax also stores those
            // exps in the output (computing each exp once), log_softmax stores nothing
            runtime.run(plan, scratchBytes: scratchBytes) { ctx in
                let k = table.kernels
                let t = ctx.tile
                let (r, c) = t.quotientAndRemainder(dividingBy: perRow)
                let lo = c * chunk, n = min(chunk, D - lo)
                var src = UnsafePointer(xs[r * D + lo])
                if !prologue.isEmpty {
                    let s = ctx.scratch!.assumingMemoryBound(to: Float.self)
                    applySteps(prologue, table, x: src, y: s, count: n)
                    src = UnsafePointer(s)
                }
                let m = k.row_max(src, n)
                // a chunk with no finite maximum (all -inf / NaN) contributes 0 or NaN
                let shift = m == -.infinity ? 0 : m
                // the exps are read back after every chunk of every row: stream them when large
                let sum = log ? k.exp_sum(src, n, shift) : k.exp_store_sum(src, ys[r * D + lo], n, shift, ntFlag)
                ps[2 * t].pointee = Double(m)
                ps[2 * t + 1].pointee = sum
            }
            // combine in chunk order (fixed by the plan, not by who finished first)
            let factors = UnsafeMutablePointer<Float>.allocate(capacity: rows * perRow * 2)
            defer { factors.deallocate() }
            for r in 0..<rows {
                var M = -Double.infinity
                for c in 0..<perRow { M = max(M, partial[2 * (r * perRow + c)]) }
                var S = 0.0
                for c in 0..<perRow {
                    let m = partial[2 * (r * perRow + c)], s = partial[2 * (r * perRow + c) + 1]
                    S += m == -.infinity ? s : s * Foundation.exp(m - M)
                }
                if M == -.infinity { S = .nan } // a row of only -inf: NaN, as PyTorch
                for c in 0..<perRow {
                    let t = r * perRow + c, m = partial[2 * t]
                    // softmax: each chunk's stored exps are rescaled by exp(m - M) / S;
                    // log_softmax: one offset per row, M + log S, as hi + lo floats
                    if log {
                        (factors[2 * t], factors[2 * t + 1]) = split(M + Foundation.log(S))
                    } else {
                        factors[2 * t] = Float(m == -.infinity ? (S.isNaN ? .nan : 0) : Foundation.exp(m - M) / S)
                    }
                }
            }
            let fs = SendablePointer(factors)
            // pass 2: normalise
            runtime.run(plan, scratchBytes: log ? scratchBytes : 0) { ctx in
                let k = table.kernels
                let t = ctx.tile
                let (r, c) = t.quotientAndRemainder(dividingBy: perRow)
                let lo = c * chunk, n = min(chunk, D - lo)
                let out = ys[r * D + lo]
                if log {
                    var src = UnsafePointer(xs[r * D + lo])
                    if !prologue.isEmpty {
                        let s = ctx.scratch!.assumingMemoryBound(to: Float.self)
                        applySteps(prologue, table, x: src, y: s, count: n)
                        src = UnsafePointer(s)
                    }
                    k.shift(src, out, n, fs[2 * t].pointee, fs[2 * t + 1].pointee, ntFlag)
                } else {
                    k.scale(out, out, n, fs[2 * t].pointee, ntFlag)
                }
            }
        }
    }

    /// Rows per chunk along a non-last softmax dim.  A library constant: the combination
    /// order, and so every bit of the result, depends on the shape only.
    static let columnChunk = 512

    /// Softmax along a non-last dim: [outer, D, inner] in slabs of `w` contiguous columns,
    /// vectorised across the columns; no transpose.  Up to `columnChunk` rows: three passes
    /// over a cache-resident slab.  More: chunks of rows give per-column partial (max, sum)
    /// (softmax also stores the chunk's exps), combined in chunk order, then one rescaling pass.
    static func softmaxStrided(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, outer: Int, D: Int, inner: Int,
                               log: Bool, prologue: [ElementwiseStep], runtime: Runtime, table: KernelTable) {
        let (w, plan) = stridedPlan(outer: outer, D: D, inner: inner, runtime: runtime)
        let perOuter = (inner + w - 1) / w
        let xs = SendablePointer(x), ys = SendablePointer(y)
        // scratch: w floats (max) + w doubles (sums) + w floats (shifts)
        let scratchBytes = w * 16
        let chunks = (D + columnChunk - 1) / columnChunk
        /// Applies the prologue to rows [r0, r0 + rows) of a slab into y; returns the source to read.
        @Sendable func source(_ base: Int, _ r0: Int, _ rows: Int, _ ww: Int) -> UnsafePointer<Float> {
            if prologue.isEmpty { return UnsafePointer(xs[base]) }
            for d in r0..<r0 + rows { applySteps(prologue, table, x: xs[base + (d - r0) * inner], y: ys[base + (d - r0) * inner], count: ww) }
            return UnsafePointer(ys[base])
        }
        if chunks == 1 {
            runtime.run(plan, scratchBytes: scratchBytes) { ctx in
                let k = table.kernels
                let (o, c) = ctx.tile.quotientAndRemainder(dividingBy: perOuter)
                let j0 = c * w, ww = min(w, inner - j0)
                let base = o * D * inner + j0
                let mx = ctx.scratch!.assumingMemoryBound(to: Float.self)
                let sums = (ctx.scratch! + w * 4).assumingMemoryBound(to: Double.self)
                k.softmax_cols(source(base, 0, D, ww), ys[base], D, inner, ww, log ? 1 : 0, mx, sums)
            }
            return
        }
        let cplan = runtime.plan(units: outer * chunks * perOuter, bytesPerUnit: columnChunk * w * 4,
                                 nsPerUnit: Double(columnChunk * w) * 0.4, unitsPerTile: 1)
        let pm = UnsafeMutablePointer<Float>.allocate(capacity: outer * chunks * inner)
        let ps = UnsafeMutablePointer<Double>.allocate(capacity: outer * chunks * inner)
        defer { pm.deallocate(); ps.deallocate() }
        let pms = SendablePointer(pm), pss = SendablePointer(ps)
        // pass 1: per chunk of rows, per column: max and sum of exp(x - max); softmax stores the exps
        runtime.run(cplan, scratchBytes: scratchBytes) { ctx in
            let k = table.kernels
            // chunks vary fastest: workers taking neighbouring tiles read different rows, not
            // neighbouring 256-byte segments of the same rows
            let (os, c) = ctx.tile.quotientAndRemainder(dividingBy: chunks)
            let (o, sl) = os.quotientAndRemainder(dividingBy: perOuter)
            let j0 = sl * w, ww = min(w, inner - j0), r0 = c * columnChunk, rows = min(columnChunk, D - r0)
            let base = o * D * inner + r0 * inner + j0
            let mx = ctx.scratch!.assumingMemoryBound(to: Float.self)
            let sums = (ctx.scratch! + w * 4).assumingMemoryBound(to: Double.self)
            k.cols_partial(source(base, r0, rows, ww), ys[base], rows, inner, ww, log ? 0 : 1, mx, sums)
            let p = (o * chunks + c) * inner + j0
            pms[p].update(from: mx, count: ww)
            pss[p].update(from: sums, count: ww)
        }
        // combine per column in chunk order; factors overwrite the maxima (softmax: one per
        // chunk and column; log_softmax: hi and lo of the offset in chunks 0 and 1)
        let combine = runtime.plan(units: outer * inner, bytesPerUnit: chunks * 12, nsPerUnit: Double(chunks) * 20,
                                   unitsPerTile: max(64, inner / 4))
        runtime.run(combine) { ctx in
            for u in ctx.range {
                let (o, j) = u.quotientAndRemainder(dividingBy: inner)
                var M = -Double.infinity
                for c in 0..<chunks { M = max(M, Double(pms[(o * chunks + c) * inner + j].pointee)) }
                var S = 0.0
                for c in 0..<chunks {
                    let i = (o * chunks + c) * inner + j
                    let m = Double(pms[i].pointee)
                    S += m == -.infinity ? pss[i].pointee : pss[i].pointee * Foundation.exp(m - M)
                }
                if M == -.infinity { S = .nan } // a column of only -inf: NaN, as PyTorch
                if log {
                    let (hi, lo) = split(M + Foundation.log(S))
                    pms[o * chunks * inner + j].pointee = hi
                    pms[(o * chunks + 1) * inner + j].pointee = lo
                } else {
                    for c in 0..<chunks {
                        let i = (o * chunks + c) * inner + j
                        let m = Double(pms[i].pointee)
                        pms[i].pointee = Float(m == -.infinity ? (S.isNaN ? .nan : 0) : Foundation.exp(m - M) / S)
                    }
                }
            }
        }
        // pass 2: rescale the stored exps, or subtract the offset from the (prologue'd) input
        let readsY = !prologue.isEmpty
        runtime.run(cplan) { ctx in
            let k = table.kernels
            // chunks vary fastest: workers taking neighbouring tiles read different rows, not
            // neighbouring 256-byte segments of the same rows
            let (os, c) = ctx.tile.quotientAndRemainder(dividingBy: chunks)
            let (o, sl) = os.quotientAndRemainder(dividingBy: perOuter)
            let j0 = sl * w, ww = min(w, inner - j0), r0 = c * columnChunk, rows = min(columnChunk, D - r0)
            let base = o * D * inner + r0 * inner + j0
            if log {
                k.cols_finish(readsY ? UnsafePointer(ys[base]) : UnsafePointer(xs[base]), ys[base], rows, inner, ww, 1,
                              pms[o * chunks * inner + j0], pms[(o * chunks + 1) * inner + j0])
            } else {
                k.cols_finish(UnsafePointer(ys[base]), ys[base], rows, inner, ww, 0, pms[(o * chunks + c) * inner + j0], nil)
            }
        }
    }

    /// The schedule of one stage on `shape`, in words (Halide's print_loop_nest).
    static func describe(_ stage: Stage, shape: [Int], runtime: Runtime) -> String {
        let count = shape.reduce(1, *)
        switch stage {
        case .reshape(let s):
            return "reshape to \(s): no memory touched\n"
        case .elementwise(let steps):
            let plan = elementwisePlan(nsPerElement: steps.reduce(0) { $0 + $1.nsPerElement }, count: count, runtime: runtime)
            let segs = FusedExecution.hybrid.segments(steps)
            let how = steps.count == 1 ? "one kernel per tile"
                : segs.count == 1 ? "all steps per vector in registers, one pass per tile"
                : "\(segs.map { "[\($0.map(\.description).joined(separator: ", "))]" }.joined(separator: " then ")) over \(blockElements)-element L1 blocks per tile"
            return "elementwise: \(how), \(streaming(outputBytes: count * 4) ? "streaming" : "regular") stores\n" + plan.description
        case .softmax(let pro, let dim, let log):
            let dims = shape.isEmpty ? [1] : shape
            let d = (try? normalizedDim(dim, rank: shape.count)) ?? 0
            let D = dims[d], outer = dims[..<d].reduce(1, *), inner = dims[(d + 1)...].reduce(1, *)
            let name = log ? "log_softmax" : "softmax"
            let pre = pro.isEmpty ? "" : " (prologue applied in the first read)"
            if inner > 1 {
                let (w, plan) = stridedPlan(outer: outer, D: D, inner: inner, runtime: runtime)
                let how = D <= columnChunk ? "3 passes per slab"
                    : "chunks of \(columnChunk) rows: per-column (max, sum) per chunk, combined in chunk order, then a rescaling pass"
                return "\(name) along dim \(d)\(pre): \(outer) x [\(D) rows x \(inner) columns], slabs of \(w) columns, vectorised across columns, \(how)\n" + plan.description
            }
            switch rowStrategy(rows: outer, length: D, runtime: runtime) {
            case .rows:
                return "\(name) over \(outer) rows of \(D)\(pre): whole rows per tile, 3 passes over a cache-resident row\n" + rowPlan(rows: outer, length: D, runtime: runtime).description
            case .split(let chunk):
                return "\(name) over \(outer) rows of \(D)\(pre): rows split in chunks of \(chunk); pass 1 per-chunk (max, sum), combined in chunk order; pass 2 normalises\n" + rowPlan(rows: outer, length: D, runtime: runtime).description
            }
        }
    }

    /// A double as the float nearest it plus the float nearest the rest.
    static func split(_ c: Double) -> (Float, Float) {
        let hi = Float(c)
        return (hi, c.isFinite ? Float(c - Double(hi)) : 0)
    }

    /// All steps over one contiguous range, first x -> y then in place.
    @inline(__always)
    static func applySteps(_ steps: [ElementwiseStep], _ table: KernelTable, x: UnsafePointer<Float>,
                           y: UnsafeMutablePointer<Float>, count: Int) {
        steps[0].apply(table, x, y, count, streaming: false)
        for s in steps.dropFirst() { s.apply(table, y, y, count, streaming: false) }
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
