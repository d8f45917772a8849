#!/usr/bin/env python3
"""results.py: the tables and the plot of the experiment scripts (tools/experiments/*.sh).

Standard library only (no numpy, no matplotlib: neither is needed to add up a few JSON files or
to draw one line chart).

  results.py row --csv T.csv --md T.md --key stage=2 --set data=continual-shape \
                 --set model=composed --concepts pos,shape,color JSON...
      Reads the `vkebm eval --json` outputs of one (stage, model), averages them (strict,
      unverified, faithful; per concept the satisfied share and the judge's reading alone of
      every term of that concept) and appends one row to T.csv (the header is written with the
      first row; a row with the same key and model replaces the old one), then rewrites T.md
      from T.csv.
  results.py plot --csv T.csv --png P.png --key ratio --title TEXT
      Accuracy against the key column, one line per model: strict (solid) and unverified
      (dashed), as a PNG.
"""
import argparse
import csv
import json
import os
import struct
import sys
import zlib

CONCEPT_OF_TERM = {"pos": "pos", "position": "pos", "shape": "shape", "color": "color",
                   "colour": "color", "size": "size"}
CONCEPT_TITLE = {"pos": "position", "shape": "shape", "color": "colour", "size": "size"}


def fail(msg):
    sys.stderr.write("results.py: %s\n" % msg)
    sys.exit(1)


def term_concept(term):
    name = term.split("=", 1)[0].strip()
    if name.startswith("NOT"):
        return None
    return CONCEPT_OF_TERM.get(name)


def pct(v):
    return "-" if v == "" else "%.1f %%" % (100 * float(v))


def row_cmd(a):
    concepts = [c for c in a.concepts.split(",") if c]
    evals = []
    for path in a.json:
        try:
            with open(path) as f:
                evals.append(json.load(f))
        except (OSError, ValueError) as e:
            fail("%s: %s" % (path, e))
    if not evals:
        fail("no evaluations for the row")
    mean = lambda xs: sum(xs) / len(xs) if xs else ""
    key, keyval = a.key.split("=", 1)
    row = {key: keyval}
    for kv in a.set or []:
        k, v = kv.split("=", 1)
        row[k] = v
    row["expressions"] = str(len(evals))
    row["samples"] = str(sum(e["n"] for e in evals))
    row["strict"] = "%.5f" % mean([e["strict"] for e in evals])
    row["unverified"] = "%.5f" % mean([e["read_strict"] for e in evals])
    row["faithful"] = "%.5f" % mean([e["faithful"] for e in evals])
    for c in concepts:
        sat = [t["satisfied"] for e in evals for t in e["terms"] if term_concept(t["term"]) == c]
        unv = [t["unverified"] for e in evals for t in e["terms"] if term_concept(t["term"]) == c]
        row[c] = "" if not sat else "%.5f" % mean(sat)
        row[c + "_unverified"] = "" if not unv else "%.5f" % mean(unv)
    row["scored"] = " ; ".join(e["expr"] for e in evals)
    rows = []
    if os.path.exists(a.csv):
        with open(a.csv, newline="") as f:
            rows = [r for r in csv.DictReader(f)
                    if not (r[key] == row[key] and r.get("model") == row.get("model"))]
    fields = list(row.keys())
    for r in rows:
        for k in r:
            if k not in fields:
                fields.append(k)
    rows.append(row)
    rows.sort(key=lambda r: (float(r[key]), r.get("model", "")))
    tmp = a.csv + ".tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, restval="")
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, a.csv)
    write_md(a.md, rows, key, concepts, a.title)


def write_md(path, rows, key, concepts, title):
    lines = []
    if title:
        lines += [title, ""]
    extra = [k for k in ("data", "model", "iterations", "train_s") if k in rows[0]]
    names = {"train_s": "train (s)"}
    head = [key] + [names.get(k, k) for k in extra] + ["expressions", "strict", "unverified", "faithful"]
    head += ["%s (unverified)" % CONCEPT_TITLE.get(c, c) for c in concepts]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join("---" if i < 1 + len(extra) else "---:" for i in range(len(head))) + "|")
    for r in rows:
        cells = [r[key]] + [r.get(k, "") for k in extra]
        cells += [r["expressions"], pct(r["strict"]), pct(r["unverified"]), pct(r["faithful"])]
        for c in concepts:
            v, u = r.get(c, ""), r.get(c + "_unverified", "")
            cells.append("-" if v == "" else "%s (%s)" % (pct(v), pct(u)))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("strict: faithful samples that satisfy the whole expression (docs/judge.md); "
                 "unverified: what the judge's readings alone would score; per concept: the share "
                 "of its terms satisfied by faithful samples (by the readings alone in brackets). "
                 "Means over the expressions of the row.")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


