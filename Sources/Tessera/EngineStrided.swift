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
        var job = StridedJob(step: step, table: table, saved: x, savedStride: xStride, dy: nil, dyStride: 0, out: y,
                             outStride: yStride, cols: cols)
        withUnsafePointer(to: &job) { runtime.run(plan, raw: StridedJob.forward, context: $0) }
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
        var job = StridedJob(step: step, table: table, saved: saved, savedStride: savedStride, dy: dy, dyStride: dyStride, out: dx,
                             outStride: dxStride, cols: cols)
        withUnsafePointer(to: &job) { runtime.run(plan, raw: StridedJob.backward, context: $0) }
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

/// Rows of a 2-D strided element-wise forward (saved = x, out = y) or backward (saved, dy, out =
/// dx), as a raw tile body's context (no closure: a repeated call allocates nothing).
struct StridedJob {
    var step: ElementwiseStep
    var table: KernelTable
    var saved: UnsafePointer<Float>?, savedStride: Int
    var dy: UnsafePointer<Float>?, dyStride: Int
    var out: UnsafeMutablePointer<Float>, outStride: Int
    var cols: Int

    static let forward: RawTileBody = { context, first, count, _ in
        let j = context!.assumingMemoryBound(to: StridedJob.self).pointee
        for r in first..<first + count { j.step.apply(j.table, j.saved! + r * j.savedStride, j.out + r * j.outStride, j.cols, streaming: false) }
    }
    static let backward: RawTileBody = { context, first, count, _ in
        let j = context!.assumingMemoryBound(to: StridedJob.self).pointee
        for r in first..<first + count {
            j.step.applyBackward(j.table, saved: j.saved.map { $0 + r * j.savedStride }, j.dy! + r * j.dyStride,
                                 j.out + r * j.outStride, j.cols, streaming: false)
        }
    }
}
