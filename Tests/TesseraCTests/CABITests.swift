import CTesseraABI
import Dispatch
import Foundation
import Testing
import Tessera
import _TesseraTestSupport

func lastError() -> String { String(cString: tessera_last_error()) }

@Suite("C ABI and raw-memory API")
struct CABITests {
    @Test func everyOpOfTheTableThroughTheABIMatchesTheSwiftAPI() throws {
        let x = try Tensor(randomNormal: [10_000], standardDeviation: 3, seed: 5)
        var rt: OpaquePointer?
        #expect(tessera_runtime_create(2, 0, nil, &rt) == TESSERA_OK)
        defer { _ = tessera_runtime_destroy(rt) }
        #expect(Int(tessera_op_count()) == UnaryOp.allCases.count && Int(TESSERA_OP_COUNT.rawValue) == UnaryOp.allCases.count)
        for op in UnaryOp.allCases {
            let i = Int32(op.index)
            #expect(String(cString: tessera_op_name(i)) == op.rawValue && tessera_op_from_name(op.rawValue) == i)
            #expect(Int(tessera_op_parameter_count(i)) == op.parameterCount)
            var da: Float = .nan, db: Float = .nan
            #expect(Int(tessera_op_default_parameters(i, &da, &db)) == op.parameterCount)
            #expect(da.bitPattern == op.defaultParameters.0.bitPattern && db.bitPattern == op.defaultParameters.1.bitPattern)
            for (a, b) in Reference.parameterSets(op) {
                let step = ElementwiseStep(op, a, b)
                let want = try Pipeline(nodes: [.step(step)]).run(x, runtime: .default).output.scalars
                var y = [Float](repeating: .nan, count: x.count)
                let status = x.withUnsafeBufferPointer { tessera_activation_run_with(rt, tessera_activation(rawValue: UInt32(i)), a, b, $0.baseAddress, &y, x.count) }
                #expect(status == TESSERA_OK && y.map(\.bitPattern) == want.map(\.bitPattern), "\(step)")
            }
            // the default-parameter call is the first parameter set
            var y = [Float](repeating: .nan, count: x.count)
            let status = x.withUnsafeBufferPointer { tessera_activation_run(rt, tessera_activation(rawValue: UInt32(i)), $0.baseAddress, &y, x.count) }
            let want = try Pipeline(nodes: [.step(.unary(op))]).run(x, runtime: .default).output.scalars
            #expect(status == TESSERA_OK && y.map(\.bitPattern) == want.map(\.bitPattern), "\(op)")
        }
        #expect(tessera_op_name(-1) == nil && tessera_op_name(tessera_op_count()) == nil)
        #expect(tessera_op_from_name("swish") == -1 && tessera_op_from_name(nil) == -1 && tessera_op_parameter_count(99) == -1 && tessera_op_default_parameters(-1, nil, nil) == -1)
        // the generated per-op functions and the named layers
        var y = [Float](repeating: 0, count: 4)
        #expect(tessera_sigmoid(nil, [0, 0, 0, 0], &y, 4) == TESSERA_OK && y == [0.5, 0.5, 0.5, 0.5])
        #expect(tessera_gelu_tanh(nil, [0, 0, 0, 0], &y, 4) == TESSERA_OK && y == [0, 0, 0, 0])
        #expect(tessera_affine(nil, [1, 2, 3, 4], &y, 4, 2, 1) == TESSERA_OK && y == [3, 5, 7, 9]) // x * scale + bias
        // clamp with lower > upper: upper everywhere, as torch.clamp; a NaN bound: NaN
        #expect(tessera_activation_run_with(nil, TESSERA_CLAMP, 2, 1, [0, 5, -3, 1.5], &y, 4) == TESSERA_OK && y == [1, 1, 1, 1])
        #expect(tessera_clamp(nil, [0, 5], &y, 2, .nan, 1) == TESSERA_OK && y[0].isNaN && y[1].isNaN)
        var p: OpaquePointer?
        #expect(tessera_pipeline_create(&p) == TESSERA_OK)
        defer { _ = tessera_pipeline_destroy(p) }
        #expect(tessera_pipeline_add_activation_with(p, TESSERA_AFFINE, 2, 1) == TESSERA_OK)
        #expect(tessera_pipeline_run(nil, p, [1, 2, 3, 4], &y, [4], 1) == TESSERA_OK && y == [3, 5, 7, 9])
    }

