import CTesseraSystem
import Foundation
import Synchronization

/// The machine's NUMA layout: nodes, their CPUs and memory, and the distance table.
///
/// Comes from libnuma (bound at run time, so Tessera builds and runs without it), else from
/// `/sys/devices/system/node`, else one node holding every CPU.  A topology can also be
/// injected from a JSON file (`configs/topologies/`) so plans for big machines can be built
/// and checked on a small one.
public struct Topology: Sendable, Equatable, Codable, CustomStringConvertible {
    public struct Node: Sendable, Equatable, Codable {
        public var id: Int
        /// OS CPU numbers of this node.
        public var cpus: [Int]
        /// Memory of the node in bytes, if known.
        public var memoryBytes: UInt64?

        public init(id: Int, cpus: [Int], memoryBytes: UInt64? = nil) {
            self.id = id
            self.cpus = cpus
            self.memoryBytes = memoryBytes
        }
    }

    public enum Source: String, Sendable, Codable {
        case libnuma, sysfs, file, synthetic, fallback
    }

    public var nodes: [Node]
    /// `distances[i][j]`: ACPI SLIT distance from node i to node j (10 = local).
    public var distances: [[Int]]
    public var source: Source
    /// Human-readable origin (the file path for injected topologies).
    public var origin: String

    public init(nodes: [Node], distances: [[Int]]? = nil, source: Source = .synthetic, origin: String = "") {
        self.nodes = nodes
        self.distances = distances ?? nodes.indices.map { i in nodes.indices.map { $0 == i ? 10 : 20 } }
        self.source = source
        self.origin = origin
    }

    public var cpuCount: Int { nodes.reduce(0) { $0 + $1.cpus.count } }
    public var isMultiNode: Bool { nodes.count > 1 }

    /// `nodes` equal nodes of `cpusPerNode` consecutive CPUs each.
    public static func uniform(nodes: Int, cpusPerNode: Int, remoteDistance: Int = 21) -> Topology {
        let ns = (0..<nodes).map { n in Node(id: n, cpus: Array(n * cpusPerNode..<(n + 1) * cpusPerNode)) }
        let d = (0..<nodes).map { i in (0..<nodes).map { $0 == i ? 10 : remoteDistance } }
        return Topology(nodes: ns, distances: d, source: .synthetic, origin: "\(nodes)x\(cpusPerNode)")
    }

    /// Node ids ordered by distance from `node` (itself first): the order a worker that ran
    /// out of local tiles helps others in.
    public func helpOrder(from node: Int) -> [Int] {
        nodes.indices.sorted { a, b in
            let da = distances[node][a], db = distances[node][b]
            return da != db ? da < db : a < b
        }
    }

    public var description: String {
        var s = "topology (\(source.rawValue)\(origin.isEmpty ? "" : ": \(origin)")): \(nodes.count) node(s), \(cpuCount) CPU(s)\n"
        for (i, n) in nodes.enumerated() {
            let mem = n.memoryBytes.map { String(format: ", %.1f GiB", Double($0) / 1_073_741_824) } ?? ""
            s += "  node \(n.id): cpus \(Topology.cpuList(n.cpus))\(mem), distances \(distances[i])\n"
        }
        return s
    }

    /// "0-3,8,10-11"
    package static func cpuList(_ cpus: [Int]) -> String {
        var parts: [String] = []
        var i = 0
        let c = cpus.sorted()
        while i < c.count {
            var j = i
            while j + 1 < c.count && c[j + 1] == c[j] + 1 { j += 1 }
            parts.append(i == j ? "\(c[i])" : "\(c[i])-\(c[j])")
            i = j + 1
        }
        return parts.joined(separator: ",")
    }

