#!/usr/bin/env bash
# fuzz.sh: builds the libFuzzer targets (tests/fuzz/fuzz_*.c) with clang under ASan + UBSan
# (+ float-cast-overflow) into build-fuzz/, replays the committed seed corpus
# (tests/fuzz/corpus/TARGET/, with the crashing inputs of docs/reliability.md), then fuzzes
# each target for VKEBM_FUZZ_SECONDS (default 8) from a copy of it. Any crash, sanitizer report, leak,
# timeout (10 s per input) or allocation past 2.5 GB fails the script, and the input that did it
# is kept in build-fuzz/findings/. Called by tools/test.sh; VKEBM_TEST_FUZZ=0 skips it there.
# usage: tools/fuzz.sh [TARGET...]   (default: safetensors png from checkpoint celeba)
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
SECONDS_EACH=${VKEBM_FUZZ_SECONDS:-8}
TARGETS=("$@")
((${#TARGETS[@]})) || TARGETS=(safetensors png from checkpoint celeba)
command -v clang >/dev/null || { echo "fuzz.sh: clang is missing (tools/setup.sh installs it)" >&2; exit 1; }
CC=clang cmake -S . -B build-fuzz -DVKEBM_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target "${TARGETS[@]/#/fuzz_}" >/dev/null
mkdir -p build-fuzz/findings
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
export ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export VKEBM_THREADS=1
total=0
for t in "${TARGETS[@]}"; do
  bin="$SRC/build-fuzz/fuzz_$t"
  mkdir -p "$W/$t/corpus" "$W/$t/cwd"
  cp "$SRC/tests/fuzz/corpus/$t/"* "$W/$t/corpus/"
  # the committed inputs first, each once: they crashed vkebm before the fixes docs/reliability.md lists
  (cd "$W/$t/cwd" && "$bin" -close_fd_mask=3 -rss_limit_mb=2560 -malloc_limit_mb=2560 -timeout=10 \
     -artifact_prefix="$SRC/build-fuzz/findings/$t-" "$SRC/tests/fuzz/corpus/$t/"* >"$W/$t/replay.log" 2>&1) || {
    tail -40 "$W/$t/replay.log"; echo "fuzz.sh: $t: a seed input fails (log above)"; exit 1; }
  (cd "$W/$t/cwd" && "$bin" -close_fd_mask=3 -rss_limit_mb=2560 -malloc_limit_mb=2560 -timeout=10 \
     -max_total_time="$SECONDS_EACH" -print_final_stats=1 -artifact_prefix="$SRC/build-fuzz/findings/$t-" \
     "$W/$t/corpus" >"$W/$t/fuzz.log" 2>&1) || {
    tail -60 "$W/$t/fuzz.log"; echo "fuzz.sh: $t: crash or sanitizer report (input in build-fuzz/findings/)"; exit 1; }
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$W/$t/fuzz.log")
  cov=$(grep -o 'cov: [0-9]*' "$W/$t/fuzz.log" | tail -1)
  echo "fuzz.sh: $t: ${execs:-?} inputs in ${SECONDS_EACH} s, $cov, no findings"
  total=$((total + ${execs:-0}))
done
echo "fuzz.sh: ok ($total inputs)"
