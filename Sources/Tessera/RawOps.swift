/// Tessera on memory the caller owns: pointer + shape, contiguous row-major float32, no copy
/// into a `Tensor`.  Every function validates all arguments before any worker starts and
/// writes nothing to `output` when it throws.
///
/// Aliasing: `output` may be exactly `input` (in place); any other overlap is an error.
public enum RawOps {
    /// `output = step(input)` over `count` elements.
    public static func apply(_ step: ElementwiseStep, input: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>?,
                             count: Int, runtime: Runtime = .default) throws {
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

    /// Validates pointers and aliasing; nil pointers are allowed only for an empty tensor.
    static func check(_ input: UnsafePointer<Float>?, _ output: UnsafeMutablePointer<Float>?, count: Int) throws
        -> (UnsafePointer<Float>?, UnsafeMutablePointer<Float>?) {
        guard count >= 0 else { throw TesseraError.invalidArgument("element count must be >= 0, got \(count)") }
        if count == 0 { return (nil, nil) }
        guard let input else { throw TesseraError.nullPointer("input") }
        guard let output else { throw TesseraError.nullPointer("output") }
        let a = UInt(bitPattern: input), b = UInt(bitPattern: output)
        let bytes = UInt(count * MemoryLayout<Float>.stride)
        if a != b && a < b + bytes && b < a + bytes { throw TesseraError.overlappingBuffers }
        return (input, output)
    }
}
