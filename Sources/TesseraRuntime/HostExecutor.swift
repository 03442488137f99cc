import CTesseraSystem

/// The embedding framework's thread pool, which runs Tessera's parallel calls instead of
/// Tessera's own workers, so that the two do not oversubscribe the machine.  The shape of
/// pthreadpool's executor, oneDNN's `threadpool_iface` and Halide's `do_par_for`.
///
/// Contract: `parallelFor(n, task)` runs `task(i)` for the indices `0..<n` it chooses, on any
/// threads (the calling one included), and returns only after every task it started has
/// returned.  Tessera's tasks are workers that claim tiles until none are left, so a pool that
/// runs fewer than `n` of them loses parallelism, never work; one that runs none gets the call
/// finished on the calling thread after `parallelFor` returns.  A pool that returns while a
/// task still runs breaks the contract (the task would touch freed memory); one that never
/// returns hangs the call -- Tessera cannot tell a slow pool from a stuck one.
public protocol HostExecutor: AnyObject, Sendable {
    /// Worker tasks a parallel call is split into (1...`Runtime.maxThreads`), read when a
    /// `Runtime` is made with this executor.
    var threadCount: Int { get }
    /// Runs `task(i)` for `i` in `0..<n` (see the contract above).
    func parallelFor(_ n: Int, _ task: @Sendable (Int) -> Void)
    /// Whether the calling thread is inside this pool's own parallel region: a Tessera call
    /// made there runs inline instead of nesting (default: false).
    var isInParallelRegion: Bool { get }
}

extension HostExecutor {
    public var isInParallelRegion: Bool { false }
}

extension Runtime {
    /// Whether the calling thread is running Tessera tiles (a worker of any executor, or the
    /// caller of an inline call): a Tessera call made there runs inline, on that thread,
    /// instead of starting a nested parallel region.  A thread-local depth, kept in C.
    public static var isRunningTiles: Bool { ts_tile_depth() > 0 }

    /// Whether a call made now must run inline: from inside Tessera's tiles, or inside the
    /// host executor's own parallel region.
    @inline(__always) var nestedHere: Bool {
        ts_tile_depth() > 0 || (host?.isInParallelRegion ?? false)
    }
}
