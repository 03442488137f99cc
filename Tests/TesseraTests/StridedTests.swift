import Foundation
import Testing
import Tessera
import _TesseraTestSupport

/// 2-D strided views (x[:, a..<b] of a wider tensor): the same bits as the contiguous calls,
/// nothing written outside the output view, and the aliasing rules.
@Suite("Strided rows")
struct StridedTests {
    static let rt = try! Runtime(threads: 3, tileBytes: 4096, parallelThresholdNs: 0)

    /// rows x cols taken at column `offset` of a rows x width buffer.
    struct View {
        var buf: [Float]
        let rows: Int, cols: Int, width: Int, offset: Int
        init(rows: Int, cols: Int, width: Int, offset: Int, seed: UInt64, fill: Float? = nil) {
            buf = fill.map { [Float](repeating: $0, count: rows * width) } ?? EdgeValues.random(count: rows * width, seed: seed)
            self.rows = rows; self.cols = cols; self.width = width; self.offset = offset
        }
        var contiguous: [Float] { (0..<rows).flatMap { r in buf[r * width + offset..<r * width + offset + cols] } }
    }

    @Test(arguments: [(7, 33, 50, 5), (300, 257, 300, 40), (2, 20_000, 20_010, 3), (64, 1, 9, 8)])
    func stridedEqualsContiguous(_ g: (rows: Int, cols: Int, width: Int, offset: Int)) throws {
        let x = View(rows: g.rows, cols: g.cols, width: g.width, offset: g.offset, seed: 5)
        let dy = View(rows: g.rows, cols: g.cols, width: g.width + 3, offset: 1, seed: 6)
        let xc = x.contiguous, n = g.rows * g.cols
        for step in [ElementwiseStep(.gelu), ElementwiseStep(.sigmoid), ElementwiseStep(.clamp, -1, 2)] {
            var out = View(rows: g.rows, cols: g.cols, width: g.width + 7, offset: 2, seed: 0, fill: 42)
            try x.buf.withUnsafeBufferPointer { xp in
                try out.buf.withUnsafeMutableBufferPointer { op in
                    try RawOps.apply(step, input: xp.baseAddress! + g.offset, inputStride: g.width, output: op.baseAddress! + 2,
                                     outputStride: g.width + 7, rows: g.rows, cols: g.cols, runtime: Self.rt)
                }
            }
            var want = [Float](repeating: 0, count: n)
            try RawOps.apply(step, input: xc, output: &want, count: n)
            #expect(out.contiguous.map(\.bitPattern) == want.map(\.bitPattern), "\(step)")
            #expect(out.buf.enumerated().allSatisfy { i, v in (i % out.width - 2 >= 0 && i % out.width - 2 < g.cols) || v == 42 })
            // backward from the saved tensor the op reads
            let saved = step.op.saved == .output ? want : xc
            var dx = View(rows: g.rows, cols: g.cols, width: g.width + 1, offset: 0, seed: 0, fill: 42)
            let savedView = step.op.saved == .output ? (ptr: want, stride: g.cols) : (ptr: x.buf, stride: g.width)
            try dy.buf.withUnsafeBufferPointer { dp in
                try savedView.ptr.withUnsafeBufferPointer { sp in
                    try dx.buf.withUnsafeMutableBufferPointer { xp in
                        let base = step.op.saved == .output ? sp.baseAddress! : sp.baseAddress! + g.offset
                        try RawOps.backward(step, input: step.op.saved == .output ? nil : base, inputStride: savedView.stride,
                                            output: step.op.saved == .output ? base : nil, outputStride: savedView.stride,
                                            gradOutput: dp.baseAddress! + 1, gradOutputStride: g.width + 3,
                                            gradInput: xp.baseAddress!, gradInputStride: g.width + 1, rows: g.rows, cols: g.cols,
                                            runtime: Self.rt)
                    }
                }
            }
            var wantDx = [Float](repeating: 0, count: n)
            try RawOps.backward(step, input: step.op.saved == .output ? nil : saved, output: step.op.saved == .output ? saved : nil,
                                gradOutput: dy.contiguous, gradInput: &wantDx, count: n)
            #expect(dx.contiguous.map(\.bitPattern) == wantDx.map(\.bitPattern), "\(step) backward")
        }
        for log in [false, true] {
            var out = View(rows: g.rows, cols: g.cols, width: g.width + 7, offset: 2, seed: 0, fill: 42)
            try x.buf.withUnsafeBufferPointer { xp in
                try out.buf.withUnsafeMutableBufferPointer { op in
                    try RawOps.softmax(input: xp.baseAddress! + g.offset, inputStride: g.width, output: op.baseAddress! + 2,
                                       outputStride: g.width + 7, rows: g.rows, cols: g.cols, log: log, runtime: Self.rt)
                }
            }
            let want = log ? try LogSoftmax().forward(Tensor(shape: [g.rows, g.cols], scalars: xc), runtime: Self.rt)
                : try Softmax().forward(Tensor(shape: [g.rows, g.cols], scalars: xc), runtime: Self.rt)
            #expect(out.contiguous.map(\.bitPattern) == want.scalars.map(\.bitPattern), "log \(log)")
            #expect(out.buf.enumerated().allSatisfy { i, v in (i % out.width - 2 >= 0 && i % out.width - 2 < g.cols) || v == 42 })
            // backward from that output
            var dx = View(rows: g.rows, cols: g.cols, width: g.width + 1, offset: 0, seed: 0, fill: 42)
            try out.buf.withUnsafeBufferPointer { op in
                try dy.buf.withUnsafeBufferPointer { dp in
                    try dx.buf.withUnsafeMutableBufferPointer { xp in
                        try RawOps.softmaxBackward(output: op.baseAddress! + 2, outputStride: g.width + 7, gradOutput: dp.baseAddress! + 1,
                                                   gradOutputStride: g.width + 3, gradInput: xp.baseAddress!, gradInputStride: g.width + 1,
                                                   rows: g.rows, cols: g.cols, log: log, runtime: Self.rt)
                    }
                }
            }
            var wantDx = [Float](repeating: 0, count: n)
            try RawOps.softmaxBackward(output: want.scalars, gradOutput: dy.contiguous, gradInput: &wantDx, shape: [g.rows, g.cols],
                                       log: log, runtime: Self.rt)
            #expect(dx.contiguous.map(\.bitPattern) == wantDx.map(\.bitPattern), "log \(log) backward")
        }
    }

