#!/usr/bin/env bash
# data.sh: `vkebm data`: --help 0; bad spec/values exit 2 with one line listing the valid specs;
# an unwritable output directory exits 1; N PNGs + labels.csv (format line, header, N rows with
# the spec's object count); a contact sheet; same seed -> same bytes, other seed -> other bytes;
# the vulkan backend writes images close to the cpu's (when a Vulkan device exists).
set -u
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
CLI_COMMAND=data

expect 0 "--help" -- --help
grep -q "usage: vkebm data" "$T/out" || fail "--help text not on stdout"
expect 2 "bad spec" -- --spec cubes -n 2 -o "$T/x"
[ "$(wc -l <"$T/err")" -eq 1 ] || fail "bad spec: not one line: $(cat "$T/err")"
grep -q "continual-position" "$T/err" || fail "bad spec: valid specs not listed"
expect 2 "bad multi" -- --spec "multi 9" -n 2 -o "$T/x"
grep -q "multi K" "$T/err" || fail "bad multi: valid specs not listed"
expect 2 "bad ratio" -- --spec "cross-product:2" -n 2 -o "$T/x"
expect 2 "no held-out pairs" -- --spec "cross-product-test 1" -n 2 -o "$T/x"
expect 2 "bad size" -- --spec general -n 2 --size 4 -o "$T/x"
expect 2 "bad count" -- --spec general -n 0 -o "$T/x"
expect 2 "no output" -- --spec general -n 2
expect 2 "no spec" -- -n 2 -o "$T/x"
expect 2 "bad backend" -- --spec general -n 2 -o "$T/x" --backend gpu
touch "$T/file"
expect 1 "unwritable dir" -- --spec general -n 2 -o "$T/file/sub"

expect 0 "multi 3" -- --spec "multi:3" -n 5 --seed 9 --size 32 -o "$T/a" --grid "$T/a.png" -q
for i in 0 1 2 3 4; do [ -s "$T/a/00000$i.png" ] || fail "missing $T/a/00000$i.png"; done
[ -e "$T/a/000005.png" ] && fail "too many images"
[ -s "$T/a.png" ] || fail "no contact sheet"
head -1 "$T/a/labels.csv" | grep -q "^# vkebm scene labels v1; spec=multi:3; seed=9" || fail "labels.csv format line"
sed -n 2p "$T/a/labels.csv" | grep -q "^index,nobj,x0,y0,size0,shape0,colour0,x1,.*colour2$" || fail "labels.csv header"
[ "$(wc -l <"$T/a/labels.csv")" -eq 7 ] || fail "labels.csv rows"
awk -F, 'NR > 2 && (NF != 17 || $2 != 3) { exit 1 }' "$T/a/labels.csv" || fail "labels.csv row shape"

expect 0 "same seed" -- --spec "multi 3" -n 5 --seed 9 --size 32 -o "$T/b" -q
for f in 000000.png 000004.png labels.csv; do cmp -s "$T/a/$f" "$T/b/$f" || fail "same seed, $f differs"; done
expect 0 "other seed" -- --spec "multi 3" -n 5 --seed 10 --size 32 -o "$T/c" -q
cmp -s "$T/a/000000.png" "$T/c/000000.png" && fail "seeds 9 and 10 give the same image"
expect 0 "--first" -- --spec "multi 3" -n 2 --first 3 --seed 9 --size 32 -o "$T/d" -q
cmp -s "$T/a/000003.png" "$T/d/000003.png" || fail "--first 3 does not reproduce image 3"

"$VKEBM" data --spec general -n 3 --seed 4 --size 16 -o "$T/vk" --backend vulkan -q 2>"$T/err"
rc=$?
if [ "$rc" -eq 0 ]; then
  "$VKEBM" data --spec general -n 3 --seed 4 --size 16 -o "$T/cpu" -q || fail "cpu run"
  cmp -s "$T/vk/labels.csv" "$T/cpu/labels.csv" || fail "vulkan labels differ from cpu"
elif [ "$rc" -ne 77 ]; then
  fail "vulkan backend: exit $rc ($(cat "$T/err"))"
fi
echo "data.sh: all checks passed"
