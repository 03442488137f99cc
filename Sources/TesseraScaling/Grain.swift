import Dispatch
import Foundation
import Tessera

/// The grain-size experiment: where does splitting a call across workers start to pay?
/// For each size: a plain single-threaded loop over the kernel (no runtime), the runtime
/// with 1 worker, the runtime's automatic choice, and all workers forced.
package struct GrainRow: Codable, Equatable, Sendable {
    package var elements: Int
    package var plain_ns: Double
    package var one_worker_ns: Double
    package var auto_ns: Double
    package var all_workers_ns: Double
    package var auto_ran_inline: Bool
    /// auto / min(one worker, all workers): above 1.10 the rule chose badly
    package var auto_vs_best: Double
}

package enum GrainExperiment {
    /// `hostPool`: the parallel runtimes run through the HostExecutor interface (`--executor host`).
    package static func run(op: UnaryOp, log2Sizes: [Int], threads: Int, executor: ExecutorKind, repetitions: Int,
                           hostPool: Bool = false, progress: (String) -> Void = { _ in }) throws -> [GrainRow] {
        let table = KernelTable.best
        let host: (any HostExecutor)? = hostPool ? DispatchHostPool(threads: threads) : nil
        let auto = try Runtime(threads: threads, executor: executor, host: host)
        let one = try Runtime(threads: 1)
        let all = try Runtime(threads: threads, executor: executor, parallelThresholdNs: 0, host: host)
        var rows: [GrainRow] = []
        for l in log2Sizes {
            let n = 1 << l
            progress("grain: \(op.rawValue) 2^\(l)")
            let x = AlignedStorage(count: n), y = AlignedStorage(count: n)
            let src = try Tensor(randomNormal: [n], standardDeviation: 2, seed: 3)
            src.withUnsafeBufferPointer { x.pointer.update(from: $0.baseAddress!, count: n) }
            y.pointer.initialize(repeating: 0, count: n)
            let nt: Int32 = auto.streams(outputBytes: n * 4, workers: 1) ? 1 : 0 // the plain loop: one thread
            // calls per timed batch: about 1 ms of work
            let inner = max(1, Int(1_000_000 / (Double(n) * op.nsPerElement * 2 + 1_000)))
            let step = ElementwiseStep(op)
            let fn = op.kernel(in: table)
            let modes: [() -> Void] = [
                { fn(x.pointer, y.pointer, n, step.a, step.b, nt) },
                { try! RawOps.apply(step, input: x.pointer, output: y.pointer, count: n, runtime: one) },
                { try! RawOps.apply(step, input: x.pointer, output: y.pointer, count: n, runtime: auto) },
                { try! RawOps.apply(step, input: x.pointer, output: y.pointer, count: n, runtime: all) },
            ]
            // the four take turns over rounds (as in scale-test's sweep), so host drift hits
            // them alike: auto and all workers often run the very same path
            var times = [[Double]](repeating: [], count: modes.count)
            for reps in Runner.split(repetitions: repetitions, rounds: 3) {
                for (i, body) in modes.enumerated() {
                    times[i] += timeRuns(reps) { for _ in 0..<inner { body() } }
                }
            }
            let ns = times.map { median($0) * 1e9 / Double(inner) }
            let (plain, r1, ra, rall) = (ns[0], ns[1], ns[2], ns[3])
            rows.append(GrainRow(elements: n, plain_ns: plain, one_worker_ns: r1, auto_ns: ra, all_workers_ns: rall,
                                 auto_ran_inline: auto.runsInline(units: n, nsPerUnit: op.nsPerElement),
                                 auto_vs_best: ra / min(r1, rall)))
        }
        return rows
    }

    package static func table(_ rows: [GrainRow], op: UnaryOp, threads: Int, executor: ExecutorKind, hostPool: Bool = false) -> String {
        let name = hostPool ? "host: concurrentPerform through HostExecutor" : executor.rawValue
        var s = "grain: \(op.rawValue), \(threads) workers (\(name)); inline below \(Int(Runtime.breakEvenNs(executor) / 1000)) µs of estimated work\n"
        s += "elements     plain µs  1 worker µs   auto µs  all workers µs  auto path  auto/plain  auto/best\n"
        for r in rows {
            s += String(format: "2^%-8d %10.2f %12.2f %9.2f %15.2f  %-9@ %10.2f %10.2f%@\n",
                        Int(log2(Double(r.elements))), r.plain_ns / 1000, r.one_worker_ns / 1000, r.auto_ns / 1000,
                        r.all_workers_ns / 1000, r.auto_ran_inline ? "inline" : "parallel", r.auto_ns / r.plain_ns,
                        r.auto_vs_best, r.auto_vs_best > 1.10 ? "  <- more than 10% off the better choice" : "")
        }
        return s
    }
}
