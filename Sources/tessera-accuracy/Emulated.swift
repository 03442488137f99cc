// The two x86 halves of the NEON check under emulation (tools/neon/check.sh):
//   tessera-accuracy emulated-write CASES        the op table's steps and the inputs
//   tessera-accuracy emulated-check CASES OUT    OUT (from kernel_check under qemu-aarch64)
//                                                against the float64 references, next to
//                                                this CPU's own best variant on the same inputs
// so that the emulated kernels are held to the references and bounds the Swift tests use.
import Foundation
import Tessera
import _TesseraTestSupport

enum Emulated {
    /// Every step of `Reference.allSteps`; inputs: the edge values, 8192 random values and
    /// every 65537th float32 bit pattern (2^32 / 65537 = 65535 values: a sampled stride, the
    /// exhaustive run being too slow under emulation).
    static func inputs() -> (x: [Float], dy: [Float]) {
        var x = EdgeValues.specials + EdgeValues.random(count: 8192, seed: 77)
        var b: UInt64 = 0
        while b < 1 << 32 { x.append(Float(bitPattern: UInt32(b))); b += 65537 }
        let dy = try! Tensor(randomNormal: [x.count], seed: 78).scalars
        return (x, dy)
    }

    static func write(_ path: String) throws {
        var d = Data("TSEM".utf8)
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
        func f32(_ v: Float) { u32(v.bitPattern) }
        let steps = Reference.allSteps
        u32(UInt32(steps.count))
        for s in steps { u32(UInt32(s.op.index)); f32(s.a); f32(s.b) }
        let (x, dy) = inputs()
        u32(UInt32(x.count))
        x.forEach(f32)
        dy.forEach(f32)
        try d.write(to: URL(fileURLWithPath: path))
        print("wrote \(steps.count) steps x \(x.count) inputs to \(path)")
    }

    struct Worst { var ulp = 0.0, beyond = 0, at: Float = 0 }

    /// Forward: ULP.acceptable (4 ULP, or 1e-7 where |ref| < 1e-5), the unit tests' bound.
    /// Backward: 16 ULP, or 1e-7 |dy| absolute; 0 or NaN where op' = 0 meets a non-finite dy.
    static func grade(forward got: [Float], _ refs: [Double], _ xs: [Float]) -> Worst {
        var w = Worst()
        for (i, (g, r)) in zip(got, refs).enumerated() {
            if !ULP.acceptable(g, r) { w.beyond += 1 }
            if abs(r) >= 1e-5 || r.isNaN { let u = ULP.error(g, r); if u > w.ulp { w.ulp = u; w.at = xs[i] } }
        }
        return w
    }

    static func grade(backward got: [Float], _ refs: [Double], _ ds: [Double], _ dy: [Float], _ xs: [Float]) -> Worst {
        var w = Worst()
        for i in got.indices {
            let g = got[i], r = refs[i]
            let ok = (g.isNaN && r.isNaN) || ULP.error(g, r) <= 16 || abs(Double(g) - r) <= 1e-7 * Double(abs(dy[i]))
                || (ds[i] == 0 && !dy[i].isFinite && (g == 0 || g.isNaN))
            if !ok { w.beyond += 1 }
            if abs(Double(g) - r) > 1e-7 * Double(abs(dy[i])) { let u = ULP.error(g, r); if u > w.ulp && u.isFinite { w.ulp = u; w.at = xs[i] } }
        }
        return w
    }

    static func check(cases: String, out: String) throws -> Int32 {
        let (x, dy) = inputs()
        let d = try Data(contentsOf: URL(fileURLWithPath: out))
        var at = 0
        func u32() -> UInt32 { defer { at += 4 }; return d.subdata(in: at..<at + 4).withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) } }
        func floats(_ n: Int) -> [Float] {
            defer { at += 4 * n }
            return d.subdata(in: at..<at + 4 * n).withUnsafeBytes { raw in (0..<n).map { Float(bitPattern: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self)) } }
        }
        guard d.count >= 12, String(decoding: d.prefix(4), as: UTF8.self) == "TSEO" else { throw CocoaError(.fileReadCorruptFile) }
        at = 4
        let steps = Reference.allSteps
        guard Int(u32()) == steps.count, Int(u32()) == x.count else {
            print("\(out) does not match the cases \(cases) (rebuild both)"); return 2
        }
        let native = KernelTable.best
        print("emulated variant against the float64 references, next to this CPU's \(native.isa) on the same \(x.count) inputs")
        print("op            params           forward worst ULP (emulated / \(native.isa))   backward worst ULP (emulated / \(native.isa))")
        var beyond = 0
        for s in steps {
            let y = floats(x.count), saved = floats(x.count), dx = floats(x.count)
            let refs = x.map { Reference.step(s, Double($0)) }
            let ds = saved.map { Reference.derivative(s.op, saved: Double($0), Double(s.a), Double(s.b)) }
            let brefs = zip(ds, dy).map { $0 * Double($1) }
            var y86 = [Float](repeating: 0, count: x.count), dx86 = y86
            s.op.kernel(in: native)(x, &y86, x.count, s.a, s.b, 0)
            saved.withUnsafeBufferPointer { sp in
                s.op.backwardKernel(in: native)(s.op.saved == .none ? nil : sp.baseAddress, dy, &dx86, x.count, s.a, s.b, 0)
            }
            let f = grade(forward: y, refs, x), f86 = grade(forward: y86, refs, x)
            let b = grade(backward: dx, brefs, ds, dy, x), b86 = grade(backward: dx86, brefs, ds, dy, x)
            beyond += f.beyond + b.beyond
            let params = s.op.parameterCount == 0 ? "" : "(\(s.a), \(s.b))"
            func pad(_ t: String, _ n: Int) -> String { t.padding(toLength: max(n, t.count), withPad: " ", startingAt: 0) }
            let fw = String(format: "%8.2f / %-8.2f", f.ulp, f86.ulp) + (f.beyond > 0 ? " \(f.beyond) BEYOND" : "")
            let bw = String(format: "%8.2f / %-8.2f", b.ulp, b86.ulp) + (b.beyond > 0 ? " \(b.beyond) BEYOND" : "")
            print(pad(s.op.rawValue, 13) + " " + pad(params, 16) + " " + pad(fw, 39) + " " + bw)
        }
        print(beyond == 0 ? "emulated-check: every output within the unit tests' bounds" : "emulated-check: \(beyond) outputs beyond the bounds")
        return beyond == 0 ? 0 : 1
    }

    /// Handles the two commands; nil when the arguments are not one of them.
    static func main(_ args: [String]) -> Int32? {
        do {
            if args.count == 2, args[0] == "emulated-write" { try write(args[1]); return 0 }
            if args.count == 3, args[0] == "emulated-check" { return try check(cases: args[1], out: args[2]) }
        } catch {
            print("error: \(error)")
            return 2
        }
        return nil
    }
}
