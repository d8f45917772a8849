#!/usr/bin/env bash
# view_headless.sh: `vkebm view --headless`: usage errors exit 2 with one line, a bad concept
# exits 1; the frame loop writes one PNG per frame; with a key script (select term 2 and turn it
# off at frame 4)
# frames before the toggle equal those of a run without it, bit for bit, and frames from the
# toggle on differ; the same script twice gives the same bytes; the overlay frames carry the
# current expression in their metadata; E answers with chain 1's inferred concepts. cpu backend,
# 4 chains of 16x16: a few seconds.
set -u
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
CLI_COMMAND=view

"$VKEBM" view --help >"$T/help" 2>&1 || {
  if grep -q "without SDL2" "$T/help"; then echo "SKIP: built without the viewer"; exit 77; fi
  fail "--help: $(cat "$T/help")"
}
grep -q "usage: vkebm view" "$T/help" || fail "--help text"

# no display: say so and exit 77 (not an invisible window and exit 0)
env -u DISPLAY -u WAYLAND_DISPLAY -u SDL_VIDEODRIVER "$VKEBM" view --expr "color=red" --frames 2 \
  --analytic --backend cpu >"$T/out" 2>"$T/err"
rc=$?
[ $rc -eq 77 ] && grep -q "no display.*--headless" "$T/err" || fail "no display: exit $rc ($(cat "$T/err"))"
expect 2 "no --expr" -- --headless --frames 2 -o "$T/x"
expect 2 "headless without --frames" -- --headless --expr "color=red" -o "$T/x"
expect 2 "bad key script" -- --headless --frames 2 -o "$T/x" --expr "color=red" --keys "3:nokey"
[ "$(wc -l <"$T/err")" -eq 1 ] || fail "bad key script: not one line: $(cat "$T/err")"
grep -q "nokey" "$T/err" || fail "bad key script message: $(cat "$T/err")"
expect 2 "bad expression" -- --headless --frames 2 -o "$T/x" --expr "color=red AND" --backend cpu --quiet
expect 1 "unknown concept" -- --headless --frames 2 -o "$T/x" --expr "colr=red" --backend cpu --quiet
grep -q "colr" "$T/err" || fail "unknown concept message: $(cat "$T/err")"

run() { # run DIR [ARGS...]
  local d=$1
  shift
  "$VKEBM" view --headless --frames 8 -o "$T/$d" -n 4 --resolution 16 --backend cpu --seed 5 \
    --analytic --quiet --expr "color=red AND shape=sphere AND position=(0.5,0.5)" "$@" \
    2>"$T/$d.err" || fail "run $d: exit $? ($(cat "$T/$d.err"))"
  [ "$(ls "$T/$d" | wc -l)" -eq 8 ] || fail "run $d: $(ls "$T/$d" | wc -l) frames, want 8"
}
run plain --grid-only --scale 2
run toggled --grid-only --scale 2 --keys "4:2,t"
run again --grid-only --scale 2 --keys "4:2,t"
for i in 0 1 2 3; do
  f=frame_0000$i.png
  cmp -s "$T/plain/$f" "$T/toggled/$f" || fail "$f differs before the toggle"
done
for i in 4 5 6 7; do
  f=frame_0000$i.png
  cmp -s "$T/plain/$f" "$T/toggled/$f" && fail "$f: toggling term 2 at frame 4 changed nothing"
done
for i in 0 1 2 3 4 5 6 7; do
  cmp -s "$T/toggled/frame_0000$i.png" "$T/again/frame_0000$i.png" || fail "frame $i not reproducible"
done
$PY "$SRC/tests/png_stats.py" "$T/toggled/frame_00007.png" >"$T/stats" || fail "png_stats"
grep -q "^size 76 76$" "$T/stats" || fail "grid-only frame size: $(head -1 "$T/stats")"
d=$(awk '/^distinct/{print $2}' "$T/stats")
[ "$d" -gt 20 ] || fail "grid frame nearly blank: $d colours"
echo "headless grid frames: toggle at frame 4 changes frames 4-7 only; $d colours in the last"

# the full frame: overlay with the expression; the metadata follows the keys
run overlay --keys "2:2,t 5:t,n"
$PY "$SRC/tests/png_stats.py" "$T/overlay/frame_00001.png" >"$T/s1"
$PY "$SRC/tests/png_stats.py" "$T/overlay/frame_00003.png" >"$T/s3"
$PY "$SRC/tests/png_stats.py" "$T/overlay/frame_00006.png" >"$T/s6"
grep -q "^text vkebm:expr=color=red AND shape=sphere AND position=(0.5,0.5)$" "$T/s1" || fail "frame 1 expr: $(grep expr "$T/s1")"
grep -q "^text vkebm:expr=color=red AND position=(0.5,0.5)$" "$T/s3" || fail "frame 3 expr: $(grep expr "$T/s3")"
grep -q "^text vkebm:expr=color=red AND NOT shape=sphere AND position=(0.5,0.5)$" "$T/s6" || fail "frame 6 expr: $(grep expr "$T/s6")"
grep -q "^text vkebm:settings=.*seed=5 chains=4 " "$T/s6" || fail "settings: $(grep settings "$T/s6")"
lit=$(awk '/^lit/{print $2}' "$T/s6")
echo "overlay frames: expression follows the keys; lit fraction $lit"
# learned models (tiny random networks written by test_view): the paper sampler, values from the
# files' label names
BUILD=$(dirname "$VKEBM")
mkdir -p "$T/models"
"$BUILD/test_view" --write-models "$T/models" || fail "writing the tiny models"
"$VKEBM" view --headless --frames 3 -o "$T/learned" -n 4 --backend cpu --quiet --models "$T/models" \
  --expr "color=blue AND shape=sphere" --keys "1:c" 2>"$T/learned.err" || fail "learned: $(cat "$T/learned.err")"
$PY "$SRC/tests/png_stats.py" "$T/learned/frame_00002.png" >"$T/sl" || fail "png_stats"
grep -q "^text vkebm:expr=color=red AND shape=sphere$" "$T/sl" || fail "learned expr: $(grep expr "$T/sl")"
grep -q "^text vkebm:settings=sampler=paper .*models=$T/models " "$T/sl" || fail "learned settings: $(grep settings "$T/sl")"
echo "learned models: paper sampler, C cycles the file's label names"
# E: the sampler side reads chain 1's concepts with the models; the answer reaches the status line
# (and stderr)
"$VKEBM" view --headless --frames 3 -o "$T/infer" -n 4 --backend cpu --models "$T/models" \
  --expr "color=blue AND shape=sphere" --keys "1:e" 2>"$T/infer.err" || fail "E: $(cat "$T/infer.err")"
grep -q "^vkebm view: chain 1: color=[a-z]* ([01]\.[0-9][0-9]) shape=[a-z]* ([01]\.[0-9][0-9])" "$T/infer.err" ||
  fail "E: no inference line: $(cat "$T/infer.err")"
echo "E: $(grep 'chain 1:' "$T/infer.err")"
echo "PASS"
