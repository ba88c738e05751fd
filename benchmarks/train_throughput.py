#!/usr/bin/env python
"""Training throughput (images/s) of the B-SNN VGG11 against SpikingJelly 2.0, side by side.

One *training step* = Poisson encoding of a uint8 batch, forward, cross-entropy, zero_grad,
backward, optimizer step (+ the per-step bookkeeping each library's training loop needs). Model:
VGG11 width 0.25 (conv 16,32,64,64,128,128,128,128, OR/max-pool after conv 1,2,4,6,8; FC
128 -> 1024 -> 1024 -> 10), T = 8, batch 64, 32x32x3 input.

* imcnoise: exactly the step of :func:`imcnoise.training.loop.train` (same model construction,
  pooling-aware BN init, channels_last on CPU, Adam with the trainer's parameter groups, LR
  schedule, ``model_input`` hash-based Poisson spikes, autocast helper, ``clip_latent_``), in
  fp32 and in bf16 autocast (the trainer default). Data augmentation (random crop / flip of the
  uint8 batch) is not timed on either side.
* SpikingJelly 2.0: the same layer shapes in multi-step mode (``step_mode='m'``): ``layer.Conv2d``
  / ``BatchNorm2d`` / ``MaxPool2d`` / ``Linear`` / ``BatchNorm1d``, ``neuron.IFNode`` (soft reset,
  threshold 1, detached reset, triangle surrogate ``PiecewiseQuadratic``), the same residual adds
  (paper schedule), float weights (no binarization: this only favours SpikingJelly), input from
  SpikingJelly's ``encoding.PoissonEncoder``, Adam, ``functional.reset_net`` after every step.
  Measured in fp32 (the issue's reference) and with the same bf16 autocast + channels_last.

Variants are warmed up, then timed step by step in interleaved rounds (the order rotates every
round) so that drift in background load hits all of them alike; the median step time gives img/s.

SpikingJelly is an optional benchmark extra; it declares torchvision/torchaudio/tensorboard as
dependencies, which would pull a multi-GB CUDA torch, so install it without them::

    .venv/bin/pip install --no-deps spikingjelly==2.0.0
    .venv/bin/pip install loguru

Usage: ``.venv/bin/python benchmarks/train_throughput.py [--steps 10] [--warmup 3] [--threads N]``
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imcnoise.models.inputs import model_input  # noqa: E402
from imcnoise.models.topology import residual_sources  # noqa: E402
from imcnoise.models.vgg import BinaryVGG11, ModelConfig, identity_map  # noqa: E402
from imcnoise.training.config import TrainConfig  # noqa: E402
from imcnoise.training.loop import _lr_lambda, _param_groups, train_step  # noqa: E402

INSTALL_CMD = ".venv/bin/pip install --no-deps spikingjelly==2.0.0 && .venv/bin/pip install loguru"
ISSUE_REFERENCE = "measured beforehand on this machine (issue): SpikingJelly ≈ 89 img/s, snnTorch ≈ 77 img/s; goal ≥ 2× SpikingJelly"
STEPS_PER_EPOCH = 50000 // 64  # only shapes the (timed) LR schedule, as in a CIFAR-10 epoch


def import_spikingjelly():
    try:
        import spikingjelly
        from spikingjelly.activation_based import encoding, functional, layer, neuron, surrogate
    except ImportError as e:  # spikingjelly itself, or one of the small packages it imports (loguru)
        print(f"SpikingJelly is not importable ({e}).\nInstall the optional benchmark extra (without its CUDA-torch "
              f"dependencies) with:\n\n    {INSTALL_CMD}\n", file=sys.stderr)
        sys.exit(2)
    version = getattr(spikingjelly, "__version__", None)
    if version is None:
        from importlib.metadata import version as _v
        version = _v("spikingjelly")
    return version, encoding, functional, layer, neuron, surrogate


# --------------------------------------------------------------------------------------- models

def train_config() -> TrainConfig:
    return TrainConfig(model="bsnn", dataset="cifar10-jpeg", width=0.25, timesteps=8, batch_size=64)


def model_config(cfg: TrainConfig) -> ModelConfig:
    return ModelConfig(kind="bsnn", width=cfg.width, timesteps=cfg.timesteps, in_channels=3, image_size=32,
                       num_classes=10, residual=cfg.residual, threshold=cfg.threshold)


class SJVGG11(nn.Module):
    """The B-SNN's VGG11 plan built from SpikingJelly multi-step layers (float weights)."""

    def __init__(self, mcfg: ModelConfig, sj):
        super().__init__()
        _, _, _, layer, neuron, surrogate = sj
        self.plan = mcfg.plan()
        self.layers, self.norms, self.nodes = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for s in self.plan:
            if s.kind == "conv":
                self.layers.append(layer.Conv2d(s.in_features, s.out_features, 3, padding=1, bias=False, step_mode="m"))
                self.norms.append(layer.BatchNorm2d(s.out_features, step_mode="m"))
            else:
                self.layers.append(layer.Linear(s.in_features, s.out_features, bias=s.output, step_mode="m"))
                self.norms.append(nn.Identity() if s.output else layer.BatchNorm1d(s.out_features, step_mode="m"))
            # Triangle surrogate of half-width theta (ours: eq. 4, same shape, height delta=0.3).
            self.nodes.append(nn.Identity() if s.output else neuron.IFNode(
                v_threshold=mcfg.threshold, v_reset=None, surrogate_function=surrogate.PiecewiseQuadratic(alpha=1.0 / mcfg.threshold),
                detach_reset=True, step_mode="m"))
        self.pool = layer.MaxPool2d(2, step_mode="m")
        self._sources = residual_sources(self.plan)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [T, B, C, H, W] spikes
        T, B = x.shape[:2]
        h, kept = x, {}
        for spec, lin, norm, node in zip(self.plan, self.layers, self.norms, self.nodes):
            if spec.kind == "fc" and h.dim() > 3:
                h = h.flatten(2)
            if spec.residual_from is not None:  # same identity mapping as the B-SNN (OR-pool, repeat)
                r = identity_map(kept.pop(spec.residual_from).flatten(0, 1), spec)
                h = h + r.view(T, B, *r.shape[1:])
            z = lin(h)
            if spec.output:
                return z.sum(0)  # output membrane accumulated over T, as in the B-SNN
            a = node(norm(z))
            if spec.index in self._sources:
                kept[spec.index] = a
            h = self.pool(a) if spec.pool_after else a
        raise AssertionError("plan has no output layer")


