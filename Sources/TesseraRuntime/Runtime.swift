import CTesseraSystem
import Foundation
import TesseraTopology

/// A user error in the runtime's settings.
public enum RuntimeError: Error, Equatable, CustomStringConvertible {
    case invalidThreads(Int)
    case invalidTileBytes(Int)
    case invalidEnvironment(variable: String, value: String, expected: String)
    case invalidCache(String)
    case invalidHostExecutor(String)

    public var description: String {
        switch self {
        case .invalidThreads(let n): "thread count must be 1...\(Runtime.maxThreads), got \(n)"
        case .invalidTileBytes(let n): "tile size must be at least 64 bytes, got \(n)"
        case .invalidEnvironment(let v, let value, let expected): "\(v)=\(value): expected \(expected)"
        case .invalidCache(let why): "cache model: \(why)"
        case .invalidHostExecutor(let why): "host executor: \(why)"
        }
    }
}

/// How tiles are run.
public enum ExecutorKind: String, Sendable, CaseIterable, Codable {
    /// `DispatchQueue.concurrentPerform`, workers claiming tiles from per-node atomic counters.
    case concurrentPerform
    /// Every tile on the calling thread (a reference for tests and the 1-worker baseline).
    case serial
    /// Tessera's own persistent threads that spin ~100 µs after each call before sleeping:
    /// no wake-up latency between back-to-back calls (see `SpinningPool`).  Falls back to
    /// `concurrentPerform` when another call is using the pool.
    case spinningPool
}

/// The scheduler's settings: how many workers, how big a tile, which topology.  A value
/// type: create one and pass it, or set `Runtime.default`.  It knows nothing of math.
public struct Runtime: Sendable, Equatable {
    /// Workers a parallel call uses (may exceed the cores: extra workers find no tiles left).
    public var threads: Int
    /// Bytes of one tile's input; a tile's working set (input + output) should sit in L2.
    public var tileBytes: Int
    public var topology: Topology
    public var executor: ExecutorKind
    /// Below this much estimated work (ns) a call runs inline on the caller's thread:
    /// waking workers costs more than it saves.  See `Runtime.breakEvenNs(_:)`.
    public var parallelThresholdNs: Double
    /// Pin workers to their node's CPUs while they work (default: only on multi-node topologies,
    /// and not a host executor's threads).
    public var pinWorkers: Bool
    /// The cache sizes store and grouping decisions read (default: `CacheModel.detected`).
    public var cache: CacheModel
    /// Streaming or regular stores for outputs: `auto` asks `cache` (the default).
    public var stores: StorePolicy
    /// The embedder's thread pool, which then runs every parallel call (`executor` is not used).
    public var host: (any HostExecutor)?

    /// `host`: the embedder's thread pool; `threads` then defaults to its `threadCount`.
    public init(threads: Int? = nil, tileBytes: Int? = nil, topology: Topology? = nil,
                executor: ExecutorKind = .concurrentPerform, parallelThresholdNs: Double? = nil,
                pinWorkers: Bool? = nil, cache: CacheModel? = nil, stores: StorePolicy = .auto,
                host: (any HostExecutor)? = nil) throws {
        if let host {
            let n = host.threadCount
            guard n >= 1, n <= Runtime.maxThreads else {
                throw RuntimeError.invalidHostExecutor("it reports \(n) threads (expected 1...\(Runtime.maxThreads))")
            }
        }
        let t = threads ?? host?.threadCount ?? Runtime.defaultThreads
        guard t >= 1, t <= Runtime.maxThreads else { throw RuntimeError.invalidThreads(t) }
        let model = cache ?? CacheModel.detected
        let tb = tileBytes ?? model.defaultTileBytes
        guard tb >= 64 else { throw RuntimeError.invalidTileBytes(tb) }
        self.threads = t
        self.tileBytes = tb
        self.topology = topology ?? Topology.current
        self.executor = executor
        self.parallelThresholdNs = parallelThresholdNs ?? Runtime.breakEvenNs(executor)
        // the host's threads are the host's: not pinned unless asked
        self.pinWorkers = pinWorkers ?? (host == nil && self.topology.isMultiNode)
        self.cache = model
        self.stores = stores
        self.host = host
    }

