import Foundation
import Testing
import Tessera
import _TesseraTestSupport

/// The saved tensors an op's backward reads, as the Swift API takes them.
func savedArguments(_ layer: any ElementwiseLayer, _ x: Tensor) throws -> (input: Tensor?, output: Tensor?) {
    switch layer.step.op.saved {
    case .input: (x, nil)
    case .output: (nil, try layer.forward(x, runtime: .default))
    case .either: (x, nil)
    case .none: (nil, nil)
    }
}

@Suite("Backward through the public API")
struct BackwardTests {
    @Test(arguments: [1, 7, 4099, TestScale.pick(100_003, small: 20_011)])
    func everyLayersBackwardMatchesTheDerivative(n: Int) throws {
        let x = try Tensor(shape: [n], scalars: EdgeValues.random(count: n, seed: 21))
        let dy = try Tensor(randomNormal: [n], seed: 22)
        for (name, layer, op) in allLayers {
            let (input, output) = try savedArguments(layer, x)
            let dx = try layer.backward(input: input, output: output, gradOutput: dy, runtime: parallelRuntime(threads: 3))
            let saved = (input ?? output ?? x).scalars, dys = dy.scalars, dxs = dx.scalars, xs = x.scalars
            for i in 0..<n {
                let ref = Reference.derivative(op, saved: Double(saved[i]), Double(layer.step.a), Double(layer.step.b)) * Double(dys[i])
                let got = dxs[i]
                let ok = (got.isNaN && ref.isNaN) || ULP.error(got, ref) <= 16 || abs(Double(got) - ref) <= 1e-7 * Double(abs(dys[i]))
                if !ok { Issue.record("\(name) backward x=\(xs[i]) got \(got) want \(ref)"); break }
            }
            // into a buffer and in place into the gradient: the same bits
            var into = try Tensor(shape: [n], repeating: .nan)
            try layer.backward(input: input, output: output, gradOutput: dy, into: &into)
            var g = dy
            try layer.backwardInPlace(input: input, output: output, gradient: &g)
            #expect(into == dx && g == dx && dy.scalars.count == n, "\(name)")
        }
    }

    @Test func backwardIsBitIdenticalForEveryWorkerCountAndTileSize() throws {
        let x = try Tensor(randomNormal: [50_001], standardDeviation: 4, seed: 23)
        let dy = try Tensor(randomNormal: [50_001], seed: 24)
        for (name, layer, _) in allLayers {
            let (input, output) = try savedArguments(layer, x)
            let ref = try layer.backward(input: input, output: output, gradOutput: dy, runtime: try Runtime(threads: 1, executor: .serial))
            for t in [2, 3, 8, 32] {
                let got = try layer.backward(input: input, output: output, gradOutput: dy, runtime: parallelRuntime(threads: t, tileBytes: [4096, 65536][t % 2]))
                #expect(got == ref, "\(name) t=\(t)")
            }
        }
    }

    @Test func missingSavedTensorsAndShapeMismatchesThrowAndWriteNothing() throws {
        let x = try Tensor(randomNormal: [8], seed: 1), dy = try Tensor(randomNormal: [8], seed: 2)
        #expect(throws: TesseraError.missingSavedTensor(op: "gelu", needs: "the forward's input")) { try GELU().backward(output: x, gradOutput: dy) }
        #expect(throws: TesseraError.missingSavedTensor(op: "sigmoid", needs: "the forward's output")) { try Sigmoid().backward(input: x, gradOutput: dy) }
        #expect(throws: TesseraError.missingSavedTensor(op: "relu", needs: "the forward's input or output")) { try ReLU().backward(gradOutput: dy) }
        _ = try Affine(scale: 2).backward(gradOutput: dy) // reads neither
        var out = try Tensor(shape: [8], repeating: 42)
        let wrong = try Tensor(randomNormal: [9], seed: 3)
        #expect(throws: TesseraError.gradientShapeMismatch(name: "input", expected: [8], got: [9])) { try GELU().backward(input: wrong, gradOutput: dy, into: &out) }
        var small = try Tensor(shape: [4], repeating: 42)
        #expect(throws: TesseraError.gradientShapeMismatch(name: "gradInput", expected: [8], got: [4])) { try GELU().backward(input: x, gradOutput: dy, into: &small) }
        #expect(out.scalars.allSatisfy { $0 == 42 } && small.scalars.allSatisfy { $0 == 42 })
        #expect(throws: TesseraError.dimOutOfRange(dim: 2, rank: 1)) { try Softmax(dim: 2).backward(output: x, gradOutput: dy) }
    }

