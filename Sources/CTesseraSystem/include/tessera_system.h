// The few OS and CPU facilities Swift's Glibc module does not show: thread placement, cache
// sizes, libdispatch's function form, a spin hint, and a core-bound probe.  The runtime and
// topology layers use these; they know nothing of the kernels (tessera_kernels.h).
#ifndef TESSERA_SYSTEM_H
#define TESSERA_SYSTEM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// A core-bound loop (8 independent multiply-add chains, no memory traffic) of `iterations`
/// steps; returns a value to keep it from being optimised away.  scale-test runs it on one
/// thread per worker at once to measure how much compute the cores really give together.
double ts_compute_burn(long iterations);

// ---- thread placement (Linux; no-ops returning -1 elsewhere) ----
/// Number of CPUs the OS reports as configured (0 if unknown).
int ts_cpu_count(void);
/// Restrict the calling thread to `cpus[0..<n]`; saves the previous mask into `saved`
/// (an opaque buffer of ts_cpu_mask_size() bytes) when non-NULL.  Returns 0 on success.
int ts_pin_current_thread(const int *cpus, int n, void *saved);
/// Restore a mask saved by ts_pin_current_thread.
int ts_restore_current_thread(const void *saved);
size_t ts_cpu_mask_size(void);
/// Asks for transparent huge pages on [p, p + bytes) (madvise; THP is often "madvise"-only).
int ts_advise_hugepages(void *p, size_t bytes);
/// Runs fn(context, i) for i in 0..<n on libdispatch's threads and the caller: what
/// DispatchQueue.concurrentPerform runs (dispatch_apply_f, DISPATCH_APPLY_AUTO), without the
/// heap-copied block that turning a Swift closure into one costs on every call.
void ts_dispatch_apply(size_t n, void *context, void (*fn)(void *context, size_t i));
/// The CPU the calling thread runs on now, or -1.
int ts_current_cpu(void);
/// A spin-wait hint (PAUSE on x86, YIELD on arm64).
static inline void ts_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}
/// The calling thread's depth of Tessera tile execution (0: not inside a tile), so that a
/// nested call runs inline.  Thread-local; Swift has no thread-locals of its own.
int ts_tile_depth(void);
void ts_tile_enter(void);
void ts_tile_exit(void);
/// Bytes of the given cache level (1, 2, 3) per sysconf, 0 if unknown.
long ts_cache_size(int level);

#ifdef __cplusplus
}
#endif
#endif
