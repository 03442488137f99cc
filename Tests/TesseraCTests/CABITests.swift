import CTesseraABI
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
        #expect(tessera_op_from_name("swish") == -1 && tessera_op_from_name(nil) == -1 && tessera_op_parameter_count(99) == -1)
        // the generated per-op functions and the named layers
        var y = [Float](repeating: 0, count: 4)
        #expect(tessera_sigmoid(nil, [0, 0, 0, 0], &y, 4) == TESSERA_OK && y == [0.5, 0.5, 0.5, 0.5])
        #expect(tessera_gelu_tanh(nil, [0, 0, 0, 0], &y, 4) == TESSERA_OK && y == [0, 0, 0, 0])
        #expect(tessera_affine(nil, [1, 2, 3, 4], &y, 4) == TESSERA_OK && y == [1, 2, 3, 4]) // defaults: x * 1 + 0
        // invalid parameters: a status and a message, nothing written
        y = [7, 7, 7, 7]
        #expect(tessera_activation_run_with(nil, TESSERA_CLAMP, 2, 1, [0, 0, 0, 0], &y, 4) == TESSERA_ERROR_INVALID_ARGUMENT)
        #expect(lastError().contains("clamp") && y == [7, 7, 7, 7])
        var p: OpaquePointer?
        #expect(tessera_pipeline_create(&p) == TESSERA_OK)
        defer { _ = tessera_pipeline_destroy(p) }
        #expect(tessera_pipeline_add_activation_with(p, TESSERA_CLAMP, 1, 0) == TESSERA_ERROR_INVALID_ARGUMENT)
        #expect(tessera_pipeline_add_activation_with(p, TESSERA_AFFINE, 2, 1) == TESSERA_OK)
        #expect(tessera_pipeline_run(nil, p, [1, 2, 3, 4], &y, [4], 1) == TESSERA_OK && y == [3, 5, 7, 9])
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

    @Test func badInputGivesAStatusAMessageAndNoWrite() throws {
        var y = [Float](repeating: 7, count: 8)
        let x = [Float](repeating: 1, count: 8)
        #expect(tessera_sigmoid(nil, nil, &y, 8) == TESSERA_ERROR_NULL_POINTER)
        #expect(lastError().contains("input"))
        #expect(tessera_sigmoid(nil, x, nil, 8) == TESSERA_ERROR_NULL_POINTER)
        #expect(tessera_sigmoid(nil, x, &y, Int(bitPattern: UInt(bitPattern: -1))) == TESSERA_ERROR_INVALID_ARGUMENT)
        #expect(lastError().contains("too large"))
        #expect(tessera_activation_run(nil, tessera_activation(rawValue: 99), x, &y, 8) == TESSERA_ERROR_INVALID_ARGUMENT)
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
        #expect(tessera_pipeline_add_clamp(p, 1, 0) == TESSERA_ERROR_INVALID_ARGUMENT)
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
            #expect(throws: TesseraError.overlappingBuffers) {
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
