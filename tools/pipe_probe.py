#!/usr/bin/env python3
"""Which execution ports the kernels' vector instructions share, on the machine at hand.

Times 12 independent instances of an instruction, alone and beside 12 independent FMAs, in
cycles per block, the best of five runs (a dependent FMA chain gives the cycle, taken as 4 cycles of latency).  Two
instructions that share ports add their times (Zen 3: 12 FMAs + 12 vpermilps = 12 cycles, as 24
FMAs would); two that do not overlap.  Loads read a 64-byte-aligned buffer.  x86-64 with
AVX2 + FMA only; the C is generated, compiled with $CC (default clang) and run once.

    python3 tools/pipe_probe.py

docs/records/zen3-avx2/README.md, session 15, has what Zen 3 gave and why GELU cares.
"""
import os
import subprocess
import sys
import tempfile

# FMAs accumulate into ymm0-11 (12 chains of one FMA per block: throughput-bound); the others
# write ymm12/ymm13 from ymm14/ymm15 without reading their destination, so they never chain.
FMA = [f"vfmadd231ps %%ymm14,%%ymm15,%%ymm{r}" for r in range(12)]
OTHER = {
    "mul": "vmulps %%ymm14,%%ymm15,%%ymm{d}",
    "add": "vaddps %%ymm14,%%ymm15,%%ymm{d}",
    "max": "vmaxps %%ymm14,%%ymm15,%%ymm{d}",
    "cmp": "vcmpltps %%ymm14,%%ymm15,%%ymm{d}",
    "and": "vandps %%ymm14,%%ymm15,%%ymm{d}",
    "blendv": "vblendvps %%ymm15,%%ymm14,%%ymm15,%%ymm{d}",
    "vpermilps (4-entry)": "vpermilps %%ymm14,%%ymm15,%%ymm{d}",
    "vpermps (8-entry)": "vpermps %%ymm14,%%ymm15,%%ymm{d}",
    "shift": "vpslld $23,%%ymm15,%%ymm{d}",
    "paddd": "vpaddd %%ymm14,%%ymm15,%%ymm{d}",
    "load": "vmovaps {o}(%%rax),%%ymm{d}",
    "broadcast load": "vbroadcastss {o}(%%rax),%%ymm{d}",
}


def others(kind):
    return [OTHER[kind].format(d=12 + r % 2, o=64 * (r % 8)) for r in range(12)]


def case(body):
    return "\\n".join(["lea buf(%%rip),%%rax"] + body)


def source():
    clobber = ",".join(f'"xmm{r}"' for r in range(14))
    cases = [("12 fma", FMA)] + [(f"12 {k}", others(k)) for k in OTHER] + [(f"12 fma + 12 {k}", FMA + others(k)) for k in OTHER]
    out = ["#include <stdio.h>", "#include <x86intrin.h>", "#define N 10000000L",
           "float buf[1024] __attribute__((aligned(64)));"]
    for i, (_, body) in enumerate(cases):
        out.append(f'static double c{i}(void) {{ unsigned long t = __rdtsc(); for (long i = 0; i < N; i++) '
                   f'__asm__ volatile("{case(body)}" ::: "rax", {clobber}); return (double)(__rdtsc() - t) / N; }}')
    out.append('static double cycle(void) { unsigned long t = __rdtsc(); for (long i = 0; i < N; i++) '
               '__asm__ volatile("vfmadd231ps %%ymm14,%%ymm15,%%ymm0" ::: "xmm0"); return (double)(__rdtsc() - t) / N / 4; }')
    out.append("typedef double (*fn)(void);")
    out.append("static double best(fn f) { double b = 1e30; for (int k = 0; k < 5; k++) { double t = f(); if (t < b) b = t; } return b; }")
    out.append('int main(void) { __asm__ volatile("vxorps %%ymm14,%%ymm14,%%ymm14\\n vxorps %%ymm15,%%ymm15,%%ymm15"'
               ' ::: "xmm14", "xmm15"); double c = best(cycle), f = best(c0) / c;')
    out.append('printf("%-34s %6.2f cycles\\n", "12 fma", f);')
    n = len(OTHER)
    for j, k in enumerate(OTHER):
        out.append(f'{{ double a = best(c{1 + j}) / c, b = best(c{1 + n + j}) / c; printf("%-34s %6.2f cycles   with 12 fma: %6.2f (%s)\\n", '
                   f'"12 {k}", a, b, b > 0.8 * (f + a) ? "shares the FMA ports" : b < 1.2 * (f > a ? f : a) ? "other ports" : "partly shared"); }}')
    out.append("return 0; }")
    return "\n".join(out) + "\n"


def main():
    if os.uname().machine != "x86_64":
        sys.exit("pipe_probe: x86-64 only")
    with tempfile.TemporaryDirectory() as d:
        c, exe = os.path.join(d, "probe.c"), os.path.join(d, "probe")
        open(c, "w").write(source())
        subprocess.run([os.environ.get("CC", "clang"), "-O2", "-o", exe, c], check=True)
        print(subprocess.run(["lscpu"], capture_output=True, text=True).stdout.split("Model name:")[1].split("\n")[0].strip())
        print("cycles per block of 12, best of 5 (a dependent FMA chain taken as 4 cycles per FMA); run it on a quiet machine")
        sys.stdout.flush()
        subprocess.run([exe], check=True)


if __name__ == "__main__":
    main()
