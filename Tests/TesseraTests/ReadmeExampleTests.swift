import Foundation
import Testing
import Tessera

/// The README's usage example, kept compiling and correct (smaller shapes).
@Suite("README example")
struct ReadmeExampleTests {
    @Test func usageExampleRuns() throws {
        let x = try Tensor(randomNormal: [64, 128], seed: 1)
        let y = GELU()(x)
        let p = try Softmax(dim: -1)(x)
        var z = x
        Sigmoid().forwardInPlace(&z)
        var out = try Tensor(shape: x.shape, repeating: 0)
        try Tanh().forward(x, into: &out)

        let attention = Pipeline { Affine(scale: 0.125); Softmax() }
        #expect(attention.explain() == """
            program: 1 stage(s), 1 sweep(s) over memory
              stage 0: softmax(dim: -1) with prologue[affine(0.125, 0.0)]

            """)
        let probs = try attention(x)

        let rt = try Runtime(threads: 32, topology: Topology.load(path: "\(packageRoot)/configs/topologies/2-sockets-16-cores.json"))
        #expect(try attention.schedule(shape: x.shape, runtime: rt).contains("node 1: tiles"))

        let src = x.scalars
        var dst = [Float](repeating: 0, count: x.count)
        try RawOps.softmax(input: src, output: &dst, shape: [64, 128], dim: -1, runtime: .default)
        #expect(dst == p.scalars)
        #expect(y.shape == x.shape && z == Sigmoid()(x) && out == Tanh()(x) && probs.count == x.count)
    }
}
