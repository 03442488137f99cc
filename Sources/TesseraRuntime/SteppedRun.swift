import CTesseraSystem
import Foundation
import Synchronization

/// One tile of a stepped call (see `Runtime.runSteps`).
package struct StepTile: @unchecked Sendable {
    // @unchecked: `scratch` is this worker's private memory for the call.
    /// The step the tile belongs to, its block within the step, and its index in the block.
    package let step: Int, block: Int, index: Int
    package let worker: Int
    package let scratch: UnsafeMutableRawPointer?
}

extension Runtime {
    /// Blocks per step of a stepped call: one per core the call's workers run on at once.
    package var stepBlocks: Int { max(1, min(threads, Runtime.activeCores)) }

    /// A parallel call whose tiles run in dependent steps: a tile of step s starts only when
    /// every tile of step s - 1 is done and `finish(s - 1)` has run (on the worker that finished
    /// the step's last tile).  Each step's tiles are split into `stepBlocks` blocks,
    /// `tiles(step, block)` each; a worker takes its own block first -- the block of the CPU it
    /// runs on where there is one per core, so block b of every step runs on the same core and
    /// reads what that core wrote in the step before -- then helps with the others.  All steps
    /// run in one parallel call: one wake-up of the workers, not one per step.  Waiting happens
    /// only behind tiles already claimed by running workers, so a call whose workers all run on
    /// one thread still completes.
    ///
    /// Every step must have at least one tile.  `state` makes each worker's private state (kept across its tiles), `body` runs a tile.
    package func runSteps<State>(steps: Int, tiles: @Sendable (_ step: Int, _ block: Int) -> Int,
                                 bytesPerTile: Int, nsPerTile: Double, scratchBytes: Int = 0,
                                 state: @Sendable () -> State,
                                 body: @Sendable (inout State, StepTile) -> Void,
                                 finish: @Sendable (_ step: Int) -> Void) {
        let blocks = stepBlocks
        var ends = [0]
        for s in 0..<steps { ends.append(ends[s] + (0..<blocks).reduce(0) { $0 + tiles(s, $1) }) }
        let total = ends[steps]
        guard total > 0 else { return }
        // a step without tiles would never be finished (nothing counts up to its end)
        precondition((0..<steps).allSatisfy { ends[$0 + 1] > ends[$0] }, "runSteps: every step needs a tile")
        let bounds = ends
        let gate = StepGate(steps: steps, blocks: blocks)
        let slots = min(threads, total)
        let plan = self.plan(units: slots, bytesPerUnit: bytesPerTile, nsPerUnit: nsPerTile * Double(total) / Double(slots),
                             unitsPerTile: 1)
        run(plan, scratchBytes: scratchBytes) { ctx in
            let cpu = Int(ts_current_cpu())
            let lane = (blocks == Runtime.activeCores && cpu >= 0 ? cpu : ctx.worker) % blocks
            var local = state()
            for step in 0..<steps {
                for k in 0..<blocks {
                    let b = (lane + k) % blocks
                    let count = tiles(step, b)
                    while true {
                        let i = gate.claim(step: step, block: b)
                        if i >= count { break }
                        gate.waitUntilOpen(step)
                        body(&local, StepTile(step: step, block: b, index: i, worker: ctx.worker, scratch: ctx.scratch))
                        // tiles of step s + 1 wait for the opening, so the count reaches the end
                        // of step s only when every one of its tiles is done
                        if gate.done.add(1, ordering: .acquiringAndReleasing).newValue == bounds[step + 1] {
                            finish(step)
                            gate.opened.store(step + 1, ordering: .releasing)
                        }
                    }
                }
            }
        }
    }
}

/// Claims and step barriers for a stepped call: `claim` hands out each (step, block)'s tiles,
/// workers going through the steps in order; `done` counts finished tiles, and `opened` is the
/// highest step whose tiles may run.
final class StepGate: Sendable {
    let done = Atomic<Int>(0), opened = Atomic<Int>(0)
    /// Claim counters, one per (step, block); padded so that two blocks' counters, hammered by
    /// different cores, do not share a cache line.
    private final class Claim: Sendable {
        let next = Atomic<Int>(0)
        let pad: (Int, Int, Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0, 0, 0)
    }
    private let claims: [[Claim]]

    init(steps: Int, blocks: Int) {
        claims = (0..<steps).map { _ in (0..<blocks).map { _ in Claim() } }
    }

    /// The next unclaimed index of block `block` in step `step` (may exceed its tile count).
    func claim(step: Int, block: Int) -> Int {
        claims[step][block].next.wrappingAdd(1, ordering: .relaxed).oldValue
    }

    func waitUntilOpen(_ step: Int) {
        var spins = 0
        while opened.load(ordering: .acquiring) < step {
            ts_cpu_relax()
            spins += 1
            // more threads than cores: let the one finishing the step run
            if spins & 1023 == 0 { sched_yield() }
        }
    }
}