    /// Parses "0-3,8,10-11"; nil on malformed input.  A range reaching past `maxCPU` is not
    /// expanded (a fuzzer's "8-4444444415" asked for 35 GB): its end alone stands for it, so the
    /// caller's range check reports that CPU number.
    package static func parseCPUList(_ s: String) -> [Int]? {
        var out: [Int] = []
        for part in s.split(separator: ",") {
            let p = part.trimmingCharacters(in: .whitespacesAndNewlines)
            if p.isEmpty { continue }
            let ends = p.split(separator: "-", omittingEmptySubsequences: false)
            guard let lo = Int(ends[0]) else { return nil }
            if ends.count == 1 { out.append(lo); continue }
            guard ends.count == 2, let hi = Int(ends[1]), hi >= lo else { return nil }
            if hi > maxCPU { out.append(hi); continue }
            out.append(contentsOf: lo...hi)
        }
        return out
    }
}

// MARK: - Discovery

extension Topology {
    /// What this process uses when nothing is injected: `TESSERA_TOPOLOGY=FILE` if set (an
    /// unreadable file is reported on stderr once and ignored), else `detect()`.
    public static let current: Topology = {
        if let path = ProcessInfo.processInfo.environment["TESSERA_TOPOLOGY"], !path.isEmpty {
            do { return try Topology.load(path: path) } catch {
                FileHandle.standardError.write(Data("tessera: TESSERA_TOPOLOGY ignored: \(error)\n".utf8))
            }
        }
        return detect()
    }()

    /// The machine's own topology: libnuma, then sysfs, then one node of all CPUs.
    public static func detect() -> Topology {
        if let t = LibNUMA.shared?.topology() { return t }
        if let t = fromSysfs() { return t }
        let n = max(1, Int(ts_cpu_count()))
        return Topology(nodes: [Node(id: 0, cpus: Array(0..<n))], source: .fallback, origin: "no NUMA information")
    }

    /// Reads `/sys/devices/system/node/node*/cpulist` and `distance`.
    package static func fromSysfs(root: String = "/sys/devices/system/node") -> Topology? {
        let fm = FileManager.default
        guard let entries = try? fm.contentsOfDirectory(atPath: root) else { return nil }
        let ids = entries.compactMap { e -> Int? in e.hasPrefix("node") ? Int(e.dropFirst(4)) : nil }.sorted()
        guard !ids.isEmpty else { return nil }
        var nodes: [Node] = []
        var dist: [[Int]] = []
        for id in ids {
            guard let list = try? String(contentsOfFile: "\(root)/node\(id)/cpulist", encoding: .utf8),
                  let cpus = parseCPUList(list) else { return nil }
            nodes.append(Node(id: id, cpus: cpus))
            let d = (try? String(contentsOfFile: "\(root)/node\(id)/distance", encoding: .utf8))?
                .split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Int($0) }
            dist.append(d ?? [])
        }
        let valid = dist.allSatisfy { $0.count == ids.count }
        return Topology(nodes: nodes, distances: valid ? dist : nil, source: .sysfs, origin: root)
    }
}

// MARK: - Files

/// A topology file that could not be used; the message names the file, the key and what was expected.
public struct TopologyFileError: Error, CustomStringConvertible, Equatable {
    public var path: String
    public var key: String
    public var expected: String

    public var description: String { "\(path): key '\(key)': expected \(expected)" }
}

extension Topology {
    /// The largest CPU number a topology file may name (Linux's CONFIG_NR_CPUS tops out at 8192).
    public static let maxCPU = 8191

