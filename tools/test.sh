#!/usr/bin/env bash
# test.sh: sets everything up, then runs the whole test suite (CTest) on the cpu backend and on
# the Vulkan device (lavapipe when there is no GPU), with the validation layer on; then builds
# again with AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/) and runs the unit tests
# (label `unit`: parser fuzz, file readers, network, composition, training, scenes, viewer state)
# there, leak checks on. The Vulkan tests stay out of that stage: the driver keeps 128 bytes for
# the life of the process, which LeakSanitizer reports. VKEBM_TEST_SANITIZE=0 skips the stage.
# Last, tools/fuzz.sh builds the libFuzzer targets with clang (build-fuzz/), replays their seed
# corpus and fuzzes each for a few seconds (about 40 s in all); VKEBM_TEST_FUZZ=0 skips it.
# Extra arguments go to the first ctest run.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
(cd build && ctest --output-on-failure -j"$(nproc)" "$@")
if [ "${VKEBM_TEST_SANITIZE:-1}" != 0 ]; then
  echo "test.sh: sanitizer stage (ASan + UBSan, unit tests)"
  cmake -S . -B build-asan -DVKEBM_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build-asan -j"$(nproc)" >/dev/null
  (cd build-asan &&
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      ctest --output-on-failure -j"$(nproc)" -L unit)
fi
if [ "${VKEBM_TEST_FUZZ:-1}" != 0 ]; then
  echo "test.sh: fuzz stage (libFuzzer, ASan + UBSan, tools/fuzz.sh)"
  tools/fuzz.sh
fi
