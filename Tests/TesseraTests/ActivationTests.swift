import Testing
import Tessera
import _TesseraTestSupport

/// A runtime that splits even small tensors across workers.
func parallelRuntime(threads: Int, tileBytes: Int = 4096) -> Runtime {
    try! Runtime(threads: threads, tileBytes: tileBytes, parallelThresholdNs: 0)
}

/// Every op of the table with its layer.
let allLayers: [(String, any ElementwiseLayer, UnaryOp)] = UnaryOp.allCases.map { ($0.rawValue, $0.layer, $0) }

@Suite("Activations through the public API")
struct ActivationTests {
    @Test(arguments: [0, 1, 7, 1000, 4099, TestScale.pick(100_003, small: 20_011)])
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
        for (_, layer, op) in allLayers {
            let rt = parallelRuntime(threads: 2)
            let y = try layer.forward(x, runtime: rt)
            var out = try Tensor(shape: [33, 65], repeating: .nan)
            try layer.forward(x, into: &out, runtime: rt)
            var inPlace = x
            try layer.forwardInPlace(&inPlace, runtime: rt)
            #expect(out == y && inPlace == y)
            // the layer runs its own op
            #expect(layer.step.op == op)
        }
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

@Suite("Store policy")
struct StorePolicyTests {
    /// Streaming and regular stores write the same bits, for element-wise ops, fused chains and
    /// every softmax strategy, at unaligned output offsets too.
    @Test func streamingAndRegularStoresGiveTheSameBits() throws {
        let regular = try Runtime(threads: 2, tileBytes: 4096, parallelThresholdNs: 0, stores: .regular)
        let streaming = try Runtime(threads: 2, tileBytes: 4096, parallelThresholdNs: 0, stores: .streaming)
        let x = try Tensor(randomNormal: [3, 40_003], standardDeviation: 3, seed: 5)
        for (name, layer, _) in allLayers {
            #expect(try layer.forward(x, runtime: regular) == layer.forward(x, runtime: streaming), "\(name)")
        }
        let chain = Pipeline { Affine(scale: 0.5, bias: 0.1); ReLU(); Sigmoid(); Clamp(lower: 0, upper: 0.9) }
        #expect(try chain(x, runtime: regular) == chain(x, runtime: streaming))
        for dim in [0, 1] {
            for log in [false, true] {
                let a = log ? try LogSoftmax(dim: dim).forward(x, runtime: regular) : try Softmax(dim: dim).forward(x, runtime: regular)
                let b = log ? try LogSoftmax(dim: dim).forward(x, runtime: streaming) : try Softmax(dim: dim).forward(x, runtime: streaming)
                #expect(a == b, "dim \(dim) log \(log)")
            }
        }
        // raw memory one float past a line boundary: the head and tail are stored normally
        let n = 10_000
        let src = UnsafeMutablePointer<Float>.allocate(capacity: n + 32), d1 = UnsafeMutablePointer<Float>.allocate(capacity: n + 32)
        let d2 = UnsafeMutablePointer<Float>.allocate(capacity: n + 32)
        defer { src.deallocate(); d1.deallocate(); d2.deallocate() }
        for i in 0..<(n + 32) { src[i] = Float(i % 97) * 0.25 - 12 }
        d1.initialize(repeating: .nan, count: n + 32)
        d2.initialize(repeating: .nan, count: n + 32)
        try RawOps.apply(.unary(.gelu), input: src + 1, output: d1 + 3, count: n, runtime: regular)
        try RawOps.apply(.unary(.gelu), input: src + 1, output: d2 + 3, count: n, runtime: streaming)
        #expect((0..<(n + 32)).allSatisfy { d1[$0].bitPattern == d2[$0].bitPattern })
    }
}

extension StorePolicyTests {
    /// Softmax rows whose output does not start on a line (numpy's arrays start 16 bytes into
    /// one): streamed through the line carry, rows of any length, the same bits as regular
    /// stores, nothing written outside the output.
    @Test(arguments: [1, 4, 16, 100, 256, 1000])
    func softmaxRowsStreamAtAnyOutputOffset(length: Int) throws {
        let rows = 37, n = rows * length
        let regular = try Runtime(threads: 2, tileBytes: 4096, parallelThresholdNs: 0, stores: .regular)
        let streaming = try Runtime(threads: 2, tileBytes: 4096, parallelThresholdNs: 0, stores: .streaming)
        let x = try Tensor(randomNormal: [n], standardDeviation: 4, seed: 9).scalars
        let a = UnsafeMutablePointer<Float>.allocate(capacity: n + 64), b = UnsafeMutablePointer<Float>.allocate(capacity: n + 64)
        defer { a.deallocate(); b.deallocate() }
        for log in [false, true] {
            for offset in [0, 1, 3, 4, 15] {
                a.initialize(repeating: .nan, count: n + 64)
                b.initialize(repeating: -7, count: n + 64)
                try x.withUnsafeBufferPointer { xp in
                    try RawOps.softmax(input: xp.baseAddress, output: a + offset, shape: [rows, length], log: log, runtime: regular)
                    try RawOps.softmax(input: xp.baseAddress, output: b + offset, shape: [rows, length], log: log, runtime: streaming)
                }
                #expect((0..<n).allSatisfy { a[offset + $0].bitPattern == b[offset + $0].bitPattern }, "log \(log) offset \(offset)")
                #expect((0..<offset).allSatisfy { b[$0] == -7 } && (offset + n..<n + 64).allSatisfy { b[$0] == -7 })
            }
        }
    }
}
