// The element-wise, softmax and PReLU entry points of tessera.h, forward and backward, on
// buffers placed in one arena (disjoint, identical, overlapping or NULL), with counts, shapes,
// ranks, dims and parameters from the fuzzer.
import Foundation
import Tessera
import TesseraC
import _TesseraTestSupport

enum ABITarget {
    /// Bounded memory: every buffer fits in one slot of the arena.
    static let slot = 1536
    /// The default runtime (NULL), a 1-worker one and a 3-worker one with small tiles (many tiles).
    nonisolated(unsafe) static let runtimes: [OpaquePointer?] = {
        var one: OpaquePointer?, three: OpaquePointer?
        _ = tessera_runtime_create(1, 0, nil, &one)
        _ = tessera_runtime_create(3, 4096, nil, &three)
        return [nil, one, three]
    }()

    /// Whether the documented accuracy bounds cover these parameters (Numerics.md): |alpha| <= 1e6
    /// for elu, 0 < alpha <= 1e6 for celu, a finite positive beta for softplus.  Outside (found by
    /// the soak run: celu with alpha = -1e-7, elu with alpha = 3e38) the formula runs in float32
    /// without a bound, and the target checks the rest of the contract only.
    static func bounded(_ u: UnaryOp, _ a: Float, _ b: Float) -> Bool {
        switch u.id {
        // exps below FLT_MIN flush to zero (Numerics.md): alpha * exp(x) loses them unless
        // |alpha| * FLT_MIN stays negligible
        case .elu: abs(a) <= 1e6
        case .celu: a > 0 && a <= 1e6
        case .softplus: a.isFinite && a > 0
        default: true
        }
    }

    static func run(_ data: [UInt8]) throws(FuzzFailure) {
        var r = FuzzBytes(data)
        let arena = Arena(count: 4 * slot)
        let fill = EdgeValues.random(count: arena.count, seed: UInt64(r.u16()))
        for i in 0..<arena.count { arena.base[i] = fill[i] }
        for _ in 0..<Int(r.u8() % 32) { arena.base[r.below(arena.count)] = r.float() } // specials where the fuzzer wants them
        for _ in 0..<4 where !r.isExhausted {
            var call = Call(r: r, arena: arena)
            switch call.r.u8() % 6 {
            case 0: try call.forward()
            case 1: try call.backward()
            case 2: try call.softmax()
            case 3: try call.softmaxBackward()
            case 4: try call.prelu()
            default: try call.preluBackward()
            }
            r = call.r
        }
    }

    struct Call {
        var r: FuzzBytes
        let arena: Arena
        let runtime: OpaquePointer?
        var before: [UInt32]

        init(r: FuzzBytes, arena: Arena) {
            self.r = r
            self.arena = arena
            runtime = ABITarget.runtimes[self.r.below(3)]
            before = arena.snapshot()
        }

        func old(_ p: UnsafePointer<Float>, _ i: Int) -> Float { Float(bitPattern: before[p - UnsafePointer(arena.base) + i]) }

        /// A buffer of `n` floats: NULL, one of the four slots, exactly an earlier buffer, or anywhere.
        mutating func place(_ n: Int, like others: [UnsafeMutablePointer<Float>?] = []) -> UnsafeMutablePointer<Float>? {
            let sel = r.u8() % 16
            if sel == 0 { return nil }
            if sel < 9 { return arena.base + Int(sel % 4) * ABITarget.slot }
            if sel < 12, !others.isEmpty { return others[Int(sel) % others.count] }
            return arena.base + r.below(arena.count - min(n, arena.count) + 1)
        }

        /// An element count: mostly within a slot, sometimes a hostile size_t (a negative int passed
        /// as size_t, 2^62) that must be rejected.
        mutating func count() -> (Int, hostile: Bool) {
            switch r.u8() {
            case 255: return (Int(bitPattern: UInt.max - UInt(r.u8())), true)
            case 254: return (1 << 62, true)
            case let s where s < 32: return (Int(s % 18), false)
            default: return (r.below(ABITarget.slot + 1), false)
            }
        }

        /// An op index, sometimes out of range.
        mutating func op() -> (tessera_activation, UnaryOp?) {
            let i = r.u8() % UInt8(UnaryOp.allCases.count + 2)
            let raw = i == UInt8(UnaryOp.allCases.count + 1) ? UInt32.max : UInt32(i)
            return (tessera_activation(rawValue: raw), UnaryOp(index: Int(raw)))
        }

