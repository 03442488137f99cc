import Foundation
import Tessera

/// scale-test's options after parsing, turned into a run.  The executable only parses
/// arguments; everything testable lives here.
package struct ScaleTestConfiguration: Sendable {
    package var options: RunOptions
    package var format: OutputFormat
    package var outputDirectory: String?
    package var planOnly: Bool

    /// Resolves the raw option values into a run (throws ScaleTestError with clear messages).
    package static func resolve(
        threads: Int?, threadList: String?, ops: String?, sizes: String?, repetitions: Int?, config: String?,
        topology: String?, plan: Bool, format: String, output: String?, quick: Bool, tileBytes: Int?,
        execution: String = "hybrid", executor: String = "concurrentPerform", noNUMA: Bool = false,
        rounds: Int = 3, stores: String = "auto", cache: String? = nil
    ) throws -> ScaleTestConfiguration {
        let policies = try stores.split(separator: ",").map { raw in
            let n = raw.trimmingCharacters(in: .whitespaces)
            guard let p = StorePolicy(rawValue: n) else {
                throw ScaleTestError.invalidValue(option: "--stores", value: n, expected: "auto, streaming or regular (comma-separated)")
            }
            return p
        }
        guard !policies.isEmpty else {
            throw ScaleTestError.invalidValue(option: "--stores", value: stores, expected: "auto, streaming or regular (comma-separated)")
        }
        var model = CacheModel.detected
        if let cache {
            do {
                model = try CacheModel.fromEnvironment(["TESSERA_CACHE": cache])!
            } catch {
                throw ScaleTestError.invalidValue(option: "--cache", value: cache,
                                                  expected: "key=size pairs as TESSERA_CACHE takes (l1, l2, l3, shared, llc), e.g. l2=2M,l3=260M,shared=2")
            }
        }
        let hostPool = executor == "host"
        guard let exe = hostPool ? .concurrentPerform : ExecutorKind(rawValue: executor), exe != .serial else {
            throw ScaleTestError.invalidValue(option: "--executor", value: executor, expected: "concurrentPerform, spinningPool or host")
        }
        guard let exec = FusedExecution(rawValue: execution) else {
            throw ScaleTestError.invalidValue(option: "--execution", value: execution, expected: "hybrid, op-by-op or registers")
        }
        guard let fmt = OutputFormat(rawValue: format) else {
            throw ScaleTestError.invalidValue(option: "--format", value: format, expected: "table, json or csv")
        }
        if let r = repetitions, r < 1 {
            throw ScaleTestError.invalidValue(option: "--repetitions", value: "\(r)", expected: "an integer >= 1")
        }
        guard rounds >= 1 else {
            throw ScaleTestError.invalidValue(option: "--rounds", value: "\(rounds)", expected: "an integer >= 1")
        }
        if let tb = tileBytes, tb < 64 {
            throw ScaleTestError.invalidValue(option: "--tile-bytes", value: "\(tb)", expected: "an integer >= 64")
        }
        // scenario: --config, else configs/scenarios/{quick,default}.json, else built in
        var scenario: Scenario
        if let config {
            scenario = try Scenario.load(path: config)
        } else if let dir = Scenario.configsDirectory() {
            scenario = try Scenario.load(path: "\(dir)/scenarios/\(quick ? "quick" : "default").json")
        } else {
            scenario = Scenario.builtInDefault
            if quick {
                scenario.repetitions = 5
                scenario.workloads = scenario.workloads.map { w in
                    var w = w
                    w.shape = w.op.isSoftmax ? [w.shape[0] / 4, w.shape[1]] : [1 << 22]
                    return w
                }
            }
        }
        // --ops / --sizes override the scenario's workloads
        if ops != nil || sizes != nil {
            let opList = try ops.map(ScaleOp.parse(list:)) ?? ScaleOp.defaultSweep
            let sizeList = try sizes.map { try ShapeSpec.parse(list: $0) }
            var ws: [Workload] = []
            for op in opList {
                let shapes = sizeList ?? (op == .softmaxDim0 ? [[4096, 4096]]
                    : op.isSoftmax ? [[4096, 4096], [65536, 256], [8, 1 << 21]] : [[1 << 24]])
                for s in shapes {
                    for f in op.isChain ? [true, false] : [true] { ws.append(Workload(op: op, shape: s, fused: f)) }
                }
            }
            scenario.workloads = ws
        }
        var threadsList: [Int]
        if let threadList {
            threadsList = try ThreadSpec.parse(list: threadList)
        } else if let threads {
            threadsList = try ThreadSpec.sweep(upTo: threads)
        } else {
            threadsList = try scenario.threads ?? ThreadSpec.sweep(upTo: Runtime.activeCores)
        }
        var topo: Topology
        if let topology {
            do { topo = try Topology.load(path: topology) } catch let e as TopologyFileError {
                throw ScaleTestError.badFile(path: e.path, key: e.key, expected: e.expected)
            }
        } else {
            topo = Topology.current
        }
        if noNUMA {
            // the non-NUMA baseline: one node holding every CPU (no pinning, no placement)
            topo = Topology(nodes: [.init(id: 0, cpus: topo.nodes.flatMap(\.cpus).sorted())], source: .synthetic,
                            origin: "--no-numa: \(topo.nodes.count) node(s) flattened")
        }
        var opts = RunOptions(workloads: scenario.workloads, threadList: threadsList,
                              repetitions: repetitions ?? scenario.repetitions, topology: topo, tileBytes: tileBytes,
                              scenarioName: scenario.name, execution: exec, executor: exe, rounds: rounds,
                              stores: policies, cache: model)
        opts.hostPool = hostPool
        return ScaleTestConfiguration(options: opts, format: fmt, outputDirectory: output, planOnly: plan)
    }

    /// The printable plan of every workload at the largest worker count.
    package func planText() throws -> String {
        let t = options.threadList.max() ?? 1
        let rt = try Runtime(threads: t, tileBytes: options.tileBytes, topology: options.topology, executor: options.executor,
                             cache: options.cache, stores: options.stores[0])
        var s = options.topology.description + options.cache.description + "\n" + "kernels: \(ISA.best) (\(KernelTable.available.map { $0.isa.description }.joined(separator: ", ")) available)\n\n"
        for w in options.workloads {
            let b = try Bench(workload: w, execution: options.execution)
            s += "== \(w.label), \(t) worker(s)\n"
            s += try b.pipeline.schedule(shape: w.shape, runtime: rt, fused: w.fused) + "\n"
        }
        return s
    }

    /// Runs the sweep, prints the report in `format` to stdout, writes files to the output folder.
    package func execute(progress: @escaping (String) -> Void) throws -> Report {
        let report = try Runner(options: options, progress: progress).run()
        switch format {
        case .table: print(Reports.table(report), terminator: "")
        case .json: print(Reports.json(report))
        case .csv: print(Reports.csv(report), terminator: "")
        }
        if let dir = outputDirectory {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try Reports.json(report).write(toFile: "\(dir)/scale-test.json", atomically: true, encoding: .utf8)
            try Reports.svg(report).write(toFile: "\(dir)/scale-test.svg", atomically: true, encoding: .utf8)
            try Reports.table(report).write(toFile: "\(dir)/scale-test.txt", atomically: true, encoding: .utf8)
            FileHandle.standardError.write(Data("wrote \(dir)/scale-test.json, .svg and .txt\n".utf8))
        }
        return report
    }
}
