#!/usr/bin/env bash
# continual.sh: the paper's continual-learning experiment (docs/experiments.md).
#
# Three stages, each on its own data (docs/scenes.md):
#   1. position on continual-position (purple cubes at random places)
#   2. shape on continual-shape (purple shapes), the position model frozen in the sampler
#   3. colour on continual-color (every shape and colour), both earlier models frozen
# After each stage the compositions of everything learned so far are sampled and scored with the
# faithful check (`vkebm eval`): stage 1 pos=P, stage 2 pos=P AND shape=S (S never a cube: the
# position model saw only cubes), stage 3 pos=P AND shape=S AND color=C (C never purple: neither
# earlier model saw another colour). The baseline is one joint model (`--concept joint`, label
# x, y, size, shape, colour) trained on stage 1's data and fine-tuned (`--init`) on each later
# stage's data, sampled for the same descriptions (size 0.5) and scored the same way
# (`vkebm eval --score`). Output: OUT/table.md and OUT/table.csv, one row per stage and model,
# written as each stage finishes; OUT/models/*.safetensors; OUT/eval/*/ the scored samples.
set -euo pipefail
SCRIPT=continual.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"
USAGE="usage: tools/experiments/continual.sh --out DIR [--combos N] [--iters N] [--eval-n N]
       [--eval-steps K] [--config PRESET] [--size PX] [--width W] [--batch B]
       [--langevin-steps K] [--buffer N] [--seed S] [--judge FILE] [--vkebm BIN]
       [--tiny] [--continue | --force] [-q]

The paper's continual-learning experiment: position, then shape with position frozen, then
colour with both frozen, against one joint model fine-tuned stage by stage; after each stage
the compositions learned so far are scored (docs/experiments.md).

  --combos N         expressions per stage (default 8; --tiny: 2)

$COMMON_USAGE"
COMBOS=8
EXTRA_OPT() {
  case $1 in
  --combos) is_uint "${2:-}" 1 || usage_error "--combos: expected a positive integer, got '${2:-}'"; COMBOS=$2; SHIFT=2 ;;
  --tiny) COMBOS=2 ;; # and the common --tiny below
  esac
}
parse_common "$@"

PLACES=("-0.5,-0.5" "0.5,0.5" "-0.5,0.5" "0.5,-0.5" "0,0" "-0.5,0" "0.5,0" "0,0.5")
NEW_SHAPES=(sphere cylinder cone)                          # never seen by the position model
NEW_COLOURS=(red green blue yellow cyan orange white)      # never seen by position or shape
DATA=(continual-position continual-shape continual-color)
CONCEPT=(position shape color)

for stage in 1 2 3; do
  i=$((stage - 1))
  # the compositional model of this stage, the earlier ones frozen with the data's labels
  frozen=()
  for ((k = 0; k < i; k++)); do frozen+=(--frozen "$OUT/models/${CONCEPT[k]}.safetensors=data"); done
  train "${CONCEPT[i]}" --concept "${CONCEPT[i]}" --data "${DATA[i]}" "${frozen[@]}"
  composed_s=$TRAIN_S
  # the joint baseline: fresh on stage 1, fine-tuned on every later stage's data
  init=()
  [ "$stage" -gt 1 ] && init=(--init "$OUT/models/joint-$((stage - 1)).safetensors")
  train "joint-$stage" --concept joint --data "${DATA[i]}" "${init[@]}"
  joint_s=$TRAIN_S

  models=""
  for ((k = 0; k <= i; k++)); do models+="${models:+,}$OUT/models/${CONCEPT[k]}.safetensors"; done
  composed_json=() joint_json=()
  for ((c = 0; c < COMBOS; c++)); do
    P=${PLACES[c % ${#PLACES[@]}]} S=cube C=purple
    expr="pos=($P)"
    if [ "$stage" -ge 2 ]; then S=${NEW_SHAPES[c % ${#NEW_SHAPES[@]}]}; expr+=" AND shape=$S"; fi
    if [ "$stage" -ge 3 ]; then C=${NEW_COLOURS[c % ${#NEW_COLOURS[@]}]}; expr+=" AND color=$C"; fi
    tag="stage$stage-$c"
    EVAL_SEED=$((1000 + 100 * stage + 2 * c))
    evaluate "$OUT/eval/$tag-composed.json" "$models" "$expr"
    evaluate "$OUT/eval/$tag-joint.json" "$OUT/models/joint-$stage.safetensors" \
      "joint=($(joint_label "${P%,*}" "${P#*,}" 0.5 "$S" "$C"))" "$expr"
    composed_json+=("$OUT/eval/$tag-composed.json")
    joint_json+=("$OUT/eval/$tag-joint.json")
  done
  common=(--csv "$OUT/table.csv" --md "$OUT/table.md" --key "stage=$stage" --set "data=${DATA[i]}"
    --set "iterations=$ITERS" --concepts pos,shape,color
    --title "Continual learning: after each stage, the compositions learned so far ($EVAL_N samples per expression)")
  $RESULTS row "${common[@]}" --set model=composed --set "train_s=$composed_s" "${composed_json[@]}"
  $RESULTS row "${common[@]}" --set model=joint --set "train_s=$joint_s" "${joint_json[@]}"
  say "stage $stage done: $OUT/table.md"
done
[ "$QUIET" = 1 ] || cat "$OUT/table.md"