# ---- the plot ----------------------------------------------------------------------------------
# A 5x7 bitmap font: enough for numbers, axis titles and a legend.
FONT = {
    "0": ["01110", "10001", "10011", "10101", "11001", "10001", "01110"],
    "1": ["00100", "01100", "00100", "00100", "00100", "00100", "01110"],
    "2": ["01110", "10001", "00001", "00010", "00100", "01000", "11111"],
    "3": ["11111", "00010", "00100", "00010", "00001", "10001", "01110"],
    "4": ["00010", "00110", "01010", "10010", "11111", "00010", "00010"],
    "5": ["11111", "10000", "11110", "00001", "00001", "10001", "01110"],
    "6": ["00110", "01000", "10000", "11110", "10001", "10001", "01110"],
    "7": ["11111", "00001", "00010", "00100", "01000", "01000", "01000"],
    "8": ["01110", "10001", "10001", "01110", "10001", "10001", "01110"],
    "9": ["01110", "10001", "10001", "01111", "00001", "00010", "01100"],
    "A": ["01110", "10001", "10001", "11111", "10001", "10001", "10001"],
    "B": ["11110", "10001", "10001", "11110", "10001", "10001", "11110"],
    "C": ["01110", "10001", "10000", "10000", "10000", "10001", "01110"],
    "D": ["11100", "10010", "10001", "10001", "10001", "10010", "11100"],
    "E": ["11111", "10000", "10000", "11110", "10000", "10000", "11111"],
    "F": ["11111", "10000", "10000", "11110", "10000", "10000", "10000"],
    "G": ["01110", "10001", "10000", "10111", "10001", "10001", "01111"],
    "H": ["10001", "10001", "10001", "11111", "10001", "10001", "10001"],
    "I": ["01110", "00100", "00100", "00100", "00100", "00100", "01110"],
    "J": ["00111", "00010", "00010", "00010", "00010", "10010", "01100"],
    "K": ["10001", "10010", "10100", "11000", "10100", "10010", "10001"],
    "L": ["10000", "10000", "10000", "10000", "10000", "10000", "11111"],
    "M": ["10001", "11011", "10101", "10101", "10001", "10001", "10001"],
    "N": ["10001", "10001", "11001", "10101", "10011", "10001", "10001"],
    "O": ["01110", "10001", "10001", "10001", "10001", "10001", "01110"],
    "P": ["11110", "10001", "10001", "11110", "10000", "10000", "10000"],
    "Q": ["01110", "10001", "10001", "10001", "10101", "10010", "01101"],
    "R": ["11110", "10001", "10001", "11110", "10100", "10010", "10001"],
    "S": ["01111", "10000", "10000", "01110", "00001", "00001", "11110"],
    "T": ["11111", "00100", "00100", "00100", "00100", "00100", "00100"],
    "U": ["10001", "10001", "10001", "10001", "10001", "10001", "01110"],
    "V": ["10001", "10001", "10001", "10001", "10001", "01010", "00100"],
    "W": ["10001", "10001", "10001", "10101", "10101", "10101", "01010"],
    "X": ["10001", "10001", "01010", "00100", "01010", "10001", "10001"],
    "Y": ["10001", "10001", "10001", "01010", "00100", "00100", "00100"],
    "Z": ["11111", "00001", "00010", "00100", "01000", "10000", "11111"],
    ".": ["00000", "00000", "00000", "00000", "00000", "01100", "01100"],
    ",": ["00000", "00000", "00000", "00000", "01100", "00100", "01000"],
    ":": ["00000", "01100", "01100", "00000", "01100", "01100", "00000"],
    "%": ["11000", "11001", "00010", "00100", "01000", "10011", "00011"],
    "-": ["00000", "00000", "00000", "11111", "00000", "00000", "00000"],
    "(": ["00010", "00100", "01000", "01000", "01000", "00100", "00010"],
    ")": ["01000", "00100", "00010", "00010", "00010", "00100", "01000"],
    "=": ["00000", "00000", "11111", "00000", "11111", "00000", "00000"],
    "/": ["00000", "00001", "00010", "00100", "01000", "10000", "00000"],
    " ": ["00000"] * 7,
}


