#!/usr/bin/env bash
# Builds CTesseraKernels from the working tree and from git revisions as shared libraries and
# times their kernels side by side in one process (tools/kernel_bench.c).
#   tools/kernel_bench.sh [--rev REV]... [kernel_bench options]
# Without --rev: the working tree alone.  With --rev HEAD: HEAD first, then the working tree.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${TMPDIR:-/tmp}/tessera-kernel-bench
mkdir -p "$out"
cc=${CC:-clang}
build() { # source dir, library
  local srcs=("$1"/*.c)
  "$cc" -O3 -fPIC -shared -std=gnu11 -o "$2" "${srcs[@]}" -lm
}
libs=()
args=()
while (($#)); do
  case $1 in
    --rev)
      rev=$2; shift 2
      dir="$out/src-$(git -C "$root" rev-parse --short "$rev")"
      rm -rf "$dir"; mkdir -p "$dir"
      git -C "$root" archive "$rev" Sources/CTesseraKernels | tar -x -C "$dir"
      build "$dir/Sources/CTesseraKernels" "$dir.so"
      libs+=("$dir.so");;
    *) args+=("$1"); shift;;
  esac
done
build "$root/Sources/CTesseraKernels" "$out/worktree.so"
libs+=("$out/worktree.so")
"$cc" -O2 -o "$out/kernel_bench" "$root/tools/kernel_bench.c" -ldl -lm
exec "$out/kernel_bench" "${args[@]}" "${libs[@]}"
