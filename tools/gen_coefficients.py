#!/usr/bin/env python3
"""Generates Sources/CTesseraKernels/coefficients.h: the polynomial coefficients the
vector kernels use.  Fits are weighted least squares on Chebyshev nodes (relative error),
evaluated afterwards the way the kernels do (float32 coefficients, FMA Horner) so the
printed error is what the kernels get.  Needs numpy + scipy; the kernels do not."""
import numpy as np
from scipy.special import erfcx
import numpy.polynomial.chebyshev as C

def f32(a): return np.asarray(a, dtype=np.float64).astype(np.float32).astype(np.float64)
def horner(t, p):
    acc = np.full_like(t, f32(p[-1]))
    for c in p[-2::-1]:
        acc = f32(acc * t + f32(c))
    return acc
def fit(f, lo, hi, deg, basis=lambda x: x):
    """least-squares relative fit of f on [lo,hi] as polynomial in basis(x); returns monomial coefs"""
    x = (np.cos(np.linspace(0, np.pi, 20000)) * (hi - lo) + (hi + lo)) / 2
    y = f(x); b = basis(x)
    A = np.vstack([b ** i for i in range(deg + 1)]).T
    c, *_ = np.linalg.lstsq(A / np.abs(y)[:, None], y / np.abs(y), rcond=None)
    return c

out = []
def emit(name, coefs):
    out.append(f"static const float {name}[{len(coefs)}] = {{" + ", ".join(float(np.float32(c)).hex() + "f" for c in coefs) + "};")

# exp(r) = 1 + r*P(r) on [-ln2/2, ln2/2], P of degree 5: 0.7 eps (degree 4: 2.1 eps).
h = np.log(2) / 2
pe = fit(lambda r: np.where(np.abs(r) < 1e-12, 1.0, np.expm1(r) / np.where(r == 0, 1, r)), -h, h, 5)
r = np.linspace(-h, h, 400001)
err = np.max(np.abs(f32(1 + f32(r * horner(r, pe))) / np.exp(r) - 1))
print("exp: max rel err", err)
emit("ts_exp_poly", pe)
# softmax's exponential: degree 5 overall (2.1 eps) is enough for its 2e-6 bound and saves an FMA
pe5 = fit(lambda r: np.where(np.abs(r) < 1e-12, 1.0, np.expm1(r) / np.where(r == 0, 1, r)), -h, h, 4)
print("exp (softmax, degree 5): max rel err", np.max(np.abs(f32(1 + f32(r * horner(r, pe5))) / np.exp(r) - 1)))
emit("ts_exp_poly5", pe5)

# exp(a) = 2^m 2^(j/4) exp(r), |r| <= ln2/8: the quarter-step table (float, 0.5 ulp each) and
# exp(r) = 1 + r*P(r) with P of degree 3 on the narrower interval -- two FMAs fewer than the
# degree-5 polynomial and a shorter chain (docs/records/zen3-avx2/README.md, session 11).
q = np.log(2) / 8
pq = fit(lambda r: np.where(np.abs(r) < 1e-12, 1.0, np.expm1(r) / np.where(r == 0, 1, r)), -q, q, 3)
rq = np.linspace(-q, q, 400001)
print("exp (quarter-step, degree 4): max rel err", np.max(np.abs(f32(1 + f32(rq * horner(rq, pq))) / np.exp(rq) - 1)))
emit("ts_exp_q3", pq)
emit("ts_exp2_quarter", [2.0 ** (j / 4) for j in range(4)])
# each entry's rounding, relative: T_j (1 + d_j) = 2^(j/4) (the kernel adds d_j next to r P(r), so
# the result has no trace of the entries' 0.5 ulp)
emit("ts_exp2_quarter_rel", [2.0 ** (j / 4) / f32(2.0 ** (j / 4)) - 1 for j in range(4)])

# tanh(x) = h/(1 + h), h = expm1(2x)/2 = 2^n E(u) + (2^(n-1) - 1/2), x = n ln2/2 + u: E(u) =
# expm1(2u)/2 = u + u^2 Q(u) with Q(u) = 2 P'(2u), P' the exp polynomial without its constant term
# (P(r) = 1 + r P'(r)): Q's coefficients are P's scaled by powers of two, exactly.
emit("ts_tanh_em", [f32(pe[k + 1]) * 2.0 ** (k + 1) for k in range(5)])
u = np.linspace(-h / 2, h / 2, 400001); u = u[u != 0]
E = f32(u + f32(f32(u * u) * horner(u, [f32(pe[k + 1]) * 2.0 ** (k + 1) for k in range(5)])))
print("tanh's expm1(2u)/2: max rel err", np.max(np.abs(E / (np.expm1(2 * u) / 2) - 1)))

