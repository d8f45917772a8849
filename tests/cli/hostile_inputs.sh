#!/usr/bin/env bash
# hostile_inputs.sh: inputs that are not what they claim (issue 11, items 3 and 7). A FIFO given
# as a model file (in --models and alone), a checkpoint, a frozen model, --init, or named by a
# PNG's vkebm:init chunk is refused at once (every reader opens non-blocking and checks the
# file type before reading) instead of hanging; a 1 GB sparse "model" is refused from its
# 8-byte header, not read whole first (items 3, 7); a model whose header asks for a huge
# network is refused before anything is allocated, and inspect warns about it (item 4).
# usage: bash hostile_inputs.sh VKEBM_BINARY SOURCE_DIR
set -u
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
cd "$T"
run() { # run CODE WHAT -- ARGS...: like expect, with a 20 s bound (a hang is a failure)
  local want=$1 what=$2
  shift 3
  timeout 20 "$VKEBM" "$@" >"$T/out" 2>"$T/err"
  local rc=$?
  [ "$rc" -eq "$want" ] || fail "$what: exit $rc, want $want ($(cat "$T/err"))"
  [ "$(wc -l <"$T/err")" -le 1 ] || fail "$what: more than one line: $(cat "$T/err")"
}
need_python json "import json"
S=(--analytic --expr color=red -n 1 --steps 2 --resolution 8 --seed 1 --quiet)
mkfifo fifo
mkdir models && mkfifo models/color.safetensors

run 1 "inspect FIFO" -- inspect fifo
grep -q "not a regular file" "$T/err" || fail "inspect FIFO: $(cat "$T/err")"
run 1 "sample --models DIR-WITH-FIFO" -- sample --expr color=red -n 1 --steps 1 --models models --quiet -o x.png
grep -q "not a regular file" "$T/err" || fail "models FIFO: $(cat "$T/err")"
run 1 "train --resume FIFO" -- train --resume fifo -o m.safetensors --backend cpu -q
run 2 "train --frozen FIFO" -- train --concept color --frozen fifo=red -o m.safetensors --config tiny --backend cpu -q
run 1 "sample --init FIFO" -- sample "${S[@]}" --init fifo -o x.png
grep -q "not a regular file" "$T/err" || fail "--init FIFO: $(cat "$T/err")"

run 0 "init image" -- sample "${S[@]}" -o init.png
run 0 "sample --init" -- sample "${S[@]}" --init init.png -o rec.png
rm init.png && mkfifo init.png
run 1 "--from a PNG whose vkebm:init is a FIFO" -- sample --from rec.png -o again.png --quiet
grep -q "not a regular file" "$T/err" || fail "--from init FIFO: $(cat "$T/err")"

# a sparse 1 GB file: refused from its header (0 length, then a bad JSON header), in little
# memory: 400 MB of address space is far less than the file
truncate -s 1G sparse.safetensors
(ulimit -v 400000; run 1 "inspect 1 GB of zeros" -- inspect sparse.safetensors) || exit 1
grep -q "header length is 0" "$T/err" || fail "sparse: $(cat "$T/err")"
printf '\x10\x00\x00\x00\x00\x00\x00\x00{"a": [1, 2, 3]' >sparse2.safetensors
truncate -s 1G sparse2.safetensors
(ulimit -v 400000; run 1 "inspect 1 GB behind a bad header" -- inspect sparse2.safetensors) || exit 1
grep -q "not valid UTF-8 JSON" "$T/err" || fail "sparse header: $(cat "$T/err")"
# a 387-byte model whose header declares a 2.3 G-weight network (resolution 1, width 1024,
# 8 blocks of 4x) and holds no tensors: refused from its header, before a byte is allocated
# (it used to allocate 9 GB); inspect shows it with a warning. A small architecture without
# its tensors is 'missing tensor', also before the network is built.
bomb() { # bomb FILE BASE_WIDTH BLOCKS
  "$PY" - "$@" <<'PY'
import json, struct, sys
meta = {"format": "vkebm-model", "format_version": "1", "resolution": "1", "in_channels": "3",
        "base_width": sys.argv[2], "blocks": sys.argv[3], "label_dim": "1", "spectral_norm": "0",
        "concept": "color", "label_kind": "vector", "label_names": "a", "label_min": "-1",
        "label_max": "1", "step": "0", "seed": "0"}
h = json.dumps({"__metadata__": meta}).encode()
h += b" " * (-len(h) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h)
PY
}
mkdir bombs small
bomb bombs/color.safetensors 1024 4,4,4,4,4,4,4,4
bomb small/color.safetensors 4 1,1
(ulimit -v 1500000
 run 1 "sample with a model that asks for 9 GB" -- sample --expr color=a --models bombs -n 1 --steps 1 --quiet -o x.png) || exit 1
grep -q "weights, more than the" "$T/err" || fail "bomb: $(cat "$T/err")"
[ ! -e x.png ] || fail "bomb: wrote an image"
run 0 "inspect the bomb" -- inspect bombs/color.safetensors
grep -q "warning: not a loadable model: .*weights, more than" "$T/err" || fail "inspect bomb: $(cat "$T/err")"
run 1 "sample with a model without tensors" -- sample --expr color=a --models small -n 1 --steps 1 --quiet -o x.png
grep -q "missing tensor 'stem.weight'" "$T/err" || fail "no tensors: $(cat "$T/err")"
run 0 "inspect a model without tensors" -- inspect small/color.safetensors
grep -q "warning: not a loadable model: .*missing tensor" "$T/err" || fail "inspect no tensors: $(cat "$T/err")"
echo "hostile_inputs: ok"
