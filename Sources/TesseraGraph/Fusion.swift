import TesseraKernels

/// One sweep over memory after fusion.
public enum Stage: Sendable, Hashable, CustomStringConvertible {
    /// element-wise steps applied block by block while the block is in L1: one read, one write
    case elementwise([ElementwiseStep])
    /// softmax/log_softmax; `prologue` runs inside its first pass (no intermediate tensor)
    case softmax(prologue: [ElementwiseStep], dim: Int, log: Bool)
    /// metadata only: no memory is touched
    case reshape([Int])

    /// Reads + writes of the whole tensor this stage costs (reshape: none).
    public var sweeps: Int {
        if case .reshape = self { return 0 }
        return 1
    }

    public var description: String {
        switch self {
        case .elementwise(let steps):
            return "elementwise[\(steps.map(\.description).joined(separator: " -> "))]"
        case .softmax(let pro, let dim, let log):
            let name = log ? "log_softmax" : "softmax"
            return pro.isEmpty ? "\(name)(dim: \(dim))"
                : "\(name)(dim: \(dim)) with prologue[\(pro.map(\.description).joined(separator: " -> "))]"
        case .reshape(let s):
            return "reshape(\(s))"
        }
    }
}

/// The fused program: stages in order, and which stage results the caller asked to keep.
public struct Program: Sendable, Hashable, CustomStringConvertible {
    public var stages: [Stage]
    /// (name, index of the stage whose output it is); -1 = the input itself
    public var outputs: [(name: String, stage: Int)] { outputList.map { ($0.name, $0.stage) } }
    var outputList: [NamedOutput]

    struct NamedOutput: Sendable, Hashable {
        var name: String
        var stage: Int
    }

    /// Sweeps over memory the program makes (kernels launched, tinygrad's count).
    public var sweeps: Int { stages.reduce(0) { $0 + $1.sweeps } }

    /// Halide-style listing of what fused.
    public func explain() -> String {
        var s = "program: \(stages.count) stage(s), \(sweeps) sweep(s) over memory\n"
        for (i, st) in stages.enumerated() {
            s += "  stage \(i): \(st)\n"
            for o in outputList where o.stage == i { s += "    -> output \"\(o.name)\"\n" }
        }
        for o in outputList where o.stage < 0 { s += "  output \"\(o.name)\" = the input\n" }
        return s
    }

    public var description: String { explain() }
}

/// The fusion pass: a pure function from the user's node list to stages.
///
/// Rules: a maximal run of adjacent element-wise steps becomes one stage; a run directly
/// before a softmax becomes that softmax's prologue; a reshape, a requested output or a
/// softmax ends a run.
package enum FusionPass {
    package static func run(_ nodes: [PipelineNode]) -> Program {
        var stages: [Stage] = []
        var outs: [Program.NamedOutput] = []
        var pending: [ElementwiseStep] = []
        func flush() {
            if !pending.isEmpty { stages.append(.elementwise(pending)); pending = [] }
        }
        for node in nodes {
            switch node {
            case .step(let s):
                pending.append(s)
            case .softmax(let dim, let log):
                stages.append(.softmax(prologue: pending, dim: dim, log: log))
                pending = []
            case .reshape(let shape):
                flush()
                stages.append(.reshape(shape))
            case .output(let name):
                flush()
                outs.append(.init(name: name, stage: stages.count - 1))
            }
        }
        flush()
        return Program(stages: stages, outputList: outs)
    }

    /// The same nodes with no fusion: one stage per node (the reference fused runs must match).
    package static func unfused(_ nodes: [PipelineNode]) -> Program {
        var stages: [Stage] = []
        var outs: [Program.NamedOutput] = []
        for node in nodes {
            switch node {
            case .step(let s): stages.append(.elementwise([s]))
            case .softmax(let dim, let log): stages.append(.softmax(prologue: [], dim: dim, log: log))
            case .reshape(let shape): stages.append(.reshape(shape))
            case .output(let name): outs.append(.init(name: name, stage: stages.count - 1))
            }
        }
        return Program(stages: stages, outputList: outs)
    }
}
