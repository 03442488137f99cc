// AVX-512 F, chosen at run time; only these functions are compiled for it.
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "include/tessera_kernels.h"
#include "coefficients.h"

#pragma clang attribute push(__attribute__((target("avx512f,avx2,fma"))), apply_to = function)

#define TS_SUFFIX avx512
#define TS_NAME "avx512"
#define TS_HAS_FMA 1
#define TS_HAS_LOAD_LANES 1
#define VLEN 16
typedef __m512 vf;
typedef __m512i vi;
typedef __mmask16 vm;
typedef __m512d vd;

static inline vf vf_load(const float *p) { return _mm512_loadu_ps(p); }
static inline void vf_store(float *p, vf v) { _mm512_storeu_ps(p, v); }
static inline void vf_stream(float *p, vf v) { _mm512_stream_ps(p, v); }
static inline void vf_sfence(void) { _mm_sfence(); }
static inline vf vf_set1(float x) { return _mm512_set1_ps(x); }
static inline vf vf_zero(void) { return _mm512_setzero_ps(); }
static inline vf vf_add(vf a, vf b) { return _mm512_add_ps(a, b); }
static inline vf vf_sub(vf a, vf b) { return _mm512_sub_ps(a, b); }
static inline vf vf_mul(vf a, vf b) { return _mm512_mul_ps(a, b); }
static inline vf vf_div(vf a, vf b) { return _mm512_div_ps(a, b); }
static inline vf vf_fma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
static inline vf vf_fms(vf a, vf b, vf c) { return _mm512_fmsub_ps(a, b, c); } // a*b - c, one rounding
static inline vf vf_max(vf a, vf b) { return _mm512_max_ps(a, b); }
static inline vf vf_min(vf a, vf b) { return _mm512_min_ps(a, b); }
#define TS_BITS(op, a, b) _mm512_castsi512_ps(op(_mm512_castps_si512(a), _mm512_castps_si512(b)))
static inline vf vf_and(vf a, vf b) { return TS_BITS(_mm512_and_si512, a, b); }
static inline vf vf_or(vf a, vf b) { return TS_BITS(_mm512_or_si512, a, b); }
static inline vf vf_xor(vf a, vf b) { return TS_BITS(_mm512_xor_si512, a, b); }
static inline vf vf_andnot(vf a, vf b) { return TS_BITS(_mm512_andnot_si512, a, b); }
static inline vm vf_lt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
static inline vm vf_gt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
static inline vm vf_le(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_LE_OQ); }
static inline vm vf_ne(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_NEQ_UQ); } // NaN: true
static inline int vm_any(vm m) { return m != 0; }
static inline int vm_all(vm m) { return m == 0xFFFF; }
static inline vf vf_sel(vm m, vf t, vf f) { return _mm512_mask_blend_ps(m, f, t); }
static inline vf vf_zero_if(vm m, vf v) { return _mm512_maskz_mov_ps((__mmask16)~m, v); }
static inline vi vf_as_vi(vf a) { return _mm512_castps_si512(a); }
static inline vf vi_as_vf(vi a) { return _mm512_castsi512_ps(a); }
static inline vi vi_shl21(vi a) { return _mm512_slli_epi32(a, 21); }
static inline vi vi_shl23(vi a) { return _mm512_slli_epi32(a, 23); }
static inline vi vi_shr23(vi a) { return _mm512_srli_epi32(a, 23); }
/// t[i mod 4] per lane: an in-lane permute (vpermilps) of the table in all four 128-bit lanes
static inline vf vf_lut4(const float *t, vi i) { return _mm512_permutevar_ps(_mm512_broadcast_f32x4(_mm_loadu_ps(t)), i); }
/// Lanes [lo, hi) of the vector at p, the others 0; lanes outside are not read (no fault).
static inline vf vf_load_lanes(const float *p, int lo, int hi) {
  unsigned lo_ = lo < 0 ? 0 : (unsigned)lo, hi_ = hi < 0 ? 0 : hi > 16 ? 16u : (unsigned)hi;
  return _mm512_maskz_loadu_ps((__mmask16)(((1u << hi_) - 1) & ~((1u << (lo_ > 16 ? 16 : lo_)) - 1)), p);
}
/// The lanes whose index is below k.
static inline vm vf_lanes_below(int k) { return (__mmask16)((1u << (k < 0 ? 0 : k > 16 ? 16 : k)) - 1); }
#define TS_HAS_JOIN 1
/// Lanes [s, 16) of a, then lanes [0, s) of b, for s = 0, 4, 8 or 12 (16-byte shifts).
static inline vf vf_join(vf a, vf b, int s) {
  const __m512i ai = _mm512_castps_si512(a), bi = _mm512_castps_si512(b);
  switch (s) {
  case 4: return _mm512_castsi512_ps(_mm512_alignr_epi32(bi, ai, 4));
  case 8: return _mm512_castsi512_ps(_mm512_alignr_epi32(bi, ai, 8));
  case 12: return _mm512_castsi512_ps(_mm512_alignr_epi32(bi, ai, 12));
  default: return a;
  }
}
static inline vd vd_set1(double x) { return _mm512_set1_pd(x); }
static inline vd vd_from_lo(vf a) { return _mm512_cvtps_pd(_mm512_castps512_ps256(a)); }
static inline vd vd_from_hi(vf a) {
  return _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)));
}
static inline vf vf_from_vd(vd lo, vd hi) {
  __m512d r = _mm512_castps_pd(_mm512_castps256_ps512(_mm512_cvtpd_ps(lo)));
  return _mm512_castpd_ps(_mm512_insertf64x4(r, _mm256_castps_pd(_mm512_cvtpd_ps(hi)), 1));
}
static inline vd vd_add(vd a, vd b) { return _mm512_add_pd(a, b); }
static inline vd vd_sub(vd a, vd b) { return _mm512_sub_pd(a, b); }
static inline vd vd_fma(vd a, vd b, vd c) { return _mm512_fmadd_pd(a, b, c); }
static inline vd vd_load(const double *p) { return _mm512_loadu_pd(p); }
static inline void vd_store(double *p, vd v) { _mm512_storeu_pd(p, v); }
static inline double vd_hsum(vd a) { return _mm512_reduce_add_pd(a); }

#include "kernels_impl.inc"

#pragma clang attribute pop
#endif