        /// A shape of rank 0-5 with at most one slot of elements, sometimes with a negative
        /// extent, a rank beyond TESSERA_MAX_RANK or a NULL shape.
        mutating func shape() -> (dims: [Int64], rank: Int32, nullShape: Bool, valid: Bool, count: Int) {
            let sel = r.u8()
            var rank = Int(sel % 6)
            var dims: [Int64] = []
            var n = 1
            for _ in 0..<rank {
                var d = Int(r.u8() % 40)
                if d > 24 { d = Int(r.u8() % 4) }  // many 0-3 extents
                while d > 1 && n * d > ABITarget.slot { d /= 2 }
                dims.append(Int64(d))
                n *= d
            }
            var valid = true
            if sel >= 250 { dims.append(-Int64(r.u8()) - 1); rank += 1; valid = false }
            if sel == 249 { rank = Int(TESSERA_MAX_RANK) + 1 + Int(r.u8() % 4); valid = false }
            if sel == 248 { rank = -1; valid = false }
            let nullShape = sel == 247 && rank > 0
            if nullShape { valid = false }
            while dims.count < max(rank, 0) { dims.append(1) }
            return (dims, Int32(rank), nullShape, valid, valid ? n : 0)
        }

        mutating func dim(rank: Int32) -> (Int32, Bool) {
            let d = Int32(r.u8() % 16) - 8
            let rr = max(rank, 1)
            return (d, d >= -rr && d < rr)
        }

        func checkUntouched(_ status: tessera_status, _ what: String) throws(FuzzFailure) {
            if status != TESSERA_OK, let i = arena.changed(since: before) {
                throw FuzzFailure("\(what): failed with status \(status.rawValue) but wrote arena[\(i)]")
            }
        }

        mutating func forward() throws(FuzzFailure) {
            let (op, u) = op()
            let a = r.float(), b = r.float()
            let (n, hostile) = count()
            let x = place(n), y = place(n, like: [x])
            let what = "forward \(u?.rawValue ?? "op \(op.rawValue)")(\(a), \(b)) n=\(n) x=\(off(x)) y=\(off(y))"
            let valid = u != nil && u!.accepts(a, b) && !hostile
                && (n == 0 || (x != nil && y != nil && (x == y || !overlaps(x, y, n))))
            let status = tessera_activation_run_with(runtime, op, a, b, x, y, n)
            try expectStatus(status, valid: valid, what)
            try checkUntouched(status, what)
            guard status == TESSERA_OK, n > 0, let u, let x, let y else { return }
            if let i = arena.changed(since: before, except: y, count: n) { throw FuzzFailure("\(what): wrote arena[\(i)] outside the output") }
            guard ABITarget.bounded(u, a, b) else { return }
            for i in 0..<n {
                let xi = old(x, i), ref = Reference.op(u, Double(xi), Double(a), Double(b))
                if !ULP.acceptable(y[i], ref) {
                    throw FuzzFailure("\(what): x[\(i)]=\(xi) gave \(y[i]), the reference \(ref) (\(ULP.error(y[i], ref)) ULP)")
                }
            }
        }

