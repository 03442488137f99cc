import CTesseraSystem
import Dispatch
import Foundation
import Synchronization
import TesseraTopology

/// What a tile body learns about the tile it runs.
package struct TileContext: @unchecked Sendable {
    // @unchecked: `scratch` is this worker's private memory for the call.
    package let tile: Int
    /// Units of the tile.
    package let range: Range<Int>
    package let worker: Int
    /// Node share index of the worker.
    package let node: Int
    /// Scratch memory this worker holds for the whole call (the call's `scratchBytes`, 64-byte
    /// aligned; the same buffer for every tile the worker runs in the call), or nil.
    package let scratch: UnsafeMutableRawPointer?
}

/// A tile body as a C function and a context pointer: (context, first unit, units, scratch).
/// A call with one runs no Swift closure, so it allocates nothing (the closure form pays for
/// the escapable wrapper `withoutActuallyEscaping` makes of its body: 32 bytes per call).
package typealias RawTileBody = @convention(c) (UnsafeRawPointer?, Int, Int, UnsafeMutableRawPointer?) -> Void

/// Which worker ran each tile; for tests and `--plan` traces.
package final class TileTrace: @unchecked Sendable {
    // @unchecked: each tile's slot is written by exactly one worker (the one that claimed it).
    package let workerOfTile: UnsafeMutableBufferPointer<Int32>
    package let nodeOfTile: UnsafeMutableBufferPointer<Int32>
    /// The order tiles were claimed in (0 first), across all workers.
    package let claimOrder: UnsafeMutableBufferPointer<Int32>
    let claims = Atomic<Int>(0)

    package init(tiles: Int) {
        claimOrder = .allocate(capacity: tiles)
        claimOrder.initialize(repeating: -1)
        workerOfTile = .allocate(capacity: tiles)
        workerOfTile.initialize(repeating: -1)
        nodeOfTile = .allocate(capacity: tiles)
        nodeOfTile.initialize(repeating: -1)
    }

    func record(tile t: Int, worker: Int, node: Int) {
        workerOfTile[t] = Int32(worker)
        nodeOfTile[t] = Int32(node)
        claimOrder[t] = Int32(claims.wrappingAdd(1, ordering: .relaxed).oldValue)
    }

    deinit {
        workerOfTile.deallocate()
        nodeOfTile.deallocate()
        claimOrder.deallocate()
    }
}

/// The claim counters, scratch-slot flags and scratch memory of one parallel call, taken from
/// `pool` and given back after the call, so that a repeated call allocates nothing.
final class CallState: @unchecked Sendable {
    // @unchecked: the counters and flags are atomics used only through their own operations;
    // `scratch` is written only between calls (take/give, under the pool's lock) and during
    // a call handed out slot by slot, each slot to the one worker whose exchange claimed it.
    /// Ints per atomic: one 64-byte line each, so counters hammered by different cores do not share one.
    static let pad = 8
    let counterCapacity: Int
    let slotCapacity: Int
    private let atomics: UnsafeMutablePointer<Atomic<Int>>
    private(set) var scratch: UnsafeMutableRawPointer?
    private(set) var scratchCapacity = 0

    // The call this state serves, set by `Runtime.run` before any worker starts and cleared
    // after the last has finished; workers only read them.
    var plan: TilePlan?
    var body: ((TileContext) -> Void)?
    /// The raw form of the body (used when `body` is nil).
    var rawBody: RawTileBody?
    var rawContext: UnsafeRawPointer?
    var trace: TileTrace?
    var scratchStride = 0
    var slots = 0
    var pin = false
    /// Workers of the plan, and threads that run them (fewer with the spinning pool).
    var workers = 0, threads = 0

    private init(counters: Int, slots: Int) {
        counterCapacity = counters
        slotCapacity = slots
        let n = (counters + slots) * CallState.pad
        atomics = .allocate(capacity: n)
        for i in 0..<n { (atomics + i).initialize(to: Atomic(0)) }
    }

    deinit {
        atomics.deinitialize(count: (counterCapacity + slotCapacity) * CallState.pad)
        atomics.deallocate()
        scratch?.deallocate()
    }

    /// The next unclaimed index of counter `i`.
    @inline(__always) func claim(_ i: Int) -> Int { atomics[i * CallState.pad].wrappingAdd(1, ordering: .relaxed).oldValue }
    /// Claims scratch slot `i` for the calling worker (false when another holds it).
    @inline(__always) func takeSlot(_ i: Int) -> Bool {
        atomics[(counterCapacity + i) * CallState.pad].compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged
    }
    @inline(__always) func releaseSlot(_ i: Int) { atomics[(counterCapacity + i) * CallState.pad].store(0, ordering: .releasing) }

