import CTesseraKernels
import Foundation
import Testing
import Tessera
import TesseraKernels
import _TesseraTestSupport

// Every kernel of every ISA variant this CPU runs, against the float64 references, over every
// row of the op table (Reference.allSteps: each op with each of its test parameters).  One
// suite per ISA: a variant this CPU lacks shows up as a skipped suite, never as a pass.

/// Runs one step's kernel over `xs` with NaN-poisoned output.
func run(_ s: ElementwiseStep, _ table: KernelTable, _ xs: [Float], streaming: Bool = false) -> [Float] {
    var y = [Float](repeating: .nan, count: xs.count)
    xs.withUnsafeBufferPointer { x in
        y.withUnsafeMutableBufferPointer { yb in s.apply(table, x.baseAddress!, yb.baseAddress!, xs.count, streaming: streaming) }
    }
    return y
}
func run(_ op: UnaryOp, _ table: KernelTable, _ xs: [Float]) -> [Float] { run(ElementwiseStep(op), table, xs) }

/// Runs `steps` through the register-composed chain kernel.
func chain(_ steps: [ElementwiseStep], _ table: KernelTable, _ xs: [Float]) -> [Float] {
    let c = steps.map(\.cStep)
    var y = [Float](repeating: .nan, count: xs.count)
    xs.withUnsafeBufferPointer { x in
        y.withUnsafeMutableBufferPointer { table.kernels.chain(x.baseAddress, $0.baseAddress, xs.count, c, Int32(c.count), 0) }
    }
    return y
}

/// Runs one step's backward kernel: dx for `dy` from `saved` (nil: the op reads none).
func runBackward(_ s: ElementwiseStep, _ table: KernelTable, saved: [Float]?, _ dy: [Float], streaming: Bool = false) -> [Float] {
    var dx = [Float](repeating: .nan, count: dy.count)
    dy.withUnsafeBufferPointer { g in
        dx.withUnsafeMutableBufferPointer { d in
            if let saved {
                saved.withUnsafeBufferPointer { s.applyBackward(table, saved: $0.baseAddress, g.baseAddress!, d.baseAddress!, dy.count, streaming: streaming) }
            } else {
                s.applyBackward(table, saved: nil, g.baseAddress!, d.baseAddress!, dy.count, streaming: streaming)
            }
        }
    }
    return dx
}

/// What `s`'s backward reads, for inputs `xs` (the output computed with the forward kernel).
func savedFor(_ s: ElementwiseStep, _ t: KernelTable, _ xs: [Float]) -> [Float]? {
    switch s.op.saved {
    case .input, .either: xs
    case .output: run(s, t, xs)
    case .none: nil
    }
}

/// Deterministic gradients in [-2, 2], none zero.
func gradients(_ n: Int, seed: UInt64) -> [Float] {
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    return (0..<n).map { _ in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        let u = Float(Double(state >> 11) * 0x1p-53)
        return u < 0.5 ? -2 + 3.9 * u : -1.9 + 3.9 * u
    }
}

/// The backward bound: 16 ULP of the reference, or 1e-7 * |dy| absolute (for derivatives that
/// cross zero, where float32 terms cancel).
func backwardAcceptable(_ got: Float, _ ref: Double, dy: Float) -> Bool {
    if got.isNaN || ref.isNaN { return got.isNaN && ref.isNaN }
    return ULP.error(got, ref) <= 16 || abs(Double(got) - ref) <= 1e-7 * Double(abs(dy))
}

/// The checks, each over one ISA's table.
enum KernelChecks {
    static func backwardAccuracy(_ s: ElementwiseStep, _ t: KernelTable) {
        let xs = EdgeValues.random(count: 1 << 15, seed: 43) + (0..<20001).map { Float($0 - 10000) * 0.0025 } + EdgeValues.specials
        let dy = gradients(xs.count, seed: 3)
        let saved = savedFor(s, t, xs)
        let dx = runBackward(s, t, saved: saved, dy)
        var worst = 0.0, worstX: Float = 0, bad = 0
        for i in xs.indices {
            let at = Double(saved?[i] ?? xs[i])
            let ref = Reference.derivative(s.op, saved: at, Double(s.a), Double(s.b)) * Double(dy[i])
            if !backwardAcceptable(dx[i], ref, dy: dy[i]) {
                bad += 1
                if bad <= 3 { Issue.record("\(s) backward \(t.isa): x=\(xs[i]) saved=\(at) dy=\(dy[i]) got \(dx[i]) want \(ref)") }
            } else if !ref.isNaN, abs(Double(dx[i]) - ref) > 1e-7 * Double(abs(dy[i])) {
                let e = ULP.error(dx[i], ref)
                if e > worst { worst = e; worstX = xs[i] }
            }
        }
        #expect(bad == 0, "\(s) backward \(t.isa): \(bad) beyond the bound (worst within it: \(worst) ulp at \(worstX))")
        if s.op.saved == .either { // the output gives the same gradient bits
            #expect(runBackward(s, t, saved: run(s, t, xs), dy).map(\.bitPattern) == dx.map(\.bitPattern))
        }
    }

