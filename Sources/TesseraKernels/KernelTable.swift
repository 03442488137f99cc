import CTesseraKernels

/// An instruction-set variant of the C kernels.
public enum ISA: Int, CaseIterable, Sendable, CustomStringConvertible, Comparable {
    case scalar = 0, sse2, avx2, avx512, neon

    public var description: String {
        switch self {
        case .scalar: "scalar"
        case .sse2: "sse2"
        case .avx2: "avx2"
        case .avx512: "avx512"
        case .neon: "neon"
        }
    }

    public static func < (a: ISA, b: ISA) -> Bool { a.rawValue < b.rawValue }

    /// Whether this CPU can run the variant.
    public var isSupported: Bool { ts_isa_supported(ts_isa(rawValue: UInt32(rawValue))) != 0 }

    /// The widest variant this CPU runs, chosen once (`TESSERA_ISA` caps it).
    public static let best: ISA = ISA(rawValue: Int(ts_best_isa().rawValue)) ?? .scalar
}

/// One ISA's table of kernel function pointers: the single place that tests, benchmarks
/// and dispatch read (XNNPACK-style).  Kernels are pure functions over pointer ranges.
@usableFromInline package struct KernelTable: @unchecked Sendable {
    // @unchecked: the table is an immutable C constant with static storage duration.
    @usableFromInline package let raw: UnsafePointer<ts_kernels>
    package let isa: ISA

    package init?(isa: ISA) {
        guard let t = ts_kernels_for(ts_isa(rawValue: UInt32(isa.rawValue))) else { return nil }
        raw = t
        self.isa = isa
    }

    /// The table for `ISA.best`.
    package static let best: KernelTable = KernelTable(isa: .best) ?? KernelTable(isa: .scalar)!

    /// Every variant this CPU can run, narrowest first.
    package static var available: [KernelTable] { ISA.allCases.compactMap(KernelTable.init(isa:)) }

    @inlinable package var kernels: ts_kernels { raw.pointee }
}
