#!/usr/bin/env bash
# test.sh: sets everything up, then runs the whole test suite (CTest) on the cpu backend and on
# the Vulkan device (lavapipe when there is no GPU), with the validation layer on.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
cd build
ctest --output-on-failure -j"$(nproc)" "$@"
