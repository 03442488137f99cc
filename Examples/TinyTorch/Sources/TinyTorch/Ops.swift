import Tessera

// The framework's own math (a plain matmul is fine for a demo) and, through Tessera, the
// activations, softmax and log-softmax with their backward passes.

/// x [n, k] @ w [k, m] + b [m].
public func linear(_ x: Variable, _ w: Variable, _ b: Variable) throws -> Variable {
    let (n, k, m) = (x.shape[0], x.shape[1], w.shape[1])
    let xs = x.value.scalars, ws = w.value.scalars, bs = b.value.scalars
    var y = [Float](repeating: 0, count: n * m)
    for i in 0..<n {
        for j in 0..<m { y[i * m + j] = bs[j] }
        for p in 0..<k {
            let a = xs[i * k + p]
            for j in 0..<m { y[i * m + j] += a * ws[p * m + j] }
        }
    }
    return Variable(try Tensor(shape: [n, m], scalars: y), parents: [x, w, b]) { g in
        let gs = g.scalars
        var dx = [Float](repeating: 0, count: n * k), dw = [Float](repeating: 0, count: k * m), db = [Float](repeating: 0, count: m)
        for i in 0..<n {
            for j in 0..<m { db[j] += gs[i * m + j] }
            for p in 0..<k {
                var s: Float = 0
                let a = xs[i * k + p]
                for j in 0..<m {
                    s += gs[i * m + j] * ws[p * m + j]
                    dw[p * m + j] += a * gs[i * m + j]
                }
                dx[i * k + p] = s
            }
        }
        return [try Tensor(shape: [n, k], scalars: dx), try Tensor(shape: [k, m], scalars: dw), try Tensor(shape: [m], scalars: db)]
    }
}

/// Any of Tessera's element-wise layers.  Its backward reads the saved tensor the op names
/// (`layer.step.op.saved`): the input, the output (sigmoid, tanh), either, or none.
public func activation(_ layer: any ElementwiseLayer, _ x: Variable, runtime: Runtime = .default) throws -> Variable {
    let y = try layer.forward(x.value, runtime: runtime)
    return Variable(y, parents: [x]) { g in
        let saved = layer.step.op.saved
        let input = saved == .input || saved == .either ? x.value : nil
        let output = saved == .output ? y : nil
        return [try layer.backward(input: input, output: output, gradOutput: g, runtime: runtime)]
    }
}

/// Softmax along `dim`; its backward from the output.
public func softmax(_ x: Variable, dim: Int = -1, runtime: Runtime = .default) throws -> Variable {
    let y = try Softmax(dim: dim).forward(x.value, runtime: runtime)
    return Variable(y, parents: [x]) { g in [try Softmax(dim: dim).backward(output: y, gradOutput: g, runtime: runtime)] }
}

/// Log-softmax along `dim`; its backward from the output.
public func logSoftmax(_ x: Variable, dim: Int = -1, runtime: Runtime = .default) throws -> Variable {
    let y = try LogSoftmax(dim: dim).forward(x.value, runtime: runtime)
    return Variable(y, parents: [x]) { g in [try LogSoftmax(dim: dim).backward(output: y, gradOutput: g, runtime: runtime)] }
}

/// Mean negative log-likelihood of `labels` under log-probabilities `logp` [n, classes].
public func nllLoss(_ logp: Variable, labels: [Int]) throws -> Variable {
    let (n, c) = (logp.shape[0], logp.shape[1])
    let ls = logp.value.scalars
    let loss = -labels.enumerated().reduce(0.0) { $0 + Double(ls[$1.offset * c + $1.element]) } / Double(n)
    return Variable(try Tensor(shape: [1], scalars: [Float(loss)]), parents: [logp]) { g in
        var d = [Float](repeating: 0, count: n * c)
        for (i, l) in labels.enumerated() { d[i * c + l] = -g.scalars[0] / Float(n) }
        return [try Tensor(shape: [n, c], scalars: d)]
    }
}

/// Cross-entropy of `logits` [n, classes] against `labels`: Tessera's log-softmax, then NLL.
public func crossEntropy(_ logits: Variable, labels: [Int], runtime: Runtime = .default) throws -> Variable {
    try nllLoss(try logSoftmax(logits, dim: 1, runtime: runtime), labels: labels)
}

/// sum(x * w): a scalar of any tensor, for gradient checks.
public func weightedSum(_ x: Variable, _ w: [Float]) throws -> Variable {
    let s = zip(x.value.scalars, w).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
    return Variable(try Tensor(shape: [1], scalars: [Float(s)]), parents: [x]) { g in
        [try Tensor(shape: x.shape, scalars: w.map { $0 * g.scalars[0] })]
    }
}
