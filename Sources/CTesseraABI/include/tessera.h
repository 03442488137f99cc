/*
 * tessera.h — Tessera's C ABI.  This header is the contract.
 *
 * Link with libTesseraC (swift build -c release --product TesseraC).  Include paths:
 * Sources/CTesseraABI/include (this header) and Sources/CTesseraKernels/include (tessera_ops.def,
 * the op table this header's op enum and per-op functions are generated from); ship both files.
 *
 * Conventions
 *  - Every function returns a tessera_status; TESSERA_OK is 0.  On any other status,
 *    tessera_last_error() returns a message for the calling thread (valid until that
 *    thread's next Tessera call), and nothing was written to any output buffer.
 *  - Buffers are caller-owned, contiguous, row-major float32.  `output` may be exactly
 *    `input` (in place); any other overlap is TESSERA_ERROR_OVERLAP.
 *  - A NULL runtime means the shared default runtime (TESSERA_THREADS, TESSERA_TOPOLOGY).
 *  - Calls are thread-safe: one runtime may be used from many threads at once.  A handle
 *    must not be destroyed while another thread is using it; using a destroyed handle is
 *    detected and returns TESSERA_ERROR_INVALID_HANDLE.
 *  - No function aborts the process on bad input.
 */
#ifndef TESSERA_H
#define TESSERA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  TESSERA_OK = 0,
  TESSERA_ERROR_NULL_POINTER = 1,     /* a required pointer is NULL */
  TESSERA_ERROR_INVALID_ARGUMENT = 2, /* a size, count or option out of range */
  TESSERA_ERROR_DIM_OUT_OF_RANGE = 3, /* softmax dim outside -rank..rank-1 */
  TESSERA_ERROR_OVERLAP = 4,          /* input and output overlap but are not identical */
  TESSERA_ERROR_INVALID_HANDLE = 5,   /* a destroyed or unknown runtime/pipeline handle */
  TESSERA_ERROR_INTERNAL = 6
} tessera_status;

/* The element-wise ops, one per row of tessera_ops.def (shipped next to this header), in its
 * order: TESSERA_RELU = 0, TESSERA_SIGMOID, TESSERA_TANH, TESSERA_GELU (exact x * Phi(x)),
 * TESSERA_GELU_TANH (PyTorch's approximate='tanh'), TESSERA_AFFINE (x * a + b),
 * TESSERA_CLAMP (min(max(x, a), b)), ...  Rows are only ever appended: values are stable. */
typedef enum {
#define TS_OP(name, NAME, ...) TESSERA_##NAME,
#include "tessera_ops.def"
#undef TS_OP
  TESSERA_OP_COUNT
} tessera_activation;

/* The largest `rank` a shape may have: `shape` must point to `rank` elements (a rank larger than
 * the array behind it is read past; larger than this is TESSERA_ERROR_INVALID_ARGUMENT). */
#define TESSERA_MAX_RANK 16

typedef struct tessera_runtime tessera_runtime;
typedef struct tessera_pipeline tessera_pipeline;

/* Message for the last failed call on this thread ("" if none). */
const char *tessera_last_error(void);
/* Library version, e.g. "0.1.0". */
const char *tessera_version(void);

/* threads: 0 = default (TESSERA_THREADS or the cores), at most 4096 (more workers than cores is
 * allowed: they share the cores); tile_bytes: 0 = default;
 * topology_json_path: NULL = this machine's topology. */
tessera_status tessera_runtime_create(int threads, size_t tile_bytes, const char *topology_json_path,
                                      tessera_runtime **out);
tessera_status tessera_runtime_destroy(tessera_runtime *runtime);

/* The host framework's thread pool, to run Tessera's parallel calls on instead of Tessera's own
 * workers (pthreadpool's shape).  The struct is copied at creation; `context` must outlive the
 * runtime.
 *  - num_threads(context): worker tasks per parallel call, 1...4096; read once, at creation.
 *  - parallel_for(context, n, task, arg): run task(arg, i) for the i in 0..n-1 the pool chooses,
 *    on any threads (the calling one included), and return only after every task it started has
 *    returned.  Tessera's tasks claim tiles until none are left: a pool that runs fewer than n of
 *    them loses parallelism, not work; one that runs none gets the call finished on the calling
 *    thread.  A pool that never returns hangs the call (a slow pool and a stuck one look alike).
 *  - in_parallel(context): optional (NULL): nonzero while the calling thread is inside the pool's
 *    own parallel region; a Tessera call made there runs inline instead of nesting.  A call made
 *    from inside a Tessera tile is detected without it (a thread-local depth) and runs inline too.
 * Results are bit-identical to any other executor's.  Workers are not pinned to CPUs. */
