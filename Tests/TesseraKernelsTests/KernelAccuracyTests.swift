import Testing
import TesseraKernels
import _TesseraTestSupport

/// Runs one kernel variant over `xs` with NaN-poisoned output.
func run(_ op: UnaryOp, _ table: KernelTable, _ xs: [Float]) -> [Float] {
    var y = [Float](repeating: .nan, count: xs.count)
    xs.withUnsafeBufferPointer { x in
        y.withUnsafeMutableBufferPointer { yb in
            op.kernel(in: table)(x.baseAddress, yb.baseAddress, xs.count, 0)
        }
    }
    return y
}

@Suite("Kernel accuracy against float64 references, every ISA variant")
struct KernelAccuracyTests {
    static let exactOps: [UnaryOp] = [.sigmoid, .tanh, .gelu, .geluTanh]

    @Test(arguments: UnaryOp.allCases, ISA.allCases)
    func randomInputsWithinFourULP(op: UnaryOp, isa: ISA) throws {
        guard let table = KernelTable(isa: isa) else { return } // this CPU cannot run it
        let xs = EdgeValues.random(count: 1 << 16, seed: 42) + (0..<20001).map { Float($0 - 10000) * 0.0015 }
        let ys = run(op, table, xs)
        var worst = 0.0, worstX: Float = 0
        for (x, y) in zip(xs, ys) {
            let ref = Reference.unary(op, Double(x))
            if !ULP.acceptable(y, ref) {
                Issue.record("\(op.variantName(isa)): x=\(x) got \(y) want \(ref) (\(ULP.error(y, ref)) ulp)")
                return
            }
            let e = abs(ref) < 1e-5 ? 0 : ULP.error(y, ref)
            if e > worst { worst = e; worstX = x }
        }
        if op == .relu { #expect(worst == 0) }
        #expect(worst <= 4, "worst \(worst) ulp at \(worstX)")
    }

    @Test(arguments: UnaryOp.allCases, ISA.allCases)
    func edgeValuesBehaveLikePyTorch(op: UnaryOp, isa: ISA) throws {
        guard let table = KernelTable(isa: isa) else { return }
        let xs = EdgeValues.specials
        let ys = run(op, table, xs)
        for (x, y) in zip(xs, ys) {
            let ref = Reference.unary(op, Double(x))
            #expect(ULP.acceptable(y, ref), "\(op.variantName(isa)): x=\(x) got \(y) want \(ref)")
            if x.isNaN { #expect(y.isNaN, "NaN in must give NaN out") }
            if ref == 0 { #expect(y.sign == Float(ref).sign || abs(ref) < 1e-5, "sign of zero for x=\(x)") }
        }
    }

    @Test func sigmoidNeverOverflowsAndSaturates() throws {
        for table in KernelTable.available {
            let ys = run(.sigmoid, table, [-1000, -89, -88, 88, 89, 1000, .greatestFiniteMagnitude, -.greatestFiniteMagnitude])
            #expect(ys.allSatisfy { $0.isFinite && $0 >= 0 && $0 <= 1 })
            #expect(ys[5] == 1 && ys[0] == 0)
        }
    }

    @Test func pytorchSpecialCases() throws {
        for table in KernelTable.available {
            #expect(run(.relu, table, [-0.0])[0].bitPattern == (-0.0 as Float).bitPattern)
            #expect(run(.tanh, table, [-0.0])[0].bitPattern == (-0.0 as Float).bitPattern)
            #expect(run(.tanh, table, [.infinity, -.infinity]) == [1, -1])
            #expect(run(.sigmoid, table, [.infinity, -.infinity]) == [1, 0])
            // gelu(-inf) = -inf * Phi(-inf) = -inf * 0 = NaN in PyTorch's formula, and here
            #expect(run(.gelu, table, [-.infinity])[0].isNaN)
            #expect(run(.gelu, table, [.infinity])[0] == .infinity)
            #expect(run(.geluTanh, table, [.infinity])[0] == .infinity)
            // denormal inputs: tanh(x) = x, sigmoid = 0.5
            let d = Float.leastNonzeroMagnitude * 7
            #expect(run(.tanh, table, [d])[0] == d)
            #expect(run(.sigmoid, table, [d])[0] == 0.5)
        }
    }

    @Test(arguments: UnaryOp.allCases)
    func everyVariantAgreesOnTailsAndInPlace(op: UnaryOp) throws {
        for n in EdgeValues.sizes {
            let xs = EdgeValues.random(count: n, seed: UInt64(n))
            let tables = KernelTable.available
            let outs = tables.map { run(op, $0, xs) }
            for (t, ys) in zip(tables, outs) {
                for (x, y) in zip(xs, ys) where !ULP.acceptable(y, Reference.unary(op, Double(x))) {
                    Issue.record("\(op.variantName(t.isa)) n=\(n) x=\(x) got \(y)")
                }
                // exactly in place gives the same bits as out of place
                var inPlace = xs
                inPlace.withUnsafeMutableBufferPointer { b in op.kernel(in: t)(b.baseAddress, b.baseAddress, n, 0) }
                #expect(inPlace.map(\.bitPattern) == ys.map(\.bitPattern))
                // streaming stores give the same bits
                var nt = [Float](repeating: .nan, count: n)
                xs.withUnsafeBufferPointer { x in nt.withUnsafeMutableBufferPointer { op.kernel(in: t)(x.baseAddress, $0.baseAddress, n, 1) } }
                #expect(nt.map(\.bitPattern) == ys.map(\.bitPattern))
                // streaming into outputs that start off a vector boundary (a head before the
                // first aligned vector), inputs at other offsets: same bits, nothing written
                // outside the output
                let guardBits: UInt32 = 0x7FC0_1234
                let raw = UnsafeMutableRawPointer.allocate(byteCount: (n + 64) * 8, alignment: 64)
                defer { raw.deallocate() }
                let bx = raw.assumingMemoryBound(to: Float.self), by = bx + n + 64
                for off in [1, 3, 4, 7, 13] {
                    (bx + off % 5).update(from: xs, count: n)
                    by.initialize(repeating: Float(bitPattern: guardBits), count: n + 32)
                    op.kernel(in: t)(bx + off % 5, by + off, n, 1)
                    #expect((0..<n).allSatisfy { by[off + $0].bitPattern == ys[$0].bitPattern }, "\(op.variantName(t.isa)) n=\(n) off=\(off)")
                    #expect((0..<off).allSatisfy { by[$0].bitPattern == guardBits } && (off + n..<n + 32).allSatisfy { by[$0].bitPattern == guardBits })
                }
            }
        }
    }

    @Test(arguments: [
        [ElementwiseStep.unary(.relu), .unary(.sigmoid), .unary(.tanh), .unary(.gelu)],
        [ElementwiseStep.affine(scale: 0.5, bias: 0.25), .unary(.relu), .clamp(lower: -1, upper: 1)],
        [ElementwiseStep.affine(scale: 2, bias: -1)],
    ])
    func chainsStreamIntoOutputsOffAVectorBoundary(steps: [ElementwiseStep]) throws {
        let cSteps = steps.map(\.cStep)
        for t in KernelTable.available {
            for n in EdgeValues.sizes {
                let xs = EdgeValues.random(count: n, seed: UInt64(n) + 7)
                var ys = [Float](repeating: .nan, count: n)
                xs.withUnsafeBufferPointer { x in
                    ys.withUnsafeMutableBufferPointer { t.kernels.chain(x.baseAddress, $0.baseAddress, n, cSteps, Int32(cSteps.count), 0) }
                }
                let guardBits: UInt32 = 0x7FC0_4321
                let raw = UnsafeMutableRawPointer.allocate(byteCount: (n + 64) * 8, alignment: 64)
                defer { raw.deallocate() }
                let bx = raw.assumingMemoryBound(to: Float.self), by = bx + n + 64
                for off in [0, 1, 5, 9, 15] {
                    (bx + 3).update(from: xs, count: n)
                    by.initialize(repeating: Float(bitPattern: guardBits), count: n + 32)
                    t.kernels.chain(bx + 3, by + off, n, cSteps, Int32(cSteps.count), 1)
                    #expect((0..<n).allSatisfy { by[off + $0].bitPattern == ys[$0].bitPattern }, "\(t.isa) n=\(n) off=\(off)")
                    #expect((0..<off).allSatisfy { by[$0].bitPattern == guardBits } && (off + n..<n + 32).allSatisfy { by[$0].bitPattern == guardBits })
                }
            }
        }
    }

    @Test func columnFinishStreamsWholeLinesAtAnyOffset() throws {
        // softmax along a non-last dim writes row segments of a slab: streaming or not, at any
        // output offset and stride, the same bits, and nothing outside the segments
        for t in KernelTable.available {
            for (rows, w, os) in [(5, 64, 100), (3, 37, 64), (4, 64, 4096), (2, 5, 9)] {
                let xs = EdgeValues.random(count: rows * w, seed: UInt64(w))
                let fa = (0..<w).map { Float($0 % 7) * 0.37 + 0.1 }, fb = (0..<w).map { Float($0 % 5) * 0.01 }
                for log in [Int32(0), 1] {
                    var want: [UInt32] = []
                    let raw = UnsafeMutableRawPointer.allocate(byteCount: (rows * os + 64) * 4, alignment: 64)
                    defer { raw.deallocate() }
                    let out = raw.assumingMemoryBound(to: Float.self)
                    for (off, nt) in [(0, Int32(0)), (0, 1), (3, 1), (4, 1), (13, 1)] {
                        out.initialize(repeating: Float(bitPattern: 0x7FC0_5555), count: rows * os + 64)
                        xs.withUnsafeBufferPointer { x in
                            t.kernels.cols_finish(x.baseAddress, w, out + off, os, rows, w, log, fa, fb, nt)
                        }
                        let got = (0..<rows).flatMap { r in (0..<w).map { out[off + r * os + $0].bitPattern } }
                        if want.isEmpty { want = got } else { #expect(got == want, "\(t.isa) rows=\(rows) w=\(w) off=\(off)") }
                        let written = Set((0..<rows).flatMap { r in (0..<w).map { off + r * os + $0 } })
                        #expect((0..<rows * os + 64).allSatisfy { written.contains($0) || out[$0].bitPattern == 0x7FC0_5555 })
                    }
                }
            }
        }
    }

    @Test func expSumPeekIsExpSumPlusTheNextRowsMax() throws {
        for t in KernelTable.available {
            for n in EdgeValues.sizes {
                let xs = EdgeValues.random(count: n, seed: UInt64(n) + 11).map { $0.isNaN ? 0 : $0 }
                // the next row with NaN and zeros of both signs: the peeked max has row_max's bits
                var next = EdgeValues.random(count: n, seed: UInt64(n) + 12)
                for i in stride(from: 0, to: n, by: 5) { next[i] = i % 2 == 0 ? -0.0 : 0.0 }
                let m = t.kernels.row_max(xs, n)
                var y1 = [Float](repeating: 0, count: n), y2 = y1
                let s1 = t.kernels.exp_store_sum(xs, &y1, n, m, 0)
                var nm: Float = 0
                let s2 = t.kernels.exp_sum_peek(xs, &y2, n, m, next, &nm)
                #expect(s1.bitPattern == s2.bitPattern && y1.map(\.bitPattern) == y2.map(\.bitPattern), "\(t.isa) n=\(n)")
                #expect(nm.bitPattern == t.kernels.row_max(next, n).bitPattern, "\(t.isa) n=\(n)")
                var nm2: Float = 0
                #expect(t.kernels.exp_sum_peek(xs, nil, n, m, next, &nm2).bitPattern == t.kernels.exp_sum(xs, n, m).bitPattern)
                #expect(nm2.bitPattern == nm.bitPattern)
            }
        }
    }

    @Test func variantsAreListedOnceAndNamed() {
        #expect(ISA.scalar.isSupported)
        #expect(KernelTable.best.isa == ISA.best)
        #expect(UnaryOp.sigmoid.variantName(.avx2) == "sigmoid.avx2.exp-p5-div")
        #expect(Set(UnaryOp.allCases.map(\.method)).count == UnaryOp.allCases.count)
    }
}
