#!/usr/bin/env bash
# train.sh: `vkebm train` on the cpu backend with the tiny network at 8x8:
# --help 0; bad flags exit 2 with one line; a short run writes a loadable model (concept
# metadata), metrics.csv and a checkpoint; SIGINT exits 130 after writing a checkpoint, and
# --resume continues from it (metrics appended); a truncated checkpoint is refused (exit 1) and
# left alone; on a terminal the progress line is redrawn in place; a runaway energy stops
# training with a clear message, keeping the last good checkpoint; --data-dir from `vkebm data`;
# --frozen (continual mode); the model records its training sampler and, with --chain-init
# data, the chains' start; the joint concept's label space; --init starts from a model's weights.
set -u
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
CLI_COMMAND=train
export VKEBM_THREADS=1
TINY=(--recipe paper --config tiny --size 8 --batch 4 --langevin-steps 3 --buffer 16 --backend cpu)

expect 0 "--help" -- --help
grep -q "usage: vkebm train" "$T/out" || fail "--help text not on stdout"
expect 2 "unknown concept" -- --concept smell -o "$T/m.safetensors" "${TINY[@]}"
[ "$(wc -l <"$T/err")" -eq 1 ] || fail "unknown concept: not one line: $(cat "$T/err")"
expect 2 "no output" -- --concept color "${TINY[@]}"
expect 2 "no concept" -- -o "$T/m.safetensors" "${TINY[@]}"
expect 2 "bad steps" -- --concept color --steps 0 -o "$T/m.safetensors" "${TINY[@]}"
expect 2 "bad lr" -- --concept color --lr fast -o "$T/m.safetensors" "${TINY[@]}"
expect 2 "bad replay" -- --concept color --replay 1.5 -o "$T/m.safetensors" "${TINY[@]}"
expect 2 "bad spec" -- --concept color --data cubes -o "$T/m.safetensors" "${TINY[@]}"
expect 2 "bad preset" -- --concept color --config huge -o "$T/m.safetensors"
expect 2 "unknown flag" -- --concept color --frobnicate -o "$T/m.safetensors" "${TINY[@]}"
expect 2 "bad frozen" -- --concept color --frozen nothing -o "$T/m.safetensors" "${TINY[@]}"
expect 2 "missing frozen model" -- --concept color --frozen "$T/none.safetensors=red" -o "$T/m.safetensors" "${TINY[@]}"
expect 2 "bad chain init" -- --concept color --chain-init zeros -o "$T/m.safetensors" "${TINY[@]}"
expect 1 "missing resume file" -- --resume "$T/none.safetensors" -o "$T/m.safetensors"

# a short run
expect 0 "short run" -- --concept color --steps 6 --checkpoint-every 4 --preview "$T/neg.png" -o "$T/models/color.safetensors" "${TINY[@]}"
[ -s "$T/neg.png" ] || fail "no preview grid written"
[ -s "$T/models/color.safetensors" ] || fail "no model written"
[ -s "$T/models/color.ckpt.safetensors" ] || fail "no checkpoint written"
"$VKEBM" inspect "$T/models/color.safetensors" >"$T/inspect" 2>&1 || fail "inspect: $(cat "$T/inspect")"
grep -q "concept = color" "$T/inspect" || fail "model lacks concept metadata"
grep -q "label_kind = onehot" "$T/inspect" || fail "model lacks the label kind"
grep -q "step = 6" "$T/inspect" || fail "model step"
grep -q "langevin_step_lr = " "$T/inspect" || fail "model lacks its training sampler"
grep -q "sample_steps = " "$T/inspect" || fail "model lacks its sample_steps"
grep -q "chain_init_mean" "$T/inspect" && fail "uniform chain start recorded as a Gaussian"
M="$T/models/color.metrics.csv"
head -2 "$M" | tail -1 | grep -q "^step,time_s,loss,e_pos,e_neg,grad_norm,steps_per_s,label_ce,label_acc$" || fail "metrics header: $(head -2 "$M")"
[ "$(grep -c '^[0-9]' "$M")" -eq 6 ] || fail "metrics rows: $(cat "$M")"
grep -q "step 6/6" "$T/err" || fail "no progress line: $(cat "$T/err")"
# --chain-init data: the fitted start is recorded in the model
expect 0 "chain-init data" -- --concept color --steps 2 --chain-init data -o "$T/ci/color.safetensors" "${TINY[@]}" -q
"$VKEBM" inspect "$T/ci/color.safetensors" >"$T/inspect" 2>&1 || fail "inspect: $(cat "$T/inspect")"
grep -q "chain_init_mean = 0\.[2-5]" "$T/inspect" && grep -q "chain_init_std = 0\.0" "$T/inspect" ||
  fail "chain start not recorded: $(grep chain_init "$T/inspect")"

