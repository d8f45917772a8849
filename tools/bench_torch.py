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

--train times one contrastive-divergence iteration instead, as src/train/train.c runs it with
the shipped recipe (tools/train_models.sh): K Langevin steps (default 20, step 10, noise 0.005)
on B negatives under the network with spectral normalisation from this iteration's power
iteration, the energies of B positives and B negatives in one forward pass, the loss
L = mean E+ - mean E- + (mean E+^2 + mean E-^2), backward to every parameter (through the
spectral norm), and an Adam step (lr 5e-4, betas (0, 0.99)). Positives are random images (no
scene renderer here) and the chains start from uniform noise (no replay buffer): vkebm's data
and buffer phases, ~2 % of its iteration (`vkebm bench --train` prints the split), have no
counterpart. Output: {"impl":"torch","kind":"train","config":..,"batch":..,"langevin_steps":..,
"it_per_s":..,"ms_per_it":..,"device":..}.

Usage: /usr/bin/python3 tools/bench_torch.py [--configs default32,paper64] [--batches 1,16]
       [--threads 2] [--min-time 2] [--label-dim 2] [--resolution R --width W --blocks SPEC]
       /usr/bin/python3 tools/bench_torch.py --check DIR   (cross-check against a vkebm model:
       DIR holds model.safetensors and io.safetensors from `test_net_export --export DIR PRESET`;
       energies and dE/dx, dE/dc are recomputed in float64 and compared)
"""
import argparse
import json
import math
import platform
import struct
import sys
import time

# ---- presets: mirror ebm_net_config_preset() in src/net/net.c --------------------------------
# name: (resolution, base_width, blocks). Keep this table identical to the C one.
PRESETS = {
    "paper64": (64, 64, "1d,2d,2d,2,4d"),
    "default32": (32, 32, "1d,2d,2d,2"),
    "small32": (32, 16, "1d,2d,2d,2"),
    "tiny": (8, 4, "1d,2,2d"),
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


def random_params(torch, resolution, width, blocks, label_dim, seed):
    """Parameters as plain tensors named as in vkebm's model file, and random sn_u vectors."""
    g = torch.Generator().manual_seed(seed)
    layers, c_last = conv_layers(resolution, width, blocks)
    params, us = {}, {}
    for name, ci, co, _ in layers:
        bound = math.sqrt(6.0 / (ci * 9))  # Kaiming-uniform, fan_in
        params[name + ".weight"] = (torch.rand(co, ci, 3, 3, generator=g) * 2 - 1) * bound
        us[name + ".weight"] = torch.randn(co, generator=g)
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
    return params, us


def spectral_norm(torch, w, u):
    """One power iteration from u, as ebm_spectral_norm_forward (backend.h):
    v = normalize(W^T u); u' = normalize(W v); sigma = u'^T W v; w_sn = w / sigma,
    normalize(a) = a / (||a|| + 1e-12), W = w viewed as [Co, Ci*9]."""
    wm = w.reshape(w.shape[0], -1)
    v = wm.t() @ u
    v = v / (v.norm() + 1e-12)
    u2 = wm @ v
    u2 = u2 / (u2.norm() + 1e-12)
    sigma = torch.dot(u2, wm @ v)
    return w / sigma  # keeps w's memory format (channels_last when asked)


def make_forward(torch, params, us, width, blocks, sn=True):
    """The energy function E(x, c) -> [B]. Normalised weights are computed here, once."""
    F = torch.nn.functional
    w = {name[:-len(".weight")]: (spectral_norm(torch, t, us[name]) if sn else t)
         for name, t in params.items() if name.endswith(".weight") and t.dim() == 4}

    def swish(t):
        return t * torch.sigmoid(t)

    def bias(c, m):  # [B, L] x [L, C] -> [B, C, 1, 1]
        return (c @ m)[:, :, None, None]

    def forward(x, c):
        h = swish(F.conv2d(x, w["stem"], padding=1))
        cin = width
        for k, (mult, down) in enumerate(blocks):
            cout = width * mult
            a = swish(F.conv2d(h + bias(c, params[f"blocks.{k}.gb1"]), w[f"blocks.{k}.conv1"], padding=1))
            bb = F.conv2d(a + bias(c, params[f"blocks.{k}.gb2"]), w[f"blocks.{k}.conv2"], padding=1)
            bb = bb * (c @ params[f"blocks.{k}.g2"] + params[f"blocks.{k}.cb2"])[:, :, None, None]
            byp = F.conv2d(h, w[f"blocks.{k}.bypass"], padding=1) if cin != cout else h
            out = bb + byp
            if down:
                out = F.avg_pool2d(out, 2)
            h = swish(out)
            cin = cout
        pooled = h.mean(dim=(2, 3))
        return pooled @ params["head.weight"] + params["head.bias"]

    return forward


