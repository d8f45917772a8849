#!/usr/bin/env bash
# judge.sh: `vkebm judge` and `vkebm eval` on the cpu backend with tiny networks at 8x8:
# --help 0; bad flags exit 2 with one line; a judge trained for a few steps is written, measured
# by `judge eval` (refusing the training seed) and reads single PNGs, sample grids (split by their
# vkebm:* chunks) and --json; `vkebm sample` and `vkebm eval` skip the judge sitting in the models
# folder; `judge calibrate` records the faithful check's thresholds (and `eval` refuses a judge
# without them); `eval --expr` prints its table and --json; `eval --save DIR` writes the grids and
# a CSV whose rows add up to the summary; `eval --suite --out` writes a markdown table
# with rows for missing concepts marked skipped; malformed inputs (not a PNG, a wrong-size
# image, a concept model given as the judge, a truncated judge) exit 1 with one clear line.
set -u
VKEBM=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export VKEBM_THREADS=1
fail() { echo "FAIL: $*"; exit 1; }
run() { # run CODE DESCRIPTION -- ARGS...
  local want=$1 what=$2
  shift 3
  "$VKEBM" "$@" >"$T/out" 2>"$T/err"
  local rc=$?
  [ "$rc" -eq "$want" ] || fail "$what: exit $rc, want $want ($(cat "$T/err"))"
}
one_line() { [ "$(wc -l <"$T/err")" -eq 1 ] || fail "$1: not one line: $(cat "$T/err")"; }

run 0 "judge --help" -- judge --help
grep -q "usage: vkebm judge" "$T/out" || fail "judge --help text"
run 0 "eval --help" -- eval --help
grep -q "usage: vkebm eval" "$T/out" || fail "eval --help text"
run 2 "bad steps" -- judge train --steps 0 -o "$T/j.safetensors"
one_line "bad steps"
run 2 "bad config" -- judge train --config huge -o "$T/j.safetensors"
one_line "bad config"
run 2 "bad data spec" -- judge train --config tiny --data cubes -o "$T/j.safetensors"
run 2 "unknown flag" -- judge --frobnicate x.png
one_line "unknown flag"
run 2 "no images" -- judge --model "$T/none.safetensors"
run 1 "missing judge" -- judge --model "$T/none.safetensors" --quiet x.png
one_line "missing judge"
run 2 "eval without expr" -- eval
run 2 "eval expr and suite" -- eval --expr color=red --suite
run 2 "eval bad expr" -- eval --expr "color=red AND" --judge "$T/none.safetensors"
grep -q "bad expression" "$T/err" || fail "bad expression message: $(cat "$T/err")"

# a judge trained for a handful of steps
run 0 "judge train" -- judge train --config tiny --steps 6 --batch 4 --log-every 3 --seed 5 --calibrate 24 -o "$T/models/judge.safetensors"
[ -s "$T/models/judge.safetensors" ] || fail "no judge written"
grep -q "step 6/6" "$T/err" || fail "no progress line: $(cat "$T/err")"
"$VKEBM" inspect "$T/models/judge.safetensors" >"$T/inspect" 2>&1 || fail "inspect: $(cat "$T/inspect")"
grep -q "vkebm-judge" "$T/inspect" || fail "judge file lacks its format marker: $(cat "$T/inspect")"
"$VKEBM" inspect "$T/models/judge.safetensors" 2>&1 | grep -q "faithful_residual = " || fail "judge train did not calibrate"
run 0 "judge train --init" -- judge train --init "$T/models/judge.safetensors" --steps 2 --batch 4 --seed 6 --calibrate 0 --quiet -o "$T/tuned.safetensors"
"$VKEBM" inspect "$T/tuned.safetensors" 2>&1 | grep -q "faithful_residual" && fail "--init kept the old judge's calibration"
run 0 "judge calibrate" -- judge calibrate --model "$T/tuned.safetensors" -n 16 --seed 9 --quiet -o "$T/tuned2.safetensors"
grep -q "residual <=" "$T/out" || fail "judge calibrate output: $(cat "$T/out")"
"$VKEBM" inspect "$T/tuned2.safetensors" 2>&1 | grep -q "faithful_calibration = quantile 0.995" || fail "calibration not recorded: $("$VKEBM" inspect "$T/tuned2.safetensors" 2>&1)"
run 0 "judge calibrate again" -- judge calibrate --model "$T/tuned.safetensors" -n 16 --seed 9 --quiet -o "$T/tuned3.safetensors"
cmp -s "$T/tuned2.safetensors" "$T/tuned3.safetensors" || fail "calibration is not deterministic for a seed"
run 2 "judge calibrate -n 1" -- judge calibrate --model "$T/tuned.safetensors" -n 1 --quiet
one_line "judge calibrate -n 1"
"$VKEBM" inspect "$T/tuned.safetensors" 2>&1 | grep -q "step = 8" || fail "--init: step count not continued: $("$VKEBM" inspect "$T/tuned.safetensors" 2>&1)"
run 1 "judge train --init of a non-judge" -- judge train --init "$T/nothing.safetensors" --steps 2 --quiet -o "$T/x.safetensors"
one_line "judge train --init of a non-judge"
run 0 "judge eval" -- judge eval --model "$T/models/judge.safetensors" -n 20 --quiet
grep -q "shape accuracy" "$T/out" && grep -q "position MAE" "$T/out" || fail "judge eval output: $(cat "$T/out")"
run 0 "judge eval --json" -- judge eval --model "$T/models/judge.safetensors" -n 8 --json --quiet
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['n']==8 and 0<=d['shape_acc']<=1" "$T/out" ||
  fail "judge eval --json: $(cat "$T/out")"
