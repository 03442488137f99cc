// Kernel timings, cache-resident, one thread: the forward and backward kernels of builds of
// CTesseraKernels side by side (tools/kernel_bench.sh builds them).  Each library is dlopen'ed
// with RTLD_LOCAL, so two builds of the same source (a change and its base) alternate in one
// process: rounds x libraries, each point the best of 5 blocks of 40 calls, the reported value
// the median over rounds.  ns per element; the host's clock drift hits every build alike.
//
//   kernel_bench [--n N] [--rounds R] [--ops a,b] [--isa NAME] [--backward] [--softmax D] lib.so [lib2.so ...]
// --softmax D: softmax and log_softmax over the n/D rows of D (the rows strategy's kernels:
// the exp pass taking the next row's max, then the normalising pass), and their backward.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "../Sources/CTesseraKernels/include/tessera_kernels.h"

typedef const ts_kernels *(*kernels_for_fn)(ts_isa);
typedef const ts_op_info *(*info_fn)(int);
typedef ts_isa (*best_fn)(void);

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}
static int cmpd(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  size_t n = 4096;
  int rounds = 9, backward = 0;
  size_t softmaxD = 0;
  const char *ops = NULL, *isaName = NULL;
  const char *libs[8];
  int nl = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--n") && i + 1 < argc) n = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--ops") && i + 1 < argc) ops = argv[++i];
    else if (!strcmp(argv[i], "--isa") && i + 1 < argc) isaName = argv[++i];
    else if (!strcmp(argv[i], "--backward")) backward = 1;
    else if (!strcmp(argv[i], "--softmax") && i + 1 < argc) softmaxD = strtoull(argv[++i], NULL, 10);
    else if (nl < 8) libs[nl++] = argv[i];
  }
  if (!nl || rounds < 1 || rounds > 99 || !n) {
    fprintf(stderr, "usage: kernel_bench [--n N] [--rounds R] [--ops a,b] [--isa avx2] [--backward] [--softmax D] lib.so...\n");
    return 2;
  }
  const ts_kernels *tab[8];
  info_fn info = NULL;
  for (int l = 0; l < nl; l++) {
    void *h = dlopen(libs[l], RTLD_NOW | RTLD_LOCAL);
    if (!h) { fprintf(stderr, "%s\n", dlerror()); return 1; }
    kernels_for_fn kf = (kernels_for_fn)dlsym(h, "ts_kernels_for");
    best_fn best = (best_fn)dlsym(h, "ts_best_isa");
    info = (info_fn)dlsym(h, "ts_op_info_of");
    if (!kf || !best || !info) { fprintf(stderr, "%s: not a kernel library\n", libs[l]); return 1; }
    ts_isa isa = best();
    static const char *const names[] = {"scalar", "sse2", "avx2", "avx512", "neon"};
    if (isaName) for (int k = 0; k < TS_ISA_COUNT; k++) if (!strcmp(isaName, names[k])) isa = (ts_isa)k;
    tab[l] = kf(isa);
    if (!tab[l]) { fprintf(stderr, "%s: this CPU cannot run %s\n", libs[l], names[isa]); return 1; }
  }
  float *x = aligned_alloc(64, n * 4 + 64), *y = aligned_alloc(64, n * 4 + 64), *d = aligned_alloc(64, n * 4 + 64);
  srand(1);
  for (size_t i = 0; i < n; i++) {
    x[i] = (float)((double)rand() / RAND_MAX - 0.5) * 12.0f; // [-6, 6]: both branches of every op
    d[i] = (float)((double)rand() / RAND_MAX);
  }
  printf("n = %zu floats, %s, ns/element: median over %d rounds of the best of 5 x 40 calls\n", n,
         tab[0]->name, rounds);
  printf("%-22s", "op");
  for (int l = 0; l < nl; l++) printf("      lib %d", l + 1);
  if (nl > 1) printf(" %10s", "2 / 1");
  printf("\n");
  if (softmaxD) {
    const size_t D = softmaxD, R = n / D;
    float *e = aligned_alloc(64, D * 4 + 64);
    static const char *const modes[] = {"softmax rows", "log_softmax rows", "softmax bwd rows", "log_softmax bwd rows"};
    for (int mode = 0; mode < 4; mode++) {
      double med[8], samples[8][99];
      for (int k = 0; k < rounds; k++) {
        for (int l = 0; l < nl; l++) {
          const ts_kernels *t = tab[l];
          double best = 1e30;
          for (int b = 0; b < 5; b++) {
            double t0 = now();
            for (int c = 0; c < 40; c++) {
              if (mode < 2) {
                float m = t->row_max(x, D), mn = t->row_min(x, D);
                for (size_t r = 0; r < R; r++) {
                  const float *src = x + r * D, *next = r + 1 < R ? src + D : NULL;
                  float nm = 0, nmin = 0;
                  if (mode == 0) {
                    double sum = t->exp_sum_peek(src, e, D, m, m - mn < TS_SOFTMAX_NEAR, next, &nm, &nmin);
                    t->scale(e, y + r * D, D, (float)(1 / sum), 0);
                  } else {
                    // the engine's path: against 0 where |m| <= 40 (SoftmaxMath.logReference), whose
                    // max's term comes back out as em = exp_near_one(m, 0) (Engine.logBase)
                    const int zero = fabsf(m) <= 40;
                    // (and no min: log_softmax's rows have no near path to choose)
                    double sum = zero ? t->exp_sum_peek(src, NULL, D, 0, TS_EXP_ROUNDED, next, &nm, NULL)
                                      : t->exp_sum_peek(src, NULL, D, m, TS_EXP_EXACT, next, &nm, NULL);
                    double off = zero ? (double)m + log(sum / t->exp_near_one(m, 0)) : (double)m + log(sum);
                    float hi = (float)off;
                    t->shift(src, y + r * D, D, hi, (float)(off - hi), 0);
                  }
                  m = nm;
                  mn = nmin;
                }
              } else {
                for (size_t r = 0; r < R; r++) {
                  double s = t->grad_sum(y + r * D, d + r * D, D, mode - 2);
                  float hi = (float)s;
                  t->grad_finish(y + r * D, d + r * D, e, D, hi, (float)(s - hi), mode - 2, 0);
                }
              }
            }
            double dt = (now() - t0) / 40 / (R * D) * 1e9;
            if (dt < best) best = dt;
          }
          samples[l][k] = best;
        }
      }
      printf("%-22s", modes[mode]);
      for (int l = 0; l < nl; l++) {
        qsort(samples[l], rounds, sizeof(double), cmpd);
        med[l] = samples[l][rounds / 2];
        printf(" %10.3f", med[l]);
      }
      if (nl > 1) printf(" %9.2fx", med[1] / med[0]);
      printf("\n");
    }
    return 0;
  }
  for (int op = 0; op < TS_OP_COUNT; op++) {
    const ts_op_info *in = info(op);
    if (ops) {
      char key[64];
      snprintf(key, sizeof key, ",%s,", in->name);
      char list[1024];
      snprintf(list, sizeof list, ",%s,", ops);
      if (!strstr(list, key)) continue;
    }
    double med[8], samples[8][99];
    for (int k = 0; k < rounds; k++) {
      for (int l = 0; l < nl; l++) {
        double best = 1e30;
        for (int b = 0; b < 5; b++) {
          double t0 = now();
          for (int c = 0; c < 40; c++) {
            if (backward) tab[l]->backward[op](x, d, y, n, in->a, in->b, 0);
            else tab[l]->forward[op](x, y, n, in->a, in->b, 0);
          }
          double t = (now() - t0) / 40 / n * 1e9;
          if (t < best) best = t;
        }
        samples[l][k] = best;
      }
    }
    printf("%-22s", in->name);
    for (int l = 0; l < nl; l++) {
      qsort(samples[l], rounds, sizeof(double), cmpd);
      med[l] = samples[l][rounds / 2];
      printf(" %10.3f", med[l]);
    }
    if (nl > 1) printf(" %9.2fx", med[1] / med[0]);
    printf("%s\n", backward ? "  (backward)" : "");
  }
  return 0;
}
