#!/usr/bin/env python3
"""Ideal (noise-free) accuracy of shipped checkpoints as shipped and with their batch-norm running
statistics re-estimated on ideal training batches (nothing else changes).

Why: a hardware-aware fine-tune (`--hw-aware`) updates batch norm's running mean / variance on
activations that carry the sampled chips' errors; with momentum 0.1 they mostly reflect the last
few chips drawn. This script shows how much of a checkpoint's ideal-accuracy change that explains.

    .venv/bin/python scripts/bn_statistics_check.py [--names fmnist-bsnn fmnist-bsnn-hw] [--images 2000]
"""

from __future__ import annotations

import argparse

import torch

from imcnoise.data import load_dataset
from imcnoise.models.checkpoint import load_checkpoint
from imcnoise.models.inputs import model_input
from imcnoise.sweep.scenario import SHIPPED_DIR
from imcnoise.training.batchnorm import reestimate_batch_norms


@torch.no_grad()
def accuracy(model, data, n: int, seed: int = 0) -> float:
    model.eval()
    correct = 0
    for s in range(0, n, 250):
        idx = torch.arange(s, min(n, s + 250))
        correct += int((model(model_input(model.config, data.images[idx], idx, seed)).argmax(-1) == data.labels[idx]).sum())
    return correct / n


def reestimate_bn(model, data, images: int, seed: int = 1) -> None:
    """Cumulative-average running statistics over the first ``images`` ideal training images (batch 64)."""
    idx = torch.arange(images)
    reestimate_batch_norms(model, data.images[idx], idx, seed)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--names", nargs="*", default=["fmnist-bsnn", "fmnist-bsnn-hw", "fmnist-bnn", "fmnist-bnn-hw"])
    ap.add_argument("--images", type=int, default=2000, help="first N test images")
    ap.add_argument("--train-images", type=int, default=6400, help="training images for the re-estimate")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print("| checkpoint | ideal accuracy as shipped | with batch-norm statistics re-estimated on ideal data |\n|---|---|---|")
    for name in args.names:
        model, meta = load_checkpoint(SHIPPED_DIR / name / "model.pt")
        test = load_dataset(meta["data"]["dataset"], "test")
        train = load_dataset(meta["data"]["dataset"], "train")
        a0 = accuracy(model, test, args.images)
        reestimate_bn(model, train, args.train_images)
        a1 = accuracy(model, test, args.images)
        print(f"| {name} | {100 * a0:.2f} % | {100 * a1:.2f} % |", flush=True)
    print(f"\n(first {args.images} test images, Poisson seed 0; re-estimate on the first {args.train_images} training images)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
