import Foundation
import Testing
import TesseraRuntime

/// The three machines the project has run on, as their OS reported the caches.
enum Profile: String, CaseIterable, CustomStringConvertible {
    /// AMD EPYC Zen 3 VM (AVX2): sysfs 32 KiB / 512 KiB / 32 MiB shared by CPUs 0-1
    case zen3
    /// AMD EPYC Zen 4 VM (AVX-512): 32 KiB / 1 MiB / 32 MiB shared by 2
    case zen4
    /// Intel Xeon family 6 model 207 VM (AVX-512): 48 KiB / 2 MiB / the host's 260 MiB "shared by 2"
    case xeon

    var report: CacheReport {
        switch self {
        case .zen3: CacheReport(l1Bytes: 32 << 10, l2Bytes: 512 << 10, llcBytes: 32 << 20, llcSharedBy: 2)
        case .zen4: CacheReport(l1Bytes: 32 << 10, l2Bytes: 1 << 20, llcBytes: 32 << 20, llcSharedBy: 2)
        case .xeon: CacheReport(l1Bytes: 48 << 10, l2Bytes: 2 << 20, llcBytes: 260 << 20, llcSharedBy: 2)
        }
    }
    var description: String { rawValue }
}

@Suite("Cache model: the decisions cache sizes drive")
struct CacheModelTests {
    /// Smallest power-of-two float count whose output streams with `workers` workers.
    func firstStreaming(_ m: CacheModel, workers: Int) -> Int {
        (10...30).first { m.streams(outputBytes: 4 << $0, workers: workers) }!
    }

    @Test func sanelyReportedCachesAreTakenAtTheirWord() {
        for p in [Profile.zen3, .zen4] {
            let m = CacheModel(report: p.report)
            #expect(m.llcPerCPUBytes == 16 << 20, "\(p)")
            #expect(m.llcBytes == 32 << 20, "\(p)")
            #expect(m.origin.hasPrefix("as reported"), "\(p)")
        }
    }

    @Test func theHostsL3IsNotThisGuests() {
        let m = CacheModel(report: Profile.xeon.report)
        // 130 MiB per CPU is no real part's: each CPU's private L2 is what a worker keeps
        #expect(m.llcPerCPUBytes == 2 << 20)
        #expect(m.llcBytes == 4 << 20)
        #expect(m.origin.contains("the host's"))
        #expect(m.l1Bytes == 48 << 10 && m.l2Bytes == 2 << 20)
    }

    /// Where streaming starts, per profile and worker count (float counts, log2): input plus
    /// output reach the cache share of the workers.
    @Test(arguments: Profile.allCases)
    func streamingStartsWhereInputAndOutputLeaveTheWorkersCaches(profile: Profile) {
        let m = CacheModel(report: profile.report)
        let expected: [Profile: (Int, Int)] = [
            // 16 MiB per CPU: 8 MiB out + 8 MiB in fill one worker's share (2^21 floats)
            .zen3: (21, 22), .zen4: (21, 22),
            // 2 MiB per CPU: from 2^18 floats (1 MiB) on one worker; the VM's host L3 never counts
            .xeon: (18, 19),
        ]
        #expect(firstStreaming(m, workers: 1) == expected[profile]!.0)
        #expect(firstStreaming(m, workers: 2) == expected[profile]!.1)
        // the relu 2^24 that ran at regular-store speed on the Xeon VM streams on every profile
        #expect(m.streams(outputBytes: 4 << 24, workers: 1) && m.streams(outputBytes: 4 << 24, workers: 2))
        // L2-resident outputs never stream
        #expect(!m.streams(outputBytes: m.l2Bytes / 4, workers: 1))
    }

    @Test(arguments: Profile.allCases)
    func longSoftmaxRowsGroupOnlyWhereTheCacheHoldsThem(profile: Profile) {
        // a quarter of the counted LLC holds the exps of a group of split rows
        let m = CacheModel(report: profile.report)
        let budget = m.llcBytes / 4
        switch profile {
        case .zen3, .zen4: #expect(budget == 8 << 20) // one 2^21-float row per group
        case .xeon: #expect(budget == 1 << 20) // a 2^21-float row does not fit: its exps go through y
        }
    }

    @Test func defaultTilesComeFromL2() {
        #expect(CacheModel(report: Profile.zen3.report).defaultTileBytes == 128 << 10)
        #expect(CacheModel(report: Profile.zen4.report).defaultTileBytes == 256 << 10)
        #expect(CacheModel(report: Profile.xeon.report).defaultTileBytes == 256 << 10)
        #expect(CacheModel(report: CacheReport()).defaultTileBytes == 128 << 10)
    }

