#!/usr/bin/env bash
# bench_compare.sh: vkebm's Langevin-step speed next to the PyTorch reference (tools/bench_torch.py).
#
# Runs `vkebm bench --json [ARGS...]`, reads which (config, batch) pairs it measured, runs the
# torch script on exactly those pairs, and prints a side-by-side table with the ratio
# vkebm / torch of image-steps per second. It also checks that both count the same FLOPs per
# image-step (the formula is in tools/bench_torch.py) and warns when they differ.
#
# usage: tools/bench_compare.sh [--vkebm PATH] [--vkebm-json FILE] [--torch-json FILE]
#                               [--threads N] [--min-time S] [-- VKEBM_BENCH_ARGS...]
#   --vkebm PATH        the binary (default build/vkebm)
#   --vkebm-json FILE   use these vkebm JSON lines instead of running vkebm bench
#   --torch-json FILE   use these torch JSON lines instead of running the torch script
#   --threads N         torch threads (default 2), --min-time S: seconds per torch measurement
#   --torch-arg ARG     passed on to bench_torch.py (repeatable), e.g. --torch-arg --channels-last
#   everything after -- goes to `vkebm bench --json`, e.g. -- --backend cpu --configs default32 --batches 1,16
#   With `-- --train ...` (vkebm bench --train) both sides time CD training iterations instead and
#   the table shows iterations/s, their ratio and vkebm's time split.
set -euo pipefail
cd "$(dirname "$0")/.."
VKEBM=build/vkebm
VKEBM_JSON=""
TORCH_JSON=""
THREADS=2
MIN_TIME=2
TORCH_ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --vkebm) VKEBM=$2; shift 2 ;;
    --vkebm-json) VKEBM_JSON=$2; shift 2 ;;
    --torch-json) TORCH_JSON=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --min-time) MIN_TIME=$2; shift 2 ;;
    --torch-arg) TORCH_ARGS+=("$2"); shift 2 ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --) shift; break ;;
    *) echo "bench_compare: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
done

PY=/usr/bin/python3
"$PY" -c "import torch" 2>/dev/null || PY=python3
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

if [ -z "$VKEBM_JSON" ]; then
  VKEBM_JSON=$TMP/vkebm.jsonl
  echo "running: $VKEBM bench --json $*" >&2
  "$VKEBM" bench --json "$@" > "$VKEBM_JSON"
fi
grep -q '"impl"' "$VKEBM_JSON" || { echo "bench_compare: no JSON lines from vkebm bench" >&2; exit 1; }

# The (config, batch) pairs vkebm measured, as --configs/--batches for the torch script.
read -r CONFIGS BATCHES TRAIN_K < <("$PY" - "$VKEBM_JSON" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
configs = sorted({r["config"] for r in rows})
batches = sorted({int(r["batch"]) for r in rows})
ks = sorted({int(r["langevin_steps"]) for r in rows if r.get("kind") == "train"})
print(",".join(configs), ",".join(map(str, batches)), ks[0] if ks else "-")
PYEOF
)
if [ -z "$TORCH_JSON" ]; then
  TORCH_JSON=$TMP/torch.jsonl
  TRAIN_ARGS=()
  [ "$TRAIN_K" != "-" ] && TRAIN_ARGS=(--train --langevin-steps "$TRAIN_K")
  echo "running: bench_torch.py --configs $CONFIGS --batches $BATCHES --threads $THREADS ${TRAIN_ARGS[*]-}" >&2
  "$PY" tools/bench_torch.py --configs "$CONFIGS" --batches "$BATCHES" --threads "$THREADS" \
    --min-time "$MIN_TIME" ${TRAIN_ARGS[@]+"${TRAIN_ARGS[@]}"} ${TORCH_ARGS[@]+"${TORCH_ARGS[@]}"} > "$TORCH_JSON"
fi

"$PY" - "$VKEBM_JSON" "$TORCH_JSON" <<'PYEOF'
import json, sys
def load(p):
    return [json.loads(l) for l in open(p) if l.strip().startswith("{")]
vk, th = load(sys.argv[1]), load(sys.argv[2])
if any(r.get("kind") == "train" for r in vk):
    torch_by = {(r["config"], int(r["batch"])): r for r in th if r.get("kind") == "train"}
    hdr = f"{'config':<10} {'batch':>5} {'K':>3} {'backend':<8} {'vkebm it/s':>10} {'torch it/s':>10} {'ratio':>6}   vkebm split ms (langevin param optim data buffer)"
    print(hdr)
    print("-" * len(hdr))
    for r in sorted(vk, key=lambda r: (r["config"], int(r["batch"]), r["backend"])):
        t = torch_by.get((r["config"], int(r["batch"])))
        sp = r.get("split_ms", {})
        split = " ".join(f"{sp.get(k, 0):.1f}" for k in ("langevin", "param", "optim", "data", "buffer"))
        tv = f"{t['it_per_s']:>10.2f}" if t else f"{'-':>10}"
        ratio = f"{r['it_per_s'] / t['it_per_s']:>6.2f}" if t else f"{'-':>6}"
        print(f"{r['config']:<10} {r['batch']:>5} {r['langevin_steps']:>3} {r['backend']:<8} {r['it_per_s']:>10.2f} {tv} {ratio}   {split}")
    print()
    for d in sorted({r.get("device", "?") for r in vk + th}):
        print("device:", d)
    print("ratio = vkebm / torch CD iterations per second (higher is better for vkebm)")
    sys.exit(0)
torch_by = {(r["config"], int(r["batch"])): r for r in th}
hdr = f"{'config':<10} {'R':>3} {'batch':>5} {'backend':<8} {'vkebm img-steps/s':>17} {'torch img-steps/s':>17} {'ratio':>6} {'vkebm GFLOP/s':>13} {'torch GFLOP/s':>13}"
print(hdr)
print("-" * len(hdr))
warnings = []
for r in sorted(vk, key=lambda r: (r["config"], int(r["batch"]), r["backend"])):
    t = torch_by.get((r["config"], int(r["batch"])))
    if t is None:
        print(f"{r['config']:<10} {r['resolution']:>3} {r['batch']:>5} {r['backend']:<8} {r['image_steps_per_s']:>17.2f} {'-':>17} {'-':>6} {r['gflops']:>13.2f} {'-':>13}")
        continue
    ratio = r["image_steps_per_s"] / t["image_steps_per_s"]
    print(f"{r['config']:<10} {r['resolution']:>3} {r['batch']:>5} {r['backend']:<8} {r['image_steps_per_s']:>17.2f} {t['image_steps_per_s']:>17.2f} {ratio:>6.2f} {r['gflops']:>13.2f} {t['gflops']:>13.2f}")
    fv, ft = float(r.get("flops_per_image_step") or 0), float(t.get("flops_per_image_step") or 0)
    if abs(fv - ft) > 1e-5 * max(abs(ft), 1.0):  # printed values may be rounded
        warnings.append(f"{r['config']}: vkebm counts {r.get('flops_per_image_step')} FLOPs per image-step, torch {t.get('flops_per_image_step')}")
devices = sorted({r.get("device", "?") for r in vk + th})
print()
for d in devices:
    print("device:", d)
print("ratio = vkebm / torch image-steps per second (higher is better for vkebm)")
for w in sorted(set(warnings)):
    print("warning:", w)
PYEOF
