import Foundation
import Testing
import TesseraScaling
import Tessera

let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

func resolve(threads: Int? = nil, threadList: String? = nil, ops: String? = nil, sizes: String? = nil, repetitions: Int? = nil,
             config: String? = nil, topology: String? = nil, format: String = "table", tileBytes: Int? = nil) throws -> ScaleTestConfiguration {
    try ScaleTestConfiguration.resolve(threads: threads, threadList: threadList, ops: ops, sizes: sizes, repetitions: repetitions,
                                       config: config ?? "\(root)/configs/scenarios/default.json", topology: topology,
                                       plan: false, format: format, output: nil, quick: false, tileBytes: tileBytes)
}

func message(_ body: () throws -> Void) -> String {
    do { try body(); return "" } catch { return "\(error)" }
}

@Suite("scale-test arguments, configs and JSON")
struct ScaleTestTests {
    @Test func threadSweeps() throws {
        #expect(try ThreadSpec.sweep(upTo: 32) == [1, 2, 4, 8, 16, 32])
        #expect(try ThreadSpec.sweep(upTo: 6) == [1, 2, 4, 6])
        #expect(try ThreadSpec.sweep(upTo: 1) == [1])
        #expect(try ThreadSpec.parse(list: "1,2,32") == [1, 2, 32])
        #expect(message { _ = try resolve(threads: 0) } == "--threads: '0' is not valid: expected an integer >= 1")
        #expect(message { _ = try resolve(threadList: "1,x") }.contains("--thread-list: 'x'"))
    }

    @Test func repetitionsAreSplitOverRounds() throws {
        #expect(Runner.split(repetitions: 31, rounds: 3) == [10, 10, 11])
        #expect(Runner.split(repetitions: 15, rounds: 3) == [5, 5, 5])
        #expect(Runner.split(repetitions: 2, rounds: 3) == [1, 1])
        #expect(Runner.split(repetitions: 7, rounds: 1) == [7])
        let m = message {
            _ = try ScaleTestConfiguration.resolve(threads: nil, threadList: nil, ops: nil, sizes: nil, repetitions: nil, config: nil,
                                                   topology: nil, plan: false, format: "table", output: nil, quick: false,
                                                   tileBytes: nil, rounds: 0)
        }
        #expect(m == "--rounds: '0' is not valid: expected an integer >= 1")
    }

    @Test func sizesAndShapes() throws {
        #expect(try ShapeSpec.parse(list: "16777216,4096x4096,8x2097152") == [[16_777_216], [4096, 4096], [8, 2_097_152]])
        #expect(message { _ = try ShapeSpec.parse(list: "12x") }.contains("'12x'"))
        #expect(message { _ = try ShapeSpec.parse(list: "0") }.contains("positive"))
        #expect(message { _ = try ShapeSpec.parse(list: "100000x100000") }.contains("2^31"))
    }

    @Test func unknownOpsNameTheChoices() {
        let m = message { _ = try resolve(ops: "relu,swish") }
        #expect(m.contains("--ops: 'swish'") && m.contains("gelu_tanh") && m.contains("chain4"))
        #expect(message { _ = try resolve(format: "xml") }.contains("--format"))
        #expect(message { _ = try resolve(repetitions: 0) }.contains("--repetitions"))
    }

    @Test func opsAndSizesMakeWorkloads() throws {
        let c = try resolve(threadList: "1,2", ops: "sigmoid", sizes: "16777216")
        #expect(c.options.workloads == [Workload(op: .elementwise(.sigmoid), shape: [16_777_216])])
        #expect(c.options.threadList == [1, 2])
        let s = try resolve(threadList: "2", ops: "softmax", sizes: "8x2097152")
        #expect(s.options.workloads == [Workload(op: .softmax, shape: [8, 2_097_152])])
        let chain = try resolve(ops: "chain4", sizes: "1024")
        #expect(chain.options.workloads.map(\.fused) == [true, false])
    }

