import CTesseraSystem
import Foundation
import Synchronization

/// Counts tensor storage allocated by the task that installed it (see
/// `AlignedStorage.$allocations`): lets tests check that a fused pipeline allocates no
/// intermediate tensors, unaffected by other tests running at the same time.
package final class AllocationCounter: Sendable {
    let byteCount = Atomic<Int>(0)
    let allocationCount = Atomic<Int>(0)
    package init() {}
    package var bytes: Int { byteCount.load(ordering: .relaxed) }
    package var count: Int { allocationCount.load(ordering: .relaxed) }
}

/// 64-byte aligned Float storage, owned by the runtime layer so it can be placed on NUMA
/// nodes.  Reference type: tensors share it copy-on-write.
package final class AlignedStorage: @unchecked Sendable {
    // @unchecked: the pointer is owned for the object's lifetime; callers that mutate it
    // ensure uniqueness (Tensor does copy-on-write) or write disjoint ranges.
    package let pointer: UnsafeMutablePointer<Float>
    package let count: Int
    package static let alignment = 64

    /// Uninitialised storage for `count` floats.  Page-aligned when at least a page, so that
    /// NUMA binding and first touch work per page; from 2 MiB on, aligned to 2 MiB and marked
    /// for transparent huge pages (fewer TLB misses: strided softmax along dim 0 of a
    /// 4096x4096 tensor touches 4096 pages per pass), before anything touches it.
    package init(count: Int) {
        precondition(count >= 0)
        self.count = count
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        let huge = 2 << 20
        let align = bytes >= huge ? huge : bytes >= 4096 ? 4096 : AlignedStorage.alignment
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, align, bytes) == 0, let raw else {
            fatalError("Tessera: out of memory allocating \(bytes) bytes")
        }
        if bytes >= huge { _ = ts_advise_hugepages(raw, bytes) }
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        if let counter = AlignedStorage.allocations {
            counter.byteCount.add(count * MemoryLayout<Float>.stride, ordering: .relaxed)
            counter.allocationCount.add(1, ordering: .relaxed)
        }
    }

    /// The counter allocations made by the current task are added to, if any.
    @TaskLocal package static var allocations: AllocationCounter?

    deinit { free(pointer) }

    package var buffer: UnsafeMutableBufferPointer<Float> { .init(start: pointer, count: count) }
}
