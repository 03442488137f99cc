// Runtime and pipeline handles created (with hostile arguments), used and destroyed in random
// orders: a live handle works, a destroyed one is TESSERA_ERROR_INVALID_HANDLE, never a crash.
import Foundation
import Tessera
import TesseraC

enum HandleTarget {
    static func run(_ data: [UInt8]) throws(FuzzFailure) {
        var r = FuzzBytes(data)
        var runtimes: [OpaquePointer] = [], deadRuntimes: [OpaquePointer] = []
        var pipelines: [OpaquePointer] = [], deadPipelines: [OpaquePointer] = []
        defer {
            for h in runtimes { _ = tessera_runtime_destroy(h) }
            for h in pipelines { _ = tessera_pipeline_destroy(h) }
        }
        let sentinel = OpaquePointer(bitPattern: 0x5EED)!
        /// A handle: live, destroyed or NULL, and whether it is live.
        func pick(_ live: [OpaquePointer], _ dead: [OpaquePointer], _ r: inout FuzzBytes) -> (OpaquePointer?, Bool?) {
            let sel = r.u8() % 4
            if sel == 0 || (live.isEmpty && dead.isEmpty) { return (nil, nil) }
            if sel == 1, !dead.isEmpty { return (dead[r.below(dead.count)], false) }
            if !live.isEmpty { return (live[r.below(live.count)], true) }
            return (dead[r.below(dead.count)], false)
        }
        var x: [Float] = [-2, -1, 0, 1, 2, 3, .nan, -0.0], y = [Float](repeating: 0, count: 8)
        for _ in 0..<32 where !r.isExhausted {
            switch r.u8() % 8 {
            case 0:
                let threadChoices: [Int32] = [-1, 0, 1, 2, 3, 8, 4096, 4097, 1_000_000, .min, .max]
                let t = r.bool() ? threadChoices[r.below(threadChoices.count)] : Int32(r.u8() % 9)
                let tileChoices: [Int] = [0, 1, 3, 64, 4096, 1 << 20, 1 << 40, Int.max, Int(bitPattern: UInt.max)]
                let tile = tileChoices[r.below(tileChoices.count)]
                var out: OpaquePointer? = sentinel
                let status = tessera_runtime_create(t, tile, nil, &out)
                try expectStatus(status, valid: t < 0 || t > 4096 ? false : nil, "runtime_create(\(t), \(tile))")
                if status == TESSERA_OK {
                    guard let h = out, h != sentinel else { throw FuzzFailure("runtime_create returned OK without a handle") }
                    runtimes.append(h); deadRuntimes.removeAll { $0 == h }
                } else if out != sentinel {
                    throw FuzzFailure("runtime_create(\(t), \(tile)) failed but wrote *out")
                }
            case 1:
                let (h, live) = pick(runtimes, deadRuntimes, &r)
                let status = tessera_runtime_destroy(h)
                try expectStatus(status, valid: live == true, "runtime_destroy(\(live.map { $0 ? "live" : "destroyed" } ?? "NULL"))")
                if let h, live == true { runtimes.removeAll { $0 == h }; deadRuntimes.append(h) }
                if live == false && status != TESSERA_ERROR_INVALID_HANDLE { throw FuzzFailure("destroying a destroyed runtime: status \(status.rawValue)") }
            case 2:
                let (h, live) = pick(runtimes, deadRuntimes, &r)
                y = [Float](repeating: 9, count: 8)
                let status = tessera_relu(h, x, &y, 8)
                try expectStatus(status, valid: live != false, "relu on a \(live.map { $0 ? "live" : "destroyed" } ?? "NULL") runtime")
                if status == TESSERA_OK, y.map(\.bitPattern) != x.map({ ($0 < 0 ? 0 : $0).bitPattern }) { throw FuzzFailure("relu gave \(y)") }
                if status != TESSERA_OK, y != [Float](repeating: 9, count: 8) { throw FuzzFailure("failed relu wrote its output") }
            case 3:
                var out: OpaquePointer?
                guard tessera_pipeline_create(&out) == TESSERA_OK, let h = out else { throw FuzzFailure("pipeline_create failed") }
                pipelines.append(h); deadPipelines.removeAll { $0 == h }
            case 4:
                let (h, live) = pick(pipelines, deadPipelines, &r)
                let status = tessera_pipeline_destroy(h)
                try expectStatus(status, valid: live == true, "pipeline_destroy")
                if let h, live == true { pipelines.removeAll { $0 == h }; deadPipelines.append(h) }
            case 5:
                let (h, live) = pick(pipelines, deadPipelines, &r)
                let status = tessera_pipeline_add_activation(h, tessera_activation(rawValue: UInt32(r.u8() % 4)))
                try expectStatus(status, valid: live == true, "pipeline_add")
            case 6:
                let (p, plive) = pick(pipelines, deadPipelines, &r)
                let (h, rlive) = pick(runtimes, deadRuntimes, &r)
                y = [Float](repeating: 9, count: 8)
                let shape: [Int64] = [8]
                let status = tessera_pipeline_run(h, p, x, &y, shape, 1)
                try expectStatus(status, valid: plive == true && rlive != false, "pipeline_run")
                if status != TESSERA_OK, y != [Float](repeating: 9, count: 8) { throw FuzzFailure("failed pipeline_run wrote its output") }
            default:
                let (p, live) = pick(pipelines, deadPipelines, &r)
                let text = tessera_pipeline_explain(p)
                if text == nil { throw FuzzFailure("explain returned NULL") }
                if live != true && lastError().isEmpty { throw FuzzFailure("explain of a \(live == nil ? "NULL" : "destroyed") pipeline without an error") }
                if live == true && !lastError().isEmpty { throw FuzzFailure("explain of a live pipeline failed: \(lastError())") }
            }
            x[r.below(8)] = r.float()
        }
    }
}
