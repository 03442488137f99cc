// The NEON variant's check under emulation (tools/neon/check.sh runs it with qemu-aarch64).
//   kernel_check CASES OUT
// CASES (written by `tessera-accuracy emulated-write`): the op table's steps (op, a, b) and the
// inputs x and dy: edge values, random values and a sampled stride of all 2^32 bit patterns.
// For every kernel of the table this CPU runs best (NEON on arm64) it checks, against the
// scalar variant compiled for the same CPU: forward and backward of every step (same bits as
// the scalar variant, or within MAX_ULP_VS_SCALAR), streaming and in-place calls (same bits),
// every tail length 0-15 at four offsets (same bits, nothing written past the end), chains
// and fused chain backward (same bits as the steps one by one), and the softmax, PReLU and copy
// kernels (within float rounding of the scalar variant).  It writes every step's forward
// output, saved tensor and gradient to OUT, which `tessera-accuracy emulated-check` compares
// with the float64 references on x86 -- the one set of references the Swift tests use.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tessera_kernels.h"

#define MAX_ULP_VS_SCALAR 2
static int failures = 0;
#define FAIL(...) do { if (failures++ < 40) { fprintf(stderr, "FAIL: " __VA_ARGS__); fputc('\n', stderr); } } while (0)

static uint32_t bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static int64_t ordered(float f) { int32_t i = (int32_t)bits(f); return i < 0 ? (int64_t)INT32_MIN - i : i; }
/// ULP distance of two floats (0 for two NaNs, huge for NaN against a number).
static int64_t ulp_diff(float a, float b) {
  if (isnan(a) || isnan(b)) return isnan(a) && isnan(b) ? 0 : INT64_MAX;
  int64_t d = ordered(a) - ordered(b);
  return d < 0 ? -d : d;
}
static int same(float a, float b) { return bits(a) == bits(b) || (isnan(a) && isnan(b)); }
static float *alloc(size_t n) {
  float *p = aligned_alloc(64, ((n * sizeof(float) + 63) / 64) * 64 + 64);
  if (!p) { fprintf(stderr, "out of memory\n"); exit(2); }
  return p;
}
static void read_all(FILE *f, void *p, size_t bytes) {
  if (fread(p, 1, bytes, f) != bytes) { fprintf(stderr, "short read\n"); exit(2); }
}

/// Worst ULP distance between two outputs; reports where it exceeds the bound.
static int64_t compare(const char *what, const char *op, const float *v, const float *s, size_t n, int64_t bound) {
  int64_t worst = 0;
  for (size_t i = 0; i < n; i++) {
    int64_t d = ulp_diff(v[i], s[i]);
    if (d > worst) worst = d;
    if (d > bound) { FAIL("%s %s [%zu]: %a vs scalar %a", what, op, i, v[i], s[i]); break; }
  }
  return worst;
}

