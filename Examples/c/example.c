// Tessera from C: run with `bash Examples/c/run.sh` (builds libTesseraC, compiles, runs).
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tessera.h"

static int failures = 0;
#define CHECK(cond, ...) do { if (!(cond)) { failures++; printf("FAIL: " __VA_ARGS__); printf("\n"); } } while (0)

// A host thread pool, as a framework would have one: persistent pthreads that wait for a job
// (a parallel_for), claim its task indices from a shared counter, and signal when it is done.
// Tessera runs its tiles on it through tessera_executor instead of starting threads of its own.
typedef struct {
  pthread_mutex_t lock;
  pthread_cond_t wake, done;
  pthread_t threads[3];
  int nthreads, stop, generation, busy;
  size_t n, next; // the current job: task indices 0..n-1, the next unclaimed one
  void (*task)(void *, size_t);
  void *arg;
} pool;

static void *pool_worker(void *p_) {
  pool *p = p_;
  int seen = 0;
  pthread_mutex_lock(&p->lock);
  for (;;) {
    while (!p->stop && p->generation == seen) pthread_cond_wait(&p->wake, &p->lock);
    if (p->stop) break;
    seen = p->generation;
    while (p->next < p->n) {
      size_t i = p->next++;
      p->busy++;
      pthread_mutex_unlock(&p->lock);
      p->task(p->arg, i);
      pthread_mutex_lock(&p->lock);
      if (--p->busy == 0 && p->next >= p->n) pthread_cond_broadcast(&p->done);
    }
  }
  pthread_mutex_unlock(&p->lock);
  return NULL;
}

static int pool_threads(void *p_) { return ((pool *)p_)->nthreads + 1; } // its threads and the caller

// runs task(arg, i) for i < n on the pool's threads and the calling one; returns when all are done
static void pool_parallel_for(void *p_, size_t n, void (*task)(void *, size_t), void *arg) {
  pool *p = p_;
  pthread_mutex_lock(&p->lock);
  p->n = n; p->next = 0; p->task = task; p->arg = arg; p->generation++;
  pthread_cond_broadcast(&p->wake);
  while (p->next < p->n) {
    size_t i = p->next++;
    p->busy++;
    pthread_mutex_unlock(&p->lock);
    task(arg, i);
    pthread_mutex_lock(&p->lock);
    p->busy--;
  }
  while (p->busy > 0) pthread_cond_wait(&p->done, &p->lock);
  pthread_mutex_unlock(&p->lock);
}

static void pool_start(pool *p) {
  memset(p, 0, sizeof *p);
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->wake, NULL);
  pthread_cond_init(&p->done, NULL);
  p->nthreads = 3;
  for (int i = 0; i < p->nthreads; i++) pthread_create(&p->threads[i], NULL, pool_worker, p);
}

static void pool_stop(pool *p) {
  pthread_mutex_lock(&p->lock);
  p->stop = 1;
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->lock);
  for (int i = 0; i < p->nthreads; i++) pthread_join(p->threads[i], NULL);
  pthread_mutex_destroy(&p->lock);
  pthread_cond_destroy(&p->wake);
  pthread_cond_destroy(&p->done);
}

