// Tessera from C: run with `bash Examples/c/run.sh` (builds libTesseraC, compiles, runs).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tessera.h"

static int failures = 0;
#define CHECK(cond, ...) do { if (!(cond)) { failures++; printf("FAIL: " __VA_ARGS__); printf("\n"); } } while (0)

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
  printf("%s\n", failures ? "C example FAILED" : "C example passed");
  return failures ? 1 : 0;
}
