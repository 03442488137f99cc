import CTesseraKernels

/// An element-wise op: one row of Tessera's op table
/// (`Sources/CTesseraKernels/include/tessera_ops.def`), which the kernels, the C ABI, the
/// scale-test, the benchmarks and the tests all read.  `UnaryOp.allCases` is that table in its
/// order; the ops' Swift names (`UnaryOp.relu`, ...) are declared next to their layers.
public struct UnaryOp: RawRepresentable, CaseIterable, Sendable, Hashable, Codable, CustomStringConvertible {
    /// The row's id: its position in the table (and its `tessera_op` value in the C ABI).
    @usableFromInline package let id: ts_op

    package init(_ id: ts_op) { self.id = id }

    /// Every op of the table, in its order.
    public static let allCases: [UnaryOp] = (0..<Int(TS_OP_COUNT)).map { UnaryOp(ts_op(rawValue: UInt32($0))!) }

    /// The row, by id.
    package init?(index: Int) {
        guard index >= 0, index < Int(TS_OP_COUNT), let id = ts_op(rawValue: UInt32(index)) else { return nil }
        self.id = id
    }

    @usableFromInline var info: ts_op_info { ts_op_info_of(Int32(id.rawValue)).pointee }

    /// The op's name everywhere (CLI, JSON, C ABI): `relu`, `gelu_tanh`, ...
    public var rawValue: String { String(cString: info.name) }
    public var description: String { rawValue }
    /// The name as a C string with static storage (the C ABI hands it out).
    package var cName: UnsafePointer<CChar> { info.name }

    public init?(rawValue: String) {
        guard let op = UnaryOp.allCases.first(where: { $0.rawValue == rawValue }) else { return nil }
        self = op
    }

    /// The position of the row in the table.
    public var index: Int { Int(id.rawValue) }

    /// How the kernel computes the op (part of the variant name, e.g. `sigmoid.avx2.expq-p3-div`).
    public var method: String { String(cString: info.method) }

    /// Number of scalar parameters (0, 1 or 2) the op takes, e.g. clamp's bounds.
    public var parameterCount: Int { Int(info.params) }

    /// The parameters' defaults (PyTorch's), used where a caller gives none; unused entries are 0.
    public var defaultParameters: (Float, Float) { (info.a, info.b) }

    /// Whether `(a, b)` are valid parameters for the op (e.g. hardtanh needs `a <= b`, celu
    /// `a != 0`, softshrink `a >= 0`).  Other parameters, NaN included, are computed with as
    /// PyTorch does (a NaN parameter gives NaN where it enters the result).
    public func accepts(_ a: Float, _ b: Float) -> Bool {
        switch info.check {
        case TS_CHECK_ORDERED: !(a > b)
        case TS_CHECK_NONZERO_A: a != 0
        case TS_CHECK_NONNEG_A: a >= 0
        default: true
        }
    }

    /// Which saved tensor the op's backward reads (oneDNN's `use_dst_for_bwd`).
    public enum SavedTensor: String, Sendable, Hashable {
        /// the forward's input x
        case input
        /// the forward's output y (sigmoid, tanh: the gradient is a function of y)
        case output
        /// either: both give the same gradient (relu)
        case either
        /// neither (affine: the gradient is dy times a constant)
        case none
    }

    /// What the op's backward reads besides the gradient.
    public var saved: SavedTensor {
        switch info.saved {
        case TS_SAVED_Y: .output
        case TS_SAVED_EITHER: .either
        case TS_SAVED_NONE: .none
        default: .input
        }
    }

    /// Rough single-core cost in ns per element on cache-resident data; used only for the
    /// inline-vs-parallel decision, so a factor of two either way is fine.
    public var nsPerElement: Double { info.ns }

    /// Cheap ops (a few instructions) are composed in registers with their neighbours in a
    /// fused chain; costly ones (exp/erf-based) get a pass of their own over an L1 block.
    public var isCheap: Bool { info.cheap != 0 }

    /// The forward kernel in `table`.
    @inlinable
    package func kernel(in table: KernelTable) -> ts_ew_fn {
        return ts_forward_kernel(table.raw, Int32(id.rawValue))
    }

    /// The backward kernel in `table`.
    @inlinable
    package func backwardKernel(in table: KernelTable) -> ts_bw_fn {
        ts_backward_kernel(table.raw, Int32(id.rawValue))
    }

    /// XNNPACK-style variant name: `op.isa.method`.
    public func variantName(_ isa: ISA) -> String { "\(rawValue).\(isa).\(method)" }
}

/// One element-wise step of a pipeline: an op of the table with its parameters.
public struct ElementwiseStep: Sendable, Hashable, CustomStringConvertible {
    public let op: UnaryOp
    /// The op's parameters (its defaults where not given; 0 where it has none).
    public let a: Float, b: Float

    /// `op` with parameters `a`, `b` (its defaults where nil).  Parameters the op does not
    /// accept (`op.accepts`) are reported when the step runs (pipelines, `RawOps`) or earlier,
    /// where a layer's initialiser checks them.
    public init(_ op: UnaryOp, _ a: Float? = nil, _ b: Float? = nil) {
        let (da, db) = op.defaultParameters
        self.op = op
        self.a = op.parameterCount > 0 ? (a ?? da) : 0
        self.b = op.parameterCount > 1 ? (b ?? db) : 0
    }

    /// An op with its default parameters.
    public static func unary(_ op: UnaryOp) -> ElementwiseStep { ElementwiseStep(op) }

    public var description: String {
        switch op.parameterCount {
        case 0: op.rawValue
        case 1: "\(op.rawValue)(\(a))"
        default: "\(op.rawValue)(\(a), \(b))"
        }
    }

    public var nsPerElement: Double { op.nsPerElement }
    public var isCheap: Bool { op.isCheap }

    /// Runs the step on `n` elements; `x == y` (exactly in place) is allowed.
    @inlinable
    package func apply(_ table: KernelTable, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                       _ n: Int, streaming: Bool) {
        op.kernel(in: table)(x, y, n, a, b, streaming ? 1 : 0)
    }

    /// dx = dy * op'(saved) on `n` elements, `saved` the tensor the op reads (nil where it reads
    /// none); `dx == dy` (exactly in place) is allowed.
    @inlinable
    package func applyBackward(_ table: KernelTable, saved: UnsafePointer<Float>?, _ dy: UnsafePointer<Float>,
                               _ dx: UnsafeMutablePointer<Float>, _ n: Int, streaming: Bool) {
        op.backwardKernel(in: table)(saved, dy, dx, n, a, b, streaming ? 1 : 0)
    }

    /// The C description of the step for the register-composed `chain` kernel.
    package var cStep: ts_step { ts_step(op: Int32(op.id.rawValue), a: a, b: b) }
}
