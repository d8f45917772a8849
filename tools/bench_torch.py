#!/usr/bin/env python3
"""bench_torch.py: the PyTorch reference of vkebm's energy network, for speed comparisons.

The network is the one include/vkebm/net.h describes (Du, Li, Mordatch 2020 "CubesNet"):

    h0  = swish(conv3x3(x; 3 -> W))                                 no bias, spectrally normalised
    block k (cin -> cout = W * mult[k], down[k]):
      a   = swish(conv1(h + c.GB1))                                 conv1: cin -> cout
      b   = conv2(a + c.GB2) * (c.G2 + CB2)                         conv2: cout -> cout
      out = swish(avgpool2?(b + bypass(h)))                         bypass: conv3x3 cin -> cout
                                                                    when cin != cout, else h
    e   = head(mean_pool(h_n))                                      linear C -> 1 with bias

It times Langevin image-steps as sampling runs them: forward, autograd dE/dx, then
x <- clip(x + N(0, sigma^2) - eta * dE/dx, 0, 1). Spectral normalisation is applied once per
run (one power iteration, as sampling does with frozen weights), not per step.

FLOP count (the same formula vkebm's `bench` must use; multiply-add = 2 FLOPs):
    conv MACs per image   = sum over every 3x3 conv of  H_out * W_out * C_out * C_in * 9
                            (stem, conv1, conv2, bypass; spatial size is the block's input
                            size: pooling comes after the convs)
    head MACs per image   = C_last
    forward FLOPs         = 2 * (conv MACs + head MACs)
    backward-to-input     = 2 * (conv MACs + head MACs): each conv's input gradient costs the
                            same MACs as its forward, the stem's included because we need dE/dx;
                            no weight gradients are computed
    flops_per_image_step  = forward FLOPs + backward-to-input FLOPs = 4 * (conv MACs + head MACs)
    Elementwise work (swish, label biases and scales, pooling, mean, the update) and the
    label-linear maps (L * C MACs per block) are not counted.

Output: one JSON object per line on stdout:
  {"impl":"torch","backend":"torch-cpu","config":"default32","resolution":32,"batch":16,
   "image_steps_per_s":...,"ms_per_step":...,"flops_per_image_step":...,"gflops":...,"device":"..."}
ms_per_step is the time of one whole Langevin step for the batch.

Usage: /usr/bin/python3 tools/bench_torch.py [--configs default32,paper64] [--batches 1,16]
       [--threads 2] [--min-time 2] [--label-dim 2] [--resolution R --width W --blocks SPEC]
"""
import argparse
import json
import math
import platform
import sys
import time

# ---- presets: mirror ebm_net_config_preset() in src/net/net.c --------------------------------
# name: (resolution, base_width, blocks). Keep this table identical to the C one.
PRESETS = {
    "paper64": (64, 64, "1d,2d,2d,2,4d"),
    "default32": (32, 32, "1d,2d,2d,2"),
    "tiny": (16, 8, "1d,2d"),
}
DEFAULT_LABEL_DIM = 2


def parse_blocks(spec):
    """'1d,2d,2,4d' -> [(1, True), (2, True), (2, False), (4, True)]"""
    out = []
    for part in spec.split(","):
        part = part.strip()
        down = part.endswith("d")
        mult = int(part[:-1] if down else part)
        if mult < 1:
            raise ValueError(f"bad block '{part}'")
        out.append((mult, down))
    return out


def conv_layers(resolution, width, blocks):
    """Every 3x3 conv as (name, cin, cout, spatial size of its output)."""
    layers = [("stem", 3, width, resolution)]
    cin, size = width, resolution
    for k, (mult, down) in enumerate(blocks):
        cout = width * mult
        layers.append((f"blocks.{k}.conv1", cin, cout, size))
        layers.append((f"blocks.{k}.conv2", cout, cout, size))
        if cin != cout:
            layers.append((f"blocks.{k}.bypass", cin, cout, size))
        if down:
            if size % 2:
                raise ValueError(f"resolution {resolution} does not halve {len(blocks)} times")
            size //= 2
        cin = cout
    return layers, cin


def flops(resolution, width, blocks):
    """(forward FLOPs, flops_per_image_step) per image; see the module docstring."""
    layers, c_last = conv_layers(resolution, width, blocks)
    conv_macs = sum(s * s * co * ci * 9 for _, ci, co, s in layers)
    head_macs = c_last
    forward = 2 * (conv_macs + head_macs)
    backward_to_input = 2 * (conv_macs + head_macs)
    return forward, forward + backward_to_input


