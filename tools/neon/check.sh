#!/usr/bin/env bash
# The NEON kernels under emulation, on an x86-64 machine:
#  1. tessera-accuracy writes the op table's steps and inputs (edge, random, a sampled stride
#     of all 2^32 bit patterns: the exhaustive run is too slow under emulation);
#  2. the C kernel layer and tools/neon/kernel_check.c are cross-compiled for aarch64-linux-gnu
#     (the toolchain's clang with Debian's arm64 sysroot, linked by aarch64-linux-gnu-gcc) and run
#     with qemu-aarch64-static: NEON against the scalar variant, tails, streaming, chains;
#  3. tessera-accuracy grades NEON's outputs against the float64 references, next to this
#     machine's own best variant.
# Needs: gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static (Debian).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${TESSERA_NEON_DIR:-.build/neon}
mkdir -p "$out"
sysroot=/usr/aarch64-linux-gnu
flags=(--target=aarch64-linux-gnu --sysroot="$sysroot" -O2 -Wall -Wextra -Werror -std=gnu11
       -I Sources/CTesseraKernels/include -I Sources/CTesseraKernels)
objs=()
for src in Sources/CTesseraKernels/isa_scalar.c Sources/CTesseraKernels/isa_neon.c Sources/CTesseraKernels/dispatch.c \
           tools/neon/kernel_check.c; do
  obj="$out/$(basename "$src" .c).o"
  clang "${flags[@]}" -c "$src" -o "$obj"
  objs+=("$obj")
done
aarch64-linux-gnu-gcc -o "$out/kernel_check" "${objs[@]}" -lm
# the other C files build for arm64 too (no x86-only code outside #if: the x86 variants compile empty)
for src in isa_sse2 isa_avx2 isa_avx512; do
  clang "${flags[@]}" -c "Sources/CTesseraKernels/$src.c" -o "$out/$src.o"
done
clang "${flags[@]}" -c Sources/CTesseraSystem/sys.c -I Sources/CTesseraSystem/include -o "$out/sys.o"
clang "${flags[@]}" -c Sources/CTesseraABI/abi_support.c -I Sources/CTesseraABI/include -o "$out/abi_support.o"
file "$out/kernel_check" | grep -q "ARM aarch64" || { echo "not an aarch64 binary"; exit 1; }

swift build -c release --product tessera-accuracy >/dev/null
bin=$(swift build -c release --show-bin-path)
"$bin/tessera-accuracy" emulated-write "$out/cases.bin"
qemu-aarch64-static -L "$sysroot" "$out/kernel_check" "$out/cases.bin" "$out/neon-out.bin"
"$bin/tessera-accuracy" emulated-check "$out/cases.bin" "$out/neon-out.bin"
