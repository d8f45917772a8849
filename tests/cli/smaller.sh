#!/usr/bin/env bash
# smaller.sh: issue 11, item 7's smaller cases not covered elsewhere: a models folder with more
# than 64 files loads the model whatever readdir's order (it read only the first 64), and a
# weight that overflows float energies warns and fails instead of writing a grid of garbage.
# usage: bash smaller.sh VKEBM_BINARY SOURCE_DIR
set -u
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
need_python json "import json, struct"
CLI_COMMAND=sample
cd "$T"

# 1000 files of another vkebm format (skipped by the loader) and one concept model: the model
# is among the first 64 in readdir order about 6% of the time
mkdir many
"$PY" - many <<'PY'
import json, struct, sys
h = json.dumps({"__metadata__": {"format": "vkebm-other"}}).encode()
h += b" " * (-len(h) % 8)
for i in range(1000):
    open(f"{sys.argv[1]}/a{i:04d}.safetensors", "wb").write(struct.pack("<Q", len(h)) + h)
PY
cp "$SRC/models/color.safetensors" many/zz_color.safetensors
expect 0 "a folder of 1001 files" -- --expr color=red --models many -n 1 --steps 1 --seed 1 -o x.png
grep -q "using the analytic concepts" "$T/err" && fail "the model past the 64th file was not loaded"
grep -q "color=red" "$T/err" || fail "no energy line: $(cat "$T/err")"

S=(--analytic -n 1 --steps 3 --resolution 8 --seed 1 --quiet)
expect 1 "3e38*color=red AND 3e38*color=red" -- "${S[@]}" --expr "3e38*color=red AND 3e38*color=red" -o ov.png
grep -q "warning: a term's energy is scaled by 3e+38" "$T/err" || fail "no warning: $(cat "$T/err")"
grep -q "the energy overflowed" "$T/err" || fail "no error: $(cat "$T/err")"
[ ! -e ov.png ] || fail "a grid was written from an overflowed energy"
expect 0 "ordinary weights" -- "${S[@]}" --expr "2*color=red AND NOT[0.5] shape=cube" -o ok.png
[ ! -s "$T/err" ] || fail "a warning for ordinary weights: $(cat "$T/err")"
echo "smaller: ok"
