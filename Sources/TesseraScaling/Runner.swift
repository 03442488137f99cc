import Dispatch
import Foundation
import CTesseraSystem
import Synchronization
import Tessera

package let tesseraVersion = "0.1.0"

/// One measured point; field names are the JSON contract (docs/scale-test-json.md).
package struct Record: Codable, Equatable, Sendable {
    package var op: String
    package var shape: [Int]
    package var threads: Int
    package var fused: Bool
    package var median_seconds: Double
    package var min_seconds: Double
    package var max_seconds: Double
    package var ns_per_element: Double
    package var gb_per_s: Double
    /// median(1 worker) / median(this); nil when 1 worker was not measured
    package var speedup: Double?
    /// speedup / min(threads, cores)
    package var efficiency: Double?
    /// roofline time / measured time, in percent (100 = at the hardware's limit)
    package var roofline_percent: Double
    /// copy bandwidth (GB/s) measured in this run at min(threads, cores) workers, over as
    /// many floats as the workload (2^24 for larger ones)
    package var copy_gb_per_s: Double
    /// single-worker ns/element of the op on cache-resident data
    package var compute_floor_ns_per_element: Double
    /// compute capacity of min(threads, cores) threads, measured just before this workload's
    /// sweep (see Machine.compute_capacity); absent in reports from older runs
    package var compute_capacity: Double?
    package var oversubscribed: Bool
    /// the store policy the op ran under: auto (the cache model's choice), streaming or regular
    package var stores: String?
    /// whether this output got streaming stores
    package var streaming: Bool?
}

package struct Machine: Codable, Equatable, Sendable {
    package var cores: Int
    package var numa_nodes: Int
    package var topology_source: String
    /// streaming copy of 2^24 floats with all cores (read + write bytes / time)
    package var copy_gb_per_s: Double
    package var copy_gb_per_s_1_thread: Double
    /// the two copies behind copy_gb_per_s (which is the faster of them), with all cores
    package var copy_streaming_gb_per_s: Double?
    package var copy_regular_gb_per_s: Double?
    /// the cache model's sizes and how they were found (see CacheModel)
    package var cache_model: String?
    package var llc_counted_bytes: Int?
    /// core-bound loops on `cores` threads at once: their total throughput over one thread's
    /// alone (2.0 on two free cores; less where the host shares them)
    package var compute_capacity: Double?
    package var tessera_version: String
    package var isa: String
    package var cpu: String
}

package struct Report: Codable, Equatable, Sendable {
    package var schema_version: Int
    package var scenario: String
    /// how fused chains ran: hybrid, op-by-op or registers
    package var fused_execution: String
    /// what ran the tiles: concurrentPerform or spinningPool
    package var executor: String
    package var machine: Machine
    package var results: [Record]
}

package struct RunOptions: Sendable {
    package var workloads: [Workload]
    package var threadList: [Int]
    package var repetitions: Int
    package var topology: Topology
    package var tileBytes: Int?
    package var scenarioName: String
    package var execution: FusedExecution
    package var executor: ExecutorKind
    /// `--executor host`: the tiles run through the HostExecutor interface (on concurrentPerform),
    /// which measures what the host-pool path costs over the built-in one.
    package var hostPool = false
    /// Rounds the repetitions are split over, worker counts taking turns (see `Runner.run`).
    package var rounds: Int
    /// Store policies each workload runs under (`--stores`); more than one is the stores experiment.
    package var stores: [StorePolicy]
    /// The cache model every runtime of the run uses.
    package var cache: CacheModel

    package init(workloads: [Workload], threadList: [Int], repetitions: Int, topology: Topology, tileBytes: Int? = nil,
                scenarioName: String, execution: FusedExecution = .hybrid, executor: ExecutorKind = .concurrentPerform,
                rounds: Int = 3, stores: [StorePolicy] = [.auto], cache: CacheModel = .detected) {
        self.rounds = max(1, rounds)
        self.stores = stores.isEmpty ? [.auto] : stores
        self.cache = cache
        self.execution = execution
        self.executor = executor
        self.workloads = workloads
        self.threadList = threadList
        self.repetitions = repetitions
        self.topology = topology
        self.tileBytes = tileBytes
        self.scenarioName = scenarioName
    }
}

