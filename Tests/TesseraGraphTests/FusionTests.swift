import Testing
import Tessera
import _TesseraTestSupport

@Suite("Fusion pass")
struct FusionTests {
    @Test func adjacentElementwiseStepsFormOneGroup() {
        let p = Pipeline { ReLU(); Sigmoid(); Tanh(); GELU() }
        let prog = p.compile()
        #expect(prog.stages == [.elementwise([.unary(.relu), .unary(.sigmoid), .unary(.tanh), .unary(.gelu)])])
        #expect(prog.sweeps == 1)
        #expect(p.compile(fused: false).sweeps == 4)
    }

    @Test func softmaxAtTheEndAbsorbsThePrecedingRun() {
        let p = Pipeline { Affine(scale: 0.125); ReLU(); Softmax() }
        #expect(p.compile().stages == [.softmax(prologue: [.affine(scale: 0.125, bias: 0), .unary(.relu)], dim: -1, log: false)])
    }

    @Test func softmaxInTheMiddleAndAtTheStart() {
        let mid = Pipeline { ReLU(); Softmax(dim: 0); Tanh(); GELU(approximate: .tanh) }
        #expect(mid.compile().stages == [.softmax(prologue: [.unary(.relu)], dim: 0, log: false),
                                         .elementwise([.unary(.tanh), .unary(.geluTanh)])])
        let start = Pipeline { LogSoftmax(); Sigmoid() }
        #expect(start.compile().stages == [.softmax(prologue: [], dim: -1, log: true), .elementwise([.unary(.sigmoid)])])
        let two = Pipeline { Softmax(); Softmax() }
        #expect(two.compile().sweeps == 2)
    }

    @Test func requestedIntermediatesAndReshapesEndAGroup() {
        let p = Pipeline { ReLU(); Sigmoid(); PipelineNode.output("hidden"); Tanh(); PipelineNode.reshape([4, -1 + 5]); GELU() }
        let prog = p.compile()
        #expect(prog.stages == [.elementwise([.unary(.relu), .unary(.sigmoid)]), .elementwise([.unary(.tanh)]), .reshape([4, 4]),
                                .elementwise([.unary(.gelu)])])
        #expect(prog.outputs.map(\.name) == ["hidden"] && prog.outputs[0].stage == 0)
        #expect(prog.sweeps == 3)
    }

    @Test func singleOpChains() {
        #expect(Pipeline { Tanh() }.compile().stages == [.elementwise([.unary(.tanh)])])
        #expect(Pipeline { Softmax() }.compile().stages == [.softmax(prologue: [], dim: -1, log: false)])
        #expect(Pipeline(nodes: []).compile().stages.isEmpty)
    }

    @Test func explainShowsTheGroups() {
        let text = Pipeline { ReLU(); Sigmoid(); Tanh(); GELU(); Affine(scale: 2); Softmax() }.explain()
        #expect(text == """
            program: 1 stage(s), 1 sweep(s) over memory
              stage 0: softmax(dim: -1) with prologue[relu -> sigmoid -> tanh -> gelu -> affine(2.0, 0.0)]

            """)
    }
}

@Suite("Fused execution")
struct FusedExecutionTests {
    let rt = try! Runtime(threads: 3, tileBytes: 8192, parallelThresholdNs: 0)

    static let chains: [Pipeline] = [
        Pipeline { ReLU(); Sigmoid(); Tanh(); GELU() },
        Pipeline { Affine(scale: 0.5, bias: 1); GELU(approximate: .tanh); Clamp(lower: -0.5, upper: 0.5); Tanh() },
        Pipeline { Affine(scale: 0.125); Softmax() },
        Pipeline { ReLU(); Softmax(dim: 0); Sigmoid(); Tanh() },
        Pipeline { Tanh(); LogSoftmax(dim: 1) },
        Pipeline { Sigmoid() },
    ]

    @Test(arguments: chains)
    func fusedIsBitIdenticalToOneOpAtATime(pipeline: Pipeline) throws {
        let random = try Tensor(randomNormal: [37, 2049], standardDeviation: 4, seed: 21)
        let edges = try Tensor(shape: [EdgeValues.specials.count, 2], scalars: EdgeValues.specials + EdgeValues.specials.reversed())
        let long = try Tensor(randomNormal: [2, 40_000], seed: 3)
        for x in [random, edges, long] {
            let unfused = try pipeline.run(x, runtime: rt, fused: false).output
            for execution in FusedExecution.allCases {
                let fused = try pipeline.run(x, runtime: rt, execution: execution).output
                #expect(fused.scalars.map(\.bitPattern) == unfused.scalars.map(\.bitPattern), "\(pipeline) \(execution)")
            }
            // and the unfused run is the layers called one by one
            var manual = x
            for node in pipeline.nodes {
                switch node {
                case .step(let s): try RawOps.apply(s, input: manual.scalars, output: &manual.scalarsCopy, count: manual.count, runtime: rt)
                case .softmax(let d, let log): manual = try (log ? LogSoftmax(dim: d).forward(manual, runtime: rt) : Softmax(dim: d).forward(manual, runtime: rt))
                default: break
                }
            }
            #expect(manual == unfused, "\(pipeline): layer-by-layer differs from the unfused program")
        }
    }

    @Test func fusedChainMatchesTheReference() throws {
        let x = try Tensor(randomNormal: [10_000], standardDeviation: 3, seed: 1)
        let y = try Pipeline { ReLU(); Sigmoid(); Tanh(); GELU() }(x, runtime: rt)
        for (a, b) in zip(x.scalars, y.scalars) {
            let ref = Reference.gelu(Double(Float(Reference.tanh(Double(Float(Reference.sigmoid(Double(max(a, 0)))))))))
            #expect(abs(Double(b) - ref) <= 1e-6 * max(1, abs(ref)))
        }
    }

    @Test func keptIntermediatesAreReturnedAndNotOverwritten() throws {
        let x = try Tensor(randomNormal: [1000], seed: 2)
        let r = try Pipeline { ReLU(); Sigmoid(); PipelineNode.output("h"); Tanh() }.run(x, runtime: rt)
        #expect(r.outputs["h"] == Sigmoid()(ReLU()(x)))
        #expect(r.output == Tanh()(Sigmoid()(ReLU()(x))))
    }

    @Test func fusedChainAllocatesOnlyItsOutput() throws {
        let x = try Tensor(randomNormal: [1 << 16], seed: 2)
        let p = Pipeline { ReLU(); Sigmoid(); Tanh(); GELU() }
        for fused in [true, false] {
            let counter = AllocationCounter()
            try AlignedStorage.$allocations.withValue(counter) { _ = try p.run(x, runtime: rt, fused: fused) }
            // one output tensor; the unfused run works in place after its first sweep
            #expect(counter.count == 1 && counter.bytes == (1 << 16) * 4, "fused: \(fused)")
        }
        let counter = AllocationCounter()
        try AlignedStorage.$allocations.withValue(counter) {
            _ = try p.run(x, runtime: rt)
            _ = try Pipeline { ReLU(); PipelineNode.output("r"); Sigmoid() }.run(x, runtime: rt)
        }
        #expect(counter.count == 3) // a kept intermediate needs its own tensor
    }

    @Test func invalidPipelinesFailBeforeRunning() throws {
        let x = try Tensor(randomNormal: [4, 4], seed: 2)
        #expect(throws: TesseraError.dimOutOfRange(dim: 3, rank: 2)) { try Pipeline { ReLU(); Softmax(dim: 3) }(x) }
        #expect(throws: TesseraError.reshapeMismatch(from: [4, 4], to: [3, 3])) {
            try Pipeline { ReLU(); PipelineNode.reshape([3, 3]); Softmax() }(x)
        }
    }

    @Test func scheduleIsPrintable() throws {
        let s = try Pipeline { Affine(scale: 0.125); Softmax() }.schedule(shape: [8, 1 << 21], runtime: try Runtime(threads: 2))
        #expect(s.contains("rows split in chunks of 16384"))
        #expect(s.contains("(1024 chunks)") && s.contains("dependent steps in one parallel call") && s.contains("2 workers"))
    }
}

extension Tensor {
    /// A mutable copy of the scalars (test helper for the raw API).
    var scalarsCopy: [Float] {
        get { scalars }
        set { self = try! Tensor(shape: shape, scalars: newValue) }
    }
}
