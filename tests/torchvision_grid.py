#!/usr/bin/env python3
"""torchvision_grid.py DIR: vkebm's grids (test_image --write-grids DIR) must equal, pixel for
pixel, torchvision.utils.save_image of the same float images with the same nrow/padding/pad_value."""
import sys

import numpy as np
import torch
import torchvision.utils
from PIL import Image

GRIDS = [("grid_a.png", 5, 6, 4, 3, 2, 0.3), ("grid_b.png", 1, 5, 3, 8, 2, 0.0),
         ("grid_c.png", 7, 3, 5, 8, 1, 1.0), ("grid_d.png", 9, 4, 4, 2, 0, 0.5)]


def images(n, w, h):
    k = np.arange(n)[:, None, None]
    c = np.arange(3)[None, :, None]
    i = np.arange(w * h)[None, None, :]
    m = ((k * 97 + c * 31 + i * 7) % 301).astype(np.float32)
    return (m / np.float32(200) - np.float32(0.2)).reshape(n, 3, h, w)


def main(d):
    bad = 0
    for name, n, w, h, nrow, padding, pad_value in GRIDS:
        ours = np.asarray(Image.open(f"{d}/{name}").convert("RGB"))
        ref_path = f"{d}/ref_{name}"
        torchvision.utils.save_image(torch.from_numpy(images(n, w, h)), ref_path, nrow=nrow,
                                     padding=padding, pad_value=pad_value)
        ref = np.asarray(Image.open(ref_path).convert("RGB"))
        if ours.shape != ref.shape:
            print(f"{name}: shape {ours.shape}, torchvision {ref.shape}")
            bad += 1
        elif not np.array_equal(ours, ref):
            diff = np.argwhere(ours != ref)
            print(f"{name}: {len(diff)} bytes differ, first at {tuple(diff[0])}: "
                  f"{ours[tuple(diff[0])]} vs {ref[tuple(diff[0])]}")
            bad += 1
        else:
            print(f"{name}: {ours.shape[1]}x{ours.shape[0]} identical to torchvision")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
