#!/usr/bin/env bash
# make_examples.sh: regenerates the example pictures in README.md (assets/examples/).
#   and|or|not|two_objects|nested|weighted.png, chains.gif: the analytic concepts (--analytic), closed-form energies that show
#     the composition algebra and the samplers, not learned images;
#   learned_*.png: the concept models shipped in models/, with their recorded sampler settings.
set -euo pipefail
cd "$(dirname "$0")/.."
V=build/vkebm
out=assets/examples
mkdir -p "$out"
run() { local name=$1; shift; "$V" sample --analytic -n 16 --steps 200 --seed 7 --quiet -o "$out/$name.png" "$@"; }
run and          --expr "shape=cube AND color=red"
run or           --expr "shape=cube AND (color=red OR color=blue)"
run not          --expr "shape=sphere AND color=yellow AND NOT[0.5] color=red"
run two_objects  --expr "pos=(-0.5,0) AND pos=(0.5,0)"
run nested       --expr "(shape=cube AND color=red) OR (shape=sphere AND color=blue)"
run weighted     --expr "2*color=green AND size=0.6 AND pos=(0.3,-0.5)"
"$V" sample --analytic -n 8 --steps 200 --seed 7 --quiet --expr "(shape=cube AND color=red) OR (shape=sphere AND color=blue)" \
  --gif "$out/chains.gif" --every 4 -o "$out/chains_final.png"
if ls models/color.safetensors models/shape.safetensors models/position.safetensors models/size.safetensors >/dev/null 2>&1; then
  learned() { local name=$1; shift; "$V" sample -n 16 --steps 100 --seed 7 --quiet -o "$out/learned_$name.png" "$@"; }
  learned red           --expr "color=red"
  learned blue          --expr "color=blue"
  learned cube          --expr "shape=cube"
  learned sphere        --expr "shape=sphere"
  learned pos_left      --expr "pos=(-0.5,0.3)"
  learned pos_right     --expr "pos=(0.5,-0.5)"
  learned size_small    --expr "size=0.35"
  learned size_large    --expr "size=0.65"
  learned and           --expr "shape=sphere AND color=blue"
  learned and3          --expr "shape=cube AND color=red AND pos=(-0.5,0.5)"
  learned or            --expr "color=red OR color=blue"
  learned not           --expr "shape=sphere AND NOT color=red"
  learned two_objects   --expr "pos=(-0.5,0) AND pos=(0.5,0)"
  "$V" sample -n 8 --steps 100 --seed 7 --quiet --expr "shape=sphere AND color=blue" \
    --gif "$out/learned_chains.gif" --every 4 -o "$out/learned_chains_final.png"
fi
echo "wrote $out"
