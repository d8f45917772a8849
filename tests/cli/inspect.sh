#!/usr/bin/env bash
# inspect.sh: `vkebm inspect` exit codes and messages: --help 0, bad flag 2, no file 2,
# missing file 1, corrupt files 1 with exactly one line on stderr, a good file 0.
set -u
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
CLI_COMMAND=inspect

expect 0 "--help" -- --help
grep -q "usage: vkebm inspect" "$T/out" || fail "--help text not on stdout"
expect 2 "bad flag" -- --frobnicate x
expect 2 "no file" --
expect 2 "two files" -- a b
expect 1 "missing file" -- "$T/nope.safetensors"
[ "$(wc -l <"$T/err")" -eq 1 ] || fail "missing file: not one line"

printf 'abc' > "$T/short"
printf '\x10\x00\x00\x00\x00\x00\x00\x00{"a": 1}        ' > "$T/entry"
printf '\x08\x00\x00\x00\x00\x00\x00\x00{"a":1,,' > "$T/json"
printf '\xff\xff\xff\xff\x00\x00\x00\x00{}' > "$T/hlen"
head -c 100 /dev/urandom > "$T/random"
for f in short entry json hlen random; do
  expect 1 "corrupt $f" -- "$T/$f"
  [ "$(wc -l <"$T/err")" -eq 1 ] || fail "corrupt $f: not one line: $(cat "$T/err")"
  grep -q "^vkebm inspect: $T/$f: " "$T/err" || fail "corrupt $f: message lacks the path: $(cat "$T/err")"
  [ ! -s "$T/out" ] || fail "corrupt $f: printed to stdout"
  echo "corrupt $f -> $(cat "$T/err")"
done

"$BUILD/test_safetensors" --write-sample "$T/ok.safetensors" || fail "writing the sample"
expect 0 "good file" -- "$T/ok.safetensors"
grep -q "format = vkebm-interop-sample" "$T/out" || fail "metadata missing: $(cat "$T/out")"
grep -Eq "^  a +F32 +\[2, 3, 4\] +24 +-2.875 +2.875 +0" "$T/out" || fail "row for a: $(cat "$T/out")"
grep -q "total: 40 values in 3 tensors, 160 bytes" "$T/out" || fail "totals"
expect 0 "good file --json" -- --json "$T/ok.safetensors"
grep -q '"total_values": 40' "$T/out" || fail "json totals"
# A vkebm model file gets a model line; a file claiming to be one but lacking its metadata is
# still shown, with a warning on stderr.
if [ -x "$BUILD/test_net_export" ]; then
  "$BUILD/test_net_export" --export "$T" tiny || fail "exporting a model"
  expect 0 "model file" -- "$T/model.safetensors"
  grep -q "^model: R=8 W=4 blocks=1d,2,2d L=3 sn=1, concept unnamed (vector labels), [0-9]* parameters, 0.1244 MFLOP per forward pass" "$T/out" ||
    fail "model line: $(head -2 "$T/out")"
  expect 0 "model file --json" -- --json "$T/model.safetensors"
  grep -q '"flops_per_image_step": 248864' "$T/out" || fail "json model flops"
fi
printf '\x30\x00\x00\x00\x00\x00\x00\x00{"__metadata__":{"format":"vkebm-model"}}       ' > "$T/fake_model"
expect 0 "model lacking metadata" -- "$T/fake_model"
grep -q "warning: not a loadable model: .*lacks" "$T/err" || fail "no warning: $(cat "$T/err")"
# PNGs: size and text chunks; a damaged PNG is one line and exit 1.
if [ -x "$BUILD/test_image" ]; then
  "$BUILD/test_image" --write-grids "$T" || fail "writing grids"
  expect 0 "png" -- "$T/grid_a.png"
  grep -q "^image: 26x14 PNG" "$T/out" || fail "png size: $(cat "$T/out")"
  grep -q "^  expression = red AND (cube OR sphere)" "$T/out" || fail "png text: $(cat "$T/out")"
  grep -q "^  Software = vkebm " "$T/out" || fail "png Software chunk"
  expect 0 "png --json" -- --json "$T/grid_a.png"
  grep -q '"seed": "42"' "$T/out" || fail "png json text"
  head -c 60 "$T/grid_a.png" > "$T/cut.png"
  expect 1 "truncated png" -- "$T/cut.png"
  [ "$(wc -l <"$T/err")" -eq 1 ] || fail "truncated png: not one line"
  echo "truncated png -> $(cat "$T/err")"
fi
echo "inspect: ok"
