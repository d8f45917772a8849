#!/usr/bin/env bash
# experiments.sh: the paper's experiments as commands (tools/experiments/, docs/experiments.md),
# end to end at the CI size (--tiny: a few iterations of a tiny network at 32x32, scored by the
# shipped judge): continual.sh writes every stage's models (composed and joint) and its two table
# rows, and the rows are the means of the evaluations they name; the evaluated expressions are
# the compositions learned so far (stage 3: a shape other than cube, a colour other than purple),
# the joint model sampled as joint=(...) and scored as the same composition; --continue reuses
# every finished step (no model is retrained), a non-empty --out is refused without it, bad
# flags exit 2 with one line; cross_product.sh writes, per ratio, the three models, rows scored on
# pairs that cross-product R never shows, and the accuracy plot as a PNG.
set -u
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
export VKEBM_THREADS=1
need_python "the standard library" "import json, csv, zlib"
EXP="$SRC/tools/experiments"
[ -s "$SRC/models/judge.safetensors" ] || fail "no shipped judge at $SRC/models/judge.safetensors"
COMMON=(--tiny --vkebm "$VKEBM" -q)

# flags
bash "$EXP/continual.sh" --help >"$T/out" 2>&1 || fail "continual.sh --help"
grep -q "^usage: tools/experiments/continual.sh" "$T/out" && grep -q -- "--iters N" "$T/out" || fail "continual.sh --help: $(cat "$T/out")"
bash "$EXP/continual.sh" --out "$T/x" --iters zero "${COMMON[@]}" >"$T/out" 2>"$T/err"
[ $? -eq 2 ] && [ "$(wc -l <"$T/err")" -eq 1 ] || fail "--iters zero: not exit 2 with one line: $(cat "$T/err")"
bash "$EXP/cross_product.sh" --out "$T/x" --ratios 1.5 "${COMMON[@]}" >"$T/out" 2>"$T/err"
[ $? -eq 2 ] && [ "$(wc -l <"$T/err")" -eq 1 ] || fail "--ratios 1.5: not exit 2 with one line: $(cat "$T/err")"
bash "$EXP/continual.sh" "${COMMON[@]}" >"$T/out" 2>"$T/err"
[ $? -eq 2 ] || fail "no --out: not exit 2: $(cat "$T/err")"

# continual learning
t0=$SECONDS
bash "$EXP/continual.sh" --out "$T/cont" "${COMMON[@]}" >"$T/out" 2>"$T/err" || fail "continual.sh: $(cat "$T/err")"
echo "continual.sh --tiny: $((SECONDS - t0)) s"
for m in position shape color joint-1 joint-2 joint-3; do
  [ -s "$T/cont/models/$m.safetensors" ] || fail "continual: no model $m"
done
"$VKEBM" inspect "$T/cont/models/color.safetensors" 2>&1 | grep -q "data_spec = continual-color" || fail "color model: not continual-color"
"$VKEBM" inspect "$T/cont/models/joint-3.safetensors" 2>&1 | grep -q "concept = joint" || fail "joint-3 is not a joint model"
[ "$(grep -c '^| [123] | continual-' "$T/cont/table.md")" -eq 6 ] || fail "continual table.md: $(cat "$T/cont/table.md")"
"$PY" - "$T/cont" <<'PY' || fail "continual: the table does not match its evaluations"
import csv, json, sys, glob, os
d = sys.argv[1]
rows = list(csv.DictReader(open(d + "/table.csv")))
assert [(r["stage"], r["model"]) for r in rows] == [(s, m) for s in "123" for m in ("composed", "joint")], rows
data = {"1": "continual-position", "2": "continual-shape", "3": "continual-color"}
for r in rows:
    assert r["data"] == data[r["stage"]] and r["iterations"] == "3", r
    evs = [json.load(open(f)) for f in sorted(glob.glob("%s/eval/stage%s-*-%s.json" % (d, r["stage"], r["model"])))]
    assert len(evs) == int(r["expressions"]) == 2, (r, len(evs))
    assert abs(sum(e["strict"] for e in evs) / 2 - float(r["strict"])) < 1e-5, r
    assert abs(sum(e["read_strict"] for e in evs) / 2 - float(r["unverified"])) < 1e-5, r
    for e in evs:
        terms = [t["term"] for t in e["terms"]]
        assert len(terms) == int(r["stage"]) and terms[0].startswith("pos=("), terms
        if r["stage"] >= "2": assert terms[1].startswith("shape=") and terms[1] != "shape=cube", terms
        if r["stage"] == "3": assert terms[2].startswith("color=") and terms[2] != "color=purple", terms
        if r["model"] == "joint":
            assert e["sampled"].startswith("joint=(") and e["sampled"].count(",") == 14, e["sampled"]
        else:
            assert "sampled" not in e, e
        assert e["n"] == 4, e
