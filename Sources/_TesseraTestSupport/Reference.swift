import Foundation
import Tessera
import CTesseraKernels

/// Float64 references that read like the textbook, used by every accuracy test.
public enum Reference {
    public static func relu(_ x: Double) -> Double { x < 0 ? 0 : x } // NaN and -0 pass through

    public static func sigmoid(_ x: Double) -> Double {
        x >= 0 ? 1 / (1 + Foundation.exp(-x)) : Foundation.exp(x) / (1 + Foundation.exp(x))
    }

    public static func tanh(_ x: Double) -> Double { Foundation.tanh(x) }

    /// x * Phi(x), Phi from erfc so the negative tail keeps its digits.
    public static func gelu(_ x: Double) -> Double {
        x < 0 ? x * 0.5 * Foundation.erfc(-x / 2.0.squareRoot()) : x * (1 - 0.5 * Foundation.erfc(x / 2.0.squareRoot()))
    }

    /// PyTorch's tanh form 0.5x(1 + tanh(u)), u = sqrt(2/pi)(x + 0.044715x^3), written as
    /// x * sigmoid(2u) (the same function without float64 cancellation).
    public static func geluTanh(_ x: Double) -> Double {
        let u = (2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)
        return x * sigmoid(2 * u)
    }

    /// The float64 reference of every row of the op table (the switch is exhaustive over
    /// tessera_ops.def: a new row does not compile until it has one).
    public static func op(_ op: UnaryOp, _ x: Double, _ a: Double, _ b: Double) -> Double {
        switch op.id {
        case .relu: relu(x)
        case .sigmoid: sigmoid(x)
        case .tanh: tanh(x)
        case .gelu: gelu(x)
        case .gelu_tanh: geluTanh(x)
        case .affine: x * a + b
        case .clamp: a.isNaN || b.isNaN ? .nan : x.isNaN ? x : Swift.min(Swift.max(x, a), b)
        case .silu: x * sigmoid(x)
        case .leaky_relu: x > 0 ? x : x * a
        case .elu: x > 0 ? x : a * Foundation.expm1(x)
        case .celu: x > 0 ? x : a * Foundation.expm1(f32(x / a))
        case .selu: x > 0 ? seluScale * x : seluScale * seluAlpha * Foundation.expm1(x)
        case .softplus: f32(x * a) > b ? x : softplus1(f32(x * a)) / a
        case .mish: x * Foundation.tanh(softplus1(x))
        case .hardswish: x * Swift.min(Swift.max(x + 3, 0), 6) / 6
        case .hardsigmoid: x.isNaN ? x : Swift.min(Swift.max(x + 3, 0), 6) / 6
        case .hardtanh: x.isNaN ? x : Swift.min(Swift.max(x, a), b)
        case .softsign: x.isInfinite ? (x > 0 ? 1 : -1) : x / (1 + Swift.abs(x))
        case .logsigmoid: Swift.min(x, 0) - Foundation.log1p(Foundation.exp(-Swift.abs(x)))
        case .threshold: x <= a ? b : x
        case .hardshrink: Swift.abs(x) <= a ? 0 : x
        case .softshrink: Swift.abs(x) <= a ? 0 : x - (x > 0 ? a : -a)
        }
    }

    /// The float32 rounding of a product or quotient of two float32 parameters, as PyTorch's
    /// float32 kernels form softplus's beta*x and celu's x/alpha before the transcendental:
    /// their error propagates (beta = 3, x = -3: 7 ULP), exact only for powers of two.
    static func f32(_ v: Double) -> Double { Double(Float(v)) }

    static let seluAlpha = 1.6732632423543772848170429916717, seluScale = 1.0507009873554804934193349852946

    /// log(1 + exp(z)) without overflow.
    static func softplus1(_ z: Double) -> Double { Swift.max(z, 0) + Foundation.log1p(Foundation.exp(-Swift.abs(z))) }

