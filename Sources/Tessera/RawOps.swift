/// Tessera on memory the caller owns: pointer + shape, contiguous row-major float32, no copy
/// into a `Tensor`.  Every function validates all arguments before any worker starts and
/// writes nothing to `output` when it throws.
///
/// Aliasing: `output` may be exactly `input` (in place); any other overlap is an error.
public enum RawOps {
    /// `output = step(input)` over `count` elements.
    public static func apply(_ step: ElementwiseStep, input: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>?,
                             count: Int, runtime: Runtime = .default) throws {
        try step.validate()
        let (x, y) = try check(input, output, count: count)
        guard let x, let y else { return }
        Engine.elementwise(step, x: x, y: y, count: count, runtime: runtime)
    }

    /// `output = input` with Tessera's tiles, workers and store policy: the memory-bandwidth
    /// yardstick the benchmarks and scale-test put next to the activations.
    public static func copy(input: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>?, count: Int,
                            runtime: Runtime = .default) throws {
        let (x, y) = try check(input, output, count: count)
        guard let x, let y, x != UnsafePointer(y) else { return }
        Engine.copy(x: x, y: y, count: count, runtime: runtime)
    }

    /// Softmax or log-softmax of a tensor of `shape` along `dim`.
    public static func softmax(input: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>?, shape: [Int],
                               dim: Int = -1, log: Bool = false, runtime: Runtime = .default) throws {
        let count = try elementCount(shape)
        let d = try normalizedDim(dim, rank: shape.count)
        let (x, y) = try check(input, output, count: count)
        guard let x, let y else { return }
        Engine.softmax(x: x, y: y, shape: shape, dim: d, log: log, runtime: runtime)
    }

    /// Runs a pipeline: the first stage reads `input`, every later one works in place on
    /// `output`.  Requested intermediate outputs need the `Tensor` API (they need storage).
    public static func run(_ pipeline: Pipeline, input: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>?,
                           shape: [Int], fused: Bool = true, execution: FusedExecution = .hybrid,
                           runtime: Runtime = .default) throws {
        try run(pipeline.compile(fused: fused), input: input, output: output, shape: shape, execution: execution,
                runtime: runtime)
    }

    /// Runs a compiled program (build once, run many times: no fusion pass per call).
    public static func run(_ program: Program, input: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>?,
                           shape: [Int], execution: FusedExecution = .hybrid, runtime: Runtime = .default) throws {
        let count = try elementCount(shape)
        guard program.outputs.isEmpty else {
            throw TesseraError.invalidArgument("a pipeline with named outputs needs the Tensor API (outputs need their own storage)")
        }
        try program.validate(inputShape: shape)
        let (xp, yp) = try check(input, output, count: count)
        guard let x = xp, let y = yp else { return }
        try Engine.run(program, x: x, y: y, shape: shape, runtime: runtime, execution: execution)
    }

    /// PReLU on caller memory: `weight` has 1 or `shape[1]` elements.
    public static func prelu(input: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>?, shape: [Int],
                             weight: UnsafeBufferPointer<Float>, runtime: Runtime = .default) throws {
        let count = try elementCount(shape)
        guard let w = weight.baseAddress, !weight.isEmpty else { throw TesseraError.nullPointer("weight") }
        let (blocks, channels, inner) = try PReLU.geometry(shape, weights: weight.count)
        let (x, y) = try check(input, output, count: count)
        guard let x, let y else { return }
        try checkApart(w, weight.count, y, count, what: "weight and output")
        Engine.prelu(x: x, y: y, blocks: blocks, channels: channels, inner: inner, weight: w, runtime: runtime)
    }

    /// PReLU's backward on caller memory: `gradInput` (may be `gradOutput`) and `gradWeight`
    /// (as many elements as `weight`).
    public static func preluBackward(input: UnsafePointer<Float>?, gradOutput: UnsafePointer<Float>?,
                                     gradInput: UnsafeMutablePointer<Float>?, shape: [Int], weight: UnsafeBufferPointer<Float>,
                                     gradWeight: UnsafeMutableBufferPointer<Float>, runtime: Runtime = .default) throws {
        let count = try elementCount(shape)
        guard let w = weight.baseAddress, !weight.isEmpty else { throw TesseraError.nullPointer("weight") }
        guard let gw = gradWeight.baseAddress else { throw TesseraError.nullPointer("gradWeight") }
        guard gradWeight.count == weight.count else {
            throw TesseraError.gradientShapeMismatch(name: "gradWeight", expected: [weight.count], got: [gradWeight.count])
        }
        let (blocks, channels, inner) = try PReLU.geometry(shape, weights: weight.count)
        // gradWeight is written: it may share memory with nothing the call reads or writes
        try checkApart(w, weight.count, gw, weight.count, what: "weight and gradWeight")
        let (dy, dx) = try check(gradOutput, gradInput, count: count, names: ("gradOutput", "gradInput"))
        guard let dy, let dx else { gw.update(repeating: 0, count: weight.count); return }
        guard let input else { throw TesseraError.nullPointer("input") }
        try checkApart(input, dx, count: count, what: "input and gradInput")
        try checkApart(w, weight.count, dx, count, what: "weight and gradInput")
        for (p, what) in [(input, "input"), (dy, "gradOutput"), (UnsafePointer(dx), "gradInput")] {
            try checkApart(p, count, gw, weight.count, what: "\(what) and gradWeight")
        }
        Engine.preluBackward(x: input, dy: dy, dx: dx, blocks: blocks, channels: channels, inner: inner, weight: w,
                             gradWeight: gw, runtime: runtime)
    }

