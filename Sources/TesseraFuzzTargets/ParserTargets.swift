// The topology and scenario file parsers: any bytes either parse into a value that keeps the
// documented invariants or fail with the parser's own error naming the file and the key.
import Foundation
import Tessera
import TesseraScaling
import TesseraTopology

enum ParserTargets {
    static let path = "fuzz-input.json"

    static func topology(_ data: [UInt8]) throws(FuzzFailure) {
        let t: Topology
        do {
            t = try Topology.parse(data: Data(data), path: path)
        } catch let e as TopologyFileError {
            guard e.path == path, !e.expected.isEmpty, e.description.contains(path) else {
                throw FuzzFailure("topology error without file, key or expectation: \(e)")
            }
            return
        } catch {
            throw FuzzFailure("topology parser threw \(type(of: error)): \(error)")
        }
        guard !t.nodes.isEmpty else { throw FuzzFailure("parsed a topology without nodes") }
        var seen = Set<Int>()
        for n in t.nodes {
            guard !n.cpus.isEmpty, n.cpus.allSatisfy({ $0 >= 0 && $0 <= Topology.maxCPU }) else {
                throw FuzzFailure("parsed node \(n.id) with CPUs \(n.cpus.prefix(8)) outside 0...\(Topology.maxCPU)")
            }
            guard seen.isDisjoint(with: n.cpus) else { throw FuzzFailure("parsed a CPU listed twice") }
            seen.formUnion(n.cpus)
        }
        let k = t.nodes.count
        guard t.distances.count == k, t.distances.allSatisfy({ $0.count == k }) else {
            throw FuzzFailure("parsed a distance table that is not \(k)x\(k)")
        }
        for i in 0..<k {
            for j in 0..<k {
                let d = t.distances[i][j]
                guard d >= 10 && d <= 255, d == t.distances[j][i], i != j || d == 10 else {
                    throw FuzzFailure("parsed distances[\(i)][\(j)] = \(d)")
                }
            }
        }
        // a runtime on it works (workers pinned to CPUs this machine may lack)
        do {
            let rt = try Runtime(threads: 3, tileBytes: 4096, topology: t)
            let x = try Tensor(shape: [3000], scalars: (0..<3000).map { Float($0 % 7) - 3 })
            let y = ReLU().forward(x, runtime: rt)
            guard y.scalars == x.scalars.map({ max($0, 0) }) else { throw FuzzFailure("relu on the parsed topology is wrong") }
        } catch let f as FuzzFailure {
            throw f
        } catch {
            throw FuzzFailure("a runtime on a parsed topology failed: \(error)")
        }
    }

    static func scenario(_ data: [UInt8]) throws(FuzzFailure) {
        let s: Scenario
        do {
            s = try Scenario.parse(data: Data(data), path: path)
        } catch let e as ScaleTestError {
            // the key may be "" (a JSON object may have an empty key: the message quotes it)
            guard case .badFile(let p, _, let expected) = e, p == path, !expected.isEmpty else {
                throw FuzzFailure("scenario error without file, key or expectation: \(e)")
            }
            return
        } catch {
            throw FuzzFailure("scenario parser threw \(type(of: error)): \(error)")
        }
        guard s.repetitions >= 1, !s.workloads.isEmpty, s.threads.map({ !$0.isEmpty && $0.allSatisfy { $0 >= 1 } }) ?? true else {
            throw FuzzFailure("parsed a scenario outside its schema: \(s)")
        }
        for w in s.workloads where w.shape.isEmpty || w.shape.contains(where: { $0 < 1 }) {
            throw FuzzFailure("parsed a workload with shape \(w.shape)")
        }
    }
}
