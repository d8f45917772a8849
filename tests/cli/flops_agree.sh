#!/usr/bin/env bash
# flops_agree.sh: the PyTorch benchmark (tools/bench_torch.py) and vkebm count the same network
# and the same FLOPs: for every preset, the preset table in the script gives the configuration
# vkebm's ebm_net_config_preset builds (read back from an exported model file by
# `vkebm inspect --json`), and flops_per_image_step agrees. Needs only python3.
set -u
command -v python3 >/dev/null || { echo "no python3: skipping"; exit 77; }
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
for preset in tiny default32 paper64; do
  mkdir -p "$T/$preset"
  "$BUILD/test_net_export" --export "$T/$preset" "$preset" || { echo "FAIL: export $preset"; exit 1; }
  "$VKEBM" inspect --json "$T/$preset/model.safetensors" > "$T/$preset/inspect.json" || { echo "FAIL: inspect"; exit 1; }
  python3 "$SRC/tools/bench_torch.py" --flops-only --configs "$preset" > "$T/$preset/torch.json" || exit 1
  python3 - "$T/$preset/inspect.json" "$T/$preset/torch.json" "$preset" <<'PYEOF' || exit 1
import json, sys
vk = json.load(open(sys.argv[1]))
th = json.loads(open(sys.argv[2]).readline())
meta, model = vk["metadata"], vk["model"]
same_cfg = (int(meta["resolution"]), int(meta["base_width"]), meta["blocks"]) == \
           (th["resolution"], th["width"], th["blocks"])
same_flops = int(model["flops_per_image_step"]) == th["flops_per_image_step"]
print(f"{sys.argv[3]}: vkebm {model['config']} {int(model['flops_per_image_step'])} FLOPs/image-step; "
      f"torch R={th['resolution']} W={th['width']} blocks={th['blocks']} {th['flops_per_image_step']}")
if not (same_cfg and same_flops):
    print("FAIL: " + ("preset tables differ" if not same_cfg else "FLOP counts differ"))
    sys.exit(1)
PYEOF
done
echo "flops agree: ok"
