// Picks the kernel table once per process from the CPU's features.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "include/tessera_kernels.h"

extern const ts_kernels ts_table_scalar;
#if defined(__x86_64__)
extern const ts_kernels ts_table_sse2, ts_table_avx2, ts_table_avx512;
#elif defined(__aarch64__)
extern const ts_kernels ts_table_neon;
#endif

int ts_isa_supported(ts_isa isa) {
  switch (isa) {
  case TS_ISA_SCALAR: return 1;
#if defined(__x86_64__)
  case TS_ISA_SSE2: return 1;
  case TS_ISA_AVX2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  case TS_ISA_AVX512: return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") &&
                             __builtin_cpu_supports("fma");
#elif defined(__aarch64__)
  case TS_ISA_NEON: return 1; // Advanced SIMD with FMA is part of the AArch64 base ISA
#endif
  default: return 0;
  }
}

const ts_kernels *ts_kernels_for(ts_isa isa) {
  if (!ts_isa_supported(isa)) return NULL;
  switch (isa) {
  case TS_ISA_SCALAR: return &ts_table_scalar;
#if defined(__x86_64__)
  case TS_ISA_SSE2: return &ts_table_sse2;
  case TS_ISA_AVX2: return &ts_table_avx2;
  case TS_ISA_AVX512: return &ts_table_avx512;
#elif defined(__aarch64__)
  case TS_ISA_NEON: return &ts_table_neon;
#endif
  default: return NULL;
  }
}

ts_isa ts_best_isa(void) {
  int cap = TS_ISA_COUNT - 1;
  const char *env = getenv("TESSERA_ISA");
  if (env) {
    for (int i = 0; i < TS_ISA_COUNT; i++) {
      static const char *const names[] = {"scalar", "sse2", "avx2", "avx512", "neon"};
      if (strcmp(env, names[i]) == 0) cap = i;
    }
  }
  for (int i = cap; i > 0; i--)
    if (ts_isa_supported((ts_isa)i)) return (ts_isa)i;
  return TS_ISA_SCALAR;
}

void ts_line_carry_flush(ts_line_carry *c) {
  if (c->line) memcpy(c->line, c->buf, (size_t)c->fill * sizeof(float));
  c->line = NULL;
  c->fill = 0;
}

#define TS_OP(name_, NAME, params_, a_, b_, check_, saved_, cheap_, ns_, method_) \
  {.name = #name_, .method = method_, .params = params_, .a = a_, .b = b_, .check = check_, .saved = saved_, \
   .cheap = cheap_, .ns = ns_},
static const ts_op_info op_table[TS_OP_COUNT] = {
#include "include/tessera_ops.def"
};
#undef TS_OP

const ts_op_info *ts_op_info_of(int op) { return op >= 0 && op < TS_OP_COUNT ? &op_table[op] : NULL; }
