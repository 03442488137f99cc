import Foundation

/// Memory a call needs only while it runs (a softmax's per-chunk maxima and sums, the exps a
/// split-row softmax keeps between its passes, a stepped call's counters): taken from a pool
/// and given back, so that a repeated call of the same shape allocates nothing.
final class WorkspacePool: Sendable {
    struct Buffer {
        var base: UnsafeMutableRawPointer
        var capacity: Int
    }
    private let buffers = Locked<[Buffer]>([])
    /// Buffers kept between calls; more are freed when given back.
    static let kept = 8

    init() { buffers.withLock { $0.reserveCapacity(WorkspacePool.kept) } }

    /// The smallest kept buffer of at least `bytes`, or a new one.
    func take(_ bytes: Int) -> Buffer {
        let reused = buffers.withLock { b -> Buffer? in
            var best: Int?
            for i in b.indices where b[i].capacity >= bytes && (best == nil || b[i].capacity < b[best!].capacity) { best = i }
            return best.map { b.remove(at: $0) }
        }
        if let reused { return reused }
        let capacity = max(4096, (bytes + 4095) & ~4095)
        return Buffer(base: .allocate(byteCount: capacity, alignment: 64), capacity: capacity)
    }

    /// Keeps `buffer` for a later call when it is at most `limit` bytes and the pool has room --
    /// at most `kept` buffers of at most 2 x `limit` bytes together (dropping its smallest buffer
    /// for a larger one) -- and frees it otherwise.
    func give(_ buffer: Buffer, limit: Int) {
        var free: Buffer? = buffer
        if buffer.capacity <= limit {
            buffers.withLock { b in
                let total = b.reduce(0) { $0 + $1.capacity }
                if b.count < WorkspacePool.kept && total + buffer.capacity <= 2 * limit {
                    b.append(buffer)
                    free = nil
                } else if let i = b.indices.min(by: { b[$0].capacity < b[$1].capacity }), b[i].capacity < buffer.capacity,
                          total - b[i].capacity + buffer.capacity <= 2 * limit {
                    free = b[i]
                    b[i] = buffer
                }
            }
        }
        free?.base.deallocate()
    }

    static let shared = WorkspacePool()
}

extension Runtime {
    /// The largest workspace kept between calls: the modelled LLC (a split-row softmax keeps two
    /// groups' exps, half of it), at least 8 MiB; larger ones are freed after the call, and the
    /// pool keeps at most twice this in all.
    package var workspaceKeptBytes: Int { max(8 << 20, cache.llcBytes) }

    /// Runs `body` with `bytes` of 64-byte-aligned, uninitialised memory that is valid until it
    /// returns.  Repeated calls reuse the same memory (see `WorkspacePool`).
    package func withWorkspace<R>(bytes: Int, _ body: (UnsafeMutableRawPointer) throws -> R) rethrows -> R {
        let buffer = WorkspacePool.shared.take(max(bytes, 1))
        defer { WorkspacePool.shared.give(buffer, limit: workspaceKeptBytes) }
        return try body(buffer.base)
    }
}

/// Carves consecutive, aligned arrays out of a workspace.
package struct WorkspaceLayout {
    package private(set) var bytes = 0

    package init() {}

    /// Reserves `count` values of `T` at the next 64-byte boundary; returns their offset.
    package mutating func reserve<T: ~Copyable>(_: T.Type, _ count: Int) -> Int {
        let offset = (bytes + 63) & ~63
        bytes = offset + max(count, 0) * MemoryLayout<T>.stride
        return offset
    }
}