# Phi(-z) * exp(z^2/2) = 0.5*erfcx(z/sqrt2) on [0, 8] (z = |x|; beyond, Phi(-z) < 7e-16 and the
# absolute floor applies), four intervals indexed by the exponent of t = fma(min(z, 8), S, C):
# [1, 2) -> [0, 0.52), [2, 4) -> [0.52, 1.70), [4, 8) -> [1.70, 4.07), [8, 16) -> [4.07, 8].  The
# biased exponent's low two bits (127..130 -> 3, 0, 1, 2) pick the entry, so the tables hold
# the intervals in the order 1, 2, 3, 0 (an in-lane 4-entry permute: 1 cycle, not vpermps's 1.4,
# docs/records/zen3-avx2/README.md).  Each a degree-8 polynomial in d = z - center, fitted
# toward minimax (Lawson's reweighting), the highest coefficient rounded first and the rest
# refitted.  Degree 8 with S, C chosen by an emulation of the whole kernel over a sample of
# every 21st float in [1e-3, 16] (3.06 ULP there; degree 9 with S = 1.5, C = 1 gave 2.90):
# one lookup and one FMA fewer than degree 9, 0.92-0.98x the time (docs/records/zen3-avx2/README.md,
# session 12).
S = np.float32(1.6875); C0 = np.float32(1.125); DEG = 8; ZMAX = 8.0
Q = lambda z: 0.5 * erfcx(z / np.sqrt(2))
def fit_minimax(f, lo, hi, deg, iters=25):
    x = (np.cos(np.linspace(0, np.pi, 6000)) * (hi - lo) + (hi + lo)) / 2
    y = f(x); A = np.vstack([x ** i for i in range(deg + 1)]).T
    fixed = {}
    for k in range(deg, -1, -1):
        free = [i for i in range(deg + 1) if i not in fixed]
        yy = y - sum(fixed[i] * x ** i for i in fixed)
        Af = A[:, free]; w = np.ones_like(x)
        for _ in range(iters):
            c, *_ = np.linalg.lstsq(Af * (w / np.abs(y))[:, None], w * yy / np.abs(y), rcond=None)
            e = np.abs((Af @ c - yy) / y); w = w * (e / e.max() + 1e-3) ** 0.5; w /= w.max()
        fixed[k] = float(np.float32(c[free.index(k)]))
    return [fixed[i] for i in range(deg + 1)]
bounds = [0.0] + [(2.0 ** k - float(C0)) / float(S) for k in (1, 2, 3)] + [ZMAX]
centers = [0.0] * 4; coefs = [None] * 4
worst = 0
for i in range(4):
    lo, hi = bounds[i], bounds[i + 1]
    c = float(np.float32((lo + hi) / 2))
    m = 1e-3  # the FMA's rounding may put a z this close to a boundary on either side
    p = fit_minimax(lambda d: Q(d + c), max(lo - m, 0) - c, hi + m - c, DEG)
    slot = (i + 3) % 4  # exponent 127 + i, low two bits
    centers[slot] = c; coefs[slot] = p
    z = f32(np.linspace(max(lo - m, 0), hi + m, 200001)); d = f32(z - np.float32(c))
    e = np.max(np.abs(horner(d, p) / Q(z) - 1))
    print(f"erfcx interval {i} [{lo:.4f},{hi:.4f}]: max rel err {e:.3g}")
    worst = max(worst, e)
# the index as the kernels compute it selects the interval each z was fitted on
z = f32(np.linspace(0, ZMAX, 2000001))
t = (z * np.float64(S) + np.float64(C0)).astype(np.float32)  # one rounding, as the FMA
slot = ((t.view(np.uint32) >> 23) & 3).astype(int)
want = (np.searchsorted(bounds, z, side="right") - 1).clip(0, 3)
off = slot != (want + 3) % 4
assert np.all(np.abs(z[off] - np.array(bounds)[np.searchsorted(bounds, z[off])]) < 1e-3), "index off an interval"
print("erfcx worst", worst)
emit("ts_erfc_centers", centers)
out.append(f"static const float ts_erfc_c[{DEG + 1}][4] = {{" + ", ".join(
    "{" + ", ".join(float(np.float32(coefs[i][k])).hex() + "f" for i in range(4)) + "}" for k in range(DEG + 1)) + "};")

hdr = ["// Generated by tools/gen_coefficients.py; do not edit by hand.",
       "#pragma once",
       f"#define TS_ERFC_SCALE {float(S).hex()}f",
       f"#define TS_ERFC_OFFSET {float(C0).hex()}f",
       f"#define TS_ERFC_ZMAX {ZMAX!r}f",
       f"#define TS_ERFC_DEG {DEG}"] + out
open("../Sources/CTesseraKernels/coefficients.h", "w").write("\n".join(hdr) + "\n")
