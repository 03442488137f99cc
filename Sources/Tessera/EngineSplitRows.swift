import CTesseraKernels
import Foundation
import TesseraGraph
import TesseraKernels
import TesseraRuntime

// Strategy: a last-dim softmax of rows longer than `splitChunk`, split in chunks across workers.
// Pass 1 reduces each chunk to (max, sum of exps); the chunks of a row are combined in chunk
// order (fixed by the shape, so the bits do not depend on workers or tiles); pass 2 normalises.
extension Engine {
    /// Rows per group of split rows whose exps stay in a quarter of the LLC, or nil when one
    /// row is larger than that.
    static func splitGroupRows(length D: Int, cache: CacheModel) -> Int? {
        let rowBytes = D * 4, budget = cache.llcBytes / 4
        return rowBytes <= budget ? max(1, budget / rowBytes) : nil
    }


    static func softmaxSplitRows(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, rows: Int, length D: Int,
                                 chunk: Int, log: Bool, prologue: [ElementwiseStep], runtime: Runtime, table: KernelTable) {
        let nt = streams(runtime, bytes: rows * D * 4, plan: rowPlan(rows: rows, length: D, runtime: runtime))
        let perRow = (D + chunk - 1) / chunk
        // Softmax keeps each chunk's exps for pass 2.  Where a group of rows fits in a
        // quarter of the LLC, the exps go to a cache-resident scratch buffer and pass 2
        // reads them from there: y is written once (streaming), never read.  Longer rows
        // stream their exps into y and pass 2 rescales them there.
        // (log_softmax keeps nothing, but its pass 2 rereads x: grouped, from L3)
        let cached = splitGroupRows(length: D, cache: runtime.cache)
        let groupRows = cached ?? rows
        let groups = (rows + groupRows - 1) / groupRows
        let keeps = cached != nil && !log
        // two groups' exps: one being written by pass 1 while pass 2 reads the other
        let slot = min(rows, groupRows) * D
        let blocks = runtime.stepBlocks
        // chunk c of row r: its max at maxima[c * rows + r], its sum at sums[c * rows + r]
        // (chunk-major, as combineColumns takes them: each row reduces like a column)
        var layout = WorkspaceLayout()
        let maximaAt = layout.reserve(Float.self, rows * perRow)
        let sumsAt = layout.reserve(Double.self, rows * perRow)
        let tilesAt = layout.reserve(Int.self, (groups + 1) * blocks)
        let keepAt = layout.reserve(Float.self, keeps ? slot * min(groups, 2) : 0)
        withUnsafePointer(to: prologue) { pro in
            runtime.withWorkspace(bytes: layout.bytes) { ws in
                var job = SplitRowsJob(
                    table: table, x: x, y: y, rows: rows, D: D, chunk: chunk, perRow: perRow, log: log, prologue: pro,
                    ntFlag: nt ? 1 : 0, maxima: (ws + maximaAt).bindMemory(to: Float.self, capacity: rows * perRow),
                    sums: (ws + sumsAt).bindMemory(to: Double.self, capacity: rows * perRow),
                    keep: keeps ? (ws + keepAt).bindMemory(to: Float.self, capacity: slot * min(groups, 2)) : nil,
                    slot: slot, groupRows: groupRows, groups: groups, blocks: blocks)
                let tiles = (ws + tilesAt).bindMemory(to: Int.self, capacity: (groups + 1) * blocks)
                for step in 0...groups {
                    for b in 0..<blocks { tiles[step * blocks + b] = job.tileCount(step, b) }
                }
                withUnsafePointer(to: &job) {
                    runtime.runSteps(steps: groups + 1, tiles: tiles, bytesPerTile: chunk * 4, nsPerTile: Double(chunk) * 0.4,
                                     scratchBytes: prologue.isEmpty ? 0 : chunk * 4, stateBytes: MemoryLayout<Peek>.size,
                                     body: SplitRowsJob.body, finish: SplitRowsJob.finish, context: $0)
                }
            }
        }
    }

