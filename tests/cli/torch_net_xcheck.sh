#!/usr/bin/env bash
# torch_net_xcheck.sh: vkebm's energy network (cpu backend) against the independent PyTorch
# network in tools/bench_torch.py. test_net_export writes a model file with every parameter
# randomised plus x, c and vkebm's energy, dE/dx and dE/dc; the torch script loads the model file
# with numpy, recomputes everything in float64 with autograd and compares (relative 1e-4).
# Covers the model-file layout and names, spectral norm, label conditioning, bypass, pooling and
# the head, on the cpu backend (tiny, default32) and on the Vulkan device when there is one (tiny,
# validation layer on). Skips (77) without a python3 that has torch.
set -u
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
need_python torch "import torch, numpy"
CHECKS=()
for preset in tiny default32; do
  mkdir -p "$T/$preset"
  "$BUILD/test_net_export" --export "$T/$preset" "$preset" || { echo "FAIL: export $preset"; exit 1; }
  CHECKS+=(--check "$T/$preset")
done
# The Vulkan backend (lavapipe on a machine without a GPU) against the same reference.
mkdir -p "$T/vk"
VK_VALIDATION_ENV="VK_LOADER_LAYERS_ENABLE=*validation VKEBM_VALIDATION=1"
env $VK_VALIDATION_ENV "$BUILD/test_net_export" --export "$T/vk" tiny vulkan
rc=$?
if [ $rc -eq 77 ]; then
  echo "no Vulkan device: vulkan part skipped"
elif [ $rc -ne 0 ]; then
  echo "FAIL: vulkan export"; exit 1
else
  CHECKS+=(--check "$T/vk")
fi
# One python process for every check (importing torch takes seconds).
"$PY" "$SRC/tools/bench_torch.py" "${CHECKS[@]}" || { echo "FAIL: vkebm disagrees with torch"; exit 1; }
echo "torch cross-check: ok"