    @Test func missingOrOddReportsGetConservativeSizes() {
        let none = CacheModel(report: CacheReport())
        #expect(none.l1Bytes == 32 << 10 && none.l2Bytes == 512 << 10 && none.llcPerCPUBytes == 2 << 20)
        let tiny = CacheModel(report: CacheReport(l1Bytes: 1, l2Bytes: 1, llcBytes: 1, llcSharedBy: 0))
        #expect(tiny.l1Bytes == 4 << 10 && tiny.l2Bytes == 64 << 10 && tiny.llcPerCPUBytes >= tiny.l2Bytes)
        // no overflow for absurd sizes or worker counts (unbounded workers: an unbounded share)
        #expect(none.streams(outputBytes: Int.max, workers: 1))
        #expect(!none.streams(outputBytes: Int.max, workers: Int.max))
    }

    @Test func environmentInjectsAProfile() throws {
        let m = try #require(try CacheModel.fromEnvironment(["TESSERA_CACHE": "l1=48K,l2=2M,l3=260M,shared=2"]))
        #expect(m.llcPerCPUBytes == 2 << 20)
        #expect(m.origin.hasPrefix("TESSERA_CACHE=l1=48K,l2=2M,l3=260M,shared=2"))
        let direct = try #require(try CacheModel.fromEnvironment(["TESSERA_CACHE": "l2=1M,l3=32M,shared=2,llc=8M"]))
        #expect(direct.llcBytes == 8 << 20 && direct.llcPerCPUBytes == 4 << 20)
        #expect(try CacheModel.fromEnvironment([:]) == nil)
        for bad in ["l2", "l2=lots", "l9=1M", "shared=0", "l1=12"] {
            #expect(throws: RuntimeError.self, "\(bad)") { try CacheModel.fromEnvironment(["TESSERA_CACHE": bad]) }
        }
        #expect(throws: RuntimeError.self) { try CacheModel(l1Bytes: 32 << 10, l2Bytes: 10, llcBytes: 1 << 20) }
    }

    @Test func sizesAndCPUListsParse() {
        #expect(CacheModel.parseBytes("32768") == 32768)
        #expect(CacheModel.parseBytes("32K") == 32 << 10)
        #expect(CacheModel.parseBytes("260 MiB") == 260 << 20)
        #expect(CacheModel.parseBytes("2m") == 2 << 20)
        #expect(CacheModel.parseBytes("x") == nil && CacheModel.parseBytes("-1K") == nil)
        #expect(CacheReport.cpuListCount("0-1") == 2)
        #expect(CacheReport.cpuListCount("0-3,8,10-11") == 7)
        #expect(CacheReport.cpuListCount("3-1") == nil && CacheReport.cpuListCount("") == nil)
    }

    @Test func sysfsFolderIsRead() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-cache-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let entries: [(String, String, String, String)] = [
            ("1", "Data", "48K", "0"), ("1", "Instruction", "32K", "0"), ("2", "Unified", "2048K", "0"),
            ("3", "Unified", "266240K", "0-1"),
        ]
        for (i, e) in entries.enumerated() {
            let d = "\(dir)/index\(i)"
            try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
            for (f, v) in [("level", e.0), ("type", e.1), ("size", e.2), ("shared_cpu_list", e.3)] {
                try (v + "\n").write(toFile: "\(d)/\(f)", atomically: true, encoding: .utf8)
            }
        }
        let r = try #require(CacheReport.fromSysfs(root: dir))
        #expect(r == CacheReport(l1Bytes: 48 << 10, l2Bytes: 2 << 20, llcBytes: 260 << 20, llcSharedBy: 2))
        #expect(CacheReport.fromSysfs(root: "\(dir)/none") == nil)
    }

    @Test func storePolicyOverridesTheModel() throws {
        let m = CacheModel(report: Profile.zen3.report)
        let big = 4 << 24, small = 4 << 12
        #expect(try Runtime(threads: 2, cache: m).streams(outputBytes: big, workers: 2))
        #expect(try !Runtime(threads: 2, cache: m).streams(outputBytes: small, workers: 2))
        #expect(try Runtime(threads: 2, cache: m, stores: .streaming).streams(outputBytes: small, workers: 2))
        #expect(try !Runtime(threads: 2, cache: m, stores: .regular).streams(outputBytes: big, workers: 2))
        // a runtime's default tile follows its cache model
        #expect(try Runtime(threads: 1, cache: CacheModel(report: Profile.xeon.report)).tileBytes == 256 << 10)
    }
}
