#!/usr/bin/env bash
# torchvision_grid.sh: img_make_grid + PNG writing equal torchvision.utils.save_image pixel for
# pixel (geometry, padding, pad value, rounding and clamping). Skips (77) without torchvision.
set -u
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
need_python torchvision "import torchvision, PIL, numpy"
"$BUILD/test_image" --write-grids "$T" || { echo "FAIL: writing grids"; exit 1; }
"$PY" "$SRC/tests/torchvision_grid.py" "$T"
