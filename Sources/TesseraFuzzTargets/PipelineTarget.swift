// Pipelines of random steps through tessera.h, run and differentiated, against the same steps
// made one call at a time (each of which the abi target checks against float64 references):
// the fused sweep must give the same bits.
import Foundation
import Tessera
import TesseraC
import _TesseraTestSupport

enum PipelineTarget {
    enum Step {
        case op(tessera_activation, Float, Float)
        case softmax(Int32, Bool)
    }

    static func run(_ data: [UInt8]) throws(FuzzFailure) {
        var r = FuzzBytes(data)
        var p: OpaquePointer?
        guard tessera_pipeline_create(&p) == TESSERA_OK else { throw FuzzFailure("pipeline_create failed: \(lastError())") }
        defer { _ = tessera_pipeline_destroy(p) }
        var steps: [Step] = []
        let runtime = ABITarget.runtimes[r.below(3)]
        // two rounds: a run after more steps are added must see them (the compiled program is cached)
        for _ in 0..<2 {
            for _ in 0..<Int(r.u8() % 5) { try add(&r, p, &steps) }
            try check(&r, p, steps, runtime)
        }
    }

    static func add(_ r: inout FuzzBytes, _ p: OpaquePointer?, _ steps: inout [Step]) throws(FuzzFailure) {
        let kind = r.u8() % 8
        let count = UInt8(UnaryOp.allCases.count)
        let op = tessera_activation(rawValue: UInt32(r.u8() % (count + 1)))
        let u = UnaryOp(index: Int(op.rawValue))
        switch kind {
        case 0:
            let status = tessera_pipeline_add_activation(p, op)
            try expectStatus(status, valid: u != nil, "add_activation \(op.rawValue)")
            if status == TESSERA_OK, let u { steps.append(.op(op, u.defaultParameters.0, u.defaultParameters.1)) }
        case 1:
            let d = Int32(r.u8() % 8) - 4, log = r.bool()
            let status = tessera_pipeline_add_softmax(p, d, log ? 1 : 0)
            try expectStatus(status, valid: nil, "add_softmax \(d)")
            if status == TESSERA_OK { steps.append(.softmax(d, log)) }
        case 2:
            let a = r.float(), b = r.float()
            let status = tessera_pipeline_add_affine(p, a, b)
            try expectStatus(status, valid: UnaryOp.affine.accepts(a, b), "add_affine(\(a), \(b))")
            if status == TESSERA_OK { steps.append(.op(tessera_activation(rawValue: UInt32(UnaryOp.affine.index)), a, b)) }
        case 3:
            let a = r.float(), b = r.float()
            let status = tessera_pipeline_add_clamp(p, a, b)
            try expectStatus(status, valid: UnaryOp.clamp.accepts(a, b), "add_clamp(\(a), \(b))")
            if status == TESSERA_OK { steps.append(.op(tessera_activation(rawValue: UInt32(UnaryOp.clamp.index)), a, b)) }
        default:
            // mostly an op with its parameters (the defaults often enough to fuse long chains)
            let (a, b) = r.bool() ? (u?.defaultParameters ?? (0, 0)) : (r.float(), r.float())
            let status = tessera_pipeline_add_activation_with(p, op, a, b)
            try expectStatus(status, valid: u.map { $0.accepts(a, b) } ?? false, "add_activation_with \(op.rawValue)(\(a), \(b))")
            if status == TESSERA_OK { steps.append(.op(op, a, b)) }
        }
    }

    static func check(_ r: inout FuzzBytes, _ p: OpaquePointer?, _ steps: [Step], _ rt: OpaquePointer?) throws(FuzzFailure) {
        let rank = Int(r.u8() % 3) + 1
        var shape: [Int64] = []
        var n = 1
        for _ in 0..<rank {
            var d = Int(r.u8() % 33)
            while d > 1 && n * d > 2048 { d /= 2 }
            shape.append(Int64(d)); n *= d
        }
        var x = EdgeValues.random(count: n, seed: UInt64(r.u16()))
        for _ in 0..<Int(r.u8() % 8) where n > 0 { x[r.below(n)] = r.float() }
        let what = "pipeline \(steps) shape \(shape)"
        if tessera_pipeline_explain(p) == nil || lastError() != "" { throw FuzzFailure("\(what): explain failed: \(lastError())") }

        // the reference: one call per step, every intermediate kept for the backward
        var acts = [x]
        var stepsOK = true
        for s in steps {
            var next = acts.last!
            let status = next.withUnsafeMutableBufferPointer { b in
                shape.withUnsafeBufferPointer { sh in
                    switch s {
                    case .op(let op, let a, let bb): tessera_activation_run_with(rt, op, a, bb, b.baseAddress, b.baseAddress, n)
                    case .softmax(let d, let log): (log ? tessera_log_softmax : tessera_softmax)(rt, b.baseAddress, b.baseAddress, sh.baseAddress, Int32(rank), d)
                    }
                }
            }
            if status != TESSERA_OK { stepsOK = false; break }
            acts.append(next)
        }
        var y = [Float](repeating: 7, count: n)
        let status = shape.withUnsafeBufferPointer { tessera_pipeline_run(rt, p, x, &y, $0.baseAddress, Int32(rank)) }
        try expectStatus(status, valid: steps.isEmpty ? nil : stepsOK, "\(what) run")
        guard status == TESSERA_OK else {
            if y.contains(where: { $0 != 7 }) { throw FuzzFailure("\(what): failed run wrote its output") }
            return
        }
        let want = steps.isEmpty ? x : acts.last!
        if let i = (0..<n).first(where: { y[$0].bitPattern != want[$0].bitPattern && !(y[$0].isNaN && want[$0].isNaN) }) {
            throw FuzzFailure("\(what): element \(i) (x \(x[i])) fused \(y[i]), one step at a time \(want[i])")
        }

        // the backward: each step's own backward, last to first, from the kept intermediates
        var dy = EdgeValues.random(count: n, seed: UInt64(r.u16()) &+ 1)
        for _ in 0..<Int(r.u8() % 4) where n > 0 { dy[r.below(n)] = r.float() }
        var g = dy
        var backOK = true
        for (k, s) in steps.enumerated().reversed() {
            let status = g.withUnsafeMutableBufferPointer { gb in
                shape.withUnsafeBufferPointer { sh in
                    switch s {
                    case .op(let op, let a, let b):
                        tessera_activation_backward_with(rt, op, a, b, acts[k], acts[k + 1], gb.baseAddress, gb.baseAddress, n)
                    case .softmax(let d, let log):
                        (log ? tessera_log_softmax_backward : tessera_softmax_backward)(rt, acts[k + 1], gb.baseAddress, gb.baseAddress, sh.baseAddress, Int32(rank), d)
                    }
                }
            }
            if status != TESSERA_OK { backOK = false; break }
        }
        var dx = [Float](repeating: 7, count: n)
        let bstatus = shape.withUnsafeBufferPointer { tessera_pipeline_backward(rt, p, x, dy, &dx, $0.baseAddress, Int32(rank)) }
        try expectStatus(bstatus, valid: steps.isEmpty ? nil : backOK, "\(what) backward")
        guard bstatus == TESSERA_OK, !steps.isEmpty else { return }
        if let i = (0..<n).first(where: { dx[$0].bitPattern != g[$0].bitPattern && !(dx[$0].isNaN && g[$0].isNaN) }) {
            throw FuzzFailure("\(what): backward element \(i) (x \(x[i]), dy \(dy[i])) fused \(dx[i]), one step at a time \(g[i])")
        }
    }
}
