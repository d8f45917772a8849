#!/usr/bin/env bash
# train_models.sh: trains the four shipped concept models (models/{position,size,shape,color}
# .safetensors) the way they were made: 32x32 `small32` networks on fresh `general` renders,
# cpu backend, one thread each, all four at once (on 2 cores each gets about half a core).
#   tools/train_models.sh [STEPS] [OUTDIR]      defaults: 100000 (stop with Ctrl-C / SIGTERM) runs/
# Each run writes OUTDIR/C/{C.safetensors, C.ckpt.safetensors, C.metrics.csv, neg.png, train.log}.
# A run stopped early keeps its checkpoint; turn it into a model (the EMA weights) with
#   vkebm train --resume OUTDIR/C/C.ckpt.safetensors --steps N -o models/C.safetensors
# where N is the checkpoint's step (`vkebm inspect` shows it). docs/training.md has the reasons
# for each flag (the flat data-fitted chain start, step 10 / noise 0.005, 20 steps, buffer 1000).
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-100000}
OUT=${2:-runs}
V=$PWD/build/vkebm
[ -x "$V" ] || { echo "train_models.sh: build first (tools/setup.sh)" >&2; exit 1; }
mkdir -p "$OUT/bin"
cp "$V" "$OUT/bin/vkebm" # a rebuild must not change the binary under a running job
for c in color shape position size; do
  mkdir -p "$OUT/$c"
  (cd "$OUT/$c" && VKEBM_THREADS=1 nice -n 5 ../bin/vkebm train --concept "$c" --data general \
    --config small32 --langevin-steps 20 --step-lr 10 --noise 0.005 --buffer 1000 --lr 5e-4 --ema 0 \
    --chain-init flat --steps "$STEPS" --checkpoint-every 200 --preview neg.png \
    -o "$c.safetensors" --backend cpu --log-every 100 >train.log 2>&1) &
done
echo "train_models.sh: 4 runs in $OUT/ (tail -f $OUT/*/train.log)"
wait
