#!/usr/bin/env bash
# run.sh: sets everything up (Debian packages, build), then runs vkebm's main job on the shipped
# defaults: the energy network on the chosen device (`vkebm demo`), then a composed sample
# (`vkebm sample`) written to out/sample.png. Extra arguments go to `vkebm sample`.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
mkdir -p out
build/vkebm demo --steps 10
build/vkebm sample --expr "(shape=cube AND color=red) OR (shape=sphere AND color=blue)" \
  -n 16 --steps 100 --seed 1 -o out/sample.png "$@"
echo "run.sh: wrote out/sample.png"
