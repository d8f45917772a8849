#!/usr/bin/env bash
# train_models.sh: trains the concept models in slices that outlive a session. Each concept's
# whole training state lives in a committed checkpoint, models/ckpt/C.ckpt.safetensors (weights,
# Adam moments, the uint8 replay buffer, counters); a slice resumes it, trains for a wall-clock
# budget, and stops with SIGTERM, which makes `vkebm train` write the checkpoint back. Commit
# models/ckpt/ after a slice and the next session continues where this one stopped.
#
#   tools/train_models.sh [--minutes M] [--concepts "position size shape color"] [--fresh] [--threads T]
#
# --fresh starts a concept from scratch with the current recipe (below) even when its checkpoint
# exists. Runs go side by side, VKEBM_THREADS=T each (default 1), nice 5; the model of each
# slice is written to runs/C/C.safetensors (the trained weights): models/C.safetensors is only
# replaced by hand, after `vkebm eval` on held-out seeds says it is better.
# models/ckpt/C.log gets one line per slice: date, first and last step, wall seconds, command.
#
# The recipe (docs/training.md, ablation table): small32 with coordinate planes, the flatten head
# and standardised input pixels, 20 Langevin steps of 10 with noise 0.005, buffer 1000, lr 5e-4,
# trained weights sample (--ema 0), flat data-fitted chain starts, the same for every concept (the
# label-contrastive term taught shape to classify but filled its samples with textures:
# docs/training.md). A checkpoint keeps the recipe it was started with: only --fresh changes it.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=60
CONCEPTS="position size shape color"
FRESH=0
THREADS=1
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) MINUTES=$2; shift 2 ;;
    --concepts) CONCEPTS=$2; shift 2 ;;
    --fresh) FRESH=1; shift ;;
    --threads) THREADS=$2; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "train_models.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$MINUTES" in ''|*[!0-9]*) echo "train_models.sh: --minutes wants a whole number" >&2; exit 2 ;; esac
V=$PWD/build/vkebm
[ -x "$V" ] || { echo "train_models.sh: build first (tools/setup.sh)" >&2; exit 1; }
mkdir -p runs/bin models/ckpt
# a rebuild must not change the binary under a running job; a rename leaves a binary another
# slice is running from in place (a plain cp over it fails: text file busy)
cp "$V" "runs/bin/vkebm.$$" && mv -f "runs/bin/vkebm.$$" runs/bin/vkebm
RECIPE=(--data general --config small32 --coords --head flatten --input-norm --langevin-steps 20
        --step-size 10 --noise 0.005 --buffer 1000 --lr 5e-4 --ema 0 --chain-init flat)

BIN=$PWD/runs/bin/vkebm
LOGS=$PWD/models/ckpt
step_of() { # the step recorded in a checkpoint's metadata (empty when unreadable)
  "$BIN" inspect "$1" 2>/dev/null | awk '/^  step = /{print $3}' || true
}
pids=()
for c in $CONCEPTS; do
  ck=$PWD/models/ckpt/$c.ckpt.safetensors
  mkdir -p "runs/$c"
  if [ -f "$ck" ] && [ "$FRESH" = 0 ]; then
    args=(--resume "$ck" --steps 10000000)
  else
    rm -f "$ck"
    args=(--concept "$c" "${RECIPE[@]}" --steps 10000000 --force)
  fi
  first=$(if [ -f "$ck" ]; then step_of "$ck"; else echo 0; fi)
  (
    cd "runs/$c"
    start=$(date +%s)
    VKEBM_THREADS=$THREADS nice -n 5 timeout -s TERM "${MINUTES}m" ../bin/vkebm train "${args[@]}" \
      --checkpoint "$ck" --checkpoint-every 200 --preview neg.png --backend cpu --log-every 100 \
      -o "$c.safetensors" >>train.log 2>&1 || true
    last=$(step_of "$ck")
    echo "$(date -u +%FT%TZ) steps ${first:-0} -> ${last:-?} in $(( $(date +%s) - start )) s:" \
      "vkebm train ${args[*]} --checkpoint models/ckpt/$c.ckpt.safetensors (VKEBM_THREADS=$THREADS)" \
      >>"$LOGS/$c.log"
  ) &
  pids+=($!)
done
echo "train_models.sh: ${CONCEPTS} for ${MINUTES} min (tail -f runs/*/train.log)"
wait "${pids[@]}"
