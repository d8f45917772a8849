#!/usr/bin/env bash
# shipped_models.sh: the concept models shipped in models/ (position, size, shape, color) load
# (`vkebm inspect`, metadata of a trained model: concept, step, the training sampler and chain
# start), and short composed samples made with them score well above chance on the shipped judge
# (`vkebm eval`, CI-sized: 16 samples of 100 steps with the models' own step and noise). Chance levels of a
# readable render drawn from the training data: colour 1/8, shape 1/4, a position within 0.25
# of a point 1/16 (the strict accuracies also need the judge to read the sample as a scene).
set -u
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
CLI_COMMAND=eval
export VKEBM_THREADS=${VKEBM_THREADS:-2}
M="$SRC/models"
for c in color shape position size; do
  [ -f "$M/$c.safetensors" ] || fail "models/$c.safetensors is not shipped"
  "$VKEBM" inspect "$M/$c.safetensors" >"$T/inspect" 2>&1 || fail "inspect $c: $(cat "$T/inspect")"
  grep -q "concept = $c" "$T/inspect" && grep -q "data_spec = general" "$T/inspect" &&
    grep -q "langevin_step_lr = " "$T/inspect" && grep -q "chain_init_mean = " "$T/inspect" ||
    fail "models/$c.safetensors metadata: $(cat "$T/inspect")"
  step=$(awk '/^  step = /{print $3}' "$T/inspect")
  [ "${step:-0}" -ge 1000 ] || fail "models/$c.safetensors: only $step training steps"
done

# strict accuracy (percent) of EXPR over 16 samples must reach MIN
check() { # check EXPR MIN
  expect 0 "eval $1" -- --expr "$1" -n 16 --batch 16 --steps 100 --seed 11 --models "$M" \
    --judge "$M/judge.safetensors" --json --quiet
  local got
  got=$("$PY" -c 'import json,sys; print(round(100*json.load(open(sys.argv[1]))["strict"]))' "$T/out") ||
    fail "eval $1: no JSON: $(cat "$T/out")"
  echo "eval '$1': strict $got% (want >= $2%)"
  [ "$got" -ge "$2" ] || fail "eval '$1': strict accuracy $got% below $2%"
}

# measured when the models were shipped (16 samples, seed 11, 100 steps): 100, 69, 44, 62
check "color=red" 75                       # chance 12.5%
check "shape=cube" 45                      # chance 25%
check "pos=(0.5,-0.5)" 25                  # chance ~6% (a 0.5 x 0.5 square of the 2 x 2 floor)
check "shape=sphere AND color=blue" 35     # chance ~3%
echo "shipped models: load, and compose well above chance"