PY
cp "$T/cont/table.csv" "$T/cont.csv"
for m in "$T"/cont/models/*.safetensors; do cp "$m" "$T/$(basename "$m").before"; done
bash "$EXP/continual.sh" --out "$T/cont" "${COMMON[@]}" >"$T/out" 2>"$T/err"
[ $? -eq 2 ] && grep -q -- "--continue" "$T/err" || fail "a non-empty --out was not refused: $(cat "$T/err")"
bash "$EXP/continual.sh" --out "$T/cont" --continue "${COMMON[@]}" >"$T/out" 2>"$T/err" || fail "continual --continue: $(cat "$T/err")"
for m in "$T"/cont/models/*.safetensors; do
  cmp -s "$m" "$T/$(basename "$m").before" || fail "--continue retrained $(basename "$m")"
done
cmp -s "$T/cont/table.csv" "$T/cont.csv" || fail "--continue changed the table"

# cross-product generalisation
t0=$SECONDS
bash "$EXP/cross_product.sh" --out "$T/cp" "${COMMON[@]}" >"$T/out" 2>"$T/err" || fail "cross_product.sh: $(cat "$T/err")"
echo "cross_product.sh --tiny: $((SECONDS - t0)) s"
for r in 0.25 0.5; do
  for m in position size joint; do [ -s "$T/cp/models/$m-$r.safetensors" ] || fail "cross-product: no model $m-$r"; done
  "$VKEBM" inspect "$T/cp/models/joint-$r.safetensors" 2>&1 | grep -q "data_spec = cross-product:$r" || fail "joint-$r: wrong data"
done
"$PY" - "$T/cp" "$VKEBM" <<'PY' || fail "cross-product: the table, its pairs or the plot"
import csv, json, glob, struct, subprocess, sys, os, tempfile
d, vkebm = sys.argv[1], sys.argv[2]
rows = list(csv.DictReader(open(d + "/table.csv")))
assert [(r["ratio"], r["model"]) for r in rows] == [("0.25", "composed"), ("0.25", "joint"), ("0.5", "composed"), ("0.5", "joint")], rows
seen_of = {}
for r in rows:
    # the pairs scored are ones cross-product R never shows: none of them in 600 of its scenes
    # (R = 0.5 has 18 x 5 + 18 = 108 pairs: each is drawn with probability 1 - 4e-3)
    if r["ratio"] not in seen_of:
        out = tempfile.mkdtemp(dir=d)
        subprocess.run([vkebm, "data", "--spec", "cross-product:" + r["ratio"], "-n", "600", "--seed", "3",
                        "--size", "8", "-q", "-o", out], check=True)
        seen_of[r["ratio"]] = {(round(float(a["x0"]), 2), round(float(a["y0"]), 2), round(float(a["size0"]), 2))
                for a in csv.DictReader(l for l in open(out + "/labels.csv") if not l.startswith("#"))}
    seen = seen_of[r["ratio"]]
    evs = [json.load(open(f)) for f in sorted(glob.glob("%s/eval/r%s-*-%s.json" % (d, r["ratio"], r["model"])))]
    assert len(evs) == int(r["expressions"]) == 2, r
    for e in evs:
        pos, size = [t["term"] for t in e["terms"]]
        x, y = map(float, pos[len("pos=("):-1].split(","))
        s = float(size[len("size="):])
        assert (round(x, 2), round(y, 2), round(s, 2)) not in seen, (r["ratio"], pos, size)
        assert len(seen) > 10, len(seen)
png = open(d + "/accuracy.png", "rb").read()
assert png[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", png[16:24]) == (560, 380), png[:24]
PY
echo "experiments.sh: ok"
