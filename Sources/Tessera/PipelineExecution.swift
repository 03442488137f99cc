/// The tensors a pipeline produced: the final one and any the pipeline asked to keep.
public struct PipelineResult: Sendable {
    public var output: Tensor
    public var outputs: [String: Tensor]
}

extension Pipeline {
    /// The fusion pass's result for these nodes.
    public func compile(fused: Bool = true) -> Program {
        fused ? FusionPass.run(nodes) : FusionPass.unfused(nodes)
    }

    /// What fused: the stages and what each reads and writes.
    public func explain() -> String { compile().explain() }

    /// The fused program and how each stage would be scheduled on `shape` with `runtime`:
    /// tiles, nodes, workers (the printable plan).
    public func schedule(shape: [Int], runtime: Runtime = .default, fused: Bool = true) throws -> String {
        let program = compile(fused: fused)
        try program.validate(inputShape: shape)
        var out = program.explain()
        var cur = shape
        for (i, stage) in program.stages.enumerated() {
            out += "stage \(i): " + Engine.describe(stage, shape: cur, runtime: runtime)
            if case .reshape(let s) = stage { cur = s }
        }
        return out
    }

    public func callAsFunction(_ x: Tensor, runtime: Runtime = .default) throws -> Tensor {
        try run(x, runtime: runtime).output
    }

    /// Runs the pipeline.  `fused: false` runs one sweep per node (the reference fusion must
    /// match bit for bit).  Shapes and dims are checked for every stage before any runs.
    public func run(_ x: Tensor, runtime: Runtime = .default, fused: Bool = true,
                    execution: FusedExecution = .hybrid) throws -> PipelineResult {
        let program = compile(fused: fused)
        try program.validate(inputShape: x.shape)
        var outputs: [String: Tensor] = [:]
        for o in program.outputs where o.stage < 0 { outputs[o.name] = x }
        var cur = x
        var owned = false // `cur` is an intermediate only this run holds: safe to overwrite
        for (i, stage) in program.stages.enumerated() {
            if case .reshape(let s) = stage {
                cur = try cur.reshaped(s) // a view: no memory touched
            } else {
                var dst = owned ? cur : Tensor(uninitialized: cur.shape, count: cur.count, runtime: runtime)
                let src = cur
                try dst.withStoragePointers(src) { x, y in
                    _ = try Engine.run(stage, x: x, y: y, shape: src.shape, runtime: runtime, execution: execution)
                }
                cur = dst
                owned = true
            }
            let kept = program.outputs.filter { $0.stage == i }
            for o in kept { outputs[o.name] = cur }
            if !kept.isEmpty { owned = false } // the caller holds it now: the next stage writes elsewhere
        }
        return PipelineResult(output: cur, outputs: outputs)
    }
}

extension ElementwiseStep {
    /// Throws unless the op accepts the parameters (hardtanh's min <= max, ...).
    func validate() throws {
        guard op.accepts(a, b) else { throw TesseraError.invalidArgument("invalid parameters (\(a), \(b)) for \(op.rawValue)") }
    }
}

extension Program {
    /// Checks every stage's parameters, dims and reshapes against the shapes they will see.
    public func validate(inputShape: [Int]) throws {
        var shape = inputShape
        for stage in stages {
            switch stage {
            case .reshape(let s):
                let n = try elementCount(s)
                guard n == shape.reduce(1, *) else { throw TesseraError.reshapeMismatch(from: shape, to: s) }
                shape = s
            case .softmax(let prologue, let dim, _):
                try prologue.forEach { try $0.validate() }
                _ = try normalizedDim(dim, rank: shape.count)
            case .elementwise(let steps):
                try steps.forEach { try $0.validate() }
            }
        }
    }
}

extension Tensor {
    /// Calls `body` with `source`'s storage and this tensor's (made unique first).
    mutating func withStoragePointers(_ source: Tensor, _ body: (UnsafePointer<Float>, UnsafeMutablePointer<Float>) throws -> Void) rethrows {
        if storage !== source.storage { makeUnique() }
        try body(source.storage.pointer, storage.pointer)
    }
}
