#!/usr/bin/env bash
# Builds libTesseraC, compiles Examples/c/example.c against tessera.h and runs it.
set -euo pipefail
cd "$(dirname "$0")/../.."
swift build -c release --product TesseraC
lib=$(swift build -c release --show-bin-path)
swiftlib=$(dirname "$(dirname "$(command -v swift)")")/lib/swift/linux
cc -O2 -Wall -Wextra -std=c11 Examples/c/example.c -I Sources/CTesseraABI/include -I Sources/CTesseraKernels/include -L "$lib" -lTesseraC -lm \
  -Wl,-rpath,"$lib" -Wl,-rpath,"$swiftlib" -o "$lib/tessera-c-example"
"$lib/tessera-c-example"
