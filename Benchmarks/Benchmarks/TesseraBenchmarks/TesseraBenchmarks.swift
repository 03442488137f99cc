import Benchmark
import Foundation
import Tessera
import TesseraC

// Names read as op.shape.workers (XNNPACK style), e.g. "sigmoid 16777216 w2".
// Each benchmark times one call on preallocated buffers; malloc counts show that calls
// allocate nothing per element or per tile (a fused chain: one output, a scratch block per worker).

let cores = ProcessInfo.processInfo.activeProcessorCount
let workerCounts = Array(Set([1] + Array(stride(from: 2, through: cores, by: 2)) + [cores])).sorted()

final class Buffers: @unchecked Sendable {
    // @unchecked: each benchmark owns its buffers; iterations run one at a time.
    let x: UnsafeMutablePointer<Float>
    let y: UnsafeMutablePointer<Float>
    let count: Int
    init(shape: [Int]) {
        count = shape.reduce(1, *)
        let t = try! Tensor(randomNormal: shape, standardDeviation: 2, seed: 1)
        x = .allocate(capacity: count)
        y = .allocate(capacity: count)
        t.withUnsafeBufferPointer { x.update(from: $0.baseAddress!, count: count) }
        y.initialize(repeating: 0, count: count)
    }
}

/// A C runtime handle crossing into benchmark closures (used from one thread at a time).
struct SendableHandle: @unchecked Sendable {
    let pointer: OpaquePointer?
    init(_ p: OpaquePointer?) { pointer = p }
}

