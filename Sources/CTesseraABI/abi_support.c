// The per-thread last-error buffer of the C ABI (C has thread-locals; Swift does not).
#include <math.h>
#include <string.h>
#include "include/tessera.h"
#include "tessera_internal.h"

static _Thread_local char last_error[1024];
static _Thread_local char text_buffer[4096];

const char *tessera_last_error(void) { return last_error; }

void tessera_internal_set_error(const char *message) {
  // not strncpy: it would zero-fill the whole buffer on every successful call
  size_t n = message ? strlen(message) : 0;
  if (n > sizeof last_error - 1) n = sizeof last_error - 1;
  if (n) memcpy(last_error, message, n);
  last_error[n] = 0;
}

const char *tessera_internal_set_text(const char *text) {
  size_t n = text ? strlen(text) : 0;
  if (n > sizeof text_buffer - 1) n = sizeof text_buffer - 1;
  if (n) memcpy(text_buffer, text, n);
  text_buffer[n] = 0;
  return text_buffer;
}

const char *tessera_version(void) { return "0.1.0"; }

// tessera_<name> and tessera_<name>_backward: one of each per row of the op table, with the
// row's parameters (its defaults fill the ones it does not take).
#define TESSERA_ARG_A_0 0.0f
#define TESSERA_ARG_A_1 a
#define TESSERA_ARG_A_2 a
#define TESSERA_ARG_B_0 0.0f
#define TESSERA_ARG_B_1 0.0f
#define TESSERA_ARG_B_2 b
#define TESSERA_ARG_A(n) TESSERA_ARG_A_##n
#define TESSERA_ARG_B(n) TESSERA_ARG_B_##n
#define TS_OP(name, NAME, params, a0, b0, ...)                                                        \
  tessera_status tessera_##name(tessera_runtime *runtime, const float *input, float *output,          \
                                size_t count TESSERA_PARAMS_(params)) {                                \
    float pa = params > 0 ? TESSERA_ARG_A(params) : (a0), pb = params > 1 ? TESSERA_ARG_B(params) : (b0); \
    return tessera_activation_run_with(runtime, TESSERA_##NAME, pa, pb, input, output, count);         \
  }                                                                                                    \
  tessera_status tessera_##name##_backward(tessera_runtime *runtime, const float *input, const float *output, \
                                           const float *grad_output, float *grad_input,                \
                                           size_t count TESSERA_PARAMS_(params)) {                     \
    float pa = params > 0 ? TESSERA_ARG_A(params) : (a0), pb = params > 1 ? TESSERA_ARG_B(params) : (b0); \
    return tessera_activation_backward_with(runtime, TESSERA_##NAME, pa, pb, input, output, grad_output, \
                                            grad_input, count);                                         \
  }
#include "tessera_ops.def"
#undef TS_OP