    @Test(arguments: ["default", "quick"])
    func shippedScenariosParse(name: String) throws {
        let s = try Scenario.load(path: "\(root)/configs/scenarios/\(name).json")
        #expect(!s.workloads.isEmpty && s.repetitions >= 1)
        // every activation of the op table, whatever rows it has
        #expect(Set(s.workloads.map(\.op)).isSuperset(of: ScaleOp.defaultSweep.filter { $0.unary != nil } + [.softmax, .chain4]))
    }

    @Test func badScenarioFilesNameFileKeyAndExpectation() {
        let cases: [(String, String)] = [
            ("[]", "(file)"),
            ("{\"workloads\": []}", "name"),
            ("{\"name\": \"x\", \"workloads\": []}", "workloads"),
            ("{\"name\": \"x\", \"repetitions\": 0, \"workloads\": [{}]}", "repetitions"),
            ("{\"name\": \"x\", \"workloads\": [{\"ops\": [\"relu\"], \"sizes\": [\"1x\"]}]}", "workloads[0].sizes[0]"),
            ("{\"name\": \"x\", \"workloads\": [{\"ops\": [\"nope\"], \"sizes\": [\"4\"]}]}", "workloads[0].ops[0]"),
            ("{\"name\": \"x\", \"workloads\": [{\"ops\": [\"relu\"]}]}", "workloads[0].sizes"),
            ("{\"name\": \"x\", \"speed\": 1, \"workloads\": [{\"ops\": [\"relu\"], \"sizes\": [\"4\"]}]}", "speed"),
        ]
        for (text, key) in cases {
            let path = NSTemporaryDirectory() + "tessera-scenario-\(UUID().uuidString).json"
            _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
            #expect(throws: ScaleTestError.self) { try Scenario.load(path: path) }
            let m = message { _ = try Scenario.load(path: path) }
            #expect(m.hasPrefix("\(path): key '\(key)': expected"), "\(m)")
        }
        #expect(message { _ = try resolve(config: "/missing.json") } == "/missing.json: key '(file)': expected a readable JSON file")
        #expect(message { _ = try resolve(topology: "/missing-topo.json") }.contains("/missing-topo.json"))
    }

    @Test func jsonReportHasTheDocumentedShape() throws {
        let c = try resolve(threadList: "1,2", ops: "sigmoid,softmax", sizes: "4096", repetitions: 2, format: "json")
        let report = try Runner(options: c.options).run()
        #expect(report.results.count == 4)
        let data = Data(Reports.json(report).utf8)
        let obj = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let machine = try #require(obj["machine"] as? [String: Any])
        for key in ["cores", "numa_nodes", "copy_gb_per_s", "compute_capacity", "tessera_version"] { #expect(machine[key] != nil, "machine.\(key)") }
        let results = try #require(obj["results"] as? [[String: Any]])
        for r in results {
            for key in ["op", "shape", "threads", "fused", "median_seconds", "ns_per_element", "gb_per_s", "compute_capacity"] { #expect(r[key] != nil, "\(key)") }
        }
        #expect(results.map { $0["op"] as? String } == ["sigmoid", "sigmoid", "softmax", "softmax"])
        #expect(results.map { $0["threads"] as? Int } == [1, 2, 1, 2])
        let decoded = try JSONDecoder().decode(Report.self, from: data)
        #expect(decoded == report)
        #expect(Reports.csv(report).split(separator: "\n").count == 5)
        let svg = Reports.svg(report)
        #expect(svg.hasPrefix("<svg") && svg.contains("ideal") && svg.contains("sigmoid 4096"))
        #expect(Reports.table(report).contains("speedup"))
    }

    @Test func planTextShowsTilesAndNodes() throws {
        let c = try resolve(threadList: "1,4", ops: "relu", sizes: "16777216", topology: "\(root)/configs/topologies/2-sockets-16-cores.json")
        let text = try c.planText()
        #expect(text.contains("2 node(s), 32 CPU(s)"))
        #expect(text.contains("node 0: tiles 0..<"))
        #expect(text.contains("node 1: tiles"))
    }
}