    static func describeSplitRows(_ name: String, rows: Int, length D: Int, chunk: Int, runtime: Runtime) -> String {
        let perRow = (D + chunk - 1) / chunk
        let groupRows = splitGroupRows(length: D, cache: runtime.cache)
        let groups = groupRows.map { (rows + $0 - 1) / $0 } ?? 1
        let how = groupRows.map { "groups of \($0) rows (a quarter of the LLC), pass 1 of a group alternating with pass 2 of the previous one" }
            ?? "one group (rows larger than a quarter of the LLC)"
        return "\(name) over \(rows) rows of \(D): rows split in chunks of \(chunk) (\(rows * perRow) chunks); pass 1 per-chunk (max, sum), combined in chunk order; pass 2 normalises; \(how)\n"
            + "  \(groups + 1) dependent steps in one parallel call, \(runtime.stepBlocks) blocks per step (one per core), \(runtime.threads) workers\n"
    }
}

/// A chunk's max taken ahead by the worker that expects to process it; kept in the worker's
/// state of a stepped call, which starts zeroed (`chunk` 0: none).
struct Peek {
    /// The chunk + 1, or 0.
    var chunk = 0
    var max: Float = 0, min: Float = 0
}

/// A split-row softmax as a stepped call's context: pass 1 reduces each chunk to (max, sum of
/// exps); the chunks of a row are combined in chunk order (fixed by the shape, so the bits do not
/// depend on workers or tiles); pass 2 normalises.  Step s runs pass 1 of group s and pass 2 of
/// group s - 1, their tiles alternating: the exps (compute-bound) and the streaming output
/// (memory-bound) overlap on every worker.  The worker that finishes a step's last tile
/// combines that step's group.
struct SplitRowsJob {
    var table: KernelTable
    var x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>
    var rows: Int, D: Int, chunk: Int, perRow: Int
    var log: Bool
    var prologue: UnsafePointer<[ElementwiseStep]>
    var ntFlag: Int32
    var maxima: UnsafeMutablePointer<Float>, sums: UnsafeMutablePointer<Double>
    /// Two groups' exps (softmax of rows in groups), or nil: the exps go through y.
    var keep: UnsafeMutablePointer<Float>?
    var slot: Int, groupRows: Int, groups: Int, blocks: Int

    static let body: RawStepBody = { context, step, block, index, state, scratch in
        context!.assumingMemoryBound(to: SplitRowsJob.self).pointee
            .tile(step: step, block: block, index: index, peek: &state!.assumingMemoryBound(to: Peek.self).pointee, scratch: scratch)
    }
    static let finish: RawStepFinish = { context, step in
        let job = context!.assumingMemoryBound(to: SplitRowsJob.self)
        if step < job.pointee.groups { job.pointee.combine(step) }
    }

    /// Where chunk `t`'s exps are kept (group g's slot), or nil (in y).
    func kept(_ t: Int, _ g: Int) -> UnsafeMutablePointer<Float>? {
        keep.map { $0 + (g % 2) * slot + (t - g * groupRows * perRow) / perRow * D + t % perRow * chunk }
    }

    /// Pass 1 of chunk t: its max m and sum of exp(x - m); softmax also stores those exps
    /// (computing each exp once), log_softmax stores nothing.  `next`: the chunk this worker
    /// expects to take next; its max is then taken during this chunk's exps (as the rows path
    /// does) and kept in `peek` for that call.
    func pass1(_ t: Int, _ g: Int, _ scratch: UnsafeMutableRawPointer?, next: Int?, peek: inout Peek) {
        let k = table.kernels
        let (r, c) = t.quotientAndRemainder(dividingBy: perRow)
        let lo = c * chunk, n = min(chunk, D - lo)
        let prologue = self.prologue.pointee
        var src = x + r * D + lo
        if !prologue.isEmpty {
            let s = scratch!.assumingMemoryBound(to: Float.self)
            Engine.applySteps(prologue, table, x: src, y: s, count: n)
            src = UnsafePointer(s)
        }
        let peeked = peek.chunk == t + 1
        let m = peeked ? peek.max : k.row_max(src, n)
        // a chunk with no finite maximum (all -inf / NaN) contributes 0 or NaN; log_softmax's
        // chunks of |max| <= 40 sum against 0 (x - 0 exact; see combine)
        let shift = m == -.infinity ? 0 : log ? SoftmaxMath.logReference(m) : m
        let near = log ? Engine.againstZero(shift) : Engine.near(m, peeked ? peek.min : k.row_min(src, n))
        peek.chunk = 0
        var ahead: UnsafePointer<Float>?
        if let nx = next, prologue.isEmpty, log || keep != nil {
            let (nr, nc) = nx.quotientAndRemainder(dividingBy: perRow)
            if min(chunk, D - nc * chunk) == n { ahead = x + nr * D + nc * chunk }
        }
        let sum: Double
        if let ahead {
            var nm: Float = 0, nmin: Float = 0
            sum = log ? k.exp_sum_peek(src, nil, n, shift, near, ahead, &nm, nil)
                : k.exp_sum_peek(src, kept(t, g), n, shift, near, ahead, &nm, &nmin)
            peek = Peek(chunk: next! + 1, max: nm, min: nmin)
        } else {
            var unusedMax: Float = 0, unusedMin: Float = 0
            sum = log ? k.exp_sum_peek(src, nil, n, shift, near, nil, &unusedMax, &unusedMin)
                : k.exp_store_sum(src, kept(t, g) ?? y + r * D + lo, n, shift, keep == nil ? ntFlag : 0, near)
        }
        maxima[c * rows + r] = m
        sums[c * rows + r] = sum
    }

