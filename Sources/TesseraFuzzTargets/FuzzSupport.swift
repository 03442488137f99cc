// What the fuzz targets share: the byte reader, the failure they report and the target list.
// A target decodes fuzzer bytes into calls, predicts from its own model of the contract whether
// each call must succeed, and checks the result: success => the output matches a reference and
// nothing else was written; failure => a message and untouched memory.  See Fuzz/README.md.
import Foundation
import TesseraC

/// A broken contract: the fuzzer driver turns it into a crash (so libFuzzer keeps the input),
/// the corpus tests into a test failure.
package struct FuzzFailure: Error, CustomStringConvertible {
    package var description: String
    package init(_ description: String) { self.description = description }
}

/// Reads values off the fuzzer's bytes; past the end every read is 0.
package struct FuzzBytes {
    let bytes: [UInt8]
    var at = 0
    package init(_ bytes: [UInt8]) { self.bytes = bytes }
    package var isExhausted: Bool { at >= bytes.count }

    package mutating func u8() -> UInt8 {
        guard at < bytes.count else { return 0 }
        defer { at += 1 }
        return bytes[at]
    }
    package mutating func u16() -> UInt16 { UInt16(u8()) | UInt16(u8()) << 8 }
    package mutating func u32() -> UInt32 { UInt32(u16()) | UInt32(u16()) << 16 }
    package mutating func bool() -> Bool { u8() & 1 == 1 }
    /// A value in 0..<n (n > 0).
    package mutating func below(_ n: Int) -> Int { Int(u16()) % n }

    /// Parameters and data: mostly values that matter (0, ±1, bounds, NaN, ±inf, denormals),
    /// sometimes any bit pattern.
    package mutating func float() -> Float {
        let sel = u8()
        if sel < 160 { return FuzzBytes.interesting[Int(sel) % FuzzBytes.interesting.count] }
        if sel < 224 { return Float(Int16(bitPattern: u16())) / 64 }
        return Float(bitPattern: u32())
    }
    static let interesting: [Float] = [
        0, -0, 1, -1, 0.5, -0.5, 2, -2, 3, -3, 6, -6, 0.01, -0.01, 0.25, 1.5, 20, -20, 88.5, -88.5, 104, -104,
        1000, -1000, 1e30, -1e30, .nan, -.nan, .infinity, -.infinity, .leastNonzeroMagnitude, -.leastNonzeroMagnitude,
        .leastNormalMagnitude, -.leastNormalMagnitude, .greatestFiniteMagnitude, -.greatestFiniteMagnitude, 1e-7, -1e-7,
    ]
}

/// A float arena the targets place their buffers in, so that offsets make real overlaps.
package final class Arena {
    package let count: Int
    package let base: UnsafeMutablePointer<Float>
    package init(count: Int) {
        self.count = count
        base = .allocate(capacity: count)
        base.initialize(repeating: 0, count: count)
    }
    deinit { base.deallocate() }
    package func snapshot() -> [UInt32] { (0..<count).map { base[$0].bitPattern } }
    /// The first element whose bits differ from `before` outside `[allowed, allowed + n)`.
    package func changed(since before: [UInt32], except allowed: UnsafeMutablePointer<Float>? = nil, count n: Int = 0) -> Int? {
        let lo = allowed.map { $0 - base } ?? 0, hi = allowed == nil ? 0 : lo + n
        return (0..<count).first { ($0 < lo || $0 >= hi) && base[$0].bitPattern != before[$0] }
    }
}

/// Half-open ranges of n floats overlap.
package func overlaps(_ a: UnsafePointer<Float>?, _ b: UnsafePointer<Float>?, _ n: Int) -> Bool {
    overlapsAsym(a, n, b, n)
}

/// Every fuzz target, by the name `tessera-fuzz` and `tools/fuzz.sh` take.
package enum FuzzTarget: String, CaseIterable, Sendable {
    /// the element-wise, softmax and PReLU entry points of tessera.h, forward and backward
    case abi
    /// pipelines of random steps through tessera.h, against the same steps one call at a time
    case pipeline
    /// runtime and pipeline handles created, used and destroyed in random orders
    case handles
    /// the topology file parser
    case topology
    /// the scale-test scenario file parser
    case scenario

    package func run(_ data: [UInt8]) throws(FuzzFailure) {
        switch self {
        case .abi: try ABITarget.run(data)
        case .pipeline: try PipelineTarget.run(data)
        case .handles: try HandleTarget.run(data)
        case .topology: try ParserTargets.topology(data)
        case .scenario: try ParserTargets.scenario(data)
        }
    }
}

func lastError() -> String { String(cString: tessera_last_error()) }

/// Checks one status against the model's prediction and the error contract.
package func expectStatus(_ status: tessera_status, valid: Bool?, _ what: @autoclosure () -> String) throws(FuzzFailure) {
    if status == TESSERA_OK {
        if valid == false { throw FuzzFailure("\(what()): accepted, but the call is invalid") }
    } else {
        if valid == true { throw FuzzFailure("\(what()): rejected a valid call with status \(status.rawValue): \(lastError())") }
        if lastError().isEmpty { throw FuzzFailure("\(what()): status \(status.rawValue) without a message") }
    }
}

/// Replaying saved inputs: the seed corpus and the regressions (Fuzz/), as the tests do.
package enum FuzzCorpus {
    /// The files at `path` (itself, or the regular files in it, sorted).
    package static func files(at path: String) -> [String] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { return [] }
        guard isDir.boolValue else { return [path] }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().map { "\(path)/\($0)" }
    }

    /// nil when the input keeps the contract, else what broke.
    package static func replay(_ target: FuzzTarget, file: String) -> String? {
        guard let data = FileManager.default.contents(atPath: file) else { return "unreadable" }
        do { try target.run([UInt8](data)); return nil } catch { return error.description }
    }
}