    // MARK: backward

    /// `gradInput = gradOutput * step'(.)` over `count` elements, from the saved tensor the op
    /// reads (`step.op.saved`): `input` (the forward's x), `output` (its y), either, or none;
    /// a missing one is an error.  `gradInput` may be exactly `gradOutput`; any other overlap
    /// (with the gradient or a saved tensor) is an error.
    public static func backward(_ step: ElementwiseStep, input: UnsafePointer<Float>? = nil,
                                output: UnsafePointer<Float>? = nil, gradOutput: UnsafePointer<Float>?,
                                gradInput: UnsafeMutablePointer<Float>?, count: Int, runtime: Runtime = .default) throws {
        try step.validate()
        let (dy, dx) = try check(gradOutput, gradInput, count: count, names: ("gradOutput", "gradInput"))
        guard let dy, let dx else { return }
        let saved = try step.op.saved.pick(input: input, output: output, op: step.op)
        if let saved { try checkApart(saved, dx, count: count, what: "a saved tensor and gradInput") }
        Engine.elementwiseBackward(step, saved: saved, dy: dy, dx: dx, count: count, runtime: runtime)
    }

    /// Softmax (or log-softmax) backward along `dim` from the forward's `output`:
    /// dx = y * (dy - sum(dy * y)), or dy - exp(y) * sum(dy).  `gradInput` may be `gradOutput`.
    public static func softmaxBackward(output: UnsafePointer<Float>?, gradOutput: UnsafePointer<Float>?,
                                       gradInput: UnsafeMutablePointer<Float>?, shape: [Int], dim: Int = -1,
                                       log: Bool = false, runtime: Runtime = .default) throws {
        let count = try elementCount(shape)
        let d = try normalizedDim(dim, rank: shape.count)
        let (dy, dx) = try check(gradOutput, gradInput, count: count, names: ("gradOutput", "gradInput"))
        guard let dy, let dx else { return }
        guard let output else { throw TesseraError.nullPointer("output") }
        try checkApart(output, dx, count: count, what: "output and gradInput")
        Engine.softmaxBackward(y: output, dy: dy, dx: dx, shape: shape, dim: d, log: log, runtime: runtime)
    }

    /// The backward of a pipeline at `input` (see `Pipeline.backward`).
    public static func backward(_ pipeline: Pipeline, input: UnsafePointer<Float>?, gradOutput: UnsafePointer<Float>?,
                                gradInput: UnsafeMutablePointer<Float>?, shape: [Int], fused: Bool = true,
                                runtime: Runtime = .default) throws {
        try backward(pipeline.compile(fused: fused), input: input, gradOutput: gradOutput, gradInput: gradInput,
                     shape: shape, fused: fused, runtime: runtime)
    }

    /// The backward of a compiled program at `input`.
    public static func backward(_ program: Program, input: UnsafePointer<Float>?, gradOutput: UnsafePointer<Float>?,
                                gradInput: UnsafeMutablePointer<Float>?, shape: [Int], fused: Bool = true,
                                runtime: Runtime = .default) throws {
        let count = try elementCount(shape)
        guard program.outputs.isEmpty else {
            throw TesseraError.invalidArgument("backward of a pipeline with named outputs is not supported")
        }
        try program.validate(inputShape: shape)
        let (dy, dx) = try check(gradOutput, gradInput, count: count, names: ("gradOutput", "gradInput"))
        guard let dy, let dx else { return }
        guard let input else { throw TesseraError.nullPointer("input") }
        try checkApart(input, dx, count: count, what: "input and gradInput")
        try Engine.backward(program, x: input, dy: dy, dx: dx, shape: shape, runtime: runtime, fused: fused)
    }

    /// Throws unless [a, a + count) and [b, b + count) are disjoint.
    /// (Only gradInput == gradOutput may share memory in a backward call.)
    static func checkApart(_ a: UnsafePointer<Float>, _ b: UnsafeMutablePointer<Float>, count: Int,
                           what: @autoclosure () -> String) throws {
        try checkApart(a, count, b, count, what: what())
    }

    /// Throws unless [a, a + na) and [b, b + nb) are disjoint.  `what` is built only for the
    /// error: a message made on every call was one of a call's two allocations.
    static func checkApart(_ a: UnsafePointer<Float>, _ na: Int, _ b: UnsafeMutablePointer<Float>, _ nb: Int,
                           what: @autoclosure () -> String) throws {
        let x = UInt(bitPattern: a), y = UInt(bitPattern: b)
        let xe = x + UInt(na * MemoryLayout<Float>.stride), ye = y + UInt(nb * MemoryLayout<Float>.stride)
        if na > 0 && nb > 0 && x < ye && y < xe { throw TesseraError.overlappingBuffers(what()) }
    }

    /// Validates pointers and aliasing; nil pointers are allowed only for an empty tensor.
    static func check(_ input: UnsafePointer<Float>?, _ output: UnsafeMutablePointer<Float>?, count: Int,
                      names: (String, String) = ("input", "output")) throws
        -> (UnsafePointer<Float>?, UnsafeMutablePointer<Float>?) {
        guard count >= 0 else { throw TesseraError.invalidArgument("element count must be >= 0, got \(count)") }
        if count == 0 { return (nil, nil) }
        guard let input else { throw TesseraError.nullPointer(names.0) }
        guard let output else { throw TesseraError.nullPointer(names.1) }
        if input != UnsafePointer(output) { try checkApart(input, count, output, count, what: "\(names.0) and \(names.1)") }
        return (input, output)
    }
}