typedef struct {
  void *context;
  int (*num_threads)(void *context);
  void (*parallel_for)(void *context, size_t n, void (*task)(void *arg, size_t i), void *arg);
  int (*in_parallel)(void *context);
} tessera_executor;

/* A runtime on `executor` (tile_bytes and topology_json_path as tessera_runtime_create).  A NULL
 * executor, num_threads or parallel_for is TESSERA_ERROR_NULL_POINTER; a thread count outside
 * 1...4096 is TESSERA_ERROR_INVALID_ARGUMENT. */
tessera_status tessera_runtime_create_with_executor(const tessera_executor *executor, size_t tile_bytes,
                                                    const char *topology_json_path, tessera_runtime **out);

/* The op table: how many ops, each one's name ("relu", "gelu_tanh": NULL when out of range),
 * its number of scalar parameters (0-2; -1 when out of range), and the op of a name (-1 when none). */
int tessera_op_count(void);
const char *tessera_op_name(int op);
int tessera_op_parameter_count(int op);
int tessera_op_from_name(const char *name);
/* The op's parameter defaults (PyTorch's) into *a and *b (either may be NULL; 0 for a parameter
 * the op does not take); returns the parameter count, or -1 when op is out of range. */
int tessera_op_default_parameters(int op, float *a, float *b);

/* output[i] = op(input[i]) for i < count, with the op's default parameters (PyTorch's). */
tessera_status tessera_activation_run(tessera_runtime *runtime, tessera_activation op, const float *input,
                                      float *output, size_t count);
/* The same with parameters a and b (those the op does not take are ignored).  Invalid ones are
 * TESSERA_ERROR_INVALID_ARGUMENT: hardtanh's min > max, celu's alpha == 0, softplus's beta == 0,
 * softshrink's lambda < 0 or NaN (PyTorch's checks).  Others, NaN included, compute as PyTorch
 * does: clamp with min > max gives max everywhere, a NaN bound or parameter gives NaN where it
 * enters the result. */
tessera_status tessera_activation_run_with(tessera_runtime *runtime, tessera_activation op, float a, float b,
                                           const float *input, float *output, size_t count);
/* The backward of any op: grad_input = grad_output * op'(.) with parameters a, b, from the saved
 * tensor the op reads: `input` (the forward's x: gelu, gelu_tanh, clamp, ...), `output` (its y:
 * sigmoid, tanh), either (relu) or none (affine); the one it does not read may be NULL, a missing
 * one is TESSERA_ERROR_NULL_POINTER.  tessera_op_saved(op): 0 input, 1 output, 2 either, 3 none.
 * grad_input may be exactly grad_output; any other overlap is TESSERA_ERROR_OVERLAP. */
int tessera_op_saved(int op);
tessera_status tessera_activation_backward_with(tessera_runtime *runtime, tessera_activation op, float a, float b,
                                                const float *input, const float *output, const float *grad_output,
                                                float *grad_input, size_t count);

/* One forward and one backward function per op, with the op's parameters (PyTorch's order) last:
 *   tessera_relu(runtime, input, output, count), ..., tessera_affine(..., count, scale, bias),
 *   tessera_clamp(..., count, min, max), ...;
 *   tessera_relu_backward(runtime, input, output, grad_output, grad_input, count), ... */
#define TESSERA_PARAMS_0
#define TESSERA_PARAMS_1 , float a
#define TESSERA_PARAMS_2 , float a, float b
#define TESSERA_PARAMS_(n) TESSERA_PARAMS_##n
#define TS_OP(name, NAME, params, ...)                                                                     \
  tessera_status tessera_##name(tessera_runtime *runtime, const float *input, float *output,              \
                                size_t count TESSERA_PARAMS_(params));                                     \
  tessera_status tessera_##name##_backward(tessera_runtime *runtime, const float *input, const float *output, \
                                           const float *grad_output, float *grad_input,                    \
                                           size_t count TESSERA_PARAMS_(params));
#include "tessera_ops.def"
#undef TS_OP

/* Strided rows (2-D views such as x[:, :k]): `rows` rows of `cols` floats, row r of a view at
 * base + r * stride (strides in floats, at least cols; smaller is TESSERA_ERROR_INVALID_ARGUMENT).
 * The same results as the contiguous calls.  An output may be exactly its input view (same base
 * and stride) where the contiguous call allows it; any other overlap is TESSERA_ERROR_OVERLAP:
 * views with equal strides are checked exactly (interleaved views of one buffer are fine), views
 * with different strides must not share a span.  `log` != 0: log-softmax. */
