#!/usr/bin/env python3
"""Why does the BNN score higher on noisy chips than noise-free? Its thresholds, perturbed.

On every noisy chip of the reference runs the shipped BNN beats its own noise-free accuracy on the
same 2000 images (90.50 % against 89.65 % on the default chip, README "Reference run"). This script
measures the BNN's accuracy when its folded neuron thresholds are moved by a fraction of a count --
the static kind of error a chip's lines make (each line's own rounding, offset and trim residue) --
on the integer engine (exact, no chip), and the same for the B-SNN:

* uniform shifts: every binary neuron's bias + d counts (fires iff dot - bias > theta_hat);
* random per-neuron shifts: bias + s z, z standard normal, one draw per neuron (4 draws per s,
  seeds 1000 r + layer index);
* the first binary layer alone shifted by -0.25 / +0.25 counts;
* the trained float network in fp64, and in bf16 autocast (the arithmetic of its training).

    .venv/bin/python scripts/bnn_threshold_check.py [--out results/bnn_threshold_check.md]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch

from imcnoise.data import load_dataset
from imcnoise.imc import XnorEngine, evaluate, fold_checkpoint
from imcnoise.imc.program import XnorLayer
from imcnoise.models.checkpoint import load_checkpoint
from imcnoise.sweep.scenario import SHIPPED_DIR
from imcnoise.training.evaluate import evaluate as evaluate_float

UNIFORM = (-0.5, -0.25, -0.1, 0.1, 0.25, 0.5)
RANDOM = (0.3, 1.0)


def shifted(program, shift):
    """A copy of ``program`` whose binary layers' biases are ``shift(layer)`` (counts added)."""
    p = copy.copy(program)
    p.layers = [dataclasses.replace(l, bias=l.bias + shift(l)) if isinstance(l, XnorLayer) else l for l in program.layers]
    return p


def accuracy_pct(program, data) -> float:
    return 100.0 * evaluate(XnorEngine(program, backend="auto"), data, batch_size=200)[0].accuracy


def float_accuracies_pct(name: str, data) -> tuple[float, float]:
    """The trained network's accuracy in fp64 and in bf16 autocast."""
    model, _ = load_checkpoint(SHIPPED_DIR / name / "model.pt")
    exact = evaluate_float(model, data, precision="fp64").accuracy
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = evaluate_float(model, data, precision="fp32").accuracy
    return 100.0 * exact, 100.0 * bf16


def rows_for(name: str, split: str, n: int, randoms: bool, floats: bool) -> list[str]:
    program = fold_checkpoint(SHIPPED_DIR / name / "model.pt")
    data = load_dataset(program.meta.get("dataset") or "fashion-mnist", split).subset(n)
    base = accuracy_pct(program, data)
    cells = [f"{name}", f"{split}, first {n}", f"{base:.2f}"]
    uni = [accuracy_pct(shifted(program, lambda l, d=d: d), data) for d in UNIFORM]
    cells.append(" / ".join(f"{a:.2f}" for a in uni))
    if randoms:
        rnd = []
        for s in RANDOM:
            accs = [accuracy_pct(shifted(program, lambda l, s=s, r=r: s * np.random.default_rng(1000 * r + l.index)
                                         .standard_normal(l.rows)), data) for r in range(4)]
            rnd.append(f"{np.mean(accs):.2f} ({min(accs):.2f}-{max(accs):.2f})")
        cells.append(" / ".join(rnd))
        first = program.xnor_layers[0].index
        cells.append(" / ".join(f"{accuracy_pct(shifted(program, lambda l, d=d: d if l.index == first else 0.0), data):.2f}"
                                for d in (-0.25, 0.25)))
    else:
        cells += ["", ""]
    if floats:
        exact, bf16 = float_accuracies_pct(name, data)
        cells.append(f"{exact:.2f} / {bf16:.2f}")
    else:
        cells.append("")
    print(" | ".join(cells), flush=True)
    return cells


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=None, help="write the markdown table here")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    runs = [("fmnist-bnn", "test", 10000, True, True), ("fmnist-bnn", "test", 2000, True, True),
            ("fmnist-bnn", "train", 20000, False, False), ("fmnist-bsnn", "test", 2000, False, True)]
    table = [rows_for(*r) for r in runs]
    head = ["model", "images", "exact thresholds", "uniform shift " + " / ".join(f"{d:+g}" for d in UNIFORM) + " counts",
            "random per-neuron shifts, std " + " / ".join(f"{s:g}" for s in RANDOM) + " counts: mean (range of 4)",
            "first binary layer only, -0.25 / +0.25", "float network fp64 / bf16 autocast"]
    lines = ["# BNN and B-SNN accuracy (%) with their folded thresholds perturbed", "",
             f"`scripts/bnn_threshold_check.py` ({time.strftime('%Y-%m-%d', time.gmtime())}, {time.time() - t0:.0f} s, "
             f"{torch.get_num_threads()} torch thread(s)); integer engine (exact, no chip); Poisson input seed 0.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(c) + " |" for c in table]
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
