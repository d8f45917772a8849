#!/usr/bin/env bash
# numpy_interop.sh: model files cross between vkebm and numpy both ways.
# (a) test_safetensors --write-sample (built next to vkebm) writes a file that plain numpy reads
#     and checks value by value; (b) numpy writes a file that `vkebm inspect --json` reads, and
#     the shapes and statistics it prints match numpy's. Skips (77) only without numpy.
set -u
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
need_python numpy "import numpy"

"$BUILD/test_safetensors" --write-sample "$T/sample.safetensors" || fail "writing the sample"
"$PY" "$SRC/tests/st_interop.py" read-sample "$T/sample.safetensors" || fail "numpy read of a vkebm file"

"$PY" "$SRC/tests/st_interop.py" write "$T/np.safetensors" || fail "numpy write"
"$VKEBM" inspect --json "$T/np.safetensors" > "$T/inspect.json" || fail "inspect --json of a numpy file"
"$PY" "$SRC/tests/st_interop.py" compare "$T/np.safetensors" "$T/inspect.json" || fail "inspect vs numpy"
"$VKEBM" inspect "$T/np.safetensors" > "$T/inspect.txt" || fail "inspect of a numpy file"
grep -q "stem.weight" "$T/inspect.txt" || fail "table lacks stem.weight"
grep -q "total: 793 values in 4 tensors, 3172 bytes" "$T/inspect.txt" || fail "table totals: $(tail -1 "$T/inspect.txt")"
echo "numpy interop: ok"
