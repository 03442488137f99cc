import Foundation
import Testing
import Tessera

let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

@Suite("NUMA-aware execution with injected topologies")
struct NUMATests {
    static let files = ["2-sockets-16-cores", "4-nodes-8-cores", "8-nodes-16-cores", "this-machine-as-2-nodes"]

    @Test(arguments: files)
    func resultsMatchTheSingleNodePath(file: String) throws {
        let topo = try Topology.load(path: "\(packageRoot)/configs/topologies/\(file).json")
        let numa = try Runtime(threads: topo.cpuCount, tileBytes: 16384, topology: topo, parallelThresholdNs: 0)
        let flat = try Runtime(threads: 1, executor: .serial)
        let x = try Tensor(randomNormal: [300, 1100], standardDeviation: 3, seed: 4)
        #expect(GELU().forward(x, runtime: numa) == GELU().forward(x, runtime: flat))
        #expect(try Softmax().forward(x, runtime: numa) == Softmax().forward(x, runtime: flat))
        #expect(try LogSoftmax(dim: 0).forward(x, runtime: numa) == LogSoftmax(dim: 0).forward(x, runtime: flat))
        let long = try Tensor(randomNormal: [2, 100_000], seed: 1)
        #expect(try Softmax().forward(long, runtime: numa) == Softmax().forward(long, runtime: flat))
        let chain = Pipeline { Affine(scale: 0.5); ReLU(); Sigmoid(); Tanh() }
        #expect(try chain(x, runtime: numa) == chain(x, runtime: flat))
    }

    @Test func placedTensorsAreZeroedAndUsable() throws {
        let topo = try Topology.load(path: "\(packageRoot)/configs/topologies/2-sockets-16-cores.json")
        let rt = try Runtime(threads: 32, topology: topo)
        let z = try Tensor(zeros: [1 << 20], placedFor: rt)
        #expect(z.scalars.allSatisfy { $0 == 0 })
        let y = Sigmoid().forward(z, runtime: rt) // output storage placed through the same plan
        #expect(y.scalars.allSatisfy { $0 == 0.5 })
        let plan = rt.placementPlan(count: 1 << 20)
        #expect(plan.shares.map(\.tiles.count) == [plan.tileCount / 2, plan.tileCount - plan.tileCount / 2])
    }

    @Test func scheduleShowsNodesAndWorkers() throws {
        let topo = try Topology.load(path: "\(packageRoot)/configs/topologies/4-nodes-8-cores.json")
        let rt = try Runtime(threads: 32, tileBytes: 65536, topology: topo)
        let text = try Pipeline { Tanh() }.schedule(shape: [1 << 22], runtime: rt)
        #expect(text.contains("plan: 4194304 units in 256 tiles of 16384, 32 worker(s), 4 node(s)"))
        #expect(text.contains("node 2: tiles 128..<192 (units 2097152..<3145728), workers 16..<24"))
    }
}