    /// The float64 reference of every row's derivative, at the saved value its backward reads
    /// (`op.saved`: x, or y for sigmoid and tanh, whose gradient is a function of the output).
    /// At kinks and for NaN it follows PyTorch's backward ops; at +-inf it takes the limits.
    public static func derivative(_ op: UnaryOp, saved s: Double, _ a: Double, _ b: Double) -> Double {
        switch op.id {
        case .relu: s <= 0 ? 0 : 1 // threshold_backward: NaN passes the gradient
        case .sigmoid: s * (1 - s)
        case .tanh: (1 - s) * (1 + s)
        case .gelu:
            s.isInfinite ? (s > 0 ? 1 : 0) : phi(s) + s * Foundation.exp(-s * s / 2) / (2 * Double.pi).squareRoot()
        case .gelu_tanh:
            s.isInfinite ? (s > 0 ? 1 : 0) : geluTanhDerivative(s)
        case .affine: a
        case .clamp: s.isNaN || a.isNaN || b.isNaN ? 0 : (s >= a && s <= b ? 1 : 0)
        case .silu: s.isInfinite ? (s > 0 ? 1 : 0) : sigmoid(s) * (1 + s * sigmoid(-s))
        case .leaky_relu: s > 0 ? 1 : a
        case .elu: s > 0 ? 1 : a * Foundation.exp(s)
        case .celu: s > 0 ? 1 : Foundation.exp(f32(s / a))
        case .selu: s > 0 ? seluScale : seluScale * seluAlpha * Foundation.exp(s)
        case .softplus: f32(s * a) > b ? 1 : sigmoid(f32(s * a))
        case .mish:
            s.isInfinite ? (s > 0 ? 1 : 0)
                : Foundation.tanh(softplus1(s)) + s * sigmoid(s) * (1 - Foundation.pow(Foundation.tanh(softplus1(s)), 2))
        case .hardswish: s < -3 ? 0 : s <= 3 ? s / 3 + 0.5 : 1
        case .hardsigmoid: s > -3 && s < 3 ? 1.0 / 6 : 0
        case .hardtanh: s <= a || s >= b ? 0 : 1
        case .softsign: 1 / ((1 + Swift.abs(s)) * (1 + Swift.abs(s)))
        case .logsigmoid: sigmoid(-s)
        case .threshold: s <= a ? 0 : 1
        case .hardshrink, .softshrink: Swift.abs(s) <= a ? 0 : 1
        }
    }

    /// The normal CDF, from erfc on both sides (no cancellation in the lower tail).
    static func phi(_ x: Double) -> Double {
        x < 0 ? 0.5 * Foundation.erfc(-x / 2.0.squareRoot()) : 1 - 0.5 * Foundation.erfc(x / 2.0.squareRoot())
    }

    /// d/dx x sigmoid(2u), u = sqrt(2/pi)(x + 0.044715 x^3): s + 2x s(1-s) sqrt(2/pi)(1 + 3*0.044715 x^2).
    static func geluTanhDerivative(_ x: Double) -> Double {
        let c = (2 / Double.pi).squareRoot(), k = 0.044715
        let sg = sigmoid(2 * c * (x + k * x * x * x))
        let g = x >= 0 ? sg * sigmoid(-2 * c * (x + k * x * x * x)) : sg * (1 - sg)
        return sg + 2 * x * g * c * (1 + 3 * k * x * x)
    }

    /// Parameters each op is tested with: its defaults first, then values that exercise them.
    public static func parameterSets(_ op: UnaryOp) -> [(Float, Float)] {
        switch op.id {
        case .affine: [op.defaultParameters, (0.5, 0.25), (-3, 7), (0, -0.0)]
        case .clamp: [op.defaultParameters, (-1, 1), (0.5, 0.5), (-0.0, 0)]
        case .leaky_relu: [op.defaultParameters, (0.2, 0), (-0.5, 0)]
        case .elu: [op.defaultParameters, (0.5, 0), (2.5, 0)]
        case .celu: [op.defaultParameters, (0.5, 0), (3, 0), (1.7, 0)]
        // beta = 3: beta * x is not exact (powers of two are), which the reference rounds as PyTorch
        case .softplus: [op.defaultParameters, (2, 20), (0.5, 5), (3, 20)]
        case .hardtanh: [op.defaultParameters, (-2, 0.5), (0, 6)]
        case .threshold: [op.defaultParameters, (0.5, -1), (-2, 7)]
        case .hardshrink, .softshrink: [op.defaultParameters, (0, 0), (2.5, 0)]
        case .relu, .sigmoid, .tanh, .gelu, .gelu_tanh, .silu, .selu, .mish, .hardswish, .hardsigmoid, .softsign, .logsigmoid:
            [op.defaultParameters]
        }
    }

    /// Whether the kernel is correctly rounded (0.5 ULP: one rounding, or none).
    public static func correctlyRounded(_ op: UnaryOp) -> Bool {
        switch op.id {
        case .relu, .affine, .clamp, .leaky_relu, .hardtanh, .threshold, .hardshrink, .softshrink: true
        case .sigmoid, .tanh, .gelu, .gelu_tanh, .silu, .elu, .celu, .selu, .softplus, .mish, .hardswish, .hardsigmoid,
             .softsign, .logsigmoid: false
        }
    }

