#!/usr/bin/env bash
# shipped_models.sh: the concept models shipped in models/ (position, size, shape, color) load
# (`vkebm inspect`, metadata of a trained model: concept, step, the training sampler and chain
# start), and what they learned is still there: `vkebm eval` (CI-sized: 16 samples of 100 steps
# with the models' own step and noise) finds their samples' blobs at the asked place far above
# the chance of a position within 0.25 of a point (~1/16), by the judge's unverified reading.
set -u
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
CLI_COMMAND=eval
export VKEBM_THREADS=${VKEBM_THREADS:-2}
M="$SRC/models"
for c in color shape position size; do
  [ -f "$M/$c.safetensors" ] || fail "models/$c.safetensors is not shipped"
  "$VKEBM" inspect "$M/$c.safetensors" >"$T/inspect" 2>&1 || fail "inspect $c: $(cat "$T/inspect")"
  grep -q "concept = $c" "$T/inspect" && grep -q "data_spec = general" "$T/inspect" &&
    grep -q "langevin_step_lr = " "$T/inspect" && grep -q "chain_init_mean = " "$T/inspect" &&
    grep -q "sample_steps = 100" "$T/inspect" ||
    fail "models/$c.safetensors metadata: $(cat "$T/inspect")"
  step=$(awk '/^  step = /{print $3}' "$T/inspect")
  [ "${step:-0}" -ge 1000 ] || fail "models/$c.safetensors: only $step training steps"
done

# --models takes files too, and two models of one concept are an error naming both
CLI_COMMAND=sample
expect 0 "--models FILE,FILE" -- --expr "color=red AND pos=(0,0)" -n 2 --steps 2 --quiet \
  --models "$M/color.safetensors,$M/position.safetensors" -o "$T/two.png"
mkdir -p "$T/dup" && cp "$M/color.safetensors" "$T/dup/a.safetensors" && cp "$M/color.safetensors" "$T/dup/b.safetensors"
expect 1 "two colour models" -- --expr "color=red" -n 2 --steps 2 --quiet --models "$T/dup" -o "$T/x.png"
grep -q "two models of concept 'color': .*a.safetensors and .*b.safetensors" "$T/err" || fail "duplicate models: $(cat "$T/err")"
expect 1 "a missing --models" -- --expr "color=red" -n 2 --quiet --models "$T/nothing" -o "$T/x.png"
[ "$(wc -l <"$T/err")" -eq 1 ] && grep -q "nothing" "$T/err" || fail "missing --models: $(cat "$T/err")"
CLI_COMMAND=eval

# EXPR over 16 samples: FIELD (strict, faithful or read_strict, the judge's unverified reading)
# in percent must reach MIN
check() { # check EXPR FIELD MIN
  expect 0 "eval $1" -- --expr "$1" -n 16 --batch 16 --steps 100 --seed 11 --models "$M" \
    --judge "$M/judge.safetensors" --json --quiet --no-frechet
  local got
  got=$("$PY" -c 'import json,sys; print(round(100*json.load(open(sys.argv[1]))[sys.argv[2]]))' "$T/out" "$2") ||
    fail "eval $1: no JSON: $(cat "$T/out")"
  echo "eval '$1': $2 $got% (want >= $3%)"
  [ "$got" -ge "$3" ] || fail "eval '$1': $2 $got% below $3%"
}

# The shipped models (slice 3, models/README.md) put objects where asked, and their colours pass
# the faithful check (the judge reads a render and its re-render explains the sample): measured
# when this was written (16 samples, seed 11, 100 steps): pos=(0,0) and pos=(-0.6,0.6) read at
# the place 100%, color=red strict 56%, color=green strict 62%. Shape is not learned yet, so no
# shape term is asserted.
check "pos=(0,0)" read_strict 60
check "pos=(-0.6,0.6)" read_strict 25
check "color=red" strict 25
check "color=green" strict 25
echo "shipped models: load; their samples put objects where asked, and red and green ones pass the faithful check"
