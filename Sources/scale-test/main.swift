import ArgumentParser
import Foundation
import TesseraScaling

struct ScaleTest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scale-test",
        abstract: "Tessera's thread-scaling experiment: each op's time, bandwidth and speedup as workers grow.",
        discussion: """
            Sweeps workers 1, 2, 4, ... up to --threads over the scenario in configs/scenarios/default.json \
            (--quick: quick.json) and reports median time, ns/element, GB/s, speedup, parallel efficiency \
            and percent of the roofline (copy bandwidth and cache-resident compute, measured in the same run).
            Ops: \(ScaleOp.allCases.map(\.rawValue).joined(separator: ", ")) (chain4: gelu(tanh(sigmoid(relu(x)))), \
            chain_cheap: scale, bias, relu, clamp).
            Environment: TESSERA_THREADS, TESSERA_TOPOLOGY, TESSERA_ISA, TESSERA_CACHE (see README).
            """)

    @Option(help: "Sweep workers 1, 2, 4, ... up to N (N may exceed the cores).") var threads: Int?
    @Option(name: .customLong("thread-list"), help: "Explicit worker counts, e.g. 1,2,32.") var threadList: String?
    @Option(help: "Comma-separated ops (default: the scenario's).") var ops: String?
    @Option(help: "Comma-separated sizes: element counts or ROWSxCOLS, e.g. 16777216,4096x4096,8x2097152.") var sizes: String?
    @Option(help: "Timed runs per point (median and min-max are reported).") var repetitions: Int?
    @Option(help: "Scenario file (JSON, see configs/README.md).") var config: String?
    @Option(help: "Topology file (JSON, see configs/README.md) instead of the machine's.") var topology: String?
    @Option(name: .customLong("tile-bytes"), help: "Tile size in bytes (default: from the L2 size).") var tileBytes: Int?
    @Flag(help: "Print the tile/NUMA plan of each workload instead of timing.") var plan = false
    @Option(help: "table, json or csv.") var format = "table"
    @Option(help: "Folder for scale-test.json, scale-test.svg (speedup chart) and scale-test.txt.") var output: String?
    @Flag(help: "The quick scenario: smaller sizes, fewer repetitions.") var quick = false
    @Option(help: "How fused chains run: hybrid (default), op-by-op (each step over L1 blocks) or registers (whole chain per vector).")
    var execution = "hybrid"
    @Flag(name: .customLong("no-numa"), help: "Treat the topology as one node (the non-NUMA baseline: no pinning, no placement).")
    var noNUMA = false
    @Flag(help: "Run the grain-size experiment (plain loop vs 1 worker vs automatic vs all workers, 2^12...2^26) instead.")
    var grain = false
    @Option(help: "What runs the tiles: concurrentPerform (default), spinningPool (persistent threads that spin ~100 µs between calls) or host (concurrentPerform through the HostExecutor interface: that path's overhead).")
    var executor = "concurrentPerform"
    @Option(help: "Rounds each point's repetitions are split over, worker counts taking turns, so that the host's drift hits every worker count alike (each round starts with 20 ms of warm-up calls).")
    var rounds = 3
    @Option(help: "Store policies, comma-separated: auto (the cache model's choice), streaming, regular. More than one runs the stores experiment: every point under each, and a summary of auto against the better one.")
    var stores = "auto"
    @Option(help: "Cache sizes to model instead of the machine's report, as TESSERA_CACHE takes them: l1=48K,l2=2M,l3=260M,shared=2 (llc=SIZE sets the counted LLC directly).")
    var cache: String?

    func run() throws {
        let cfg: ScaleTestConfiguration
        do {
            cfg = try ScaleTestConfiguration.resolve(
                threads: threads, threadList: threadList, ops: ops, sizes: sizes, repetitions: repetitions, config: config,
                topology: topology, plan: plan, format: format, output: output, quick: quick, tileBytes: tileBytes,
                execution: execution, executor: executor, noNUMA: noNUMA, rounds: rounds, stores: stores, cache: cache)
        } catch let e as ScaleTestError {
            throw ValidationError(e.description)
        }
        if plan {
            print(try cfg.planText(), terminator: "")
            return
        }
        if grain {
            let op = cfg.options.workloads.first?.op.unary ?? .sigmoid
            let t = cfg.options.threadList.max() ?? 2
            let rows = try GrainExperiment.run(op: op, log2Sizes: Array(stride(from: 12, through: 26, by: 1)), threads: t,
                                               executor: cfg.options.executor, repetitions: repetitions ?? 15,
                                               hostPool: cfg.options.hostPool) { msg in
                FileHandle.standardError.write(Data("\(msg)\n".utf8))
            }
            if format == "json" {
                let enc = JSONEncoder()
                enc.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try enc.encode(rows), as: UTF8.self))
            } else {
                print(GrainExperiment.table(rows, op: op, threads: t, executor: cfg.options.executor, hostPool: cfg.options.hostPool),
                      terminator: "")
            }
            return
        }
        let tty = isatty(STDERR_FILENO) != 0
        _ = try cfg.execute { msg in
            let line = tty ? "\r\u{1B}[K\(msg)" : "\(msg)\n"
            FileHandle.standardError.write(Data(line.utf8))
        }
        if tty { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}

ScaleTest.main()
