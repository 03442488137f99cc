import CTesseraSystem
import Foundation

/// Cache sizes as the OS reports them: the input of `CacheModel`, never used for a decision
/// directly (a VM may report its host's caches; see `CacheModel.init(report:)`).
public struct CacheReport: Sendable, Equatable, Codable, CustomStringConvertible {
    /// Level-1 data cache per core, bytes.
    public var l1Bytes: Int?
    /// Level-2 cache per core, bytes.
    public var l2Bytes: Int?
    /// The last-level cache (the highest level reported), bytes.
    public var llcBytes: Int?
    /// CPUs the report says share one last-level cache.
    public var llcSharedBy: Int?

    public init(l1Bytes: Int? = nil, l2Bytes: Int? = nil, llcBytes: Int? = nil, llcSharedBy: Int? = nil) {
        self.l1Bytes = l1Bytes
        self.l2Bytes = l2Bytes
        self.llcBytes = llcBytes
        self.llcSharedBy = llcSharedBy
    }

    public var description: String {
        func f(_ b: Int?) -> String { b.map(CacheModel.format) ?? "?" }
        return "L1d \(f(l1Bytes)), L2 \(f(l2Bytes)), LLC \(f(llcBytes)) shared by \(llcSharedBy.map(String.init) ?? "?") CPU(s)"
    }

    /// What this machine reports: sysfs (`/sys/devices/system/cpu/cpu0/cache`), else sysconf.
    public static let detected: CacheReport = {
        if let r = fromSysfs(root: "/sys/devices/system/cpu/cpu0/cache") { return r }
        func v(_ level: Int32) -> Int? { let s = Int(ts_cache_size(level)); return s > 0 ? s : nil }
        return CacheReport(l1Bytes: v(1), l2Bytes: v(2), llcBytes: v(3) ?? v(2), llcSharedBy: nil)
    }()