    @Test func backwardOfEveryOpSoftmaxAndPipelinesThroughTheABI() throws {
        let x = try Tensor(randomNormal: [4099], standardDeviation: 3, seed: 6)
        let dy = try Tensor(randomNormal: [4099], seed: 7)
        for op in UnaryOp.allCases {
            let i = Int32(op.index)
            #expect(Int(tessera_op_saved(i)) == ["input", "output", "either", "none"].firstIndex(of: op.saved.rawValue))
            for (a, b) in Reference.parameterSets(op) {
                let step = ElementwiseStep(op, a, b)
                let y = try Pipeline(nodes: [.step(step)]).run(x).output
                var want = [Float](repeating: .nan, count: x.count), got = want
                try x.withUnsafeBufferPointer { xb in try y.withUnsafeBufferPointer { yb in try dy.withUnsafeBufferPointer { gb in
                    try RawOps.backward(step, input: xb.baseAddress, output: yb.baseAddress, gradOutput: gb.baseAddress, gradInput: &want, count: x.count)
                    #expect(tessera_activation_backward_with(nil, tessera_activation(rawValue: UInt32(i)), a, b, xb.baseAddress, yb.baseAddress,
                                                             gb.baseAddress, &got, x.count) == TESSERA_OK)
                    // only the saved tensor the op reads is needed; without it: a status and a message
                    if op.saved == .input || op.saved == .output {
                        var untouched = [Float](repeating: 7, count: x.count)
                        let st = tessera_activation_backward_with(nil, tessera_activation(rawValue: UInt32(i)), a, b,
                                                                  op.saved == .input ? nil : xb.baseAddress,
                                                                  op.saved == .output ? nil : yb.baseAddress, gb.baseAddress, &untouched, x.count)
                        #expect(st == TESSERA_ERROR_NULL_POINTER && lastError().contains("backward needs") && untouched.allSatisfy { $0 == 7 })
                    }
                } } }
                #expect(got.map(\.bitPattern) == want.map(\.bitPattern), "\(step)")
            }
        }
        // the generated per-op functions: parameters last, in PyTorch's order
        var g = [Float](repeating: 0, count: 3)
        #expect(tessera_relu_backward(nil, [-1, 0, 2], nil, [5, 5, 5], &g, 3) == TESSERA_OK && g == [0, 0, 5])
        #expect(tessera_clamp_backward(nil, [-2, 0, 2], nil, [5, 5, 5], &g, 3, -1, 1) == TESSERA_OK && g == [0, 5, 0])
        #expect(tessera_sigmoid_backward(nil, nil, [0.5, 0.5, 0.5], [4, 4, 4], &g, 3) == TESSERA_OK && g == [1, 1, 1])
        // softmax backward and a pipeline's
        let shape: [Int64] = [17, 241]
        let m = try Tensor(randomNormal: [17, 241], seed: 9), dm = try Tensor(randomNormal: [17, 241], seed: 10)
        for log in [false, true] {
            let y = log ? try LogSoftmax()(m) : try Softmax()(m)
            let want = log ? try LogSoftmax().backward(output: y, gradOutput: dm) : try Softmax().backward(output: y, gradOutput: dm)
            var got = [Float](repeating: .nan, count: m.count)
            let st = log ? tessera_log_softmax_backward(nil, y.scalars, dm.scalars, &got, shape, 2, -1)
                : tessera_softmax_backward(nil, y.scalars, dm.scalars, &got, shape, 2, -1)
            #expect(st == TESSERA_OK && got == want.scalars)
            #expect(tessera_softmax_backward(nil, y.scalars, dm.scalars, &got, shape, 2, 3) == TESSERA_ERROR_DIM_OUT_OF_RANGE)
        }
        var p: OpaquePointer?
        #expect(tessera_pipeline_create(&p) == TESSERA_OK)
        defer { _ = tessera_pipeline_destroy(p) }
        _ = tessera_pipeline_add_affine(p, 0.5, 0)
        _ = tessera_pipeline_add_activation(p, TESSERA_GELU)
        _ = tessera_pipeline_add_softmax(p, -1, 0)
        var got = [Float](repeating: .nan, count: m.count)
        #expect(tessera_pipeline_backward(nil, p, m.scalars, dm.scalars, &got, shape, 2) == TESSERA_OK)
        let want = try Pipeline { Affine(scale: 0.5); GELU(); Softmax() }.backward(m, gradOutput: dm)
        #expect(got == want.scalars)
        #expect(tessera_pipeline_backward(nil, p, nil, dm.scalars, &got, shape, 2) == TESSERA_ERROR_NULL_POINTER)
    }

    @Test func inPlaceOnCallerMemory() throws {
        var buf: [Float] = [-2, -1, 0, 1, 2]
        let s = buf.withUnsafeMutableBufferPointer { tessera_relu(nil, $0.baseAddress, $0.baseAddress, 5) }
        #expect(s == TESSERA_OK && buf == [0, 0, 0, 1, 2])
        var rows: [Float] = [1, 2, 3, 1000, 1001, 1002]
        let shape: [Int64] = [2, 3]
        let s2 = rows.withUnsafeMutableBufferPointer { tessera_softmax(nil, $0.baseAddress, $0.baseAddress, shape, 2, -1) }
        #expect(s2 == TESSERA_OK)
        #expect(Array(rows[0..<3]) == Array(rows[3..<6]))
    }

    @Test func shapesRepeatedAndVariedGiveTheSwiftAPIsResults() throws {
        // the ABI reuses the array of a shape it saw recently (8 of them): twelve shapes of
        // ranks 1-4 with the same element count, in turn, twice over, each against RawOps
        let shapes: [[Int]] = [[24], [2, 12], [12, 2], [3, 8], [8, 3], [4, 6], [6, 4], [2, 3, 4], [4, 3, 2], [2, 2, 6],
                               [2, 2, 2, 3], [3, 2, 2, 2]]
        let x = try Tensor(randomNormal: [24], seed: 31).scalars
        for _ in 0..<2 {
            for shape in shapes {
                for dim in 0..<shape.count {
                    var got = [Float](repeating: .nan, count: 24), want = got
                    #expect(tessera_log_softmax(nil, x, &got, shape.map(Int64.init), Int32(shape.count), Int32(dim)) == TESSERA_OK)
                    try RawOps.softmax(input: x, output: &want, shape: shape, dim: dim, log: true)
                    #expect(got == want, "\(shape) dim \(dim)")
                }
            }
        }
        // a shape seen before with another extent is not mistaken for it
        var y = [Float](repeating: 0, count: 24)
        #expect(tessera_softmax(nil, x, &y, [-24], 1, 0) == TESSERA_ERROR_INVALID_ARGUMENT)
    }

    @Test func badInputGivesAStatusAMessageAndNoWrite() throws {
        var y = [Float](repeating: 7, count: 8)
        let x = [Float](repeating: 1, count: 8)
        #expect(tessera_sigmoid(nil, nil, &y, 8) == TESSERA_ERROR_NULL_POINTER)
        #expect(lastError().contains("input"))
        #expect(tessera_sigmoid(nil, x, nil, 8) == TESSERA_ERROR_NULL_POINTER)
        #expect(tessera_sigmoid(nil, x, &y, Int(bitPattern: UInt(bitPattern: -1))) == TESSERA_ERROR_INVALID_ARGUMENT)
        #expect(lastError().contains("too large"))
        #expect(tessera_activation_run(nil, tessera_activation(rawValue: 99), x, &y, 8) == TESSERA_ERROR_INVALID_ARGUMENT)
        #expect(tessera_activation_run(nil, tessera_activation(rawValue: UInt32(bitPattern: -1)), x, &y, 8) == TESSERA_ERROR_INVALID_ARGUMENT)
        #expect(lastError().contains("unknown activation -1 "), "\(lastError())")
        // the limits the header states: rank, threads
        #expect(tessera_softmax(nil, x, &y, [Int64](repeating: 1, count: 17), 17, 0) == TESSERA_ERROR_INVALID_ARGUMENT)
        #expect(lastError().contains("rank must be 0...16, got 17"))
        var big: OpaquePointer?
        #expect(tessera_runtime_create(1_000_000, 0, nil, &big) == TESSERA_ERROR_INVALID_ARGUMENT && big == nil)
        #expect(lastError().contains("1000000"))
        // overlap that is not exactly in place
        let s = y.withUnsafeMutableBufferPointer { b in tessera_tanh(nil, b.baseAddress, b.baseAddress! + 1, 4) }
        #expect(s == TESSERA_ERROR_OVERLAP && lastError().contains("overlap"))
        // softmax dim and shape errors
        let shape: [Int64] = [2, 4]
        #expect(tessera_softmax(nil, x, &y, shape, 2, 2) == TESSERA_ERROR_DIM_OUT_OF_RANGE)
        #expect(lastError().contains("dim 2"))
        #expect(tessera_log_softmax(nil, x, &y, [-2, 4], 2, 0) == TESSERA_ERROR_INVALID_ARGUMENT)
        #expect(tessera_softmax(nil, x, &y, nil, 2, 0) == TESSERA_ERROR_NULL_POINTER)
        #expect(tessera_softmax(nil, x, &y, shape, -1, 0) == TESSERA_ERROR_INVALID_ARGUMENT)
        #expect(y.allSatisfy { $0 == 7 }, "nothing written on error")
        // empty tensors are fine, even with NULL pointers
        #expect(tessera_relu(nil, nil, nil, 0) == TESSERA_OK && lastError().isEmpty)
    }

    @Test func destroyedAndForgedHandlesAreRejected() throws {
        var rt: OpaquePointer?
        #expect(tessera_runtime_create(0, 0, nil, &rt) == TESSERA_OK)
        #expect(tessera_runtime_destroy(rt) == TESSERA_OK)
        var y = [Float](repeating: 0, count: 2)
        #expect(tessera_relu(rt, [1, 2], &y, 2) == TESSERA_ERROR_INVALID_HANDLE)
        #expect(tessera_runtime_destroy(rt) == TESSERA_ERROR_INVALID_HANDLE)
        #expect(tessera_runtime_destroy(nil) == TESSERA_ERROR_NULL_POINTER)
        #expect(tessera_runtime_create(-1, 0, nil, &rt) == TESSERA_ERROR_INVALID_ARGUMENT)
        #expect(tessera_runtime_create(2, 0, "/no/such/topology.json", &rt) == TESSERA_ERROR_INVALID_ARGUMENT)
        #expect(lastError().contains("/no/such/topology.json"))
        var p: OpaquePointer?
        #expect(tessera_pipeline_create(&p) == TESSERA_OK)
        #expect(tessera_pipeline_destroy(p) == TESSERA_OK)
        #expect(tessera_pipeline_add_activation(p, TESSERA_RELU) == TESSERA_ERROR_INVALID_HANDLE)
        #expect(tessera_pipeline_add_activation(OpaquePointer(bitPattern: 0x1234), TESSERA_RELU) == TESSERA_ERROR_INVALID_HANDLE)
    }

    @Test func pipelinesFuseAndRun() throws {
        var p: OpaquePointer?
        #expect(tessera_pipeline_create(&p) == TESSERA_OK)
        defer { _ = tessera_pipeline_destroy(p) }
        #expect(tessera_pipeline_add_affine(p, 0.125, 0) == TESSERA_OK)
        #expect(tessera_pipeline_add_activation(p, TESSERA_RELU) == TESSERA_OK)
        #expect(tessera_pipeline_add_softmax(p, -1, 0) == TESSERA_OK)
        #expect(String(cString: tessera_pipeline_explain(p)).contains("softmax(dim: -1) with prologue[affine(0.125, 0.0) -> relu]"))
        let x = try Tensor(randomNormal: [64, 100], seed: 3)
        var y = [Float](repeating: 0, count: x.count)
        let s = x.withUnsafeBufferPointer { tessera_pipeline_run(nil, p, $0.baseAddress, &y, [64, 100], 2) }
        #expect(s == TESSERA_OK)
        let want = try Pipeline { Affine(scale: 0.125); ReLU(); Softmax() }(x)
        #expect(y == want.scalars)
        #expect(tessera_pipeline_run(nil, p, [1], &y, [1, 1], 2) == TESSERA_OK)
        #expect(tessera_pipeline_add_softmax(p, 5, 0) == TESSERA_OK)
        #expect(tessera_pipeline_run(nil, p, x.scalars, &y, [64, 100], 2) == TESSERA_ERROR_DIM_OUT_OF_RANGE)
    }

    @Test func rawOpsAliasingRules() throws {
        var buf = (0..<100).map { Float($0) - 50 }
        try buf.withUnsafeMutableBufferPointer { b in
            try RawOps.apply(.unary(.relu), input: b.baseAddress, output: b.baseAddress, count: 100)
            #expect(throws: TesseraError.overlappingBuffers("input and output")) {
                try RawOps.apply(.unary(.relu), input: b.baseAddress! + 10, output: b.baseAddress, count: 50)
            }
            // adjacent, not overlapping: fine
            try RawOps.apply(.unary(.tanh), input: b.baseAddress, output: b.baseAddress! + 50, count: 50)
        }
        #expect(Array(buf[0..<50]) == [Float](repeating: 0, count: 50))
        #expect(throws: TesseraError.invalidArgument("element count must be >= 0, got -1")) {
            try RawOps.apply(.unary(.relu), input: nil, output: nil, count: -1)
        }
    }
}

