// tessera-fuzz: the fuzz targets of TesseraFuzzTargets behind one command.
//   tessera-fuzz TARGET FILE|DIR...   replays inputs (a plain build; what the corpus tests do)
//   tessera-fuzz soak SECONDS [THREADS] the concurrent soak run (Fuzz/README.md)
//   tools/fuzz.sh [SECONDS] [TARGET...] builds it with -DTESSERA_LIBFUZZER, coverage and
//   AddressSanitizer, and then `tessera-fuzz TARGET [libFuzzer flags] CORPUS` fuzzes.
import Foundation
import TesseraFuzzTargets

#if TESSERA_LIBFUZZER
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

nonisolated(unsafe) var selected: FuzzTarget = .abi

let fuzzOne: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt = { data, size in
    let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    do { try selected.run(bytes) } catch { fatalError("contract broken: \(error)") }
    return 0
}
#endif

@main
struct TesseraFuzz {
    static func main() {
        let args = CommandLine.arguments
        if args.count >= 3, args[1] == "soak", let seconds = Double(args[2]) {
            let threads = args.count > 3 ? Int(args[3]) ?? 8 : 8
            let report = Soak.run(seconds: seconds, threads: threads)
            print("soak \(seconds) s on \(threads) threads: \(report)")
            exit(report.failures.isEmpty ? 0 : 1)
        }
        #if TESSERA_LIBFUZZER
        // libFuzzer re-runs this binary for -merge and -fork with its own flags only: the
        // target travels in the environment
        if let env = ProcessInfo.processInfo.environment["TESSERA_FUZZ_TARGET"], let t = FuzzTarget(rawValue: env),
           args.count < 2 || FuzzTarget(rawValue: args[1]) == nil {
            selected = t
            var argc = CommandLine.argc
            var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
            exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzOne))
        }
        #endif
        guard args.count >= 2, let target = FuzzTarget(rawValue: args[1]) else {
            let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: "|")
            FileHandle.standardError.write(Data("usage: tessera-fuzz \(names) [FILE|DIR... | libFuzzer flags]\n       tessera-fuzz soak SECONDS [THREADS]\n".utf8))
            exit(2)
        }
        #if TESSERA_LIBFUZZER
        selected = target
        setenv("TESSERA_FUZZ_TARGET", target.rawValue, 1)
        // libFuzzer sees the command line without the target name
        var argc = CommandLine.argc - 1
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv + 1
        argv![0] = CommandLine.unsafeArgv[0]
        exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzOne))
        #else
        var failures = 0, runs = 0
        for path in args.dropFirst(2) {
            for file in FuzzCorpus.files(at: path) {
                runs += 1
                if let message = FuzzCorpus.replay(target, file: file) { failures += 1; print("FAIL \(file): \(message)") }
            }
        }
        print("\(target.rawValue): \(runs) inputs, \(failures) failures")
        exit(failures == 0 ? 0 : 1)
        #endif
    }
}