    /// Backward sweeps: tails, in place into the gradient, streaming, outputs off a vector boundary.
    static func backwardSweeps(_ s: ElementwiseStep, _ t: KernelTable) {
        for n in EdgeValues.sizes {
            let xs = EdgeValues.random(count: n, seed: UInt64(n) + 100), dy = gradients(n, seed: UInt64(n))
            let saved = savedFor(s, t, xs)
            let dx = runBackward(s, t, saved: saved, dy)
            #expect(runBackward(s, t, saved: saved, dy, streaming: true).map(\.bitPattern) == dx.map(\.bitPattern), "\(s) n=\(n)")
            var g = dy
            g.withUnsafeMutableBufferPointer { gb in
                if let saved {
                    saved.withUnsafeBufferPointer { s.applyBackward(t, saved: $0.baseAddress, gb.baseAddress!, gb.baseAddress!, n, streaming: false) }
                } else {
                    s.applyBackward(t, saved: nil, gb.baseAddress!, gb.baseAddress!, n, streaming: false)
                }
            }
            #expect(g.map(\.bitPattern) == dx.map(\.bitPattern), "\(s) n=\(n) in place")
            let raw = UnsafeMutableRawPointer.allocate(byteCount: (n + 64) * 4, alignment: 64)
            defer { raw.deallocate() }
            let out = raw.assumingMemoryBound(to: Float.self)
            for off in [1, 5, 13] {
                out.initialize(repeating: Float(bitPattern: 0x7FC0_7777), count: n + 32)
                dy.withUnsafeBufferPointer { gb in
                    if let saved {
                        saved.withUnsafeBufferPointer { s.applyBackward(t, saved: $0.baseAddress, gb.baseAddress!, out + off, n, streaming: true) }
                    } else {
                        s.applyBackward(t, saved: nil, gb.baseAddress!, out + off, n, streaming: true)
                    }
                }
                #expect((0..<n).allSatisfy { out[off + $0].bitPattern == dx[$0].bitPattern }, "\(s) n=\(n) off=\(off)")
                #expect((0..<off).allSatisfy { out[$0].bitPattern == 0x7FC0_7777 } && (off + n..<n + 32).allSatisfy { out[$0].bitPattern == 0x7FC0_7777 })
            }
        }
    }

    /// The fused backward of a chain (chain_backward) against its steps' backward run one by one
    /// on stored intermediates, with the step at every position: the same bits.
    static func backwardAtEveryPositionOfAChain(_ s: ElementwiseStep, _ t: KernelTable) {
        let xs = EdgeValues.random(count: 1000, seed: 6) + EdgeValues.specials
        let dy = gradients(xs.count, seed: 8)
        for filler in [ElementwiseStep.affine(scale: 0.75, bias: 0.125), .unary(.tanh), .unary(.gelu)] {
            for pos in 0..<3 {
                var steps = [filler, filler, filler]
                steps[pos] = s
                var values = [xs]
                for st in steps { values.append(run(st, t, values.last!)) }
                var g = dy
                for j in stride(from: 2, through: 0, by: -1) {
                    let saved: [Float]? = switch steps[j].op.saved {
                    case .output: values[j + 1]
                    case .none: nil
                    case .input, .either: values[j]
                    }
                    g = runBackward(steps[j], t, saved: saved, g)
                }
                let c = steps.map(\.cStep)
                var fused = [Float](repeating: .nan, count: xs.count)
                xs.withUnsafeBufferPointer { x in dy.withUnsafeBufferPointer { d in fused.withUnsafeMutableBufferPointer {
                    t.kernels.chain_backward(x.baseAddress, d.baseAddress, $0.baseAddress, xs.count, c, Int32(c.count), 0)
                } } }
                #expect(fused.map(\.bitPattern) == g.map(\.bitPattern), "\(t.isa) backward of \(steps)")
            }
        }
    }

    static func backwardSpecialCases(_ t: KernelTable) {
        let one: [Float] = [1, 1, 1, 1]
        // relu: 0 at the kink, the gradient passes for NaN (threshold_backward)
        #expect(runBackward(.unary(.relu), t, saved: [0, -0.0, .nan, 2], one) == [0, 0, 1, 1])
        // clamp: the gradient passes at the bounds, not outside, not for NaN
        #expect(runBackward(.clamp(lower: -1, upper: 1), t, saved: [-1, 1, 1.5, .nan], one) == [1, 1, 0, 0])
        #expect(runBackward(.clamp(lower: 2, upper: 1), t, saved: [1, 1.5, 2, 0], one) == [0, 0, 0, 0])
        // the GELUs' limits at +-inf (PyTorch's formula gives NaN there: inf * 0)
        for op in [UnaryOp.gelu, .geluTanh] {
            #expect(runBackward(.unary(op), t, saved: [.infinity, -.infinity, 0], [1, 1, 1]) == [1, 0, 0.5])
        }
        // sigmoid and tanh from the output: y = 0.5 and 0 give the peak derivatives
        #expect(runBackward(.unary(.sigmoid), t, saved: [0.5], [1]) == [0.25])
        #expect(runBackward(.unary(.tanh), t, saved: [0], [1]) == [1])
        #expect(runBackward(.affine(scale: -3, bias: 9), t, saved: nil, [2]) == [-6])
    }
    static func accuracy(_ s: ElementwiseStep, _ t: KernelTable) {
        let xs = EdgeValues.random(count: 1 << 16, seed: 42) + (0..<20001).map { Float($0 - 10000) * 0.0015 }
        let ys = run(s, t, xs)
        var worst = 0.0, worstX: Float = 0
        for (x, y) in zip(xs, ys) {
            let ref = Reference.step(s, Double(x))
            if !ULP.acceptable(y, ref) {
                Issue.record("\(s.op.variantName(t.isa)) \(s): x=\(x) got \(y) want \(ref) (\(ULP.error(y, ref)) ulp)")
                return
            }
            let e = abs(ref) < 1e-5 ? 0 : ULP.error(y, ref)
            if e > worst { worst = e; worstX = x }
        }
        // the ops that round once (or not at all) are correctly rounded
        #expect(worst <= (Reference.correctlyRounded(s.op) ? 0.5 : 4), "\(s.op.variantName(t.isa)) \(s): worst \(worst) ulp at \(worstX)")
    }