    private func reset(counters: Int, slots: Int, scratchBytes: Int) {
        for i in 0..<counters { atomics[i * CallState.pad].store(0, ordering: .relaxed) }
        for i in 0..<slots { atomics[(counterCapacity + i) * CallState.pad].store(0, ordering: .relaxed) }
        if scratchBytes > scratchCapacity {
            scratch?.deallocate()
            scratch = .allocate(byteCount: scratchBytes, alignment: 64)
            scratchCapacity = scratchBytes
        }
    }

    private static let pool = Locked<[CallState]>([])
    /// Scratch above this is freed when a call ends instead of kept for the next one.
    static let keptScratchLimit = 8 << 20

    /// A state with at least `counters` counters, `slots` slots and `scratchBytes` of scratch,
    /// all counters and slots zero.  Calls on different threads at once get different states.
    static func take(counters: Int, slots: Int, scratchBytes: Int) -> CallState {
        let reused = pool.withLock { p -> CallState? in
            guard let i = p.lastIndex(where: { $0.counterCapacity >= counters && $0.slotCapacity >= slots }) else { return nil }
            return p.remove(at: i)
        }
        let s = reused ?? CallState(counters: max(counters, 16), slots: max(slots, 4))
        s.reset(counters: counters, slots: slots, scratchBytes: scratchBytes)
        return s
    }

    static func give(_ s: CallState) {
        s.plan = nil
        s.body = nil
        s.rawBody = nil
        s.rawContext = nil
        s.trace = nil
        if s.scratchCapacity > keptScratchLimit {
            s.scratch?.deallocate()
            s.scratch = nil
            s.scratchCapacity = 0
        }
        pool.withLock { p in
            if p.count < 8 { p.append(s) }
        }
    }
    /// Thread `i` of the call: runs worker `i` (the spinning pool's fewer threads stand in for
    /// evenly spaced workers).
    func run(thread i: Int) {
        ts_tile_enter()
        defer { ts_tile_exit() }
        work(threads == workers ? i : i * workers / threads)
    }

    /// Worker `w`: claims and runs tiles, its own CPU's block first, then helps.
    private func work(_ w: Int) {
        let plan = self.plan!, body = self.body, scratchStride = self.scratchStride, slots = self.slots
        let rawBody = self.rawBody, rawContext = self.rawContext
        let home = plan.share(ofWorker: w)
        var mine: UnsafeMutableRawPointer?, slot = -1, own = false
        var saved: UnsafeMutableRawPointer?
        if pin { saved = Runtime.pin(to: plan.shares[home].cpus) }
        defer {
            if let saved {
                ts_restore_current_thread(saved)
                saved.deallocate()
            }
            if slot >= 0 { releaseSlot(slot) }
            if own { mine?.deallocate() }
        }
        // within a share: the block of the CPU this worker is on first, then the others
        // (see TilePlan.blockCount); the CPU is read once, a stale answer only costs locality
        let cpu = Int(ts_current_cpu())
        for s in plan.helpOrders[home] {
            let share = plan.shares[s]
            let first = plan.blockOffsets[s], blocks = plan.blockOffsets[s + 1] - first
            // by CPU where there is a block per CPU; with fewer workers than CPUs, two
            // CPUs would share a block, so then by worker
            let byWorker = max(w - share.workers.lowerBound, 0)
            let lane = blocks == share.cpus.count ? share.cpus.firstIndex(of: cpu) ?? byWorker : byWorker
            for step in 0..<blocks {
                let b = (lane + step) % blocks
                let range = plan.tiles(ofBlock: b, share: s)
                while true {
                    let t = range.lowerBound + claim(first + b)
                    if t >= range.upperBound { break }
                    if scratchStride > 0 && mine == nil {
                        for k in 0..<slots {
                            let i = (w + k) % slots
                            if takeSlot(i) {
                                slot = i
                                mine = scratch! + i * scratchStride
                                break
                            }
                        }
                        if mine == nil {
                            mine = UnsafeMutableRawPointer.allocate(byteCount: scratchStride, alignment: 64)
                            own = true
                        }
                    }
                    trace?.record(tile: t, worker: w, node: home)
                    if let body {
                        body(TileContext(tile: t, range: plan.range(ofTile: t), worker: w, node: home, scratch: mine))
                    } else {
                        let r = plan.range(ofTile: t)
                        rawBody!(rawContext, r.lowerBound, r.count, mine)
                    }
                }
            }
        }
    }
}

/// libdispatch's entry for one iteration: the context is the call's CallState.
private let dispatchThread: @convention(c) (UnsafeMutableRawPointer?, Int) -> Void = { ctx, i in
    Unmanaged<CallState>.fromOpaque(ctx!).takeUnretainedValue().run(thread: i)
}

