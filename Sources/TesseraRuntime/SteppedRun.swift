import CTesseraSystem
import Foundation
import Synchronization

/// A stepped call's tile body as a C function: (context, step, block, index in the block,
/// state, scratch).  `state` is this worker's `stateBytes` of memory, zeroed when it starts and
/// kept across its tiles; `scratch` its `scratchBytes` (nil when 0).  No Swift closure: a
/// repeated call allocates nothing.
package typealias RawStepBody = @convention(c) (UnsafeRawPointer?, Int, Int, Int, UnsafeMutableRawPointer?,
                                                UnsafeMutableRawPointer?) -> Void
/// Runs once per step, on the worker that finished the step's last tile: (context, step).
package typealias RawStepFinish = @convention(c) (UnsafeRawPointer?, Int) -> Void

extension Runtime {
    /// Blocks per step of a stepped call: one per core the call's workers run on at once.
    package var stepBlocks: Int { max(1, min(threads, Runtime.activeCores)) }

    /// A parallel call whose tiles run in dependent steps: a tile of step s starts only when
    /// every tile of step s - 1 is done and `finish(s - 1)` has run (on the worker that finished
    /// the step's last tile).  Each step's tiles are split into `stepBlocks` blocks,
    /// `tiles[step * stepBlocks + block]` each; a worker takes its own block first -- the block
    /// of the CPU it runs on where there is one per core, so block b of every step runs on the
    /// same core and reads what that core wrote in the step before -- then helps with the
    /// others.  All steps run in one parallel call: one wake-up of the workers, not one per
    /// step.  Waiting happens only behind tiles already claimed by running workers, so a call
    /// whose workers all run on one thread still completes.  Every step needs a tile.
    /// `context` must stay valid until this returns.
    package func runSteps(steps: Int, tiles: UnsafePointer<Int>, bytesPerTile: Int, nsPerTile: Double,
                          scratchBytes: Int = 0, stateBytes: Int = 0,
                          body: RawStepBody, finish: RawStepFinish, context: UnsafeRawPointer?) {
        guard steps > 0 else { return }
        let blocks = stepBlocks
        var layout = WorkspaceLayout()
        let boundsAt = layout.reserve(Int.self, steps + 1)
        let atomicsAt = layout.reserve(Atomic<Int>.self, (2 + steps * blocks) * StepJob.pad)
        withWorkspace(bytes: layout.bytes) { ws in
            let bounds = (ws + boundsAt).bindMemory(to: Int.self, capacity: steps + 1)
            bounds[0] = 0
            for s in 0..<steps {
                var n = 0
                for b in 0..<blocks { n += tiles[s * blocks + b] }
                // a step without tiles would never be finished (nothing counts up to its end)
                precondition(n > 0, "runSteps: every step needs a tile")
                bounds[s + 1] = bounds[s] + n
            }
            let total = bounds[steps]
            let count = (2 + steps * blocks) * StepJob.pad
            let atomics = (ws + atomicsAt).bindMemory(to: Atomic<Int>.self, capacity: count)
            for i in 0..<count { (atomics + i).initialize(to: Atomic(0)) }
            defer { atomics.deinitialize(count: count) }
            let stateStride = (stateBytes + 63) & ~63
            var job = StepJob(tiles: tiles, bounds: bounds, atomics: atomics, steps: steps, blocks: blocks,
                              body: body, finish: finish, context: context, stateBytes: stateBytes,
                              stateStride: stateStride, hasScratch: scratchBytes > 0)
            let slots = min(threads, total)
            let plan = self.plan(units: slots, bytesPerUnit: bytesPerTile, nsPerUnit: nsPerTile * Double(total) / Double(slots),
                                 unitsPerTile: 1)
            withUnsafePointer(to: &job) {
                run(plan, scratchBytes: stateStride + scratchBytes, raw: StepJob.worker, context: $0)
            }
        }
    }
}

/// One stepped call: the tile counts, step bounds (cumulative tile counts) and atomics --
/// `done` (finished tiles), `opened` (the highest step whose tiles may run), then one claim
/// counter per (step, block), each on its own 64-byte line so that counters hammered by
/// different cores do not share one.
struct StepJob {
    static let pad = 8
    var tiles: UnsafePointer<Int>, bounds: UnsafePointer<Int>
    var atomics: UnsafeMutablePointer<Atomic<Int>>
    var steps: Int, blocks: Int
    var body: RawStepBody, finish: RawStepFinish
    var context: UnsafeRawPointer?
    var stateBytes: Int, stateStride: Int, hasScratch: Bool

    /// The runtime's tile body: each of its tiles (one per slot) walks through every step.
    static let worker: RawTileBody = { context, first, _, scratch in
        context!.assumingMemoryBound(to: StepJob.self).pointee.walk(lane: first, scratch: scratch)
    }

    var done: UnsafeMutablePointer<Atomic<Int>> { atomics }
    var opened: UnsafeMutablePointer<Atomic<Int>> { atomics + StepJob.pad }
    func claim(step: Int, block: Int) -> Int {
        atomics[(2 + step * blocks + block) * StepJob.pad].wrappingAdd(1, ordering: .relaxed).oldValue
    }

    func waitUntilOpen(_ step: Int) {
        var spins = 0
        while opened.pointee.load(ordering: .acquiring) < step {
            ts_cpu_relax()
            spins += 1
            // more threads than cores: let the one finishing the step run
            if spins & 1023 == 0 { sched_yield() }
        }
    }

    func walk(lane slot: Int, scratch: UnsafeMutableRawPointer?) {
        if stateBytes > 0 { scratch!.initializeMemory(as: UInt8.self, repeating: 0, count: stateBytes) }
        let state = stateBytes > 0 ? scratch : nil
        let own = hasScratch ? scratch! + stateStride : nil
        let cpu = Int(ts_current_cpu())
        let lane = (blocks == Runtime.activeCores && cpu >= 0 ? cpu : slot) % blocks
        for step in 0..<steps {
            for k in 0..<blocks {
                let b = (lane + k) % blocks
                let count = tiles[step * blocks + b]
                while true {
                    let i = claim(step: step, block: b)
                    if i >= count { break }
                    waitUntilOpen(step)
                    body(context, step, b, i, state, own)
                    // tiles of step s + 1 wait for the opening, so the count reaches the end
                    // of step s only when every one of its tiles is done
                    if done.pointee.add(1, ordering: .acquiringAndReleasing).newValue == bounds[step + 1] {
                        finish(context, step)
                        opened.pointee.store(step + 1, ordering: .releasing)
                    }
                }
            }
        }
    }
}
