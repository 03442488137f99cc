import Foundation
import Synchronization
import Testing
import TesseraRuntime
import TesseraTopology

let topo2 = Topology.uniform(nodes: 2, cpusPerNode: 16)
let topo4 = Topology.uniform(nodes: 4, cpusPerNode: 8)
let topo8 = Topology.uniform(nodes: 8, cpusPerNode: 16)
let uneven = Topology(nodes: [.init(id: 0, cpus: Array(0..<24)), .init(id: 1, cpus: Array(24..<32))])

@Suite("Tile plans and the executor")
struct RuntimeTests {
    @Test func aCallFromInsideATileRunsInlineOnThatThread() throws {
        let rt = try Runtime(threads: 4, parallelThresholdNs: 0)
        let plan = rt.plan(units: 64, bytesPerUnit: 4096, nsPerUnit: 1000, unitsPerTile: 1)
        #expect(!plan.inline && !Runtime.isRunningTiles)
        let elsewhere = Atomic<Int>(0), inner = Atomic<Int>(0)
        rt.run(plan) { _ in
            let me = pthread_self()
            if !Runtime.isRunningTiles { elsewhere.add(1000, ordering: .relaxed) }
            rt.run(plan) { _ in
                inner.add(1, ordering: .relaxed)
                if pthread_equal(pthread_self(), me) == 0 { elsewhere.add(1, ordering: .relaxed) }
            }
        }
        #expect(inner.load(ordering: .relaxed) == 64 * 64 && elsewhere.load(ordering: .relaxed) == 0)
        #expect(!Runtime.isRunningTiles)
    }

    @Test func tilesCoverEveryUnitOnce() {
        for units in [0, 1, 15, 16, 17, 1000, 4099] {
            for per in [1, 7, 16, 4096] {
                let p = TilePlan(units: units, unitsPerTile: per, workers: 5, topology: topo2)
                var seen = [Int](repeating: 0, count: units)
                for t in 0..<p.tileCount { for u in p.range(ofTile: t) { seen[u] += 1 } }
                #expect(seen.allSatisfy { $0 == 1 })
                #expect(p.workers <= max(p.tileCount, 1))
            }
        }
    }

    @Test(arguments: [topo2, topo4, topo8, uneven])
    func tilesPerNodeAreContiguousAndProportionalToCPUs(topology: Topology) {
        let p = TilePlan(units: 10_000, unitsPerTile: 10, workers: topology.cpuCount, topology: topology)
        var next = 0
        for (i, share) in p.shares.enumerated() {
            #expect(share.tiles.lowerBound == next)
            next = share.tiles.upperBound
            let want = Double(p.tileCount) * Double(topology.nodes[i].cpus.count) / Double(topology.cpuCount)
            #expect(abs(Double(share.tiles.count) - want) <= 1)
            #expect(share.workers.count == topology.nodes[i].cpus.count)
        }
        #expect(next == p.tileCount)
    }

    @Test(arguments: [topo2, topo4, topo8])
    func everyTileRunsExactlyOnceAndNodesWorkTheirOwnTilesFirst(topology: Topology) throws {
        let rt = try Runtime(threads: topology.cpuCount, tileBytes: 64, topology: topology, parallelThresholdNs: 0, pinWorkers: true)
        let plan = rt.plan(units: 64 * 50, bytesPerUnit: 4, nsPerUnit: 1, unitsPerTile: 16)
        let counts = UnsafeMutableBufferPointer<Int>.allocate(capacity: plan.tileCount)
        counts.initialize(repeating: 0)
        defer { counts.deallocate() }
        let c = SendablePointer(counts.baseAddress!)
        let trace = TileTrace(tiles: plan.tileCount)
        rt.run(plan, trace: trace) { ctx in c[ctx.tile].pointee += 1 }
        #expect(counts.allSatisfy { $0 == 1 })
        // Each worker takes its own node's tiles first and then helps others in distance
        // order: along its claims, the tile's node never moves back in the help order.
        #expect(trace.workerOfTile.allSatisfy { $0 >= 0 })
        for w in 0..<plan.workers {
            let home = plan.share(ofWorker: w)
            let rank = Dictionary(uniqueKeysWithValues: topology.helpOrder(from: home).enumerated().map { ($1, $0) })
            let mine = (0..<plan.tileCount).filter { Int(trace.workerOfTile[$0]) == w }.sorted { trace.claimOrder[$0] < trace.claimOrder[$1] }
            let ranks = mine.map { rank[plan.share(ofTile: $0)]! }
            #expect(ranks == ranks.sorted(), "worker \(w) went back to a nearer node")
            #expect(mine.allSatisfy { Int(trace.nodeOfTile[$0]) == home })
        }
    }

