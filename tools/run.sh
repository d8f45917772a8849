#!/usr/bin/env bash
# run.sh: sets everything up (Debian packages, build), then runs vkebm's main job on the shipped
# defaults: the shipped position model on the chosen device (`vkebm demo`: Langevin steps,
# energies, throughput), then a composition of two shipped concept models (`vkebm sample`,
# colour AND place, the models' recorded sampler) written to out/sample.png, enlarged 3 times.
# Extra arguments go to `vkebm sample`.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
mkdir -p out
build/vkebm demo --model models/position.safetensors --steps 20 --step-lr 10
build/vkebm sample --expr "color=blue AND pos=(-0.6,0)" -n 16 --seed 1 --scale 3 \
  -o out/sample.png "$@"
echo "run.sh: wrote $(pwd)/out/sample.png (16 samples of color=blue AND pos=(-0.6,0) from models/)"