    /// Every op with every parameter set of `parameterSets`.
    public static var allSteps: [ElementwiseStep] {
        UnaryOp.allCases.flatMap { op in parameterSets(op).map { ElementwiseStep(op, $0.0, $0.1) } }
    }

    public static func unary(_ op: UnaryOp, _ x: Double) -> Double { step(ElementwiseStep(op), x) }

    public static func step(_ s: ElementwiseStep, _ x: Double) -> Double { op(s.op, x, Double(s.a), Double(s.b)) }

    /// Softmax (or log-softmax) of one row in float64, max-subtracted.
    public static func softmax(_ row: [Float], log: Bool = false) -> [Double] {
        let xs = row.map(Double.init)
        let m = xs.reduce(-Double.infinity) { $1.isNaN || $0.isNaN ? .nan : Swift.max($0, $1) }
        let s = xs.reduce(0.0) { $0 + Foundation.exp($1 - m) }
        return xs.map { log ? $0 - m - Foundation.log(s) : Foundation.exp($0 - m) / s }
    }
}

/// Accuracy bookkeeping in ULPs of the float32-rounded reference.
public enum ULP {
    /// |got - ref| in units of the last place of `Float(ref)`; 0 when both are NaN or equal
    /// infinities, +inf when one is NaN and the other is not.
    public static func error(_ got: Float, _ ref: Double) -> Double {
        if got.isNaN || ref.isNaN { return got.isNaN && ref.isNaN ? 0 : .infinity }
        // a reference beyond float's range rounds to infinity (so does a correctly rounded kernel)
        if ref.isInfinite || got.isInfinite { return got == Float(ref) ? 0 : .infinity }
        let r = Float(ref)
        let ulp = r.isInfinite ? Double(Float.greatestFiniteMagnitude.ulp) : Double(max(r.magnitude.ulp, Float.leastNonzeroMagnitude))
        return abs(Double(got) - ref) / ulp
    }

    /// The core issue's bound: within `ulps` ULP, or within `absolute` where |ref| < `tinyBelow`.
    public static func acceptable(_ got: Float, _ ref: Double, ulps: Double = 4, tinyBelow: Double = 1e-5,
                                  absolute: Double = 1e-7) -> Bool {
        if abs(ref) < tinyBelow && abs(Double(got) - ref) <= absolute { return true }
        return error(got, ref) <= ulps
    }
}

/// Inputs worth trying on every kernel.
public enum EdgeValues {
    public static let specials: [Float] = [
        .nan, -.nan, .infinity, -.infinity, 0, -0, 1000, -1000, 1, -1, 0.5, -0.5,
        .leastNonzeroMagnitude, -.leastNonzeroMagnitude, Float(bitPattern: 0x0001_16C2), -Float(bitPattern: 0x0001_16C2),
        .leastNormalMagnitude, -.leastNormalMagnitude,
        .greatestFiniteMagnitude, -.greatestFiniteMagnitude, 1e-7, -1e-7, 1e-3, -1e-3,
        0.55, -0.55, 0.5499, -0.5501, 0.1733, -0.1733, 5.25, -5.25, 5.9, -5.9, 9, -9, 9.02, -9.02, 9.0199, -9.0201,
        13.2, -13.2, 14, -14, 20, -20,
        87.3, -87.3, 88.8, -88.8, 89, -89, 100, -100, 104, -104, 1e10, -1e10, 1e30, -1e30,
    ]

    /// Sizes around the vector widths (4, 8, 16) and a few tiles.
    public static let sizes: [Int] = [0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 63, 65, 127, 1000, 1023, 1025, 4099]

    /// Deterministic pseudo-random floats: normal * 3 then uniform +-100.
    public static func random(count: Int, seed: UInt64) -> [Float] {
        let n = try! Tensor(randomNormal: [count / 2], standardDeviation: 3, seed: seed).scalars
        var state = seed &* 6364136223846793005 &+ 1442695040888963407
        let u = (0..<(count - count / 2)).map { _ -> Float in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Double(state >> 11) * 0x1p-53 * 200 - 100)
        }
        return n + u
    }
}

/// `TESSERA_TEST_SCALE=small` (the sanitizer runs in CI, Fuzz/README.md): the tests that sweep
/// large tensors shrink them, keeping every op and every strategy they exercise.
public enum TestScale {
    public static let isSmall = ProcessInfo.processInfo.environment["TESSERA_TEST_SCALE"] == "small"
    /// `full` normally, `small` in a small-scale run.
    public static func pick<T>(_ full: T, small: T) -> T { isSmall ? small : full }
}