int main(int argc, char **argv) {
  if (argc != 3) { fprintf(stderr, "usage: kernel_check CASES OUT\n"); return 2; }
  FILE *in = fopen(argv[1], "rb");
  if (!in) { perror(argv[1]); return 2; }
  char magic[4];
  uint32_t steps_n, n;
  read_all(in, magic, 4);
  if (memcmp(magic, "TSEM", 4) != 0) { fprintf(stderr, "not a cases file\n"); return 2; }
  read_all(in, &steps_n, 4);
  ts_step *steps = calloc(steps_n, sizeof(ts_step));
  for (uint32_t k = 0; k < steps_n; k++) read_all(in, &steps[k], sizeof(ts_step));
  read_all(in, &n, 4);
  float *x = alloc(n), *dy = alloc(n);
  read_all(in, x, n * 4);
  read_all(in, dy, n * 4);
  fclose(in);

  const ts_isa isa = ts_best_isa();
  const ts_kernels *V = ts_kernels_for(isa), *S = ts_kernels_for(TS_ISA_SCALAR);
  printf("kernel_check: %s against scalar, %u steps, %u inputs each\n", V->name, steps_n, n);
  FILE *out = fopen(argv[2], "wb");
  if (!out) { perror(argv[2]); return 2; }
  fwrite("TSEO", 1, 4, out);
  fwrite(&steps_n, 4, 1, out);
  fwrite(&n, 4, 1, out);

  float *y = alloc(n), *ys = alloc(n), *t = alloc(n), *dx = alloc(n), *dxs = alloc(n), *zero = alloc(n);
  memset(zero, 0, n * 4);
  float guard[64];
  for (uint32_t k = 0; k < steps_n; k++) {
    const ts_step st = steps[k];
    const ts_op_info *info = ts_op_info_of(st.op);
    if (!info) { fprintf(stderr, "bad op %d\n", st.op); return 2; }
    const char *op = info->name;
    // forward: against the scalar variant, streaming, in place
    V->forward[st.op](x, y, n, st.a, st.b, 0);
    S->forward[st.op](x, ys, n, st.a, st.b, 0);
    int64_t wf = compare("forward", op, y, ys, n, MAX_ULP_VS_SCALAR);
    V->forward[st.op](x, t, n, st.a, st.b, 1);
    for (size_t i = 0; i < n; i++) if (!same(t[i], y[i])) { FAIL("forward %s streaming [%zu]", op, i); break; }
    memcpy(t, x, n * 4);
    V->forward[st.op](t, t, n, st.a, st.b, 0);
    for (size_t i = 0; i < n; i++) if (!same(t[i], y[i])) { FAIL("forward %s in place [%zu]", op, i); break; }
    // every tail 0-15 at four offsets: the same bits, nothing past the end
    for (size_t off = 0; off < 4; off++)
      for (size_t len = 0; len < 16; len++) {
        for (int g = 0; g < 64; g++) guard[g] = -777.0f;
        V->forward[st.op](x + 100 + off, guard + off, len, st.a, st.b, 0);
        for (size_t i = 0; i < len; i++)
          if (!same(guard[off + i], y[100 + off + i])) FAIL("forward %s tail %zu offset %zu [%zu]", op, len, off, i);
        for (size_t g = off + len; g < 64; g++) if (guard[g] != -777.0f) FAIL("forward %s tail %zu wrote past the end", op, len);
        for (size_t g = 0; g < off; g++) if (guard[g] != -777.0f) FAIL("forward %s tail %zu wrote before the start", op, len);
      }
    // backward from the saved tensor the row names (y from the scalar variant: one saved value)
    const float *s = info->saved == TS_SAVED_Y ? ys : info->saved == TS_SAVED_NONE ? NULL : x;
    V->backward[st.op](s, dy, dx, n, st.a, st.b, 0);
    S->backward[st.op](s, dy, dxs, n, st.a, st.b, 0);
    int64_t wb = compare("backward", op, dx, dxs, n, MAX_ULP_VS_SCALAR);
    memcpy(t, dy, n * 4);
    V->backward[st.op](s, t, t, n, st.a, st.b, 1);
    for (size_t i = 0; i < n; i++) if (!same(t[i], dx[i])) { FAIL("backward %s in place, streaming [%zu]", op, i); break; }
    for (size_t len = 0; len < 16; len++) {
      for (int g = 0; g < 64; g++) guard[g] = -777.0f;
      V->backward[st.op](s ? s + 200 : NULL, dy + 200, guard + 1, len, st.a, st.b, 0);
      for (size_t i = 0; i < len; i++) if (!same(guard[1 + i], dx[200 + i])) FAIL("backward %s tail %zu [%zu]", op, len, i);
      for (size_t g = 1 + len; g < 64; g++) if (guard[g] != -777.0f) FAIL("backward %s tail %zu wrote past the end", op, len);
    }
    fwrite(y, 4, n, out);
    fwrite(s ? s : zero, 4, n, out);
    fwrite(dx, 4, n, out);
    printf("  %-12s a=%-10g b=%-10g forward %lld ULP from scalar, backward %lld ULP\n", op, st.a, st.b,
           (long long)wf, (long long)wb);
  }
  fclose(out);

  // chains of 1-4 consecutive steps: the same bits as the steps one by one, forward and backward
  const size_t m = 1000;
  float *acts[5];
  for (int j = 0; j < 5; j++) acts[j] = alloc(m);
  for (uint32_t k = 0; k < steps_n; k++) {
    for (int len = 1; len <= 4; len++) {
      ts_step chain[4];
      for (int j = 0; j < len; j++) chain[j] = steps[(k + (uint32_t)j * 7) % steps_n];
      memcpy(acts[0], x + 500, m * 4);
      for (int j = 0; j < len; j++) V->forward[chain[j].op](acts[j], acts[j + 1], m, chain[j].a, chain[j].b, 0);
      V->chain(x + 500, t, m, chain, len, 0);
      for (size_t i = 0; i < m; i++)
        if (!same(t[i], acts[len][i])) { FAIL("chain of %d from step %u [%zu]", len, k, i); break; }
      memcpy(dxs, dy + 500, m * 4);
      for (int j = len - 1; j >= 0; j--) {
        const ts_op_info *info = ts_op_info_of(chain[j].op);
        const float *sv = info->saved == TS_SAVED_Y ? acts[j + 1] : info->saved == TS_SAVED_NONE ? NULL : acts[j];
        V->backward[chain[j].op](sv, dxs, dxs, m, chain[j].a, chain[j].b, 0);
      }
      V->chain_backward(x + 500, dy + 500, dx, m, chain, len, 0);
      for (size_t i = 0; i < m; i++)
        if (!same(dx[i], dxs[i])) { FAIL("chain_backward of %d from step %u [%zu]", len, k, i); break; }
    }
  }

  // the softmax, PReLU and copy kernels against the scalar variant: element-wise results within
  // MAX_ULP_VS_SCALAR, double sums of exact products within 1e-12 relative (their order is the
  // variant's own); the sums of exps within 1e-6: they add 8 vectors in float before double,
  // so their rounding depends on the vector width, on x86 as here
  const size_t rows = 37, D = 301;
  float *xr = alloc((rows + 1) * D), *a1 = alloc(rows * D), *a2 = alloc(rows * D);
  for (size_t i = 0; i < (rows + 1) * D; i++) xr[i] = isfinite(x[4096 + i]) && fabsf(x[4096 + i]) < 1e4f ? x[4096 + i] : 0.5f;
#define CLOSE(a, b, rel, what) do { double a_ = (a), b_ = (b); \
    if (!(fabs(a_ - b_) <= (rel) * fabs(b_) + 1e-300) && !(isnan(a_) && isnan(b_))) FAIL("%s: %.17g vs scalar %.17g", what, a_, b_); } while (0)
