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
    public static let silu = UnaryOp(.silu)
    public static let leakyReLU = UnaryOp(.leaky_relu)
    public static let elu = UnaryOp(.elu)
    public static let celu = UnaryOp(.celu)
    public static let selu = UnaryOp(.selu)
    public static let softplus = UnaryOp(.softplus)
    public static let mish = UnaryOp(.mish)
    public static let hardswish = UnaryOp(.hardswish)
    public static let hardsigmoid = UnaryOp(.hardsigmoid)
    public static let hardtanh = UnaryOp(.hardtanh)
    public static let softsign = UnaryOp(.softsign)
    public static let logsigmoid = UnaryOp(.logsigmoid)
    public static let threshold = UnaryOp(.threshold)
    public static let hardshrink = UnaryOp(.hardshrink)
    public static let softshrink = UnaryOp(.softshrink)
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
        case .silu: SiLU()
        case .leaky_relu: LeakyReLU()
        case .elu: ELU()
        case .celu: try! CELU()
        case .selu: SELU()
        case .softplus: try! Softplus()
        case .mish: Mish()
        case .hardswish: Hardswish()
        case .hardsigmoid: Hardsigmoid()
        case .hardtanh: try! Hardtanh()
        case .softsign: Softsign()
        case .logsigmoid: LogSigmoid()
        case .threshold: Threshold(threshold: defaultParameters.0, value: defaultParameters.1)
        case .hardshrink: Hardshrink()
        case .softshrink: try! Softshrink()
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

/// x * sigmoid(x) (Swish), stable for large |x|.
public struct SiLU: ElementwiseLayer {
    public init() {}
    public var step: ElementwiseStep { .unary(.silu) }
}

/// x for x > 0, else `negativeSlope * x` (PyTorch's default 0.01).
public struct LeakyReLU: ElementwiseLayer {
    public var negativeSlope: Float
    public init(negativeSlope: Float = 0.01) { self.negativeSlope = negativeSlope }
    public var step: ElementwiseStep { ElementwiseStep(.leakyReLU, negativeSlope) }
}

/// x for x > 0, else `alpha * (exp(x) - 1)`, with expm1's accuracy near 0.
public struct ELU: ElementwiseLayer {
    public var alpha: Float
    public init(alpha: Float = 1) { self.alpha = alpha }
    public var step: ElementwiseStep { ElementwiseStep(.elu, alpha) }
}

/// max(0, x) + min(0, alpha * (exp(x / alpha) - 1)); alpha must not be 0.
public struct CELU: ElementwiseLayer {
    public let alpha: Float
    public init(alpha: Float = 1) throws {
        guard UnaryOp.celu.accepts(alpha, 0) else { throw TesseraError.invalidArgument("CELU alpha must not be 0") }
        self.alpha = alpha
    }
    public var step: ElementwiseStep { ElementwiseStep(.celu, alpha) }
}

/// scale * (max(0, x) + min(0, alpha * (exp(x) - 1))) with PyTorch's fixed alpha and scale.
public struct SELU: ElementwiseLayer {
    public init() {}
    public var step: ElementwiseStep { .unary(.selu) }
}

/// (1 / beta) * log(1 + exp(beta * x)), and x where beta * x > threshold (PyTorch's defaults 1, 20).
public struct Softplus: ElementwiseLayer {
    public let beta: Float, threshold: Float
    public init(beta: Float = 1, threshold: Float = 20) throws {
        guard UnaryOp.softplus.accepts(beta, threshold) else { throw TesseraError.invalidArgument("Softplus beta must not be 0") }
        self.beta = beta
        self.threshold = threshold
    }
    public var step: ElementwiseStep { ElementwiseStep(.softplus, beta, threshold) }
}

/// x * tanh(softplus(x)), without overflow or cancellation in either tail.
public struct Mish: ElementwiseLayer {
    public init() {}
    public var step: ElementwiseStep { .unary(.mish) }
}

/// x * relu6(x + 3) / 6.
public struct Hardswish: ElementwiseLayer {
    public init() {}
    public var step: ElementwiseStep { .unary(.hardswish) }
}

/// relu6(x + 3) / 6, PyTorch's x/6 + 1/2 clamped to [0, 1].
public struct Hardsigmoid: ElementwiseLayer {
    public init() {}
    public var step: ElementwiseStep { .unary(.hardsigmoid) }
}

/// `min(max(x, minVal), maxVal)` (defaults -1, 1); its gradient is 0 at the bounds (PyTorch).
public struct Hardtanh: ElementwiseLayer {
    public let minVal: Float, maxVal: Float
    public init(minVal: Float = -1, maxVal: Float = 1) throws {
        guard UnaryOp.hardtanh.accepts(minVal, maxVal) else {
            throw TesseraError.invalidArgument("Hardtanh minVal \(minVal) must not exceed maxVal \(maxVal)")
        }
        self.minVal = minVal
        self.maxVal = maxVal
    }
    public var step: ElementwiseStep { ElementwiseStep(.hardtanh, minVal, maxVal) }
}

/// x / (1 + |x|); +-inf give +-1 (PyTorch's formula gives NaN there).
public struct Softsign: ElementwiseLayer {
    public init() {}
    public var step: ElementwiseStep { .unary(.softsign) }
}

/// log(sigmoid(x)) = -softplus(-x), stable on both sides.
public struct LogSigmoid: ElementwiseLayer {
    public init() {}
    public var step: ElementwiseStep { .unary(.logsigmoid) }
}

/// x where x > threshold, else `value`.
public struct Threshold: ElementwiseLayer {
    public var threshold: Float, value: Float
    public init(threshold: Float, value: Float) { self.threshold = threshold; self.value = value }
    public var step: ElementwiseStep { ElementwiseStep(.threshold, threshold, value) }
}

/// x where |x| > lambda (default 0.5), else 0.
public struct Hardshrink: ElementwiseLayer {
    public var lambda: Float
    public init(lambda: Float = 0.5) { self.lambda = lambda }
    public var step: ElementwiseStep { ElementwiseStep(.hardshrink, lambda) }
}

/// x - lambda * sign(x) where |x| > lambda (default 0.5), else 0.
public struct Softshrink: ElementwiseLayer {
    public let lambda: Float
    /// `lambda` must be >= 0 (PyTorch's check).
    public init(lambda: Float = 0.5) throws {
        guard UnaryOp.softshrink.accepts(lambda, 0) else {
            throw TesseraError.invalidArgument("Softshrink lambda must be >= 0, got \(lambda)")
        }
        self.lambda = lambda
    }
    public var step: ElementwiseStep { ElementwiseStep(.softshrink, lambda) }
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