    @Test func workersHelpNodesWithNoWorkers() throws {
        // 8 nodes, 3 workers: five nodes have no workers of their own; their tiles still run
        let rt = try Runtime(threads: 3, tileBytes: 64, topology: topo8, parallelThresholdNs: 0)
        let plan = rt.plan(units: 800, bytesPerUnit: 4, nsPerUnit: 1, unitsPerTile: 8)
        #expect(plan.shares.filter { $0.workers.isEmpty }.count == 5)
        let total = Atomic<Int>(0)
        rt.run(plan) { ctx in total.add(ctx.range.count, ordering: .relaxed) }
        #expect(total.load(ordering: .relaxed) == 800)
    }

    @Test func smallWorkRunsInline() throws {
        let rt = try Runtime(threads: 8, parallelThresholdNs: 20_000)
        #expect(rt.plan(units: 4096, bytesPerUnit: 4, nsPerUnit: 0.1).inline)
        #expect(!rt.plan(units: 1 << 22, bytesPerUnit: 4, nsPerUnit: 0.1).inline)
        let one = try Runtime(threads: 1)
        #expect(one.plan(units: 1 << 22, bytesPerUnit: 4, nsPerUnit: 1).inline)
    }

    @Test func costlyUnitsGetShorterTiles() throws {
        let rt = try Runtime(threads: 2, tileBytes: 128 * 1024)
        // cheap: the tile holds tileBytes; costly: at most maxTileNs of estimated work; never
        // below 4 KiB of input; an explicit size is kept
        #expect(rt.plan(units: 1 << 20, bytesPerUnit: 4, nsPerUnit: 0.05).unitsPerTile == 32768)
        let capped = Int(Runtime.maxTileNs / 0.6)
        let gelu = rt.plan(units: 1 << 20, bytesPerUnit: 4, nsPerUnit: 0.6)
        #expect(gelu.unitsPerTile <= capped + 15 && gelu.tileCount == (1 << 20 + capped - 1) / capped)
        #expect(rt.plan(units: 1 << 20, bytesPerUnit: 4, nsPerUnit: 1000).unitsPerTile == 1024)
        #expect(rt.plan(units: 1 << 20, bytesPerUnit: 4, nsPerUnit: 1000, unitsPerTile: 7).unitsPerTile == 7)
        let tiny = try Runtime(threads: 2, tileBytes: 64)
        #expect(tiny.plan(units: 1000, bytesPerUnit: 4, nsPerUnit: 1000).unitsPerTile == 16)
        // equal tiles in whole 64-byte lines: 2^15 sigmoid elements as two halves, not 26,666 + 6,102
        let sig = rt.plan(units: 1 << 15, bytesPerUnit: 4, nsPerUnit: 0.3)
        #expect(sig.tileCount == 2 && sig.unitsPerTile == 1 << 14)
        #expect(rt.plan(units: 0, bytesPerUnit: 4, nsPerUnit: 0.45).tileCount == 0)
        #expect(rt.plan(units: 5, bytesPerUnit: 4, nsPerUnit: 0.45).tileCount == 1)
        for units in [1000, 33333, 100_003, 1 << 20] {
            let p = rt.plan(units: units, bytesPerUnit: 4, nsPerUnit: 0.45)
            #expect(p.unitsPerTile % 16 == 0 && p.unitsPerTile * 4 <= rt.tileBytes)
            #expect(p.range(ofTile: p.tileCount - 1).count > p.unitsPerTile - 16 * p.tileCount)
        }
    }

    @Test func invalidSettingsThrow() throws {
        #expect(throws: RuntimeError.invalidThreads(0)) { try Runtime(threads: 0) }
        #expect(throws: RuntimeError.invalidTileBytes(8)) { try Runtime(tileBytes: 8) }
        #expect(try Runtime(threads: 32).threads == 32) // legal on any machine
        #expect(throws: RuntimeError.invalidThreads(Runtime.maxThreads + 1)) { try Runtime(threads: Runtime.maxThreads + 1) }
        #expect(RuntimeError.invalidThreads(1_000_000).description.contains("1000000"))
    }