run 2 "eval on the training seed" -- judge eval --model "$T/models/judge.safetensors" -n 4 --seed 5 --quiet
one_line "eval on the training seed"

# reading images: single renders, --json
"$VKEBM" data --spec general -n 2 --seed 4 --size 8 -o "$T/data" -q || fail "vkebm data"
run 0 "judge images" -- judge --model "$T/models/judge.safetensors" --quiet "$T/data/000000.png" "$T/data/000001.png"
[ "$(grep -c 'shape .* colour .* x .* y .* size' "$T/out")" -eq 2 ] || fail "judge lines: $(cat "$T/out")"
run 0 "judge --json" -- judge --model "$T/models/judge.safetensors" --json --quiet "$T/data/000000.png"
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert len(d)==1 and 'colour_p' in d[0]" "$T/out" ||
  fail "judge --json: $(cat "$T/out")"

# a tiny concept model next to the judge: sample and eval skip the judge file
"$VKEBM" train --concept color --config tiny --size 8 --batch 4 --langevin-steps 3 --buffer 16 --steps 2 \
  --backend cpu -o "$T/models/color.safetensors" >/dev/null 2>&1 || fail "tiny concept training"
rm -f "$T/models/color.ckpt.safetensors" "$T/models/color.metrics.csv"
run 0 "sample with the judge in models/" -- sample --expr color=red -n 3 --steps 2 --seed 1 --models "$T/models" -o "$T/grid.png" --quiet
run 0 "sample --scale 2" -- sample --expr color=red -n 3 --steps 2 --seed 1 --scale 2 --models "$T/models" -o "$T/grid2.png" --quiet
run 0 "judge a scaled sample grid" -- judge --model "$T/models/judge.safetensors" --quiet "$T/grid2.png"
[ "$(grep -c '^.*grid2.png#[0-2]: shape' "$T/out")" -eq 3 ] || fail "scaled grid cells: $(cat "$T/out")"
run 0 "judge a sample grid" -- judge --model "$T/models/judge.safetensors" --quiet "$T/grid.png"
[ "$(grep -c '^.*grid.png#[0-2]: shape' "$T/out")" -eq 3 ] || fail "grid cells: $(cat "$T/out")"
# --grid: a chunk-less 2x1 grid of 8x8 cells with padding 2 (22x12), and a 16x16 that is no grid
python3 - "$T/plain.png" <<'PY' || fail "writing a plain grid"
import struct, sys, zlib
W, H = 22, 12
rows = b"".join(b"\0" + bytes((x * 11 + y * 7) % 256 for x in range(W * 3)) for y in range(H))
chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 8, 2, 0, 0, 0))
                              + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
PY
run 1 "plain grid without --grid" -- judge --model "$T/models/judge.safetensors" --quiet "$T/plain.png"
grep -q -- "--grid" "$T/err" || fail "no hint at --grid: $(cat "$T/err")"
run 0 "plain grid with --grid" -- judge --model "$T/models/judge.safetensors" --quiet --grid "$T/plain.png"
[ "$(grep -c 'plain.png#[01]: shape' "$T/out")" -eq 2 ] || fail "--grid cells: $(cat "$T/out")"
"$VKEBM" data --spec general -n 1 --seed 4 --size 16 -o "$T/big" -q || fail "vkebm data 16"
run 1 "not a grid" -- judge --model "$T/models/judge.safetensors" --quiet --grid --padding 3 "$T/big/000000.png"
grep -q "not a grid of 8x8 cells" "$T/err" || fail "not a grid message: $(cat "$T/err")"
run 0 "eval --expr" -- eval --expr "color=red AND NOT color=blue" -n 4 --batch 4 --steps 2 --models "$T/models" --judge "$T/models/judge.safetensors" --quiet
grep -q "strict (faithful, all at once)" "$T/out" && grep -q "NOT color=blue" "$T/out" && grep -q "faithful (re-render" "$T/out" || fail "eval table: $(cat "$T/out")"
run 1 "eval with an uncalibrated judge" -- eval --expr color=red -n 2 --batch 2 --steps 1 --models "$T/models" --judge "$T/tuned.safetensors" --quiet
one_line "eval with an uncalibrated judge"
grep -q "judge calibrate" "$T/err" || fail "uncalibrated judge message: $(cat "$T/err")"
run 0 "eval --save" -- eval --expr "color=red AND NOT color=blue" -n 6 --batch 3 --steps 2 --models "$T/models" --judge "$T/models/judge.safetensors" --save "$T/saved" --json --quiet
for f in samples.png rerenders.png samples.csv; do [ -s "$T/saved/$f" ] || fail "eval --save did not write $f"; done
python3 - "$T/out" "$T/saved/samples.csv" <<'PY' || fail "eval --save: the CSV does not match the summary"
import csv, json, sys
d = json.load(open(sys.argv[1]))
rows = list(csv.DictReader(open(sys.argv[2])))
assert len(rows) == d["n"] == 6, (len(rows), d["n"])
mean = lambda k: sum(int(r[k]) for r in rows) / len(rows)
assert abs(mean("strict") - d["strict"]) < 1e-4 and abs(mean("faithful") - d["faithful"]) < 1e-4, d
for t in d["terms"]:
    assert abs(mean(t["term"]) - t["satisfied"]) < 1e-4, t
