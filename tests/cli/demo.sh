#!/usr/bin/env bash
# demo.sh: `vkebm demo` and `vkebm bench` on the cpu backend: a short run prints sane output,
# --help exits 0, bad flags exit 2, a broken model file exits 1.
# Usage: bash demo.sh VKEBM_BINARY SOURCE_DIR
set -u
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { # check DESCRIPTION COMMAND...: the command must succeed
  local what=$1; shift
  if ! "$@"; then echo "FAIL: $what"; fail=1; else echo "ok: $what"; fi
}
expect_rc() { # expect_rc RC DESCRIPTION COMMAND...
  local want=$1 what=$2; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  if [ "$rc" != "$want" ]; then
    echo "FAIL: $what: exit $rc, expected $want"; cat "$tmp/out" "$tmp/err"; fail=1
  else
    echo "ok: $what (exit $rc)"
  fi
}

cd "$tmp"  # no models/ directory here: the demo must fall back to random initialisation
expect_rc 0 "demo tiny 3 steps" "$bin" demo --backend cpu --config tiny --steps 3 --seed 7
cat out err
check "demo names the backend" grep -q "backend     cpu" out
check "demo says random init" grep -q "random initialisation" out
check "demo reports energies" grep -Eq "energy      mean before -?[0-9.]+, after -?[0-9.]+" out
check "demo reports speed" grep -Eq "speed       [0-9.]+ ms/step, [0-9.]+ image-steps/s, [0-9.]+ GFLOP/s" out
check "demo reports config size" grep -q "2841 weights" out
cp out first
expect_rc 0 "demo is a function of its seed" "$bin" demo --backend cpu --config tiny --steps 3 --seed 7
check "same seed, same energies" bash -c "diff <(grep energy first) <(grep energy out)"
expect_rc 0 "demo --quiet" "$bin" demo --backend cpu --config tiny --steps 1 --quiet --seed 1
check "quiet: nothing on stderr" test ! -s err

mkdir models
expect_rc 0 "demo --save" "$bin" demo --backend cpu --config tiny --steps 3 --seed 7 --save models/tiny.safetensors
check "saved model exists" test -s models/tiny.safetensors
expect_rc 0 "demo loads the matching model from models/" "$bin" demo --backend cpu --config tiny --steps 3 --seed 7
check "demo says which model" grep -q "model       models/tiny.safetensors" out
check "loaded model, same energies" bash -c "diff <(grep energy first) <(grep energy out)"
expect_rc 0 "demo ignores a model of another configuration" "$bin" demo --backend cpu --config default32 --steps 0 --batch 1 --seed 7
check "default32: random init" grep -q "random initialisation" out

# The same run on vulkan (lavapipe in CI) with the validation layer: same energies as the cpu.
VK_LOADER_LAYERS_ENABLE='*validation' "$bin" demo --backend vulkan --validate --config tiny --steps 3 --seed 7 >out 2>err
rc=$?
if [ $rc = 77 ]; then
  echo "skip: no Vulkan device for the vulkan demo"
elif [ $rc != 0 ]; then
  echo "FAIL: vulkan demo exit $rc"; cat out err; fail=1
else
  check "vulkan demo names the backend" grep -q "backend     vulkan" out
  # printed to 1e-6; allow 2e-6 for a rounding boundary between the two float32 backends
  check "vulkan demo matches the cpu energies" awk -v a="$(grep energy first)" -v b="$(grep energy out)" 'BEGIN {
    na = split(a, x, /[ ,()]+/); split(b, y, /[ ,()]+/);
    for (i = 1; i <= na; i++) if (x[i] ~ /^-?[0-9]+\.[0-9]+$/ && (x[i] - y[i] > 2e-6 || y[i] - x[i] > 2e-6)) exit 1 }'
fi

expect_rc 0 "demo --help" "$bin" demo --help
check "help mentions --steps" grep -q -- "--steps" out
expect_rc 2 "demo bad flag" "$bin" demo --frobnicate
expect_rc 2 "demo missing value" "$bin" demo --steps
expect_rc 2 "demo bad number" "$bin" demo --steps 3x
expect_rc 2 "demo bad backend" "$bin" demo --backend gpu
expect_rc 2 "demo bad preset" "$bin" demo --config huge
expect_rc 2 "demo stray argument" "$bin" demo extra
printf 'not a model' > broken.safetensors
expect_rc 1 "demo broken model file" "$bin" demo --backend cpu --model broken.safetensors --steps 1
check "broken model: one line naming the file" grep -q "broken.safetensors" err

expect_rc 0 "bench --json tiny" "$bin" bench --backend cpu --configs tiny --batches 1,3 --iters 2 --warmup 1 --json
check "bench: two JSON lines" test "$(wc -l < out)" -eq 2
check "bench: JSON fields" grep -Eq '^\{"impl":"vkebm","backend":"cpu","config":"tiny","resolution":8,"batch":3,"image_steps_per_s":[0-9.e+-]+,"ms_per_step":[0-9.e+-]+,"flops_per_image_step":[0-9.e+-]+,"gflops":[0-9.e+-]+,"device":".*"\}$' out
if command -v python3 >/dev/null; then
  check "bench: valid JSON" python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' out
fi
expect_rc 0 "bench --help" "$bin" bench --help
expect_rc 2 "bench bad batch" "$bin" bench --batches 0
expect_rc 2 "bench bad config" "$bin" bench --configs nope
exit $fail
