import TesseraKernels
import TesseraRuntime

// Strategy: 2-D strided views (rows x cols, each view with its own row stride, in floats):
// element-wise ops row by row in tiles of whole rows, and the last-dim softmax with the row
// strategy's kernels (so a strided call gives the contiguous call's bits).  Contiguous views
// take the contiguous paths.
extension Engine {
    static func elementwiseStrided(_ step: ElementwiseStep, x: UnsafePointer<Float>, xStride: Int,
                                   y: UnsafeMutablePointer<Float>, yStride: Int, rows: Int, cols: Int,
                                   runtime: Runtime, table: KernelTable = .best) {
        guard rows > 0, cols > 0 else { return }
        if (xStride == cols && yStride == cols) || rows == 1 {
            return elementwise(step, x: x, y: y, count: rows * cols, runtime: runtime, table: table)
        }
        let plan = runtime.plan(units: rows, bytesPerUnit: cols * 4, nsPerUnit: Double(cols) * step.nsPerElement)
        let xs = SendablePointer(x), ys = SendablePointer(y)
        runtime.run(plan) { ctx in
            for r in ctx.range { step.apply(table, xs[r * xStride], ys[r * yStride], cols, streaming: false) }
        }
    }

    static func elementwiseBackwardStrided(_ step: ElementwiseStep, saved: UnsafePointer<Float>?, savedStride: Int,
                                           dy: UnsafePointer<Float>, dyStride: Int, dx: UnsafeMutablePointer<Float>,
                                           dxStride: Int, rows: Int, cols: Int, runtime: Runtime,
                                           table: KernelTable = .best) {
        guard rows > 0, cols > 0 else { return }
        if ((saved == nil || savedStride == cols) && dyStride == cols && dxStride == cols) || rows == 1 {
            return elementwiseBackward(step, saved: saved, dy: dy, dx: dx, count: rows * cols, runtime: runtime, table: table)
        }
        let plan = runtime.plan(units: rows, bytesPerUnit: cols * 8, nsPerUnit: Double(cols) * step.nsPerElement * 1.5)
        let ss = saved.map { SendablePointer($0) }, dys = SendablePointer(dy), dxs = SendablePointer(dx)
        runtime.run(plan) { ctx in
            for r in ctx.range {
                step.applyBackward(table, saved: ss.map { UnsafePointer($0[r * savedStride]) }, UnsafePointer(dys[r * dyStride]),
                                   dxs[r * dxStride], cols, streaming: false)
            }
        }
    }

    static func softmaxStrided(x: UnsafePointer<Float>, xStride: Int, y: UnsafeMutablePointer<Float>, yStride: Int,
                               rows: Int, cols: Int, log: Bool, runtime: Runtime, table: KernelTable = .best) {
        guard rows > 0, cols > 0 else { return }
        if case .split(let chunk) = rowStrategy(rows: rows, length: cols, runtime: runtime) {
            // long rows: each row is contiguous on its own, and split across workers as usual
            for r in 0..<rows {
                softmaxSplitRows(x: x + r * xStride, y: y + r * yStride, rows: 1, length: cols, chunk: chunk, log: log,
                                 prologue: [], runtime: runtime, table: table)
            }
            return
        }
        softmaxRows(x: x, y: y, rows: rows, length: cols, log: log, prologue: [], runtime: runtime, table: table,
                    xStride: xStride, yStride: yStride)
    }
}