tessera_status tessera_activation_run_strided(tessera_runtime *runtime, tessera_activation op, float a, float b,
                                              const float *input, size_t input_stride, float *output,
                                              size_t output_stride, size_t rows, size_t cols);
tessera_status tessera_activation_backward_strided(tessera_runtime *runtime, tessera_activation op, float a, float b,
                                                   const float *input, size_t input_stride, const float *output,
                                                   size_t output_stride, const float *grad_output,
                                                   size_t grad_output_stride, float *grad_input,
                                                   size_t grad_input_stride, size_t rows, size_t cols);
tessera_status tessera_softmax_strided(tessera_runtime *runtime, const float *input, size_t input_stride, float *output,
                                       size_t output_stride, size_t rows, size_t cols, int log);
tessera_status tessera_softmax_backward_strided(tessera_runtime *runtime, const float *output, size_t output_stride,
                                                const float *grad_output, size_t grad_output_stride, float *grad_input,
                                                size_t grad_input_stride, size_t rows, size_t cols, int log);

/* Softmax / log-softmax of a tensor of `shape[0..<rank]` along `dim` (negative counts from the end). */
tessera_status tessera_softmax(tessera_runtime *runtime, const float *input, float *output, const int64_t *shape,
                               int rank, int dim);
tessera_status tessera_log_softmax(tessera_runtime *runtime, const float *input, float *output, const int64_t *shape,
                                   int rank, int dim);
/* Their backward from the forward's output: grad_input = y * (dy - sum(dy * y)), or
 * dy - exp(y) * sum(dy) for log-softmax.  grad_input may be exactly grad_output. */
tessera_status tessera_softmax_backward(tessera_runtime *runtime, const float *output, const float *grad_output,
                                        float *grad_input, const int64_t *shape, int rank, int dim);
tessera_status tessera_log_softmax_backward(tessera_runtime *runtime, const float *output, const float *grad_output,
                                            float *grad_input, const int64_t *shape, int rank, int dim);

/* PReLU: x for x > 0, else weight[c] * x, c the index along dim 1 (weight_count == shape[1]), or
 * one weight for the whole tensor (weight_count == 1).  Its backward writes grad_input (which may
 * be exactly grad_output) and the weight's gradient grad_weight[0..<weight_count]. */
tessera_status tessera_prelu(tessera_runtime *runtime, const float *input, float *output, const int64_t *shape, int rank,
                             const float *weight, size_t weight_count);
tessera_status tessera_prelu_backward(tessera_runtime *runtime, const float *input, const float *grad_output,
                                      float *grad_input, const int64_t *shape, int rank, const float *weight,
                                      size_t weight_count, float *grad_weight);

/* Pipelines: build once, run many times.  Adjacent element-wise steps fuse into one sweep;
 * a run of them before a softmax is folded into its first pass. */
tessera_status tessera_pipeline_create(tessera_pipeline **out);
tessera_status tessera_pipeline_destroy(tessera_pipeline *pipeline);
tessera_status tessera_pipeline_add_activation(tessera_pipeline *pipeline, tessera_activation op);
tessera_status tessera_pipeline_add_activation_with(tessera_pipeline *pipeline, tessera_activation op, float a, float b);
tessera_status tessera_pipeline_add_affine(tessera_pipeline *pipeline, float scale, float bias);
tessera_status tessera_pipeline_add_clamp(tessera_pipeline *pipeline, float lower, float upper);
tessera_status tessera_pipeline_add_softmax(tessera_pipeline *pipeline, int dim, int log);
tessera_status tessera_pipeline_run(tessera_runtime *runtime, const tessera_pipeline *pipeline, const float *input,
                                    float *output, const int64_t *shape, int rank);
/* The gradient with respect to the pipeline's input at `input`, in one sweep per element-wise run
 * (intermediates recomputed, not stored).  grad_input may be exactly grad_output. */
tessera_status tessera_pipeline_backward(tessera_runtime *runtime, const tessera_pipeline *pipeline, const float *input,
                                         const float *grad_output, float *grad_input, const int64_t *shape, int rank);
/* The fused program as text; valid until the calling thread's next Tessera call. */
const char *tessera_pipeline_explain(const tessera_pipeline *pipeline);

#ifdef __cplusplus
}
#endif
#endif
