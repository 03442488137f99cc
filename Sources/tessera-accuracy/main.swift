// Exhaustive accuracy check: every one of the 2^32 float32 inputs through the kernels,
// against the float64 references.  Release mode only (minutes):
//   swift run -c release tessera-accuracy [--isa avx2] [--backward] [ops...]
//   tessera-accuracy emulated-write | emulated-check ...   (tools/neon/check.sh; Emulated.swift)
// --backward: each op's backward kernel (dy = 1) from the saved tensor it reads (for sigmoid and
// tanh the output the forward kernel gives for each x), against the float64 derivative at that
// saved value; bound 16 ULP, or 1e-7 absolute.
import Dispatch
import Foundation
import Synchronization
import Tessera
import _TesseraTestSupport

struct Stats {
    var maxULP = 0.0, maxULPInput: Float = 0
    var maxAbsTiny = 0.0          // where |ref| < 1e-5
    var beyondBound = 0           // neither within 4 ULP nor (tiny and within 1e-7)
    var nanMismatch = 0
    var firstBad: Float?

    mutating func merge(_ o: Stats) {
        if o.maxULP > maxULP { maxULP = o.maxULP; maxULPInput = o.maxULPInput }
        maxAbsTiny = max(maxAbsTiny, o.maxAbsTiny)
        beyondBound += o.beyondBound
        nanMismatch += o.nanMismatch
        if firstBad == nil { firstBad = o.firstBad }
    }
}

var args = Array(CommandLine.arguments.dropFirst())
if let status = Emulated.main(args) { exit(status) } // the NEON check's x86 halves (Emulated.swift)
var isa = ISA.best
if let i = args.firstIndex(of: "--isa"), i + 1 < args.count {
    guard let v = ISA.allCases.first(where: { $0.description == args[i + 1] }), v.isSupported else {
        FileHandle.standardError.write(Data("unknown or unsupported ISA \(args[i + 1])\n".utf8))
        exit(2)
    }
    isa = v
    args.removeSubrange(i...i + 1)
}
// default: the ops whose kernels approximate (the cheap ones are exact by construction)
let ops: [UnaryOp] = args.isEmpty ? UnaryOp.allCases.filter { !$0.isCheap } : args.compactMap(UnaryOp.init(rawValue:))
let backward = args.contains("--backward")
args.removeAll { $0 == "--backward" }
let table = KernelTable(isa: isa)!
let chunk = 1 << 20
let chunks = (1 << 32) / chunk
print("exhaustive check, kernels \(isa), \(ops.map(\.rawValue).joined(separator: ", ")): all 2^32 float32 inputs")
print(backward ? "backward (dy = 1): bound 16 ULP of the float64 derivative at the saved value, or 1e-7 absolute"
      : "bound: 4 ULP of the float64 reference rounded to float32, or 1e-7 absolute where |reference| < 1e-5")
let ulpBound = backward ? 16.0 : 4.0
for op in ops {
    let start = Date()
    let results = Mutex<Stats>(Stats())
    let next = Atomic<Int>(0)
    DispatchQueue.concurrentPerform(iterations: ProcessInfo.processInfo.activeProcessorCount) { _ in
        let x = UnsafeMutablePointer<Float>.allocate(capacity: chunk)
        let y = UnsafeMutablePointer<Float>.allocate(capacity: chunk)
        let d = UnsafeMutablePointer<Float>.allocate(capacity: chunk)
        let ones = [Float](repeating: 1, count: chunk)
        defer { x.deallocate(); y.deallocate(); d.deallocate() }
        var local = Stats()
        while true {
            let c = next.wrappingAdd(1, ordering: .relaxed).oldValue
            if c >= chunks { break }
            for i in 0..<chunk { x[i] = Float(bitPattern: UInt32(c * chunk + i)) }
            let step = ElementwiseStep(op)
            op.kernel(in: table)(x, y, chunk, step.a, step.b, 0)
            let fromOutput = op.saved == .output
            if backward {
                // d := dx for dy = 1, from x or from the forward's y
                ones.withUnsafeBufferPointer { g in
                    op.backwardKernel(in: table)(fromOutput ? UnsafePointer(y) : UnsafePointer(x), g.baseAddress, d, chunk, step.a, step.b, 0)
                }
            }
            for i in 0..<chunk {
                let ref = backward
                    ? Reference.derivative(op, saved: Double(fromOutput ? y[i] : x[i]), Double(step.a), Double(step.b))
                    : Reference.step(step, Double(x[i]))
                let got = backward ? d[i] : y[i]
                if ref.isNaN || got.isNaN {
                    if ref.isNaN != got.isNaN { local.nanMismatch += 1; local.beyondBound += 1; if local.firstBad == nil { local.firstBad = x[i] } }
                    continue
                }
                let e = abs(Double(got) - ref)
                if abs(ref) < 1e-5 {
                    local.maxAbsTiny = max(local.maxAbsTiny, e)
                    if e <= 1e-7 { continue }
                }
                let u = ULP.error(got, ref)
                // the ULP error is reported wherever |ref| >= 1e-5; backward passes within 1e-7 absolute too
                if u > local.maxULP { local.maxULP = u; local.maxULPInput = x[i] }
                if backward && e <= 1e-7 { continue }
                if u > ulpBound { local.beyondBound += 1; if local.firstBad == nil { local.firstBad = x[i] } }
            }
        }
        results.withLock { $0.merge(local) }
    }
    let s = results.withLock { $0 }
    print(String(format: "%-10@ max %.2f ULP (at x = %@), max abs error %.2e where |ref| < 1e-5, %d inputs beyond the bound, %d NaN mismatches  [%.0f s]",
                 op.rawValue, s.maxULP, "\(s.maxULPInput)", s.maxAbsTiny, s.beyondBound, s.nanMismatch, Date().timeIntervalSince(start)))
    if let b = s.firstBad { print("  first input beyond the bound: \(b) (bits 0x\(String(b.bitPattern, radix: 16)))") }
}