// every op of the table, forward and backward, on the host's pool and on Tessera's own
// workers: the same bits
static void host_pool_gives_the_same_bits(void) {
  pool p;
  pool_start(&p);
  tessera_executor ex = {.context = &p, .num_threads = pool_threads, .parallel_for = pool_parallel_for, .in_parallel = NULL};
  tessera_runtime *host = NULL, *own = NULL;
  CHECK(tessera_runtime_create_with_executor(&ex, 16384, NULL, &host) == TESSERA_OK, "executor: %s", tessera_last_error());
  CHECK(tessera_runtime_create(4, 16384, NULL, &own) == TESSERA_OK, "create: %s", tessera_last_error());
  enum { M = 1 << 18 };
  float *x = malloc(M * sizeof *x), *a = malloc(M * sizeof *a), *b = malloc(M * sizeof *b), *y = malloc(M * sizeof *y);
  for (int i = 0; i < M; i++) x[i] = (float)sin(i * 0.37) * 9.0f;
  int ops = 0;
  for (int op = 0; op < tessera_op_count(); op++) {
    CHECK(tessera_activation_run(host, (tessera_activation)op, x, a, M) == TESSERA_OK, "%s: %s", tessera_op_name(op), tessera_last_error());
    CHECK(tessera_activation_run(own, (tessera_activation)op, x, b, M) == TESSERA_OK, "%s", tessera_op_name(op));
    CHECK(memcmp(a, b, M * sizeof *a) == 0, "%s: host pool and own workers differ", tessera_op_name(op));
    float da, db;
    tessera_op_default_parameters(op, &da, &db);
    memcpy(y, a, M * sizeof *y); // the forward's output, for the ops that read it
    CHECK(tessera_activation_backward_with(host, (tessera_activation)op, da, db, x, y, x, a, M) == TESSERA_OK, "%s backward", tessera_op_name(op));
    CHECK(tessera_activation_backward_with(own, (tessera_activation)op, da, db, x, y, x, b, M) == TESSERA_OK, "%s backward", tessera_op_name(op));
    CHECK(memcmp(a, b, M * sizeof *a) == 0, "%s backward: host pool and own workers differ", tessera_op_name(op));
    ops++;
  }
  int64_t shape[2] = {512, 512};
  CHECK(tessera_softmax(host, x, a, shape, 2, 1) == TESSERA_OK && tessera_softmax(own, x, b, shape, 2, 1) == TESSERA_OK, "softmax");
  CHECK(memcmp(a, b, M * sizeof *a) == 0, "softmax: host pool and own workers differ");
  printf("host pthread pool (%d threads): %d ops forward and backward and softmax, bits identical to Tessera's workers\n",
         pool_threads(&p), ops);
  ex.num_threads = NULL;
  tessera_runtime *bad = NULL;
  CHECK(tessera_runtime_create_with_executor(&ex, 0, NULL, &bad) == TESSERA_ERROR_NULL_POINTER && bad == NULL, "NULL num_threads");
  printf("executor without num_threads -> \"%s\"\n", tessera_last_error());
  tessera_runtime_destroy(host);
  tessera_runtime_destroy(own);
  pool_stop(&p);
  free(x); free(a); free(b); free(y);
}

