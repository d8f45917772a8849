#!/usr/bin/env bash
# view_window.sh: the real window under Xvfb (skipped, 77, without xvfb-run): `vkebm view
# --frames N` opens the window, runs N frames with scripted keys (help overlay, a toggle, a
# screenshot through the S binding), exits 0, and its screenshots are the window's size and not
# blank. cpu backend, 4 chains of 16x16: a few seconds.
set -u
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
command -v xvfb-run >/dev/null || { echo "SKIP: no xvfb-run"; exit 77; }
"$VKEBM" view --help >/dev/null 2>&1 || { echo "SKIP: built without the viewer"; exit 77; }

timeout 120 xvfb-run -a "$VKEBM" view --frames 40 -n 4 --resolution 16 --scale 6 --backend cpu \
  --analytic --expr "color=green AND shape=cube" --keys "5:h 15:h,2,t 30:s" -o "$T" \
  --screenshot "$T/last.png" --stats >"$T/out" 2>"$T/err"
rc=$?
[ "$rc" -eq 0 ] || fail "window run: exit $rc ($(cat "$T/err"))"
grep -q "^frames 40 " "$T/out" || fail "--stats: $(cat "$T/out")"
cat "$T/out"
shots=$(ls "$T"/view_*.png 2>/dev/null | wc -l)
[ "$shots" -eq 1 ] || fail "the S key wrote $shots screenshots, want 1"
for f in "$T/last.png" "$T"/view_*.png; do
  $PY "$SRC/tests/png_stats.py" "$f" >"$T/stats" || fail "png_stats $f"
  # 2x2 grid of 16x16 + padding 2 = 38 px at scale 6 = 228; the panel makes it 560 wide
  grep -q "^size 560 " "$T/stats" || fail "$f: $(head -1 "$T/stats")"
  d=$(awk '/^distinct/{print $2}' "$T/stats")
  lit=$(awk '/^lit/{print $2}' "$T/stats")
  [ "$d" -gt 50 ] || fail "$f looks blank: $d colours"
  grep -q "^text vkebm:expr=color=green$" "$T/stats" || fail "$f expr: $(grep expr "$T/stats")"
  echo "$(basename "$f"): $(head -1 "$T/stats"), $d colours, lit $lit"
done
echo "PASS"
