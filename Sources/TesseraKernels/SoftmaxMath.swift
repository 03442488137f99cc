import Foundation

/// The scalar math of softmax's reductions: combining per-chunk partials and carrying a
/// double offset in two floats.  Pure functions over caller memory, like the C kernels.
package enum SoftmaxMath {
    /// Combines per-chunk column partials in chunk order.  Column j's partials of chunk c are
    /// at `m[c * stride + j]` (max) and `s[c * stride + j]` (sum of exp(x - shift)).  Softmax:
    /// each chunk's factor exp(m - M) / S replaces its max; log_softmax: the offset M + log S
    /// as hi + lo floats replaces the maxima of chunks 0 and 1 (m needs two rows).  The sums
    /// are consumed: s keeps each chunk's exp(m - M) afterwards.
    package static func combineColumns(m: UnsafeMutablePointer<Float>, s: UnsafeMutablePointer<Double>, chunks: Int, stride: Int,
                               columns: Range<Int>, log: Bool) {
        if chunks == 1 {
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
            var S = 0.0
            for c in 0..<chunks {
                let mc = Double(m[c * stride + j])
                // a chunk with no finite max has shift 0: its sum (0 or NaN) adds as it is
                let scale = mc == -.infinity ? 1 : Foundation.exp(mc - M)
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

    /// A double as the float nearest it plus the float nearest the rest.
    package static func split(_ c: Double) -> (Float, Float) {
        let hi = Float(c)
        // beyond float's range the rest is not a number: hi (+-inf) carries it
        return (hi, c.isFinite && hi.isFinite ? Float(c - Double(hi)) : 0)
    }

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