    public static func == (a: Runtime, b: Runtime) -> Bool {
        a.threads == b.threads && a.tileBytes == b.tileBytes && a.topology == b.topology && a.executor == b.executor
            && a.parallelThresholdNs == b.parallelThresholdNs && a.pinWorkers == b.pinWorkers && a.cache == b.cache
            && a.stores == b.stores && a.host === b.host
    }

    /// Whether an output of `bytes` written by `workers` workers gets streaming stores under
    /// this runtime's policy (workers beyond the cores share them: counted as the cores).
    @inlinable
    package func streams(outputBytes bytes: Int, workers: Int) -> Bool {
        switch stores {
        case .auto: cache.streams(outputBytes: bytes, workers: min(workers, Runtime.activeCores))
        case .streaming: true
        case .regular: false
        }
    }

    /// Cores this process may run on, read once: Foundation recomputes
    /// `activeProcessorCount` from /proc and cgroup files on every call (24 µs here), which
    /// the spinning pool's per-call path paid before any tile ran.
    /// The most workers a runtime takes (a worker is a claim on a thread and a scratch slot;
    /// beyond this a count is more likely a caller's mistake than a machine).
    public static let maxThreads = 4096

    public static let activeCores: Int = max(ProcessInfo.processInfo.activeProcessorCount, 1)

    /// Estimated work (ns) below which dispatch costs more than it saves, per executor.
    /// Measured with `scale-test --grain` on a 2-core Zen 3 VM (docs/records/zen3-avx2/grain-*.txt; the
    /// estimates are each op's table cost, about half the real time there):
    /// `concurrentPerform` starts its second worker 30-60 µs late, so splitting pays from
    /// sigmoid 2^18 / relu 2^21 elements.  The spinning pool's workers start within 1-2 µs
    /// when they are spinning: splitting pays from sigmoid 2^15 (two equal tiles: 14 vs 20 µs)
    /// and relu 2^16-2^17 (5 µs estimated puts relu 2^16, 6 µs of real work, inline; parallel
    /// was 7 % slower there in one record and 15 % faster in another).  The estimate is each op's table cost per element times the elements, so
    /// the rule adapts per op; on other machines run `scale-test --grain` and set
    /// `parallelThresholdNs`.
    package static func breakEvenNs(_ executor: ExecutorKind) -> Double {
        switch executor {
        case .concurrentPerform: 60_000
        case .spinningPool: 5_000
        case .serial: .infinity
        }
    }

    /// Default tile of the detected cache model (see `CacheModel.defaultTileBytes`).
    public static var defaultTileBytes: Int { CacheModel.detected.defaultTileBytes }

    /// `TESSERA_THREADS` if set and valid, else the active cores.
    public static var defaultThreads: Int {
        (try? threadsFromEnvironment(ProcessInfo.processInfo.environment)) ?? activeCores
    }

    /// Parses `TESSERA_THREADS` from `env`: nil when unset, throws when invalid.
    package static func threadsFromEnvironment(_ env: [String: String]) throws -> Int? {
        guard let raw = env["TESSERA_THREADS"] else { return nil }
        guard let n = Int(raw.trimmingCharacters(in: .whitespaces)), n >= 1, n <= maxThreads else {
            throw RuntimeError.invalidEnvironment(variable: "TESSERA_THREADS", value: raw, expected: "an integer 1...\(maxThreads)")
        }
        return n
    }

    private static let shared: Locked<Runtime> = { // Locked, not Mutex: TSan (see Locked.swift)
        do {
            _ = try threadsFromEnvironment(ProcessInfo.processInfo.environment)
        } catch {
            // reported once, then the default (active cores) is used
            FileHandle.standardError.write(Data("tessera: \(error); using \(activeCores) threads\n".utf8))
        }
        return Locked(try! Runtime())
    }()

    /// The runtime ops use when none is passed.  Safe to read and set from any thread.
    public static var `default`: Runtime {
        get { shared.withLock { $0 } }
        set { shared.withLock { $0 = newValue } }
    }
}
