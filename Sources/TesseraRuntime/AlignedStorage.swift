import Foundation
import Synchronization

private let allocatedBytes = Atomic<Int>(0)
private let allocations = Atomic<Int>(0)

/// 64-byte aligned Float storage, owned by the runtime layer so it can be placed on NUMA
/// nodes.  Reference type: tensors share it copy-on-write.
public final class AlignedStorage: @unchecked Sendable {
    // @unchecked: the pointer is owned for the object's lifetime; callers that mutate it
    // ensure uniqueness (Tensor does copy-on-write) or write disjoint ranges.
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int
    public static let alignment = 64

    /// Uninitialised storage for `count` floats.  Page-aligned when at least a page, so that
    /// NUMA binding and first touch work per page.
    public init(count: Int) {
        precondition(count >= 0)
        self.count = count
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        let align = bytes >= 4096 ? 4096 : AlignedStorage.alignment
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, align, bytes) == 0, let raw else {
            fatalError("Tessera: out of memory allocating \(bytes) bytes")
        }
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        allocatedBytes.add(bytes, ordering: .relaxed)
        allocations.add(1, ordering: .relaxed)
    }

    /// Tensor storage allocated so far in this process (bytes, count): lets tests check that
    /// a fused pipeline allocates no intermediate tensors.
    public static var allocationStatistics: (bytes: Int, count: Int) {
        (allocatedBytes.load(ordering: .relaxed), allocations.load(ordering: .relaxed))
    }

    deinit { free(pointer) }

    public var buffer: UnsafeMutableBufferPointer<Float> { .init(start: pointer, count: count) }
}
