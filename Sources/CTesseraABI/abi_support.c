// The per-thread last-error buffer of the C ABI (C has thread-locals; Swift does not).
#include <string.h>
#include "include/tessera.h"
#include "tessera_internal.h"

static _Thread_local char last_error[1024];
static _Thread_local char text_buffer[4096];

const char *tessera_last_error(void) { return last_error; }

void tessera_internal_set_error(const char *message) {
  strncpy(last_error, message ? message : "", sizeof last_error - 1);
  last_error[sizeof last_error - 1] = 0;
}

const char *tessera_internal_set_text(const char *text) {
  strncpy(text_buffer, text ? text : "", sizeof text_buffer - 1);
  text_buffer[sizeof text_buffer - 1] = 0;
  return text_buffer;
}

const char *tessera_version(void) { return "0.1.0"; }
