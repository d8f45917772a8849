#!/usr/bin/env bash
# celeba.sh: faces with the data a user brings (docs/experiments.md): `vkebm train --data
# celeba:DIR --concept ATTRIBUTE` on a fixture in CelebA's exact formats (written by
# test_celeba --write-fixture: list_attr_celeba.txt with the 40 attributes, 178x218 JPEGs and
# PNGs in img_align_celeba/): a few steps of two attributes write one-hot no/yes models that
# `vkebm sample` composes (AND, AND NOT, OR), a checkpoint resumes, a model of one attribute
# fine-tunes on another's data only when the concept matches; an unknown attribute lists the
# valid ones, a malformed attribute file names its line, a missing image names its row, an
# attribute name that cannot be one is a usage error.
set -u
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
CLI_COMMAND=train
export VKEBM_THREADS=1
[ -x "$BUILD/test_celeba" ] || fail "no $BUILD/test_celeba to write the fixture"
"$BUILD/test_celeba" --write-fixture "$T/celeba" || fail "writing the fixture"
[ "$(head -1 "$T/celeba/list_attr_celeba.txt")" = 6 ] && [ "$(ls "$T/celeba/img_align_celeba" | wc -l)" -eq 6 ] ||
  fail "fixture: $(ls -l "$T/celeba" "$T/celeba/img_align_celeba")"
TINY=(--config tiny --size 16 --batch 4 --langevin-steps 3 --buffer 16 --backend cpu --log-every 1)

expect 0 "Smiling" -- --data "celeba:$T/celeba" --concept Smiling --steps 3 -o "$T/m/smiling.safetensors" "${TINY[@]}"
grep -q "step 3/3" "$T/err" || fail "no progress: $(cat "$T/err")"
"$VKEBM" inspect "$T/m/smiling.safetensors" >"$T/inspect" 2>&1
grep -q "concept = Smiling" "$T/inspect" && grep -q "label_kind = onehot" "$T/inspect" &&
  grep -q "label_names = no,yes" "$T/inspect" && grep -q "data_spec = celeba:$T/celeba" "$T/inspect" &&
  grep -q "resolution = 16" "$T/inspect" || fail "Smiling model: $(cat "$T/inspect")"
expect 0 "Male" -- --data "celeba:$T/celeba" --concept Male --steps 2 -o "$T/m/male.safetensors" "${TINY[@]}"

# composition of attributes in sample
for e in "Smiling=yes AND Male=no" "Smiling=yes AND NOT Male=yes" "(Smiling=yes AND Male=yes) OR (Smiling=no AND Male=no)"; do
  "$VKEBM" sample --models "$T/m" --expr "$e" -n 2 --steps 3 --backend cpu --quiet -o "$T/s.png" 2>"$T/serr" ||
    fail "sample '$e': $(cat "$T/serr")"
  [ -s "$T/s.png" ] || fail "sample '$e' wrote nothing"
  rm -f "$T/s.png"
done
"$VKEBM" sample --models "$T/m" --expr "Smiling=maybe" -n 2 --steps 1 --backend cpu --quiet -o "$T/s.png" 2>"$T/serr"
[ $? -ne 0 ] && grep -q "no, yes" "$T/serr" || fail "Smiling=maybe: $(cat "$T/serr")"

# resume, and fine-tuning needs the same concept
expect 0 "resume" -- --resume "$T/m/smiling.ckpt.safetensors" --steps 4 -o "$T/smiling4.safetensors" --backend cpu
grep -q "step = 4" <("$VKEBM" inspect "$T/smiling4.safetensors" 2>&1) || fail "resumed model is not at step 4"
expect 0 "--init" -- --data "celeba:$T/celeba" --concept Smiling --init "$T/m/smiling.safetensors" --steps 1 -o "$T/tuned.safetensors" --batch 4 --buffer 16 --backend cpu
expect 2 "--init of another attribute" -- --data "celeba:$T/celeba" --concept Male --init "$T/m/smiling.safetensors" --steps 1 -o "$T/x.safetensors" --backend cpu

# errors
expect 1 "unknown attribute" -- --data "celeba:$T/celeba" --concept Smilling --steps 1 -o "$T/x.safetensors" "${TINY[@]}" -q
[ "$(wc -l <"$T/err")" -eq 1 ] && grep -q "no attribute 'Smilling' (it has 5_o_Clock_Shadow, .*Smiling" "$T/err" ||
  fail "unknown attribute message: $(cat "$T/err")"
expect 2 "not an attribute name" -- --data "celeba:$T/celeba" --concept "Smi ling" --steps 1 -o "$T/x.safetensors" "${TINY[@]}"
expect 2 "an attribute without celeba data" -- --concept Smiling --steps 1 -o "$T/x.safetensors" "${TINY[@]}"
expect 1 "missing folder" -- --data "celeba:$T/nothing" --concept Smiling --steps 1 -o "$T/x.safetensors" "${TINY[@]}"
grep -q "list_attr_celeba.txt" "$T/err" || fail "missing folder message: $(cat "$T/err")"
cp -r "$T/celeba" "$T/bad"
sed -i '5s/ 1/ 2/' "$T/bad/list_attr_celeba.txt"
expect 1 "malformed attribute file" -- --data "celeba:$T/bad" --concept Smiling --steps 1 -o "$T/x.safetensors" "${TINY[@]}" -q
[ "$(wc -l <"$T/err")" -eq 1 ] && grep -q "list_attr_celeba.txt line 5: value .* is '2', expected 1 or -1" "$T/err" ||
  fail "malformed attribute file message: $(cat "$T/err")"
cp "$T/celeba/list_attr_celeba.txt" "$T/bad/"
rm "$T/bad/img_align_celeba/000004.jpg"
expect 1 "missing image" -- --data "celeba:$T/bad" --concept Smiling --steps 1 -o "$T/x.safetensors" "${TINY[@]}"
grep -q "000004.jpg.*line 6 of" "$T/err" || fail "missing image message: $(cat "$T/err")"
echo "celeba.sh: ok"