    @Test func rawBackwardOverlapRules() throws {
        var buf = [Float](repeating: 0.5, count: 64)
        try buf.withUnsafeMutableBufferPointer { b in
            let p = b.baseAddress!
            // exactly in place into the gradient: fine
            try RawOps.backward(.unary(.gelu), input: UnsafePointer(p + 32), gradOutput: UnsafePointer(p), gradInput: p, count: 16)
            #expect(throws: TesseraError.overlappingBuffers("a saved tensor and gradInput")) {
                try RawOps.backward(.unary(.gelu), input: UnsafePointer(p), gradOutput: UnsafePointer(p + 32), gradInput: p + 4, count: 16)
            }
            #expect(throws: TesseraError.overlappingBuffers("gradOutput and gradInput")) {
                try RawOps.backward(.unary(.gelu), input: UnsafePointer(p + 32), gradOutput: UnsafePointer(p), gradInput: p + 1, count: 16)
            }
            #expect(throws: TesseraError.missingSavedTensor(op: "tanh", needs: "the forward's output")) {
                try RawOps.backward(.unary(.tanh), input: UnsafePointer(p + 32), gradOutput: UnsafePointer(p), gradInput: p, count: 16)
            }
        }
    }

    /// Softmax / log-softmax backward against float64 along every dim, long rows split across
    /// workers included; within 1e-5 of the row's largest |reference|; bit-identical for any
    /// worker count; in place.
    @Test(arguments: [([7, 5, 33], 0), ([7, 5, 33], 1), ([7, 5, 33], 2), ([300, 129], 1), ([3, 50_001], 1), ([1100, 70], 0)])
    func softmaxBackwardMatchesTheReference(shape: [Int], dim: Int) throws {
        let x = try Tensor(randomNormal: shape, standardDeviation: 3, seed: 31)
        let dy = try Tensor(randomNormal: shape, seed: 32)
        for log in [false, true] {
            let y = log ? try LogSoftmax(dim: dim)(x) : try Softmax(dim: dim)(x)
            let back = { (rt: Runtime) throws -> Tensor in
                log ? try LogSoftmax(dim: dim).backward(output: y, gradOutput: dy, runtime: rt)
                    : try Softmax(dim: dim).backward(output: y, gradOutput: dy, runtime: rt)
            }
            let dx = try back(try Runtime(threads: 1, executor: .serial))
            // the reference, one line along `dim` at a time
            let D = shape[dim], inner = shape[(dim + 1)...].reduce(1, *), outer = shape[..<dim].reduce(1, *)
            let ys = y.scalars, gs = dy.scalars, got = dx.scalars
            for o in 0..<outer {
                for j in 0..<inner {
                    let idx = (0..<D).map { o * D * inner + $0 * inner + j }
                    let yv = idx.map { Double(ys[$0]) }, gv = idx.map { Double(gs[$0]) }
                    let s = log ? gv.reduce(0, +) : zip(gv, yv).reduce(0) { $0 + $1.0 * $1.1 }
                    let ref = (0..<D).map { log ? gv[$0] - Foundation.exp(yv[$0]) * s : yv[$0] * (gv[$0] - s) }
                    let scale = max(ref.map(abs).max() ?? 0, 1e-30)
                    for (k, i) in idx.enumerated() where abs(Double(got[i]) - ref[k]) > 1e-5 * scale {
                        Issue.record("\(log ? "log_" : "")softmax backward \(shape) dim \(dim): \(got[i]) vs \(ref[k])")
                        break
                    }
                }
            }
            for t in [2, 3, 8, 32] { #expect(try back(parallelRuntime(threads: t, tileBytes: [4096, 65536][t % 2])) == dx, "\(shape) t=\(t)") }
            var g = dy
            if log { try LogSoftmax(dim: dim).backwardInPlace(output: y, gradient: &g) } else { try Softmax(dim: dim).backwardInPlace(output: y, gradient: &g) }
            #expect(g == dx)
        }
    }

    /// Split rows' backward runs group by group (y and dy of a group in half the LLC; 1 MiB
    /// injected: groups of 3 rows of 20000, and a last group of 1 -- the groups' floor of work
    /// is 0 for a serial runtime and one with no parallel threshold), pass 2 last chunk first
    /// at one worker: the bits of a runtime whose LLC holds every row in one group, for any
    /// workers, and within 1e-5 of float64 on every row.
    @Test func splitBackwardInCacheSizedGroups() throws {
        let D = 20_000, rows = 7
        let small = try CacheModel(l1Bytes: 32 << 10, l2Bytes: 256 << 10, llcBytes: 1 << 20)
        let large = try CacheModel(l1Bytes: 32 << 10, l2Bytes: 512 << 10, llcBytes: 64 << 20)
        let x = try Tensor(randomNormal: [rows, D], standardDeviation: 3, seed: 51)
        let dy = try Tensor(randomNormal: [rows, D], seed: 52)
        for log in [false, true] {
            let y = log ? try LogSoftmax()(x) : try Softmax()(x)
            let back = { (rt: Runtime) throws -> Tensor in
                log ? try LogSoftmax().backward(output: y, gradOutput: dy, runtime: rt)
                    : try Softmax().backward(output: y, gradOutput: dy, runtime: rt)
            }
            let one = try back(try Runtime(threads: 1, executor: .serial, cache: small))
            #expect(try back(try Runtime(threads: 1, executor: .serial, cache: large)) == one)
            for t in [2, 3, 32] {
                #expect(try back(try Runtime(threads: t, tileBytes: 4096, parallelThresholdNs: 0, cache: small)) == one, "t=\(t)")
            }
            let ys = y.scalars, gs = dy.scalars, got = one.scalars
            for r in 0..<rows {
                let yv = ys[r * D..<(r + 1) * D].map(Double.init), gv = gs[r * D..<(r + 1) * D].map(Double.init)
                let s = log ? gv.reduce(0, +) : zip(gv, yv).reduce(0) { $0 + $1.0 * $1.1 }
                let ref = (0..<D).map { log ? gv[$0] - Foundation.exp(yv[$0]) * s : yv[$0] * (gv[$0] - s) }
                let scale = max(ref.map(abs).max() ?? 0, 1e-30)
                let worst = (0..<D).map { abs(Double(got[r * D + $0]) - ref[$0]) }.max() ?? 0
                #expect(worst <= 1e-5 * scale, "\(log ? "log_" : "")softmax backward row \(r): \(worst)")
            }
        }
    }

    /// A pipeline's fused backward (one sweep per element-wise run, intermediates recomputed)
    /// gives the bits of the unfused one (every intermediate stored, one op at a time), and both
    /// match the layers' backward chained by hand.
    @Test func pipelineBackwardFusesAndMatchesTheLayers() throws {
        let x = try Tensor(randomNormal: [33, 65], standardDeviation: 2, seed: 41)
        let dy = try Tensor(randomNormal: [33, 65], seed: 42)
        let chain = Pipeline { Affine(scale: 0.5, bias: 0.1); ReLU(); Sigmoid(); Tanh(); GELU(); Clamp(lower: -0.2, upper: 0.9) }
        let fused = try chain.backward(x, gradOutput: dy, runtime: parallelRuntime(threads: 3))
        let unfused = try chain.backward(x, gradOutput: dy, runtime: parallelRuntime(threads: 2), fused: false)
        #expect(fused == unfused)
        #expect(chain.compile().backwardSweeps == 1 && chain.compile(fused: false).backwardSweeps == 11)
        #expect(chain.explainBackward().contains("backward: 1 sweep(s)"))
        // by hand, layer by layer
        let layers: [any ElementwiseLayer] = [Affine(scale: 0.5, bias: 0.1), ReLU(), Sigmoid(), Tanh(), GELU(), Clamp(lower: -0.2, upper: 0.9)]
        var values = [x]
        for l in layers { values.append(try l.forward(values.last!, runtime: .default)) }
        var g = dy
        for (i, l) in layers.enumerated().reversed() {
            g = try l.backward(input: values[i], output: values[i + 1], gradOutput: g)
        }
        #expect(g == fused)
        // with a softmax stage and a prologue folded into it
        let attn = Pipeline { Affine(scale: 0.125); GELU(); Softmax(); Tanh() }
        let a1 = try attn.backward(x, gradOutput: dy, runtime: parallelRuntime(threads: 3))
        let a2 = try attn.backward(x, gradOutput: dy, runtime: .default, fused: false)
        #expect(a1 == a2)
        let z = GELU().forward(Affine(scale: 0.125).forward(x)), p = try Softmax()(z)
        var h = try Tanh().backward(output: Tanh()(p), gradOutput: dy)
        h = try Softmax().backward(output: p, gradOutput: h)
        h = try GELU().backward(input: Affine(scale: 0.125).forward(x), gradOutput: h)
        h = try Affine(scale: 0.125).backward(gradOutput: h)
        #expect(h == a1)
        for t in [1, 2, 8, 32] { #expect(try attn.backward(x, gradOutput: dy, runtime: parallelRuntime(threads: t)) == a1) }
    }

    /// Every op of the table inside a pipeline, next to a costly and a cheap neighbour: fused and
    /// unfused give the same bits, forward and backward.
    @Test func everyOpFusesWithTheSameBitsForwardAndBackward() throws {
        let x = try Tensor(randomNormal: [4099], standardDeviation: 3, seed: 71), dy = try Tensor(randomNormal: [4099], seed: 72)
        for (name, layer, _) in allLayers {
            let p = Pipeline { layer; Tanh(); Affine(scale: 0.5, bias: 0.25); layer }
            #expect(try p.run(x).output == (try p.run(x, fused: false).output), "\(name) forward")
            #expect(try p.backward(x, gradOutput: dy) == (try p.backward(x, gradOutput: dy, fused: false)), "\(name) backward")
        }
    }

    @Test func longChainsBackwardInSegments() throws {
        let x = try Tensor(randomNormal: [5000], seed: 51), dy = try Tensor(randomNormal: [5000], seed: 52)
        let steps: [PipelineNode] = (0..<40).map { i in .step(i % 2 == 0 ? .unary(.tanh) : .affine(scale: 1.5, bias: 0.01)) }
        let p = Pipeline(nodes: steps)
        #expect(try p.backward(x, gradOutput: dy) == (try p.backward(x, gradOutput: dy, fused: false)))
    }
}