    /// Loads a topology file:
    /// ```json
    /// { "name": "2 sockets x 16 cores",
    ///   "nodes": [ {"cpus": "0-15", "memory_gib": 64}, {"cpus": "16-31", "memory_gib": 64} ],
    ///   "distances": [[10, 21], [21, 10]] }
    /// ```
    /// `cpus` is a Linux cpulist string or an array of CPU numbers; `memory_gib` and
    /// `distances` are optional (default: 10 local, 20 remote).
    public static func load(path: String) throws -> Topology {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TopologyFileError(path: path, key: "(file)", expected: "a readable JSON file")
        }
        return try parse(data: data, path: path)
    }

    /// Parses the contents of a topology file (`path` names it in errors); see `load(path:)`.
    public static func parse(data: Data, path: String) throws -> Topology {
        guard let obj = try? JSONSerialization.jsonObject(with: data), let root = obj as? [String: Any] else {
            throw TopologyFileError(path: path, key: "(file)", expected: "a JSON object")
        }
        guard let rawNodes = root["nodes"] as? [Any], !rawNodes.isEmpty else {
            throw TopologyFileError(path: path, key: "nodes", expected: "a non-empty array of node objects")
        }
        var nodes: [Node] = []
        var seen = Set<Int>()
        for (i, raw) in rawNodes.enumerated() {
            let key = "nodes[\(i)]"
            guard let n = raw as? [String: Any] else {
                throw TopologyFileError(path: path, key: key, expected: "an object with \"cpus\"")
            }
            var cpus: [Int]?
            if let s = n["cpus"] as? String { cpus = parseCPUList(s) }
            else if let a = n["cpus"] as? [Any] { cpus = a.compactMap { ($0 as? NSNumber)?.intValue }; if cpus?.count != a.count { cpus = nil } }
            guard let c = cpus, !c.isEmpty, c.allSatisfy({ $0 >= 0 }) else {
                throw TopologyFileError(path: path, key: "\(key).cpus", expected: "a non-empty cpulist like \"0-15\" or an array of CPU numbers")
            }
            if let big = c.first(where: { $0 > Topology.maxCPU }) {
                throw TopologyFileError(path: path, key: "\(key).cpus", expected: "CPU numbers up to \(Topology.maxCPU), got \(big)")
            }
            if let dup = c.first(where: { seen.contains($0) }) {
                throw TopologyFileError(path: path, key: "\(key).cpus", expected: "CPUs not listed in another node (CPU \(dup) is)")
            }
            seen.formUnion(c)
            var mem: UInt64?
            if let m = n["memory_gib"] {
                // below 2^33 GiB so that the byte count fits a UInt64 (a fuzzer's 1e300 trapped)
                guard let v = (m as? NSNumber)?.doubleValue, v >= 0, v < 0x1p33 else {
                    throw TopologyFileError(path: path, key: "\(key).memory_gib", expected: "a number of GiB in 0..<2^33, got \(m)")
                }
                mem = UInt64(v * 1_073_741_824)
            }
            nodes.append(Node(id: (n["id"] as? NSNumber)?.intValue ?? i, cpus: c, memoryBytes: mem))
        }
        var distances: [[Int]]?
        if let d = root["distances"] {
            guard let rows = d as? [[Any]], rows.count == nodes.count,
                  rows.allSatisfy({ $0.count == nodes.count }) else {
                throw TopologyFileError(path: path, key: "distances", expected: "a \(nodes.count)x\(nodes.count) array of integers")
            }
            let ints = rows.map { $0.compactMap { ($0 as? NSNumber)?.intValue } }
            guard ints.allSatisfy({ $0.count == nodes.count && $0.allSatisfy { $0 >= 10 && $0 <= 255 } }) else {
                throw TopologyFileError(path: path, key: "distances", expected: "integers 10...255 (10 = local, as the ACPI SLIT)")
            }
            for i in 0..<nodes.count {
                guard ints[i][i] == 10 else {
                    throw TopologyFileError(path: path, key: "distances[\(i)][\(i)]", expected: "10 (a node's distance to itself), got \(ints[i][i])")
                }
                for j in 0..<i where ints[i][j] != ints[j][i] {
                    throw TopologyFileError(path: path, key: "distances[\(i)][\(j)]", expected: "\(ints[j][i]) (symmetric with distances[\(j)][\(i)]), got \(ints[i][j])")
                }
            }
            distances = ints
        }
        return Topology(nodes: nodes, distances: distances, source: .file, origin: (root["name"] as? String).map { "\($0) (\(path))" } ?? path)
    }
}