def build_net(torch, resolution, width, blocks, label_dim, seed):
    """Parameters as plain tensors (names as in vkebm's model file) and a forward function."""
    F = torch.nn.functional
    g = torch.Generator().manual_seed(seed)
    layers, c_last = conv_layers(resolution, width, blocks)
    params = {}
    for name, ci, co, _ in layers:
        bound = math.sqrt(6.0 / (ci * 9))  # Kaiming-uniform, fan_in
        params[name + ".weight"] = (torch.rand(co, ci, 3, 3, generator=g) * 2 - 1) * bound
    cin = width
    for k, (mult, _) in enumerate(blocks):
        cout = width * mult
        # Small random label maps instead of net.h's zeros so the conditioning does real work.
        params[f"blocks.{k}.gb1"] = torch.randn(label_dim, cin, generator=g) * 0.1
        params[f"blocks.{k}.gb2"] = torch.randn(label_dim, cout, generator=g) * 0.1
        params[f"blocks.{k}.g2"] = torch.randn(label_dim, cout, generator=g) * 0.1
        params[f"blocks.{k}.cb2"] = torch.ones(cout)
        cin = cout
    b = 1.0 / math.sqrt(c_last)
    params["head.weight"] = (torch.rand(c_last, generator=g) * 2 - 1) * b
    params["head.bias"] = torch.zeros(1)

    # Spectral norm, once: one power iteration from a fixed u, W / sigma.
    sn = {}
    for name, ci, co, _ in layers:
        w = params[name + ".weight"]
        wm = w.reshape(co, -1)
        u = F.normalize(torch.randn(co, generator=g), dim=0)
        v = F.normalize(wm.t() @ u, dim=0)
        u = F.normalize(wm @ v, dim=0)
        sigma = torch.dot(u, wm @ v)
        sn[name] = (w / sigma).contiguous()

    def swish(t):
        return t * torch.sigmoid(t)

    def bias(c, m):  # [B, L] x [L, C] -> [B, C, 1, 1]
        return (c @ m)[:, :, None, None]

    def forward(x, c):
        h = swish(F.conv2d(x, sn["stem"], padding=1))
        cin = width
        for k, (mult, down) in enumerate(blocks):
            cout = width * mult
            a = swish(F.conv2d(h + bias(c, params[f"blocks.{k}.gb1"]), sn[f"blocks.{k}.conv1"], padding=1))
            bb = F.conv2d(a + bias(c, params[f"blocks.{k}.gb2"]), sn[f"blocks.{k}.conv2"], padding=1)
            bb = bb * (c @ params[f"blocks.{k}.g2"] + params[f"blocks.{k}.cb2"])[:, :, None, None]
            byp = F.conv2d(h, sn[f"blocks.{k}.bypass"], padding=1) if cin != cout else h
            out = bb + byp
            if down:
                out = F.avg_pool2d(out, 2)
            h = swish(out)
            cin = cout
        pooled = h.mean(dim=(2, 3))
        return pooled @ params["head.weight"] + params["head.bias"]

    return forward


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def bench_one(torch, forward, resolution, batch, label_dim, min_time, warmup, seed):
    g = torch.Generator().manual_seed(seed + batch)
    x = torch.rand(batch, 3, resolution, resolution, generator=g)
    c = torch.zeros(batch, label_dim)
    c[torch.arange(batch), torch.arange(batch) % label_dim] = 1.0
    eta, sigma = 100.0, 0.005

    def step(x):
        x = x.detach().requires_grad_(True)
        e = forward(x, c)
        (dx,) = torch.autograd.grad(e.sum(), x)
        with torch.no_grad():
            return (x + sigma * torch.randn(x.shape, generator=g) - eta * dx).clamp_(0.0, 1.0)

    for _ in range(warmup):
        x = step(x)
    steps, t0 = 0, time.perf_counter()
    while True:
        x = step(x)
        steps += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= min_time and steps >= 3:
            break
    if not torch.isfinite(x).all():
        raise RuntimeError("non-finite samples")
    return elapsed / steps


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", default="default32", help="comma-separated preset names, or 'custom'")
    ap.add_argument("--batches", default="1,16", help="comma-separated batch sizes")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-time", type=float, default=2.0, help="seconds timed per measurement")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--label-dim", type=int, default=DEFAULT_LABEL_DIM)
    ap.add_argument("--resolution", type=int, help="custom config: R")
    ap.add_argument("--width", type=int, help="custom config: base width W")
    ap.add_argument("--blocks", help="custom config: e.g. 1d,2d,2d,2,4d")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--flops-only", action="store_true", help="print the FLOP counts and exit")
    args = ap.parse_args()

    configs = {}
    for name in args.configs.split(","):
        if name == "custom":
            if not (args.resolution and args.width and args.blocks):
                ap.error("custom needs --resolution, --width and --blocks")
            configs[name] = (args.resolution, args.width, args.blocks)
        elif name in PRESETS:
            configs[name] = PRESETS[name]
        else:
            ap.error(f"unknown config '{name}' (presets: {', '.join(PRESETS)}, custom)")
    try:
        batches = [int(b) for b in args.batches.split(",")]
    except ValueError:
        ap.error("--batches must be integers")

    if args.flops_only:
        for name, (r, w, spec) in configs.items():
            fwd, step = flops(r, w, parse_blocks(spec))
            print(json.dumps({"config": name, "resolution": r, "width": w, "blocks": spec,
                              "forward_flops": fwd, "flops_per_image_step": step}))
        return 0

    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = f"torch {torch.__version__} cpu, {args.threads} threads, {cpu_name()}"
    for name, (r, w, spec) in configs.items():
        blocks = parse_blocks(spec)
        _, step_flops = flops(r, w, blocks)
        forward = build_net(torch, r, w, blocks, args.label_dim, args.seed)
        for batch in batches:
            sec = bench_one(torch, forward, r, batch, args.label_dim, args.min_time, args.warmup, args.seed)
            ips = batch / sec
            print(json.dumps({"impl": "torch", "backend": "torch-cpu", "config": name, "resolution": r,
                              "batch": batch, "image_steps_per_s": round(ips, 3),
                              "ms_per_step": round(sec * 1e3, 3), "flops_per_image_step": step_flops,
                              "gflops": round(step_flops * ips / 1e9, 3), "device": device}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
