#!/usr/bin/env bash
# fuzz_seeds.sh: regenerates the committed seed corpus of the fuzz targets (tests/fuzz/corpus/)
# with a built vkebm: valid files of every kind, and the hostile inputs of docs/reliability.md
# (a model header asking for 9 GB, checkpoints whose replay counters divided by zero or read past the
# buffer, a --from PNG whose expression was cut at 4095 bytes, one with two expressions).
# usage: tools/fuzz_seeds.sh [BUILD_DIR]   (default build/)
set -euo pipefail
cd "$(dirname "$0")/.."
V="$PWD/${1:-build}/vkebm"
C=tests/fuzz/corpus
rm -rf "$C" && mkdir -p "$C"/{safetensors,png,from,checkpoint}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export VKEBM_THREADS=1
"$V" train --concept color --config tiny --size 8 --batch 2 --langevin-steps 2 --buffer 4 --steps 3 \
  --backend cpu -q -o "$T/color.safetensors"
cp "$T/color.safetensors" "$C/safetensors/model.safetensors"
cp "$T/color.ckpt.safetensors" "$C/checkpoint/valid.ckpt"
"${1:-build}/test_safetensors" --write-sample "$C/safetensors/interop.safetensors"
"$V" sample --analytic --expr "shape=cube AND NOT color=red" -n 1 --steps 2 --resolution 8 --seed 1 \
  --quiet -o "$C/png/recipe.png"
python3 - "$C" "$T" <<'PY'
import json, struct, sys, zlib
C, T = sys.argv[1], sys.argv[2]

def st_read(path):
    b = open(path, "rb").read()
    n, = struct.unpack("<Q", b[:8])
    return json.loads(b[8:8 + n]), bytearray(b[8 + n:])

def st_write(path, header, data):
    header.get("__metadata__", {}).pop("checksum", None)  # files without one still load
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + bytes(data))

# the 387-byte model whose header asks for a 2.3 G-weight network (docs/reliability.md)
meta = {"format": "vkebm-model", "format_version": "1", "resolution": "1", "in_channels": "3",
        "base_width": "1024", "blocks": "4,4,4,4,4,4,4,4", "label_dim": "1", "spectral_norm": "0",
        "concept": "color", "label_kind": "vector", "label_names": "a", "label_min": "-1",
        "label_max": "1", "step": "0", "seed": "0"}
st_write(f"{C}/safetensors/bomb.safetensors", {"__metadata__": meta}, b"")

# checkpoints with crafted train.state counters (docs/reliability.md)
header, data = st_read(f"{C}/checkpoint/valid.ckpt")
b, e = header["extra.train.state"]["data_offsets"]
for name, edits in {"count_2_32": {17: 0.0, 18: 256.0}, "count_2_31": {18: 128.0},
                    "count_1000": {17: 1000.0}, "chain_init_7": {21: 7.0},
                    "buffer_1e7": {12: 1e7}}.items():
    d = bytearray(data)
    for i, v in edits.items():
        d[b + 4 * i:b + 4 * i + 4] = struct.pack("<f", v)
    st_write(f"{C}/checkpoint/{name}.ckpt", json.loads(json.dumps(header)), d)

# --from PNGs: an expression past 4095 bytes, and two expressions (docs/reliability.md)
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
def with_text(src, dst, key, value, dup=False):
    b, out, pos = open(src, "rb").read(), [], 8
    out.append(b[:8])
    while pos < len(b):
        n, = struct.unpack(">I", b[pos:pos + 4]); t = b[pos + 4:pos + 8]; d = b[pos + 8:pos + 8 + n]
        pos += 12 + n
        if t == b"tEXt" and d.split(b"\0")[0] == key and not dup:
            d = key + b"\0" + value
        if t == b"IEND" and dup:
            out.append(chunk(b"tEXt", key + b"\0" + value))
        out.append(chunk(t, d))
    open(dst, "wb").write(b"".join(out))
src = f"{C}/png/recipe.png"
with_text(src, f"{C}/png/long_expr.png", b"vkebm:expr", b"shape=cube" + b" " * 4100 + b"AND NOT color=red")
with_text(src, f"{C}/png/two_exprs.png", b"vkebm:expr", b"color=blue", dup=True)
with_text(src, f"{C}/png/n_65536.png", b"vkebm:n", b"65536")
PY
cp "$C"/png/* "$C/from/"
ls -l "$C"/*
