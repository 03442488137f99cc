// The soak run: many threads at once creating, using and destroying runtimes and pipelines with
// random ops and sizes, every result checked (the fuzz targets' oracles on random bytes), plus
// one pipeline and one runtime shared by every thread.  Opt-in: `tessera-fuzz soak SECONDS
// [THREADS]`, under ThreadSanitizer as Fuzz/README.md shows.
import Dispatch
import Foundation
import Tessera
import TesseraC
import TesseraRuntime

package enum Soak {
    package struct Report: Sendable, CustomStringConvertible {
        package var inputs: [String: Int] = [:]
        package var sharedRuns = 0
        package var failures: [String] = []
        package var description: String {
            let per = inputs.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            return "inputs: \(per); shared-pipeline runs \(sharedRuns); failures \(failures.count)"
                + failures.prefix(40).map { "\n  \($0)" }.joined()
        }
    }

    /// Runs for `seconds` on `threads` threads; the report lists every broken contract.
    package static func run(seconds: Double, threads: Int) -> Report {
        let report = Locked(Report())
        // shared by all threads: a runtime with more workers than cores and small tiles, and a
        // pipeline whose program is compiled by whichever thread runs it first
        var rt: OpaquePointer?, p: OpaquePointer?
        _ = tessera_runtime_create(6, 8192, nil, &rt)
        _ = tessera_pipeline_create(&p)
        _ = tessera_pipeline_add_activation(p, TESSERA_GELU)
        _ = tessera_pipeline_add_affine(p, 0.5, 0.25)
        _ = tessera_pipeline_add_activation(p, TESSERA_TANH)
        _ = tessera_pipeline_add_softmax(p, -1, 0)
        let shape: [Int64] = [37, 300]
        let x: [Float] = (0..<(37 * 300)).map { (i: Int) -> Float in Float((i * 7919) % 2001) / 100 - 10 }
        var reference = [Float](repeating: 0, count: x.count)
        _ = tessera_pipeline_run(nil, p, x, &reference, shape, 2)
        let want = reference
        let shared = SendableHandles(runtime: rt, pipeline: p)
        let deadline = Date().addingTimeInterval(seconds)
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            var rng = SplitMix64(seed: UInt64(t) &* 0x9E37_79B9_7F4A_7C15 &+ 1)
            var local = Report()
            while Date() < deadline {
                let pick = rng.next() % 8
                if pick == 0 {
                    var y = [Float](repeating: 0, count: x.count)
                    let s = tessera_pipeline_run(shared.runtime, shared.pipeline, x, &y, shape, 2)
                    local.sharedRuns += 1
                    if s != TESSERA_OK || y != want { local.failures.append("shared pipeline: status \(s.rawValue), output differs") }
                    continue
                }
                let mix: [FuzzTarget] = [.abi, .abi, .pipeline, .pipeline, .handles, .topology, .scenario]
                let target = mix[Int(pick - 1)]
                var bytes = [UInt8](repeating: 0, count: Int(rng.next() % 600))
                for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: rng.next()) }
                local.inputs[target.rawValue, default: 0] += 1
                do { try target.run(bytes) } catch {
                    local.failures.append("\(target.rawValue): \(error)")
                    // kept, to become a regression input (Fuzz/regressions/TARGET/)
                    let dir = ProcessInfo.processInfo.environment["TESSERA_SOAK_FINDINGS"] ?? "Fuzz/findings"
                    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                    _ = FileManager.default.createFile(atPath: "\(dir)/soak-\(target.rawValue)-\(t)-\(local.failures.count)",
                                                   contents: Data(bytes))
                }
            }
            report.withLock { r in
                r.inputs.merge(local.inputs, uniquingKeysWith: +)
                r.sharedRuns += local.sharedRuns
                r.failures += local.failures
            }
        }
        _ = tessera_pipeline_destroy(p)
        _ = tessera_runtime_destroy(rt)
        return report.withLock { $0 }
    }
}

/// The two handles every soak thread uses.  @unchecked Sendable: the C ABI's handles are
/// documented thread-safe (tessera.h: "one runtime may be used from many threads at once").
private struct SendableHandles: @unchecked Sendable {
    let runtime: OpaquePointer?
    let pipeline: OpaquePointer?
}
