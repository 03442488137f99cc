import Foundation

/// The scalar math of softmax's reductions: combining per-chunk partials and carrying a
/// double offset in two floats.  Pure functions over caller memory, like the C kernels.
package enum SoftmaxMath {
    /// Combines per-chunk column partials in chunk order.  Column j's partials of chunk c are
    /// at `m[c * stride + j]` (max) and `s[c * stride + j]` (sum of exp(x - shift)).  Softmax:
    /// each chunk's factor exp(m - M) / S replaces its max; log_softmax: the offset M + log S
    /// as hi + lo floats replaces the maxima of chunks 0 and 1 (m needs two rows).  The sums
    /// are consumed: s keeps each chunk's scale (exp(m - M), or 1/exp(M) below) afterwards.
    ///
    /// With `expAgainstZero` (log_softmax only): a chunk whose max has |max| <= 40 summed
    /// exp(x) against 0 (`logReference`), and where the overall max M is such a chunk's, those
    /// chunks' sums are divided by the kernel's own exp(M) (`expAgainstZero(M)`), so that the
    /// max's term counts as exactly 1, as with M as the reference: a row of one finite value
    /// gives exactly 0.
    package static func combineColumns(m: UnsafeMutablePointer<Float>, s: UnsafeMutablePointer<Double>, chunks: Int, stride: Int,
                               columns: Range<Int>, log: Bool, expAgainstZero: ((Float) -> Float)? = nil) {
        if chunks == 1 && expAgainstZero == nil {
            // one chunk (short columns: this is per element work there): exp(m - M) = 1, and
            // the factor 1 / S, bit for bit what the general path gives
            for j in columns {
                let M = Double(m[j])
                let S = M == -.infinity ? .nan : s[j] // a column of only -inf: NaN, as PyTorch
                if log {
                    (m[j], m[stride + j]) = offset(M, Foundation.log(S))
                } else {
                    m[j] = Float(S.isNaN ? .nan : 1 / S)
                    s[j] = M == -.infinity ? 0 : 1
                }
            }
            return
        }
        for j in columns {
            var M = -Double.infinity
            for c in 0..<chunks { M = max(M, Double(m[c * stride + j])) }
            // against 0: the max's own exp, as the kernels computed it (0: none taken)
            let eM = expAgainstZero.map { M != 0 && M.isFinite && logReference(Float(M)) == 0 ? Double($0(Float(M))) : 0 } ?? 0
            var S = 0.0
            for c in 0..<chunks {
                let mc = Double(m[c * stride + j])
                let shift = expAgainstZero != nil && mc != -.infinity ? Double(logReference(Float(mc))) : mc
                if eM != 0 && shift == 0 {
                    S += s[c * stride + j] / eM
                    s[c * stride + j] = 1 / eM
                    continue
                }
                // a chunk with no finite max has shift 0: its sum (0 or NaN) adds as it is
                let scale = mc == -.infinity ? 1 : Foundation.exp(shift - M)
                S += s[c * stride + j] * scale
                s[c * stride + j] = mc == -.infinity ? 0 : scale
            }
            if M == -.infinity { S = .nan } // a column of only -inf: NaN, as PyTorch
            if log {
                (m[j], m[stride + j]) = offset(M, Foundation.log(S))
            } else {
                for c in 0..<chunks {
                    m[c * stride + j] = Float(S.isNaN ? .nan : s[c * stride + j] / S)
                }
            }
        }
    }

    /// Combines the column statistics of `chunks` chunks in chunk order: chunk c of column j
    /// (at `c * stride + j`) has a reference r, the sum s of exp(x - shift) (shift = r, 0 where
    /// it is -inf), its max mx and min mn (`cols_stats`; `cols_exp_sum` with r = mx).  Writes
    /// column j's constants at `out[j]`, `out[stride + j]`, `out[2 * stride + j]`: softmax: the
    /// max M (cols_softmax_out's shift comes from it), the factor 1 / S and the min (the
    /// output's near test); log_softmax: the offset M + log S as hi and lo floats.  A
    /// column of only -inf (or with NaN or +inf) gets S = NaN, as PyTorch.
    package static func combineColumnStats(r: UnsafePointer<Float>, s: UnsafePointer<Double>, mx: UnsafePointer<Float>,
                                           mn: UnsafePointer<Float>, chunks: Int, stride: Int, columns: Range<Int>,
                                           log: Bool, out: UnsafeMutablePointer<Float>) {
        for j in columns {
            var M = -Double.infinity, L = Double.infinity
            for c in 0..<chunks {
                M = max(M, Double(mx[c * stride + j]))
                L = min(L, Double(mn[c * stride + j]))
            }
            var S = 0.0
            for c in 0..<chunks {
                let rc = Double(r[c * stride + j])
                // a chunk whose shift is 0 for a -inf reference holds only -inf (sum 0) and NaN
                S += rc == -.infinity || rc == M ? s[c * stride + j] : s[c * stride + j] * Foundation.exp(rc - M)
            }
            if M == -.infinity { S = .nan }
            if log {
                (out[j], out[stride + j]) = offset(M, Foundation.log(S))
            } else {
                out[j] = Float(M)
                out[stride + j] = Float(1 / S)
                out[2 * stride + j] = Float(L)
            }
        }
    }

    /// A double as the float nearest it plus the float nearest the rest.
    package static func split(_ c: Double) -> (Float, Float) {
        let hi = Float(c)
        // beyond float's range the rest is not a number: hi (+-inf) carries it
        return (hi, c.isFinite && hi.isFinite ? Float(c - Double(hi)) : 0)
    }

    /// The reference log_softmax's rows and chunks of max m sum their exps against: 0 where
    /// |m| <= 40, so that x - 0 is exact with no TwoSum (the exact x - m cost 14 % of a
    /// cache-resident row; docs/records/zen3-avx2/README.md, session 12), else m.  Below 40,
    /// exp(x) and a row's sum stay far from overflow (n e^40 < 1e27 for any n); above -40, the
    /// exps that flush to 0 (x < -87.3) weigh less than n e^-47 < 1e-11 of the sum.  NaN keeps m.
    @inline(__always) package static func logReference(_ m: Float) -> Float { abs(m) <= 40 ? 0 : m }

    /// log_softmax's offset M + L (the max plus the log of the sum) as hi + lo floats, with the
    /// double sum's own rounding error kept (TwoSum): where M dwarfs L -- a row at FLT_MAX, found
    /// by the soak run -- M + L in double drops L, and lo brings it back.
    package static func offset(_ M: Double, _ L: Double) -> (Float, Float) {
        let s = M + L
        guard s.isFinite else { return split(s) }
        let b = s - M, err = (M - (s - b)) + (L - b)
        let hi = Float(s)
        guard hi.isFinite else { return split(s) }
        return (hi, Float((s - Double(hi)) + err))
    }

}
