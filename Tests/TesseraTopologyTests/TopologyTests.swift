import Foundation
import Testing
import TesseraTopology

/// The package root, found from this file's path (tests run from anywhere).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

func tempFile(_ text: String) -> String {
    let path = NSTemporaryDirectory() + "tessera-topo-\(UUID().uuidString).json"
    _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
    return path
}

@Suite("Topology")
struct TopologyTests {
    @Test func detectsThisMachine() {
        let t = Topology.detect()
        #expect(t.nodes.count >= 1 && t.cpuCount >= 1)
        #expect(t.distances.count == t.nodes.count && t.distances.allSatisfy { $0.count == t.nodes.count })
        for (i, row) in t.distances.enumerated() { #expect(row[i] == 10) }
        // libnuma and sysfs agree where both exist
        if let numa = LibNUMA.shared?.topology(), let sys = Topology.fromSysfs() {
            #expect(numa.nodes.map(\.cpus) == sys.nodes.map(\.cpus))
        }
    }

    @Test(arguments: ["2-sockets-16-cores", "4-nodes-8-cores", "8-nodes-16-cores", "this-machine-1-node"])
    func shippedTopologiesLoad(name: String) throws {
        let t = try Topology.load(path: "\(packageRoot)/configs/topologies/\(name).json")
        #expect(t.source == .file)
        #expect(t.cpuCount == t.nodes.count * t.nodes[0].cpus.count)
        #expect(t.helpOrder(from: 0).first == 0)
    }

    @Test func helpOrderFollowsDistances() throws {
        let t = try Topology.load(path: "\(packageRoot)/configs/topologies/8-nodes-16-cores.json")
        #expect(Array(t.helpOrder(from: 5).prefix(4)) == [5, 4, 6, 7])
    }

    @Test func cpuLists() {
        #expect(Topology.parseCPUList("0-3,8,10-11") == [0, 1, 2, 3, 8, 10, 11])
        #expect(Topology.parseCPUList("3-1") == nil)
        #expect(Topology.parseCPUList("a") == nil)
        #expect(Topology.cpuList([0, 1, 2, 3, 8, 10, 11]) == "0-3,8,10-11")
    }

    @Test func badFilesNameTheFileTheKeyAndWhatWasExpected() {
        let cases: [(String, String)] = [
            ("{", "(file)"),
            ("{\"nodes\": []}", "nodes"),
            ("{\"nodes\": [{\"cpus\": \"x\"}]}", "nodes[0].cpus"),
            ("{\"nodes\": [{\"cpus\": \"0-1\"}, {\"cpus\": \"1-2\"}]}", "nodes[1].cpus"),
            ("{\"nodes\": [{\"cpus\": \"0\"}, {\"cpus\": \"1\"}], \"distances\": [[10]]}", "distances"),
            ("{\"nodes\": [{\"cpus\": \"0\", \"memory_gib\": -1}]}", "nodes[0].memory_gib"),
            ("{\"nodes\": [{\"cpus\": [99999999999]}]}", "nodes[0].cpus"),
            ("{\"nodes\": [{\"cpus\": []}]}", "nodes[0].cpus"),
            ("{\"nodes\": [{\"cpus\": \"0\"}, {\"cpus\": \"1\"}], \"distances\": [[10, 20], [21, 10]]}", "distances[1][0]"),
            ("{\"nodes\": [{\"cpus\": \"0\"}, {\"cpus\": \"1\"}], \"distances\": [[12, 20], [20, 10]]}", "distances[0][0]"),
            ("{\"nodes\": [{\"cpus\": \"0\"}, {\"cpus\": \"1\"}], \"distances\": [[10, 20, 30], [20, 10]]}", "distances"),
        ]
        for (text, key) in cases {
            let path = tempFile(text)
            do {
                _ = try Topology.load(path: path)
                Issue.record("\(text) loaded")
            } catch let e as TopologyFileError {
                #expect(e.key == key && e.path == path, "\(e)")
                #expect(e.description.contains(path) && e.description.contains(key) && e.description.contains("expected"))
            } catch { Issue.record("\(error)") }
        }
        #expect(throws: TopologyFileError.self) { try Topology.load(path: "/nonexistent/topology.json") }
    }

    @Test func uniform() {
        let t = Topology.uniform(nodes: 2, cpusPerNode: 4)
        #expect(t.nodes[1].cpus == [4, 5, 6, 7] && t.distances[0][1] == 21)
        #expect(t.description.contains("node 1: cpus 4-7"))
    }
}
