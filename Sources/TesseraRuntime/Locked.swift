import Foundation

/// A value behind a lock, for the runtime's per-call caches (plans, call states).
///
/// Why not `Synchronization.Mutex`: ThreadSanitizer on Linux does not see the ordering of its
/// futex and reports races between `withLock` bodies (it did for both caches); `NSLock` is a
/// pthread mutex, which it does see.  Locking allocates nothing.
package final class Locked<Value>: @unchecked Sendable {
    // @unchecked: `value` is only read or written inside `withLock`, under `lock`.
    private let lock = NSLock()
    private var value: Value

    package init(_ value: Value) { self.value = value }

    package func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
