import CTesseraKernels
import Foundation
import Synchronization
import TesseraGraph
import TesseraKernels
import TesseraRuntime

/// Where the algorithm (stages) meets the schedule (tile plans): binds each stage to its
/// kernels and hands the runtime a tile body.  All inputs are validated before this point.
enum Engine {
    /// Elements per L1 block when a fused group runs op by op (numexpr's way): 4 KiB in,
    /// 4 KiB scratch -- both stay in L1 while every step runs over the block.
    static let blockElements = 1024

    /// Whether `bytes` of output written under `plan` get streaming stores (see CacheModel).
    static func streams(_ runtime: Runtime, bytes: Int, plan: TilePlan) -> Bool {
        runtime.streams(outputBytes: bytes, workers: plan.inline ? 1 : plan.workers)
    }

    /// The same for a call that has no plan yet: one worker when it runs inline.
    static func streams(_ runtime: Runtime, bytes: Int, inline: Bool) -> Bool {
        runtime.streams(outputBytes: bytes, workers: inline ? 1 : runtime.threads)
    }

    // MARK: element-wise

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
        let segments = execution.segments(steps)
        let flat = segments.flatMap { $0 }.map(\.cStep)
        let bounds = segments.reduce(into: [0]) { $0.append($0.last! + $1.count) }
        let cost = steps.reduce(0) { $0 + $1.nsPerElement }
        let inline = runtime.runsInline(units: count, nsPerUnit: cost)
        let nt = streams(runtime, bytes: count * 4, inline: inline)
        flat.withUnsafeBufferPointer { fb in
            let cs = SendablePointer(fb.baseAddress!)
            if inline {
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

    /// Rows per group of split rows whose exps stay in a quarter of the LLC, or nil when one
    /// row is larger than that.
    static func splitGroupRows(length D: Int, cache: CacheModel) -> Int? {
        let rowBytes = D * 4, budget = cache.llcBytes / 4
        return rowBytes <= budget ? max(1, budget / rowBytes) : nil
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

    /// Combines per-chunk column partials in chunk order.  Column j's partials of chunk c are
    /// at `m[c * stride + j]` (max) and `s[c * stride + j]` (sum of exp(x - shift)).  Softmax:
    /// each chunk's factor exp(m - M) / S replaces its max; log_softmax: the offset M + log S
    /// as hi + lo floats replaces the maxima of chunks 0 and 1 (m needs two rows).  The sums
    /// are consumed: s keeps each chunk's exp(m - M) afterwards.
    static func combineColumns(m: UnsafeMutablePointer<Float>, s: UnsafeMutablePointer<Double>, chunks: Int, stride: Int,
                               columns: Range<Int>, log: Bool) {
        if chunks == 1 {
            // one chunk (short columns: this is per element work there): exp(m - M) = 1, and
            // the factor 1 / S, bit for bit what the general path gives
            for j in columns {
                let M = Double(m[j])
                let S = M == -.infinity ? .nan : s[j] // a column of only -inf: NaN, as PyTorch
                if log {
                    (m[j], m[stride + j]) = split(M + Foundation.log(S))
                } else {
                    m[j] = Float(S.isNaN ? .nan : 1 / S)
                    s[j] = M == -.infinity ? 0 : 1
                }
            }
            return
        }
        for j in columns {
            var M = -Double.infinity
            for c in 0..<chunks { M = max(M, Double(m[c * stride + j])) }
            var S = 0.0
            for c in 0..<chunks {
                let mc = Double(m[c * stride + j])
                // a chunk with no finite max has shift 0: its sum (0 or NaN) adds as it is
                let scale = mc == -.infinity ? 1 : Foundation.exp(mc - M)
                S += s[c * stride + j] * scale
                s[c * stride + j] = mc == -.infinity ? 0 : scale
            }
            if M == -.infinity { S = .nan } // a column of only -inf: NaN, as PyTorch
            if log {
                (m[j], m[stride + j]) = split(M + Foundation.log(S))
            } else {
                for c in 0..<chunks {
                    m[c * stride + j] = Float(S.isNaN ? .nan : s[c * stride + j] / S)
                }
            }
        }
    }

    static func softmaxRows(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, rows: Int, length D: Int,
                            log: Bool, prologue: [ElementwiseStep], runtime: Runtime, table: KernelTable) {
        let rowsPlan = rowPlan(rows: rows, length: D, runtime: runtime)
        let nt = streams(runtime, bytes: rows * D * 4, plan: rowsPlan)
        let xs = SendablePointer(x), ys = SendablePointer(y)
        let ntFlag: Int32 = nt ? 1 : 0
        switch rowStrategy(rows: rows, length: D, runtime: runtime) {
        case .rows:
            let plan = rowsPlan
            // Streaming rows go through a line carry: a tile's rows are contiguous in y, so the
            // line two rows share (every row of 256 floats in an output 16 bytes into a line)
            // is streamed once, whole, instead of stored normally by both (measurements:
            // docs/records/zen3-avx2/README.md), and a tile ends with one fence, not one per row.
            // scratch: the row's exps (and the prologue's output), one row per worker
            runtime.run(plan, scratchBytes: D * 4) { ctx in
                var carry = ts_line_carry()
                defer {
                    if nt {
                        ts_line_carry_flush(&carry)
                        ts_store_fence()
                    }
                }
                let k = table.kernels
                let s = ctx.scratch!.assumingMemoryBound(to: Float.self)
                /// y's row r = src * a (softmax) or (src - a) - b (log_softmax)
                func store(_ src: UnsafePointer<Float>, row r: Int, _ a: Float, _ b: Float) {
                    if nt {
                        k.rows_store(src, ys[r * D], D, a, b, log ? 1 : 0, &carry)
                    } else if log {
                        k.shift(src, ys[r * D], D, a, b, 0)
                    } else {
                        k.scale(src, ys[r * D], D, a, 0)
                    }
                }
                if prologue.isEmpty {
                    // each row's exp pass also takes the next row's max (its loads overlap the
                    // exps): no separate max pass waiting on memory after the first row
                    var m = k.row_max(xs[ctx.range.lowerBound * D], D)
                    for r in ctx.range {
                        let src = UnsafePointer(xs[r * D])
                        let next: UnsafePointer<Float>? = r + 1 < ctx.range.upperBound ? UnsafePointer(xs[(r + 1) * D]) : nil
                        var nextMax: Float = 0
                        if log {
                            let sum = k.exp_sum_peek(src, nil, D, m, next, &nextMax)
                            let (hi, lo) = split(Double(m) + Foundation.log(sum))
                            store(src, row: r, hi, lo)
                        } else {
                            let sum = k.exp_sum_peek(src, s, D, m, next, &nextMax)
                            store(s, row: r, Float(1 / sum), 0)
                        }
                        m = nextMax
                    }
                    return
                }
                // with a prologue: the row goes through it into the scratch row first
                for r in ctx.range {
                    applySteps(prologue, table, x: UnsafePointer(xs[r * D]), y: s, count: D)
                    let src = UnsafePointer(s)
                    let m = k.row_max(src, D)
                    // fetch the next row while this one's exps are computed
                    if r + 1 < rows { ts_prefetch(xs[(r + 1) * D], D * 4) }
                    if log {
                        let sum = k.exp_sum(src, D, m)
                        let (hi, lo) = split(Double(m) + Foundation.log(sum))
                        store(src, row: r, hi, lo)
                    } else {
                        let sum = k.exp_store_sum(src, s, D, m, 0)
                        store(s, row: r, Float(1 / sum), 0)
                    }
                }
            }
        case .split(let chunk):
            let perRow = (D + chunk - 1) / chunk
            // chunk c of row r: its max at maxima[c * rows + r], its sum at sums[c * rows + r]
            // (chunk-major, as combineColumns takes them: each row reduces like a column)
            let maxima = UnsafeMutablePointer<Float>.allocate(capacity: rows * perRow)
            let sums = UnsafeMutablePointer<Double>.allocate(capacity: rows * perRow)
            defer { maxima.deallocate(); sums.deallocate() }
            let pm = SendablePointer(maxima), ps = SendablePointer(sums)
            let scratchBytes = prologue.isEmpty ? 0 : chunk * 4
            // Softmax keeps each chunk's exps for pass 2.  Where a group of rows fits in a
            // quarter of the LLC, the exps go to a cache-resident scratch buffer and pass 2
            // reads them from there: y is written once (streaming), never read.  Longer rows
            // stream their exps into y and pass 2 rescales them there.
            // (log_softmax keeps nothing, but its pass 2 rereads x: grouped, from L3)
            let cached = splitGroupRows(length: D, cache: runtime.cache)
            let grouped = cached != nil
            let groupRows = cached ?? rows
            let groups = (rows + groupRows - 1) / groupRows
            // two groups' exps: one being written by pass 1 while pass 2 reads the other
            let slot = min(rows, groupRows) * D
            let keep: UnsafeMutablePointer<Float>? = grouped && !log ? .allocate(capacity: slot * min(groups, 2)) : nil
            defer { keep?.deallocate() }
            let ks = keep.map { SendablePointer($0) }
            /// Where chunk `t`'s exps are kept (group g's slot), or nil (in y).
            @Sendable func kept(_ t: Int, _ g: Int) -> UnsafeMutablePointer<Float>? {
                ks.map { $0[(g % 2) * slot + (t - g * groupRows * perRow) / perRow * D + t % perRow * chunk] }
            }
            // pass 1 of chunk t: its max m and sum of exp(x - m); softmax also stores those exps
            // (computing each exp once), log_softmax stores nothing
            // `next`: the chunk this worker expects to take next; its max is then taken during
            // this chunk's exps (as the rows path does) and kept in `peek` for that call
            @Sendable func pass1(_ t: Int, _ g: Int, _ scratch: UnsafeMutableRawPointer?, next: Int?, peek: inout Peek) {
                let k = table.kernels
                let (r, c) = t.quotientAndRemainder(dividingBy: perRow)
                let lo = c * chunk, n = min(chunk, D - lo)
                var src = UnsafePointer(xs[r * D + lo])
                if !prologue.isEmpty {
                    let s = scratch!.assumingMemoryBound(to: Float.self)
                    applySteps(prologue, table, x: src, y: s, count: n)
                    src = UnsafePointer(s)
                }
                let m = peek.chunk == t ? peek.max : k.row_max(src, n)
                peek.chunk = -1
                // a chunk with no finite maximum (all -inf / NaN) contributes 0 or NaN
                let shift = m == -.infinity ? 0 : m
                var ahead: UnsafePointer<Float>?
                if let nx = next, prologue.isEmpty, log || ks != nil {
                    let (nr, nc) = nx.quotientAndRemainder(dividingBy: perRow)
                    if min(chunk, D - nc * chunk) == n { ahead = UnsafePointer(xs[nr * D + nc * chunk]) }
                }
                let sum: Double
                if let ahead {
                    var nm: Float = 0
                    sum = k.exp_sum_peek(src, log ? nil : kept(t, g), n, shift, ahead, &nm)
                    peek = Peek(chunk: next!, max: nm)
                } else {
                    sum = log ? k.exp_sum(src, n, shift)
                        : k.exp_store_sum(src, kept(t, g) ?? ys[r * D + lo], n, shift, ks == nil ? ntFlag : 0)
                }
                pm[c * rows + r].pointee = m
                ps[c * rows + r].pointee = sum
            }
            // pass 2 of chunk t: normalise
            @Sendable func pass2(_ t: Int, _ g: Int, _ scratch: UnsafeMutableRawPointer?) {
                let k = table.kernels
                let (r, c) = t.quotientAndRemainder(dividingBy: perRow)
                let lo = c * chunk, n = min(chunk, D - lo)
                let out = ys[r * D + lo]
                if log {
                    var src = UnsafePointer(xs[r * D + lo])
                    if !prologue.isEmpty {
                        let s = scratch!.assumingMemoryBound(to: Float.self)
                        applySteps(prologue, table, x: src, y: s, count: n)
                        src = UnsafePointer(s)
                    }
                    k.shift(src, out, n, pm[r].pointee, pm[rows + r].pointee, ntFlag)
                } else {
                    k.scale(kept(t, g).map { UnsafePointer($0) } ?? UnsafePointer(out), out, n, pm[c * rows + r].pointee, ntFlag)
                }
            }
            // combine group g's rows in chunk order (fixed by the plan, not by who finished first):
            // softmax's factors replace the maxima; log_softmax's offset goes to rows 0 and 1
            @Sendable func combine(_ g: Int) {
                combineColumns(m: pm.base, s: ps.base, chunks: perRow, stride: rows,
                               columns: g * groupRows..<min(rows, (g + 1) * groupRows), log: log)
            }
            // Step s runs pass 1 of group s and pass 2 of group s - 1, their tiles alternating: the
            // exps (compute-bound) and the streaming output (memory-bound) overlap on every
            // worker.  All steps run in one parallel call (one wake-up of the workers, not one
            // per step): tiles are claimed in step order; a tile waits until its step is open,
            // and the worker that finishes a step's last tile combines that step's group and
            // opens the next.  Waiting only ever happens behind tiles already claimed by running
            // workers, so a call whose iterations all run on one thread still completes.
            /// Chunks of group g (0 outside the groups).
            @Sendable func groupChunks(_ g: Int) -> Int {
                g >= 0 && g < groups ? (min(rows, (g + 1) * groupRows) - g * groupRows) * perRow : 0
            }
            /// Step s's pass-1 tiles (group s) and pass-2 tiles (group s - 1).
            @Sendable func sizes(_ step: Int) -> (n1: Int, n2: Int) { (groupChunks(step), groupChunks(step - 1)) }
            var cum = [0]
            for step in 0...groups { cum.append(cum[step] + sizes(step).n1 + sizes(step).n2) }
            let bounds = cum
            // Each step's chunk positions k (the k-th chunk of its group) are split into one
            // contiguous block per core; block b holds pass 1 of positions k in step s and their
            // pass 2 in step s + 1, so a worker that keeps to its CPU's block reads back the
            // exps it wrote itself (on a host whose cores do not share a cache, another core's
            // exps cost a cross-cache transfer; docs/records/zen3-avx2/tile-affinity.md).  Idle workers help with
            // the other blocks of the same step.
            let blocks = max(1, min(runtime.threads, Runtime.activeCores))
            let gate = StepGate(steps: groups + 1, blocks: blocks)
            /// Chunk positions of block b in a step with n1 pass-1 and n2 pass-2 tiles.
            @Sendable func positions(_ b: Int, _ n1: Int, _ n2: Int) -> Range<Int> {
                let K = max(n1, n2)
                return K * b / blocks..<K * (b + 1) / blocks
            }
            /// Tiles in block b: per position, pass 1 (if k < n1) and pass 2 (if k < n2).
            @Sendable func tileCount(_ b: Int, _ n1: Int, _ n2: Int) -> Int {
                let r = positions(b, n1, n2)
                return max(0, min(r.upperBound, n1) - r.lowerBound) + max(0, min(r.upperBound, n2) - r.lowerBound)
            }
            /// The i-th tile of block b: passes alternate over the positions both passes have
            /// (the exps, compute-bound, and the streaming output, memory-bound, overlap).
            @Sendable func tile(_ step: Int, _ b: Int, _ i: Int, _ scratch: UnsafeMutableRawPointer?, _ peek: inout Peek) {
                let (n1, n2) = sizes(step)
                let r = positions(b, n1, n2)
                let both = max(0, min(r.upperBound, min(n1, n2)) - r.lowerBound)
                let t1 = step * groupRows * perRow, t2 = (step - 1) * groupRows * perRow
                let (k, first): (Int, Bool) = i < 2 * both ? (r.lowerBound + i / 2, i % 2 == 0)
                    : (r.lowerBound + both + i - 2 * both, n1 > n2)
                if first {
                    // the next position of this block, unless another worker takes it first
                    let next = k + 1 < min(r.upperBound, n1) ? t1 + k + 1 : nil
                    pass1(t1 + k, step, scratch, next: next, peek: &peek)
                } else {
                    pass2(t2 + k, step - 1, scratch)
                }
            }
            let total = bounds[groups + 1]
            let slots = min(runtime.threads, total)
            let plan = runtime.plan(units: slots, bytesPerUnit: chunk * 4, nsPerUnit: Double(total * chunk) * 0.4 / Double(slots),
                                    unitsPerTile: 1)
            runtime.run(plan, scratchBytes: scratchBytes) { ctx in
                // by CPU where there is a block per core (see TilePlan.blockCount), else by worker
                let cpu = Int(ts_current_cpu())
                let lane = (blocks == Runtime.activeCores && cpu >= 0 ? cpu : ctx.worker) % blocks
                var peek = Peek()
                for step in 0...groups {
                    let (n1, n2) = sizes(step)
                    for k in 0..<blocks {
                        let b = (lane + k) % blocks
                        let count = tileCount(b, n1, n2)
                        while true {
                            let i = gate.claim(step: step, block: b)
                            if i >= count { break }
                            gate.waitUntilOpen(step)
                            tile(step, b, i, ctx.scratch, &peek)
                            // tiles of step s + 1 wait for the opening, so the count reaches the
                            // end of step s only when every one of its tiles is done
                            if gate.done.add(1, ordering: .acquiringAndReleasing).newValue == bounds[step + 1] {
                                if step < groups { combine(step) }
                                gate.opened.store(step + 1, ordering: .releasing)
                            }
                        }
                    }
                }
            }
        }
    }

    /// Rows per chunk along a non-last softmax dim.  A library constant: the combination
    /// order, and so every bit of the result, depends on the shape only.
    static let columnChunk = 512

    /// Softmax along a non-last dim: [outer, D, inner] in slabs of `w` contiguous columns,
    /// vectorised across the columns; no transpose.  Each column is reduced in chunks of
    /// `columnChunk` rows (per-column max and sum of exps per chunk, softmax keeping the
    /// exps), the chunks combined in order, then one pass writes the output.
    static func softmaxStrided(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, outer: Int, D: Int, inner: Int,
                               log: Bool, prologue: [ElementwiseStep], runtime: Runtime, table: KernelTable) {
        let (strategy, plan) = stridedPlan(outer: outer, D: D, inner: inner, runtime: runtime)
        let w = strategy.width
        let perOuter = (inner + w - 1) / w
        let xs = SendablePointer(x), ys = SendablePointer(y)
        let chunks = (D + columnChunk - 1) / columnChunk
        let mRows = max(chunks, 2) // log_softmax's offset takes two rows of maxima
        let ntFlag: Int32 = streams(runtime, bytes: outer * D * inner * 4, plan: plan) ? 1 : 0
        switch strategy {
        case .slabs:
            // scratch: the slab packed contiguously (then its exps, for softmax), maxima, sums
            let eBytes = D * w * 4
            let mBytes = (mRows * w * 4 + 7) & ~7
            runtime.run(plan, scratchBytes: eBytes + mBytes + chunks * w * 8) { ctx in
                let k = table.kernels
                let (o, sl) = ctx.tile.quotientAndRemainder(dividingBy: perOuter)
                let j0 = sl * w, ww = min(w, inner - j0)
                let base = o * D * inner + j0
                let e = ctx.scratch!.assumingMemoryBound(to: Float.self)
                let pm = (ctx.scratch! + eBytes).assumingMemoryBound(to: Float.self)
                let ps = (ctx.scratch! + eBytes + mBytes).assumingMemoryBound(to: Double.self)
                let (src, srcStride) = packedSource(prologue, table, x: xs[base], stride: inner, rows: D, width: ww, into: e)
                k.cols_partial(src, srcStride, e, D, columnChunk, ww, log ? 0 : 1, pm, ps)
                combineColumns(m: pm, s: ps, chunks: chunks, stride: ww, columns: 0..<ww, log: log)
                for c in 0..<chunks {
                    let r0 = c * columnChunk, rows = min(columnChunk, D - r0)
                    // softmax: the chunk's exps times its factor; log_softmax: packed x minus the offset
                    k.cols_finish(e + r0 * ww, ww, ys[base + r0 * inner], inner, rows, ww, log ? 1 : 0,
                                  log ? pm : pm + c * ww, log ? pm + ww : nil, ntFlag)
                }
            }
        case .chunks:
            let pm = UnsafeMutablePointer<Float>.allocate(capacity: outer * mRows * inner)
            let ps = UnsafeMutablePointer<Double>.allocate(capacity: outer * chunks * inner)
            defer { pm.deallocate(); ps.deallocate() }
            let pms = SendablePointer(pm), pss = SendablePointer(ps)
            // pass 1: per chunk of rows, per column: max and sum of exp(x - max) over the packed
            // chunk; softmax copies the exps to the output, log_softmax with a prologue its output
            let eBytes = columnChunk * w * 4
            runtime.run(plan, scratchBytes: eBytes + w * 16) { ctx in
                let k = table.kernels
                // chunks vary fastest: workers taking neighbouring tiles read different rows, not
                // neighbouring 256-byte segments of the same rows
                let (os, c) = ctx.tile.quotientAndRemainder(dividingBy: chunks)
                let (o, sl) = os.quotientAndRemainder(dividingBy: perOuter)
                let j0 = sl * w, ww = min(w, inner - j0), r0 = c * columnChunk, rows = min(columnChunk, D - r0)
                let base = o * D * inner + r0 * inner + j0
                let e = ctx.scratch!.assumingMemoryBound(to: Float.self)
                let sums = (ctx.scratch! + eBytes).assumingMemoryBound(to: Double.self)
                let mx = (ctx.scratch! + eBytes + w * 8).assumingMemoryBound(to: Float.self)
                let ones = (ctx.scratch! + eBytes + w * 12).assumingMemoryBound(to: Float.self)
                ones.update(repeating: 1, count: ww)
                let (src, srcStride) = packedSource(prologue, table, x: xs[base], stride: inner, rows: rows, width: ww, into: e)
                // per-column partials: maxima in rows of `inner` (mRows per outer), sums likewise
                k.cols_partial(src, srcStride, e, rows, columnChunk, ww, log ? 0 : 1, mx, sums)
                pms[(o * mRows + c) * inner + j0].update(from: mx, count: ww)
                pss[(o * chunks + c) * inner + j0].update(from: sums, count: ww)
                if !log || !prologue.isEmpty {
                    k.cols_finish(e, ww, ys[base], inner, rows, ww, 0, ones, nil, ntFlag) // x * 1: an exact copy
                }
            }
            // the sums have `chunks` rows per outer, the maxima `mRows`: combine per outer
            let combine = runtime.plan(units: outer * inner, bytesPerUnit: chunks * 12, nsPerUnit: Double(chunks) * 20,
                                       unitsPerTile: max(64, inner / 4))
            runtime.run(combine) { ctx in
                var u = ctx.range.lowerBound
                while u < ctx.range.upperBound {
                    let (o, j) = u.quotientAndRemainder(dividingBy: inner)
                    let n = min(ctx.range.upperBound - u, inner - j)
                    combineColumns(m: pms[o * mRows * inner], s: pss[o * chunks * inner], chunks: chunks, stride: inner,
                                   columns: j..<j + n, log: log)
                    u += n
                }
            }
            // pass 2: rescale the stored exps, or subtract the offset from the (prologue'd) input
            let readsY = !prologue.isEmpty
            runtime.run(plan) { ctx in
                let k = table.kernels
                let (os, c) = ctx.tile.quotientAndRemainder(dividingBy: chunks)
                let (o, sl) = os.quotientAndRemainder(dividingBy: perOuter)
                let j0 = sl * w, ww = min(w, inner - j0), r0 = c * columnChunk, rows = min(columnChunk, D - r0)
                let base = o * D * inner + r0 * inner + j0
                if log {
                    k.cols_finish(readsY ? UnsafePointer(ys[base]) : UnsafePointer(xs[base]), inner, ys[base], inner, rows, ww, 1,
                                  pms[o * mRows * inner + j0], pms[(o * mRows + 1) * inner + j0], ntFlag)
                } else {
                    k.cols_finish(UnsafePointer(ys[base]), inner, ys[base], inner, rows, ww, 0,
                                  pms[(o * mRows + c) * inner + j0], nil, ntFlag)
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
            return "elementwise: \(how), \(streams(runtime, bytes: count * 4, plan: plan) ? "streaming" : "regular") stores\n" + plan.description
        case .softmax(let pro, let dim, let log):
            let dims = shape.isEmpty ? [1] : shape
            let d = (try? normalizedDim(dim, rank: shape.count)) ?? 0
            let D = dims[d], outer = dims[..<d].reduce(1, *), inner = dims[(d + 1)...].reduce(1, *)
            let name = log ? "log_softmax" : "softmax"
            let pre = pro.isEmpty ? "" : " (prologue applied in the first read)"
            if inner > 1 {
                let (strategy, plan) = stridedPlan(outer: outer, D: D, inner: inner, runtime: runtime)
                let w = strategy.width
                let reduce = "per-column (max, sum) per chunk of \(columnChunk) rows, combined in chunk order"
                let how: String
                switch strategy {
                case .slabs: how = "one slab per tile: \(reduce), exps kept in a per-worker scratch slab, one output pass"
                case .chunks: how = "chunks of slabs across workers: \(reduce), exps stored in the output, then a rescaling pass"
                }
                return "\(name) along dim \(d)\(pre): \(outer) x [\(D) rows x \(inner) columns], slabs of \(w) columns, vectorised across columns, \(how)\n" + plan.description
            }
            switch rowStrategy(rows: outer, length: D, runtime: runtime) {
            case .rows:
                return "\(name) over \(outer) rows of \(D)\(pre): whole rows per tile, 3 passes over a cache-resident row (without a prologue, its max taken during the previous row's exps)\n" + rowPlan(rows: outer, length: D, runtime: runtime).description
            case .split(let chunk):
                let groups = splitGroupRows(length: D, cache: runtime.cache).map { "groups of \($0) rows (a quarter of the LLC), pass 1 of a group alternating with pass 2 of the previous one" }
                    ?? "one group (rows larger than a quarter of the LLC)"
                return "\(name) over \(outer) rows of \(D)\(pre): rows split in chunks of \(chunk); pass 1 per-chunk (max, sum), combined in chunk order; pass 2 normalises; \(groups), all in one parallel call\n" + rowPlan(rows: outer, length: D, runtime: runtime).description
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

/// A chunk's max taken ahead by the worker that expects to process it (-1: none).
struct Peek {
    var chunk = -1
    var max: Float = 0
}

/// Claims and step barriers for a call whose tiles run in dependent steps (see the split
/// softmax): `claim` hands out each (step, block)'s tiles, workers going through the steps in
/// order; `done` counts finished tiles, and `opened` is the highest step whose tiles may run.
final class StepGate: Sendable {
    let done = Atomic<Int>(0), opened = Atomic<Int>(0)
    /// Claim counters, one per (step, block); padded so that two blocks' counters, hammered by
    /// different cores, do not share a cache line.
    private final class Claim: Sendable {
        let next = Atomic<Int>(0)
        let pad: (Int, Int, Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0, 0, 0)
    }
    private let claims: [[Claim]]

    init(steps: Int, blocks: Int) {
        claims = (0..<steps).map { _ in (0..<blocks).map { _ in Claim() } }
    }

    /// The next unclaimed index of block `block` in step `step` (may exceed its tile count).
    func claim(step: Int, block: Int) -> Int {
        claims[step][block].next.wrappingAdd(1, ordering: .relaxed).oldValue
    }

    func waitUntilOpen(_ step: Int) {
        var spins = 0
        while opened.load(ordering: .acquiring) < step {
            ts_cpu_relax()
            spins += 1
            // more threads than cores: let the one finishing the step run
            if spins & 1023 == 0 { sched_yield() }
        }
    }
}
