#!/usr/bin/env bash
# torchvision_grid.sh: img_make_grid + PNG writing equal torchvision.utils.save_image pixel for
# pixel (geometry, padding, pad value, rounding and clamping). Skips (77) without torchvision.
set -u
BUILD=$(dirname "$1")
SRC=$2
PY=""
for p in /usr/bin/python3 python3; do
  if command -v "$p" >/dev/null && "$p" -c "import torchvision, PIL, numpy" 2>/dev/null; then PY=$p; break; fi
done
[ -n "$PY" ] || { echo "no python3 with torchvision: skipping"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
"$BUILD/test_image" --write-grids "$T" || { echo "FAIL: writing grids"; exit 1; }
"$PY" "$SRC/tests/torchvision_grid.py" "$T"