/// The C executor of the tests: a counter behind `context`, concurrentPerform behind `parallel_for`.
final class CPoolState: @unchecked Sendable {
    // @unchecked: `calls` is only touched under `lock`
    let lock = NSLock()
    var calls = 0
    var threads: Int32 = 3
}

@Suite("C ABI: the host's executor")
struct CExecutorTests {
    static func executor(_ state: CPoolState, parallelFor: Bool = true) -> tessera_executor {
        tessera_executor(
            context: Unmanaged.passUnretained(state).toOpaque(),
            num_threads: { ctx in Unmanaged<CPoolState>.fromOpaque(ctx!).takeUnretainedValue().threads },
            parallel_for: parallelFor ? { ctx, n, task, arg in
                let s = Unmanaged<CPoolState>.fromOpaque(ctx!).takeUnretainedValue()
                s.lock.withLock { s.calls += 1 }
                let a = UInt(bitPattern: arg)
                DispatchQueue.concurrentPerform(iterations: n) { i in task!(UnsafeMutableRawPointer(bitPattern: a), i) }
            } : nil,
            in_parallel: nil)
    }

    @Test func aRuntimeOnTheHostsExecutorGivesTheSameBits() throws {
        let state = CPoolState()
        var ex = Self.executor(state)
        var rt: OpaquePointer?
        #expect(tessera_runtime_create_with_executor(&ex, 16384, nil, &rt) == TESSERA_OK)
        defer { _ = tessera_runtime_destroy(rt) }
        let x = EdgeValues.random(count: 1 << 20, seed: 3)
        var a = [Float](repeating: 0, count: x.count), b = a
        #expect(tessera_gelu(rt, x, &a, x.count) == TESSERA_OK && tessera_gelu(nil, x, &b, x.count) == TESSERA_OK)
        #expect(a.map(\.bitPattern) == b.map(\.bitPattern) && state.calls > 0)
        let shape: [Int64] = [1024, 1024]
        #expect(tessera_softmax(rt, x, &a, shape, 2, -1) == TESSERA_OK && tessera_softmax(nil, x, &b, shape, 2, -1) == TESSERA_OK)
        #expect(a.map(\.bitPattern) == b.map(\.bitPattern))
    }