# on a terminal: one progress line redrawn in place (carriage returns, no newline per step)
if command -v script >/dev/null 2>&1; then
  script -qec "$VKEBM train --concept color --steps 5 -o $T/tty.safetensors ${TINY[*]}" /dev/null >"$T/tty" 2>&1 ||
    fail "run under a terminal: $(cat "$T/tty")"
  grep -q $'\r' "$T/tty" || fail "no in-place redraw on a terminal"
  grep -q "step 5/5 .*it/s  ETA" "$T/tty" || fail "terminal progress line: $(cat -v "$T/tty")"
  [ "$(grep -c 'vkebm train: step' "$T/tty")" -eq 0 ] || fail "log lines instead of a redraw on a terminal"
fi

# SIGINT: exit 130 after writing a checkpoint, then resume
"$VKEBM" train --concept shape --steps 1000000 -o "$T/int/shape.safetensors" "${TINY[@]}" >"$T/out" 2>"$T/err" &
PID=$!
for _ in $(seq 1 200); do
  [ -f "$T/int/shape.metrics.csv" ] && [ "$(grep -c '^[0-9]' "$T/int/shape.metrics.csv")" -ge 3 ] && break
  sleep 0.05
done
kill -INT "$PID"
wait "$PID"
rc=$?
[ "$rc" -eq 130 ] || fail "SIGINT: exit $rc, want 130 ($(cat "$T/err"))"
[ -s "$T/int/shape.ckpt.safetensors" ] || fail "SIGINT: no checkpoint"
grep -q "interrupted at step" "$T/err" || fail "SIGINT: no message: $(cat "$T/err")"
DONE=$(grep -c '^[0-9]' "$T/int/shape.metrics.csv")
expect 0 "resume" -- --resume "$T/int/shape.ckpt.safetensors" --steps $((DONE + 3)) -o "$T/int/shape.safetensors" --backend cpu
[ "$(grep -c '^[0-9]' "$T/int/shape.metrics.csv")" -eq $((DONE + 3)) ] || fail "resume: metrics not continued"
tail -1 "$T/int/shape.metrics.csv" | grep -q "^$((DONE + 3))," || fail "resume: last step $(tail -1 "$T/int/shape.metrics.csv")"

# a truncated checkpoint is refused and left as it is
CK="$T/int/shape.ckpt.safetensors"
head -c $(($(stat -c %s "$CK") / 2)) "$CK" >"$T/trunc.safetensors"
cp "$T/trunc.safetensors" "$T/trunc.orig"
expect 1 "truncated checkpoint" -- --resume "$T/trunc.safetensors" -o "$T/t.safetensors" --backend cpu
grep -q "trunc.safetensors" "$T/err" || fail "truncated: reason does not name the file: $(cat "$T/err")"
cmp -s "$T/trunc.safetensors" "$T/trunc.orig" || fail "truncated checkpoint was modified"

# divergence guard: exit 1, clear message, the last good checkpoint kept
expect 1 "divergence" -- --concept color --steps 5 --max-energy 1e-9 -o "$T/div/color.safetensors" "${TINY[@]}"
grep -q "diverged" "$T/err" || fail "divergence message: $(cat "$T/err")"
[ ! -e "$T/div/color.safetensors" ] || fail "a diverged run wrote a model"

# positives from a `vkebm data` folder
"$VKEBM" data --spec general -n 6 --size 8 -o "$T/ds" >/dev/null 2>&1 || fail "vkebm data"
expect 0 "--data-dir" -- --concept size --data-dir "$T/ds" --steps 2 -o "$T/ds_size.safetensors" "${TINY[@]}"
grep -q "data_spec = dir:" <("$VKEBM" inspect "$T/ds_size.safetensors" 2>&1) || fail "data-dir not recorded"
expect 1 "--data-dir of another size" -- --concept size --data-dir "$T/ds" --size 16 --steps 2 -o "$T/x.safetensors" --config tiny --backend cpu

# continual mode: a frozen model in the sampler
expect 0 "--frozen" -- --concept shape --frozen "$T/models/color.safetensors=data" --frozen "$T/models/color.safetensors=red" --steps 2 -o "$T/cont.safetensors" "${TINY[@]}"
# the flatten head and the coordinate planes: recorded in the model, and the model samples
expect 0 "--head flatten --coords" -- --concept position --head flatten --coords --steps 2 -o "$T/flat.safetensors" "${TINY[@]}"
"$VKEBM" inspect "$T/flat.safetensors" >"$T/flat.inspect" 2>&1
grep -q "head = flatten" "$T/flat.inspect" && grep -q "coord_channels = 1" "$T/flat.inspect" &&
  grep -q "stem.weight .*\[4, 5, 3, 3\]" "$T/flat.inspect" || fail "--head flatten --coords not recorded: $(cat "$T/flat.inspect")"
mkdir -p "$T/flatm" && cp "$T/flat.safetensors" "$T/flatm/"
"$VKEBM" sample --expr "pos=(0.5,0)" -n 2 --steps 2 --models "$T/flatm" -o "$T/flat.png" --quiet ||
  fail "sampling a flatten-head model"
