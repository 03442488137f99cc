// The memory limit for tools/compare_peers.py: y = max(x, 0) with streaming (non-temporal)
// stores of whole 64-byte lines, split over `threads` pthreads in contiguous parts.  Plain C,
// no Tessera code: the yardstick an element-wise op's 8 bytes per element are held to.
//   cc -O2 -shared -fPIC -pthread tools/memory_limit.c -o memory_limit.so
#include <immintrin.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

typedef struct { const float *x; const float *g; float *y; size_t n; int wide; } part;

__attribute__((target("avx2"))) static void relu_avx2(const float *x, float *y, size_t n) {
  size_t i = 0;
  while (i < n && ((uintptr_t)(y + i) & 63)) { y[i] = x[i] > 0 ? x[i] : 0; i++; }
  const __m256 z = _mm256_setzero_ps();
  for (; i + 16 <= n; i += 16) {
    __m256 a = _mm256_max_ps(_mm256_loadu_ps(x + i), z), b = _mm256_max_ps(_mm256_loadu_ps(x + i + 8), z);
    _mm256_stream_ps(y + i, a);
    _mm256_stream_ps(y + i + 8, b);
  }
  for (; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0;
  _mm_sfence();
}

__attribute__((target("avx512f"))) static void relu_avx512(const float *x, float *y, size_t n) {
  size_t i = 0;
  while (i < n && ((uintptr_t)(y + i) & 63)) { y[i] = x[i] > 0 ? x[i] : 0; i++; }
  const __m512 z = _mm512_setzero_ps();
  for (; i + 16 <= n; i += 16) _mm512_stream_ps(y + i, _mm512_max_ps(_mm512_loadu_ps(x + i), z));
  for (; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0;
  _mm_sfence();
}

/// relu's backward dx = dy * (x > 0): the floor for 12 bytes moved per element (two reads, one write).
__attribute__((target("avx2"))) static void relu_bwd_avx2(const float *x, const float *g, float *y, size_t n) {
  size_t i = 0;
  while (i < n && ((uintptr_t)(y + i) & 63)) { y[i] = x[i] > 0 ? g[i] : 0; i++; }
  const __m256 z = _mm256_setzero_ps();
  for (; i + 16 <= n; i += 16) {
    __m256 a = _mm256_and_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i), z, _CMP_GT_OQ), _mm256_loadu_ps(g + i));
    __m256 b = _mm256_and_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i + 8), z, _CMP_GT_OQ), _mm256_loadu_ps(g + i + 8));
    _mm256_stream_ps(y + i, a);
    _mm256_stream_ps(y + i + 8, b);
  }
  for (; i < n; i++) y[i] = x[i] > 0 ? g[i] : 0;
  _mm_sfence();
}

static void *run(void *arg) {
  part *p = arg;
  if (p->g) relu_bwd_avx2(p->x, p->g, p->y, p->n);
  else if (p->wide) relu_avx512(p->x, p->y, p->n);
  else relu_avx2(p->x, p->y, p->n);
  return NULL;
}

static int split(const float *x, const float *g, float *y, size_t n, int threads);

/// Returns the ISA used (512 or 256), or -1 when the CPU has no AVX2.
int memory_limit_relu(const float *x, float *y, size_t n, int threads) { return split(x, NULL, y, n, threads); }
/// The backward floor: dx = dy * (x > 0), AVX2 streaming stores.
int memory_limit_relu_backward(const float *x, const float *dy, float *dx, size_t n, int threads) {
  return split(x, dy, dx, n, threads);
}

static int split(const float *x, const float *g, float *y, size_t n, int threads) {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2")) return -1;
  int wide = __builtin_cpu_supports("avx512f");
  if (threads < 1) threads = 1;
  if (threads > 64) threads = 64;
  pthread_t t[64];
  part p[64];
  for (int k = 0; k < threads; k++) {
    size_t lo = n * k / threads / 16 * 16, hi = k + 1 == threads ? n : n * (k + 1) / threads / 16 * 16;
    p[k] = (part){x + lo, g ? g + lo : NULL, y + lo, hi - lo, wide};
  }
  for (int k = 1; k < threads; k++) pthread_create(&t[k], NULL, run, &p[k]);
  run(&p[0]);
  for (int k = 1; k < threads; k++) pthread_join(t[k], NULL);
  return wide ? 512 : 256;
}
