@_exported import TesseraGraph
@_exported import TesseraKernels
@_exported import TesseraRuntime
@_exported import TesseraTopology
import CTesseraKernels

// The ops' Swift names: one line per row of the op table (tessera_ops.def), next to its layer.
extension UnaryOp {
    public static let relu = UnaryOp(.relu)
    public static let sigmoid = UnaryOp(.sigmoid)
    public static let tanh = UnaryOp(.tanh)
    /// exact: x * Phi(x)
    public static let gelu = UnaryOp(.gelu)
    /// PyTorch's approximate='tanh'
    public static let geluTanh = UnaryOp(.gelu_tanh)
    public static let affine = UnaryOp(.affine)
    public static let clamp = UnaryOp(.clamp)
}

extension UnaryOp {
    /// The op's layer, with its default parameters (exhaustive over the op table: a new row
    /// does not compile until it has a layer).
    public var layer: any ElementwiseLayer {
        switch id {
        case .relu: ReLU()
        case .sigmoid: Sigmoid()
        case .tanh: Tanh()
        case .gelu: GELU()
        case .gelu_tanh: GELU(approximate: .tanh)
        case .affine: Affine()
        case .clamp: Clamp(lower: defaultParameters.0, upper: defaultParameters.1)
        }
    }
}

extension ElementwiseStep {
    /// x * scale + bias (the attention scale, a bias add)
    public static func affine(scale: Float, bias: Float) -> ElementwiseStep { ElementwiseStep(.affine, scale, bias) }
    /// min(max(x, lower), upper), NaN kept
    public static func clamp(lower: Float, upper: Float) -> ElementwiseStep { ElementwiseStep(.clamp, lower, upper) }
}

/// A layer that maps a tensor to a tensor of the same shape.
public protocol Layer: PipelineComponent {
    func forward(_ x: Tensor, runtime: Runtime) throws -> Tensor
    /// Writes the result into `output` (same shape as `x`); nothing is written on error.
    func forward(_ x: Tensor, into output: inout Tensor, runtime: Runtime) throws
    /// Overwrites `x` with the result: no second buffer.
    func forwardInPlace(_ x: inout Tensor, runtime: Runtime) throws
}

/// An element-wise activation: one kernel per element, fusable.
public protocol ElementwiseLayer: Layer {
    var step: ElementwiseStep { get }
}

extension ElementwiseLayer {
    public var pipelineNodes: [PipelineNode] { [.step(step)] }

    public func forward(_ x: Tensor, runtime: Runtime = .default) -> Tensor { apply(x, runtime) }

    public func callAsFunction(_ x: Tensor, runtime: Runtime = .default) -> Tensor { apply(x, runtime) }

    private func apply(_ x: Tensor, _ runtime: Runtime) -> Tensor {
        let y = Tensor(uninitialized: x.shape, count: x.count, runtime: runtime)
        Engine.elementwise(step, x: x.storage.pointer, y: y.storage.pointer, count: x.count, runtime: runtime)
        return y
    }

    public func forward(_ x: Tensor, into output: inout Tensor, runtime: Runtime = .default) throws {
        guard output.shape == x.shape else { throw TesseraError.outputShapeMismatch(expected: x.shape, got: output.shape) }
        output.makeUnique()
        Engine.elementwise(step, x: x.storage.pointer, y: output.storage.pointer, count: x.count, runtime: runtime)
    }

    public func forwardInPlace(_ x: inout Tensor, runtime: Runtime = .default) {
        x.makeUnique()
        Engine.elementwise(step, x: x.storage.pointer, y: x.storage.pointer, count: x.count, runtime: runtime)
    }
}

/// max(0, x); NaN stays NaN and -0 stays -0, as in PyTorch.
public struct ReLU: ElementwiseLayer {
    public init() {}
    public var step: ElementwiseStep { .unary(.relu) }
}

/// 1 / (1 + e^-x), computed as e^-|x| / (1 + e^-|x|) so it never overflows.
public struct Sigmoid: ElementwiseLayer {
    public init() {}
    public var step: ElementwiseStep { .unary(.sigmoid) }
}

public struct Tanh: ElementwiseLayer {
    public init() {}
    public var step: ElementwiseStep { .unary(.tanh) }
}

