import Foundation
import Tessera

/// The ops scale-test measures: every row of the op table, the softmaxes and two fused chains.
/// Raw values are the JSON/CLI names (a stable contract): the op table's names, `softmax`,
/// `log_softmax`, `softmax_dim0`, `chain4`, `chain_cheap`.
package enum ScaleOp: RawRepresentable, CaseIterable, Codable, Sendable, Hashable {
    /// one element-wise op of the table, with its default parameters
    case elementwise(UnaryOp)
    case softmax
    case logSoftmax
    /// softmax along dim 0 (the strided, column-vectorised path)
    case softmaxDim0
    /// gelu(tanh(sigmoid(relu(x))))
    case chain4
    /// scale, bias, relu, clamp: a memory-bound chain of four cheap steps
    case chainCheap
    /// an op's backward from the saved tensor it reads (`<op>_backward`): two reads, one write
    case backward(UnaryOp)
    /// softmax / log_softmax backward along the last dim, from the output
    case softmaxBackward
    case logSoftmaxBackward
    /// chain4's backward at x: fused (one sweep, intermediates recomputed) or unfused
    case chain4Backward

    package static var allCases: [ScaleOp] {
        UnaryOp.allCases.map(ScaleOp.elementwise) + [.softmax, .logSoftmax, .softmaxDim0, .chain4, .chainCheap]
            + UnaryOp.allCases.map(ScaleOp.backward) + [.softmaxBackward, .logSoftmaxBackward, .chain4Backward]
    }

    /// Every activation's backward (the scenario entry `activations_backward`).
    package static var backwardSweep: [ScaleOp] {
        UnaryOp.allCases.filter { $0 != .affine && $0 != .clamp }.map(ScaleOp.backward)
    }

    package var isBackward: Bool {
        switch self {
        case .backward, .softmaxBackward, .logSoftmaxBackward, .chain4Backward: true
        default: false
        }
    }

    /// What a sweep without --ops measures: every activation of the table (affine and clamp
    /// are measured inside chain_cheap), the softmaxes and chain4.
    package static var defaultSweep: [ScaleOp] {
        UnaryOp.allCases.filter { $0 != .affine && $0 != .clamp }.map(ScaleOp.elementwise) + [.softmax, .logSoftmax, .chain4]
    }

    package var rawValue: String {
        switch self {
        case .elementwise(let op): op.rawValue
        case .softmax: "softmax"
        case .logSoftmax: "log_softmax"
        case .softmaxDim0: "softmax_dim0"
        case .chain4: "chain4"
        case .chainCheap: "chain_cheap"
        case .backward(let op): op.rawValue + "_backward"
        case .softmaxBackward: "softmax_backward"
        case .logSoftmaxBackward: "log_softmax_backward"
        case .chain4Backward: "chain4_backward"
        }
    }

    package init?(rawValue: String) {
        guard let op = ScaleOp.allCases.first(where: { $0.rawValue == rawValue }) else { return nil }
        self = op
    }

    package var unary: UnaryOp? {
        if case .elementwise(let op) = self { return op }
        return nil
    }

    package var isChain: Bool { self == .chain4 || self == .chainCheap || self == .chain4Backward }
    package var isSoftmax: Bool {
        self == .softmax || self == .logSoftmax || self == .softmaxDim0 || self == .softmaxBackward || self == .logSoftmaxBackward
    }

    /// The chain's pipeline (fusable steps only).
    package var chainSteps: [ElementwiseStep] {
        switch self {
        case .chain4, .chain4Backward: [.unary(.relu), .unary(.sigmoid), .unary(.tanh), .unary(.gelu)]
        case .chainCheap: [.affine(scale: 0.5, bias: 0), .affine(scale: 1, bias: 0.25), .unary(.relu), .clamp(lower: -1, upper: 1)]
        default: unary.map { [.unary($0)] } ?? []
        }
    }

    /// Bytes an ideal run moves per element: one read and one write (fused chains too); a
    /// backward two reads and one write.
    package var bytesPerElement: Double { isBackward ? 12 : 8 }

    package static func parse(list: String) throws -> [ScaleOp] {
        let names = list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !names.isEmpty else { throw ScaleTestError.invalidValue(option: "--ops", value: list, expected: "a comma-separated list of ops") }
        return try names.map { n in
            guard let op = ScaleOp(rawValue: n) else {
                throw ScaleTestError.invalidValue(option: "--ops", value: n,
                                                  expected: "one of \(ScaleOp.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return op
        }
    }
}

/// A scale-test user error; every message names the option or file, the value and what was expected.
package enum ScaleTestError: Error, Equatable, CustomStringConvertible {
    case invalidValue(option: String, value: String, expected: String)
    case badFile(path: String, key: String, expected: String)

    package var description: String {
        switch self {
        case .invalidValue(let o, let v, let e): "\(o): '\(v)' is not valid: expected \(e)"
        case .badFile(let p, let k, let e): "\(p): key '\(k)': expected \(e)"
        }
    }
}

/// A tensor shape written as an element count (`16777216`) or `ROWSxCOLS[x...]` (`4096x4096`).
package enum ShapeSpec {
    package static func parse(_ s: String, option: String = "--sizes") throws -> [Int] {
        let t = s.trimmingCharacters(in: .whitespaces)
        let parts = t.lowercased().split(separator: "x", omittingEmptySubsequences: false)
        let dims = parts.map { Int($0) }
        guard !parts.isEmpty, dims.allSatisfy({ $0 != nil && $0! >= 1 }) else {
            throw ScaleTestError.invalidValue(option: option, value: s, expected: "an element count like 16777216 or a shape like 4096x4096 (positive integers)")
        }
        let shape = dims.map { $0! }
        guard shape.reduce(1, { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }) <= 1 << 31 else {
            throw ScaleTestError.invalidValue(option: option, value: s, expected: "at most 2^31 elements")
        }
        return shape
    }

    package static func parse(list: String, option: String = "--sizes") throws -> [[Int]] {
        let items = list.split(separator: ",").map(String.init).filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        guard !items.isEmpty else { throw ScaleTestError.invalidValue(option: option, value: list, expected: "a comma-separated list of sizes") }
        return try items.map { try parse($0, option: option) }
    }

    package static func format(_ shape: [Int]) -> String { shape.map(String.init).joined(separator: "x") }
}

/// Thread lists: `--threads N` sweeps 1, 2, 4, ... N (N included); `--thread-list` is explicit.
package enum ThreadSpec {
    package static func sweep(upTo n: Int) throws -> [Int] {
        guard n >= 1 else { throw ScaleTestError.invalidValue(option: "--threads", value: "\(n)", expected: "an integer >= 1") }
        var out: [Int] = []
        var t = 1
        while t < n { out.append(t); t *= 2 }
        out.append(n)
        return out
    }

    package static func parse(list: String) throws -> [Int] {
        let items = list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !items.isEmpty else { throw ScaleTestError.invalidValue(option: "--thread-list", value: list, expected: "a comma-separated list of integers >= 1") }
        return try items.map {
            guard let n = Int($0), n >= 1 else {
                throw ScaleTestError.invalidValue(option: "--thread-list", value: $0, expected: "an integer >= 1")
            }
            return n
        }
    }
}

/// One thing to time: an op on a shape, fused or not.
package struct Workload: Equatable, Sendable {
    package var op: ScaleOp
    package var shape: [Int]
    package var fused: Bool
    package init(op: ScaleOp, shape: [Int], fused: Bool = true) {
        self.op = op
        self.shape = shape
        self.fused = fused
    }
    package var count: Int { shape.reduce(1, *) }
    package var label: String { "\(op.rawValue)\(op.isChain ? (fused ? " fused" : " unfused") : "") \(ShapeSpec.format(shape))" }
}