expect 2 "--head bad" -- --concept position --head conv --steps 2 -o "$T/x.safetensors" "${TINY[@]}"
# the default recipe is the practical one (docs/training.md): coordinate planes, flatten head,
# flat chain starts, 20 Langevin steps of 10 with noise 0.005, the trained weights sample
expect 0 "the practical recipe" -- --concept shape --config tiny --size 8 --batch 4 --buffer 16 --steps 2 --backend cpu -o "$T/practical.safetensors"
"$VKEBM" inspect "$T/practical.safetensors" >"$T/pr.inspect" 2>&1
grep -q "coord_channels = 1" "$T/pr.inspect" && grep -q "head = flatten" "$T/pr.inspect" &&
  grep -q "chain_init = flat" "$T/pr.inspect" && grep -q "langevin_step_lr = 10$" "$T/pr.inspect" &&
  grep -q "sample_steps = 100" "$T/pr.inspect" && grep -q "input_scale = " "$T/pr.inspect" &&
  grep -q "input_shift = " "$T/pr.inspect" || fail "practical recipe: $(cat "$T/pr.inspect")"
# standardised pixels off, and the label gain on the head: recorded, and the model samples
expect 0 "--no-input-norm --label-head" -- --concept shape --config tiny --size 8 --batch 4 --buffer 16 --steps 2 --backend cpu --no-input-norm --label-head --label-weight 1 -o "$T/lh.safetensors"
"$VKEBM" inspect "$T/lh.safetensors" >"$T/lh.inspect" 2>&1
grep -q "head_label = 1" "$T/lh.inspect" && ! grep -q "input_scale" "$T/lh.inspect" &&
  grep -q "head.label_gain .*\[4, " "$T/lh.inspect" || fail "--label-head / --no-input-norm: $(cat "$T/lh.inspect")"
mkdir -p "$T/lhm" && cp "$T/lh.safetensors" "$T/lhm/"
"$VKEBM" sample --expr "shape=cube" -n 2 --steps 2 --models "$T/lhm" -o "$T/lh.png" --quiet ||
  fail "sampling a label-head model"
expect 2 "--recipe bad" -- --concept shape --recipe fast --steps 1 -o "$T/x.safetensors" --backend cpu
# the joint concept (one model of x, y, size, shape and colour: the experiments' baseline) and
# --init (fine-tuning: the weights of a model, fresh optimiser and buffer, this run's data)
expect 0 "joint" -- --concept joint --data continual-color --steps 2 -o "$T/joint.safetensors" "${TINY[@]}"
"$VKEBM" inspect "$T/joint.safetensors" >"$T/joint.inspect" 2>&1
grep -q "label_names = x,y,size,cube,sphere,cylinder,cone,red,green" "$T/joint.inspect" &&
  grep -q "label_kind = vector" "$T/joint.inspect" && grep -q "label_min = -1,-1,0.3" "$T/joint.inspect" ||
  fail "joint label space: $(cat "$T/joint.inspect")"
expect 2 "joint with the label term" -- --concept joint --label-weight 1 --steps 1 -o "$T/x.safetensors" "${TINY[@]}"
INIT=(--recipe paper --batch 4 --langevin-steps 3 --buffer 16 --backend cpu)
weights() { "$VKEBM" inspect "$1" 2>&1 | sed -n '/^tensors/,$p' | grep -v "^  sn_u\."; }
expect 0 "--init" -- --concept joint --data continual-shape --init "$T/joint.safetensors" --lr 1e-12 --steps 1 -o "$T/tuned.safetensors" "${INIT[@]}"
[ "$(weights "$T/tuned.safetensors")" = "$(weights "$T/joint.safetensors")" ] ||
  fail "--init with lr 1e-12 did not start from the model's weights"
grep -q "data_spec = continual-shape" <("$VKEBM" inspect "$T/tuned.safetensors" 2>&1) || fail "--init: not this run's data"
expect 0 "fresh, same flags" -- --concept joint --data continual-shape --lr 1e-12 --steps 1 --seed 9 -o "$T/fresh.safetensors" "${TINY[@]}"
[ "$(weights "$T/fresh.safetensors")" != "$(weights "$T/joint.safetensors")" ] || fail "weights() cannot tell models apart"
expect 2 "--init with --config" -- --concept joint --init "$T/joint.safetensors" --steps 1 -o "$T/x.safetensors" --config tiny
grep -q "network comes from" "$T/err" || fail "--init --config message: $(cat "$T/err")"
expect 2 "--init of another concept" -- --concept color --init "$T/joint.safetensors" --steps 1 -o "$T/x.safetensors" "${INIT[@]}"
expect 2 "--init of a missing file" -- --concept joint --init "$T/none.safetensors" --steps 1 -o "$T/x.safetensors" "${INIT[@]}"
expect 2 "--init with --resume" -- --resume "$T/models/color.ckpt.safetensors" --init "$T/joint.safetensors" -o "$T/x.safetensors"
# a new run does not replace an existing model unless asked
expect 2 "-o exists" -- --concept color --steps 1 -o "$T/flat.safetensors" "${TINY[@]}"
grep -q "exists.*--force" "$T/err" || fail "-o exists: $(cat "$T/err")"
cmp -s "$T/flat.safetensors" "$T/flatm/flat.safetensors" || fail "-o exists: the model was touched"
expect 0 "-o exists --force" -- --concept color --steps 1 --force -o "$T/flat.safetensors" "${TINY[@]}"
echo "train.sh: ok"
