import CTesseraKernels
import Foundation
import TesseraGraph
import TesseraKernels
import TesseraRuntime

/// Where the algorithm (a program's stages) meets the schedule (tile plans): each strategy binds
/// a stage to its kernels, plans its tiles with the runtime, hands the runtime a tile body and
/// says in words what runs.  All inputs are validated before this point.
///
/// The strategies, one file each:
/// - `EngineElementwise.swift`: a group of element-wise steps, fused in registers or over L1
///   blocks, one sweep over memory (`FusedExecution`).
/// - `EngineRows.swift`: a last-dim softmax of rows up to `splitChunk`: whole rows per tile.
/// - `EngineSplitRows.swift`: a last-dim softmax of longer rows: rows split in chunks across
///   workers, two dependent passes run as runtime steps (`Runtime.runSteps`).
/// - `EngineColumns.swift`: softmax along a non-last dim: slabs of contiguous columns,
///   vectorised across columns, no transpose.
enum Engine {
    /// Whether `bytes` of output written under `plan` get streaming stores (see CacheModel).
    static func streams(_ runtime: Runtime, bytes: Int, plan: TilePlan) -> Bool {
        runtime.streams(outputBytes: bytes, workers: plan.inline ? 1 : plan.workers)
    }

    /// The same for a call that has no plan yet: one worker when it runs inline.
    static func streams(_ runtime: Runtime, bytes: Int, inline: Bool) -> Bool {
        runtime.streams(outputBytes: bytes, workers: inline ? 1 : runtime.threads)
    }

    /// Softmax / log_softmax of a contiguous tensor along `dim` (already normalised),
    /// with an element-wise `prologue` folded into its first read.
    static func softmax(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, shape: [Int], dim: Int,
                        log: Bool, prologue: [ElementwiseStep] = [], runtime: Runtime, table: KernelTable = .best) {
        let count = shape.reduce(1, *)
        guard count > 0 else { return }
        let (outer, D, inner) = softmaxGeometry(shape, dim)
        if inner > 1 {
            softmaxColumns(x: x, y: y, outer: outer, D: D, inner: inner, log: log, prologue: prologue,
                           runtime: runtime, table: table)
        } else if case .split(let chunk) = rowStrategy(rows: outer, length: D, runtime: runtime) {
            softmaxSplitRows(x: x, y: y, rows: outer, length: D, chunk: chunk, log: log, prologue: prologue,
                             runtime: runtime, table: table)
        } else {
            softmaxRows(x: x, y: y, rows: outer, length: D, log: log, prologue: prologue, runtime: runtime, table: table)
        }
    }

    /// [outer, D, inner] of a softmax along `dim` of `shape`.
    static func softmaxGeometry(_ shape: [Int], _ dim: Int) -> (outer: Int, D: Int, inner: Int) {
        let dims = shape.isEmpty ? [1] : shape
        return (dims[..<dim].reduce(1, *), dims[dim], dims[(dim + 1)...].reduce(1, *))
    }

    /// Runs one stage of a validated program from x into y (x == y allowed, then in place);
    /// returns the shape after it.  The one interpreter of stages: `Pipeline.run` (tensors),
    /// `RawOps.run` and the C ABI's pipelines all go through it.
    static func run(_ stage: Stage, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, shape: [Int],
                    runtime: Runtime, execution: FusedExecution) throws -> [Int] {
        switch stage {
        case .reshape(let s):
            if x != UnsafePointer(y) { y.update(from: x, count: shape.reduce(1, *)) }
            return s
        case .elementwise(let steps):
            elementwise(steps, x: x, y: y, count: shape.reduce(1, *), runtime: runtime, execution: execution)
        case .softmax(let pro, let dim, let log):
            softmax(x: x, y: y, shape: shape, dim: try normalizedDim(dim, rank: shape.count), log: log,
                    prologue: pro, runtime: runtime)
        }
        return shape
    }

    /// Runs a validated program without named outputs on caller memory: the first stage reads
    /// x, every later one works in place on y.
    static func run(_ program: Program, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, shape: [Int],
                    runtime: Runtime, execution: FusedExecution) throws {
        var src = x, shape = shape
        for stage in program.stages {
            if case .reshape(let s) = stage {
                shape = s // the same memory, another shape: nothing moves
                continue
            }
            shape = try run(stage, x: src, y: y, shape: shape, runtime: runtime, execution: execution)
            src = UnsafePointer(y)
        }
        if src != UnsafePointer(y) { y.update(from: src, count: shape.reduce(1, *)) }
    }

    /// The schedule of one stage on `shape`, in words (Halide's print_loop_nest): each strategy
    /// describes the plan it runs.
    static func describe(_ stage: Stage, shape: [Int], runtime: Runtime) -> String {
        switch stage {
        case .reshape(let s):
            return "reshape to \(s): no memory touched\n"
        case .elementwise(let steps):
            return describeElementwise(steps, count: shape.reduce(1, *), runtime: runtime)
        case .softmax(let pro, let dim, let log):
            let d = (try? normalizedDim(dim, rank: shape.count)) ?? 0
            let (outer, D, inner) = softmaxGeometry(shape, d)
            let name = (log ? "log_softmax" : "softmax") + (pro.isEmpty ? "" : " (prologue applied in the first read)")
            if inner > 1 {
                return describeColumns(name, dim: d, outer: outer, D: D, inner: inner, log: log, prologue: !pro.isEmpty,
                                       runtime: runtime)
            }
            if case .split(let chunk) = rowStrategy(rows: outer, length: D, runtime: runtime) {
                return describeSplitRows(name, rows: outer, length: D, chunk: chunk, runtime: runtime)
            }
            return describeRows(name, rows: outer, length: D, runtime: runtime)
        }
    }
}
