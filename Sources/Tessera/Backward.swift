import TesseraGraph
import TesseraKernels
import TesseraRuntime

// Backward: dx = dy * f'(.) for every op, from the saved tensor its row names (the input, the
// output, either, or none; oneDNN's use_dst_for_bwd), and the fused backward of a pipeline.

extension UnaryOp.SavedTensor {
    /// What the error says is missing.
    var requirement: String {
        switch self {
        case .input: "the forward's input"
        case .output: "the forward's output"
        case .either: "the forward's input or output"
        case .none: "nothing"
        }
    }

    /// The saved pointer the kernel reads, from what the caller gave; throws when it lacks it.
    func pick<P>(input: P?, output: P?, op: UnaryOp) throws -> P? {
        switch self {
        case .input:
            guard let input else { throw TesseraError.missingSavedTensor(op: op.rawValue, needs: requirement) }
            return input
        case .output:
            guard let output else { throw TesseraError.missingSavedTensor(op: op.rawValue, needs: requirement) }
            return output
        case .either:
            guard let s = input ?? output else { throw TesseraError.missingSavedTensor(op: op.rawValue, needs: requirement) }
            return s
        case .none:
            return nil
        }
    }
}

extension ElementwiseLayer {
    /// The gradient of the loss with respect to the layer's input, given the gradient with
    /// respect to its output.  Pass the saved tensor the op reads (`step.op.saved`: the
    /// forward's `input`, its `output`, either, or none); a missing one is an error.
    public func backward(input: Tensor? = nil, output: Tensor? = nil, gradOutput: Tensor,
                         runtime: Runtime = .default) throws -> Tensor {
        let saved = try savedTensor(input: input, output: output, gradOutput: gradOutput)
        let dx = Tensor(uninitialized: gradOutput.shape, count: gradOutput.count, runtime: runtime)
        Engine.elementwiseBackward(step, saved: saved?.storage.pointer, dy: gradOutput.storage.pointer,
                                   dx: dx.storage.pointer, count: gradOutput.count, runtime: runtime)
        return dx
    }

    /// The same into `gradInput` (same shape); nothing is written on error.
    public func backward(input: Tensor? = nil, output: Tensor? = nil, gradOutput: Tensor, into gradInput: inout Tensor,
                         runtime: Runtime = .default) throws {
        let saved = try savedTensor(input: input, output: output, gradOutput: gradOutput)
        guard gradInput.shape == gradOutput.shape else {
            throw TesseraError.gradientShapeMismatch(name: "gradInput", expected: gradOutput.shape, got: gradInput.shape)
        }
        gradInput.makeUnique()
        Engine.elementwiseBackward(step, saved: saved?.storage.pointer, dy: gradOutput.storage.pointer,
                                   dx: gradInput.storage.pointer, count: gradOutput.count, runtime: runtime)
    }

    /// The same, overwriting the gradient with respect to the output: no second buffer.
    public func backwardInPlace(input: Tensor? = nil, output: Tensor? = nil, gradient: inout Tensor,
                                runtime: Runtime = .default) throws {
        let saved = try savedTensor(input: input, output: output, gradOutput: gradient)
        gradient.makeUnique()
        Engine.elementwiseBackward(step, saved: saved?.storage.pointer, dy: gradient.storage.pointer,
                                   dx: gradient.storage.pointer, count: gradient.count, runtime: runtime)
    }

    private func savedTensor(input: Tensor?, output: Tensor?, gradOutput: Tensor) throws -> Tensor? {
        for (name, t) in [("input", input), ("output", output)] {
            if let t, t.shape != gradOutput.shape {
                throw TesseraError.gradientShapeMismatch(name: name, expected: gradOutput.shape, got: t.shape)
            }
        }
        return try step.op.saved.pick(input: input, output: output, op: step.op)
    }
}

extension Softmax {
    /// dx = y * (dy - sum(dy * y)) along `dim`, from the forward's output y.
    public func backward(output: Tensor, gradOutput: Tensor, runtime: Runtime = .default) throws -> Tensor {
        try softmaxBackward(output, gradOutput, dim: dim, log: false, runtime: runtime)
    }
    public func backward(output: Tensor, gradOutput: Tensor, into gradInput: inout Tensor, runtime: Runtime = .default) throws {
        try softmaxBackward(output, gradOutput, into: &gradInput, dim: dim, log: false, runtime: runtime)
    }
    public func backwardInPlace(output: Tensor, gradient: inout Tensor, runtime: Runtime = .default) throws {
        let g = gradient
        try softmaxBackward(output, g, into: &gradient, dim: dim, log: false, runtime: runtime)
    }
}

