// Tile-to-core affinity probe: relu over 2^20 floats (cache-resident, 4 MiB in + 4 MiB out)
// with one thread and with two spinning threads, four ways of handing out the work:
//   m0: static halves (thread w always does half w)
//   m1: 128 KiB tiles from one shared counter (who gets which tile changes every call)
//   m2: each thread starts with its own half's tiles, then helps with the other's (Tessera's
//       per-CPU blocks)
//   m3: static halves, swapped every call (worst case: every tile changes core)
// Prints, per round, the median 1-thread / 2-thread times (us) of 101 calls and their ratio.
//   clang -O2 -o /tmp/affinity_probe tools/affinity_probe.c -lpthread && /tmp/affinity_probe
// Results and their reading: docs/records/zen3-avx2/tile-affinity.md.
#include <immintrin.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { N = 1 << 20, T = 32768, REPS = 101 };
static float *x, *y;
static atomic_int go, done;
static atomic_long shared_next, own_next[2];
static int mode, call;

static int cmp(const void *a, const void *b) {
  double d = *(const double *)a - *(const double *)b;
  return d < 0 ? -1 : d > 0;
}
static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}
__attribute__((target("avx2"))) static void relu(const float *a, float *b, long n) {
  __m256 z = _mm256_setzero_ps();
  for (long i = 0; i < n; i += 8) _mm256_storeu_ps(b + i, _mm256_max_ps(_mm256_loadu_ps(a + i), z));
}
static void work(int w) {
  if (mode == 0 || mode == 3) {
    long lo = (long)(mode == 0 ? w : w ^ (call & 1)) * (N / 2);
    relu(x + lo, y + lo, N / 2);
  } else if (mode == 1) {
    for (long t; (t = atomic_fetch_add(&shared_next, 1)) < N / T;) relu(x + t * T, y + t * T, T);
  } else {
    const long half = N / T / 2;
    for (int v = 0; v < 2; v++) {
      int h = w ^ v;
      for (long t; (t = atomic_fetch_add(&own_next[h], 1)) < half;) relu(x + (t + h * half) * T, y + (t + h * half) * T, T);
    }
  }
}
static void *helper(void *arg) {
  (void)arg;
  for (int seen = 0;; seen++) {
    while (atomic_load(&go) <= seen) {
    }
    work(1);
    atomic_fetch_add(&done, 1);
  }
  return NULL;
}
int main(void) {
  x = aligned_alloc(64, N * 4);
  y = aligned_alloc(64, N * 4);
  for (int i = 0; i < N; i++) x[i] = (float)(i % 7 - 3);
  memset(y, 0, N * 4);
  pthread_t t;
  pthread_create(&t, NULL, helper, NULL);
  int gen = 0;
  for (int round = 0; round < 8; round++) {
    printf("round %d:", round);
    for (mode = 0; mode < 4; mode++) {
      double t1[REPS], t2[REPS];
      for (int r = 0; r < REPS; r++) {
        double a = now();
        relu(x, y, N);
        t1[r] = now() - a;
      }
      for (int r = 0; r < REPS; r++) {
        double a = now();
        call = r;
        atomic_store(&shared_next, 0);
        atomic_store(&own_next[0], 0);
        atomic_store(&own_next[1], 0);
        atomic_store(&go, ++gen);
        work(0);
        while (atomic_load(&done) < gen) {
        }
        t2[r] = now() - a;
      }
      qsort(t1, REPS, sizeof(double), cmp);
      qsort(t2, REPS, sizeof(double), cmp);
      printf("  m%d %.0f/%.0f=%.2f", mode, t1[REPS / 2] / 1e3, t2[REPS / 2] / 1e3, t1[REPS / 2] / t2[REPS / 2]);
    }
    printf("\n");
  }
  return 0;
}