def read_safetensors(path):
    """Plain numpy reader: u64 header length, JSON header, little-endian F32 data."""
    import numpy as np
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    data = blob[8 + n:]
    out = {}
    for name, e in header.items():
        if e["dtype"] != "F32":
            raise ValueError(f"{path}: {name} is {e['dtype']}, expected F32")
        b, end = e["data_offsets"]
        out[name] = np.frombuffer(data, dtype="<f4", count=(end - b) // 4, offset=b).reshape(e["shape"])
    return meta, out


def check_against_vkebm(torch, d, tol):
    """Load DIR/model.safetensors (a vkebm model file) into this network, evaluate it in
    float64 on DIR/io.safetensors' x and c, and compare energy, dE/dx, dE/dc with vkebm's."""
    meta, tensors = read_safetensors(f"{d}/model.safetensors")
    io_meta, io = read_safetensors(f"{d}/io.safetensors")
    if meta.get("format") != "vkebm-model":
        raise ValueError(f"{d}/model.safetensors is not a vkebm model (format={meta.get('format')})")
    width, blocks = int(meta["base_width"]), parse_blocks(meta["blocks"])
    sn = meta.get("spectral_norm", "1") == "1"
    t64 = {k: torch.from_numpy(v.astype("float64")) for k, v in tensors.items()}
    params = {k: v for k, v in t64.items() if not k.startswith(("sn_u.", "extra."))}
    us = {k[len("sn_u."):]: v for k, v in t64.items() if k.startswith("sn_u.")}
    forward = make_forward(torch, params, us, width, blocks, sn)
    x = torch.from_numpy(io["x"].astype("float64")).requires_grad_(True)
    c = torch.from_numpy(io["c"].astype("float64")).requires_grad_(True)
    e = forward(x, c)
    dx, dc = torch.autograd.grad(e.sum(), (x, c))
    ok = True
    for name, ref in (("energy", e), ("dx", dx), ("dc", dc)):
        got = torch.from_numpy(io[name].astype("float64"))
        ref = ref.detach()
        err = (got - ref).abs()
        scale = ref.abs().max().item()
        worst = err.argmax().item()
        rel = err.max().item() / max(scale, 1e-30)
        good = rel <= tol
        ok &= good
        print(f"{name:6s} max|vkebm - torch| = {err.max().item():.3e} (relative to max|torch| "
              f"{scale:.3e}: {rel:.2e}) worst at {worst}: vkebm {got.flatten()[worst].item():.9g} "
              f"torch {ref.flatten()[worst].item():.9g} {'ok' if good else 'FAIL'}")
    print(f"vkebm {io_meta.get('backend', '?')} backend, {meta['resolution']}x{meta['resolution']} W={width} blocks={meta['blocks']} "
          f"L={meta['label_dim']} sn={int(sn)}: {'agree' if ok else 'DISAGREE'} (tolerance {tol:g})")
    return 0 if ok else 1


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def bench_one(torch, forward, resolution, batch, label_dim, min_time, warmup, seed, channels_last):
    g = torch.Generator().manual_seed(seed + batch)
    x = torch.rand(batch, 3, resolution, resolution, generator=g)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
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


def bench_train(torch, r, width, blocks, label_dim, batch, K, min_time, warmup, seed):
    """Seconds per CD iteration (see --train in the module docstring)."""
    g = torch.Generator().manual_seed(seed + batch)
    params, us = random_params(torch, r, width, blocks, label_dim, seed)
    leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    opt = torch.optim.Adam(leaves.values(), lr=5e-4, betas=(0.0, 0.99), eps=1e-8)
    c = torch.zeros(2 * batch, label_dim)
    c[torch.arange(2 * batch), torch.arange(2 * batch) % label_dim] = 1.0
    eta, sigma = 10.0, 0.005

    def iteration():
        with torch.no_grad():  # one power iteration per weight per iteration, u updated
            for name, t in leaves.items():
                if t.dim() == 4:
                    wm = t.reshape(t.shape[0], -1)
                    v = wm.t() @ us[name]
                    v = v / (v.norm() + 1e-12)
                    u2 = wm @ v
                    us[name] = u2 / (u2.norm() + 1e-12)
        # sampling: frozen weights (no parameter graph)
        frozen = make_forward(torch, {k: v.detach() for k, v in leaves.items()}, us, width, blocks)
        x_pos = torch.rand(batch, 3, r, r, generator=g)
        x = torch.rand(batch, 3, r, r, generator=g)
        for _ in range(K):
            x = x.detach().requires_grad_(True)
            (dx,) = torch.autograd.grad(frozen(x, c[batch:]).sum(), x)
            with torch.no_grad():
                x = (x - eta * dx + sigma * torch.randn(x.shape, generator=g)).clamp_(0.0, 1.0)
        # the parameter pass: w_sn = w / sigma with u, v constant, as vkebm
        train_fwd = make_forward(torch, leaves, us, width, blocks)
        e = train_fwd(torch.cat([x_pos, x.detach()]), c)
        ep, en = e[:batch], e[batch:]
        loss = ep.mean() - en.mean() + (ep.pow(2).mean() + en.pow(2).mean())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss)

    for _ in range(warmup):
        iteration()
    n, t0 = 0, time.perf_counter()
    while True:
        loss = iteration()
        n += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= min_time and n >= 3:
            break
    if not math.isfinite(loss):
        raise RuntimeError("non-finite loss")
    return elapsed / n


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
    ap.add_argument("--channels-last", action="store_true",
                    help="NHWC memory format for images and weights (oneDNN's preferred layout)")
    ap.add_argument("--flops-only", action="store_true", help="print the FLOP counts and exit")
    ap.add_argument("--train", action="store_true",
                    help="time CD training iterations (the shipped recipe) instead of Langevin steps")
    ap.add_argument("--langevin-steps", type=int, default=20, help="--train: K (default 20)")
    ap.add_argument("--check", metavar="DIR", action="append",
                    help="compare with vkebm: DIR/model.safetensors + DIR/io.safetensors "
                         "(written by test_net_export --export DIR PRESET); repeatable")
    ap.add_argument("--tolerance", type=float, default=1e-4,
                    help="--check: max |vkebm - torch| relative to max |torch| (default 1e-4)")
    args = ap.parse_args()

    if args.check:
        import torch
        torch.set_num_threads(args.threads)
        return max(check_against_vkebm(torch, d, args.tolerance) for d in args.check)

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
    layout = ", channels_last" if args.channels_last else ""
    device = f"torch {torch.__version__} cpu, {args.threads} threads{layout}, {cpu_name()}"
    for name, (r, w, spec) in configs.items():
        blocks = parse_blocks(spec)
        _, step_flops = flops(r, w, blocks)
        params, us = random_params(torch, r, w, blocks, args.label_dim, args.seed)
        if args.channels_last:
            params = {k: (v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v)
                      for k, v in params.items()}
        if args.train:
            for batch in batches:
                sec = bench_train(torch, r, w, blocks, args.label_dim, batch, args.langevin_steps,
                                  args.min_time, args.warmup, args.seed)
                print(json.dumps({"impl": "torch", "kind": "train", "backend": "torch-cpu",
                                  "config": name, "resolution": r, "batch": batch,
                                  "langevin_steps": args.langevin_steps,
                                  "it_per_s": round(1.0 / sec, 4), "ms_per_it": round(sec * 1e3, 3),
                                  "device": device}), flush=True)
            continue
        forward = make_forward(torch, params, us, w, blocks)
        for batch in batches:
            sec = bench_one(torch, forward, r, batch, args.label_dim, args.min_time, args.warmup, args.seed,
                            args.channels_last)
            ips = batch / sec
            print(json.dumps({"impl": "torch", "backend": "torch-cpu", "config": name, "resolution": r,
                              "batch": batch, "image_steps_per_s": round(ips, 3),
                              "ms_per_step": round(sec * 1e3, 3), "flops_per_image_step": step_flops,
                              "gflops": round(step_flops * ips / 1e9, 3), "device": device}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