extension LogSoftmax {
    /// dx = dy - exp(y) * sum(dy) along `dim`, from the forward's output y.
    public func backward(output: Tensor, gradOutput: Tensor, runtime: Runtime = .default) throws -> Tensor {
        try softmaxBackward(output, gradOutput, dim: dim, log: true, runtime: runtime)
    }
    public func backward(output: Tensor, gradOutput: Tensor, into gradInput: inout Tensor, runtime: Runtime = .default) throws {
        try softmaxBackward(output, gradOutput, into: &gradInput, dim: dim, log: true, runtime: runtime)
    }
    public func backwardInPlace(output: Tensor, gradient: inout Tensor, runtime: Runtime = .default) throws {
        let g = gradient
        try softmaxBackward(output, g, into: &gradient, dim: dim, log: true, runtime: runtime)
    }
}

private func softmaxBackward(_ y: Tensor, _ dy: Tensor, dim: Int, log: Bool, runtime: Runtime) throws -> Tensor {
    var dx = Tensor(uninitialized: dy.shape, count: dy.count, runtime: runtime)
    try softmaxBackward(y, dy, into: &dx, dim: dim, log: log, runtime: runtime)
    return dx
}

private func softmaxBackward(_ y: Tensor, _ dy: Tensor, into dx: inout Tensor, dim: Int, log: Bool, runtime: Runtime) throws {
    let d = try normalizedDim(dim, rank: y.rank)
    guard dy.shape == y.shape else { throw TesseraError.gradientShapeMismatch(name: "gradOutput", expected: y.shape, got: dy.shape) }
    guard dx.shape == y.shape else { throw TesseraError.gradientShapeMismatch(name: "gradInput", expected: y.shape, got: dx.shape) }
    if dx.storage !== dy.storage { dx.makeUnique() }
    Engine.softmaxBackward(y: y.storage.pointer, dy: dy.storage.pointer, dx: dx.storage.pointer, shape: y.shape, dim: d,
                           log: log, runtime: runtime)
}

extension Pipeline {
    /// The gradient with respect to the pipeline's input `x`, given the gradient with respect to
    /// its output.  Fused (the default): each element-wise run is one sweep reading its input
    /// and the gradient and writing the gradient once, its intermediates recomputed in L1
    /// blocks; `fused: false` stores every intermediate and runs each op's backward on its own
    /// (the reference: the same bits).  Shapes and dims are checked before anything runs.
    public func backward(_ x: Tensor, gradOutput: Tensor, runtime: Runtime = .default, fused: Bool = true) throws -> Tensor {
        guard gradOutput.shape == finalShape(x.shape) else {
            throw TesseraError.gradientShapeMismatch(name: "gradOutput", expected: finalShape(x.shape), got: gradOutput.shape)
        }
        let program = compile(fused: fused)
        guard program.outputs.isEmpty else {
            throw TesseraError.invalidArgument("backward of a pipeline with named outputs is not supported (their gradients would be inputs too)")
        }
        try program.validate(inputShape: x.shape)
        let dx = Tensor(uninitialized: x.shape, count: x.count, runtime: runtime)
        try Engine.backward(program, x: x.storage.pointer, dy: gradOutput.storage.pointer, dx: dx.storage.pointer,
                            shape: x.shape, runtime: runtime, fused: fused)
        return dx
    }

    /// The backward program in words: which sweeps the backward makes.
    public func explainBackward(fused: Bool = true) -> String { compile(fused: fused).explainBackward(fused: fused) }

    private func finalShape(_ shape: [Int]) -> [Int] {
        nodes.reduce(shape) { s, n in if case .reshape(let t) = n { return t } else { return s } }
    }
}

