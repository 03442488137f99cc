/// A raw pointer that crosses into `concurrentPerform` workers.
///
/// Invariant (what makes the `@unchecked Sendable` sound): the memory outlives the parallel
/// call that uses it, and workers write only to disjoint ranges (distinct tiles), never to a
/// range another worker reads during the same call.
package struct SendablePointer<T>: @unchecked Sendable {
    package let base: UnsafeMutablePointer<T>
    @inlinable package init(_ base: UnsafeMutablePointer<T>) { self.base = base }
    @inlinable package init(_ base: UnsafePointer<T>) { self.base = UnsafeMutablePointer(mutating: base) }
    @inlinable package subscript(offset: Int) -> UnsafeMutablePointer<T> { base + offset }
}
