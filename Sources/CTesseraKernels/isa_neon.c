// AArch64 Advanced SIMD (NEON) with FMA: 4 lanes, baseline on every arm64 CPU (Apple Silicon,
// Graviton, Ampere), so on arm64 it is chosen whenever the CPU runs 64-bit code.  The same
// algorithms as the x86 variants: this file only maps kernels_impl.inc's vector vocabulary.
// An SVE variant would be one more file like this one (svfloat32_t with a fixed VLEN chosen
// at build time, or a vector-length-agnostic loop), one TS_ISA_ row and one dispatch case.
#if defined(__aarch64__)
#include <arm_neon.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "include/tessera_kernels.h"
#include "coefficients.h"

#define TS_SUFFIX neon
#define TS_NAME "neon"
#define TS_HAS_FMA 1
#define VLEN 4
typedef float32x4_t vf;
typedef int32x4_t vi;
typedef uint32x4_t vm;
typedef float64x2_t vd;

#define U(a) vreinterpretq_u32_f32(a)
#define F(a) vreinterpretq_f32_u32(a)

static inline vf vf_load(const float *p) { return vld1q_f32(p); }
static inline void vf_store(float *p, vf v) { vst1q_f32(p, v); }
// No x86-style streaming store on AArch64: STNP (what this builtin emits) is a hint that the
// line will not be reused soon, which cores that honour it (Neoverse N1 and later) keep out of
// the cache hierarchy's upper levels; elsewhere it is a plain store.  The policy of when to
// stream stays the cache model's, as on x86; callers pass 16-byte-aligned pointers here.
static inline void vf_stream(float *p, vf v) { __builtin_nontemporal_store(v, (vf *)p); }
// STNP is ordered like any store: a store barrier keeps the "fence after streaming" contract
static inline void vf_sfence(void) { __asm__ __volatile__("dmb ishst" ::: "memory"); }
static inline vf vf_set1(float x) { return vdupq_n_f32(x); }
static inline vf vf_zero(void) { return vdupq_n_f32(0.0f); }
static inline vf vf_add(vf a, vf b) { return vaddq_f32(a, b); }
static inline vf vf_sub(vf a, vf b) { return vsubq_f32(a, b); }
static inline vf vf_mul(vf a, vf b) { return vmulq_f32(a, b); }
// AArch64 has a pipelined IEEE vector divide (ARMv7 NEON did not, hence XNNPACK's vrecpeq +
// Newton there): kept, so every op has the x86 variants' accuracy bounds exactly.
static inline vf vf_div(vf a, vf b) { return vdivq_f32(a, b); }
static inline vf vf_fma(vf a, vf b, vf c) { return vfmaq_f32(c, a, b); }
static inline vf vf_fms(vf a, vf b, vf c) { return vfmaq_f32(vnegq_f32(c), a, b); } // a*b - c, one rounding
// x86 semantics, which the kernels' NaN handling is written for: the second operand is
// returned when either is NaN (vmaxq_f32 would return NaN, vmaxnmq_f32 the number)
static inline vf vf_max(vf a, vf b) { return vbslq_f32(vcgtq_f32(a, b), a, b); }
static inline vf vf_min(vf a, vf b) { return vbslq_f32(vcltq_f32(a, b), a, b); }
static inline vf vf_and(vf a, vf b) { return F(vandq_u32(U(a), U(b))); }
static inline vf vf_or(vf a, vf b) { return F(vorrq_u32(U(a), U(b))); }
static inline vf vf_xor(vf a, vf b) { return F(veorq_u32(U(a), U(b))); }
static inline vf vf_andnot(vf a, vf b) { return F(vbicq_u32(U(b), U(a))); } // ~a & b
static inline vm vf_lt(vf a, vf b) { return vcltq_f32(a, b); }
static inline vm vf_gt(vf a, vf b) { return vcgtq_f32(a, b); }
static inline vm vf_le(vf a, vf b) { return vcleq_f32(a, b); }
static inline vm vf_ne(vf a, vf b) { return vmvnq_u32(vceqq_f32(a, b)); } // NaN: true
static inline int vm_any(vm m) { return vmaxvq_u32(m) != 0; }
static inline int vm_all(vm m) { return vminvq_u32(m) != 0; }
static inline vf vf_sel(vm m, vf t, vf f) { return vbslq_f32(m, t, f); }
static inline vf vf_zero_if(vm m, vf v) { return F(vbicq_u32(U(v), m)); }
static inline vi vf_as_vi(vf a) { return vreinterpretq_s32_f32(a); }
static inline vf vi_as_vf(vi a) { return vreinterpretq_f32_s32(a); }
static inline vi vi_shl21(vi a) { return vshlq_n_s32(a, 21); }
static inline vi vi_shl23(vi a) { return vshlq_n_s32(a, 23); }
static inline vi vi_shr23(vi a) { return vreinterpretq_s32_u32(vshrq_n_u32(vreinterpretq_u32_s32(a), 23)); }
/// t[i mod 4] per lane: TBL over the table's 16 bytes
static inline vf vf_lut4(const float *t, vi i) {
  uint32x4_t byte0 = vmulq_n_u32(vandq_u32(vreinterpretq_u32_s32(i), vdupq_n_u32(3)), 0x04040404u);
  uint8x16_t idx = vaddq_u8(vreinterpretq_u8_u32(byte0), vreinterpretq_u8_u32(vdupq_n_u32(0x03020100u)));
  return vreinterpretq_f32_u8(vqtbl1q_u8(vreinterpretq_u8_f32(vld1q_f32(t)), idx));
}
static inline vd vd_set1(double x) { return vdupq_n_f64(x); }
static inline vd vd_from_lo(vf a) { return vcvt_f64_f32(vget_low_f32(a)); }
static inline vd vd_from_hi(vf a) { return vcvt_high_f64_f32(a); }
static inline vf vf_from_vd(vd lo, vd hi) { return vcvt_high_f32_f64(vcvt_f32_f64(lo), hi); }
static inline vd vd_add(vd a, vd b) { return vaddq_f64(a, b); }
static inline vd vd_sub(vd a, vd b) { return vsubq_f64(a, b); }
static inline vd vd_fma(vd a, vd b, vd c) { return vfmaq_f64(c, a, b); }
static inline vd vd_load(const double *p) { return vld1q_f64(p); }
static inline void vd_store(double *p, vd v) { vst1q_f64(p, v); }
static inline double vd_hsum(vd a) { return vaddvq_f64(a); }

#undef U
#undef F

#include "kernels_impl.inc"
#endif
