import CTesseraABI
import Foundation
import Testing
import Tessera
import _TesseraTestSupport

@Suite("PReLU and the modern activations' PyTorch behaviour")
struct PReLUAndNewOpsTests {
    /// PReLU forward and backward (input and weight gradients) against float64, per channel and
    /// with one weight, bit-identical for any worker count, and the same through the C ABI.
    @Test(arguments: [([4, 3, 257], 3), ([4, 3, 257], 1), ([64, 5], 5), ([1000], 1), ([2, 16, 8, 8], 16)])
    func preluMatchesTheReference(shape: [Int], weights: Int) throws {
        let x = try Tensor(randomNormal: shape, standardDeviation: 2, seed: 61)
        let dy = try Tensor(randomNormal: shape, seed: 62)
        let w = (0..<weights).map { Float($0) * 0.1 - 0.2 }
        let layer = try PReLU(weight: w)
        let y = try layer(x, runtime: try Runtime(threads: 1, executor: .serial))
        let (dx, dw) = try layer.backward(input: x, gradOutput: dy, runtime: try Runtime(threads: 1, executor: .serial))
        let inner = shape.count > 1 ? shape[2...].reduce(1, *) : 1
        var dwRef = [Double](repeating: 0, count: weights)
        let xs = x.scalars, dys = dy.scalars, ys = y.scalars, dxs = dx.scalars
        for i in 0..<x.count {
            let c = weights == 1 ? 0 : (i / inner) % weights
            let xv = xs[i], g = dys[i]
            #expect(ys[i] == (xv > 0 ? xv : w[c] * xv))
            #expect(dxs[i] == (xv > 0 ? g : g * w[c]))
            if !(xv > 0) { dwRef[c] += Double(xv) * Double(g) }
        }
        for c in 0..<weights { #expect(abs(Double(dw[c]) - dwRef[c]) <= 1e-6 * max(1, abs(dwRef[c])), "dw[\(c)] \(dw[c]) vs \(dwRef[c])") }
        for t in [2, 3, 8, 32] {
            let rt = try Runtime(threads: t, tileBytes: 4096, parallelThresholdNs: 0)
            let (dx2, dw2) = try layer.backward(input: x, gradOutput: dy, runtime: rt)
            #expect(try layer(x, runtime: rt) == y && dx2 == dx && dw2.map(\.bitPattern) == dw.map(\.bitPattern), "t=\(t)")
        }
        // the C ABI
        let s = shape.map { Int64($0) }
        var cy = [Float](repeating: .nan, count: x.count), cdx = cy, cdw = [Float](repeating: .nan, count: weights)
        #expect(tessera_prelu(nil, x.scalars, &cy, s, Int32(s.count), w, weights) == TESSERA_OK && cy == y.scalars)
        #expect(tessera_prelu_backward(nil, x.scalars, dy.scalars, &cdx, s, Int32(s.count), w, weights, &cdw) == TESSERA_OK)
        #expect(cdx == dx.scalars && cdw.map(\.bitPattern) == dw.map(\.bitPattern))
    }

    @Test func preluRejectsAWeightCountThatIsNotTheChannels() throws {
        let x = try Tensor(randomNormal: [2, 3, 4], seed: 1)
        #expect(throws: TesseraError.self) { try PReLU(weight: [0.1, 0.2])(x) }
        #expect(throws: TesseraError.self) { try PReLU(weight: []) }
        var y = [Float](repeating: 7, count: x.count)
        #expect(tessera_prelu(nil, x.scalars, &y, [2, 3, 4], 3, [0.1, 0.2], 2) == TESSERA_ERROR_INVALID_ARGUMENT)
        #expect(y.allSatisfy { $0 == 7 })
    }

    @Test func preluRejectsWeightsAndWeightGradientsThatShareMemoryWithTensors() throws {
        // found by the abi fuzz target: weights overlapping the output, grad_weight overlapping
        // what the backward reads or writes
        var buf = [Float](repeating: 1, count: 96)
        let before = buf
        buf.withUnsafeMutableBufferPointer { b in
            let p = b.baseAddress!
            let shape: [Int64] = [2, 3, 4]
            #expect(tessera_prelu(nil, p, p + 24, shape, 3, p + 30, 3) == TESSERA_ERROR_OVERLAP)
            #expect(lastError().contains("weight and output"))
            #expect(tessera_prelu_backward(nil, p, p + 24, p + 24, shape, 3, p + 60, 3, p + 10) == TESSERA_ERROR_OVERLAP)
            #expect(lastError().contains("and gradWeight"))
            #expect(tessera_prelu_backward(nil, p, p, p + 24, shape, 3, p + 60, 3, p + 61) == TESSERA_ERROR_OVERLAP)
            #expect(tessera_prelu_backward(nil, p, p + 24, p + 48, shape, 3, p + 50, 3, p + 60) == TESSERA_ERROR_OVERLAP)
        }
        #expect(buf == before)
    }

    /// PyTorch's documented edge behaviour of each new op (values from torch 2.15 on CPU, or the
    /// deliberate differences Numerics.md lists).
    @Test func pytorchEdgeBehaviour() throws {
        func f(_ l: any ElementwiseLayer, _ xs: [Float]) throws -> [Float] { try l.forward(try Tensor(shape: [xs.count], scalars: xs), runtime: .default).scalars }
        #expect(try f(SiLU(), [.infinity, 0]) == [.infinity, 0])
        #expect(try f(SiLU(), [-.infinity])[0].isNaN) // -inf * sigmoid(-inf) = -inf * 0, as PyTorch
        #expect(try f(SiLU(), [-100])[0] <= 0 && (try f(SiLU(), [-100]))[0] > -1e-30)
        #expect(try f(LeakyReLU(), [-2, 3, -0.0]) == [-0.02, 3, -0.0])
        #expect(try f(ELU(), [-.infinity, 0, 1e-8])[0] == -1 && (try f(ELU(), [1e-8]))[0] == 1e-8)
        #expect(try f(ELU(alpha: 2), [-1e-7])[0] == Float(2 * expm1(-1e-7)))
        #expect(throws: TesseraError.self) { try CELU(alpha: 0) }
        #expect(try f(SELU(), [0, -.infinity]) == [0, Float(-1.0507009873554805 * 1.6732632423543772)])
        #expect(try f(Softplus(), [30, -200, 0])[0] == 30 && (try f(Softplus(), [-200]))[0] == 0)
        #expect(abs((try f(Softplus(), [0]))[0] - Float(log(2.0))) <= Float(log(2.0)).ulp)
        #expect(try f(Softplus(beta: 2, threshold: 10), [6])[0] == 6) // beta * x > threshold: linear
        #expect(throws: TesseraError.self) { try Softplus(beta: 0) }
        #expect(try f(Mish(), [.infinity, 0, 1000]) == [.infinity, 0, 1000])
        #expect(try f(Mish(), [-.infinity])[0].isNaN) // -inf * tanh(softplus(-inf)) = -inf * 0, as PyTorch
        #expect(try f(Hardswish(), [-3, 3, -4, 4]) == [0, 3, 0, 4])
        #expect(try f(Hardsigmoid(), [-3, 3, 0]) == [0, 1, 0.5])
        #expect(try f(try Hardtanh(minVal: -2, maxVal: 2), [-5, 5, .nan])[0...1] == [-2, 2])
        #expect(throws: TesseraError.self) { try Hardtanh(minVal: 1, maxVal: 0) }
        #expect(try f(Softsign(), [.infinity, -.infinity, 1]) == [1, -1, 0.5])
        #expect(try f(LogSigmoid(), [.infinity, -.infinity, 0])[0...1] == [0, -.infinity])
        #expect(try f(Threshold(threshold: 1, value: -7), [1, 1.5, .nan])[0...1] == [-7, 1.5])
        #expect(try f(Threshold(threshold: 1, value: -7), [.nan])[0].isNaN)
        #expect(try f(Hardshrink(), [0.5, -0.6, 0.2]) == [0, -0.6, 0])
        #expect(try f(try Softshrink(), [0.5, -0.75, 2]) == [0, -0.25, 1.5])
        #expect(throws: TesseraError.invalidArgument("Softshrink lambda must be >= 0, got -1.0")) { try Softshrink(lambda: -1) }
        #expect(tessera_softshrink(nil, [1], nil, 0, .nan) == TESSERA_ERROR_INVALID_ARGUMENT && tessera_softshrink(nil, [1], nil, 0, -1) == TESSERA_ERROR_INVALID_ARGUMENT)
        for l in [SiLU(), LeakyReLU(), ELU(), SELU(), try Softplus(), Mish(), Hardswish(), Hardsigmoid(), Softsign(), LogSigmoid(),
                  Hardshrink(), try Softshrink()] as [any ElementwiseLayer] {
            #expect(try f(l, [.nan])[0].isNaN, "\(l.step.op): NaN in, NaN out")
        }
        // a SiLU-gated chain stays one sweep, forward and backward
        let gated = Pipeline { SiLU(); Affine(scale: 0.5, bias: 1) }
        #expect(gated.compile().sweeps == 1 && gated.compile().backwardSweeps == 1)
    }
}
