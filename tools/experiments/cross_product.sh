#!/usr/bin/env bash
# cross_product.sh: the paper's cross-product generalisation experiment (docs/experiments.md).
#
# Purple cubes on a 6x6 grid of places x 5 sizes (docs/scenes.md): `cross-product R` shows every
# size at a fraction R of the places and one size at each other place; `cross-product-test R`
# holds the (place, size) pairs it never shows. For each R: a position model and a size model
# (composed: pos=P AND size=s) and one joint model (`--concept joint`, sampled as
# joint=(x,y,s,cube,purple)) are trained on the same `cross-product R` data and scored on
# held-out pairs with the faithful check (`vkebm eval`; sizes within 0.05, half the spacing of
# the five sizes, places within 0.25, under half the grid's spacing of 0.4). Output:
# OUT/table.md, OUT/table.csv (one row per R and model, written as each R finishes) and
# OUT/accuracy.png (accuracy against R: strict solid, the judge's readings alone dashed).
set -euo pipefail
SCRIPT=cross_product.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"
USAGE="usage: tools/experiments/cross_product.sh --out DIR [--ratios R,R,..] [--pairs N]
       [--iters N] [--eval-n N] [--eval-steps K] [--config PRESET] [--size PX] [--width W]
       [--batch B] [--langevin-steps K] [--buffer N] [--seed S] [--judge FILE] [--vkebm BIN]
       [--tiny] [--continue | --force] [-q]

The paper's cross-product generalisation experiment: separate position and size models against
one joint model, trained on the seen (place, size) pairs of cross-product R and scored on the
held-out pairs, for each R; a plot of accuracy against R (docs/experiments.md).

  --ratios LIST      comma-separated R in (0, 1) (default 0.1,0.25,0.5,0.75; --tiny: 0.25,0.5)
  --pairs N          held-out pairs evaluated per R (default 8; --tiny: 2)

$COMMON_USAGE"
RATIOS=0.1,0.25,0.5,0.75 PAIRS=8
EXTRA_OPT() {
  case $1 in
  --ratios) [[ ${2:-} =~ ^0?\.[0-9]+(,0?\.[0-9]+)*$ ]] || usage_error "--ratios: expected numbers in (0, 1) like 0.1,0.5, got '${2:-}'"
    RATIOS=$2; SHIFT=2 ;;
  --pairs) is_uint "${2:-}" 1 || usage_error "--pairs: expected a positive integer, got '${2:-}'"; PAIRS=$2; SHIFT=2 ;;
  --tiny) RATIOS=0.25,0.5 PAIRS=2 ;; # and the common --tiny below
  esac
}
parse_common "$@"
EVAL_ARGS=(--size-tol 0.05)

IFS=, read -r -a RS <<<"$RATIOS"
for R in "${RS[@]}"; do
  awk -v r="$R" 'BEGIN { exit !(r > 0 && r < 1) }' || usage_error "--ratios: $R is not in (0, 1)"
done

for R in "${RS[@]}"; do
  data="cross-product:$R"
  train "position-$R" --concept position --data "$data"
  pos_s=$TRAIN_S
  train "size-$R" --concept size --data "$data"
  size_s=$TRAIN_S
  train "joint-$R" --concept joint --data "$data"
  joint_s=$TRAIN_S
  # held-out pairs: the first distinct (x, y, size) rows of cross-product-test R
  held="$OUT/eval/heldout-$R"
  if [ ! -s "$held/labels.csv" ]; then
    rm -rf "$held"
    "$VKEBM" data --spec "cross-product-test:$R" -n $((PAIRS * 20)) --seed 7 --size 8 -q -o "$held" ||
      die "vkebm data cross-product-test:$R failed"
  fi
  mapfile -t pairs < <(awk -F, '!/^#/ && $1 != "index" { p = sprintf("%g,%g,%g", $3, $4, $5); if (!seen[p]++) print p }' \
    "$held/labels.csv" | head -n "$PAIRS")
  [ "${#pairs[@]}" -gt 0 ] || die "cross-product-test:$R has no held-out pairs"
  composed_json=() joint_json=()
  for ((c = 0; c < ${#pairs[@]}; c++)); do
    IFS=, read -r x y s <<<"${pairs[c]}"
    expr="pos=($x,$y) AND size=$s"
    EVAL_SEED=$((2000 + 2 * c))
    evaluate "$OUT/eval/r$R-$c-composed.json" "$OUT/models/position-$R.safetensors,$OUT/models/size-$R.safetensors" "$expr"
    evaluate "$OUT/eval/r$R-$c-joint.json" "$OUT/models/joint-$R.safetensors" \
      "joint=($(joint_label "$x" "$y" "$s" cube purple))" "$expr"
    composed_json+=("$OUT/eval/r$R-$c-composed.json")
    joint_json+=("$OUT/eval/r$R-$c-joint.json")
  done
  common=(--csv "$OUT/table.csv" --md "$OUT/table.md" --key "ratio=$R" --set "data=$data"
    --set "iterations=$ITERS" --concepts pos,size
    --title "Cross-product generalisation: held-out (place, size) pairs ($EVAL_N samples per pair)")
  $RESULTS row "${common[@]}" --set model=composed --set "train_s=$((pos_s + size_s))" "${composed_json[@]}"
  $RESULTS row "${common[@]}" --set model=joint --set "train_s=$joint_s" "${joint_json[@]}"
  $RESULTS plot --csv "$OUT/table.csv" --png "$OUT/accuracy.png" --key ratio \
    --xlabel "R: share of places showing every size" --title "Accuracy on held-out pairs"
  say "R $R done: $OUT/table.md, $OUT/accuracy.png"
done
[ "$QUIET" = 1 ] || cat "$OUT/table.md"