func runtime(_ threads: Int, topology: Topology? = nil) -> Runtime {
    try! Runtime(threads: threads, topology: topology)
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal, .throughput],
        timeUnits: .microseconds,
        warmupIterations: 2,
        scalingFactor: .one,
        maxDuration: .seconds(2),
        maxIterations: 40)

    // every activation at 2^24, each worker count up to the cores
    let big = Buffers(shape: [1 << 24])
    for op in UnaryOp.allCases {
        for w in workerCounts {
            Benchmark("\(op.rawValue) 16777216 w\(w)") { b in
                let rt = runtime(w)
                for _ in b.scaledIterations {
                    try RawOps.apply(.unary(op), input: big.x, output: big.y, count: big.count, runtime: rt)
                }
            }
        }
    }

    // every op's backward at 2^24 from the saved tensor it reads (12 bytes per element), the
    // softmax backward, and chain4's backward fused (one sweep) vs unfused
    let grad = Buffers(shape: [1 << 24]), saved = Buffers(shape: [1 << 24])
    for op in UnaryOp.allCases {
        for w in workerCounts {
            Benchmark("\(op.rawValue)_backward 16777216 w\(w)") { b in
                let rt = runtime(w)
                try RawOps.apply(.unary(op), input: big.x, output: saved.x, count: big.count, runtime: rt)
                for _ in b.scaledIterations {
                    try RawOps.backward(.unary(op), input: big.x, output: saved.x, gradOutput: grad.x, gradInput: big.y,
                                        count: big.count, runtime: rt)
                }
            }
        }
    }
    for shape in [[4096, 4096], [65536, 256], [8, 1 << 21]] {
        Benchmark("softmax_backward \(shape[0])x\(shape[1]) w\(cores)") { b in
            let rt = runtime(cores)
            try RawOps.softmax(input: big.x, output: saved.x, shape: shape, runtime: rt)
            for _ in b.scaledIterations {
                try RawOps.softmaxBackward(output: saved.x, gradOutput: grad.x, gradInput: big.y, shape: shape, runtime: rt)
            }
        }
    }
    let chain4 = Pipeline { ReLU(); Sigmoid(); Tanh(); GELU() }
    for fused in [true, false] {
        Benchmark("chain4_backward \(fused ? "fused" : "unfused") 16777216 w\(cores)") { b in
            let rt = runtime(cores)
            for _ in b.scaledIterations {
                try RawOps.backward(chain4, input: big.x, gradOutput: grad.x, gradInput: big.y, shape: [big.count], fused: fused, runtime: rt)
            }
        }
    }

    // the two executors side by side at 2^20 (cache-resident: dispatch latency shows)
    let mid = Buffers(shape: [1 << 20])
    for op in UnaryOp.allCases {
        for executor in [ExecutorKind.concurrentPerform, .spinningPool] {
            Benchmark("\(op.rawValue) 1048576 w\(cores) \(executor.rawValue)") { b in
                let rt = try! Runtime(threads: cores, executor: executor)
                for _ in b.scaledIterations {
                    try RawOps.apply(.unary(op), input: mid.x, output: mid.y, count: mid.count, runtime: rt)
                }
            }
        }
    }

    // the memory roofline next to them: a streaming copy
    for w in workerCounts {
        Benchmark("copy 16777216 w\(w)") { b in
            let rt = runtime(w)
            for _ in b.scaledIterations {
                try RawOps.copy(input: big.x, output: big.y, count: big.count, runtime: rt)
            }
        }
    }

    // fused vs unfused chains
    let chains: [(String, Pipeline)] = [
        ("chain4", Pipeline { ReLU(); Sigmoid(); Tanh(); GELU() }),
        ("chain_cheap", Pipeline { Affine(scale: 0.5); Affine(bias: 0.25); ReLU(); Clamp(lower: -1, upper: 1) }),
    ]
    for (name, p) in chains {
        for w in Array(Set([1, cores])).sorted() {
            for fused in [true, false] {
                // compiled once, run many times (as the C ABI's pipelines are): the steady state
                // of a framework's repeated call
                Benchmark("\(name) \(fused ? "fused" : "unfused") 16777216 w\(w)") { b in
                    let rt = runtime(w)
                    let program = p.compile(fused: fused)
                    for _ in b.scaledIterations {
                        try RawOps.run(program, input: big.x, output: big.y, shape: [big.count], runtime: rt)
                    }
                }
            }
        }
    }

    // softmax shapes, last dim and dim 0
    let shapes: [[Int]] = [[4096, 4096], [65536, 256], [256, 65536], [8, 1 << 21]]
    for shape in shapes {
        let buf = Buffers(shape: shape)
        for w in Array(Set([1, cores])).sorted() {
            for dim in shape == [4096, 4096] ? [-1, 0] : [-1] {
                Benchmark("softmax \(shape[0])x\(shape[1]) dim\(dim) w\(w)") { b in
                    let rt = runtime(w)
                    for _ in b.scaledIterations {
                        try RawOps.softmax(input: buf.x, output: buf.y, shape: shape, dim: dim, runtime: rt)
                    }
                }
            }
        }
    }

    // grain: the runtime (inline below the break-even) vs forced 1 worker vs forced all workers
    for log2n in stride(from: 12, through: 24, by: 2) {
        let n = 1 << log2n
        let buf = Buffers(shape: [n])
        let modes: [(String, Runtime)] = [
            ("auto", runtime(cores)),
            ("1worker", runtime(1)),
            ("allworkers", try! Runtime(threads: cores, parallelThresholdNs: 0)),
        ]
        for (mode, rt) in modes {
            Benchmark("grain sigmoid \(n) \(mode)", configuration: .init(timeUnits: .nanoseconds, maxIterations: 2000)) { b in
                for _ in b.scaledIterations {
                    try RawOps.apply(.unary(.sigmoid), input: buf.x, output: buf.y, count: n, runtime: rt)
                }
            }
        }
    }

    // the C ABI's cost over the Swift API at 2^16 elements (handle lookup, argument checks,
    // status and last-error bookkeeping), both on the caller's runtime
    let small = Buffers(shape: [1 << 16])
    var abiRuntime: OpaquePointer?
    _ = tessera_runtime_create(Int32(cores), 0, nil, &abiRuntime)
    let abiHandle = SendableHandle(abiRuntime)
    let swiftRuntime = runtime(cores)
    Benchmark("abi sigmoid 65536 swift", configuration: .init(timeUnits: .nanoseconds, maxIterations: 5000)) { b in
        for _ in b.scaledIterations {
            try RawOps.apply(.unary(.sigmoid), input: small.x, output: small.y, count: small.count, runtime: swiftRuntime)
        }
    }
    Benchmark("abi sigmoid 65536 c", configuration: .init(timeUnits: .nanoseconds, maxIterations: 5000)) { b in
        for _ in b.scaledIterations {
            _ = tessera_sigmoid(abiHandle.pointer, small.x, small.y, small.count)
        }
    }

    // NUMA path on a 1-node machine: the same plan through an injected 1-node topology file
    // (pinning on) vs the detected one (pinning off): must not be slower
    let oneNode = Topology(nodes: [.init(id: 0, cpus: Array(0..<cores))], source: .file, origin: "1 node")
    for (label, rt) in [("detected", runtime(cores)),
                        ("injected-pinned", try! Runtime(threads: cores, topology: oneNode, pinWorkers: true))] {
        Benchmark("numa sigmoid 16777216 \(label)") { b in
            for _ in b.scaledIterations {
                try RawOps.apply(.unary(.sigmoid), input: big.x, output: big.y, count: big.count, runtime: rt)
            }
        }
    }
}
