import TesseraTopology

extension Runtime {
    /// Storage for `count` floats placed for this runtime: on a multi-node topology each
    /// node's range of the element-wise tile plan is bound to that node (mbind through
    /// libnuma when the topology is the machine's own) and first touched by that node's
    /// workers, so pages land where the tiles will be processed.  On one node: plain memory.
    /// Placed storage is zero-filled (the first touch writes it); with `zeroed` the
    /// unplaced case is zero-filled too.
    package func allocate(count: Int, zeroed: Bool = false) -> AlignedStorage {
        let storage = AlignedStorage(count: count)
        if topology.isMultiNode && count * 4 >= 1 << 20 {
            place(storage)
        } else if zeroed {
            storage.pointer.initialize(repeating: 0, count: count)
        }
        return storage
    }

    /// The placement plan: element tiles of `tileBytes`, proportional to each node's CPUs.
    package func placementPlan(count: Int) -> TilePlan {
        TilePlan(units: count, unitsPerTile: max(1, tileBytes / 4), workers: threads, topology: topology)
    }

    func place(_ storage: AlignedStorage) {
        let plan = placementPlan(count: storage.count)
        let page = 4096
        let base = UnsafeMutableRawPointer(storage.pointer)
        if topology.source == .libnuma, let numa = LibNUMA.shared {
            for share in plan.shares where !share.tiles.isEmpty {
                let lo = share.tiles.lowerBound * plan.unitsPerTile * 4
                let hi = min(share.tiles.upperBound * plan.unitsPerTile, storage.count) * 4
                let alo = (lo + page - 1) / page * page, ahi = hi / page * page
                if ahi > alo {
                    numa.bind(base + alo, bytes: ahi - alo, toNode: topology.nodes[share.node].id)
                }
            }
        }
        // first touch by the (pinned) workers of each node, through the same tile plan
        let p = SendablePointer(storage.pointer)
        var placing = self
        placing.pinWorkers = true
        placing.parallelThresholdNs = 0
        placing.run(plan) { ctx in
            p[ctx.range.lowerBound].initialize(repeating: 0, count: ctx.range.count)
        }
    }
}