class Canvas:
    def __init__(self, w, h):
        self.w, self.h = w, h
        self.px = bytearray([255] * (w * h * 3))

    def set(self, x, y, c):
        if 0 <= x < self.w and 0 <= y < self.h:
            i = (y * self.w + x) * 3
            self.px[i:i + 3] = bytes(c)

    def rect(self, x0, y0, x1, y1, c):
        for y in range(y0, y1):
            for x in range(x0, x1):
                self.set(x, y, c)

    def line(self, x0, y0, x1, y1, c, width=1, dash=0):
        n = max(abs(x1 - x0), abs(y1 - y0), 1)
        for i in range(n + 1):
            if dash and (i // dash) % 2:
                continue
            x = round(x0 + (x1 - x0) * i / n)
            y = round(y0 + (y1 - y0) * i / n)
            for dy in range(-(width // 2), width - width // 2):
                for dx in range(-(width // 2), width - width // 2):
                    self.set(x + dx, y + dy, c)

    def text(self, x, y, s, c, scale=1):
        for ch in s.upper():
            g = FONT.get(ch, FONT[" "])
            for r, bits in enumerate(g):
                for k, b in enumerate(bits):
                    if b == "1":
                        self.rect(x + k * scale, y + r * scale, x + (k + 1) * scale,
                                  y + (r + 1) * scale, c)
            x += 6 * scale
        return x

    def png(self, path):
        raw = b"".join(b"\x00" + bytes(self.px[y * self.w * 3:(y + 1) * self.w * 3])
                       for y in range(self.h))
        chunk = lambda t, d: (struct.pack(">I", len(d)) + t + d +
                              struct.pack(">I", zlib.crc32(t + d) & 0xffffffff))
        data = (b"\x89PNG\r\n\x1a\n" +
                chunk(b"IHDR", struct.pack(">IIBBBBB", self.w, self.h, 8, 2, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)


COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189)]


def plot_cmd(a):
    with open(a.csv, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        fail("%s has no rows" % a.csv)
    models = []
    for r in rows:
        if r["model"] not in models:
            models.append(r["model"])
    xs = sorted({float(r[a.key]) for r in rows})
    W, H = 560, 380
    L, R, T, B = 64, 20, 40, 70
    cv = Canvas(W, H)
    pw, ph = W - L - R, H - T - B
    x_lo, x_hi = 0.0, 1.0
    X = lambda v: L + round((v - x_lo) / (x_hi - x_lo) * pw)
    Y = lambda v: T + ph - round(v * ph)
    grey, black = (200, 200, 200), (0, 0, 0)
    for k in range(0, 11, 2):  # grid and y labels, 0..100 %
        y = Y(k / 10)
        cv.line(L, y, L + pw, y, grey)
        cv.text(L - 8 - 6 * len("%d%%" % (k * 10)), y - 3, "%d%%" % (k * 10), black)
    for k in range(0, 11, 2):
        x = X(k / 10)
        cv.line(x, T + ph, x, T + ph + 4, black)
        cv.text(x - 9, T + ph + 8, "%.1f" % (k / 10), black)
    cv.line(L, T, L, T + ph, black)
    cv.line(L, T + ph, L + pw, T + ph, black)
    cv.text(L + pw // 2 - 6 * len(a.xlabel) // 2, T + ph + 22, a.xlabel, black)
    cv.text(L, 12, a.title, black, 2 if 12 * len(a.title) < W - L else 1)
    ly = H - 22
    lx = L
    for i, m in enumerate(models):
        c = COLOURS[i % len(COLOURS)]
        pts = {}
        for r in rows:
            if r["model"] == m:
                pts[float(r[a.key])] = (float(r["strict"]), float(r["unverified"]))
        for which, dash in ((1, 4), (0, 0)):  # unverified dashed under, strict solid over
            seq = [(X(x), Y(pts[x][which])) for x in xs if x in pts]
            for (x0, y0), (x1, y1) in zip(seq, seq[1:]):
                cv.line(x0, y0, x1, y1, c, width=2, dash=dash)
            for x, y in seq:
                cv.rect(x - 3, y - 3, x + 4, y + 4, c)
        cv.line(lx, ly + 3, lx + 18, ly + 3, c, width=2)
        lx = cv.text(lx + 24, ly, "%s strict" % m, c) + 10
        cv.line(lx, ly + 3, lx + 18, ly + 3, c, width=2, dash=4)
        lx = cv.text(lx + 24, ly, "unverified", c) + 20
    cv.png(a.png)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("row")
    r.add_argument("--csv", required=True)
    r.add_argument("--md", required=True)
    r.add_argument("--key", required=True, help="NAME=VALUE: the row's key column (numeric)")
    r.add_argument("--set", action="append", help="NAME=VALUE: another column")
    r.add_argument("--concepts", required=True)
    r.add_argument("--title", default="")
    r.add_argument("json", nargs="+")
    q = sub.add_parser("plot")
    q.add_argument("--csv", required=True)
    q.add_argument("--png", required=True)
    q.add_argument("--key", required=True)
    q.add_argument("--xlabel", default="")
    q.add_argument("--title", default="")
    a = p.parse_args()
    row_cmd(a) if a.cmd == "row" else plot_cmd(a)


if __name__ == "__main__":
    main()