    static func edges(_ s: ElementwiseStep, _ t: KernelTable) {
        let xs = EdgeValues.specials
        for (x, y) in zip(xs, run(s, t, xs)) {
            let ref = Reference.step(s, Double(x))
            #expect(ULP.acceptable(y, ref), "\(s.op.variantName(t.isa)) \(s): x=\(x) got \(y) want \(ref)")
            if x.isNaN { #expect(y.isNaN, "\(s): NaN in must give NaN out") }
            if ref == 0 && abs(x) >= 1e-5 { #expect(y.sign == Float(ref).sign, "\(s): sign of zero for x=\(x)") }
        }
        #expect(run(s, t, []).isEmpty)
    }

    /// Tails, exactly in place, streaming stores and outputs off a vector boundary: the same bits
    /// as the plain call, nothing written outside the output.
    static func sweeps(_ s: ElementwiseStep, _ t: KernelTable) {
        for n in EdgeValues.sizes {
            let xs = EdgeValues.random(count: n, seed: UInt64(n))
            let ys = run(s, t, xs)
            for (x, y) in zip(xs, ys) where !ULP.acceptable(y, Reference.step(s, Double(x))) {
                Issue.record("\(s.op.variantName(t.isa)) \(s) n=\(n) x=\(x) got \(y)")
            }
            var inPlace = xs
            inPlace.withUnsafeMutableBufferPointer { b in s.apply(t, b.baseAddress!, b.baseAddress!, n, streaming: false) }
            #expect(inPlace.map(\.bitPattern) == ys.map(\.bitPattern), "\(s) n=\(n) in place")
            #expect(run(s, t, xs, streaming: true).map(\.bitPattern) == ys.map(\.bitPattern), "\(s) n=\(n) streaming")
            let guardBits: UInt32 = 0x7FC0_1234
            let raw = UnsafeMutableRawPointer.allocate(byteCount: (n + 64) * 8, alignment: 64)
            defer { raw.deallocate() }
            let bx = raw.assumingMemoryBound(to: Float.self), by = bx + n + 64
            for off in [1, 3, 4, 7, 13] {
                (bx + off % 5).update(from: xs, count: n)
                by.initialize(repeating: Float(bitPattern: guardBits), count: n + 32)
                s.apply(t, bx + off % 5, by + off, n, streaming: true)
                #expect((0..<n).allSatisfy { by[off + $0].bitPattern == ys[$0].bitPattern }, "\(s.op.variantName(t.isa)) n=\(n) off=\(off)")
                #expect((0..<off).allSatisfy { by[$0].bitPattern == guardBits } && (off + n..<n + 32).allSatisfy { by[$0].bitPattern == guardBits })
            }
        }
    }

    /// Each step at every position of a fused chain gives the bits of the steps run one by one
    /// (a step the chain's switch forgot would pass x through unchanged).
    static func everyPositionOfAChain(_ s: ElementwiseStep, _ t: KernelTable) {
        let xs = EdgeValues.random(count: 1025, seed: 5) + EdgeValues.specials
        let cheapFiller = ElementwiseStep.affine(scale: 0.75, bias: 0.125)
        let costlyFiller = ElementwiseStep.unary(.tanh)
        for filler in [cheapFiller, costlyFiller] {
            for pos in 0..<3 {
                var steps = [filler, filler, filler]
                steps[pos] = s
                let oneByOne = steps.reduce(xs) { v, step in run(step, t, v) }
                let fused = chain(steps, t, xs)
                #expect(fused.map(\.bitPattern) == oneByOne.map(\.bitPattern), "\(t.isa) \(steps)")
            }
        }
        #expect(chain([s], t, xs).map(\.bitPattern) == run(s, t, xs).map(\.bitPattern), "\(t.isa) [\(s)]")
    }

    static func chainsStreamOffAVectorBoundary(_ t: KernelTable) {
        let chains: [[ElementwiseStep]] = [
            [.unary(.relu), .unary(.sigmoid), .unary(.tanh), .unary(.gelu)],
            [.affine(scale: 0.5, bias: 0.25), .unary(.relu), .clamp(lower: -1, upper: 1)],
        ]
        for steps in chains {
            let cSteps = steps.map(\.cStep)
            for n in EdgeValues.sizes {
                let xs = EdgeValues.random(count: n, seed: UInt64(n) + 7)
                let ys = chain(steps, t, xs)
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

    static func pytorchSpecialCases(_ t: KernelTable) {
        let sat = run(.sigmoid, t, [-1000, -89, -88, 88, 89, 1000, .greatestFiniteMagnitude, -.greatestFiniteMagnitude])
        #expect(sat.allSatisfy { $0.isFinite && $0 >= 0 && $0 <= 1 } && sat[5] == 1 && sat[0] == 0)
        #expect(run(.relu, t, [-0.0])[0].bitPattern == (-0.0 as Float).bitPattern)
        #expect(run(.tanh, t, [-0.0])[0].bitPattern == (-0.0 as Float).bitPattern)
        #expect(run(.tanh, t, [.infinity, -.infinity]) == [1, -1])
        #expect(run(.sigmoid, t, [.infinity, -.infinity]) == [1, 0])
        // gelu(-inf) = -inf * Phi(-inf) = -inf * 0 = NaN in PyTorch's formula, and here
        #expect(run(.gelu, t, [-.infinity])[0].isNaN)
        #expect(run(.gelu, t, [.infinity])[0] == .infinity)
        #expect(run(.geluTanh, t, [.infinity])[0] == .infinity)
        // denormal inputs: tanh(x) = x, sigmoid = 0.5
        let d = Float.leastNonzeroMagnitude * 7
        #expect(run(.tanh, t, [d])[0] == d)
        #expect(run(.sigmoid, t, [d])[0] == 0.5)
        // clamp keeps NaN; lower > upper gives upper everywhere (PyTorch's torch.clamp)
        #expect(run(.clamp(lower: -1, upper: 1), t, [.nan])[0].isNaN)
        #expect(run(.clamp(lower: 2, upper: 1), t, [-5, 1.5, 7]) == [1, 1, 1])
    }

    static func columnFinishStreamsWholeLinesAtAnyOffset(_ t: KernelTable) {
        // softmax along a non-last dim writes row segments of a slab, or whole rows that follow
        // each other (os == w, streamed from any 16-byte offset by joining shifted vectors):
        // streaming or not, at any output offset and stride, the same bits, and nothing outside
        // the segments.  kind 0, 1: cols_finish (x a, (x - a) - b); 2: cols_softmax_out.
        for (rows, w, os) in [(5, 64, 100), (3, 37, 64), (4, 64, 4096), (2, 5, 9), (6, 64, 64), (5, 37, 37), (3, 100, 100),
                              (2, 300, 300)] {
            let xs = EdgeValues.random(count: rows * w, seed: UInt64(w))
            let fa = (0..<w).map { Float($0 % 7) * 0.37 + 0.1 }, fb = (0..<w).map { Float($0 % 5) * 0.01 }
            // cols_softmax_out's near marks: -1 (near) on most columns, 0 (exact) on every third
            let marks = (0..<w).map { $0 % 3 == 0 ? Float(0) : -1 }
            for kind in 0..<3 {
                var want: [UInt32] = []
                let raw = UnsafeMutableRawPointer.allocate(byteCount: (rows * os + 64) * 4, alignment: 64)
                defer { raw.deallocate() }
                let out = raw.assumingMemoryBound(to: Float.self)
                for (off, nt) in [(0, Int32(0)), (0, 1), (3, 1), (4, 1), (8, 1), (12, 1), (13, 1)] {
                    out.initialize(repeating: Float(bitPattern: 0x7FC0_5555), count: rows * os + 64)
                    xs.withUnsafeBufferPointer { x in
                        if kind == 2 {
                            t.kernels.cols_softmax_out(x.baseAddress, w, out + off, os, rows, w, fa, marks, fb, nt)
                        } else {
                            t.kernels.cols_finish(x.baseAddress, w, out + off, os, rows, w, Int32(kind), fa, fb, nt)
                        }
                    }
                    let got = (0..<rows).flatMap { r in (0..<w).map { out[off + r * os + $0].bitPattern } }
                    if want.isEmpty {
                        want = got
                        // and the values are the formula's (cols_finish's; cols_softmax_out's
                        // against the column kernels in columnKernels)
                        for r in 0..<rows where kind < 2 { for j in 0..<w {
                            let v = xs[r * w + j], e = kind != 0 ? (v - fa[j]) - fb[j] : v * fa[j]
                            #expect(Float(bitPattern: got[r * w + j]).bitPattern == e.bitPattern || (e.isNaN && Float(bitPattern: got[r * w + j]).isNaN))
                        } }
                    } else { #expect(got == want, "\(t.isa) kind=\(kind) rows=\(rows) w=\(w) os=\(os) off=\(off)") }
                    let written = Set((0..<rows).flatMap { r in (0..<w).map { off + r * os + $0 } })
                    #expect((0..<rows * os + 64).allSatisfy { written.contains($0) || out[$0].bitPattern == 0x7FC0_5555 },
                            "\(t.isa) kind=\(kind) rows=\(rows) w=\(w) os=\(os) off=\(off)")
                }
            }
        }
    }

    /// The column kernels of a softmax along a non-last dim, on columns of every kind: random,
    /// wide (+-100), with NaN, +-inf, all -inf, all NaN, and a max that rises late (by 15.9, 16.1,
    /// 40 and 1000 after the reference is set, and a ramp of +20 per 8 rows).  37 rows (a short
    /// last block), 21 columns (a tail vector on every ISA), rows 24 apart.
    static func columnKernels(_ t: KernelTable) {
        let rows = 37, w = 21, xs = 24
        var x = EdgeValues.random(count: rows * xs, seed: 41)
        let late: [Float] = [15.9, 16.1, 40, 1000]
        for d in 0..<rows {
            x[d * xs + 3] = d == 20 ? .nan : Float(d % 4)                      // one NaN
            x[d * xs + 4] = d == 5 ? .infinity : Float(d % 3)
            x[d * xs + 5] = -.infinity
            x[d * xs + 6] = d < 16 ? -.infinity : Float(d) * 0.1                // -inf, then values
            x[d * xs + 7] = .nan
            for (i, jump) in late.enumerated() { x[d * xs + 8 + i] = d == 27 ? jump : Float(d % 5) * 0.01 }
            x[d * xs + 12] = Float(d / 8) * 20                                  // a raise every block
            x[d * xs + 13] = Float(d) * 0.75                                    // a ramp within 16, then past it
        }
        let col = { (j: Int) in (0..<rows).map { x[$0 * xs + j] } }
        let k = t.kernels
        x.withUnsafeBufferPointer { xb in
            let xp = xb.baseAddress!
            var mx = [Float](repeating: -.infinity, count: w), mn = [Float](repeating: .infinity, count: w)
            k.cols_max(xp, xs, rows, w, &mx, &mn)
            var sums = [Double](repeating: 0, count: w), e = [Float](repeating: .nan, count: rows * w)
            k.cols_exp_sum(xp, xs, rows, w, mx, mn, &e, w, &sums, 1)
            // statistics in one read, whole and in two calls (rows 0..<16, 16..<37): same bits
            var r = [Float](repeating: -.infinity, count: w), m2 = [Float](repeating: -.infinity, count: w)
            var n2 = [Float](repeating: .infinity, count: w), s2 = [Double](repeating: 0, count: w)
            k.cols_stats(xp, xs, rows, w, &r, &m2, &n2, &s2, 1)
            var rp = [Float](repeating: -.infinity, count: w), mp = [Float](repeating: -.infinity, count: w)
            var np = [Float](repeating: .infinity, count: w), sp = [Double](repeating: 0, count: w)
            k.cols_stats(xp, xs, 16, w, &rp, &mp, &np, &sp, 1)
            k.cols_stats(xp + 16 * xs, xs, rows - 16, w, &rp, &mp, &np, &sp, 1)
            #expect(rp.map(\.bitPattern) == r.map(\.bitPattern) && sp.map(\.bitPattern) == s2.map(\.bitPattern), "\(t.isa)")
            // the output recomputing the exps has the stored exps' bits
            var ones = [Float](repeating: 1, count: w), again = [Float](repeating: .nan, count: rows * w)
            var shift = mx, marks = mn
            k.cols_out_prepare(&shift, &marks, w)
            #expect(shift == mx.map { $0 == -.infinity ? 0 : $0 }, "\(t.isa)")
            k.cols_softmax_out(xp, xs, &again, w, rows, w, shift, marks, &ones, 0)
            #expect(zip(again, e).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }, "\(t.isa)")
            for j in 0..<w {
                let c = col(j).map(Double.init), finite = c.filter { !$0.isNaN }
                let M = finite.max() ?? -.infinity
                #expect(mx[j] == Float(M) && m2[j] == mx[j], "\(t.isa) column \(j) max")
                #expect(mn[j] == Float(finite.min() ?? .infinity) && n2[j] == mn[j], "\(t.isa) column \(j) min")
                let sh = M == -.infinity ? 0 : M
                let want = c.reduce(0.0) { $0 + Foundation.exp($1 - sh) }
                let lazy = r[j] == -.infinity ? s2[j] : s2[j] * Foundation.exp(Double(r[j]) - sh)
                if want.isNaN {
                    #expect(sums[j].isNaN && lazy.isNaN, "\(t.isa) column \(j)")
                    continue
                }
                #expect(abs(sums[j] - want) <= 1e-6 * want, "\(t.isa) column \(j): \(sums[j]) vs \(want)")
                #expect(abs(lazy - want) <= 1e-6 * want, "\(t.isa) column \(j) one read: \(lazy) vs \(want)")
                for d in 0..<rows {
                    let ref = Foundation.exp(c[d] - sh), got = Double(e[d * w + j])
                    #expect(ref < 1.2e-38 ? got < 1.2e-38 : abs(got - ref) <= 1e-6 * ref, "\(t.isa) column \(j) row \(d)")
                }
            }
        }
    }

    static func expSumPeekIsExpSumPlusTheNextRowsMax(_ t: KernelTable) {
        for n in EdgeValues.sizes {
            let xs = EdgeValues.random(count: n, seed: UInt64(n) + 11).map { $0.isNaN ? 0 : $0 }
            // the next row with NaN and zeros of both signs: the peeked max has row_max's bits
            var next = EdgeValues.random(count: n, seed: UInt64(n) + 12)
            for i in stride(from: 0, to: n, by: 5) { next[i] = i % 2 == 0 ? -0.0 : 0.0 }
            let m = t.kernels.row_max(xs, n)
            #expect(m == (xs.max() ?? -.infinity), "\(t.isa) n=\(n) row_max")
            #expect(t.kernels.row_min(xs, n) == (xs.min() ?? .infinity), "\(t.isa) n=\(n) row_min")
            #expect(t.kernels.row_min(next, n) == (next.filter { !$0.isNaN }.min() ?? .infinity), "\(t.isa) n=\(n) row_min, NaN ignored")
            // `near` rows: the same values shifted to within 16 of their max (the caller's promise)
            let close = xs.map { m - (m - $0).truncatingRemainder(dividingBy: 15.9) }
            // against 0 (log_softmax's rows, m = 0): the sum alone skips the subtraction, same bits
            let low = xs.enumerated().map { $0.offset % 7 == 0 ? -0.0 : min($0.element, 40) }
            var y0 = [Float](repeating: 0, count: n), nm0: Float = 0
            let s0 = t.kernels.exp_store_sum(low, &y0, n, 0, 0, TS_EXP_ROUNDED)
            #expect(t.kernels.exp_sum_peek(low, nil, n, 0, TS_EXP_ROUNDED, next, &nm0, nil).bitPattern == s0.bitPattern)
            #expect(t.kernels.exp_sum_peek(low, nil, n, 0, TS_EXP_ROUNDED, nil, &nm0, nil).bitPattern == s0.bitPattern)
            #expect(s0.isFinite, "\(t.isa) n=\(n)")
            // TS_EXP_ROUNDED: x - m rounded once for any x (log_softmax's rows against 0)
            for (row, near) in [(xs, TS_EXP_EXACT), (close, TS_EXP_EXACT), (close, TS_EXP_NEAR), (close, TS_EXP_ROUNDED),
                                (xs, TS_EXP_ROUNDED)] {
                var y1 = [Float](repeating: 0, count: n), y2 = y1
                let s1 = t.kernels.exp_store_sum(row, &y1, n, m, 0, near)
                var nm: Float = 0, nmin: Float = 0
                let s2 = t.kernels.exp_sum_peek(row, &y2, n, m, near, next, &nm, &nmin)
                #expect(s1.bitPattern == s2.bitPattern && y1.map(\.bitPattern) == y2.map(\.bitPattern), "\(t.isa) n=\(n) near=\(near)")
                #expect(nm.bitPattern == t.kernels.row_max(next, n).bitPattern, "\(t.isa) n=\(n)")
                #expect(nmin == t.kernels.row_min(next, n), "\(t.isa) n=\(n)")
                var nm2: Float = 0, nmin2: Float = 0
                // without y, the same sum (`near` honoured: log_softmax's rows against 0)
                #expect(t.kernels.exp_sum_peek(row, nil, n, m, near, next, &nm2, &nmin2).bitPattern == s1.bitPattern, "\(t.isa) n=\(n) near=\(near)")
                if near == 0 { #expect(s1.bitPattern == t.kernels.exp_sum(row, n, m).bitPattern, "\(t.isa) n=\(n)") }
                #expect(nm2.bitPattern == nm.bitPattern && nmin2 == nmin)
                // without next_min, no min: the same sum and max
                var nm3: Float = 0
                #expect(t.kernels.exp_sum_peek(row, nil, n, m, near, next, &nm3, nil).bitPattern == s1.bitPattern)
                #expect(nm3.bitPattern == nm.bitPattern, "\(t.isa) n=\(n) near=\(near) no min")
                // exp_near_one is the near path's exp of one value, bit for bit
                if near != 0 {
                    for i in 0..<n { #expect(t.kernels.exp_near_one(row[i], m).bitPattern == y1[i].bitPattern, "\(t.isa) x=\(row[i])") }
                }
                // the sum is the float64 sum of the exps it stored, to within float rounding
                let ref = y1.reduce(0.0) { $0 + Double($1) }
                #expect(abs(s1 - ref) <= 1e-6 * max(1, ref), "\(t.isa) n=\(n) sum \(s1) vs \(ref)")
                // each exp within its bound of exp(x - m) in float64: 2.1 eps from the polynomial,
                // the one-constant reduction's |n| (ln2f - ln2) = |x - m| log2(e) 1.9e-9 (FMA
                // machines), and where x - m is rounded once, its rounding (at most 2^-21 within 16 of m)
                for i in 0..<n where row[i] - m > -87 {
                    let d = Double(row[i]) - Double(m)
                    let bound: Double = 3e-7 + (abs(d) * 1.4427 + 1) * 1.91e-9 + (near == TS_EXP_EXACT ? 0 : Double((row[i] - m).ulp) / 2)
                    let want = Foundation.exp(Double(row[i]) - Double(m))
                    #expect(abs(Double(y1[i]) - want) <= bound * want, "\(t.isa) n=\(n) near=\(near) x=\(row[i]) m=\(m)")
                }
            }
        }
    }
}

func table(_ isa: ISA) -> KernelTable { KernelTable(isa: isa)! }

@Suite("Kernels: scalar") struct ScalarKernelTests {
    @Test(arguments: Reference.allSteps) func accuracy(_ s: ElementwiseStep) { KernelChecks.accuracy(s, table(.scalar)) }
    @Test(arguments: Reference.allSteps) func edges(_ s: ElementwiseStep) { KernelChecks.edges(s, table(.scalar)) }
    @Test(arguments: Reference.allSteps) func sweeps(_ s: ElementwiseStep) { KernelChecks.sweeps(s, table(.scalar)) }
    @Test(arguments: Reference.allSteps) func chainPositions(_ s: ElementwiseStep) { KernelChecks.everyPositionOfAChain(s, table(.scalar)) }
    @Test func chainsStream() { KernelChecks.chainsStreamOffAVectorBoundary(table(.scalar)) }
    @Test func specialCases() { KernelChecks.pytorchSpecialCases(table(.scalar)) }
    @Test func columnFinish() { KernelChecks.columnFinishStreamsWholeLinesAtAnyOffset(table(.scalar)) }
    @Test func expSumPeek() { KernelChecks.expSumPeekIsExpSumPlusTheNextRowsMax(table(.scalar)) }
    @Test func columns() { KernelChecks.columnKernels(table(.scalar)) }
    @Test(arguments: Reference.allSteps) func backward(_ s: ElementwiseStep) { KernelChecks.backwardAccuracy(s, table(.scalar)) }
    @Test(arguments: Reference.allSteps) func backwardSweeps(_ s: ElementwiseStep) { KernelChecks.backwardSweeps(s, table(.scalar)) }
    @Test(arguments: Reference.allSteps) func backwardChainPositions(_ s: ElementwiseStep) { KernelChecks.backwardAtEveryPositionOfAChain(s, table(.scalar)) }
    @Test func backwardSpecialCases() { KernelChecks.backwardSpecialCases(table(.scalar)) }
}

@Suite("Kernels: sse2", .enabled(if: ISA.sse2.isSupported, "this CPU does not run SSE2 (not x86-64)"))
struct SSE2KernelTests {
    @Test(arguments: Reference.allSteps) func accuracy(_ s: ElementwiseStep) { KernelChecks.accuracy(s, table(.sse2)) }
    @Test(arguments: Reference.allSteps) func edges(_ s: ElementwiseStep) { KernelChecks.edges(s, table(.sse2)) }
    @Test(arguments: Reference.allSteps) func sweeps(_ s: ElementwiseStep) { KernelChecks.sweeps(s, table(.sse2)) }
    @Test(arguments: Reference.allSteps) func chainPositions(_ s: ElementwiseStep) { KernelChecks.everyPositionOfAChain(s, table(.sse2)) }
    @Test func chainsStream() { KernelChecks.chainsStreamOffAVectorBoundary(table(.sse2)) }
    @Test func specialCases() { KernelChecks.pytorchSpecialCases(table(.sse2)) }
    @Test func columnFinish() { KernelChecks.columnFinishStreamsWholeLinesAtAnyOffset(table(.sse2)) }
    @Test func expSumPeek() { KernelChecks.expSumPeekIsExpSumPlusTheNextRowsMax(table(.sse2)) }
    @Test func columns() { KernelChecks.columnKernels(table(.sse2)) }
    @Test(arguments: Reference.allSteps) func backward(_ s: ElementwiseStep) { KernelChecks.backwardAccuracy(s, table(.sse2)) }
    @Test(arguments: Reference.allSteps) func backwardSweeps(_ s: ElementwiseStep) { KernelChecks.backwardSweeps(s, table(.sse2)) }
    @Test(arguments: Reference.allSteps) func backwardChainPositions(_ s: ElementwiseStep) { KernelChecks.backwardAtEveryPositionOfAChain(s, table(.sse2)) }
    @Test func backwardSpecialCases() { KernelChecks.backwardSpecialCases(table(.sse2)) }
}

@Suite("Kernels: avx2", .enabled(if: ISA.avx2.isSupported, "this CPU does not run AVX2 + FMA"))
struct AVX2KernelTests {
    @Test(arguments: Reference.allSteps) func accuracy(_ s: ElementwiseStep) { KernelChecks.accuracy(s, table(.avx2)) }
    @Test(arguments: Reference.allSteps) func edges(_ s: ElementwiseStep) { KernelChecks.edges(s, table(.avx2)) }
    @Test(arguments: Reference.allSteps) func sweeps(_ s: ElementwiseStep) { KernelChecks.sweeps(s, table(.avx2)) }
    @Test(arguments: Reference.allSteps) func chainPositions(_ s: ElementwiseStep) { KernelChecks.everyPositionOfAChain(s, table(.avx2)) }
    @Test func chainsStream() { KernelChecks.chainsStreamOffAVectorBoundary(table(.avx2)) }
    @Test func specialCases() { KernelChecks.pytorchSpecialCases(table(.avx2)) }
    @Test func columnFinish() { KernelChecks.columnFinishStreamsWholeLinesAtAnyOffset(table(.avx2)) }
    @Test func expSumPeek() { KernelChecks.expSumPeekIsExpSumPlusTheNextRowsMax(table(.avx2)) }
    @Test func columns() { KernelChecks.columnKernels(table(.avx2)) }
    @Test(arguments: Reference.allSteps) func backward(_ s: ElementwiseStep) { KernelChecks.backwardAccuracy(s, table(.avx2)) }
    @Test(arguments: Reference.allSteps) func backwardSweeps(_ s: ElementwiseStep) { KernelChecks.backwardSweeps(s, table(.avx2)) }
    @Test(arguments: Reference.allSteps) func backwardChainPositions(_ s: ElementwiseStep) { KernelChecks.backwardAtEveryPositionOfAChain(s, table(.avx2)) }
    @Test func backwardSpecialCases() { KernelChecks.backwardSpecialCases(table(.avx2)) }
}

@Suite("Kernels: avx512", .enabled(if: ISA.avx512.isSupported, "this CPU does not run AVX-512 F"))
struct AVX512KernelTests {
    @Test(arguments: Reference.allSteps) func accuracy(_ s: ElementwiseStep) { KernelChecks.accuracy(s, table(.avx512)) }
    @Test(arguments: Reference.allSteps) func edges(_ s: ElementwiseStep) { KernelChecks.edges(s, table(.avx512)) }
    @Test(arguments: Reference.allSteps) func sweeps(_ s: ElementwiseStep) { KernelChecks.sweeps(s, table(.avx512)) }
    @Test(arguments: Reference.allSteps) func chainPositions(_ s: ElementwiseStep) { KernelChecks.everyPositionOfAChain(s, table(.avx512)) }
    @Test func chainsStream() { KernelChecks.chainsStreamOffAVectorBoundary(table(.avx512)) }
    @Test func specialCases() { KernelChecks.pytorchSpecialCases(table(.avx512)) }
    @Test func columnFinish() { KernelChecks.columnFinishStreamsWholeLinesAtAnyOffset(table(.avx512)) }
    @Test func expSumPeek() { KernelChecks.expSumPeekIsExpSumPlusTheNextRowsMax(table(.avx512)) }
    @Test func columns() { KernelChecks.columnKernels(table(.avx512)) }
    @Test(arguments: Reference.allSteps) func backward(_ s: ElementwiseStep) { KernelChecks.backwardAccuracy(s, table(.avx512)) }
    @Test(arguments: Reference.allSteps) func backwardSweeps(_ s: ElementwiseStep) { KernelChecks.backwardSweeps(s, table(.avx512)) }
    @Test(arguments: Reference.allSteps) func backwardChainPositions(_ s: ElementwiseStep) { KernelChecks.backwardAtEveryPositionOfAChain(s, table(.avx512)) }
    @Test func backwardSpecialCases() { KernelChecks.backwardSpecialCases(table(.avx512)) }
}

@Suite("Kernels: neon", .enabled(if: ISA.neon.isSupported, "this CPU is not arm64 (tools/neon/check.sh checks the NEON variant under emulation)"))
struct NEONKernelTests {
    @Test(arguments: Reference.allSteps) func accuracy(_ s: ElementwiseStep) { KernelChecks.accuracy(s, table(.neon)) }
    @Test(arguments: Reference.allSteps) func edges(_ s: ElementwiseStep) { KernelChecks.edges(s, table(.neon)) }
    @Test(arguments: Reference.allSteps) func sweeps(_ s: ElementwiseStep) { KernelChecks.sweeps(s, table(.neon)) }
    @Test(arguments: Reference.allSteps) func chainPositions(_ s: ElementwiseStep) { KernelChecks.everyPositionOfAChain(s, table(.neon)) }
    @Test func chainsStream() { KernelChecks.chainsStreamOffAVectorBoundary(table(.neon)) }
    @Test func specialCases() { KernelChecks.pytorchSpecialCases(table(.neon)) }
    @Test func columnFinish() { KernelChecks.columnFinishStreamsWholeLinesAtAnyOffset(table(.neon)) }
    @Test func expSumPeek() { KernelChecks.expSumPeekIsExpSumPlusTheNextRowsMax(table(.neon)) }
    @Test func columns() { KernelChecks.columnKernels(table(.neon)) }
    @Test(arguments: Reference.allSteps) func backward(_ s: ElementwiseStep) { KernelChecks.backwardAccuracy(s, table(.neon)) }
    @Test(arguments: Reference.allSteps) func backwardSweeps(_ s: ElementwiseStep) { KernelChecks.backwardSweeps(s, table(.neon)) }
    @Test(arguments: Reference.allSteps) func backwardChainPositions(_ s: ElementwiseStep) { KernelChecks.backwardAtEveryPositionOfAChain(s, table(.neon)) }
    @Test func backwardSpecialCases() { KernelChecks.backwardSpecialCases(table(.neon)) }
}

@Suite("The op table") struct OpTableTests {
    @Test func namesRoundTripAndAreUnique() {
        let names = UnaryOp.allCases.map(\.rawValue)
        #expect(Set(names).count == names.count)
        for (i, op) in UnaryOp.allCases.enumerated() {
            #expect(op.index == i && UnaryOp(index: i) == op && UnaryOp(rawValue: op.rawValue) == op)
            #expect((0...2).contains(op.parameterCount) && op.accepts(op.defaultParameters.0, op.defaultParameters.1))
        }
        #expect(UnaryOp(rawValue: "swish") == nil && UnaryOp(index: UnaryOp.allCases.count) == nil && UnaryOp(index: -1) == nil)
        // Codable as its name (the JSON contract), through RawRepresentable's coding
        let json = try! JSONEncoder().encode(UnaryOp.allCases)
        #expect(String(decoding: json, as: UTF8.self).hasPrefix("[\"relu\",\"sigmoid\""))
        #expect(try! JSONDecoder().decode([UnaryOp].self, from: json) == UnaryOp.allCases)
        #expect((try? JSONDecoder().decode([UnaryOp].self, from: Data("[\"swish\"]".utf8))) == nil)
    }

    @Test func everyOpHasTestParametersItAccepts() {
        for op in UnaryOp.allCases {
            let sets = Reference.parameterSets(op)
            #expect(!sets.isEmpty && sets.allSatisfy { op.accepts($0.0, $0.1) })
            // an op with parameters is tested with more than its defaults
            if op.parameterCount > 0 { #expect(sets.count > 1, "\(op): test it away from its defaults") }
        }
    }
}
