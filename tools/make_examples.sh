#!/usr/bin/env bash
# make_examples.sh: regenerates the example pictures in README.md (assets/examples/).
# Until trained concept models ship in models/, these use the analytic concepts (--analytic):
# closed-form energies that show the composition algebra and the samplers, not learned images.
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
echo "wrote $out"