    /// Pass 2 of chunk t: normalise.
    func pass2(_ t: Int, _ g: Int, _ scratch: UnsafeMutableRawPointer?) {
        let k = table.kernels
        let (r, c) = t.quotientAndRemainder(dividingBy: perRow)
        let lo = c * chunk, n = min(chunk, D - lo)
        let out = y + r * D + lo
        if log {
            var src = x + r * D + lo
            let prologue = self.prologue.pointee
            if !prologue.isEmpty {
                let s = scratch!.assumingMemoryBound(to: Float.self)
                Engine.applySteps(prologue, table, x: src, y: s, count: n)
                src = UnsafePointer(s)
            }
            k.shift(src, out, n, maxima[r], maxima[rows + r], ntFlag)
        } else {
            k.scale(kept(t, g).map { UnsafePointer($0) } ?? UnsafePointer(out), out, n, maxima[c * rows + r], ntFlag)
        }
    }

    /// Combines group g's rows in chunk order (fixed by the plan, not by who finished first):
    /// softmax's factors replace the maxima; log_softmax's offset goes to rows 0 and 1.
    func combine(_ g: Int) {
        SoftmaxMath.combineColumns(m: maxima, s: sums, chunks: perRow, stride: rows,
                                   columns: g * groupRows..<min(rows, (g + 1) * groupRows), log: log,
                                   expAgainstZero: log ? { [k = table.kernels] in k.exp_near_one($0, 0) } : nil)
    }

    /// Chunks of group g (0 outside the groups).
    func groupChunks(_ g: Int) -> Int {
        g >= 0 && g < groups ? (min(rows, (g + 1) * groupRows) - g * groupRows) * perRow : 0
    }
    /// Step s's pass-1 tiles (group s) and pass-2 tiles (group s - 1).
    func sizes(_ step: Int) -> (n1: Int, n2: Int) { (groupChunks(step), groupChunks(step - 1)) }

    // Each step's chunk positions k (the k-th chunk of its group) are split into one
    // contiguous block per core; block b holds pass 1 of positions k in step s and their
    // pass 2 in step s + 1, so a worker that keeps to its CPU's block reads back the exps it
    // wrote itself (on a host whose cores do not share a cache, another core's exps cost a
    // cross-cache transfer; docs/records/zen3-avx2/tile-affinity.md).
    /// Chunk positions of block b in a step with n1 pass-1 and n2 pass-2 tiles.
    func positions(_ b: Int, _ n1: Int, _ n2: Int) -> Range<Int> {
        let K = max(n1, n2)
        return K * b / blocks..<K * (b + 1) / blocks
    }
    /// Tiles in block b of a step: per position, pass 1 (if k < n1) and pass 2 (if k < n2).
    func tileCount(_ step: Int, _ b: Int) -> Int {
        let (n1, n2) = sizes(step)
        let r = positions(b, n1, n2)
        return max(0, min(r.upperBound, n1) - r.lowerBound) + max(0, min(r.upperBound, n2) - r.lowerBound)
    }

    /// The i-th tile of a block: passes alternate over the positions both passes have (the
    /// exps, compute-bound, and the streaming output, memory-bound, overlap).
    func tile(step: Int, block: Int, index i: Int, peek: inout Peek, scratch: UnsafeMutableRawPointer?) {
        let (n1, n2) = sizes(step)
        let r = positions(block, n1, n2)
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
}