extension Program {
    /// Sweeps over memory the backward makes: per element-wise stage one (fused: x and dy read,
    /// dx written) or one per step plus the stored intermediates (unfused); a softmax stage one
    /// for its gradient, plus its prologue's; the forward stages whose inputs a later stage's
    /// backward reads.
    public var backwardSweeps: Int {
        let compute = stages.filter { if case .reshape = $0 { return false } else { return true } }
        guard let last = compute.last else { return 0 }
        // forward: every stage whose output a later stage, or its own softmax gradient, reads
        var sweeps = compute.count - 1
        if case .softmax = last { sweeps += 1 }
        for st in compute {
            if case .softmax(let pro, _, _) = st { sweeps += pro.isEmpty ? 1 : 2 } else { sweeps += 1 }
        }
        return sweeps
    }


    public func explainBackward(fused: Bool = true) -> String {
        var s = "backward: \(backwardSweeps) sweep(s) over memory\n"
        for (i, st) in stages.enumerated().reversed() {
            switch st {
            case .elementwise(let steps):
                s += "  stage \(i): d[\(steps.map(\.description).joined(separator: " -> "))]: one sweep reading the stage's input and the gradient, intermediates recomputed in L1 blocks\n"
            case .softmax(let pro, let dim, let log):
                s += "  stage \(i): d\(log ? "log_softmax" : "softmax")(dim: \(dim)) from its output" + (pro.isEmpty ? "" : ", then d[\(pro.map(\.description).joined(separator: " -> "))] from the stage's input") + "\n"
            case .reshape(let sh):
                s += "  stage \(i): reshape(\(sh)) back: no memory touched\n"
            }
        }
        return s
    }
}

extension Engine {
    /// The backward of a validated program without named outputs on pointers: the forward
    /// runs once to keep each stage's input (and a softmax stage's output), then the stages'
    /// backward run last to first, the gradient kept in dx.  dx may be dy.
    static func backward(_ program: Program, x: UnsafePointer<Float>, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
                         shape: [Int], runtime: Runtime, fused: Bool) throws {
        let count = shape.reduce(1, *)
        guard count > 0 else { return }
        // the compute stages with the shape each sees
        var stages: [(Stage, [Int])] = []
        var cur = shape
        for st in program.stages {
            if case .reshape(let s) = st { cur = s; continue }
            stages.append((st, cur))
        }
        if stages.isEmpty {
            if dy != UnsafePointer(dx) { dx.update(from: dy, count: count) }
            return
        }
        // inputs[i]: stage i's input; outputs of softmax stages (their gradient reads y)
        var buffers: [AlignedStorage] = []
        var inputs: [UnsafePointer<Float>] = [x]
        var softmaxOut: [Int: UnsafePointer<Float>] = [:]
        for (i, (st, sh)) in stages.enumerated() {
            let needOut = i + 1 < stages.count
            var isSoftmax = false
            if case .softmax = st { isSoftmax = true }
            guard needOut || isSoftmax else { break }
            let out = AlignedStorage(count: count)
            buffers.append(out)
            _ = try run(st, x: inputs[i], y: out.pointer, shape: sh, runtime: runtime, execution: .hybrid)
            if isSoftmax { softmaxOut[i] = UnsafePointer(out.pointer) }
            if needOut { inputs.append(UnsafePointer(out.pointer)) }
        }
        var g = dy
        for i in stride(from: stages.count - 1, through: 0, by: -1) {
            let (st, sh) = stages[i]
            switch st {
            case .elementwise(let steps):
                if fused {
                    elementwiseBackward(steps, x: inputs[i], dy: g, dx: dx, count: count, runtime: runtime)
                } else {
                    unfusedBackward(steps, x: inputs[i], dy: g, dx: dx, count: count, runtime: runtime)
                }
            case .softmax(let pro, let dim, let log):
                softmaxBackward(y: softmaxOut[i]!, dy: g, dx: dx, shape: sh, dim: try normalizedDim(dim, rank: sh.count),
                                log: log, runtime: runtime)
                if !pro.isEmpty {
                    if fused {
                        elementwiseBackward(pro, x: inputs[i], dy: dx, dx: dx, count: count, runtime: runtime)
                    } else {
                        unfusedBackward(pro, x: inputs[i], dy: dx, dx: dx, count: count, runtime: runtime)
                    }
                }
            case .reshape:
                break
            }
            g = UnsafePointer(dx)
        }
        withExtendedLifetime(buffers) {}
    }
}