for r in rows:
    assert int(r["strict"]) <= int(r["faithful"]), r
PY
# --score: the samples of one expression scored against another (a joint model's samples
# against the composition it stands for); per-term "unverified" is the judge's reading alone
run 0 "eval --score" -- eval --expr color=red --score "color=blue AND NOT color=red" -n 6 --batch 3 --steps 2 --models "$T/models" --judge "$T/models/judge.safetensors" --save "$T/scored" --json --quiet
python3 - "$T/out" "$T/scored/samples.csv" <<'PY' || fail "eval --score: $(cat "$T/out")"
import csv, json, sys
d = json.load(open(sys.argv[1]))
rows = list(csv.DictReader(open(sys.argv[2])))
assert d["sampled"] == "color=red" and d["expr"] == "color=blue AND NOT color=red", d
assert [t["term"] for t in d["terms"]] == ["color=blue", "NOT color=red"], d
read = [float(r["scene_prob"]) >= 0.5 for r in rows]
want = [sum(s and r["judged_color"] == "blue" for s, r in zip(read, rows)) / 6,
        sum(s and r["judged_color"] != "red" for s, r in zip(read, rows)) / 6]
for t, w in zip(d["terms"], want):
    assert abs(t["unverified"] - w) < 1e-4 and t["satisfied"] <= t["unverified"] + 1e-9, (t, w)
PY
run 2 "eval --score with --suite" -- eval --suite --score color=red --judge "$T/models/judge.safetensors"
one_line "eval --score with --suite"
run 2 "eval bad --score" -- eval --expr color=red --score "color=" --judge "$T/models/judge.safetensors"
grep -q "bad --score expression" "$T/err" || fail "bad --score message: $(cat "$T/err")"
run 0 "eval --json" -- eval --expr "color=red OR color=blue" -n 4 --batch 2 --steps 2 --models "$T/models" --judge "$T/models/judge.safetensors" --json --quiet
python3 -c "
import json,sys
d=json.load(open(sys.argv[1]))
assert d['n']==4 and len(d['terms'])==1 and len(d['terms'][0]['sides'])==2, d
" "$T/out" || fail "eval --json: $(cat "$T/out")"
run 0 "eval --suite" -- eval --suite --out "$T/suite.md" -n 2 --batch 2 --steps 1 --models "$T/models" --judge "$T/models/judge.safetensors" --quiet
grep -q "^| # | kind | expression | strict .* faithful" "$T/suite.md" || fail "suite table: $(cat "$T/suite.md")"
grep -q "^| colour, every value | \`color=white\`" "$T/suite.md" || fail "suite lacks the per-value rows: $(cat "$T/suite.md")"
grep -q "color=red OR color=blue" "$T/suite.md" || fail "suite lacks the disjunction row"
grep -q "skipped .* no \`shape\` model" "$T/suite.md" || fail "missing concepts not marked skipped: $(cat "$T/suite.md")"
run 1 "eval with no models" -- eval --expr color=red --models "$T/nothing" --judge "$T/models/judge.safetensors" --quiet
one_line "eval with no models"
run 0 "eval --analytic" -- eval --expr color=red --analytic -n 2 --batch 2 --steps 1 --judge "$T/models/judge.safetensors" --quiet

# malformed inputs
echo "not a png" >"$T/bad.png"
run 1 "not a PNG" -- judge --model "$T/models/judge.safetensors" --quiet "$T/bad.png"
one_line "not a PNG"
run 1 "wrong size" -- judge --model "$T/models/judge.safetensors" --quiet "$T/big/000000.png"
one_line "wrong size"
grep -q "8x8" "$T/err" || fail "wrong size message: $(cat "$T/err")"
run 1 "concept model as judge" -- judge --model "$T/models/color.safetensors" --quiet "$T/data/000000.png"
grep -q "not a judge file" "$T/err" || fail "concept model as judge: $(cat "$T/err")"
head -c 300 "$T/models/judge.safetensors" >"$T/trunc.safetensors"
run 1 "truncated judge" -- judge --model "$T/trunc.safetensors" --quiet "$T/data/000000.png"
one_line "truncated judge"
echo "judge.sh: ok"
