#!/usr/bin/env bash
# from.sh: `sample --from FILE.png` reproduces the recorded run or refuses (issue 11, item 6):
# an expression longer than the recipe buffer is refused, not cut (it ran 'shape=cube AND NOT
# color=red' as 'shape=cube'); a setting recorded twice, an unknown vkebm: setting, and values
# beyond the flags' limits (n 65536, steps 10^7, resolution 1024) are refused with one line.
# Also item 7: --resolution with learned models is refused rather than silently ignored.
# usage: bash from.sh VKEBM_BINARY SOURCE_DIR
set -u
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
need_python zlib "import zlib, struct"
CLI_COMMAND=sample
cd "$T"
# edit KEY VALUE IN OUT [dup]: sets the tEXt chunk KEY to VALUE (dup: adds a second KEY chunk)
edit() {
  "$PY" - "$@" <<'PY'
import struct, sys, zlib
import os
key, value, src, dst = sys.argv[1].encode(), os.fsencode(sys.argv[2]), sys.argv[3], sys.argv[4]
dup = len(sys.argv) > 5
b = open(src, "rb").read()
out, pos, done = [b[:8]], 8, False
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
while pos < len(b):
    n, = struct.unpack(">I", b[pos:pos + 4]); t = b[pos + 4:pos + 8]; d = b[pos + 8:pos + 8 + n]
    pos += 12 + n
    if t == b"tEXt" and d.split(b"\0")[0] == key and not dup:
        d, done = key + b"\0" + value, True
    if t == b"IEND" and not done:
        out.append(chunk(b"tEXt", key + b"\0" + value))
    out.append(chunk(t, d))
open(dst, "wb").write(b"".join(out))
PY
}
expect 0 "a recorded run" -- --analytic --expr "shape=cube AND NOT color=red" -n 2 --steps 3 --resolution 8 --seed 1 --quiet -o a.png
expect 0 "--from reproduces it" -- --from a.png -o b.png --quiet
cmp -s a.png b.png || fail "--from did not reproduce the PNG"

pad=$(printf '%*s' 4100 '')
edit vkebm:expr "shape=cube${pad}AND NOT color=red" a.png long.png
expect 1 "an expression longer than 4095 bytes" -- --from long.png -o x.png --quiet
grep -q "vkebm:expr.*longer than 4095" "$T/err" || fail "long expr: $(cat "$T/err")"
edit vkebm:expr "color=blue" a.png dup.png dup
expect 1 "vkebm:expr twice" -- --from dup.png -o x.png --quiet
grep -q "vkebm:expr appears twice" "$T/err" || fail "duplicate: $(cat "$T/err")"
edit vkebm:temperature "3" a.png unknown.png
expect 1 "an unknown setting" -- --from unknown.png -o x.png --quiet
grep -q "unknown setting vkebm:temperature" "$T/err" || fail "unknown: $(cat "$T/err")"
for kv in "vkebm:n 65536" "vkebm:steps 10000000" "vkebm:resolution 1024" "vkebm:target_accept 5" \
          "vkebm:beta 0" "vkebm:backend gpu"; do
  set -- $kv
  edit "$1" "$2" a.png big.png
  timeout 20 "$VKEBM" sample --from big.png -o x.png --quiet >"$T/out" 2>"$T/err"
  rc=$?
  [ "$rc" -eq 1 ] || fail "$1 = $2: exit $rc, want 1 ($(cat "$T/err"))"
  grep -q "bad value '$2' for $1" "$T/err" || fail "$1 = $2: $(cat "$T/err")"
  [ "$(wc -l <"$T/err")" -eq 1 ] || fail "$1 = $2: more than one line"
done
edit vkebm:expr "$(printf 'color=r\xe9d')" a.png latin.png
expect 2 "a Latin-1 expression" -- --from latin.png -o x.png --quiet
grep -q "found 'é'" "$T/err" || fail "latin-1 expression: $(cat "$T/err")"

# learned models: --resolution would be ignored
expect 2 "--resolution with learned models" -- --expr color=red --models "$SRC/models" --resolution 16 -n 1 --steps 1 --quiet -o x.png
grep -q "resolution applies to the analytic concepts" "$T/err" || fail "--resolution: $(cat "$T/err")"
echo "from: ok"
