#!/usr/bin/env python3
"""st_compare.py: how far apart two vkebm safetensors files are, tensor by tensor (numpy only).

  st_compare.py A B [--atol X] [--differ Y] [--skip NAME]... [--quiet]

Prints the largest absolute difference of each tensor and of all of them. Exit 0 when both files
hold the same tensors with the same shapes and the largest difference is <= X (default 0: the
same bits), and, with --differ Y, it is also > Y (a check that the comparison can fail); else 1
with a message. --skip leaves a tensor out (e.g. replay.images, compared apart). Used by
tests/cli/mpi.sh.
"""
import json
import struct
import sys

import numpy as np


def read(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    header.pop("__metadata__", None)
    data = blob[8 + n:]
    out = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        out[name] = np.frombuffer(data, dtype="<f4", count=(end - b) // 4, offset=b).reshape(e["shape"])
    return out


def main(argv):
    args, atol, differ, skip, quiet = [], 0.0, None, set(), False
    it = iter(argv)
    for a in it:
        if a == "--atol":
            atol = float(next(it))
        elif a == "--differ":
            differ = float(next(it))
        elif a == "--skip":
            skip.add(next(it))
        elif a == "--quiet":
            quiet = True
        else:
            args.append(a)
    if len(args) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    try:
        a, b = (read(p) for p in args)
    except (OSError, ValueError) as e:
        print(f"st_compare: {e}", file=sys.stderr)
        return 1
    names_a, names_b = set(a) - skip, set(b) - skip
    if names_a != names_b:
        print(f"st_compare: tensors differ: only in {args[0]}: {sorted(names_a - names_b)}, "
              f"only in {args[1]}: {sorted(names_b - names_a)}", file=sys.stderr)
        return 1
    worst, worst_name = 0.0, ""
    for name in sorted(names_a):
        x, y = a[name].astype(np.float64), b[name].astype(np.float64)
        if x.shape != y.shape:
            print(f"st_compare: {name}: shape {x.shape} vs {y.shape}", file=sys.stderr)
            return 1
        d = float(np.max(np.abs(x - y))) if x.size else 0.0
        if not quiet:
            print(f"  {name:32s} max |diff| {d:.3g}")
        if d > worst or not worst_name:
            worst, worst_name = d, name
    print(f"st_compare: {args[0]} vs {args[1]}: largest |diff| {worst:.3g} ({worst_name}), "
          f"tolerance {atol:g}" + (f", must exceed {differ:g}" if differ is not None else ""))
    if not worst <= atol:
        print(f"st_compare: {worst:.3g} in {worst_name} is over the tolerance {atol:g}", file=sys.stderr)
        return 1
    if differ is not None and not worst > differ:
        print(f"st_compare: the files are within {differ:g} of each other, expected them to differ",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
