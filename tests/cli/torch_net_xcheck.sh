#!/usr/bin/env bash
# torch_net_xcheck.sh: vkebm's energy network (cpu backend) against the independent PyTorch
# network in tools/bench_torch.py. test_net_export writes a model file with every parameter
# randomised plus x, c and vkebm's energy, dE/dx and dE/dc; the torch script loads the model file
# with numpy, recomputes everything in float64 with autograd and compares (relative 1e-4).
# Covers the model-file layout and names, spectral norm, label conditioning, bypass, pooling and
# the head. Skips (77) without a python3 that has torch.
set -u
BUILD=$(dirname "$1")
SRC=$2
PY=""
for p in /usr/bin/python3 python3; do
  if command -v "$p" >/dev/null && "$p" -c "import torch, numpy" 2>/dev/null; then PY=$p; break; fi
done
[ -n "$PY" ] || { echo "no python3 with torch: skipping"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
for preset in tiny default32; do
  mkdir -p "$T/$preset"
  "$BUILD/test_net_export" --export "$T/$preset" "$preset" || { echo "FAIL: export $preset"; exit 1; }
  "$PY" "$SRC/tools/bench_torch.py" --check "$T/$preset" || { echo "FAIL: $preset disagrees with torch"; exit 1; }
done
echo "torch cross-check: ok"