    @Test func badExecutorsAreRejectedWithAMessage() throws {
        let sentinel = OpaquePointer(bitPattern: 0x5EED)
        var rt: OpaquePointer? = sentinel
        #expect(tessera_runtime_create_with_executor(nil, 0, nil, &rt) == TESSERA_ERROR_NULL_POINTER && rt == sentinel)
        #expect(lastError() == "executor is NULL")
        let state = CPoolState()
        var ex = Self.executor(state, parallelFor: false)
        #expect(tessera_runtime_create_with_executor(&ex, 0, nil, &rt) == TESSERA_ERROR_NULL_POINTER && rt == sentinel)
        #expect(lastError() == "executor's parallel_for is NULL")
        ex = Self.executor(state)
        for bad: Int32 in [0, -1, 4097] {
            state.threads = bad
            #expect(tessera_runtime_create_with_executor(&ex, 0, nil, &rt) == TESSERA_ERROR_INVALID_ARGUMENT && rt == sentinel)
            #expect(lastError() == "executor reports \(bad) threads (expected 1...4096)")
        }
    }
}

@Suite("C ABI: strided rows")
struct CStridedTests {
    @Test func stridedCallsMatchTheContiguousOnesAndCheckTheirViews() throws {
        let rows = 33, cols = 70, width = 100
        let x = EdgeValues.random(count: rows * width, seed: 9)
        let xc = (0..<rows).flatMap { r in x[r * width + 5..<r * width + 5 + cols] }
        var y = [Float](repeating: 7, count: rows * width), want = [Float](repeating: 0, count: rows * cols)
        x.withUnsafeBufferPointer { xp in
            #expect(tessera_activation_run_strided(nil, TESSERA_SILU, 0, 0, xp.baseAddress! + 5, width, &y, width, rows, cols) == TESSERA_OK)
            #expect(tessera_silu(nil, xc, &want, xc.count) == TESSERA_OK)
            #expect((0..<rows).allSatisfy { r in (0..<cols).allSatisfy { y[r * width + $0].bitPattern == want[r * cols + $0].bitPattern } })
            #expect(y[cols] == 7) // outside the view: untouched
            #expect(tessera_softmax_strided(nil, xp.baseAddress! + 5, width, &y, width, rows, cols, 1) == TESSERA_OK)
            let shape: [Int64] = [Int64(rows), Int64(cols)]
            #expect(tessera_log_softmax(nil, xc, &want, shape, 2, -1) == TESSERA_OK)
            #expect((0..<rows).allSatisfy { r in (0..<cols).allSatisfy { y[r * width + $0].bitPattern == want[r * cols + $0].bitPattern } })
            var dx = [Float](repeating: 0, count: rows * width)
            #expect(tessera_softmax_backward_strided(nil, y, width, xp.baseAddress!, width, &dx, width, rows, cols, 1) == TESSERA_OK)
            #expect(tessera_activation_backward_strided(nil, TESSERA_GELU, 0, 0, xp.baseAddress!, width, nil, 0, xp.baseAddress!, width,
                                                        &dx, width, rows, cols) == TESSERA_OK)
            // a stride below the row length, and a view overlapping the output
            #expect(tessera_activation_run_strided(nil, TESSERA_RELU, 0, 0, xp.baseAddress!, cols - 1, &y, width, rows, cols) == TESSERA_ERROR_INVALID_ARGUMENT)
            #expect(lastError() == "input stride 69 is smaller than the row length 70")
            let overlap = y.withUnsafeMutableBufferPointer { yp in
                tessera_softmax_strided(nil, yp.baseAddress, width, yp.baseAddress! + 1, width, rows, cols, 0)
            }
            #expect(overlap == TESSERA_ERROR_OVERLAP && lastError().hasPrefix("input and output overlap"))
        }
    }
}
