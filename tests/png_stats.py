#!/usr/bin/env python3
"""png_stats.py FILE [X Y W H]: a dependency-free PNG reader for the viewer's shell tests
(tests/cli/view_*.sh). Prints `size W H`, `distinct N` (distinct colours, in the optional
rectangle), `lit F` (fraction of pixels brighter than 40 in some channel) and one `text KEY=VALUE`
line per tEXt chunk. 8-bit RGB/RGBA, non-interlaced: what vkebm writes."""
import struct
import sys
import zlib


def read_png(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        sys.exit(f"{path}: not a PNG")
    pos, idat, text = 8, b"", {}
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or ctype not in (2, 6) or interlace:
                sys.exit(f"{path}: unsupported PNG (depth {depth}, colour type {ctype})")
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        elif kind == b"tEXt":
            k, v = body.split(b"\0", 1)
            text[k.decode("latin-1")] = v.decode("latin-1")
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows, text


def main():
    w, h, bpp, rows, text = read_png(sys.argv[1])
    x0, y0, rw, rh = (int(v) for v in sys.argv[2:6]) if len(sys.argv) >= 6 else (0, 0, w, h)
    colours, lit = set(), 0
    for y in range(y0, min(h, y0 + rh)):
        r = rows[y]
        for x in range(x0, min(w, x0 + rw)):
            px = r[x * bpp:x * bpp + 3]
            colours.add(px)
            lit += max(px) > 40
    print(f"size {w} {h}")
    print(f"distinct {len(colours)}")
    print(f"lit {lit / max(1, rw * rh):.4f}")
    for k, v in text.items():
        print(f"text {k}={v}")


main()