    @Test func aliasingAndStrideRules() throws {
        var buf = (0..<400).map { Float($0 % 17) - 8 }
        try buf.withUnsafeMutableBufferPointer { b in
            let p = b.baseAddress!
            // interleaved views of one buffer (x[:, :10] into x[:, 10:20]): disjoint, allowed
            try RawOps.apply(.unary(.relu), input: p, inputStride: 20, output: p + 10, outputStride: 20, rows: 10, cols: 10)
            // the same view in place: allowed
            try RawOps.apply(.unary(.tanh), input: p, inputStride: 20, output: p, outputStride: 20, rows: 10, cols: 10)
            #expect(throws: TesseraError.overlappingBuffers("input and output")) {
                try RawOps.apply(.unary(.relu), input: p, inputStride: 20, output: p + 5, outputStride: 20, rows: 10, cols: 10)
            }
            #expect(throws: TesseraError.overlappingBuffers("input and output")) {
                try RawOps.apply(.unary(.relu), input: p, inputStride: 20, output: p + 150, outputStride: 10, rows: 10, cols: 10)
            }
            #expect(throws: TesseraError.invalidArgument("output stride 5 is smaller than the row length 10")) {
                try RawOps.apply(.unary(.relu), input: p, inputStride: 20, output: p + 200, outputStride: 5, rows: 10, cols: 10)
            }
            #expect(throws: TesseraError.overlappingBuffers("gradOutput and gradInput")) {
                try RawOps.softmaxBackward(output: p + 300, outputStride: 10, gradOutput: p, gradOutputStride: 20,
                                           gradInput: p + 1, gradInputStride: 20, rows: 5, cols: 10)
            }
            #expect(throws: TesseraError.nullPointer("input")) {
                try RawOps.softmax(input: nil, inputStride: 10, output: p, outputStride: 10, rows: 2, cols: 10)
            }
            try RawOps.softmax(input: nil, inputStride: 10, output: nil, outputStride: 10, rows: 0, cols: 10) // empty: fine
        }
    }
}