/// Recently made plans, so that a repeated call of the same shape gets its plan (a pure
/// function of these inputs) without building it again: building allocates its arrays.
private final class PlanCache: Sendable {
    struct Key: Equatable {
        var units: Int, perTile: Int, workers: Int, inline: Bool
        var topology: Topology
    }
    private let entries = Locked<[(key: Key, plan: TilePlan)]>([])
    static let capacity = 16

    func plan(_ key: Key) -> TilePlan {
        if let p = entries.withLock({ e in e.first { $0.key == key }?.plan }) { return p }
        let p = TilePlan(units: key.units, unitsPerTile: key.perTile, workers: key.workers, topology: key.topology,
                         inline: key.inline)
        entries.withLock { e in
            if e.count >= PlanCache.capacity { e.removeFirst() }
            e.append((key, p))
        }
        return p
    }
}
private let planCache = PlanCache()

/// Set once the missing-CPU warning has been printed.  An atomic, not a Mutex: ThreadSanitizer
/// does not see the ordering of Synchronization.Mutex's futex on Linux and reported a race.
private let pinWarning = Atomic<Bool>(false)

extension Runtime {
    /// Core count the OS reports as configured (pinning skips CPUs beyond it).
    package static let activeCoresConfigured: Int = max(Int(ts_cpu_count()), 1)

    /// Whether a call with this much estimated work runs on the caller's thread.
    @inlinable
    package func runsInline(units: Int, nsPerUnit: Double) -> Bool {
        threads == 1 || executor == .serial || Double(units) * nsPerUnit < parallelThresholdNs
    }

    /// Longest estimated time of a tile the runtime sizes itself (ns).  A call ends when its
    /// last tile does, so the worker that finishes first idles up to one tile: with 128 KiB
    /// GELU tiles (~40 µs each here) the two workers of a 2^20 call finished a median 20 µs
    /// apart (3 % of the call), with 32 KiB tiles 4-5 µs apart.
    package static let maxTileNs: Double = 8_000

    /// A page after every worker's scratch slot that no other worker's slot starts in: kernels
    /// read ahead a page past what they are given (prefetches, to cross 4 KiB pages before the
    /// hardware prefetcher does), and from one slot into the next they pulled lines the other
    /// worker was writing away from it (a fused chain's L1 blocks: chain4 on 2 workers
    /// 0.80-0.87x the time with the guard; docs/records/zen3-avx2/README.md, session 13).
    package static let scratchGuardBytes = 4096

    /// Bytes from one worker's scratch slot to the next: `bytes` in whole lines, then the guard.
    package static func scratchStride(_ bytes: Int) -> Int { bytes > 0 ? ((bytes + 63) & ~63) + scratchGuardBytes : 0 }

    /// The plan for `units` units of `bytesPerUnit` input bytes and `nsPerUnit` estimated cost.
    /// Without `unitsPerTile`, a tile holds `tileBytes` of input, fewer where that would take
    /// longer than `maxTileNs` (never below 4 KiB, where claiming it would start to cost).
    package func plan(units: Int, bytesPerUnit: Int, nsPerUnit: Double, unitsPerTile: Int? = nil) -> TilePlan {
        let bytes = max(bytesPerUnit, 1)
        var per = unitsPerTile ?? max(1, tileBytes / bytes)
        if unitsPerTile == nil && nsPerUnit > 0 {
            let shortest = max(1, min(tileBytes, 4096) / bytes)
            per = max(min(per, Int(Runtime.maxTileNs / nsPerUnit)), shortest)
            // as many tiles as that needs, of equal size (a short last tile would leave a
            // worker idle: 2^15 sigmoid elements as 26,666 + 6,102 ran slower on 2 workers
            // than on 1), rounded up to whole 64-byte lines so that no two workers write
            // the same cache line
            let count = max(1, (units + per - 1) / per)
            let line = max(1, 64 / bytes)
            per = max(line, ((units + count - 1) / count + line - 1) / line * line)
        }
        return planCache.plan(.init(units: units, perTile: per, workers: threads,
                                    inline: runsInline(units: units, nsPerUnit: nsPerUnit), topology: topology))
    }

    /// Runs `body` once per tile of `plan`, blocking until all tiles are done.
    ///
    /// Workers claim tiles from their own node's counter first and then help other nodes in
    /// order of distance; which worker runs a tile never changes what the tile computes.
    package func run(_ plan: TilePlan, scratchBytes: Int = 0, trace: TileTrace? = nil,
                    _ body: @Sendable (TileContext) -> Void) {
        guard plan.tileCount > 0 else { return }
        let scratchStride = Runtime.scratchStride(scratchBytes)
        if plan.inline || nestedHere {
            ts_tile_enter()
            defer { ts_tile_exit() }
            // the caller is worker 0; like every worker, it reports its own node share
            let home = plan.share(ofWorker: 0)
            let state = scratchStride > 0 ? CallState.take(counters: 0, slots: 0, scratchBytes: scratchStride) : nil
            for t in 0..<plan.tileCount {
                trace?.record(tile: t, worker: 0, node: home)
                body(TileContext(tile: t, range: plan.range(ofTile: t), worker: 0, node: home, scratch: state?.scratch))
            }
            if let state { CallState.give(state) }
            return
        }
        let state = prepare(plan, scratchStride: scratchStride, trace: trace)
        defer { CallState.give(state) }
        // the one allocation of a parallel call with a closure body: the 32-byte escapable
        // wrapper that withoutActuallyEscaping makes of it (a RawTileBody call has none)
        withoutActuallyEscaping(body) { body in
            // the state lets go of `body` before it is checked for escaping
            defer { state.body = nil }
            state.body = body
            launch(state)
        }
    }

