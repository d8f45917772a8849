#!/usr/bin/env bash
# hostile_inputs.sh: inputs that are not what they claim (issue 11, items 3 and 7). A FIFO given
# as a model file (in --models and alone), a checkpoint, a frozen model, --init, or named by a
# PNG's vkebm:init chunk is refused at once (every reader opens non-blocking and checks the
# file type before reading) instead of hanging; a 1 GB sparse "model" is refused from its
# 8-byte header, not read whole first.
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
echo "hostile_inputs: ok"