/// GELU: exact `x * Phi(x)` (erf form) or PyTorch's tanh approximation.
public struct GELU: ElementwiseLayer {
    public enum Approximation: String, Sendable, Hashable { case none, tanh }
    public var approximate: Approximation
    public init(approximate: Approximation = .none) { self.approximate = approximate }
    public var step: ElementwiseStep { .unary(approximate == .none ? .gelu : .geluTanh) }
}

/// `x * scale + bias` (an attention scale, a bias add): fusable into its neighbours.
public struct Affine: ElementwiseLayer {
    public var scale: Float, bias: Float
    public init(scale: Float = 1, bias: Float = 0) { self.scale = scale; self.bias = bias }
    public var step: ElementwiseStep { .affine(scale: scale, bias: bias) }
}

/// `min(max(x, lower), upper)`; NaN stays NaN.
public struct Clamp: ElementwiseLayer {
    public var lower: Float, upper: Float
    public init(lower: Float, upper: Float) { self.lower = lower; self.upper = upper }
    public var step: ElementwiseStep { .clamp(lower: lower, upper: upper) }
}

/// Softmax along `dim` (negative counts from the end): subtracts the row max, so
/// `softmax([1000, 1001, 1002])` is exact; a row of only -inf gives NaN, as PyTorch.
public struct Softmax: Layer {
    public var dim: Int
    public init(dim: Int = -1) { self.dim = dim }
    public var pipelineNodes: [PipelineNode] { [.softmax(dim: dim, log: false)] }

    public func forward(_ x: Tensor, runtime: Runtime = .default) throws -> Tensor {
        try softmaxForward(x, dim: dim, log: false, runtime: runtime)
    }
    public func callAsFunction(_ x: Tensor, runtime: Runtime = .default) throws -> Tensor { try forward(x, runtime: runtime) }
    public func forward(_ x: Tensor, into output: inout Tensor, runtime: Runtime = .default) throws {
        try softmaxForward(x, into: &output, dim: dim, log: false, runtime: runtime)
    }
    public func forwardInPlace(_ x: inout Tensor, runtime: Runtime = .default) throws {
        try softmaxInPlace(&x, dim: dim, log: false, runtime: runtime)
    }
}

/// `x - max - log(sum(exp(x - max)))` along `dim`: the stable log-softmax cross-entropy needs.
public struct LogSoftmax: Layer {
    public var dim: Int
    public init(dim: Int = -1) { self.dim = dim }
    public var pipelineNodes: [PipelineNode] { [.softmax(dim: dim, log: true)] }

    public func forward(_ x: Tensor, runtime: Runtime = .default) throws -> Tensor {
        try softmaxForward(x, dim: dim, log: true, runtime: runtime)
    }
    public func callAsFunction(_ x: Tensor, runtime: Runtime = .default) throws -> Tensor { try forward(x, runtime: runtime) }
    public func forward(_ x: Tensor, into output: inout Tensor, runtime: Runtime = .default) throws {
        try softmaxForward(x, into: &output, dim: dim, log: true, runtime: runtime)
    }
    public func forwardInPlace(_ x: inout Tensor, runtime: Runtime = .default) throws {
        try softmaxInPlace(&x, dim: dim, log: true, runtime: runtime)
    }
}

private func softmaxForward(_ x: Tensor, dim: Int, log: Bool, runtime: Runtime) throws -> Tensor {
    let d = try normalizedDim(dim, rank: x.rank)
    let y = Tensor(uninitialized: x.shape, count: x.count, runtime: runtime)
    Engine.softmax(x: x.storage.pointer, y: y.storage.pointer, shape: x.shape, dim: d, log: log, runtime: runtime)
    return y
}

private func softmaxForward(_ x: Tensor, into output: inout Tensor, dim: Int, log: Bool, runtime: Runtime) throws {
    let d = try normalizedDim(dim, rank: x.rank)
    guard output.shape == x.shape else { throw TesseraError.outputShapeMismatch(expected: x.shape, got: output.shape) }
    output.makeUnique()
    Engine.softmax(x: x.storage.pointer, y: output.storage.pointer, shape: x.shape, dim: d, log: log, runtime: runtime)
}

private func softmaxInPlace(_ x: inout Tensor, dim: Int, log: Bool, runtime: Runtime) throws {
    let d = try normalizedDim(dim, rank: x.rank)
    x.makeUnique()
    Engine.softmax(x: x.storage.pointer, y: x.storage.pointer, shape: x.shape, dim: d, log: log, runtime: runtime)
}
