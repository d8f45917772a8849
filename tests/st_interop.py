#!/usr/bin/env python3
"""st_interop.py: safetensors interop between vkebm and plain numpy (no safetensors package).

  st_interop.py read-sample PATH         check the file test_safetensors --write-sample wrote
  st_interop.py write PATH               write a file with numpy for `vkebm inspect` to read
  st_interop.py compare PATH JSON        compare `vkebm inspect --json` output with numpy's view

Exit 0 on success, 1 with a message on any mismatch.
"""
import json
import struct
import sys

import numpy as np


def read_safetensors(path):
    """The ten-line numpy reader: u64 header length, JSON header, raw little-endian data."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = blob[8 + n:]
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, e in header.items():
        assert e["dtype"] == "F32", e
        b, end = e["data_offsets"]
        tensors[name] = np.frombuffer(data, dtype="<f4", count=(end - b) // 4, offset=b).reshape(e["shape"])
    return n, header, meta, tensors, len(data)


def write_safetensors(path, tensors, meta):
    """Like the reference writer for one dtype: tensors sorted by name, header space-padded to 8."""
    header = {"__metadata__": meta}
    pos = 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [pos, pos + a.nbytes]}
        pos += a.nbytes
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for name in sorted(tensors):
            f.write(np.ascontiguousarray(tensors[name], dtype="<f4").tobytes())


def crc32c(data):
    """CRC-32C (Castagnoli, reflected polynomial 0x82f63b78), bit by bit: the checksum vkebm
    writes into __metadata__ as crc32c:XXXXXXXX."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def fail(msg):
    print("st_interop: " + msg, file=sys.stderr)
    sys.exit(1)


def read_sample(path):
    if crc32c(b"123456789") != 0xE3069283:
        fail("crc32c check value")
    n, header, meta, t, data_size = read_safetensors(path)
    if (8 + n) % 8:
        fail(f"header length {n}: 8 + header is not a multiple of 8")
    ends = sorted(tuple(e["data_offsets"]) for e in header.values())
    pos = 0
    for b, e in ends:
        if b != pos:
            fail(f"tensors do not tile the data at {b}")
        pos = e
    if pos != data_size:
        fail(f"data is {data_size} bytes, tensors end at {pos}")
    want = {
        "a": ((np.arange(24, dtype=np.float32) - np.float32(11.5)) / np.float32(4)).reshape(2, 3, 4),
        "s": np.array([-2.5], dtype=np.float32),
        "w": (np.arange(15, dtype=np.float32) ** 2).reshape(3, 5),
    }
    if set(t) != set(want):
        fail(f"tensor names {sorted(t)}")
    for k, v in want.items():
        if t[k].shape != v.shape or not np.array_equal(t[k], v):
            fail(f"tensor {k} differs: {t[k]} vs {v}")
    # the checksum over the data bytes, recomputed here independently of vkebm's code
    blob = open(path, "rb").read()[8 + n:]
    want_sum = "crc32c:%08x" % crc32c(blob)
    if meta.get("checksum") != want_sum:
        fail(f"checksum {meta.get('checksum')} != {want_sum}")
    del meta["checksum"]
    if meta != {"format": "vkebm-interop-sample", "note": "written by test_safetensors --write-sample"}:
        fail(f"metadata {meta}")
    print(f"read-sample: {len(t)} tensors and {len(meta)} metadata entries match")


def write(path):
    rng = np.random.default_rng(1234)
    tensors = {
        "stem.weight": rng.standard_normal((8, 3, 3, 3)).astype(np.float32),
        "blocks.0.conv1.weight": rng.uniform(-1, 1, (8, 8, 3, 3)).astype(np.float32),
        "head.bias": np.array([0.25], dtype=np.float32),
        "zero_size": np.zeros((0, 4), dtype=np.float32),
    }
    meta = {"format": "numpy-written", "config": "R=32 W=8", "step": "17"}
    write_safetensors(path, tensors, meta)
    print(f"write: {path}")


def compare(path, inspect_json):
    _, _, meta, t, _ = read_safetensors(path)
    with open(inspect_json) as f:
        got = json.load(f)
    if got["metadata"] != meta:
        fail(f"metadata {got['metadata']} != {meta}")
    if list(got["metadata"]) != sorted(meta):
        fail("metadata not sorted by key")
    rows = {r["name"]: r for r in got["tensors"]}
    if set(rows) != set(t):
        fail(f"tensors {sorted(rows)} != {sorted(t)}")
    total = 0
    for name, a in t.items():
        r = rows[name]
        if r["shape"] != list(a.shape) or r["numel"] != a.size or r["dtype"] != "F32":
            fail(f"{name}: shape/numel/dtype {r}")
        total += a.size
        if a.size == 0:
            if r["min"] is not None or r["max"] is not None:
                fail(f"{name}: empty tensor has stats {r}")
            continue
        a64 = a.astype(np.float64)
        # inspect prints 9 significant digits: enough to round-trip any float32 exactly.
        if np.float32(r["min"]) != a.min() or np.float32(r["max"]) != a.max():
            fail(f"{name}: min/max {r['min']} {r['max']} vs {a.min()} {a.max()}")
        if abs(r["mean"] - a64.mean()) > 1e-7 * max(1.0, abs(a64).max()):
            fail(f"{name}: mean {r['mean']} vs {a64.mean()}")
    if got["total_values"] != total or got["total_bytes"] != 4 * total:
        fail(f"totals {got['total_values']} {got['total_bytes']} vs {total}")
    print(f"compare: inspect agrees with numpy on {len(t)} tensors")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "read-sample":
        read_sample(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "write":
        write(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        compare(sys.argv[2], sys.argv[3])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
