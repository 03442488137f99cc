#!/usr/bin/env bash
# Fuzzes Tessera's entry points with libFuzzer under AddressSanitizer (Fuzz/README.md).
#   tools/fuzz.sh [SECONDS] [TARGET...]     default: 60 s for each of abi pipeline handles topology scenario
# Each target starts from Fuzz/corpus/TARGET (the committed seeds) plus its working corpus in
# .build-fuzz/corpus/TARGET; a crash input lands in Fuzz/findings/ and fails the script.
# Swift's -sanitize=fuzzer would link libFuzzer's own main over SwiftPM's, so the build takes
# coverage flags and libFuzzer's no-main runtime, and tessera-fuzz calls LLVMFuzzerRunDriver.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(abi pipeline handles topology scenario)
clang_lib=$(dirname "$(dirname "$(command -v swift)")")/lib/clang
fuzzer_rt=$(ls "$clang_lib"/*/lib/linux/libclang_rt.fuzzer_no_main-x86_64.a | head -1)
swift build --scratch-path .build-fuzz --product tessera-fuzz \
  -Xswiftc -sanitize=address -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp \
  -Xswiftc -DTESSERA_LIBFUZZER -Xcc -fsanitize=address -Xcc -fsanitize=fuzzer-no-link \
  -Xlinker "$fuzzer_rt" -Xlinker -lstdc++ 2>&1 | grep -v "Cannot export local symbol" | tail -3
bin=.build-fuzz/debug/tessera-fuzz
mkdir -p Fuzz/findings
status=0
for t in "${targets[@]}"; do
  mkdir -p ".build-fuzz/corpus/$t" "Fuzz/corpus/$t"
  echo "== $t: ${seconds}s"
  # the Swift backtracer would sit on a crash for minutes under ASan; libFuzzer reports it
  if ! SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 "$bin" "$t" \
      -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=3072 -timeout=30 -print_final_stats=1 \
      -artifact_prefix="Fuzz/findings/$t-" ".build-fuzz/corpus/$t" "Fuzz/corpus/$t" 2>&1 \
      | grep -E "^#[0-9]+ *(DONE|INITED)|stat::number_of_executed_units|stat::peak_rss|contract broken|ERROR|SUMMARY|Test unit written"; then
    :
  fi
  if ls Fuzz/findings/"$t"-* >/dev/null 2>&1; then echo "FINDING in $t: Fuzz/findings/"; status=1; fi
done
exit $status