        mutating func backward() throws(FuzzFailure) {
            let (op, u) = op()
            let a = r.float(), b = r.float()
            let (n, hostile) = count()
            let x = place(n), y = place(n, like: [x]), dy = place(n, like: [x, y]), dx = place(n, like: [dy, x, y])
            // an op that reads its output gets one (sigmoid's in [0, 1], tanh's in [-1, 1]), as
            // the contract asks: the forward's y, computed in place where y is
            if let u, u.saved == .output, u.accepts(a, b), !hostile, n > 0, let y {
                _ = tessera_activation_run_with(nil, op, a, b, y, y, n)
                before = arena.snapshot()
            }
            let what = "backward \(u?.rawValue ?? "op \(op.rawValue)")(\(a), \(b)) n=\(n) x=\(off(x)) y=\(off(y)) dy=\(off(dy)) dx=\(off(dx))"
            var saved: UnsafeMutablePointer<Float>?
            var savedOK = true
            if let u {
                switch u.saved {
                case .input: saved = x; savedOK = x != nil
                case .output: saved = y; savedOK = y != nil
                case .either: saved = x ?? y; savedOK = saved != nil
                case .none: saved = nil
                }
            }
            let valid = u != nil && u!.accepts(a, b) && !hostile
                && (n == 0 || (dy != nil && dx != nil && (dx == dy || !overlaps(dx, dy, n)) && savedOK && !overlaps(saved, dx, n)))
            let status = tessera_activation_backward_with(runtime, op, a, b, x, y, dy, dx, n)
            try expectStatus(status, valid: valid, what)
            try checkUntouched(status, what)
            guard status == TESSERA_OK, n > 0, let u, let dy, let dx else { return }
            if let i = arena.changed(since: before, except: dx, count: n) { throw FuzzFailure("\(what): wrote arena[\(i)] outside grad_input") }
            guard ABITarget.bounded(u, a, b) else { return }
            for i in 0..<n {
                let s = saved.map { Double(old($0, i)) } ?? 0, g = old(dy, i)
                let d = Reference.derivative(u, saved: s, Double(a), Double(b)), ref = d * Double(g)
                let got = dx[i]
                // where op' is 0 -- or within the bound's 1e-7 of it, which the kernel may return as
                // 0 -- a non-finite dy gives 0 (a select, as PyTorch's threshold_backward) or NaN (a
                // product, as its sigmoid_backward)
                let ok = (got.isNaN && ref.isNaN) || ULP.error(got, ref) <= 16 || abs(Double(got) - ref) <= 1e-7 * Double(abs(g))
                    || (abs(d) <= 1e-7 && !g.isFinite && (got == 0 || got.isNaN))
                if !ok { throw FuzzFailure("\(what): saved[\(i)]=\(s) dy=\(g) gave \(got), the reference \(ref)") }
            }
        }

        mutating func softmax() throws(FuzzFailure) {
            let log = r.bool()
            let s = shape()
            let (d, dimOK) = dim(rank: s.rank)
            let n = s.count
            let x = place(n), y = place(n, like: [x])
            let what = "\(log ? "log_softmax" : "softmax") shape \(s.dims) rank \(s.rank) dim \(d) x=\(off(x)) y=\(off(y))"
            let valid = s.valid && dimOK && (n == 0 || (x != nil && y != nil && (x == y || !overlaps(x, y, n))))
            let status = s.dims.withUnsafeBufferPointer { sh in
                (log ? tessera_log_softmax : tessera_softmax)(runtime, x, y, s.nullShape ? nil : sh.baseAddress, s.rank, d)
            }
            try expectStatus(status, valid: valid, what)
            try checkUntouched(status, what)
            guard status == TESSERA_OK, n > 0, let x, let y else { return }
            if let i = arena.changed(since: before, except: y, count: n) { throw FuzzFailure("\(what): wrote arena[\(i)] outside the output") }
            try forEachRow(s.dims.map(Int.init), d) { (idx: [Int]) throws(FuzzFailure) in
                let ref = Reference.softmax(idx.map { old(x, $0) }, log: log)
                for (k, i) in idx.enumerated() {
                    let got = Double(y[i]), want = ref[k]
                    let ok = want.isNaN ? got.isNaN
                        : log ? abs(got - want) <= 4e-7 * max(abs(want), 1) || got == want
                        : abs(got - want) <= 2e-6 * abs(want) || (abs(want) < 1.2e-38 && abs(got - want) < 1e-37)
                    if !ok { throw FuzzFailure("\(what): element \(i) gave \(got), the reference \(want)") }
                }
            }
        }