/// Runs the thread-scaling experiment.
package struct Runner {
    package var options: RunOptions
    package var progress: (String) -> Void

    package init(options: RunOptions, progress: @escaping (String) -> Void = { _ in }) {
        self.options = options
        self.progress = progress
    }

    func runtime(threads: Int, stores: StorePolicy = .auto) throws -> Runtime {
        try Runtime(threads: threads, tileBytes: options.tileBytes, topology: options.topology, executor: options.executor,
                    cache: options.cache, stores: stores, host: options.hostPool ? DispatchHostPool(threads: threads) : nil)
    }

    package func run() throws -> Report {
        let cores = Runtime.activeCores
        if cores > 1 {
            progress("keeping \(cores) threads busy for 0.5 s so that the host settles")
            Self.occupy(threads: cores, seconds: 0.5)
        }
        let copyCounts = Set(options.threadList.map { min($0, cores) } + [1, cores])
        var copyBW: [Int: Double] = [:]
        var copyKinds: [Int: (streaming: Double, regular: Double)] = [:]
        for t in copyCounts.sorted() {
            progress("measuring copy bandwidth with \(t) worker(s)")
            let c = try Self.copyBandwidths(runtime: runtime(threads: t), repetitions: max(5, options.repetitions / 2))
            copyKinds[t] = c
            copyBW[t] = max(c.streaming, c.regular)
        }
        progress("measuring compute capacity with \(cores) thread(s)")
        let machineCapacity = cores > 1 ? Self.computeCapacity(threads: cores) : 1
        var results: [Record] = []
        let total = options.workloads.count * options.threadList.count * options.stores.count
        var done = 0
        for w in options.workloads {
            let bench = try Bench(workload: w, execution: options.execution,
                                  placement: try runtime(threads: options.threadList.max() ?? 1))
            let floor = bench.computeFloor()
            // a copy of the workload's own size (2^24 floats for larger ones), measured again for
            // every workload: from L3 where it fits, which is the limit a cache-resident
            // memory-bound op meets; and the host's bandwidth drifts over a run (a relu read
            // 145 % of a 2^24 copy measured only at the start)
            var sizedBW: [Int: Double] = [:]
            for t in copyCounts.sorted() {
                sizedBW[t] = try Self.copyBandwidth(runtime: runtime(threads: t), count: min(w.count, 1 << 24),
                                                    repetitions: max(5, options.repetitions / 2))
            }
            // the host's share of the cores drifts: measured again for every workload
            let capacity = cores > 1 ? Self.computeCapacity(threads: cores) : 1
            // Each worker count's runs are split over rounds that take turns (1, 2, 4 .. 1, 2,
            // 4 ..): the host's clock and share of the cores drift over seconds, and a speedup
            // is only meaningful when both of its times saw the same drift.
            // (the store policies of the stores experiment take turns the same way)
            let runtimes = try options.stores.flatMap { p in try options.threadList.map { try runtime(threads: $0, stores: p) } }
            var timesOf = [[Double]](repeating: [], count: runtimes.count)
            for (round, reps) in Self.split(repetitions: options.repetitions, rounds: options.rounds).enumerated() {
                for (i, rt) in runtimes.enumerated() {
                    if round == 0 {
                        done += 1
                        let t = rt.threads
                        let p = options.stores.count > 1 ? ", \(rt.stores.rawValue) stores" : ""
                        progress("[\(done)/\(total)] \(w.label), \(t) worker(s)\(p)\(t > cores ? " (more workers than the \(cores) cores)" : "")")
                    }
                    timesOf[i] += bench.time(runtime: rt, repetitions: reps)
                }
            }
            var base: Double?
            for (i, rt) in runtimes.enumerated() {
                let t = rt.threads
                let times = timesOf[i]
                let med = median(times)
                if i % options.threadList.count == 0 { base = nil } // each store policy's own 1-worker time
                if t == 1 { base = med }
                let eff = min(t, cores)
                let bw = sizedBW[eff] ?? copyBW[eff] ?? copyBW[cores]!
                let bytes = Double(w.count) * w.op.bytesPerElement
                // compute: the cache-resident time over what `eff` threads really get together
                let lanes = eff == 1 ? 1.0 : min(Double(eff), capacity * Double(eff) / Double(cores))
                let roof = max(bytes / (bw * 1e9), Double(w.count) * floor * 1e-9 / lanes)
                let speedup = base.map { $0 / med }
                results.append(Record(
                    op: w.op.rawValue, shape: w.shape, threads: t, fused: w.fused, median_seconds: med,
                    min_seconds: times.min()!, max_seconds: times.max()!, ns_per_element: med * 1e9 / Double(w.count),
                    gb_per_s: bytes / med / 1e9, speedup: speedup, efficiency: speedup.map { $0 / Double(eff) },
                    roofline_percent: roof / med * 100, copy_gb_per_s: bw, compute_floor_ns_per_element: floor,
                    compute_capacity: lanes, oversubscribed: t > cores, stores: rt.stores.rawValue,
                    streaming: rt.streams(outputBytes: w.count * 4, workers: t)))
            }
        }
        let machine = Machine(
            cores: cores, numa_nodes: options.topology.nodes.count, topology_source: options.topology.source.rawValue,
            copy_gb_per_s: copyBW[cores]!, copy_gb_per_s_1_thread: copyBW[1]!,
            copy_streaming_gb_per_s: copyKinds[cores]!.streaming, copy_regular_gb_per_s: copyKinds[cores]!.regular,
            cache_model: options.cache.description, llc_counted_bytes: options.cache.llcBytes,
            compute_capacity: machineCapacity, tessera_version: tesseraVersion,
            isa: ISA.best.description, cpu: Self.cpuModel())
        return Report(schema_version: 2, scenario: options.scenarioName, fused_execution: options.execution.rawValue,
                      executor: options.hostPool ? "host" : options.executor.rawValue,
                      machine: machine, results: results)
    }

    /// Timed runs per round: `repetitions` split as evenly as possible over at most
    /// `rounds` rounds (each round at least one run).
    package static func split(repetitions: Int, rounds: Int) -> [Int] {
        let r = max(1, min(rounds, repetitions))
        return (0..<r).map { repetitions * ($0 + 1) / r - repetitions * $0 / r }
    }

    /// The memory roofline: the faster of a streaming-store and a regular-store copy of
    /// `count` floats through the runtime (2^24 floats measure DRAM, smaller counts the cache
    /// they fit in).  Independent of Tessera's store policy, so a wrong policy shows up as a
    /// low roofline percentage instead of lowering the roofline with it.
    package static func copyBandwidth(runtime: Runtime, count: Int = 1 << 24, repetitions: Int = 7) -> Double {
        let c = copyBandwidths(runtime: runtime, count: count, repetitions: repetitions)
        return max(c.streaming, c.regular)
    }

    /// Streaming-store and regular-store copy bandwidth (read + write bytes / median time),
    /// the two taking turns over three rounds.
    package static func copyBandwidths(runtime: Runtime, count: Int = 1 << 24, repetitions: Int = 7)
        -> (streaming: Double, regular: Double) {
        let x = AlignedStorage(count: count), y = AlignedStorage(count: count)
        x.pointer.initialize(repeating: 1, count: count)
        y.pointer.initialize(repeating: 0, count: count)
        // tiles as large as the runtime's (a copy is as cheap per byte as relu); forced parallel
        let plan = runtime.plan(units: count, bytesPerUnit: 4, nsPerUnit: 1, unitsPerTile: max(1, runtime.tileBytes / 4))
        let xs = SendablePointer(x.pointer), ys = SendablePointer(y.pointer)
        var times: [[Double]] = [[], []]
        for reps in split(repetitions: repetitions, rounds: 3) {
            for (i, nt) in [Int32(1), 0].enumerated() {
                times[i] += timeRuns(reps) {
                    runtime.run(plan) { ctx in
                        KernelTable.best.kernels.copy(xs[ctx.range.lowerBound], ys[ctx.range.lowerBound], ctx.range.count, nt)
                    }
                }
            }
        }
        let bw = times.map { Double(count) * 8 / median($0) / 1e9 }
        return (bw[0], bw[1])
    }

    /// Total throughput of `threads` core-bound loops run at once, over one loop alone
    /// (median of 7 rounds; timed from the moment all threads have started to the last
    /// finish).  On two free cores 2.0; a host that shares the cores with other guests gives
    /// less, and then no executor can scale compute-bound work further.
    package static func computeCapacity(threads: Int, iterations: Int = 4_000_000) -> Double {
        final class Round: Sendable {
            let arrived = Atomic<Int>(0), finished = Atomic<Int>(0)
            let start = Atomic<UInt64>(0), end = Atomic<UInt64>(0)
        }
        func one() -> Double {
            let t = DispatchTime.now().uptimeNanoseconds
            _ = ts_compute_burn(iterations)
            return Double(DispatchTime.now().uptimeNanoseconds - t)
        }
        func together() -> Double {
            let r = Round()
            let body: @Sendable () -> Void = {
                if r.arrived.add(1, ordering: .acquiringAndReleasing).newValue == threads {
                    r.start.store(DispatchTime.now().uptimeNanoseconds, ordering: .releasing)
                }
                while r.start.load(ordering: .acquiring) == 0 {}
                _ = ts_compute_burn(iterations)
                r.end.max(DispatchTime.now().uptimeNanoseconds, ordering: .acquiringAndReleasing)
                r.finished.add(1, ordering: .acquiringAndReleasing)
            }
            // plain threads, not the executor under test: their start-up must not count
            for _ in 1..<threads { Thread(block: body).start() }
            body()
            while r.finished.load(ordering: .acquiring) < threads { sched_yield() }
            return Double(r.end.load(ordering: .acquiring) - r.start.load(ordering: .acquiring))
        }
        var ratios: [Double] = []
        for _ in 0..<7 { ratios.append(Double(threads) * one() / together()) }
        return median(ratios)
    }

    /// Keeps `threads` threads computing for `seconds`.
    ///
    /// Why: on the VM this was developed on, a guest that has been idle gets its second vCPU's
    /// full share only after a while: for the first ~0.3-0.5 s of two busy threads both ran at
    /// half speed (2-worker relu at 2^20 took as long as 1 worker, then 1.9x less).
    /// A run that starts with that phase measures the host, not Tessera.
    package static func occupy(threads: Int, seconds: Double) {
        let end = DispatchTime.now().uptimeNanoseconds + UInt64(seconds * 1e9)
        let running = Atomic<Int>(threads - 1)
        let body: @Sendable () -> Void = {
            while DispatchTime.now().uptimeNanoseconds < end { _ = ts_compute_burn(100_000) }
        }
        for _ in 1..<max(threads, 1) {
            Thread {
                body()
                running.subtract(1, ordering: .releasing)
            }.start()
        }
        body()
        while running.load(ordering: .acquiring) > 0 { sched_yield() }
    }

    static func cpuModel() -> String {
        guard let s = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown" }
        func value(_ key: String) -> String? {
            s.split(separator: "\n").first { $0.hasPrefix(key) }
                .flatMap { $0.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } }
        }
        if let model = value("model name") { return model }
        // arm64 Linux has no model name: the implementer and part numbers name the core
        if let imp = value("CPU implementer"), let part = value("CPU part") {
            let known = ["0x41/0xd0c": "Neoverse N1", "0x41/0xd40": "Neoverse V1", "0x41/0xd49": "Neoverse N2",
                         "0x41/0xd4f": "Neoverse V2", "0x41/0xd8e": "Neoverse N3", "0xc0/0xac3": "Ampere-1"]
            return "arm64 " + (known["\(imp)/\(part)"] ?? "implementer \(imp) part \(part)")
        }
        return "unknown"
    }
}

