// Tessera's innermost loops: pure functions over (pointer, count).
// They allocate nothing, take no locks and know nothing of threads; the Swift runtime
// splits tensors into tiles and calls these on each tile.  Every function exists once
// per instruction set (AVX-512, AVX2+FMA, SSE2 baseline); `ts_kernels_for` returns the
// table of one variant and `ts_best_isa` names the one this CPU runs best.
#ifndef TESSERA_KERNELS_H
#define TESSERA_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  TS_ISA_SCALAR = 0,  ///< portable C, one lane: every CPU (and the only one off x86-64)
  TS_ISA_SSE2 = 1,    ///< baseline x86-64: what a default `swift build` targets
  TS_ISA_AVX2 = 2,    ///< AVX2 + FMA
  TS_ISA_AVX512 = 3,  ///< AVX-512 F
  TS_ISA_NEON = 4,    ///< AArch64 Advanced SIMD + FMA: baseline on arm64
  TS_ISA_COUNT = 5
} ts_isa;

/// What a caller's parameters of an op must satisfy (tessera_ops.def's `check` column).
#define TS_CHECK_NONE 0
#define TS_CHECK_ORDERED 1 /* a <= b */
#define TS_CHECK_NONZERO_A 2 /* a != 0 */
#define TS_CHECK_NONNEG_A 3 /* a >= 0 (NaN fails) */

/// Which saved tensor an op's backward reads (tessera_ops.def's `saved` column).
/// Softmax rows (and split-row chunks) whose values all lie within this of their max compute
/// x - max rounded once (see exp_store_sum's `near`); wider rows carry it exactly.
#define TS_SOFTMAX_NEAR 16.0f
/// exp_store_sum's and exp_sum_peek's `near`: how x - m is formed.
#define TS_EXP_EXACT 0   /* carried exactly (a TwoSum) */
#define TS_EXP_NEAR 1    /* rounded once; every x within TS_SOFTMAX_NEAR below m (or NaN) */
#define TS_EXP_ROUNDED 2 /* rounded once, any x (log_softmax's rows summed against m = 0) */

#define TS_SAVED_X 0
#define TS_SAVED_Y 1
#define TS_SAVED_EITHER 2
#define TS_SAVED_NONE 3

/// The element-wise ops, one per row of tessera_ops.def, in its order.
typedef enum __attribute__((enum_extensibility(closed))) {
#define TS_OP(name, ...) ts_op_##name,
#include "tessera_ops.def"
#undef TS_OP
} ts_op;
enum {
  TS_OP_COUNT = 0
#define TS_OP(...) +1
#include "tessera_ops.def"
#undef TS_OP
};

/// A row of the op table as data (tessera_ops.def's columns).
typedef struct {
  const char *name, *method;
  int params;
  float a, b; ///< the parameters' defaults
  int check;  ///< TS_CHECK_*
  int saved;  ///< TS_SAVED_*
  int cheap;
  double ns;
} ts_op_info;
/// The row of `op` (op < TS_OP_COUNT).
const ts_op_info *ts_op_info_of(int op);

/// y[i] = op(x[i]; a, b) for i < n; ops without parameters ignore a and b.  x == y (exactly in
/// place) is allowed; partial overlap is not.  `nt` != 0 asks for streaming (non-temporal)
/// stores, of whole 64-byte lines (the part of y before its first line boundary and after its
/// last are stored normally), and the call ends with a store fence -- except with `nt` == 3,
/// which leaves one fence after many calls to the caller.  Many short rows: `rows_store`.
typedef void (*ts_ew_fn)(const float *x, float *y, size_t n, float a, float b, int nt);
/// dx[i] = dy[i] * op'(.; a, b) from s, the saved tensor the op's row names (x or y; NULL
/// where it reads none).  dx == dy (exactly in place) is allowed.  `nt` as for ts_ew_fn.
typedef void (*ts_bw_fn)(const float *s, const float *dy, float *dx, size_t n, float a, float b, int nt);
/// Longest chain `chain_backward` takes, and its L1 block.
#define TS_BW_MAX_STEPS 16
#define TS_BW_BLOCK 256
/// y[i] = x[i] with the same store options.
typedef void (*ts_unary_fn)(const float *x, float *y, size_t n, int nt);

/// One step of a register-composed chain.
typedef struct {
  int32_t op; /* ts_op */
  float a, b;
} ts_step;

