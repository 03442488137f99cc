// One-lane variant: the same algorithms in plain C.  Runs everywhere; on x86-64 it is also
// a second, independent compilation of the kernels that the tests compare against.
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "include/tessera_kernels.h"
#include "coefficients.h"

#define TS_SUFFIX scalar
#define TS_NAME "scalar"
#define TS_HAS_FMA 1
#define VLEN 1
typedef float vf;
typedef int32_t vi;
typedef int vm;
typedef double vd;

static inline uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline vf vf_load(const float *p) { return *p; }
static inline void vf_store(float *p, vf v) { *p = v; }
static inline void vf_stream(float *p, vf v) { *p = v; }
static inline void vf_sfence(void) {}
static inline vf vf_set1(float x) { return x; }
static inline vf vf_zero(void) { return 0.0f; }
static inline vf vf_add(vf a, vf b) { return a + b; }
static inline vf vf_sub(vf a, vf b) { return a - b; }
static inline vf vf_mul(vf a, vf b) { return a * b; }
static inline vf vf_div(vf a, vf b) { return a / b; }
static inline vf vf_fma(vf a, vf b, vf c) { return fmaf(a, b, c); }
static inline vf vf_fms(vf a, vf b, vf c) { return fmaf(a, b, -c); } // a*b - c, one rounding
// x86 semantics: the second operand is returned when either is NaN
static inline vf vf_max(vf a, vf b) { return a > b ? a : b; }
static inline vf vf_min(vf a, vf b) { return a < b ? a : b; }
static inline vf vf_and(vf a, vf b) { return u2f(f2u(a) & f2u(b)); }
static inline vf vf_or(vf a, vf b) { return u2f(f2u(a) | f2u(b)); }
static inline vf vf_xor(vf a, vf b) { return u2f(f2u(a) ^ f2u(b)); }
static inline vf vf_andnot(vf a, vf b) { return u2f(~f2u(a) & f2u(b)); }
static inline vm vf_lt(vf a, vf b) { return a < b; }
static inline vm vf_gt(vf a, vf b) { return a > b; }
static inline vm vf_le(vf a, vf b) { return a <= b; }
static inline vm vf_ne(vf a, vf b) { return !(a == b); } // NaN: true
static inline int vm_any(vm m) { return m != 0; }
static inline int vm_all(vm m) { return m != 0; }
static inline vf vf_sel(vm m, vf t, vf f) { return m ? t : f; }
static inline vf vf_zero_if(vm m, vf v) { return m ? 0.0f : v; }
static inline vi vf_as_vi(vf a) { return (vi)f2u(a); }
static inline vf vi_as_vf(vi a) { return u2f((uint32_t)a); }
static inline vi vi_shl21(vi a) { return (vi)((uint32_t)a << 21); }
static inline vi vi_shl23(vi a) { return (vi)((uint32_t)a << 23); }
static inline vi vi_shr23(vi a) { return (vi)((uint32_t)a >> 23); }
static inline vf vf_lut4(const float *t, vi i) { return t[i & 3]; }
static inline vd vd_set1(double x) { return x; }
static inline vd vd_from_lo(vf a) { return a; }
static inline vd vd_from_hi(vf a) { (void)a; return 0.0; } // one lane: no high half
static inline vf vf_from_vd(vd lo, vd hi) { (void)hi; return (float)lo; }
static inline vd vd_add(vd a, vd b) { return a + b; }
static inline vd vd_sub(vd a, vd b) { return a - b; }
static inline vd vd_fma(vd a, vd b, vd c) { return fma(a, b, c); }
static inline vd vd_load(const double *p) { return *p; }
static inline void vd_store(double *p, vd v) { *p = v; }
static inline double vd_hsum(vd a) { return a; }

#include "kernels_impl.inc"
