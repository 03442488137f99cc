import Foundation

/// libnuma bound at run time with `dlopen("libnuma.so.1")`: Debian/Ubuntu machines ship the
/// library (package libnuma1) but not its header, so linking it would make the build need
/// libnuma-dev.  Binding at run time keeps `swift build` dependency-free and lets Tessera
/// run, non-NUMA, where the library is missing.
package final class LibNUMA: Sendable {
    private typealias IntFn = @convention(c) () -> Int32
    private typealias IntIntFn = @convention(c) (Int32) -> Int32
    private typealias Int2Fn = @convention(c) (Int32, Int32) -> Int32
    private typealias SizeFn = @convention(c) (Int32, UnsafeMutablePointer<Int64>?) -> Int64
    private typealias ToNodeFn = @convention(c) (UnsafeMutableRawPointer?, Int, Int32) -> Void

    private let maxNode: IntFn
    private let configuredCPUs: IntFn
    private let nodeOfCPU: IntIntFn
    private let distance: Int2Fn
    private let nodeSize: SizeFn
    private let toNode: ToNodeFn

    /// nil when libnuma is absent or `numa_available()` says NUMA is not usable.
    package static let shared: LibNUMA? = LibNUMA()

    private init?() {
        guard let h = dlopen("libnuma.so.1", RTLD_NOW | RTLD_LOCAL) else { return nil }
        func sym<T>(_ name: String, _: T.Type) -> T? {
            dlsym(h, name).map { unsafeBitCast($0, to: T.self) }
        }
        guard let available = sym("numa_available", IntFn.self), available() >= 0,
              let maxNode = sym("numa_max_node", IntFn.self),
              let cpus = sym("numa_num_configured_cpus", IntFn.self),
              let nodeOfCPU = sym("numa_node_of_cpu", IntIntFn.self),
              let distance = sym("numa_distance", Int2Fn.self),
              let nodeSize = sym("numa_node_size64", SizeFn.self),
              let toNode = sym("numa_tonode_memory", ToNodeFn.self)
        else { return nil }
        self.maxNode = maxNode
        self.configuredCPUs = cpus
        self.nodeOfCPU = nodeOfCPU
        self.distance = distance
        self.nodeSize = nodeSize
        self.toNode = toNode
    }

    /// The topology libnuma reports (nodes without CPUs are left out: no worker runs there).
    package func topology() -> Topology? {
        let maxN = Int(maxNode())
        guard maxN >= 0 else { return nil }
        var cpusOf = [[Int]](repeating: [], count: maxN + 1)
        for cpu in 0..<Int(configuredCPUs()) {
            let n = Int(nodeOfCPU(Int32(cpu)))
            if n >= 0 && n <= maxN { cpusOf[n].append(cpu) }
        }
        let ids = (0...maxN).filter { !cpusOf[$0].isEmpty }
        guard !ids.isEmpty else { return nil }
        let nodes = ids.map { id -> Topology.Node in
            let size = nodeSize(Int32(id), nil)
            return Topology.Node(id: id, cpus: cpusOf[id], memoryBytes: size > 0 ? UInt64(size) : nil)
        }
        let d = ids.map { a in ids.map { b in Int(distance(Int32(a), Int32(b))) } }
        return Topology(nodes: nodes, distances: d.allSatisfy { $0.allSatisfy { $0 >= 10 } } ? d : nil,
                        source: .libnuma, origin: "libnuma.so.1")
    }

    /// Binds the pages of `[start, start+bytes)` to `node` (mbind); call before first touch.
    package func bind(_ start: UnsafeMutableRawPointer, bytes: Int, toNode node: Int) {
        toNode(start, bytes, Int32(node))
    }
}