    /// Reads `index*/{level,type,size,shared_cpu_list}` under `root` (a sysfs cache folder).
    package static func fromSysfs(root: String) -> CacheReport? {
        var levels: [(level: Int, bytes: Int, sharers: Int?)] = []
        for i in 0..<8 {
            let dir = "\(root)/index\(i)"
            func read(_ f: String) -> String? {
                (try? String(contentsOfFile: "\(dir)/\(f)", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            guard let ls = read("level"), let level = Int(ls), let type = read("type"), type != "Instruction",
                  let size = read("size").flatMap(CacheModel.parseBytes) else { continue }
            levels.append((level, size, read("shared_cpu_list").flatMap(cpuListCount)))
        }
        guard !levels.isEmpty else { return nil }
        let top = levels.max { $0.level < $1.level }!
        return CacheReport(l1Bytes: levels.first { $0.level == 1 }?.bytes, l2Bytes: levels.first { $0.level == 2 }?.bytes,
                           llcBytes: top.level >= 2 ? top.bytes : nil, llcSharedBy: top.sharers)
    }

    /// CPUs in a Linux CPU list such as `0-3,8,10-11` (nil when malformed).
    package static func cpuListCount(_ s: String) -> Int? {
        var n = 0
        for part in s.split(separator: ",") {
            let ends = part.split(separator: "-").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard ends.allSatisfy({ $0 != nil }), let lo = ends.first!, let hi = ends.last!, ends.count <= 2, hi >= lo else { return nil }
            n += hi - lo + 1
        }
        return n > 0 ? n : nil
    }
}

/// The cache sizes every cache-dependent decision reads (streaming vs regular stores, the
/// default tile size, how many long softmax rows keep their exps in cache).  One model,
/// derived from a `CacheReport` by rules that survive a VM that reports its host's caches.
///
/// Two rules (measurements: docs/records/zen3-avx2/README.md):
/// * A reported last-level cache above `maxPlausibleLLCPerCPU` per CPU sharing it cannot be
///   this machine's own -- no shipping x86 or Arm part has more than 12 MiB of L3 per core
///   (AMD's 3D V-Cache: 96 MiB per 8 cores); an Intel Xeon VM reported the host's 260 MiB
///   "shared by 2 CPUs".  Such a report is the host's, shared with its other guests, and only
///   each CPU's private L2 is counted.
/// * A call keeps its data in the cache shares of the CPUs that run it, not in the whole
///   LLC: on a 2-vCPU Zen 3 VM a 1-worker relu kept 8 MiB in + 8 MiB out in cache and lost
///   16 + 16 (streaming stores 1.44-1.5x faster there), while 2 workers kept 16 + 16.  So an
///   output streams when input + output reach the share of the call's workers.
public struct CacheModel: Sendable, Equatable, Codable, CustomStringConvertible {
    /// Level-1 data cache per core.
    public var l1Bytes: Int
    /// Level-2 cache per core.
    public var l2Bytes: Int
    /// Last-level cache bytes counted per CPU: what one worker can expect to keep.
    public var llcPerCPUBytes: Int
    /// CPUs that share one last-level cache (the report's, at least 1).
    public var llcSharedBy: Int
    /// How the sizes were found, in words (printed by scale-test and `--plan`).
    public var origin: String

    /// Last-level cache counted in all: one cache's share for each CPU that shares it.  Long
    /// softmax rows keep their exps in a quarter of it.
    public var llcBytes: Int { llcPerCPUBytes * llcSharedBy }

    /// Above this much reported last-level cache per CPU sharing it, the report is the host's.
    package static let maxPlausibleLLCPerCPU = 16 << 20

    /// Sizes set directly (no plausibility rule applied): for tests and for embedders who know.
    /// `llcBytes` is one last-level cache, shared by `llcSharedBy` CPUs.
    public init(l1Bytes: Int, l2Bytes: Int, llcBytes: Int, llcSharedBy: Int = 1, origin: String = "injected") throws {
        for (name, v) in [("l1Bytes", l1Bytes), ("l2Bytes", l2Bytes), ("llcBytes", llcBytes)] where v < 1024 {
            throw RuntimeError.invalidCache("\(name) must be at least 1 KiB, got \(v)")
        }
        guard llcSharedBy >= 1 else { throw RuntimeError.invalidCache("llcSharedBy must be at least 1, got \(llcSharedBy)") }
        self.l1Bytes = l1Bytes
        self.l2Bytes = l2Bytes
        self.llcPerCPUBytes = max(llcBytes / llcSharedBy, 1024)
        self.llcSharedBy = llcSharedBy
        self.origin = origin
    }

    /// The model of a report: missing sizes take conservative defaults (32 KiB L1d, 512 KiB
    /// L2, an LLC of 2 MiB per CPU); an implausible last-level cache counts as the L2s only.
    public init(report r: CacheReport) {
        let l1 = r.l1Bytes.map { min(max($0, 4 << 10), 1 << 20) } ?? 32 << 10
        let l2 = r.l2Bytes.map { min(max($0, 64 << 10), 16 << 20) } ?? 512 << 10
        let sharers = max(r.llcSharedBy ?? 1, 1)
        var perCPU: Int
        var why: String
        if let reported = r.llcBytes, reported > 0 {
            if reported / sharers > Self.maxPlausibleLLCPerCPU {
                perCPU = l2
                why = "reported LLC \(Self.format(reported)) for \(sharers) CPU(s) is over \(Self.format(Self.maxPlausibleLLCPerCPU)) per CPU: the host's, shared; each CPU's private L2 counted"
            } else {
                perCPU = reported / sharers
                why = "as reported"
            }
        } else {
            perCPU = max(2 << 20, l2)
            why = "no LLC reported: \(Self.format(perCPU)) per CPU assumed"
        }
        perCPU = max(perCPU, l2)
        l1Bytes = l1
        l2Bytes = l2
        llcPerCPUBytes = perCPU
        llcSharedBy = sharers
        origin = "\(why) (\(r))"
    }

    /// Whether an output of `bytes` (read from an input as large) written by `workers` CPUs
    /// gets streaming (non-temporal) stores: input and output do not both stay in those CPUs'
    /// cache shares, so the output would not be in cache when read again and its
    /// read-for-ownership is wasted.
    @inlinable
    public func streams(outputBytes bytes: Int, workers: Int) -> Bool {
        let (share, o) = llcPerCPUBytes.multipliedReportingOverflow(by: max(workers, 1))
        return !o && bytes >= share - share / 2 // 2 * bytes >= share, without overflow
    }

    /// Default tile: a quarter of L2 (input + output + slack stay in L2), 16 KiB-256 KiB.
    public var defaultTileBytes: Int { min(max(l2Bytes / 4, 16 << 10), 256 << 10) }

    public var description: String {
        "cache model: L1d \(Self.format(l1Bytes)), L2 \(Self.format(l2Bytes)), LLC counted \(Self.format(llcPerCPUBytes)) per CPU x \(llcSharedBy) -- \(origin)"
    }

    /// This machine's model: `TESSERA_CACHE` if set (a report, same rules), else the OS's report.
    public static let detected: CacheModel = {
        let env = ProcessInfo.processInfo.environment
        do {
            if let m = try fromEnvironment(env) { return m }
        } catch {
            FileHandle.standardError.write(Data("tessera: \(error); using the reported cache sizes\n".utf8))
        }
        return CacheModel(report: .detected)
    }()

    /// Parses `TESSERA_CACHE` (`l1=48K,l2=2M,l3=260M,shared=2`; any subset; `llc=8M` sets the
    /// counted size directly, skipping the plausibility rule): nil when unset, throws when invalid.
    package static func fromEnvironment(_ env: [String: String]) throws -> CacheModel? {
        guard let raw = env["TESSERA_CACHE"] else { return nil }
        let expected = "comma-separated key=size pairs, keys l1, l2, l3, shared, llc (e.g. l2=2M,l3=260M,shared=2)"
        var report = CacheReport.detected
        var direct: Int?
        for item in raw.split(separator: ",") {
            let kv = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard kv.count == 2 else { throw RuntimeError.invalidEnvironment(variable: "TESSERA_CACHE", value: raw, expected: expected) }
            if kv[0] == "shared" {
                guard let n = Int(kv[1]), n >= 1 else {
                    throw RuntimeError.invalidEnvironment(variable: "TESSERA_CACHE", value: raw, expected: "shared=N with N >= 1")
                }
                report.llcSharedBy = n
                continue
            }
            guard let b = parseBytes(kv[1]), b >= 1024 else {
                throw RuntimeError.invalidEnvironment(variable: "TESSERA_CACHE", value: raw, expected: "\(kv[0])=SIZE with SIZE at least 1K (like 512K or 32M)")
            }
            switch kv[0] {
            case "l1": report.l1Bytes = b
            case "l2": report.l2Bytes = b
            case "l3": report.llcBytes = b
            case "llc": direct = b
            default: throw RuntimeError.invalidEnvironment(variable: "TESSERA_CACHE", value: raw, expected: expected)
            }
        }
        var m = CacheModel(report: report)
        m.origin = "TESSERA_CACHE=\(raw): " + m.origin
        if let direct {
            m.llcPerCPUBytes = max(direct / m.llcSharedBy, 1024)
            m.origin = "TESSERA_CACHE=\(raw): LLC counted as given"
        }
        return m
    }

    /// `32768`, `32K`, `32KiB`, `2M`, `260 MiB` -> bytes.
    package static func parseBytes(_ s: String) -> Int? {
        var t = s.trimmingCharacters(in: .whitespaces).uppercased()
        for suffix in ["IB", "B"] where t.hasSuffix(suffix) { t.removeLast(suffix.count); break }
        t = t.trimmingCharacters(in: .whitespaces)
        var mult = 1
        if let last = t.last, let m = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30][String(last)] {
            mult = m
            t.removeLast()
        }
        guard let v = Int(t.trimmingCharacters(in: .whitespaces)), v >= 0 else { return nil }
        let (p, o) = v.multipliedReportingOverflow(by: mult)
        return o ? nil : p
    }

    static func format(_ b: Int) -> String {
        if b >= 1 << 20 && b % (1 << 20) == 0 { return "\(b >> 20) MiB" }
        if b >= 1 << 10 && b % (1 << 10) == 0 { return "\(b >> 10) KiB" }
        return "\(b) B"
    }
}

/// Which stores an op's output gets.  `auto` asks the cache model; the others force one
/// kind (the `scale-test --stores` experiment; results are the same bits either way).
public enum StorePolicy: String, Sendable, CaseIterable, Codable {
    case auto, streaming, regular
}
