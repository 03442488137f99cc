import Dispatch
import Foundation
import Testing
import Tessera
import _TesseraTestSupport

/// A host pool for the tests: `concurrentPerform` under the hood, counting what Tessera asks of it.
final class CountingPool: HostExecutor, @unchecked Sendable {
    // @unchecked: the counters are only touched under `lock`
    let threadCount: Int
    /// Which task indices run: all, only the first, or none (a pool breaking its promise to run them).
    enum Runs { case all, first, none }
    let runs: Runs
    var inRegion = false
    private let lock = NSLock()
    private(set) var calls = 0, tasks = 0

    init(threads: Int, runs: Runs = .all) {
        threadCount = threads
        self.runs = runs
    }

    func parallelFor(_ n: Int, _ task: @Sendable (Int) -> Void) {
        lock.withLock { calls += 1 }
        switch runs {
        case .all: DispatchQueue.concurrentPerform(iterations: n) { i in lock.withLock { tasks += 1 }; task(i) }
        case .first: if n > 0 { lock.withLock { tasks += 1 }; task(0) }
        case .none: break
        }
    }

    var isInParallelRegion: Bool { lock.withLock { inRegion } }
}

@Suite("The host's thread pool")
struct HostExecutorTests {
    static let x = try! Tensor(shape: [200_003], scalars: EdgeValues.random(count: 200_003, seed: 41))
    static let rows = try! Tensor(randomNormal: [301, 977], standardDeviation: 4, seed: 42)

    /// The same ops on the default runtime and on `rt`, which must give the same bits.
    func sameBits(_ rt: Runtime) throws {
        let ref = try Runtime(threads: 1, executor: .serial, parallelThresholdNs: 0)
        for op in UnaryOp.allCases {
            let layer = op.layer
            #expect(try layer.forward(Self.x, runtime: rt) == layer.forward(Self.x, runtime: ref), "\(layer.step)")
            let output = op.saved == .output ? try layer.forward(Self.x, runtime: ref) : nil
            let input = op.saved == .output ? nil : Self.x
            #expect(try layer.backward(input: input, output: output, gradOutput: Self.x, runtime: rt)
                    == layer.backward(input: input, output: output, gradOutput: Self.x, runtime: ref), "\(layer.step) backward")
        }
        #expect(try Softmax(dim: 1).forward(Self.rows, runtime: rt) == Softmax(dim: 1).forward(Self.rows, runtime: ref))
        #expect(try LogSoftmax(dim: 0).forward(Self.rows, runtime: rt) == LogSoftmax(dim: 0).forward(Self.rows, runtime: ref))
        let y = Sigmoid().forward(Self.x, runtime: ref)
        #expect(try Sigmoid().backward(output: y, gradOutput: Self.x, runtime: rt)
                == Sigmoid().backward(output: y, gradOutput: Self.x, runtime: ref))
    }

    @Test(arguments: [1, 2, 3, 8])
    func theHostsPoolRunsTheTilesWithTheSameBits(threads: Int) throws {
        let pool = CountingPool(threads: threads)
        let rt = try Runtime(tileBytes: 16384, parallelThresholdNs: 0, host: pool)
        #expect(rt.threads == threads && !rt.pinWorkers)
        try sameBits(rt)
        // one thread: every call runs inline, as with any executor
        #expect(threads == 1 ? pool.calls == 0 : pool.calls > 0 && pool.tasks == pool.calls * threads,
                "calls \(pool.calls) tasks \(pool.tasks)")
    }

    @Test func aPoolThatRunsFewerTasksLosesParallelismNotWork() throws {
        for runs in [CountingPool.Runs.first, .none] {
            let pool = CountingPool(threads: 4, runs: runs)
            try sameBits(try Runtime(tileBytes: 16384, parallelThresholdNs: 0, host: pool))
            #expect(pool.calls > 0)
        }
    }

    @Test func callsInsideTheHostsRegionRunInline() throws {
        let pool = CountingPool(threads: 4)
        let rt = try Runtime(tileBytes: 16384, parallelThresholdNs: 0, host: pool)
        pool.inRegion = true
        try sameBits(rt)
        #expect(pool.calls == 0) // nothing nested: every call ran on the calling thread
        #expect(!Runtime.isRunningTiles)
    }

    @Test func invalidPoolsAreRejected() throws {
        #expect(throws: RuntimeError.invalidHostExecutor("it reports 0 threads (expected 1...4096)")) {
            try Runtime(host: CountingPool(threads: 0))
        }
        #expect(throws: RuntimeError.self) { try Runtime(host: CountingPool(threads: 5000)) }
        #expect(try Runtime(threads: 2, host: CountingPool(threads: 8)).threads == 2) // an explicit count wins
    }
}