def sj_param_groups(net: SJVGG11, weight_decay: float):
    """Mirror of the trainer's groups: decay on the full-precision first/last weights only."""
    binary, fp, no_decay = [], [], []
    for spec, lin, norm in zip(net.plan, net.layers, net.norms):
        (binary if spec.binary else fp).append(lin.weight)
        if lin.bias is not None:
            no_decay.append(lin.bias)
        no_decay.extend(norm.parameters())
    return [{"params": binary, "weight_decay": 0.0}, {"params": fp, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def init_pool_bn(plan, norms, bias: float) -> None:
    for spec, norm in zip(plan, norms):
        if spec.pool_after:
            nn.init.constant_(norm.bias, bias)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------------------------- steps

@dataclass
class Variant:
    name: str
    precision: str
    build: Callable[[], Callable[[int], None]]
    note: str = ""
    step: Callable[[int], None] | None = None
    times: list[float] = field(default_factory=list)
    error: str | None = None


def batch(seed: int, b: int):
    g = torch.Generator().manual_seed(seed)
    imgs = torch.randint(0, 256, (b, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (b,), generator=g)
    return imgs, labels


def build_imcnoise(precision: str, imgs: torch.Tensor, y: torch.Tensor):
    """The per-batch body of imcnoise.training.loop.train, on a fixed uint8 batch."""
    cfg = train_config()
    cfg.precision = precision
    dev = torch.device("cpu")
    mcfg = model_config(cfg)
    torch.manual_seed(0)
    model = BinaryVGG11(mcfg).to(dev)
    init_pool_bn(model.plan, model.norms, cfg.pool_bn_bias_init)
    model = model.to(memory_format=torch.channels_last)
    model.train()
    opt = torch.optim.Adam(_param_groups(model, cfg.weight_decay), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg, STEPS_PER_EPOCH))
    b = imgs.shape[0]

    def step(i: int) -> None:
        idx = torch.arange(i * b, (i + 1) * b)
        x = model_input(mcfg, imgs, idx, 12345)
        train_step(model, opt, sched, x, y, dev, cfg.precision)

    return step, model


def build_sj(sj, precision: str, imgs: torch.Tensor, y: torch.Tensor, channels_last: bool):
    """SpikingJelly's canonical multi-step training step for the same network shapes."""
    _, encoding, functional, _, _, _ = sj
    cfg = train_config()
    mcfg = model_config(cfg)
    torch.manual_seed(0)
    net = SJVGG11(mcfg, sj)
    init_pool_bn(net.plan, net.norms, cfg.pool_bn_bias_init)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    net.train()
    encoder = encoding.PoissonEncoder()
    opt = torch.optim.Adam(sj_param_groups(net, cfg.weight_decay), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg, STEPS_PER_EPOCH))
    T = mcfg.timesteps

    def step(i: int) -> None:
        img = imgs.float() / 255.0
        x = encoder(img.unsqueeze(0).repeat(T, 1, 1, 1, 1))  # [T, B, 3, 32, 32] Poisson spikes
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            outp = net(x)
        loss = F.cross_entropy(outp.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        functional.reset_net(net)
        sched.step()
        float(loss.detach()), int((outp.argmax(1) == y).sum())

    return step, net


# ------------------------------------------------------------------------------------------ main

def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=10, help="timed steps per variant (default 10)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed warm-up steps per variant (default 3)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch default)")
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args(argv)
    if args.steps < 1 or args.warmup < 0:
        ap.error("--steps must be >= 1 and --warmup >= 0")

    sj = import_spikingjelly()
    if args.threads:
        torch.set_num_threads(args.threads)
    imgs, y = batch(0, args.batch_size)
    sj_version = sj[0]

    variants = [
        Variant("imcnoise B-SNN (binary, residual)", "fp32", lambda: build_imcnoise("fp32", imgs, y), "channels_last"),
        Variant("imcnoise B-SNN (binary, residual)", "bf16", lambda: build_imcnoise("bf16", imgs, y),
                "autocast + channels_last (trainer default)"),
        Variant(f"SpikingJelly {sj_version} IFNode (float weights, residual)", "fp32",
                lambda: build_sj(sj, "fp32", imgs, y, channels_last=False), "contiguous (issue reference)"),
        Variant(f"SpikingJelly {sj_version} IFNode (float weights, residual)", "fp32",
                lambda: build_sj(sj, "fp32", imgs, y, channels_last=True), "channels_last"),
        Variant(f"SpikingJelly {sj_version} IFNode (float weights, residual)", "bf16",
                lambda: build_sj(sj, "bf16", imgs, y, channels_last=True), "autocast + channels_last"),
    ]
    params = {}
    for v in variants:
        try:
            v.step, model = v.build()
            params[v.name] = n_params(model)
            for i in range(args.warmup):
                v.step(1000 + i)
        except Exception as e:  # report "n/a" with the reason instead of failing the whole benchmark
            v.error = f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"
            v.step = None
    live = [v for v in variants if v.step is not None]
    for r in range(args.steps):
        k = r % len(live) if live else 0
        for v in live[k:] + live[:k]:  # rotate the order every round
            t0 = time.perf_counter()
            v.step(r)
            v.times.append(time.perf_counter() - t0)

    b = args.batch_size
    rate = {id(v): b / statistics.median(v.times) for v in live}
    ref = variants[2]  # SpikingJelly fp32, contiguous: the issue's reference
    ref_rate = rate.get(id(ref))

    print("## Training-step throughput: VGG11 width 0.25, T=8, batch %d, 32x32x3, CPU\n" % b)
    print(f"- CPU: {cpu_model()} ({os.cpu_count()} logical cores, torch CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}), torch {torch.__version__}, {torch.get_num_threads()} threads"
          f"{' (--threads)' if args.threads else ' (torch default)'}")
    print(f"- load average at end (background jobs): {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"- {args.warmup} warm-up + {args.steps} timed steps per variant, interleaved rounds; img/s = batch / median step time")
    print("- parameters: " + "; ".join(f"{k}: {n:,}" for k, n in params.items()))
    print()
    print("| variant | precision | memory / autocast | img/s (median) | img/s (min–max) | ratio vs SpikingJelly fp32 |")
    print("|---|---|---|---:|---:|---:|")
    for v in variants:
        if v.error is not None:
            print(f"| {v.name} | {v.precision} | {v.note} | n/a | n/a | n/a ({v.error}) |")
            continue
        lo, hi = b / max(v.times), b / min(v.times)
        ratio = f"{rate[id(v)] / ref_rate:.2f}×" if ref_rate else "n/a"
        print(f"| {v.name} | {v.precision} | {v.note} | {rate[id(v)]:.1f} | {lo:.1f}–{hi:.1f} | {ratio} |")
    print()
    for prec in ("bf16", "fp32"):
        ours = next(v for v in variants if v.name.startswith("imcnoise") and v.precision == prec)
        if ref_rate and ours.error is None:
            print(f"imcnoise {prec} / SpikingJelly fp32 = {rate[id(ours)] / ref_rate:.2f}×")
        else:
            print(f"imcnoise {prec} / SpikingJelly fp32 = n/a")
    best = {id(v): b / min(v.times) for v in live}
    if ref_rate:
        print("(best-step ratios, less sensitive to background load: " + ", ".join(
            f"imcnoise {v.precision} {best[id(v)] / best[id(ref)]:.2f}×" for v in variants[:2] if v.error is None) + ")")
    spread = max((max(v.times) / min(v.times) for v in live), default=1.0)
    if spread > 1.5:
        print(f"WARNING: step times vary up to {spread:.1f}× within a variant (background load competing for the "
              f"{os.cpu_count()} cores); with several OpenMP threads this is amplified, --threads 1 is steadier.")
    print()
    print("Notes: both sides time encoding + forward + loss + backward + optimizer step (+ LR schedule, loss/accuracy "
          "read-out; clip_latent_ for imcnoise, reset_net for SpikingJelly); no data augmentation. The SpikingJelly net "
          "has the same layer shapes and residual adds but float weights (no sign/alpha binarization), which only "
          "favours it. SpikingJelly 2.0's IFNode has no backend argument; on CPU its fp32 IF runs through the "
          "registered sj_if op, under bf16 autocast (bf16 membrane) through its torch reference path.")
    print(ISSUE_REFERENCE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
