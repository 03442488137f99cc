#!/usr/bin/env bash
# Builds libTesseraC, compiles Examples/c/example.c against tessera.h and runs it
# (--sanitize: under AddressSanitizer and LeakSanitizer).
set -euo pipefail
cd "$(dirname "$0")/../.."
swift build -c release --product TesseraC
lib=$(swift build -c release --show-bin-path)
swiftlib=$(dirname "$(dirname "$(command -v swift)")")/lib/swift/linux
if [ "${1:-}" = "--sanitize" ]; then
  # AddressSanitizer with LeakSanitizer on: every handle the example creates must be released
  clang -g -O1 -fsanitize=address -fno-omit-frame-pointer -fuse-ld=lld -Wall -Wextra -std=c11 Examples/c/example.c \
    -I Sources/CTesseraABI/include -I Sources/CTesseraKernels/include -L "$lib" -lTesseraC -lm -lpthread \
    -Wl,-rpath,"$lib" -Wl,-rpath,"$swiftlib" -o "$lib/tessera-c-example-asan"
  ASAN_OPTIONS=detect_leaks=1 "$lib/tessera-c-example-asan"
  exit
fi
cc -O2 -Wall -Wextra -std=c11 Examples/c/example.c -I Sources/CTesseraABI/include -I Sources/CTesseraKernels/include -L "$lib" -lTesseraC -lm -lpthread \
  -Wl,-rpath,"$lib" -Wl,-rpath,"$swiftlib" -o "$lib/tessera-c-example"
"$lib/tessera-c-example"