        mutating func softmaxBackward() throws(FuzzFailure) {
            let log = r.bool()
            let s = shape()
            let (d, dimOK) = dim(rank: s.rank)
            let n = s.count
            let y = place(n), dy = place(n, like: [y]), dx = place(n, like: [dy, y])
            // y is what the backward's contract asks for: the forward's output (softmax in [0, 1],
            // log_softmax <= 0), computed in place where the shape allows
            if s.valid, dimOK, n > 0, let y {
                _ = s.dims.withUnsafeBufferPointer { (log ? tessera_log_softmax : tessera_softmax)(nil, y, y, $0.baseAddress, s.rank, d) }
                before = arena.snapshot()
            }
            let what = "\(log ? "log_softmax" : "softmax")_backward shape \(s.dims) rank \(s.rank) dim \(d) y=\(off(y)) dy=\(off(dy)) dx=\(off(dx))"
            let valid = s.valid && dimOK
                && (n == 0 || (y != nil && dy != nil && dx != nil && (dx == dy || !overlaps(dx, dy, n)) && !overlaps(y, dx, n)))
            let status = s.dims.withUnsafeBufferPointer { sh in
                (log ? tessera_log_softmax_backward : tessera_softmax_backward)(runtime, y, dy, dx, s.nullShape ? nil : sh.baseAddress, s.rank, d)
            }
            try expectStatus(status, valid: valid, what)
            try checkUntouched(status, what)
            guard status == TESSERA_OK, n > 0, let y, let dy, let dx else { return }
            if let i = arena.changed(since: before, except: dx, count: n) { throw FuzzFailure("\(what): wrote arena[\(i)] outside grad_input") }
            try forEachRow(s.dims.map(Int.init), d) { (idx: [Int]) throws(FuzzFailure) in
                let ys = idx.map { Double(old(y, $0)) }, gs = idx.map { Double(old(dy, $0)) }
                // the forward's output is what a caller passes; for arbitrary y the sum is still defined
                // the sum as a float32 sum ends (PyTorch's): beyond FLT_MAX it is +-inf
                let sum = Double(Float(log ? gs.reduce(0, +) : zip(ys, gs).reduce(0) { $0 + $1.0 * $1.1 }))
                let mag = log ? gs.reduce(0) { $0 + abs($1) } : zip(ys, gs).reduce(0) { $0 + abs($1.0 * $1.1) }
                for (k, i) in idx.enumerated() {
                    let want = log ? gs[k] - Foundation.exp(ys[k]) * sum : ys[k] * (gs[k] - sum)
                    let scale = log ? abs(gs[k]) + Foundation.exp(ys[k]) * mag : abs(ys[k]) * (abs(gs[k]) + mag)
                    let got = Double(dx[i])
                    // log_softmax: exp(y) below FLT_MIN flushes to zero (Numerics.md), so exp(y) * sum
                    // is lost, or is NaN where the sum is infinite (PyTorch's too, below 2^-149)
                    let flushed = log && Foundation.exp(ys[k]) < Double(Float.leastNormalMagnitude)
                    let ok = want.isNaN ? got.isNaN
                        : (got == want || abs(got - want) <= 1e-5 * scale + 1e-30
                           || (flushed && (abs(got - gs[k]) <= 1e-5 * abs(gs[k]) + 1e-30 || (want.isInfinite && got.isNaN))))
                    if !ok { throw FuzzFailure("\(what): element \(i) (y \(ys[k]), dy \(gs[k])) gave \(got), the reference \(want)") }
                }
            }
        }

        /// PReLU geometry as the header states it: 1 weight, or shape[1] of them.
        func preluValid(_ s: (dims: [Int64], rank: Int32, nullShape: Bool, valid: Bool, count: Int), _ wc: Int) -> Bool {
            s.valid && (wc == 1 || (s.rank >= 2 && s.dims[1] == Int64(wc)))
        }

        func channel(_ i: Int, _ dims: [Int64], _ wc: Int) -> Int {
            guard wc > 1 else { return 0 }
            let inner = dims[2...].reduce(1) { $0 * Int($1) }
            return (i / inner) % wc
        }

        mutating func weightCount(_ s: (dims: [Int64], rank: Int32, nullShape: Bool, valid: Bool, count: Int)) -> Int {
            switch r.u8() % 4 {
            case 0: return 1
            case 1: return Int(r.u8() % 12)
            default: return s.rank >= 2 && s.dims.count >= 2 && s.dims[1] > 0 ? Int(s.dims[1]) : 1
            }
        }

        mutating func prelu() throws(FuzzFailure) {
            let s = shape()
            let wc = weightCount(s)
            let n = s.count
            let x = place(n), y = place(n, like: [x]), w = place(wc, like: [x, y])
            let what = "prelu shape \(s.dims) rank \(s.rank) weights \(wc) x=\(off(x)) y=\(off(y)) w=\(off(w))"
            let valid = w != nil && wc > 0 && preluValid(s, wc)
                && (n == 0 || (x != nil && y != nil && (x == y || !overlaps(x, y, n)) && !overlapsAsym(w, wc, y, n)))
            let status = s.dims.withUnsafeBufferPointer { sh in
                tessera_prelu(runtime, x, y, s.nullShape ? nil : sh.baseAddress, s.rank, w, wc)
            }
            try expectStatus(status, valid: valid, what)
            try checkUntouched(status, what)
            guard status == TESSERA_OK, n > 0, let x, let y, let w else { return }
            if let i = arena.changed(since: before, except: y, count: n) { throw FuzzFailure("\(what): wrote arena[\(i)] outside the output") }
            for i in 0..<n {
                let xi = old(x, i), wi = old(w, channel(i, s.dims, wc))
                let want = xi > 0 ? xi : wi * xi
                if y[i].bitPattern != want.bitPattern && !(y[i].isNaN && want.isNaN) {
                    throw FuzzFailure("\(what): x[\(i)]=\(xi) w=\(wi) gave \(y[i]), expected \(want)")
                }
            }
        }

