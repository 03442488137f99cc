import CTesseraKernels
import Dispatch
import Foundation
import Synchronization
import TesseraTopology

/// What a tile body learns about the tile it runs.
public struct TileContext: @unchecked Sendable {
    // @unchecked: `scratch` is this worker's private memory for the call.
    public let tile: Int
    /// Units of the tile.
    public let range: Range<Int>
    public let worker: Int
    /// Node share index of the worker.
    public let node: Int
    /// Scratch memory this worker holds for the whole call (the call's `scratchBytes`, 64-byte
    /// aligned; the same buffer for every tile the worker runs in the call), or nil.
    public let scratch: UnsafeMutableRawPointer?
}

/// Which worker ran each tile; for tests and `--plan` traces.
public final class TileTrace: @unchecked Sendable {
    // @unchecked: each tile's slot is written by exactly one worker (the one that claimed it).
    public let workerOfTile: UnsafeMutableBufferPointer<Int32>
    public let nodeOfTile: UnsafeMutableBufferPointer<Int32>
    /// The order tiles were claimed in (0 first), across all workers.
    public let claimOrder: UnsafeMutableBufferPointer<Int32>
    let claims = Atomic<Int>(0)

    public init(tiles: Int) {
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

private final class Counter: Sendable {
    let next = Atomic<Int>(0)
}

/// Set once the missing-CPU warning has been printed.  An atomic, not a Mutex: ThreadSanitizer
/// does not see the ordering of Synchronization.Mutex's futex on Linux and reported a race.
private let pinWarning = Atomic<Bool>(false)

extension Runtime {
    /// Core count the OS reports as configured (pinning skips CPUs beyond it).
    public static let activeCoresConfigured: Int = max(Int(ts_cpu_count()), 1)

    /// Whether a call with this much estimated work runs on the caller's thread.
    @inlinable
    public func runsInline(units: Int, nsPerUnit: Double) -> Bool {
        threads == 1 || executor == .serial || Double(units) * nsPerUnit < parallelThresholdNs
    }

    /// Longest estimated time of a tile the runtime sizes itself (ns).  A call ends when its
    /// last tile does, so the worker that finishes first idles up to one tile: with 128 KiB
    /// GELU tiles (~40 µs each here) the two workers of a 2^20 call finished a median 20 µs
    /// apart (3 % of the call), with 32 KiB tiles 4-5 µs apart.
    public static let maxTileNs: Double = 8_000

    /// The plan for `units` units of `bytesPerUnit` input bytes and `nsPerUnit` estimated cost.
    /// Without `unitsPerTile`, a tile holds `tileBytes` of input, fewer where that would take
    /// longer than `maxTileNs` (never below 4 KiB, where claiming it would start to cost).
    public func plan(units: Int, bytesPerUnit: Int, nsPerUnit: Double, unitsPerTile: Int? = nil) -> TilePlan {
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
        return TilePlan(units: units, unitsPerTile: per, workers: threads, topology: topology,
                        inline: runsInline(units: units, nsPerUnit: nsPerUnit))
    }

    /// Runs `body` once per tile of `plan`, blocking until all tiles are done.
    ///
    /// Workers claim tiles from their own node's counter first and then help other nodes in
    /// order of distance; which worker runs a tile never changes what the tile computes.
    public func run(_ plan: TilePlan, scratchBytes: Int = 0, trace: TileTrace? = nil,
                    _ body: @Sendable (TileContext) -> Void) {
        guard plan.tileCount > 0 else { return }
        let scratchStride = (scratchBytes + 63) & ~63
        let workers = plan.inline ? 1 : plan.workers
        // Scratch slots for the workers that run at the same time (at most one per core):
        // 32 workers on 2 cores must not allocate, and fault in, 32 slabs per call.  A worker
        // takes a free slot when it claims its first tile; one that finds none (more threads
        // than cores running at once) allocates its own.
        let slots = scratchStride > 0 ? min(workers, Runtime.activeCores) : 0
        var scratchBase: UnsafeMutableRawPointer?
        if slots > 0 {
            scratchBase = UnsafeMutableRawPointer.allocate(byteCount: scratchStride * slots, alignment: 64)
        }
        defer { scratchBase?.deallocate() }
        let scratch = scratchBase.map { SendablePointer($0.assumingMemoryBound(to: UInt8.self)) }

        if plan.inline {
            // the caller is worker 0; like every worker, it reports its own node share
            let home = plan.share(ofWorker: 0)
            let mine = scratch.map { UnsafeMutableRawPointer($0.base) }
            for t in 0..<plan.tileCount {
                trace?.record(tile: t, worker: 0, node: home)
                body(TileContext(tile: t, range: plan.range(ofTile: t), worker: 0, node: home, scratch: mine))
            }
            return
        }

        let counters = plan.shares.indices.map { s in (0..<plan.blockCount(ofShare: s)).map { _ in Counter() } }
        let slotTaken = (0..<slots).map { _ in Counter() }
        let helpOrders = plan.shares.indices.map { topology.helpOrder(from: $0) }
        let pin = pinWorkers
        withoutActuallyEscaping(body) { body in
            let work: @Sendable (Int) -> Void = { w in
                let home = plan.share(ofWorker: w)
                var mine: UnsafeMutableRawPointer?, slot = -1, own = false
                var saved: UnsafeMutableRawPointer?
                if pin { saved = Runtime.pin(to: plan.shares[home].cpus) }
                defer {
                    if let saved {
                        ts_restore_current_thread(saved)
                        saved.deallocate()
                    }
                    if slot >= 0 { slotTaken[slot].next.store(0, ordering: .releasing) }
                    if own { mine?.deallocate() }
                }
                func runTile(_ t: Int) {
                    if scratchStride > 0 && mine == nil {
                        for k in 0..<slots {
                            let i = (w + k) % slots
                            if slotTaken[i].next.compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged {
                                slot = i
                                mine = UnsafeMutableRawPointer(scratch![i * scratchStride])
                                break
                            }
                        }
                        if mine == nil {
                            mine = UnsafeMutableRawPointer.allocate(byteCount: scratchStride, alignment: 64)
                            own = true
                        }
                    }
                    trace?.record(tile: t, worker: w, node: home)
                    body(TileContext(tile: t, range: plan.range(ofTile: t), worker: w, node: home, scratch: mine))
                }
                // within a share: the block of the CPU this worker is on first, then the others
                // (see TilePlan.blockCount); the CPU is read once, a stale answer only costs locality
                let cpu = Int(ts_current_cpu())
                for s in helpOrders[home] where s < plan.shares.count {
                    let share = plan.shares[s]
                    let blocks = counters[s].count
                    // by CPU where there is a block per CPU; with fewer workers than CPUs, two
                    // CPUs would share a block, so then by worker
                    let byWorker = max(w - share.workers.lowerBound, 0)
                    let lane = blocks == share.cpus.count ? share.cpus.firstIndex(of: cpu) ?? byWorker : byWorker
                    for step in 0..<blocks {
                        let b = (lane + step) % blocks
                        let range = plan.tiles(ofBlock: b, share: s)
                        let c = counters[s][b]
                        while true {
                            let t = range.lowerBound + c.next.wrappingAdd(1, ordering: .relaxed).oldValue
                            if t >= range.upperBound { break }
                            runTile(t)
                        }
                    }
                }
            }
            if executor == .spinningPool {
                // spinning threads beyond the cores would only steal cycles from each other: run
                // at most one per core, each standing in for an evenly spaced worker (its node)
                let n = min(workers, Runtime.activeCores)
                let stride: @Sendable (Int) -> Void = { i in work(i * workers / n) }
                if SpinningPool.shared.run(n, n == workers ? work : stride) { return }
            }
            DispatchQueue.concurrentPerform(iterations: workers, execute: work)
        }
    }

    /// Like `run`, but suspends instead of blocking: the tiles run on a Dispatch thread, so
    /// Swift's cooperative pool is not held while `concurrentPerform` waits.
    public func run(_ plan: TilePlan, scratchBytes: Int = 0,
                    _ body: @escaping @Sendable (TileContext) -> Void) async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            DispatchQueue.global(qos: .userInitiated).async {
                self.run(plan, scratchBytes: scratchBytes, body)
                done.resume()
            }
        }
    }

    /// Pins the calling thread to `cpus`; returns the saved mask to restore, or nil.
    private static func pin(to cpus: [Int]) -> UnsafeMutableRawPointer? {
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