#define SUMS_CLOSE(a, b, what) CLOSE(a, b, 1e-12, what)
#define EXP_SUMS_CLOSE(a, b, what) CLOSE(a, b, 1e-6, what)
  for (size_t r = 0; r < rows; r++) {
    const float *row = xr + r * D;
    size_t len = D - r * 7 % 50;
    float mv = V->row_max(row, len), ms = S->row_max(row, len);
    if (!same(mv, ms)) FAIL("row_max row %zu: %a vs %a", r, mv, ms);
    if (!same(V->row_min(row, len), S->row_min(row, len))) FAIL("row_min row %zu", r);
    for (int near = 0; near < 2; near++) { // `near` only where the row lies within TS_SOFTMAX_NEAR of its max
      if (near && !(mv - S->row_min(row, len) < TS_SOFTMAX_NEAR)) continue;
      EXP_SUMS_CLOSE(V->exp_store_sum(row, a1, len, mv, 0, near), S->exp_store_sum(row, a2, len, ms, 0, near), "exp_store_sum");
      compare("exp_store_sum", "exps", a1, a2, len, MAX_ULP_VS_SCALAR);
      float nv, ns, nv2, ns2;
      EXP_SUMS_CLOSE(V->exp_sum_peek(row, a1, len, mv, near, row + D, &nv, &nv2),
                     S->exp_sum_peek(row, a2, len, ms, near, row + D, &ns, &ns2), "exp_sum_peek");
      if (r + 1 < rows && (!same(nv, ns) || !same(nv2, ns2))) FAIL("exp_sum_peek next max/min row %zu", r);
    }
    EXP_SUMS_CLOSE(V->exp_sum(row, len, mv), S->exp_sum(row, len, ms), "exp_sum");
    V->scale(row, a1, len, 0.37f, 0); S->scale(row, a2, len, 0.37f, 0);
    compare("scale", "row", a1, a2, len, 0);
    V->shift(row, a1, len, 1.5f, 1e-8f, 0); S->shift(row, a2, len, 1.5f, 1e-8f, 0);
    compare("shift", "row", a1, a2, len, 0);
    SUMS_CLOSE(V->grad_sum(row, dy + r * D, len, 0), S->grad_sum(row, dy + r * D, len, 0), "grad_sum");
    SUMS_CLOSE(V->grad_sum(row, dy + r * D, len, 1), S->grad_sum(row, dy + r * D, len, 1), "grad_sum log");
    for (int log = 0; log < 2; log++) {
      const float *yv = log ? a1 : row; // log_softmax's y must be <= 0
      if (log) for (size_t i = 0; i < len; i++) a1[i] = -fabsf(row[i]);
      float o1[512], o2[512];
      V->grad_finish(yv, dy + r * D, o1, len, 0.25f, 1e-9f, log, 0);
      S->grad_finish(yv, dy + r * D, o2, len, 0.25f, 1e-9f, log, 0);
      compare("grad_finish", log ? "log" : "softmax", o1, o2, len, MAX_ULP_VS_SCALAR);
    }
    SUMS_CLOSE(V->prelu_wsum(row, dy + r * D, len), S->prelu_wsum(row, dy + r * D, len), "prelu_wsum");
    V->copy(row, a1, len, 0);
    for (size_t i = 0; i < len; i++) if (!same(a1[i], row[i])) { FAIL("copy [%zu]", i); break; }
  }
  // rows_store with a line carry: the same bits as scale
  {
    ts_line_carry cv = {0}, cs = {0};
    float *o1 = alloc(rows * D + 16), *o2 = alloc(rows * D + 16);
    for (size_t r = 0; r < rows; r++) {
      V->rows_store(xr + r * D, o1 + 3 + r * D, D, 0.5f, 0, 0, &cv);
      S->scale(xr + r * D, o2 + 3 + r * D, D, 0.5f, 0);
    }
    ts_line_carry_flush(&cv);
    (void)cs;
    compare("rows_store", "scale", o1 + 3, o2 + 3, rows * D, 0);
  }
  // column kernels: D rows of w columns
  {
    const size_t Dc = 64, w = 13;
    float e1[64 * 16], e2[64 * 16], m1[16], m2[16], n1[16], n2[16], o1[64 * 16], o2[64 * 16];
    double s1[16], s2[16];
    for (size_t j = 0; j < w; j++) { m1[j] = m2[j] = -INFINITY; n1[j] = n2[j] = INFINITY; s1[j] = s2[j] = 0; }
    V->cols_max(xr, 40, Dc, w, m1, n1);
    S->cols_max(xr, 40, Dc, w, m2, n2);
    compare("cols_max", "maxima", m1, m2, w, 0);
    compare("cols_max", "minima", n1, n2, w, 0);
    V->cols_exp_sum(xr, 40, Dc, w, m1, n1, e1, w, s1, 1);
    S->cols_exp_sum(xr, 40, Dc, w, m2, n2, e2, w, s2, 1);
    compare("cols_exp_sum", "exps", e1, e2, Dc * w, MAX_ULP_VS_SCALAR);
    for (size_t j = 0; j < w; j++) EXP_SUMS_CLOSE(s1[j], s2[j], "cols_exp_sum sums");
    {
      float r1[16], r2[16], a1[16], a2[16], b1[16], b2[16];
      double t1[16], t2[16];
      for (size_t j = 0; j < w; j++) { r1[j] = r2[j] = a1[j] = a2[j] = -INFINITY; b1[j] = b2[j] = INFINITY; t1[j] = t2[j] = 0; }
      V->cols_stats(xr, 40, Dc, w, r1, a1, b1, t1, 1);
      S->cols_stats(xr, 40, Dc, w, r2, a2, b2, t2, 1);
      compare("cols_stats", "references", r1, r2, w, 0);
      for (size_t j = 0; j < w; j++) EXP_SUMS_CLOSE(t1[j], t2[j], "cols_stats sums");
      float ones[16], sh[16], marks[16];
      for (size_t j = 0; j < w; j++) { ones[j] = 1; sh[j] = m1[j]; marks[j] = n1[j]; }
      V->cols_out_prepare(sh, marks, w);
      V->cols_softmax_out(xr, 40, o1, w, Dc, w, sh, marks, ones, 0); // the stored exps' bits
      compare("cols_softmax_out", "recomputed exps", o1, e1, Dc * w, 0);
    }
    float fa[16], fb[16];
    for (int j = 0; j < 16; j++) { fa[j] = 0.01f * (float)(j + 1); fb[j] = 1e-9f; }
    for (int log = 0; log < 2; log++) {
      V->cols_finish(e1, w, o1, w, Dc, w, log, fa, log ? fb : NULL, 0);
      S->cols_finish(e1, w, o2, w, Dc, w, log, fa, log ? fb : NULL, 0);
      compare("cols_finish", log ? "log" : "softmax", o1, o2, Dc * w, 0);
    }
    double g1[16], g2[16];
    float en[64 * 16]; // log_softmax's y: <= 0
    for (size_t i = 0; i < Dc * w; i++) en[i] = -e1[i] * 20;
    for (int log = 0; log < 2; log++) {
      const float *yc = log ? en : e1;
      V->cols_grad_sum(yc, dy, w, Dc, w, log, g1);
      S->cols_grad_sum(yc, dy, w, Dc, w, log, g2);
      for (size_t j = 0; j < w; j++) SUMS_CLOSE(g1[j], g2[j], "cols_grad_sum");
      float sf[16], sl[16];
      for (size_t j = 0; j < w; j++) { sf[j] = (float)g2[j]; sl[j] = (float)(g2[j] - (double)sf[j]); }
      V->cols_grad_finish(yc, dy, o1, w, Dc, w, log, sf, sl);
      S->cols_grad_finish(yc, dy, o2, w, Dc, w, log, sf, sl);
      compare("cols_grad_finish", log ? "log" : "softmax", o1, o2, Dc * w, MAX_ULP_VS_SCALAR);
    }
  }
  printf("kernel_check: %d failure(s)\n", failures);
  return failures ? 1 : 0;
}
