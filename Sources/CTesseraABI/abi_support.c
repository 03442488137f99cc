// The per-thread last-error buffer of the C ABI (C has thread-locals; Swift does not).
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

// tessera_<name>: one per row of the op table, each the generic call with the op's defaults.
#define TS_OP(name, NAME, ...)                                                                   \
  tessera_status tessera_##name(tessera_runtime *runtime, const float *input, float *output, size_t count) { \
    return tessera_activation_run(runtime, TESSERA_##NAME, input, output, count);                \
  }
#include "tessera_ops.def"
#undef TS_OP
