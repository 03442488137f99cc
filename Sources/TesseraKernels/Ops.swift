import CTesseraKernels

/// The element-wise activations.  One row per op: its name (also the CLI spelling and the
/// JSON name), the method its kernel uses, and rough costs the scheduler and reports use.
public enum UnaryOp: String, CaseIterable, Sendable, Hashable, Codable {
    case relu
    case sigmoid
    case tanh
    case gelu            // exact: x * Phi(x)
    case geluTanh = "gelu_tanh"

    /// How the kernel computes the op (part of the variant name, e.g. `sigmoid.avx2.exp-p5-div`).
    public var method: String {
        switch self {
        case .relu: "max"
        case .sigmoid: "exp-p5-div"
        case .tanh: "poly-exp-p5-div"
        case .gelu: "erfcx-lut8p7-exp2f"
        case .geluTanh: "sigmoid2u-exp2f"
        }
    }

    /// Rough single-core cost in ns per element on cache-resident data (a recent x86 core).
    /// Used only for the inline-vs-parallel decision, so a factor of two either way is fine.
    public var nsPerElement: Double {
        switch self {
        case .relu: 0.05
        case .sigmoid: 0.3
        case .tanh: 0.3
        case .gelu: 0.6
        case .geluTanh: 0.4
        }
    }

    /// Kernel function pointer in `table`.
    @inlinable
    public func kernel(in table: KernelTable) -> ts_unary_fn {
        let k = table.kernels
        switch self {
        case .relu: return k.relu
        case .sigmoid: return k.sigmoid
        case .tanh: return k.tanh
        case .gelu: return k.gelu_erf
        case .geluTanh: return k.gelu_tanh
        }
    }

    /// XNNPACK-style variant name: `op.isa.method`.
    public func variantName(_ isa: ISA) -> String { "\(rawValue).\(isa).\(method)" }
}

/// One element-wise step of a pipeline: an activation or a scalar affine/clamp.
public enum ElementwiseStep: Sendable, Hashable, CustomStringConvertible {
    case unary(UnaryOp)
    /// x * scale + bias (the attention scale, a bias add)
    case affine(scale: Float, bias: Float)
    /// min(max(x, lower), upper), NaN kept
    case clamp(lower: Float, upper: Float)

    public var description: String {
        switch self {
        case .unary(let op): op.rawValue
        case .affine(let a, let b): "affine(\(a), \(b))"
        case .clamp(let lo, let hi): "clamp(\(lo), \(hi))"
        }
    }

    public var nsPerElement: Double {
        if case .unary(let op) = self { return op.nsPerElement }
        return 0.05
    }

    /// Runs the step on `n` elements; `x == y` (exactly in place) is allowed.
    @inlinable
    public func apply(_ table: KernelTable, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                      _ n: Int, streaming: Bool) {
        let nt: Int32 = streaming ? 1 : 0
        switch self {
        case .unary(let op): op.kernel(in: table)(x, y, n, nt)
        case .affine(let a, let b): table.kernels.affine(x, y, n, a, b, nt)
        case .clamp(let lo, let hi): table.kernels.clamp(x, y, n, lo, hi, nt)
        }
    }
}

extension ElementwiseStep {
    /// Cheap steps (a few instructions) are composed in registers with their neighbours;
    /// costly ones (exp/erf-based) get a pass of their own over an L1 block.
    public var isCheap: Bool {
        switch self {
        case .unary(let op): op == .relu
        case .affine, .clamp: true
        }
    }

    /// The C description of the step for the register-composed `chain` kernel.
    public var cStep: ts_step {
        switch self {
        case .unary(let op):
            let kind: ts_step_kind = switch op {
            case .relu: TS_STEP_RELU
            case .sigmoid: TS_STEP_SIGMOID
            case .tanh: TS_STEP_TANH
            case .gelu: TS_STEP_GELU
            case .geluTanh: TS_STEP_GELU_TANH
            }
            return ts_step(kind: Int32(kind.rawValue), a: 0, b: 0)
        case .affine(let a, let b): return ts_step(kind: Int32(TS_STEP_AFFINE.rawValue), a: a, b: b)
        case .clamp(let lo, let hi): return ts_step(kind: Int32(TS_STEP_CLAMP.rawValue), a: lo, b: hi)
        }
    }
}
