#!/usr/bin/env bash
# runs.sh: datasets and training runs that must not lie (issue 11, items 2, 5 and 7).
# `vkebm data -o DIR` refuses a non-empty folder without --force, and with --force removes the
# old labels.csv before the first image, so an interrupted run cannot leave old labels beside
# new images; train --data-dir refuses a folder whose images disagree with labels.csv. train
# refuses flags that name the same file, and --steps below a checkpoint's step; after a resume
# metrics.csv holds each step once with a cumulative time_s; a run that diverges before its
# first checkpoint does not name one that does not exist.
# usage: bash runs.sh VKEBM_BINARY SOURCE_DIR
set -u
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
export VKEBM_THREADS=1
cd "$T"
TINY=(--config tiny --size 8 --batch 2 --langevin-steps 2 --buffer 8 --backend cpu -q)

# ---- data
CLI_COMMAND=data
expect 0 "a dataset" -- --spec general -n 6 --size 8 --seed 1 -o ds -q
# a killed writer's temporary files do not make a folder non-empty (they are removed)
mkdir fresh
sh -c 'exit 0' & dead=$!; wait $dead
touch "fresh/000001.png.tmp.$dead.AbCdEf"
expect 0 "a folder holding only a dead writer's temporary file" -- --spec general -n 2 --size 8 --seed 1 -o fresh -q
[ ! -e "fresh/000001.png.tmp.$dead.AbCdEf" ] || fail "the stale temporary file was left"
expect 2 "over a non-empty folder" -- --spec general -n 6 --size 8 --seed 2 -o ds -q
grep -q "not empty.*--force" "$T/err" || fail "non-empty: $(cat "$T/err")"
# --force over it, interrupted by a failing write at image 3: the old labels.csv must be gone
cp -r ds ds_old
rm ds/000003.png && mkdir ds/000003.png
expect 1 "--force, failing at image 3" -- --spec general -n 6 --size 8 --seed 2 -o ds -q --force
[ ! -e ds/labels.csv ] || fail "an interrupted --force run left the old labels.csv beside new images"
rmdir ds/000003.png
expect 0 "--force over a dataset" -- --spec general -n 6 --size 8 --seed 2 -o ds -q --force
grep -q "seed=2" ds/labels.csv || fail "--force: labels.csv not rewritten"
# without -o, only the contact sheet's images are rendered (all 10^7 would take minutes)
timeout 20 "$VKEBM" data --spec general -n 10000000 --grid-n 4 --size 8 --seed 1 --grid sheet.png -q ||
  fail "--grid alone: exit $? (rendering every image?)"
[ -s sheet.png ] || fail "no contact sheet"

# ---- train --data-dir: images from another run than labels.csv are refused
CLI_COMMAND=train
cp ds/000002.png ds_old/000002.png   # seed 2's image in seed 1's folder
expect 1 "--data-dir mixing two runs" -- --concept size --data-dir ds_old --steps 1 -o m.safetensors "${TINY[@]}"
grep -q "000002.png: its .* differs from labels.csv" "$T/err" || fail "mixed dataset: $(cat "$T/err")"
expect 0 "--data-dir" -- --concept size --data-dir ds --steps 1 -o m.safetensors "${TINY[@]}"

# ---- one file, one role
expect 2 "-o = --metrics" -- --concept color --steps 1 -o a.safetensors --metrics ./a.safetensors "${TINY[@]}"
grep -q "name the same file" "$T/err" || fail "collision: $(cat "$T/err")"
expect 2 "-o = --checkpoint" -- --concept color --steps 1 -o a.safetensors --checkpoint a.safetensors "${TINY[@]}"
expect 2 "--checkpoint = --metrics" -- --concept color --steps 1 -o a.safetensors --checkpoint c --metrics "$T/c" "${TINY[@]}"
expect 0 "a checkpoint" -- --concept color --steps 4 -o r/m.safetensors "${TINY[@]}"
expect 2 "--resume = -o" -- --resume r/m.ckpt.safetensors -o r/m.ckpt.safetensors --steps 5 --backend cpu -q
expect 2 "--resume = --metrics" -- --resume r/m.ckpt.safetensors --metrics r/m.ckpt.safetensors -o r/x.safetensors --steps 5 --backend cpu -q
[ -s r/m.ckpt.safetensors ] && "$VKEBM" inspect r/m.ckpt.safetensors >/dev/null 2>&1 || fail "a refused run touched the checkpoint"
expect 2 "--steps below the checkpoint's" -- --resume r/m.ckpt.safetensors -o r/m.safetensors --steps 3 --backend cpu -q
grep -q "below the checkpoint's step 4" "$T/err" || fail "--steps below: $(cat "$T/err")"

# ---- metrics after a resume: each step once, time cumulative
cp r/m.ckpt.safetensors r/at4.ckpt.safetensors
expect 0 "resume to 6" -- --resume r/m.ckpt.safetensors -o r/m.safetensors --steps 6 --backend cpu -q
# resume again from step 4 (as after a crash past the step-4 checkpoint): rows 5, 6 are redone
expect 0 "resume from 4 again" -- --resume r/at4.ckpt.safetensors -o r/m.safetensors --steps 6 --backend cpu -q
steps=$(grep '^[0-9]' r/m.metrics.csv | cut -d, -f1 | tr '\n' ' ')
[ "$steps" = "1 2 3 4 5 6 " ] || fail "metrics after resume: steps '$steps'"
awk -F, '/^[0-9]/ { if ($2 + 0 < prev) exit 1; prev = $2 + 0 }' r/m.metrics.csv ||
  fail "time_s restarts after a resume: $(cut -d, -f1,2 r/m.metrics.csv | tr '\n' ' ')"

# ---- divergence before the first checkpoint names none
expect 1 "divergence at step 1" -- --concept color --steps 5 --max-energy 1e-12 -o div/m.safetensors "${TINY[@]}"
grep -q "diverged" "$T/err" || fail "divergence: $(cat "$T/err")"
grep -q "no checkpoint was written" "$T/err" || fail "divergence names a checkpoint: $(cat "$T/err")"
echo "runs: ok"