/// Input, output and the call for one workload.
struct Bench {
    let workload: Workload
    let x: AlignedStorage
    let y: AlignedStorage
    let pipeline: Pipeline
    let execution: FusedExecution
    /// backward workloads: the gradient dy, and the saved tensor the op reads (the forward's output)
    let grad: AlignedStorage?
    let saved: AlignedStorage?

    /// `placement`: the runtime whose NUMA nodes the input and output pages are placed on
    /// (first touch by each node's workers), as a framework using Tessera's tensors would.
    init(workload: Workload, execution: FusedExecution = .hybrid, placement: Runtime? = nil) throws {
        self.workload = workload
        self.execution = execution
        let t = try Tensor(randomNormal: workload.shape, standardDeviation: 2, seed: 7)
        let xs = placement?.allocate(count: t.count) ?? AlignedStorage(count: t.count)
        let ys = placement?.allocate(count: t.count) ?? AlignedStorage(count: t.count)
        t.withUnsafeBufferPointer { xs.pointer.update(from: $0.baseAddress!, count: t.count) }
        ys.pointer.initialize(repeating: 0, count: t.count)
        x = xs
        y = ys
        switch workload.op {
        case .softmax, .softmaxBackward: pipeline = Pipeline(nodes: [.softmax(dim: -1, log: false)])
        case .logSoftmax, .logSoftmaxBackward: pipeline = Pipeline(nodes: [.softmax(dim: -1, log: true)])
        case .softmaxDim0: pipeline = Pipeline(nodes: [.softmax(dim: 0, log: false)])
        case .backward(let op): pipeline = Pipeline(nodes: [.step(.unary(op))])
        default: pipeline = Pipeline(nodes: workload.op.chainSteps.map { .step($0) })
        }
        if workload.op.isBackward {
            let g = placement?.allocate(count: t.count) ?? AlignedStorage(count: t.count)
            let dy = try Tensor(randomNormal: workload.shape, seed: 8)
            dy.withUnsafeBufferPointer { g.pointer.update(from: $0.baseAddress!, count: t.count) }
            let s = placement?.allocate(count: t.count) ?? AlignedStorage(count: t.count)
            try RawOps.run(pipeline, input: xs.pointer, output: s.pointer, shape: workload.shape)
            grad = g
            saved = s
        } else {
            grad = nil
            saved = nil
        }
    }

