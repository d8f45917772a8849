# common.bash: what the experiment scripts (tools/experiments/*.sh) share: their common flags,
# training and evaluation with the project's binary, the joint model's label, the results
# table. Sourced, not run. A script sets USAGE_EXTRA and EXTRA_OPT (a function taking "$@"
# that consumes its own flags and sets SHIFT), then calls parse_common "$@".
#
# Common flags (defaults: the full-size run):
#   --out DIR          outputs (models, evaluations, table); must be new or empty unless
#                      --continue (reuse the finished steps) or --force (start over)
#   --iters N          training iterations per model (default 10000)
#   --eval-n N         samples per evaluated expression (default 64)
#   --eval-steps K     sampler steps in the evaluation (default: what the models record)
#   --config PRESET    network preset (default small32, the practical recipe's); --size, --width,
#   --batch, --langevin-steps, --buffer pass through to `vkebm train`
#   --seed S           training seed (default 1); evaluations use seeds 1000 + i
#   --judge FILE       default models/judge.safetensors of the source tree
#   --vkebm BIN        default build/vkebm of the source tree
#   --tiny             the CI size: 3 iterations, tiny network at 32x32, batch 4, 3 Langevin
#                      steps, 4 samples of 5 steps per expression
#   -q, --quiet        no progress lines
COMMON_USAGE="common flags (defaults: the full-size run):
  --out DIR          outputs: models, evaluations, table (new or empty, unless --continue:
                     reuse the finished steps and resume an interrupted training, or --force:
                     start over)
  --iters N          training iterations per model (default 10000)
  --eval-n N         samples per evaluated expression (default 64)
  --eval-steps K     sampler steps in the evaluation (default: what the models record)
  --config PRESET    network preset (default small32, the practical recipe's); --size PX,
                     --width W, --batch B, --langevin-steps K, --buffer N pass through to
                     vkebm train
  --seed S           training seed (default 1)
  --judge FILE       default models/judge.safetensors of the source tree
  --vkebm BIN        default build/vkebm of the source tree
  --tiny             the CI size: 3 iterations of a tiny network at 32x32 (batch 4, 3 Langevin
                     steps, buffer 16), 4 samples of 5 steps per expression
  -q, --quiet        no progress lines"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VKEBM="$ROOT/build/vkebm"
JUDGE="$ROOT/models/judge.safetensors"
OUT="" ITERS=10000 EVAL_N=64 EVAL_STEPS="" SEED=1 CONTINUE=0 FORCE=0 QUIET=0
TRAIN_NET=()   # --config/--size/--width
TRAIN_RUN=()   # --batch/--langevin-steps/--buffer

die() { echo "$SCRIPT: $*" >&2; exit 1; }
usage_error() { echo "$SCRIPT: $*" >&2; exit 2; }
say() { [ "$QUIET" = 1 ] || echo "$SCRIPT: $*" >&2; }

is_uint() { [[ $1 =~ ^[0-9]+$ ]] && [ "$1" -ge "${2:-0}" ]; }

parse_common() {
  while [ $# -gt 0 ]; do
    SHIFT=0
    EXTRA_OPT "$@"
    if [ "$SHIFT" -gt 0 ]; then shift "$SHIFT"; continue; fi
    case $1 in
    -h | --help) echo "$USAGE"; exit 0 ;;
    --out) OUT=${2:?--out needs a folder}; shift 2 ;;
    --iters) is_uint "${2:-}" 1 || usage_error "--iters: expected a positive integer, got '${2:-}'"; ITERS=$2; shift 2 ;;
    --eval-n) is_uint "${2:-}" 1 || usage_error "--eval-n: expected a positive integer, got '${2:-}'"; EVAL_N=$2; shift 2 ;;
    --eval-steps) is_uint "${2:-}" 1 || usage_error "--eval-steps: expected a positive integer, got '${2:-}'"; EVAL_STEPS=$2; shift 2 ;;
    --seed) is_uint "${2:-}" || usage_error "--seed: expected an integer, got '${2:-}'"; SEED=$2; shift 2 ;;
    --config | --size | --width) [ $# -ge 2 ] || usage_error "$1 needs a value"; TRAIN_NET+=("$1" "$2"); shift 2 ;;
    --batch | --langevin-steps | --buffer) [ $# -ge 2 ] || usage_error "$1 needs a value"; TRAIN_RUN+=("$1" "$2"); shift 2 ;;
    --judge) JUDGE=${2:?--judge needs a file}; shift 2 ;;
    --vkebm) VKEBM=${2:?--vkebm needs a binary}; shift 2 ;;
    --continue) CONTINUE=1; shift ;;
    --force) FORCE=1; shift ;;
    -q | --quiet) QUIET=1; shift ;;
    --tiny)
      ITERS=3 EVAL_N=4 EVAL_STEPS=5
      TRAIN_NET=(--config tiny --size 32) TRAIN_RUN=(--batch 4 --langevin-steps 3 --buffer 16)
      shift ;;
    *) usage_error "unknown argument '$1' (see --help)" ;;
    esac
  done
  [ -n "$OUT" ] || usage_error "--out DIR is required"
  [ -x "$VKEBM" ] || die "no vkebm binary at $VKEBM (build with tools/setup.sh, or pass --vkebm)"
  [ -r "$JUDGE" ] || die "no judge at $JUDGE (pass --judge)"
  command -v python3 >/dev/null || die "python3 is needed for the tables"
  if [ -d "$OUT" ] && [ -n "$(ls -A "$OUT")" ]; then
    if [ "$FORCE" = 1 ]; then
      rm -rf "${OUT:?}/models" "${OUT:?}/eval" "$OUT"/table.* "$OUT"/*.png "$OUT"/log.txt
    elif [ "$CONTINUE" = 0 ]; then
      usage_error "$OUT is not empty (add --continue to reuse its finished steps, --force to start over)"
    fi
  fi
  mkdir -p "$OUT/models" "$OUT/eval" || die "cannot create $OUT"
  [ "$QUIET" = 1 ] && QFLAG=(--quiet) || QFLAG=()
  RESULTS="python3 $ROOT/tools/experiments/results.py"
  {
    echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $SCRIPT: iters $ITERS, eval-n $EVAL_N, eval-steps ${EVAL_STEPS:-recorded}," \
      "train ${TRAIN_NET[*]} ${TRAIN_RUN[*]}, seed $SEED, $("$VKEBM" --version 2>/dev/null | head -1)"
  } >>"$OUT/log.txt"
}

# train NAME ARGS...: `vkebm train ARGS -o $OUT/models/NAME.safetensors` unless that model exists
# (--continue); an interrupted run resumes from its checkpoint. Sets TRAIN_S (wall seconds; a
# reused model's are read back from NAME.seconds, the seconds of its last stretch of training).
train() {
  local name=$1 model="$OUT/models/$1.safetensors" ckpt="$OUT/models/$1.ckpt.safetensors"
  shift
  TRAIN_S=""
  if [ -s "$model" ]; then
    TRAIN_S=$(cat "$OUT/models/$name.seconds" 2>/dev/null || true)
    say "$name: reusing $model"
    return 0
  fi
  local t0=$SECONDS log="$OUT/models/$name.log"
  local args=(--steps "$ITERS" --seed "$SEED" --log-every 500 --checkpoint-every 500 --backend cpu -o "$model")
  local net=("${TRAIN_NET[@]}") a prev=""
  for a in "$@"; do [ "$a" = --init ] && net=(); done # the network comes from the --init model
  if [ -s "$ckpt" ]; then
    local frozen=()
    for a in "$@"; do [ "$prev" = --frozen ] && frozen+=(--frozen "$a"); prev=$a; done
    say "$name: resuming $ckpt"
    "$VKEBM" train --resume "$ckpt" "${frozen[@]}" --steps "$ITERS" --log-every 500 --backend cpu -o "$model" >"$log" 2>&1 ||
      die "training $name failed: $(tail -1 "$log")"
  else
    say "$name: vkebm train $* (${ITERS} iterations)"
    "$VKEBM" train "$@" "${net[@]}" "${TRAIN_RUN[@]}" "${args[@]}" >"$log" 2>&1 ||
      die "training $name failed: $(tail -1 "$log")"
  fi
  TRAIN_S=$((SECONDS - t0))
  echo "$TRAIN_S" >"$OUT/models/$name.seconds"
  echo "trained $name in ${TRAIN_S}s: vkebm train $*" >>"$OUT/log.txt"
}

# evaluate FILE.json MODELS EXPR [SCORE]: `vkebm eval --json` of EXPR with MODELS (comma list),
# scored against SCORE when given; unless FILE.json exists (--continue).
EVAL_SEED=1000
EVAL_ARGS=() # more `vkebm eval` flags, e.g. tolerances
evaluate() {
  local json=$1 models=$2 expr=$3 score=${4:-}
  EVAL_SEED=$((EVAL_SEED + 1))
  [ -s "$json" ] && return 0
  local args=(--expr "$expr" --models "$models" --judge "$JUDGE" -n "$EVAL_N" --seed "$EVAL_SEED"
    --no-frechet --json --quiet --backend cpu --save "${json%.json}")
  [ -n "$EVAL_STEPS" ] && args+=(--steps "$EVAL_STEPS")
  [ -n "$score" ] && args+=(--score "$score")
  args+=("${EVAL_ARGS[@]}")
  "$VKEBM" eval "${args[@]}" >"$json.tmp" 2>"$json.err" || die "eval of '$expr' failed: $(cat "$json.err")"
  mv "$json.tmp" "$json" && rm -f "$json.err"
}

# joint_label X Y SIZE SHAPE COLOUR: the joint concept's label, "x,y,size,shape one-hot,colour
# one-hot" (scene.h), as the value of a `joint=(...)` term.
SHAPES=(cube sphere cylinder cone)
COLOURS=(red green blue yellow purple cyan orange white)
joint_label() {
  local out="$1,$2,$3" s c
  for s in "${SHAPES[@]}"; do [ "$s" = "$4" ] && out+=",1" || out+=",0"; done
  for c in "${COLOURS[@]}"; do [ "$c" = "$5" ] && out+=",1" || out+=",0"; done
  echo "$out"
}
