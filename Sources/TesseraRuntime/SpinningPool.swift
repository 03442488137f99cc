import CTesseraSystem
import Dispatch
import Foundation
import Synchronization

/// Persistent worker threads that spin briefly after each call before they sleep.
///
/// Why it exists (measured on the 2-vCPU VM this project is developed on): a
/// `concurrentPerform` call's second iteration starts a median 30-60 µs after the call
/// (libdispatch's parked worker sits on a vCPU that this guest halts when idle -- no halt
/// polling -- so the wake goes through the host; a plain semaphore
/// wakes a thread in ~7 µs, a spinning thread notices new work in ~0.4 µs).  At 2^20 elements
/// a call lasts 0.3-0.6 ms, so that late start costs 5-15% of the 2-worker speedup.  Threads
/// that keep spinning for `spinMicroseconds` after a call pick up the next call at once.
/// Selected with `Runtime(executor: .spinningPool)`; `concurrentPerform` stays the default.
final class SpinningPool: @unchecked Sendable {
    // @unchecked: `body` is written by the caller that won `busy`, before the store of `ticket`, and read by workers after their acquire load of it; the caller does
    // not return (so the closure stays alive) until `remaining` drops to zero.

    static let shared = SpinningPool()
    static let spinMicroseconds: UInt64 = 100

    /// (generation << 16) | participants of the current call
    private let ticket = Atomic<Int>(0)
    private let remaining = Atomic<Int>(0)
    private nonisolated(unsafe) var body: ((Int) -> Void)?
    private nonisolated(unsafe) var sleepers: [Sleeper] = [] // appended under growLock
    private let growLock = Mutex(0) // started threads

    private final class Sleeper: @unchecked Sendable {
        // @unchecked: only atomics and a semaphore
        let asleep = Atomic<Bool>(false)
        let wake = DispatchSemaphore(value: 0)
    }

    /// Runs `body(i)` for i in 0..<n: index 0 on the caller, the rest on pool threads.
    /// Returns false (running nothing) when another call holds the pool; the caller then
    /// uses concurrentPerform instead.
    func run(_ n: Int, _ work: (Int) -> Void) -> Bool {
        precondition(n >= 1 && n < 1 << 16)
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        defer { busy.store(false, ordering: .releasing) }
        ensureThreads(n - 1)
        withoutActuallyEscaping(work) { w in
            body = w
            remaining.store(n - 1, ordering: .relaxed)
            let gen = (ticket.load(ordering: .relaxed) >> 16) + 1
            ticket.store(gen << 16 | n, ordering: .sequentiallyConsistent)
            let sl = growLock.withLock { _ in sleepers }
            for (i, s) in sl.enumerated() where i + 1 < n {
                if s.asleep.exchange(false, ordering: .sequentiallyConsistent) { s.wake.signal() }
            }
            w(0)
            while remaining.load(ordering: .acquiring) > 0 { spinPause() }
            body = nil
        }
        return true
    }

    private let busy = Atomic<Bool>(false)

    private func ensureThreads(_ k: Int) {
        growLock.withLock { started in
            while started < k {
                let index = started + 1
                let s = Sleeper()
                sleepers.append(s)
                let t = Thread { [unowned self] in self.workerLoop(index: index, sleeper: s) }
                t.name = "tessera-worker-\(index)"
                t.start()
                started += 1
            }
        }
    }

    private func workerLoop(index: Int, sleeper: Sleeper) {
        var seen = ticket.load(ordering: .acquiring) >> 16
        // Start one generation back so that the generation seen first is handled: if it is
        // the call this thread was started for, the thread takes part; if it is an earlier
        // call, that call had fewer participants than this thread's index (the pool only
        // grows when a call needs more threads than exist), so the thread just skips it.
        seen -= 1
        while true {
            var t = ticket.load(ordering: .acquiring)
            if t >> 16 == seen {
                let start = DispatchTime.now().uptimeNanoseconds
                var spins = 0
                while t >> 16 == seen {
                    spinPause()
                    spins += 1
                    if spins & 255 == 0 && DispatchTime.now().uptimeNanoseconds - start > SpinningPool.spinMicroseconds * 1000 {
                        sleeper.asleep.store(true, ordering: .sequentiallyConsistent)
                        t = ticket.load(ordering: .sequentiallyConsistent)
                        if t >> 16 != seen {
                            // work arrived meanwhile; if the caller already took the flag it will signal: consume it
                            if !sleeper.asleep.exchange(false, ordering: .sequentiallyConsistent) { sleeper.wake.wait() }
                            break
                        }
                        sleeper.wake.wait()
                        spins = 0
                    }
                    t = ticket.load(ordering: .acquiring)
                }
                t = ticket.load(ordering: .acquiring)
            }
            seen = t >> 16
            if index < t & 0xFFFF {
                body!(index)
                remaining.subtract(1, ordering: .releasing)
            }
        }
    }
}

@inline(__always) private func spinPause() {
    ts_cpu_relax() // PAUSE on x86, YIELD on arm64, nothing elsewhere
}
