// Thread placement and cache sizes: the few OS calls Swift's Glibc module does not show.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "include/tessera_system.h"
#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#elif defined(__APPLE__)
#include <sys/sysctl.h>
#endif

int ts_advise_hugepages(void *p, size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  return madvise(p, bytes, MADV_HUGEPAGE);
#else
  (void)p; (void)bytes;
  return -1;
#endif
}

// a floating-point register operand: SSE on x86, FP/SIMD on arm64, memory elsewhere
#if defined(__x86_64__) || defined(__i386__)
#define TS_FREG(v) "+x"(v)
#elif defined(__aarch64__)
#define TS_FREG(v) "+w"(v)
#else
#define TS_FREG(v) "+m"(v)
#endif

double ts_compute_burn(long iterations) {
  double a0 = 1, a1 = 1.1, a2 = 1.2, a3 = 1.3, a4 = 1.4, a5 = 1.5, a6 = 1.6, a7 = 1.7;
  for (long k = 0; k < iterations; k++) {
    a0 = a0 * 0.9999999 + 1e-7; a1 = a1 * 0.9999999 + 1e-7; a2 = a2 * 0.9999999 + 1e-7; a3 = a3 * 0.9999999 + 1e-7;
    a4 = a4 * 0.9999999 + 1e-7; a5 = a5 * 0.9999999 + 1e-7; a6 = a6 * 0.9999999 + 1e-7; a7 = a7 * 0.9999999 + 1e-7;
    // registers only: the compiler may neither fold the chains nor spill them
    __asm__ volatile("" : TS_FREG(a0), TS_FREG(a1), TS_FREG(a2), TS_FREG(a3), TS_FREG(a4), TS_FREG(a5), TS_FREG(a6), TS_FREG(a7));
  }
  return a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
}

static _Thread_local int tile_depth;
int ts_tile_depth(void) { return tile_depth; }
void ts_tile_enter(void) { tile_depth++; }
void ts_tile_exit(void) { tile_depth--; }

int ts_cpu_count(void) {
  long n = sysconf(_SC_NPROCESSORS_CONF);
  return n > 0 ? (int)n : 0;
}

size_t ts_cpu_mask_size(void) {
#if defined(__linux__)
  return sizeof(cpu_set_t);
#else
  return 1;
#endif
}

int ts_pin_current_thread(const int *cpus, int n, void *saved) {
#if defined(__linux__)
  if (saved && pthread_getaffinity_np(pthread_self(), sizeof(cpu_set_t), (cpu_set_t *)saved) != 0) return -1;
  cpu_set_t set;
  CPU_ZERO(&set);
  int any = 0;
  for (int i = 0; i < n; i++)
    if (cpus[i] >= 0 && cpus[i] < CPU_SETSIZE) { CPU_SET(cpus[i], &set); any = 1; }
  if (!any) return -1;
  return pthread_setaffinity_np(pthread_self(), sizeof(cpu_set_t), &set) == 0 ? 0 : -1;
#else
  (void)cpus; (void)n; (void)saved;
  return -1;
#endif
}

int ts_restore_current_thread(const void *saved) {
#if defined(__linux__)
  return pthread_setaffinity_np(pthread_self(), sizeof(cpu_set_t), (const cpu_set_t *)saved) == 0 ? 0 : -1;
#else
  (void)saved;
  return -1;
#endif
}

int ts_current_cpu(void) {
#if defined(__linux__)
  return sched_getcpu();
#else
  return -1;
#endif
}

// sysfs first: on VMs sysconf can report the host's whole L3 (256 MiB seen where the
// guest's cpu0 sees 32 MiB), which would turn streaming stores off.
static long sysfs_cache_size(int level) {
#if defined(__linux__)
  for (int i = 0; i < 8; i++) {
    char path[96], buf[64];
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
    FILE *f = fopen(path, "r");
    if (!f) break;
    int lv = 0;
    int ok = fscanf(f, "%d", &lv) == 1;
    fclose(f);
    if (!ok || lv != level) continue;
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/type", i);
    f = fopen(path, "r");
    if (!f) continue;
    ok = fscanf(f, "%63s", buf) == 1;
    fclose(f);
    if (!ok || strcmp(buf, "Instruction") == 0) continue;
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
    f = fopen(path, "r");
    if (!f) continue;
    long v = 0;
    char unit = 0;
    ok = fscanf(f, "%ld%c", &v, &unit) >= 1;
    fclose(f);
    if (!ok) continue;
    if (unit == 'K') v *= 1024;
    else if (unit == 'M') v *= 1024 * 1024;
    return v;
  }
#endif
  (void)level;
  return 0;
}

long ts_cache_size(int level) {
  long s = sysfs_cache_size(level);
  if (s > 0) return s;
#if defined(__linux__) && defined(_SC_LEVEL1_DCACHE_SIZE)
  switch (level) {
  case 1: return sysconf(_SC_LEVEL1_DCACHE_SIZE);
  case 2: return sysconf(_SC_LEVEL2_CACHE_SIZE);
  case 3: return sysconf(_SC_LEVEL3_CACHE_SIZE);
  }
#elif defined(__APPLE__)
  // Apple Silicon reports the performance cores' caches per level (hw.perflevel0.*); Intel
  // Macs the plain names.  Not built or run here (no macOS machine): see the README.
  static const char *const names[3][2] = {{"hw.perflevel0.l1dcachesize", "hw.l1dcachesize"},
                                          {"hw.perflevel0.l2cachesize", "hw.l2cachesize"},
                                          {"hw.perflevel0.l3cachesize", "hw.l3cachesize"}};
  if (level >= 1 && level <= 3)
    for (int i = 0; i < 2; i++) {
      int64_t v = 0;
      size_t len = sizeof v;
      if (sysctlbyname(names[level - 1][i], &v, &len, NULL, 0) == 0 && v > 0) return (long)v;
    }
#endif
  (void)level;
  return 0;
}

// libdispatch's function form, declared here (its header is not on a C target's include
// path); a NULL queue is DISPATCH_APPLY_AUTO, which Swift's concurrentPerform passes too.
struct dispatch_queue_s;
extern void dispatch_apply_f(size_t iterations, struct dispatch_queue_s *queue, void *context,
                             void (*work)(void *context, size_t i));

void ts_dispatch_apply(size_t n, void *context, void (*fn)(void *context, size_t i)) {
  dispatch_apply_f(n, (struct dispatch_queue_s *)0, context, fn);
}