        mutating func preluBackward() throws(FuzzFailure) {
            let s = shape()
            let wc = weightCount(s)
            let n = s.count
            let x = place(n), dy = place(n, like: [x]), dx = place(n, like: [dy, x])
            let w = place(wc, like: [x]), dw = place(wc, like: [w, dx])
            let what = "prelu_backward shape \(s.dims) rank \(s.rank) weights \(wc) x=\(off(x)) dy=\(off(dy)) dx=\(off(dx)) w=\(off(w)) dw=\(off(dw))"
            // grad_weight is written: it may share memory with nothing the call reads or writes
            let dwApart = [UnsafeMutablePointer<Float>?](arrayLiteral: x, dy, dx).allSatisfy { !overlapsAsym(dw, wc, $0, n) }
                && !overlaps(dw, w, wc)
            let valid = w != nil && dw != nil && wc > 0 && preluValid(s, wc) && dwApart
                && (n == 0 || (dy != nil && dx != nil && (dx == dy || !overlaps(dx, dy, n)) && x != nil && !overlaps(x, dx, n)
                               && !overlapsAsym(w, wc, dx, n)))
            let status = s.dims.withUnsafeBufferPointer { sh in
                tessera_prelu_backward(runtime, x, dy, dx, s.nullShape ? nil : sh.baseAddress, s.rank, w, wc, dw)
            }
            try expectStatus(status, valid: valid, what)
            try checkUntouched(status, what)
            guard status == TESSERA_OK, let dw else { return }
            for c in 0..<wc where n == 0 && dw[c] != 0 { throw FuzzFailure("\(what): grad_weight[\(c)] = \(dw[c]) for an empty tensor") }
            guard n > 0, let x, let dy, let dx, let w else { return }
            var sums = [Double](repeating: 0, count: wc), mags = [Double](repeating: 0, count: wc)
            for i in 0..<n {
                let xi = old(x, i), gi = old(dy, i), c = channel(i, s.dims, wc), wi = old(w, c)
                let want = xi > 0 ? gi : wi * gi
                if dx[i].bitPattern != want.bitPattern && !(dx[i].isNaN && want.isNaN) {
                    throw FuzzFailure("\(what): x[\(i)]=\(xi) dy=\(gi) gave \(dx[i]), expected \(want)")
                }
                if !(xi > 0) { sums[c] += Double(xi) * Double(gi); mags[c] += abs(Double(xi) * Double(gi)) }
            }
            for c in 0..<wc {
                let got = Double(dw[c])
                let ok = sums[c].isNaN ? got.isNaN : (got == sums[c] || abs(got - sums[c]) <= 1e-5 * mags[c] + 1e-30
                                                       || (abs(sums[c]) > Double(Float.greatestFiniteMagnitude) && got.isInfinite))
                if !ok { throw FuzzFailure("\(what): grad_weight[\(c)] gave \(got), the reference \(sums[c])") }
            }
        }

        func off(_ p: UnsafeMutablePointer<Float>?) -> String { p.map { "\($0 - arena.base)" } ?? "NULL" }
    }
}

/// [a, a + na) and [b, b + nb) overlap.
func overlapsAsym(_ a: UnsafePointer<Float>?, _ na: Int, _ b: UnsafePointer<Float>?, _ nb: Int) -> Bool {
    guard let a, let b, na > 0, nb > 0 else { return false }
    return a < b + nb && b < a + na
}

/// Calls `body` with the flat indices of every row along `dim` of `shape`.
func forEachRow(_ shape: [Int], _ dim: Int32, _ body: ([Int]) throws(FuzzFailure) -> Void) throws(FuzzFailure) {
    let dims = shape.isEmpty ? [1] : shape
    let d = Int(dim) < 0 ? Int(dim) + dims.count : Int(dim)
    let D = dims[d], inner = dims[(d + 1)...].reduce(1, *), outer = dims[..<d].reduce(1, *)
    for o in 0..<outer {
        for j in 0..<inner { try body((0..<D).map { o * D * inner + $0 * inner + j }) }
    }
}
