// 2-D strided views on caller memory: `rows` rows of `cols` floats, row r of a view at
// base + r * stride (strides in floats, >= cols), as framework tensors like x[:, :k] are.
// Element-wise ops and the last-dim softmax, forward and backward, with the same bits as the
// contiguous calls.  Aliasing: an output may be exactly its input view (same base and stride)
// where the contiguous call allows it; any other overlap is an error.  Views with equal strides
// are checked exactly (interleaved views of one buffer are fine); views with different strides
// must not share a span (a conservative check).
extension RawOps {
    /// `output = step(input)` over two strided views.
    public static func apply(_ step: ElementwiseStep, input: UnsafePointer<Float>?, inputStride: Int,
                             output: UnsafeMutablePointer<Float>?, outputStride: Int, rows: Int, cols: Int,
                             runtime: Runtime = .default) throws {
        try step.validate()
        let v = [StridedView("input", input, inputStride), StridedView("output", output, outputStride)]
        guard try checkStrided(rows: rows, cols: cols, v) else { return }
        try v[1].checkApart(from: v[0], rows: rows, cols: cols, identicalAllowed: true)
        Engine.elementwiseStrided(step, x: input!, xStride: inputStride, y: output!, yStride: outputStride,
                                  rows: rows, cols: cols, runtime: runtime)
    }

    /// The backward over strided views, from the saved tensor the op reads (`step.op.saved`).
    public static func backward(_ step: ElementwiseStep, input: UnsafePointer<Float>? = nil, inputStride: Int = 0,
                                output: UnsafePointer<Float>? = nil, outputStride: Int = 0,
                                gradOutput: UnsafePointer<Float>?, gradOutputStride: Int,
                                gradInput: UnsafeMutablePointer<Float>?, gradInputStride: Int, rows: Int, cols: Int,
                                runtime: Runtime = .default) throws {
        try step.validate()
        let g = [StridedView("gradOutput", gradOutput, gradOutputStride), StridedView("gradInput", gradInput, gradInputStride)]
        guard try checkStrided(rows: rows, cols: cols, g) else { return }
        try g[1].checkApart(from: g[0], rows: rows, cols: cols, identicalAllowed: true)
        let picked = try step.op.saved.pick(input: input.map { ($0, inputStride, "input") },
                                            output: output.map { ($0, outputStride, "output") }, op: step.op)
        var saved: StridedView?
        if let (p, s, name) = picked {
            saved = StridedView(name, p, s)
            _ = try checkStrided(rows: rows, cols: cols, [saved!])
            try g[1].checkApart(from: saved!, rows: rows, cols: cols, identicalAllowed: false)
        }
        Engine.elementwiseBackwardStrided(step, saved: picked?.0, savedStride: picked?.1 ?? cols, dy: gradOutput!,
                                          dyStride: gradOutputStride, dx: gradInput!, dxStride: gradInputStride,
                                          rows: rows, cols: cols, runtime: runtime)
    }

    /// Softmax (or log-softmax) of each row of a strided view into another.
    public static func softmax(input: UnsafePointer<Float>?, inputStride: Int, output: UnsafeMutablePointer<Float>?,
                               outputStride: Int, rows: Int, cols: Int, log: Bool = false,
                               runtime: Runtime = .default) throws {
        let v = [StridedView("input", input, inputStride), StridedView("output", output, outputStride)]
        guard try checkStrided(rows: rows, cols: cols, v) else { return }
        try v[1].checkApart(from: v[0], rows: rows, cols: cols, identicalAllowed: true)
        Engine.softmaxStrided(x: input!, xStride: inputStride, y: output!, yStride: outputStride, rows: rows, cols: cols,
                              log: log, runtime: runtime)
    }

    /// Softmax (or log-softmax) backward of each row from the forward's output, strided views.
    public static func softmaxBackward(output: UnsafePointer<Float>?, outputStride: Int, gradOutput: UnsafePointer<Float>?,
                                       gradOutputStride: Int, gradInput: UnsafeMutablePointer<Float>?, gradInputStride: Int,
                                       rows: Int, cols: Int, log: Bool = false, runtime: Runtime = .default) throws {
        let v = [StridedView("output", output, outputStride), StridedView("gradOutput", gradOutput, gradOutputStride),
                 StridedView("gradInput", gradInput, gradInputStride)]
        guard try checkStrided(rows: rows, cols: cols, v) else { return }
        try v[2].checkApart(from: v[1], rows: rows, cols: cols, identicalAllowed: true)
        try v[2].checkApart(from: v[0], rows: rows, cols: cols, identicalAllowed: false)
        Engine.softmaxBackward(y: output!, dy: gradOutput!, dx: gradInput!, shape: [rows, cols], dim: 1, log: log,
                               runtime: runtime, strides: (outputStride, gradOutputStride, gradInputStride))
    }

    /// Validates the geometry and the views' strides; false when there is nothing to do.
    static func checkStrided(rows: Int, cols: Int, _ views: [StridedView]) throws -> Bool {
        guard rows >= 0, cols >= 0 else { throw TesseraError.invalidArgument("rows and cols must be >= 0, got \(rows) x \(cols)") }
        for v in views {
            guard v.stride >= cols else {
                throw TesseraError.invalidArgument("\(v.name) stride \(v.stride) is smaller than the row length \(cols)")
            }
            let (span, o1) = max(rows - 1, 0).multipliedReportingOverflow(by: v.stride)
            guard !o1, span <= Int.max / 8 - cols else { throw TesseraError.invalidArgument("\(v.name): \(rows) rows of stride \(v.stride) is too large") }
        }
        if rows == 0 || cols == 0 { return false }
        for v in views where v.base == 0 { throw TesseraError.nullPointer(v.name) }
        return true
    }
}

/// One strided view's name (for messages), address and row stride in floats.
struct StridedView {
    let name: String
    let base: UInt
    let stride: Int

    init(_ name: String, _ p: UnsafeRawPointer?, _ stride: Int) {
        self.name = name
        base = UInt(bitPattern: p)
        self.stride = stride
    }
    init(_ name: String, _ p: UnsafePointer<Float>?, _ stride: Int) { self.init(name, UnsafeRawPointer(p), stride) }
    init(_ name: String, _ p: UnsafeMutablePointer<Float>?, _ stride: Int) { self.init(name, UnsafeRawPointer(p), stride) }

    /// Throws unless the views share no float (or are the same view, where that is allowed).
    func checkApart(from other: StridedView, rows: Int, cols: Int, identicalAllowed: Bool) throws {
        if identicalAllowed && base == other.base && stride == other.stride { return }
        if overlaps(other, rows: rows, cols: cols) { throw TesseraError.overlappingBuffers("\(other.name) and \(name)") }
    }

    func overlaps(_ o: StridedView, rows: Int, cols: Int) -> Bool {
        let c = cols * 4
        let endA = base + UInt(((rows - 1) * stride) * 4 + c), endB = o.base + UInt(((rows - 1) * o.stride) * 4 + c)
        if endA <= o.base || endB <= base { return false } // spans apart
        if stride != o.stride { return true }              // conservative for different strides
        // equal strides s: row i of self and row j of o overlap iff |d - k s| < c, k = i - j
        let s = stride * 4, d = Int(bitPattern: o.base &- base)
        let floorK = d >= 0 ? d / s : -((-d + s - 1) / s)
        for k in [floorK, floorK + 1] {
            let kk = Swift.min(Swift.max(k, -(rows - 1)), rows - 1)
            if abs(d - kk * s) < c { return true }
        }
        return false
    }
}