    @Test func threadsFromTheEnvironment() throws {
        #expect(try Runtime.threadsFromEnvironment([:]) == nil)
        #expect(try Runtime.threadsFromEnvironment(["TESSERA_THREADS": "12"]) == 12)
        for bad in ["0", "-3", "two", "", "1000000"] {
            #expect(throws: RuntimeError.invalidEnvironment(variable: "TESSERA_THREADS", value: bad, expected: "an integer 1...\(Runtime.maxThreads)")) {
                try Runtime.threadsFromEnvironment(["TESSERA_THREADS": bad])
            }
        }
    }

    @Test func defaultRuntimeCanBeSetFromManyThreads() async throws {
        // Runtime.default is process-wide and other suites run at the same time: the tasks
        // write the value it already has (what is tested is that concurrent writes and reads
        // are safe -- ThreadSanitizer runs this suite in CI -- not a new value)
        let saved = Runtime.default
        await withTaskGroup(of: Bool.self) { g in
            for _ in 1...16 { g.addTask { Runtime.default = saved; return Runtime.default == saved } }
            for await same in g { #expect(same) }
        }
        #expect(Runtime.default == saved)
    }

    @Test func concurrentCallsFromManyTasks() async throws {
        let rt = try Runtime(threads: 4, tileBytes: 64, parallelThresholdNs: 0)
        let sums = await withTaskGroup(of: Int.self) { g in
            for k in 0..<24 {
                g.addTask {
                    let plan = rt.plan(units: 1000 + k, bytesPerUnit: 4, nsPerUnit: 1, unitsPerTile: 16)
                    let total = Atomic<Int>(0)
                    if k % 2 == 0 {
                        blockingRun(rt, plan) { ctx in total.add(ctx.range.reduce(0, +), ordering: .relaxed) }
                    } else {
                        await rt.run(plan) { ctx in total.add(ctx.range.reduce(0, +), ordering: .relaxed) }
                    }
                    return total.load(ordering: .relaxed) - (0..<(1000 + k)).reduce(0, +)
                }
            }
            return await g.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(sums.count == 24 && sums.allSatisfy { $0 == 0 })
    }

    @Test(arguments: [1, 2, 3, 8, 32])
    func spinningPoolRunsEveryTileOnceAndSurvivesConcurrentCallers(threads: Int) async throws {
        let rt = try Runtime(threads: threads, tileBytes: 64, executor: .spinningPool, parallelThresholdNs: 0)
        let results = await withTaskGroup(of: Bool.self) { g in
            for k in 0..<8 {
                g.addTask {
                    let plan = rt.plan(units: 5000 + k, bytesPerUnit: 4, nsPerUnit: 1, unitsPerTile: 7)
                    let counts = UnsafeMutableBufferPointer<Int>.allocate(capacity: plan.tileCount)
                    counts.initialize(repeating: 0)
                    defer { counts.deallocate() }
                    let c = SendablePointer(counts.baseAddress!)
                    for _ in 0..<20 { blockingRun(rt, plan) { ctx in c[ctx.tile].pointee += 1 } }
                    return counts.allSatisfy { $0 == 20 }
                }
            }
            return await g.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(results.allSatisfy { $0 })
    }

    @Test func scratchIsPrivatePerWorker() throws {
        let rt = try Runtime(threads: 4, tileBytes: 64, parallelThresholdNs: 0)
        let plan = rt.plan(units: 4000, bytesPerUnit: 4, nsPerUnit: 1, unitsPerTile: 10)
        let bad = Atomic<Int>(0)
        rt.run(plan, scratchBytes: 256) { ctx in
            let s = ctx.scratch!.assumingMemoryBound(to: Int.self)
            #expect(UInt(bitPattern: ctx.scratch!) % 64 == 0)
            for i in 0..<32 { s[i] = ctx.tile }
            for i in 0..<32 where s[i] != ctx.tile { bad.add(1, ordering: .relaxed) }
        }
        #expect(bad.load(ordering: .relaxed) == 0)
    }

    /// A worker's kernels read a page past its scratch (prefetches): no other worker's slot may
    /// start within its bytes plus that guard.  The spinning pool's own threads (not a shared
    /// pool a loaded test run may serialise); each worker's first tile waits until a second
    /// worker has shown its slot.
    @Test func scratchSlotsKeepAGuardApart() throws {
        let rt = try Runtime(threads: 2, tileBytes: 64, executor: .spinningPool, parallelThresholdNs: 0)
        let plan = rt.plan(units: 4000, bytesPerUnit: 4, nsPerUnit: 1, unitsPerTile: 10)
        let seen = Locked<Set<UInt>>([])
        rt.run(plan, scratchBytes: 256) { ctx in
            let first = seen.withLock { $0.insert(UInt(bitPattern: ctx.scratch!)).inserted }
            let end = ContinuousClock.now + .seconds(10)
            while first && seen.withLock({ $0.count }) < 2 && ContinuousClock.now < end { Thread.sleep(forTimeInterval: 0.001) }
        }
        let slots = seen.withLock { $0.sorted() }
        #expect(slots.count == 2)
        // a page: the kernels' read-ahead (TS_PF_AHEAD, 1024 floats)
        for (a, b) in zip(slots, slots.dropFirst()) { #expect(b - a >= UInt(256 + 4096)) }
    }

    @Test func planIsPrintable() {
        let p = TilePlan(units: 1000, unitsPerTile: 100, workers: 4, topology: topo2)
        // node 1's CPUs (and node 0's beyond this machine's) do not exist here: its two
        // workers then get one block each; node 0 gets one per CPU that exists, up to 2
        func blocks(_ s: Int, _ split: [String]) -> String {
            p.blockCount(ofShare: s) < 2 ? "" : "    tiles per cpu (a worker starts with its cpu's, then helps): \(split.joined(separator: ", "))\n"
        }
        #expect(p.description == """
            plan: 1000 units in 10 tiles of 100, 4 worker(s), 2 node(s)
              node 0: tiles 0..<5 (units 0..<500), workers 0..<2, cpus \(p.shares[0].cpus.isEmpty ? "none here" : Topology.cpuList(p.shares[0].cpus))
            \(blocks(0, ["0..<2", "2..<5"]))  node 1: tiles 5..<10 (units 500..<1000), workers 2..<4, cpus \(p.shares[1].cpus.isEmpty ? "none here" : Topology.cpuList(p.shares[1].cpus))
            \(blocks(1, ["5..<7", "7..<10"]))
            """)
    }

    @Test func cpuBlocksSplitEachShareContiguously() {
        for (units, perTile, workers) in [(1000, 100, 4), (1000, 7, 32), (5, 1, 32), (0, 1, 2), (300, 100, 8)] {
            for topo in [topo2, Topology(nodes: [.init(id: 0, cpus: Array(0..<8))], source: .synthetic)] {
                let p = TilePlan(units: units, unitsPerTile: perTile, workers: workers, topology: topo)
                for (s, share) in p.shares.enumerated() {
                    let n = p.blockCount(ofShare: s)
                    let lanes = share.cpus.isEmpty ? share.workers.count : min(share.workers.count, share.cpus.count)
                    #expect(n == max(1, min(lanes, share.tiles.count)))
                    let ranges = (0..<n).map { p.tiles(ofBlock: $0, share: s) }
                    // contiguous, in order, covering the share's tiles exactly, sizes within one
                    #expect(ranges.first?.lowerBound == share.tiles.lowerBound && ranges.last?.upperBound == share.tiles.upperBound)
                    #expect(zip(ranges, ranges.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
                    let sizes = ranges.map(\.count)
                    #expect(sizes.max()! - sizes.min()! <= 1)
                }
            }
        }
    }

    @Test func apportionIsExactAndDeterministic() {
        #expect(TilePlan.apportion(10, weights: [1, 1, 1]) == [4, 3, 3])
        #expect(TilePlan.apportion(7, weights: [24, 8]) == [5, 2])
        #expect(TilePlan.apportion(0, weights: [1, 2]) == [0, 0])
    }

    /// Workspaces in use at once never overlap (nested, and from many threads), are 64-byte
    /// aligned and writable; one larger than the kept limit works too.
    @Test func workspacesInUseAtOnceAreDisjoint() throws {
        let rt = try Runtime(threads: 2)
        rt.withWorkspace(bytes: 1000) { a in
            rt.withWorkspace(bytes: 1000) { b in
                #expect(Int(bitPattern: a) % 64 == 0 && Int(bitPattern: b) % 64 == 0)
                #expect(abs(Int(bitPattern: a) - Int(bitPattern: b)) >= 1000)
            }
        }
        let big = rt.workspaceKeptBytes + 4096
        rt.withWorkspace(bytes: big) { p in
            p.initializeMemory(as: UInt8.self, repeating: 7, count: big)
            #expect(p.load(fromByteOffset: big - 1, as: UInt8.self) == 7)
        }
        let clobbered = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            rt.withWorkspace(bytes: 4096) { p in
                let words = p.bindMemory(to: Int.self, capacity: 512)
                for k in 0..<512 { words[k] = i }
                usleep(1000)
                if !(0..<512).allSatisfy({ words[$0] == i }) { clobbered.add(1, ordering: .relaxed) }
            }
        }
        #expect(clobbered.load(ordering: .relaxed) == 0, "another call wrote into a workspace in use")
    }

    /// Runtime.runSteps: every tile once, each step's tiles only after the previous step
    /// finished, finish called once per step in order, each worker's state zeroed when it
    /// starts and kept across its tiles -- for worker counts above the cores too.
    @Test(arguments: [1, 2, 3, 8]) func steppedCallsRunEveryTileAfterItsStep(threads: Int) throws {
        let rt = try Runtime(threads: threads, parallelThresholdNs: 0)
        let steps = 5, blocks = rt.stepBlocks
        func tiles(_ s: Int, _ b: Int) -> Int { 3 + (s + b) % 4 }
        let counts = (0..<steps).flatMap { s in (0..<blocks).map { tiles(s, $0) } }
        let total = counts.reduce(0, +)
        final class Log: @unchecked Sendable {
            // @unchecked: `events` is only touched under its lock
            let events = Locked<[(kind: Int, step: Int, block: Int, index: Int, seen: Int)]>([])
        }
        let log = Log()
        let body: RawStepBody = { ctx, step, block, index, state, _ in
            // the state counts this worker's tiles: a worker starting from a non-zero state
            // (another call's leftovers) would log a count it did not reach
            let n = state!.assumingMemoryBound(to: Int.self)
            n.pointee += 1
            Unmanaged<Log>.fromOpaque(ctx!).takeUnretainedValue().events.withLock { $0.append((0, step, block, index, n.pointee)) }
        }
        let finish: RawStepFinish = { ctx, step in
            Unmanaged<Log>.fromOpaque(ctx!).takeUnretainedValue().events.withLock { $0.append((1, step, -1, -1, 0)) }
        }
        for _ in 0..<2 { // twice: the second call reuses the first one's scratch and workspace
            log.events.withLock { $0.removeAll() }
            counts.withUnsafeBufferPointer { c in
                rt.runSteps(steps: steps, tiles: c.baseAddress!, bytesPerTile: 1 << 16, nsPerTile: 10_000,
                            stateBytes: MemoryLayout<Int>.size, body: body, finish: finish,
                            context: UnsafeRawPointer(Unmanaged.passUnretained(log).toOpaque()))
            }
            let events = log.events.withLock { $0 }
            #expect(events.count == total + steps)
            #expect(events.filter { $0.kind == 1 }.map(\.step) == Array(0..<steps))
            var finished = -1
            var seen = Set<[Int]>()
            for e in events {
                if e.kind == 1 { finished = e.step; continue }
                #expect(e.step == finished + 1, "a tile of step \(e.step) ran before step \(e.step - 1) finished")
                #expect(e.index < tiles(e.step, e.block) && seen.insert([e.step, e.block, e.index]).inserted)
            }
            // every worker's count starts at 1 and rises by 1: the tiles counted add up
            #expect(events.filter { $0.kind == 0 && $0.seen == 1 }.count <= threads)
            #expect(events.filter { $0.kind == 0 }.map(\.seen).max()! <= total)
        }
    }
}

/// The blocking entry point, called from a synchronous context.
func blockingRun(_ rt: Runtime, _ plan: TilePlan, _ body: @Sendable (TileContext) -> Void) {
    rt.run(plan, body)

}
