import Foundation
import Tessera

/// A two-layer perceptron: Linear -> activation -> Linear -> activation -> Linear (logits).
public final class MLP {
    public var parameters: [Variable]
    public let activation: any ElementwiseLayer
    public let runtime: Runtime

    public init(inputs: Int, hidden: Int, classes: Int, activation: any ElementwiseLayer = GELU(),
                runtime: Runtime = .default, seed: UInt64 = 1) throws {
        func weights(_ rows: Int, _ cols: Int, _ s: UInt64) throws -> Variable {
            Variable(try Tensor(randomNormal: [rows, cols], standardDeviation: Float(1 / Double(rows).squareRoot()), seed: s))
        }
        parameters = [try weights(inputs, hidden, seed), Variable(try Tensor(shape: [hidden], repeating: 0)),
                      try weights(hidden, hidden, seed + 1), Variable(try Tensor(shape: [hidden], repeating: 0)),
                      try weights(hidden, classes, seed + 2), Variable(try Tensor(shape: [classes], repeating: 0))]
        self.activation = activation
        self.runtime = runtime
    }

    public func logits(_ x: Variable) throws -> Variable {
        let p = parameters
        let h1 = try TinyTorch.activation(activation, try linear(x, p[0], p[1]), runtime: runtime)
        let h2 = try TinyTorch.activation(activation, try linear(h1, p[2], p[3]), runtime: runtime)
        return try linear(h2, p[4], p[5])
    }

    /// One full-batch step of gradient descent; returns the loss before it.
    public func step(_ x: Tensor, labels: [Int], rate: Float) throws -> Float {
        let loss = try crossEntropy(try logits(Variable(x)), labels: labels, runtime: runtime)
        try loss.backward()
        parameters = try parameters.map { Variable(try $0.descended(rate: rate)) }
        return loss.value.scalars[0]
    }

    public func accuracy(_ x: Tensor, labels: [Int]) throws -> Double {
        let l = try logits(Variable(x)).value.scalars, c = parameters[5].shape[0]
        let right = labels.enumerated().filter { i, y in (0..<c).max { l[i * c + $0] < l[i * c + $1] } == y }.count
        return Double(right) / Double(labels.count)
    }
}

/// `classes` interleaved spirals of `perClass` noisy points each (the classic toy set).
public func spirals(perClass: Int, classes: Int = 2, noise: Double = 0.1, seed: UInt64 = 7) throws -> (Tensor, [Int]) {
    var state = seed
    func uniform() -> Double { state = state &* 6364136223846793005 &+ 1442695040888963407; return Double(state >> 11) * 0x1p-53 }
    var xs: [Float] = [], ys: [Int] = []
    for c in 0..<classes {
        for i in 0..<perClass {
            let r = Double(i) / Double(perClass)
            let t = Double(c) * 2 * Double.pi / Double(classes) + r * 1.75 * 2 * Double.pi / 2 + noise * (uniform() - 0.5) * 2
            xs += [Float(r * Foundation.sin(t)), Float(r * Foundation.cos(t))]
            ys.append(c)
        }
    }
    return (try Tensor(shape: [classes * perClass, 2], scalars: xs), ys)
}
