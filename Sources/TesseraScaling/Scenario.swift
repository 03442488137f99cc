import Foundation

/// A scenario file (`configs/scenarios/*.json`); see configs/README.md for the schema.
package struct Scenario: Equatable, Sendable {
    package var name: String
    package var description: String
    package var repetitions: Int
    package var threads: [Int]?
    package var workloads: [Workload]

    package init(name: String, description: String = "", repetitions: Int, threads: [Int]? = nil, workloads: [Workload]) {
        self.name = name
        self.description = description
        self.repetitions = repetitions
        self.threads = threads
        self.workloads = workloads
    }

    package static func load(path: String) throws -> Scenario {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ScaleTestError.badFile(path: path, key: "(file)", expected: "a readable JSON file")
        }
        return try parse(data: data, path: path)
    }

    package static func parse(data: Data, path: String) throws -> Scenario {
        func bad(_ key: String, _ expected: String) -> ScaleTestError { .badFile(path: path, key: key, expected: expected) }
        guard let obj = try? JSONSerialization.jsonObject(with: data), let root = obj as? [String: Any] else {
            throw bad("(file)", "a JSON object")
        }
        let known: Set<String> = ["name", "description", "repetitions", "threads", "workloads"]
        if let unknown = root.keys.sorted().first(where: { !known.contains($0) }) {
            throw bad(unknown, "one of \(known.sorted().joined(separator: ", "))")
        }
        guard let name = root["name"] as? String else { throw bad("name", "a string") }
        var reps = 15
        if let r = root["repetitions"] {
            guard let v = r as? Int, v >= 1 else { throw bad("repetitions", "an integer >= 1") }
            reps = v
        }
        var threads: [Int]?
        if let t = root["threads"] {
            guard let v = t as? [Int], !v.isEmpty, v.allSatisfy({ $0 >= 1 }) else { throw bad("threads", "a non-empty array of integers >= 1") }
            threads = v
        }
        guard let ws = root["workloads"] as? [Any], !ws.isEmpty else { throw bad("workloads", "a non-empty array") }
        var workloads: [Workload] = []
        for (i, w) in ws.enumerated() {
            guard let o = w as? [String: Any] else { throw bad("workloads[\(i)]", "an object with ops and sizes") }
            guard let ops = o["ops"] as? [String], !ops.isEmpty else { throw bad("workloads[\(i)].ops", "a non-empty array of op names") }
            guard let sizes = o["sizes"] as? [String], !sizes.isEmpty else {
                throw bad("workloads[\(i)].sizes", "a non-empty array of sizes like \"16777216\" or \"4096x4096\"")
            }
            var fused: [Bool] = [true]
            if let f = o["fused"] {
                guard let v = f as? [Bool], !v.isEmpty else { throw bad("workloads[\(i)].fused", "a non-empty array of booleans") }
                fused = v
            }
            for (j, opName) in ops.enumerated() {
                // "activations": every activation of the op table, so a new row is swept without a config edit
                let expanded = opName == "activations" ? ScaleOp.defaultSweep.filter { $0.unary != nil }
                    : opName == "activations_backward" ? ScaleOp.backwardSweep : ScaleOp(rawValue: opName).map { [$0] }
                guard let expanded else {
                    throw bad("workloads[\(i)].ops[\(j)]", "\"activations\", \"activations_backward\" or one of \(ScaleOp.allCases.map(\.rawValue).joined(separator: ", ")), got '\(opName)'")
                }
                for op in expanded {
                for (k, s) in sizes.enumerated() {
                    let shape: [Int]
                    do { shape = try ShapeSpec.parse(s) } catch {
                        throw bad("workloads[\(i)].sizes[\(k)]", "a size like \"16777216\" or \"4096x4096\", got '\(s)'")
                    }
                    for f in (op.isChain ? fused : [true]) { workloads.append(Workload(op: op, shape: shape, fused: f)) }
                }
                }
            }
        }
        return Scenario(name: name, description: root["description"] as? String ?? "", repetitions: reps,
                        threads: threads, workloads: workloads)
    }

    /// The configs/ folder: next to the package (found from the working directory or the
    /// executable's path), or `TESSERA_CONFIGS`.
    package static func configsDirectory() -> String? {
        var candidates: [String] = []
        if let env = ProcessInfo.processInfo.environment["TESSERA_CONFIGS"] { candidates.append(env) }
        candidates.append(FileManager.default.currentDirectoryPath + "/configs")
        var dir = URL(fileURLWithPath: CommandLine.arguments.first ?? ".").deletingLastPathComponent()
        for _ in 0..<6 {
            candidates.append(dir.appendingPathComponent("configs").path)
            dir = dir.deletingLastPathComponent()
        }
        return candidates.first { FileManager.default.fileExists(atPath: $0 + "/scenarios") }
    }

    /// Built-in copy of configs/scenarios/default.json, used when the folder cannot be found.
    package static let builtInDefault = Scenario(
        name: "default", description: "built-in default", repetitions: 15, workloads:
            ScaleOp.defaultSweep.filter { $0.unary != nil }.map { Workload(op: $0, shape: [1 << 24]) }
            + [ScaleOp.softmax, .logSoftmax].flatMap { op in [[4096, 4096], [65536, 256], [8, 1 << 21]].map { Workload(op: op, shape: $0) } }
            + [true, false].map { Workload(op: .chain4, shape: [1 << 24], fused: $0) }
            + ScaleOp.backwardSweep.map { Workload(op: $0, shape: [1 << 24]) }
            + [ScaleOp.softmaxBackward, .logSoftmaxBackward].flatMap { op in [[4096, 4096], [65536, 256], [8, 1 << 21]].map { Workload(op: op, shape: $0) } }
            + [true, false].map { Workload(op: .chain4Backward, shape: [1 << 24], fused: $0) })
}
