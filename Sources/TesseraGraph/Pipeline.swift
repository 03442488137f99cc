import TesseraKernels

/// One node of a pipeline, as the user wrote it (before fusion).
public enum PipelineNode: Sendable, Hashable, CustomStringConvertible {
    case step(ElementwiseStep)
    /// softmax (or log_softmax) along `dim` (negative counts from the end)
    case softmax(dim: Int, log: Bool)
    /// a view change: ends a fused group (the data's layout may change meaning)
    case reshape([Int])
    /// the value at this point is wanted by the caller under `name`: it is materialised, so
    /// the group before it ends here
    case output(String)

    public var description: String {
        switch self {
        case .step(let s): s.description
        case .softmax(let d, let log): "\(log ? "log_softmax" : "softmax")(dim: \(d))"
        case .reshape(let s): "reshape(\(s))"
        case .output(let n): "output(\"\(n)\")"
        }
    }
}

/// Anything that can appear in a `Pipeline { ... }` builder.
public protocol PipelineComponent: Sendable {
    var pipelineNodes: [PipelineNode] { get }
}

extension PipelineNode: PipelineComponent {
    public var pipelineNodes: [PipelineNode] { [self] }
}

/// The algorithm: what is computed, in order, with no word on scheduling.
public struct Pipeline: Sendable, Hashable, PipelineComponent, CustomStringConvertible {
    public var nodes: [PipelineNode]

    public init(nodes: [PipelineNode]) { self.nodes = nodes }
    public init(@PipelineBuilder _ build: () -> [PipelineNode]) { nodes = build() }

    public var pipelineNodes: [PipelineNode] { nodes }
    public var description: String { nodes.map(\.description).joined(separator: " -> ") }
}

@resultBuilder
public enum PipelineBuilder {
    public static func buildExpression(_ c: any PipelineComponent) -> [PipelineNode] { c.pipelineNodes }
    public static func buildBlock(_ parts: [PipelineNode]...) -> [PipelineNode] { parts.flatMap { $0 } }
    public static func buildOptional(_ part: [PipelineNode]?) -> [PipelineNode] { part ?? [] }
    public static func buildEither(first: [PipelineNode]) -> [PipelineNode] { first }
    public static func buildEither(second: [PipelineNode]) -> [PipelineNode] { second }
    public static func buildArray(_ parts: [[PipelineNode]]) -> [PipelineNode] { parts.flatMap { $0 } }
}