    func call(_ runtime: Runtime, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, shape: [Int]) {
        let n = shape.reduce(1, *)
        switch workload.op {
        case .backward(let op):
            try! RawOps.backward(.unary(op), input: input, output: saved!.pointer, gradOutput: grad!.pointer, gradInput: output,
                                 count: n, runtime: runtime)
        case .softmaxBackward, .logSoftmaxBackward:
            try! RawOps.softmaxBackward(output: saved!.pointer, gradOutput: grad!.pointer, gradInput: output, shape: shape,
                                        dim: -1, log: workload.op == .logSoftmaxBackward, runtime: runtime)
        case .chain4Backward:
            try! RawOps.backward(pipeline, input: input, gradOutput: grad!.pointer, gradInput: output, shape: shape,
                                 fused: workload.fused, runtime: runtime)
        default:
            try! RawOps.run(pipeline, input: input, output: output, shape: shape, fused: workload.fused, execution: execution,
                            runtime: runtime)
        }
    }

    func time(runtime: Runtime, repetitions: Int) -> [Double] {
        timeRuns(repetitions) { call(runtime, input: x.pointer, output: y.pointer, shape: workload.shape) }
    }

    /// Single-worker ns/element on cache-resident data (64 KiB in, 64 KiB out).
    func computeFloor() -> Double {
        let shape: [Int]
        if workload.op == .softmaxDim0 {
            // reduced along the columns: keep up to 256 of them, 64+ columns wide
            let rows = min(workload.shape.first ?? 1, 256)
            shape = [rows, 16384 / rows]
        } else if workload.op.isSoftmax {
            let cols = min(workload.shape.last ?? 1, 4096)
            shape = [max(1, 16384 / cols), cols]
        } else {
            shape = [16384]
        }
        let n = shape.reduce(1, *)
        let rt = try! Runtime(threads: 1)
        let reps = 200
        let a = AlignedStorage(count: n), b = AlignedStorage(count: n)
        for i in 0..<n { a.pointer[i] = x.pointer[i % workload.count] }
        b.pointer.initialize(repeating: 0, count: n)
        let times = timeRuns(5) {
            for _ in 0..<reps { call(rt, input: a.pointer, output: b.pointer, shape: shape) }
        }
        return median(times) * 1e9 / Double(n * reps)
    }
}