    /// Runs `body(context, first unit, units, scratch)` once per tile of `plan`, blocking until
    /// all tiles are done: `run` without a Swift closure, so a repeated call allocates nothing.
    /// `context` must stay valid until this returns.
    package func run(_ plan: TilePlan, scratchBytes: Int = 0, raw body: RawTileBody, context: UnsafeRawPointer?) {
        guard plan.tileCount > 0 else { return }
        let scratchStride = Runtime.scratchStride(scratchBytes)
        if plan.inline || nestedHere {
            ts_tile_enter()
            defer { ts_tile_exit() }
            let state = scratchStride > 0 ? CallState.take(counters: 0, slots: 0, scratchBytes: scratchStride) : nil
            for t in 0..<plan.tileCount {
                let r = plan.range(ofTile: t)
                body(context, r.lowerBound, r.count, state?.scratch)
            }
            if let state { CallState.give(state) }
            return
        }
        let state = prepare(plan, scratchStride: scratchStride, trace: nil)
        defer { CallState.give(state) }
        state.rawBody = body
        state.rawContext = context
        launch(state)
    }

    /// A call's state: counters, and scratch slots for the workers that run at the same time
    /// (at most one per core): 32 workers on 2 cores must not allocate, and fault in, 32 slabs
    /// per call.  A worker takes a free slot when it claims its first tile; one that finds none
    /// (more threads than cores running at once) allocates its own.
    private func prepare(_ plan: TilePlan, scratchStride: Int, trace: TileTrace?) -> CallState {
        let workers = plan.workers
        let slots = scratchStride > 0 ? min(workers, Runtime.activeCores) : 0
        let state = CallState.take(counters: plan.blockOffsets.last!, slots: slots, scratchBytes: scratchStride * slots)
        state.plan = plan
        state.trace = trace
        state.scratchStride = scratchStride
        state.slots = slots
        state.pin = pinWorkers
        state.workers = workers
        state.threads = workers
        return state
    }

    /// Runs the workers of a prepared call on the host's pool, the spinning pool or libdispatch.
    private func launch(_ state: CallState) {
        let workers = state.workers
        if let host {
            // the host's pool runs the workers; then the caller takes any tile none of them
            // claimed (a pool that ran fewer tasks than asked, or none: see HostExecutor)
            host.parallelFor(workers) { state.run(thread: $0) }
            state.run(thread: 0)
            return
        }
        if executor == .spinningPool {
            // spinning threads beyond the cores would only steal cycles from each other: run
            // at most one per core, each standing in for an evenly spaced worker (its node)
            state.threads = min(workers, Runtime.activeCores)
            if SpinningPool.shared.run(state.threads, { state.run(thread: $0) }) { return }
            state.threads = workers
        }
        ts_dispatch_apply(workers, Unmanaged.passUnretained(state).toOpaque(), dispatchThread)
    }

    /// Like `run`, but suspends instead of blocking: the tiles run on a Dispatch thread, so
    /// Swift's cooperative pool is not held while `concurrentPerform` waits.
    package func run(_ plan: TilePlan, scratchBytes: Int = 0,
                    _ body: @escaping @Sendable (TileContext) -> Void) async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            DispatchQueue.global(qos: .userInitiated).async {
                self.run(plan, scratchBytes: scratchBytes, body)
                done.resume()
            }
        }
    }

    /// Pins the calling thread to `cpus`; returns the saved mask to restore, or nil.
    static func pin(to cpus: [Int]) -> UnsafeMutableRawPointer? {
        guard !cpus.isEmpty else {
            if !pinWarning.exchange(true, ordering: .relaxed) {
                FileHandle.standardError.write(Data("tessera: a node's CPUs do not exist on this machine; its workers run unpinned\n".utf8))
            }
            return nil
        }
        let saved = UnsafeMutableRawPointer.allocate(byteCount: ts_cpu_mask_size(), alignment: 16)
        let ok = cpus.map { Int32($0) }.withUnsafeBufferPointer { ts_pin_current_thread($0.baseAddress, Int32($0.count), saved) }
        if ok != 0 {
            saved.deallocate()
            return nil
        }
        return saved
    }
}
