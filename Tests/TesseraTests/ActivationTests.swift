import Testing
import Tessera
import _TesseraTestSupport

/// A runtime that splits even small tensors across workers.
func parallelRuntime(threads: Int, tileBytes: Int = 4096) -> Runtime {
    try! Runtime(threads: threads, tileBytes: tileBytes, parallelThresholdNs: 0)
}

let allLayers: [(String, any ElementwiseLayer, UnaryOp)] = [
    ("relu", ReLU(), .relu), ("sigmoid", Sigmoid(), .sigmoid), ("tanh", Tanh(), .tanh),
    ("gelu", GELU(), .gelu), ("gelu_tanh", GELU(approximate: .tanh), .geluTanh),
]

@Suite("Activations through the public API")
struct ActivationTests {
    @Test(arguments: [0, 1, 7, 1000, 4099, 100_003])
    func forwardMatchesReferenceAtEverySize(n: Int) throws {
        let xs = EdgeValues.random(count: n, seed: 3)
        let x = try Tensor(shape: [n], scalars: xs)
        for (name, layer, op) in allLayers {
            let y = try layer.forward(x, runtime: parallelRuntime(threads: 3))
            #expect(y.shape == x.shape)
            for (a, b) in zip(xs, y.scalars) where !ULP.acceptable(b, Reference.unary(op, Double(a))) {
                Issue.record("\(name)(\(a)) = \(b), want \(Reference.unary(op, Double(a)))")
                break
            }
        }
    }

    @Test func callAsFunctionIntoAndInPlaceAgree() throws {
        let x = try Tensor(randomNormal: [33, 65], seed: 4)
        for (_, layer, _) in allLayers {
            let rt = parallelRuntime(threads: 2)
            let y = try layer.forward(x, runtime: rt)
            var out = try Tensor(shape: [33, 65], repeating: .nan)
            try layer.forward(x, into: &out, runtime: rt)
            var inPlace = x
            try layer.forwardInPlace(&inPlace, runtime: rt)
            #expect(out == y && inPlace == y)
        }
        #expect(ReLU()(x) == ReLU().forward(x))
    }

    @Test func inPlaceDoesNotTouchSharedCopies() throws {
        let x = try Tensor(shape: [4], scalars: [-1, 2, -3, 4])
        var y = x
        ReLU().forwardInPlace(&y)
        #expect(x.scalars == [-1, 2, -3, 4] && y.scalars == [0, 2, 0, 4])
    }

    @Test func wrongOutputShapeThrowsAndWritesNothing() throws {
        let x = try Tensor(randomNormal: [8], seed: 1)
        var out = try Tensor(shape: [9], repeating: 42)
        #expect(throws: TesseraError.outputShapeMismatch(expected: [8], got: [9])) {
            try Sigmoid().forward(x, into: &out)
        }
        #expect(out.scalars.allSatisfy { $0 == 42 })
    }

    @Test func nanInNaNOutForEveryOp() throws {
        let x = try Tensor(shape: [3], scalars: [.nan, 1, .nan])
        for (name, layer, _) in allLayers {
            let y = try layer.forward(x, runtime: .default).scalars
            #expect(y[0].isNaN && y[2].isNaN && !y[1].isNaN, "\(name)")
        }
        for layer in [Softmax(), LogSoftmax()] as [any Layer] {
            #expect(try layer.forward(x, runtime: .default).scalars.allSatisfy { $0.isNaN })
        }
    }

    @Test func resultsAreBitIdenticalForEveryWorkerCountAndTileSize() throws {
        let x = try Tensor(randomNormal: [50_001], standardDeviation: 4, seed: 9)
        for (name, layer, _) in allLayers {
            let ref = try layer.forward(x, runtime: try Runtime(threads: 1, executor: .serial))
            for t in 1...32 {
                for tile in [256, 4096, 65536] where t % 4 == 1 || tile == 4096 {
                    #expect(try layer.forward(x, runtime: parallelRuntime(threads: t, tileBytes: tile)) == ref, "\(name) t=\(t) tile=\(tile)")
                    var pool = parallelRuntime(threads: t, tileBytes: tile)
                    pool.executor = .spinningPool
                    #expect(try layer.forward(x, runtime: pool) == ref, "\(name) t=\(t) tile=\(tile) spinning pool")
                }
            }
        }
    }
}