/// Streaming stores assembled into whole 64-byte lines across calls that write one contiguous
/// output in order (the rows of a softmax tile): the line two rows share is streamed once,
/// complete, instead of being stored normally by both rows.  Zero-initialise; after the last
/// call, `ts_line_carry_flush` then `ts_store_fence`.
typedef struct {
  float *line;    ///< start of the pending partial line (64-byte aligned), or NULL
  int fill;       ///< floats of it already in `buf`
  float buf[16];
} ts_line_carry;
/// Stores the pending partial line normally (a tile's last line, shared with the next tile).
void ts_line_carry_flush(ts_line_carry *carry);

typedef struct {
  const char *name;           ///< "avx512", "avx2", "sse2", "scalar"
  ts_ew_fn forward[TS_OP_COUNT]; ///< indexed by ts_op
  ts_bw_fn backward[TS_OP_COUNT]; ///< indexed by ts_op
  /// y[i] = x[i] (the bandwidth yardstick: one read, one write, streaming when `nt`)
  ts_unary_fn copy;
  /// y = steps[k-1](...steps[0](x)) with every step applied to a vector while it is in
  /// registers (one read, one write).  Same bits as running the steps one by one.  `nt` as for
  /// ts_ew_fn.
  void (*chain)(const float *x, float *y, size_t n, const ts_step *steps, int k, int nt);
  /// dx = the backward of steps[0..<k] (k <= TS_BW_MAX_STEPS) at x for dy: the intermediates
  /// recomputed per L1 block, nothing stored.  Same bits as the steps' backward kernels run one
  /// by one on stored intermediates.  dx may be dy.
  void (*chain_backward)(const float *x, const float *dy, float *dx, size_t n, const ts_step *steps, int k, int nt);
  /// max over x[0..<n] (-inf for n == 0); NaN need not propagate (the sum does).
  float (*row_max)(const float *x, size_t n);
  /// min over x[0..<n] (+inf for n == 0); NaN ignored.
  float (*row_min)(const float *x, size_t n);
  /// y[i] = exp(x[i] - m); returns the sum of the y[i] accumulated in double.  y may be x.
  /// `nt`: streaming stores (for exps that are read back only after the cache has turned over).
  /// `near`: TS_EXP_NEAR where every x[i] lies within TS_SOFTMAX_NEAR below m (x - m then rounds
  /// once; the caller checks, from the row's min), TS_EXP_ROUNDED to round x - m once for any x
  /// (exact where m = 0), TS_EXP_EXACT to carry x - m exactly.
  double (*exp_store_sum)(const float *x, float *y, size_t n, float m, int nt, int near);
  /// sum of exp(x[i] - m) in double, nothing stored (x - m exact).
  double (*exp_sum)(const float *x, size_t n, float m);
  /// exp_store_sum (y != NULL, regular stores) or, y == NULL, the sum alone (`near` as for
  /// exp_store_sum; log_softmax's rows pass m = 0 and TS_EXP_ROUNDED, x - 0 being exact), and
  /// *next_max / *next_min = the max (as row_max, same bits) and min over next[0..<n]: the
  /// next row's, its loads overlapping the exps.  next_min may be NULL (no min taken).
  double (*exp_sum_peek)(const float *x, float *y, size_t n, float m, int near, const float *next, float *next_max,
                         float *next_min);
  /// exp(x - m) as exp_store_sum's TS_EXP_ROUNDED path (and so its TS_EXP_NEAR path, where that
  /// applies) computes it in every lane: log_softmax's rows
  /// summed against 0 take their max's term back out of the sum with it (the max's own term
  /// then contributes exactly 1, as with the max as the reference).
  float (*exp_near_one)(float x, float m);
  /// y[i] = x[i] * s
  void (*scale)(const float *x, float *y, size_t n, float s, int nt);
  /// y[i] = (x[i] - c_hi) - c_lo: log-softmax's offset carried in two floats
  void (*shift)(const float *x, float *y, size_t n, float c_hi, float c_lo, int nt);
  /// scale (log == 0: y = x * a) or shift (log != 0: y = (x - a) - b) with streaming stores
  /// of whole lines continuing `carry` (same bits as scale / shift)
  void (*rows_store)(const float *x, float *y, size_t n, float a, float b, int log, ts_line_carry *carry);
  /// Softmax along a non-last dim, vectorised across w contiguous columns (column j of row d
  /// is x[d*xs + j]), one chunk of a column's rows at a time; rows in blocks of 8 from the
  /// chunk's first (a chunk may come in several calls of multiples of 8 rows, same bits).
  /// cols_max: mx[j] / mn[j] = the max / min of column j, continuing them (start -inf / +inf);
  /// NaN ignored.
  void (*cols_max)(const float *x, size_t xs, size_t rows, size_t w, float *mx, float *mn);
  /// cols_exp_sum: s[j] += the sum of exp(x - shift) in double, shift = the chunk's max mx[j]
  /// (0 where it is -inf); with `near` (softmax), a vector of columns whose chunk lies within
  /// TS_SOFTMAX_NEAR of its shift (from mn) rounds x - shift once, else x - shift is exact.
  /// With e, the exps are stored (rows es apart; e may be x with es == xs).
  void (*cols_exp_sum)(const float *x, size_t xs, size_t rows, size_t w, const float *mx, const float *mn, float *e,
                       size_t es, double *s, int near);
  /// cols_stats: both in one read, for chunks too long to read twice from the cache: mx, mn as
  /// cols_max, and s[j] += the sum of exp(x - r[j]) for a reference r[j] (start -inf) that
  /// rises to the max only where the max passes it by more than 16, rescaling s in double (a
  /// term carried through two rises is below e^-16 of the largest).  The exps relative to the
  /// final max are then cols_softmax_out's.  `near` as for cols_exp_sum.
  void (*cols_stats)(const float *x, size_t xs, size_t rows, size_t w, float *r, float *mx, float *mn, double *s,
                     int near);
  /// Column-wise second half: out[d*os + j] = in[d*is + j] * a[j] (softmax), or
  /// (in[d*is + j] - a[j]) - b[j] (log_softmax).  in may be out (same stride).
  /// `nt`: streaming stores where out's alignment and stride allow them.
  void (*cols_finish)(const float *in, size_t is, float *out, size_t os, size_t rows, size_t w, int log,
                      const float *a, const float *b, int nt);
  /// cols_out_prepare: cols_softmax_out's constants from each column's max mx[j] and min mn[j],
  /// in place: mx[j] becomes the shift (the max, 0 where it is -inf), mn[j] -1 where the
  /// column lies within TS_SOFTMAX_NEAR below it, else 0.
  void (*cols_out_prepare)(float *mx, float *mn, size_t w);
  /// out[d*os + j] = exp(in[d*is + j] - sh[j]) * f[j], the exps as cols_exp_sum computes them
  /// from the same max and min (sh and near from cols_out_prepare: a vector of columns all
  /// marked near rounds x - sh once).  in may be out (same stride).
  void (*cols_softmax_out)(const float *in, size_t is, float *out, size_t os, size_t rows, size_t w, const float *sh,
                           const float *near, const float *f, int nt);
  /// Softmax backward of one row (or chunk): s = sum(dy * y) (log_softmax: sum(dy)) in double,
  /// in an order that depends on n only.
  double (*grad_sum)(const float *y, const float *dy, size_t n, int log);
  /// PReLU's weight gradient of one block: sum of x[i] * dy[i] where x[i] <= 0 (or NaN), in double.
  double (*prelu_wsum)(const float *x, const float *dy, size_t n);
  /// dx = y * (dy - s) (softmax) or dy - exp(y) * s (log_softmax), s = s_hi + s_lo; dx may be dy.
  /// `nt` == 3: streaming stores without the closing fence (the caller fences once).
  void (*grad_finish)(const float *y, const float *dy, float *dx, size_t n, float s_hi, float s_lo, int log, int nt);
  /// The same along a non-last dim: D rows of w contiguous columns, `stride` apart; per column
  /// sum[j] (double), then dx with s[j] + s_lo[j] (floats).  dx may be dy.
  void (*cols_grad_sum)(const float *y, const float *dy, size_t stride, size_t D, size_t w, int log, double *sum);
  void (*cols_grad_finish)(const float *y, const float *dy, float *dx, size_t stride, size_t D, size_t w, int log,
                           const float *s, const float *s_lo);
} ts_kernels;

/// The forward kernel of `op` in `t` (Swift reads the array through this).
static inline ts_ew_fn ts_forward_kernel(const ts_kernels *t, int op) { return t->forward[op]; }
/// The backward kernel of `op` in `t`.
static inline ts_bw_fn ts_backward_kernel(const ts_kernels *t, int op) { return t->backward[op]; }

/// The table for one instruction set, or NULL when this CPU cannot run it.
const ts_kernels *ts_kernels_for(ts_isa isa);
/// The widest instruction set this CPU runs (TESSERA_ISA=scalar|sse2|avx2|avx512|neon caps it).
ts_isa ts_best_isa(void);
/// Whether this CPU can run `isa`.
int ts_isa_supported(ts_isa isa);

/// Orders this thread's streaming stores before what follows (sfence on x86).
static inline void ts_store_fence(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_sfence();
#endif
}
/// Asks the cache to fetch [p, p + bytes): softmax fetches the next row while it works on this one.
static inline void ts_prefetch(const void *p, size_t bytes) {
  for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch((const char *)p + o, 0, 3);
}
#ifdef __cplusplus
}
#endif
#endif
