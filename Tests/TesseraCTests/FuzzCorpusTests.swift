import Foundation
import Testing
import TesseraC
import TesseraFuzzTargets

/// The fuzz targets' seed corpus and every input a fuzzer once broke the contract with
/// (Fuzz/regressions/TARGET/), replayed on each test run: a fixed bug stays fixed.
@Suite("Fuzz corpus and regressions")
struct FuzzCorpusTests {
    static let fuzzDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fuzz").path

    @Test(arguments: FuzzTarget.allCases)
    func seedsAndRegressionsKeepTheContract(target: FuzzTarget) throws {
        let seeds = FuzzCorpus.files(at: "\(Self.fuzzDir)/corpus/\(target.rawValue)")
        #expect(!seeds.isEmpty, "no seed corpus for \(target.rawValue)")
        for file in seeds + FuzzCorpus.files(at: "\(Self.fuzzDir)/regressions/\(target.rawValue)") {
            if let failure = FuzzCorpus.replay(target, file: file) { Issue.record("\(file): \(failure)") }
        }
    }

    @Test func theOracleCatchesWhatItShould() throws {
        // accepted-but-invalid and rejected-but-valid calls are failures; so is a status without a message
        #expect(throws: FuzzFailure.self) { try expectStatus(TESSERA_OK, valid: false, "call") }
        _ = tessera_runtime_destroy(nil) // sets a message
        #expect(throws: FuzzFailure.self) { try expectStatus(TESSERA_ERROR_NULL_POINTER, valid: true, "call") }
        try expectStatus(TESSERA_ERROR_NULL_POINTER, valid: false, "call")
        try expectStatus(TESSERA_OK, valid: nil, "call")
        #expect(FuzzCorpus.replay(.abi, file: "/nonexistent/input") == "unreadable")
    }
}
