import TesseraTopology

/// How a parallel call is split: a pure function of (units, tile size, workers, topology),
/// so tile boundaries -- and with them every result -- do not depend on timing.
///
/// A unit is an element for element-wise ops and a row (or a column slab) for reductions.
/// Tiles are contiguous ranges of units; each NUMA node owns a contiguous run of tiles,
/// proportional to its CPUs, and a group of workers, proportional to its CPUs too.
package struct TilePlan: Sendable, Equatable, CustomStringConvertible {
    package struct NodeShare: Sendable, Equatable {
        /// Index into `topology.nodes`.
        package var node: Int
        package var tiles: Range<Int>
        package var workers: Range<Int>
        /// CPUs the node's workers run on (those that exist on this machine).
        package var cpus: [Int]
    }

    package let units: Int
    package let unitsPerTile: Int
    package let tileCount: Int
    /// Workers the call starts (never more than tiles).
    package let workers: Int
    package let shares: [NodeShare]
    /// Run every tile on the caller's thread (too little work to pay for dispatch).
    package let inline: Bool
    package let nodeCount: Int
    /// Per share: the shares its workers take tiles from, own first, then by distance.
    package let helpOrders: [[Int]]
    /// Per share: the index of its first block among all shares' blocks (one claim counter
    /// per block; the last entry is the total).
    package let blockOffsets: [Int]

    /// - Parameters:
    ///   - units: elements or rows
    ///   - unitsPerTile: tile size in units (>= 1)
    ///   - workers: requested workers (>= 1)
    ///   - topology: nodes to spread tiles over
    ///   - inline: force the caller-thread path
    package init(units: Int, unitsPerTile: Int, workers: Int, topology: Topology, inline: Bool = false) {
        precondition(units >= 0 && unitsPerTile >= 1 && workers >= 1)
        self.units = units
        self.unitsPerTile = unitsPerTile
        tileCount = units == 0 ? 0 : (units + unitsPerTile - 1) / unitsPerTile
        let w = max(1, min(workers, tileCount))
        self.workers = w
        self.inline = inline || w == 1
        nodeCount = topology.nodes.count
        let weights = topology.nodes.map { max($0.cpus.count, 1) }
        let tileSplit = TilePlan.apportion(tileCount, weights: weights)
        let workerSplit = TilePlan.apportion(w, weights: weights)
        var shares: [NodeShare] = []
        var t = 0, k = 0
        let real = TilePlan.existingCPUs
        for (i, node) in topology.nodes.enumerated() {
            shares.append(NodeShare(node: i, tiles: t..<t + tileSplit[i], workers: k..<k + workerSplit[i],
                                    cpus: node.cpus.filter { $0 < real }))
            t += tileSplit[i]
            k += workerSplit[i]
        }
        self.shares = shares
        helpOrders = shares.indices.map { topology.helpOrder(from: $0).filter { $0 < shares.count } }
        var offsets = [0]
        for sh in shares { offsets.append(offsets.last! + TilePlan.blockCount(sh)) }
        blockOffsets = offsets
    }

    /// Units of tile `t`.
    @inlinable
    package func range(ofTile t: Int) -> Range<Int> {
        let lo = t * unitsPerTile
        return lo..<min(lo + unitsPerTile, units)
    }

    /// Contiguous blocks a node share's tiles are split into, one per CPU its workers can
    /// run on (at most one per worker and per tile).  A worker starts with the block of the
    /// CPU it is on, so the same tiles meet the same core's caches call after call, and
    /// helps with the other blocks when its own is done.
    package func blockCount(ofShare s: Int) -> Int { blockOffsets[s + 1] - blockOffsets[s] }

    static func blockCount(_ sh: NodeShare) -> Int {
        let lanes = sh.cpus.isEmpty ? sh.workers.count : min(sh.workers.count, sh.cpus.count)
        return max(1, min(lanes, sh.tiles.count))
    }

    /// Tiles of block `b` of share `s` (an even, deterministic split of the share's tiles).
    package func tiles(ofBlock b: Int, share s: Int) -> Range<Int> {
        let sh = shares[s], n = blockCount(ofShare: s), count = sh.tiles.count
        return sh.tiles.lowerBound + count * b / n..<sh.tiles.lowerBound + count * (b + 1) / n
    }

    /// Node share index of worker `w`.
    package func share(ofWorker w: Int) -> Int {
        shares.firstIndex { $0.workers.contains(w) } ?? 0
    }

    /// Node share index owning tile `t`.
    package func share(ofTile t: Int) -> Int {
        shares.firstIndex { $0.tiles.contains(t) } ?? 0
    }

    /// Splits `total` into parts proportional to `weights` (largest remainder; ties to the
    /// lower index), so the split is deterministic.
    package static func apportion(_ total: Int, weights: [Int]) -> [Int] {
        let sum = weights.reduce(0, +)
        guard sum > 0, total > 0 else { return weights.map { _ in 0 } }
        var parts = weights.map { total * $0 / sum }
        var rest = total - parts.reduce(0, +)
        let order = weights.indices.sorted { a, b in
            let ra = total * weights[a] % sum, rb = total * weights[b] % sum
            return ra != rb ? ra > rb : a < b
        }
        var i = 0
        while rest > 0 { parts[order[i % order.count]] += 1; rest -= 1; i += 1 }
        return parts
    }

    /// CPUs that exist here; pinning to others is skipped.
    static let existingCPUs: Int = Runtime.activeCoresConfigured

    /// Halide-style printable form: one line per node, tiles and workers.
    package var description: String {
        var s = "plan: \(units) units in \(tileCount) tiles of \(unitsPerTile), \(workers) worker(s)"
        s += inline ? ", inline on the caller\n" : ", \(nodeCount) node(s)\n"
        for sh in shares {
            let tiles = sh.tiles.isEmpty ? "none" : "\(sh.tiles.lowerBound)..<\(sh.tiles.upperBound)"
            let workers = sh.workers.isEmpty ? "none" : "\(sh.workers.lowerBound)..<\(sh.workers.upperBound)"
            let units = sh.tiles.isEmpty ? "" : " (units \(sh.tiles.lowerBound * unitsPerTile)..<\(min(sh.tiles.upperBound * unitsPerTile, self.units)))"
            s += "  node \(sh.node): tiles \(tiles)\(units), workers \(workers), cpus \(sh.cpus.isEmpty ? "none here" : Topology.cpuList(sh.cpus))\n"
            let si = shares.firstIndex(of: sh)!
            if !inline && blockCount(ofShare: si) > 1 {
                let blocks = (0..<blockCount(ofShare: si)).map { b in
                    let r = self.tiles(ofBlock: b, share: si)
                    return "\(r.lowerBound)..<\(r.upperBound)"
                }
                s += "    tiles per cpu (a worker starts with its cpu's, then helps): \(blocks.joined(separator: ", "))\n"
            }
        }
        return s
    }
}
