import Tessera
import Testing
import TinyTorch

/// Finite differences of a scalar function of x, in double around float32 values: the central
/// difference, and whether the one-sided ones disagree (a kink within eps: not comparable).
func numericGradient(_ x: [Float], shape: [Int], eps: Float = 1e-2,
                     _ f: (Variable) throws -> Variable) throws -> [(value: Double, kink: Bool)] {
    func at(_ v: [Float]) throws -> Double { Double(try f(Variable(try Tensor(shape: shape, scalars: v))).value.scalars[0]) }
    let f0 = try at(x)
    return try x.indices.map { i in
        var p = x, m = x
        p[i] += eps
        m[i] -= eps
        let fp = try at(p), fm = try at(m)
        let right = (fp - f0) / Double(eps), left = (f0 - fm) / Double(eps)
        return ((fp - fm) / Double(2 * eps), abs(right - left) > 0.1 * max(1, abs(right)))
    }
}

func checkGradient(_ name: String, shape: [Int], seed: UInt64, tolerance: Double = 2e-2,
                   _ f: (Variable) throws -> Variable) throws {
    let xs = try Tensor(randomNormal: shape, standardDeviation: 1.5, seed: seed).scalars
    let x = Variable(try Tensor(shape: shape, scalars: xs))
    try f(x).backward()
    let analytic = try #require(x.grad).scalars
    let numeric = try numericGradient(xs, shape: shape, f)
    #expect(numeric.filter(\.kink).count <= shape.reduce(1, *) / 4, "\(name): too many kinks to check")
    for (i, (a, n)) in zip(analytic, numeric).enumerated() where !n.kink {
        #expect(abs(Double(a) - n.value) <= tolerance * max(1, abs(n.value)), "\(name) [\(i)]: backward \(a), finite differences \(n.value)")
    }
}

@Suite("TinyTorch on Tessera")
struct TinyTorchTests {
    let w = (0..<24).map { Float($0 % 5) * 0.3 - 0.6 }

    @Test func everyActivationsBackwardMatchesFiniteDifferences() throws {
        for op in UnaryOp.allCases where op != .threshold && op != .hardshrink && op != .softshrink {
            // (the three with jumps are not differentiable where finite differences straddle them)
            try checkGradient(op.rawValue, shape: [4, 6], seed: UInt64(op.index) + 1) { x in
                try weightedSum(activation(op.layer, x), w)
            }
        }
    }

    @Test func softmaxAndLogSoftmaxBackwardMatchFiniteDifferences() throws {
        for dim in [0, 1] {
            try checkGradient("softmax dim \(dim)", shape: [4, 6], seed: 11) { x in try weightedSum(softmax(x, dim: dim), w) }
            try checkGradient("log_softmax dim \(dim)", shape: [4, 6], seed: 12) { x in try weightedSum(logSoftmax(x, dim: dim), w) }
        }
        try checkGradient("cross-entropy", shape: [4, 6], seed: 13) { x in try crossEntropy(x, labels: [0, 5, 2, 3]) }
    }

    @Test func linearAndTheWholeModelMatchFiniteDifferences() throws {
        let model = try MLP(inputs: 3, hidden: 8, classes: 4, activation: Tanh())
        try checkGradient("mlp input", shape: [5, 3], seed: 14) { x in try crossEntropy(model.logits(x), labels: [0, 1, 2, 3, 1]) }
    }

    @Test func trainingOnTwoSpiralsBringsTheLossBelowAStatedValue() throws {
        let (x, labels) = try spirals(perClass: 100)
        let model = try MLP(inputs: 2, hidden: 32, classes: 2, activation: GELU())
        let first = try model.step(x, labels: labels, rate: 0.5)
        var loss = first
        for _ in 0..<600 { loss = try model.step(x, labels: labels, rate: 0.5) }
        #expect(first > 0.6 && loss < 0.35, "loss \(first) -> \(loss)")
        #expect(try model.accuracy(x, labels: labels) > 0.85)
    }
}
