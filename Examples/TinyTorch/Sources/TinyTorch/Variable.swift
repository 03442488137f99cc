import Tessera

/// A value in the graph: a Tessera `Tensor`, its gradient after `backward()`, and how to pass a
/// gradient on to the values it was computed from (the tape).
public final class Variable {
    public let value: Tensor
    public private(set) var grad: Tensor?
    let parents: [Variable]
    /// Given this value's gradient, the gradients of `parents` (in order).
    let pullback: ((Tensor) throws -> [Tensor])?

    public init(_ value: Tensor) {
        self.value = value
        parents = []
        pullback = nil
    }

    init(_ value: Tensor, parents: [Variable], pullback: @escaping (Tensor) throws -> [Tensor]) {
        self.value = value
        self.parents = parents
        self.pullback = pullback
    }

    public var shape: [Int] { value.shape }

    /// Back-propagates from this scalar (a loss): every value it depends on gets its `grad`.
    public func backward() throws {
        // reverse topological order: a value's gradient is complete before it is passed on
        var order: [Variable] = [], seen = Set<ObjectIdentifier>()
        func visit(_ v: Variable) {
            guard seen.insert(ObjectIdentifier(v)).inserted else { return }
            v.parents.forEach(visit)
            order.append(v)
        }
        visit(self)
        for v in order { v.grad = nil }
        grad = try Tensor(shape: value.shape, repeating: 1)
        for v in order.reversed() {
            guard let g = v.grad, let pullback = v.pullback else { continue }
            for (p, pg) in zip(v.parents, try pullback(g)) { try p.accumulate(pg) }
        }
    }

    func accumulate(_ g: Tensor) throws {
        guard let old = grad else { grad = g; return }
        grad = try Tensor(shape: g.shape, scalars: zip(old.scalars, g.scalars).map(+))
    }

    /// Gradient descent on a parameter: value -= rate * grad (a new tensor: values are immutable).
    func descended(rate: Float) throws -> Tensor {
        guard let g = grad else { return value }
        return try Tensor(shape: value.shape, scalars: zip(value.scalars, g.scalars).map { $0 - rate * $1 })
    }
}