int main(void) {
  printf("tessera %s\n", tessera_version());
  tessera_runtime *rt = NULL;
  CHECK(tessera_runtime_create(2, 0, NULL, &rt) == TESSERA_OK, "create: %s", tessera_last_error());

  // sigmoid on caller memory, against libm in double
  enum { N = 1 << 16 };
  float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
  for (int i = 0; i < N; i++) x[i] = (float)((i - N / 2) * 0.001);
  CHECK(tessera_sigmoid(rt, x, y, N) == TESSERA_OK, "sigmoid: %s", tessera_last_error());
  double worst = 0;
  for (int i = 0; i < N; i++) {
    double ref = 1.0 / (1.0 + exp(-(double)x[i]));
    double err = fabs(y[i] - ref) / ref;
    if (err > worst) worst = err;
  }
  printf("sigmoid: %d elements, max relative error %.2e\n", N, worst);
  CHECK(worst < 5e-7, "sigmoid error %g", worst);

  // in-place softmax over rows
  float rows[6] = {1, 2, 3, 1000, 1001, 1002};
  int64_t shape[2] = {2, 3};
  CHECK(tessera_softmax(rt, rows, rows, shape, 2, -1) == TESSERA_OK, "softmax: %s", tessera_last_error());
  printf("softmax([1000, 1001, 1002]) = [%.7f, %.7f, %.7f]\n", rows[3], rows[4], rows[5]);
  CHECK(memcmp(rows, rows + 3, 3 * sizeof(float)) == 0, "softmax is shift-invariant");

  // a fused pipeline: scale, relu, softmax
  tessera_pipeline *p = NULL;
  CHECK(tessera_pipeline_create(&p) == TESSERA_OK, "pipeline");
  tessera_pipeline_add_affine(p, 0.125f, 0.0f);
  tessera_pipeline_add_activation(p, TESSERA_RELU);
  tessera_pipeline_add_softmax(p, -1, 0);
  printf("%s", tessera_pipeline_explain(p));
  int64_t pshape[2] = {256, 256};
  CHECK(tessera_pipeline_run(rt, p, x, y, pshape, 2) == TESSERA_OK, "run: %s", tessera_last_error());
  double sum = 0;
  for (int j = 0; j < 256; j++) sum += y[j];
  CHECK(fabs(sum - 1) < 1e-5, "row sum %f", sum);

  // backward: the pipeline's gradient at x for a gradient dy, in one sweep per element-wise run;
  // and one op's, from the saved tensor it reads (tanh: its output; relu: input or output)
  float *dy = malloc(N * sizeof(float)), *dx = malloc(N * sizeof(float));
  for (int i = 0; i < N; i++) dy[i] = (float)((i % 7) - 3) * 0.25f;
  CHECK(tessera_pipeline_backward(rt, p, x, dy, dx, pshape, 2) == TESSERA_OK, "backward: %s", tessera_last_error());
  double gsum = 0;
  for (int j = 0; j < 256; j++) gsum += dx[j];
  printf("pipeline backward: row 0 gradient sums to %.2e (softmax's gradient is orthogonal to the ones)\n", gsum);
  CHECK(fabs(gsum) < 1e-4 * 256, "softmax backward row sum %g", gsum);
  float t[3] = {-0.5f, 0.0f, 0.5f}, gt[3] = {1, 1, 1}, dt[3];
  CHECK(tessera_tanh_backward(rt, NULL, t, gt, dt, 3) == TESSERA_OK, "tanh backward");
  CHECK(fabsf(dt[0] - 0.75f) < 1e-6f && dt[1] == 1.0f, "tanh backward values %g %g", dt[0], dt[1]);
  CHECK(tessera_tanh_backward(rt, t, NULL, gt, dt, 3) == TESSERA_ERROR_NULL_POINTER, "tanh needs its output");
  printf("tanh backward without its output -> \"%s\"\n", tessera_last_error());
  free(dy);
  free(dx);

  // errors: a status and a message, nothing written, no crash
  float guard[4] = {7, 7, 7, 7};
  CHECK(tessera_tanh(rt, NULL, guard, 4) == TESSERA_ERROR_NULL_POINTER, "null input");
  printf("null input -> \"%s\"\n", tessera_last_error());
  CHECK(tessera_tanh(rt, guard, guard + 1, 3) == TESSERA_ERROR_OVERLAP, "overlap");
  printf("overlap -> \"%s\"\n", tessera_last_error());
  CHECK(tessera_softmax(rt, x, y, shape, 2, 3) == TESSERA_ERROR_DIM_OUT_OF_RANGE, "dim");
  printf("dim 3 -> \"%s\"\n", tessera_last_error());
  CHECK(guard[0] == 7 && guard[1] == 7, "nothing written on error");
  tessera_pipeline_destroy(p);
  tessera_runtime_destroy(rt);
  CHECK(tessera_relu(rt, x, y, 4) == TESSERA_ERROR_INVALID_HANDLE, "destroyed handle");
  printf("destroyed handle -> \"%s\"\n", tessera_last_error());

  free(x);
  free(y);
  host_pool_gives_the_same_bits();
  printf("%s\n", failures ? "C example FAILED" : "C example passed");
  return failures ? 1 : 0;
}
