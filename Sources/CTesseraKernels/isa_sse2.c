// SSE2: the x86-64 baseline (what a default `swift build` targets).  No FMA: a*b+c rounds
// twice here, which the accuracy tests allow for.
#if defined(__x86_64__)
#include <emmintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "include/tessera_kernels.h"
#include "coefficients.h"

#define TS_SUFFIX sse2
#define TS_NAME "sse2"
#define TS_HAS_FMA 0
#define VLEN 4
typedef __m128 vf;
typedef __m128i vi;
typedef __m128 vm;
typedef __m128d vd;

static inline vf vf_load(const float *p) { return _mm_loadu_ps(p); }
static inline void vf_store(float *p, vf v) { _mm_storeu_ps(p, v); }
static inline void vf_stream(float *p, vf v) { _mm_stream_ps(p, v); }
static inline void vf_sfence(void) { _mm_sfence(); }
static inline vf vf_set1(float x) { return _mm_set1_ps(x); }
static inline vf vf_zero(void) { return _mm_setzero_ps(); }
static inline vf vf_add(vf a, vf b) { return _mm_add_ps(a, b); }
static inline vf vf_sub(vf a, vf b) { return _mm_sub_ps(a, b); }
static inline vf vf_mul(vf a, vf b) { return _mm_mul_ps(a, b); }
static inline vf vf_div(vf a, vf b) { return _mm_div_ps(a, b); }
static inline vf vf_fma(vf a, vf b, vf c) { return _mm_add_ps(_mm_mul_ps(a, b), c); }
static inline vf vf_max(vf a, vf b) { return _mm_max_ps(a, b); }
static inline vf vf_min(vf a, vf b) { return _mm_min_ps(a, b); }
static inline vf vf_and(vf a, vf b) { return _mm_and_ps(a, b); }
static inline vf vf_or(vf a, vf b) { return _mm_or_ps(a, b); }
static inline vf vf_xor(vf a, vf b) { return _mm_xor_ps(a, b); }
static inline vf vf_andnot(vf a, vf b) { return _mm_andnot_ps(a, b); }
static inline vm vf_lt(vf a, vf b) { return _mm_cmplt_ps(a, b); }
static inline vm vf_gt(vf a, vf b) { return _mm_cmpgt_ps(a, b); }
static inline vm vf_le(vf a, vf b) { return _mm_cmple_ps(a, b); }
static inline vm vf_ne(vf a, vf b) { return _mm_cmpneq_ps(a, b); } // NaN: true
static inline int vm_any(vm m) { return _mm_movemask_ps(m) != 0; }
static inline int vm_all(vm m) { return _mm_movemask_ps(m) == 0xF; }
static inline vf vf_sel(vm m, vf t, vf f) { return _mm_or_ps(_mm_and_ps(m, t), _mm_andnot_ps(m, f)); }
static inline vf vf_zero_if(vm m, vf v) { return _mm_andnot_ps(m, v); }
static inline vi vf_as_vi(vf a) { return _mm_castps_si128(a); }
static inline vf vi_as_vf(vi a) { return _mm_castsi128_ps(a); }
static inline vi vi_shl21(vi a) { return _mm_slli_epi32(a, 21); }
static inline vi vi_shl23(vi a) { return _mm_slli_epi32(a, 23); }
static inline vi vi_shr23(vi a) { return _mm_srli_epi32(a, 23); }
/// t[i mod 4] per lane (SSE2 has no variable permute)
static inline vf vf_lut4(const float *t, vi i) {
  int32_t k[4];
  _mm_storeu_si128((__m128i *)k, i);
  return _mm_setr_ps(t[k[0] & 3], t[k[1] & 3], t[k[2] & 3], t[k[3] & 3]);
}
static inline vd vd_set1(double x) { return _mm_set1_pd(x); }
static inline vd vd_from_lo(vf a) { return _mm_cvtps_pd(a); }
static inline vd vd_from_hi(vf a) { return _mm_cvtps_pd(_mm_movehl_ps(a, a)); }
static inline vf vf_from_vd(vd lo, vd hi) { return _mm_movelh_ps(_mm_cvtpd_ps(lo), _mm_cvtpd_ps(hi)); }
static inline vd vd_add(vd a, vd b) { return _mm_add_pd(a, b); }
static inline vd vd_sub(vd a, vd b) { return _mm_sub_pd(a, b); }
static inline vd vd_mul(vd a, vd b) { return _mm_mul_pd(a, b); }
static inline vd vd_fma(vd a, vd b, vd c) { return _mm_add_pd(_mm_mul_pd(a, b), c); }
static inline vd vd_load(const double *p) { return _mm_loadu_pd(p); }
static inline void vd_store(double *p, vd v) { _mm_storeu_pd(p, v); }
static inline double vd_hsum(vd a) { return _mm_cvtsd_f64(_mm_add_sd(a, _mm_unpackhi_pd(a, a))); }

#include "kernels_impl.inc"
#endif
