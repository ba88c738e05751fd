#!/usr/bin/env python3
"""Training step with the chip in the loop (--hw-aware) vs the standard step, same run, same batches.

    .venv/bin/python benchmarks/hw_aware_step.py [--steps 10] [--batch-size 64] [--threads N]

Both models of the Fashion-MNIST presets (B-SNN T=8, BNN), initialised from the shipped
checkpoints, trained on the same batches: standard steps, and hardware-aware steps on the chip of
scenarios/chips/stt_mram_spread_0.05.yaml with a fresh chip every step (--hw-resample 1) and
every 10 steps (the presets' setting). Prints seconds per step and the ratio to the standard step.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch

from _common import REPO, machine
from imcnoise.data import load_dataset
from imcnoise.models.inputs import model_input
from imcnoise.training.config import HW_CHIP, TrainConfig
from imcnoise.training.hw_aware import ChipInTheLoop, load_chip
from imcnoise.training.loop import _lr_lambda, _param_groups, init_from_checkpoint, model_config_for, resolve_model_path, train_step
from imcnoise.models.vgg import BinaryVGG11


def build(kind: str, data):
    cfg = TrainConfig(model=kind, dataset="fashion-mnist", init=f"shipped:fmnist-{kind}", lr=1e-4)
    model = BinaryVGG11(model_config_for(cfg, data))
    init_from_checkpoint(model, resolve_model_path(cfg.init, "init"))
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(_param_groups(model, cfg.weight_decay), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg, 100))
    return model, opt, sched


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_dataset("fashion-mnist", "train").subset(args.batch_size * args.steps)
    chip = load_chip(REPO / HW_CHIP)
    dev = torch.device("cpu")
    print(f"machine: {machine()}\n")
    print("| model | variant | s / step | ratio to standard |\n|---|---|---|---|")
    for kind in ("bsnn", "bnn"):
        times = {}
        for name, resample in (("standard", None), ("hw-aware, fresh chip every step", 1), ("hw-aware, every 10 steps", 10)):
            model, opt, sched = build(kind, data)
            loop = ChipInTheLoop(model, chip, seed=0, resample=resample) if resample else None
            t_total = []
            for b in range(args.steps + 1):  # step 0: warm-up (compiles the fused kernels)
                idx = torch.arange(b % args.steps * args.batch_size, (b % args.steps + 1) * args.batch_size)
                x = model_input(model.config, data.images[idx], idx, 0)
                y = data.labels[idx]
                t = time.perf_counter()
                if loop is not None:
                    loop.step(b, idx)
                with loop if loop is not None else contextlib.nullcontext():
                    train_step(model, opt, sched, x, y, dev, "bf16")
                if b:
                    t_total.append(time.perf_counter() - t)
            times[name] = sorted(t_total)[len(t_total) // 2]  # median
            print(f"| {kind} | {name} | {times[name]:.3f} | {times[name] / times['standard']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