/// `repetitions` timed runs after a warm-up of at least two calls and `warmupNs` of calls.
///
/// Why time, not a count: on a VM whose idle vCPUs halt, a vCPU that has just woken is
/// placed by the host wherever it finds room (measured here: the first few milliseconds of
/// two busy workers after an idle spell can run at half speed each); the timed runs should
/// see the steady state an embedder calling op after op gets, not the host's settling.
func timeRuns(_ repetitions: Int, warmupNs: UInt64 = 20_000_000, _ body: () -> Void) -> [Double] {
    let w0 = DispatchTime.now().uptimeNanoseconds
    var calls = 0
    while calls < 2 || DispatchTime.now().uptimeNanoseconds - w0 < warmupNs {
        body()
        calls += 1
    }
    return (0..<repetitions).map { _ in
        let t0 = DispatchTime.now().uptimeNanoseconds
        body()
        return Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
    }
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// A host pool for `--executor host`: DispatchQueue.concurrentPerform behind the HostExecutor
/// interface, as an embedder would wrap its own pool.
final class DispatchHostPool: HostExecutor {
    let threadCount: Int
    init(threads: Int) { threadCount = threads }
    func parallelFor(_ n: Int, _ task: @Sendable (Int) -> Void) {
        DispatchQueue.concurrentPerform(iterations: n, execute: task)
    }
}
