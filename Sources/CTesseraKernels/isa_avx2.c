// AVX2 + FMA, chosen at run time; only these functions are compiled for it.
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "include/tessera_kernels.h"
#include "coefficients.h"

#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)

#define TS_SUFFIX avx2
#define TS_NAME "avx2"
#define TS_HAS_FMA 1
#define TS_HAS_LOAD_LANES 1
#define VLEN 8
typedef __m256 vf;
typedef __m256i vi;
typedef __m256 vm;
typedef __m256d vd;

static inline vf vf_load(const float *p) { return _mm256_loadu_ps(p); }
static inline void vf_store(float *p, vf v) { _mm256_storeu_ps(p, v); }
static inline void vf_stream(float *p, vf v) { _mm256_stream_ps(p, v); }
static inline void vf_sfence(void) { _mm_sfence(); }
static inline vf vf_set1(float x) { return _mm256_set1_ps(x); }
static inline vf vf_zero(void) { return _mm256_setzero_ps(); }
static inline vf vf_add(vf a, vf b) { return _mm256_add_ps(a, b); }
static inline vf vf_sub(vf a, vf b) { return _mm256_sub_ps(a, b); }
static inline vf vf_mul(vf a, vf b) { return _mm256_mul_ps(a, b); }
static inline vf vf_div(vf a, vf b) { return _mm256_div_ps(a, b); }
static inline vf vf_fma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
static inline vf vf_fms(vf a, vf b, vf c) { return _mm256_fmsub_ps(a, b, c); } // a*b - c, one rounding
static inline vf vf_max(vf a, vf b) { return _mm256_max_ps(a, b); }
static inline vf vf_min(vf a, vf b) { return _mm256_min_ps(a, b); }
static inline vf vf_and(vf a, vf b) { return _mm256_and_ps(a, b); }
static inline vf vf_or(vf a, vf b) { return _mm256_or_ps(a, b); }
static inline vf vf_xor(vf a, vf b) { return _mm256_xor_ps(a, b); }
static inline vf vf_andnot(vf a, vf b) { return _mm256_andnot_ps(a, b); }
static inline vm vf_lt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
static inline vm vf_gt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
static inline vm vf_le(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_LE_OQ); }
static inline vm vf_ne(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_NEQ_UQ); } // NaN: true
static inline int vm_any(vm m) { return _mm256_movemask_ps(m) != 0; }
static inline int vm_all(vm m) { return _mm256_movemask_ps(m) == 0xFF; }
static inline vf vf_sel(vm m, vf t, vf f) { return _mm256_blendv_ps(f, t, m); }
static inline vf vf_zero_if(vm m, vf v) { return _mm256_andnot_ps(m, v); }
static inline vi vf_as_vi(vf a) { return _mm256_castps_si256(a); }
static inline vf vi_as_vf(vi a) { return _mm256_castsi256_ps(a); }
static inline vi vi_shl21(vi a) { return _mm256_slli_epi32(a, 21); }
static inline vi vi_shl23(vi a) { return _mm256_slli_epi32(a, 23); }
static inline vi vi_shr23(vi a) { return _mm256_srli_epi32(a, 23); }
/// t[i mod 4] per lane: an in-lane permute of the table broadcast to both halves
static inline vf vf_lut4(const float *t, vi i) { return _mm256_permutevar_ps(_mm256_broadcast_ps((const __m128 *)t), i); }
/// Lanes [lo, hi) of the vector at p, the others 0; lanes outside are not read (no fault).
static inline vf vf_load_lanes(const float *p, int lo, int hi) {
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  __m256i m = _mm256_and_si256(_mm256_cmpgt_epi32(iota, _mm256_set1_epi32(lo - 1)), _mm256_cmpgt_epi32(_mm256_set1_epi32(hi), iota));
  return _mm256_maskload_ps(p, m);
}
/// The lanes whose index is below k.
static inline vm vf_lanes_below(int k) {
  return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
}
#define TS_HAS_JOIN 1
/// Lanes [s, 8) of a, then lanes [0, s) of b, for s = 0 or 4 (a 16-byte shift).
static inline vf vf_join(vf a, vf b, int s) { return s == 4 ? _mm256_permute2f128_ps(a, b, 0x21) : a; }
static inline vd vd_set1(double x) { return _mm256_set1_pd(x); }
static inline vd vd_from_lo(vf a) { return _mm256_cvtps_pd(_mm256_castps256_ps128(a)); }
static inline vd vd_from_hi(vf a) { return _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)); }
static inline vf vf_from_vd(vd lo, vd hi) { return _mm256_set_m128(_mm256_cvtpd_ps(hi), _mm256_cvtpd_ps(lo)); }
static inline vd vd_add(vd a, vd b) { return _mm256_add_pd(a, b); }
static inline vd vd_sub(vd a, vd b) { return _mm256_sub_pd(a, b); }
static inline vd vd_fma(vd a, vd b, vd c) { return _mm256_fmadd_pd(a, b, c); }
static inline vd vd_load(const double *p) { return _mm256_loadu_pd(p); }
static inline void vd_store(double *p, vd v) { _mm256_storeu_pd(p, v); }
static inline double vd_hsum(vd a) {
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
  return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

#include "kernels_impl.inc"

#pragma clang attribute pop
#endif
