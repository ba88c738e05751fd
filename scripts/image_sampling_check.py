#!/usr/bin/env python3
"""How far can a table's B-SNN - BNN gap on a subset of test images be from the whole test set's?

Every CI in the sweep tables is over chip instances *on fixed images* (Student t over chips): it says
how well the chips were sampled, not how well the images were. A claim about the test distribution
also carries the images' sampling error. This script measures it where it can be measured exactly,
noise-free (integer engine, both shipped Fashion-MNIST models, the whole 10000-image test set,
Poisson seed 0):

* the noise-free paired gap (B-SNN - BNN accuracy, points) on the whole set, on the first 500 / 2000
  images (the sweeps' subsets) and on each of the five disjoint 2000-image blocks;
* its image-sampling standard error for n images drawn from the test set: with d_i = c_i(B-SNN) -
  c_i(BNN) in {-1, 0, +1} per image (c: 1 if classified correctly), the gap is 100 mean(d) and
  SE_n = 100 sqrt(Var(d) / n), Var(d) = p+ + p- - (p+ - p-)^2, p+ / p- the shares of images only the
  B-SNN / only the BNN gets right (the paired form of McNemar's setting; by hand for p+ = p- = 0.03:
  Var = 0.06, SE_2000 = 100 sqrt(0.06 / 2000) = 0.548 points);
* the same for one model's accuracy, 100 sqrt(p (1 - p) / n).

    .venv/bin/python scripts/image_sampling_check.py [--out results/image_sampling.md]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

from imcnoise.data import load_dataset
from imcnoise.imc import XnorEngine, evaluate, fold_checkpoint
from imcnoise.sweep.scenario import SHIPPED_DIR


def correct_per_image(name: str, data) -> torch.Tensor:
    """1 where the shipped checkpoint ``name`` (integer engine) classifies the image correctly ``[N]``."""
    prog = fold_checkpoint(SHIPPED_DIR / name / "model.pt")
    res = evaluate(XnorEngine(prog, backend="auto"), data, batch_size=200, keep_predictions=True)[0]
    return (res.predictions.view(-1) == data.labels).to(torch.float64)


def gap_se_points(d: torch.Tensor, n: int) -> float:
    """Image-sampling standard error (points) of the paired gap over ``n`` images, from the per-image
    differences ``d`` in {-1, 0, 1} of a reference set: 100 sqrt(Var(d) / n)."""
    p_plus, p_minus = float((d > 0).double().mean()), float((d < 0).double().mean())
    return 100.0 * math.sqrt((p_plus + p_minus - (p_plus - p_minus) ** 2) / n)


def accuracy_se_points(c: torch.Tensor, n: int) -> float:
    p = float(c.mean())
    return 100.0 * math.sqrt(p * (1.0 - p) / n)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=None, help="write the markdown report here")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    data = load_dataset("fashion-mnist", "test")
    cs, cb = correct_per_image("fmnist-bsnn", data), correct_per_image("fmnist-bnn", data)
    d = cs - cb
    lines = ["# Image sampling: the B-SNN - BNN gap on subsets of the test set", "",
             f"`scripts/image_sampling_check.py` ({time.strftime('%Y-%m-%d', time.gmtime())}, {time.time() - t0:.0f} s, "
             f"{torch.get_num_threads()} torch thread(s)); shipped `fmnist-bsnn` / `fmnist-bnn`, integer engine "
             "(noise-free, exact), Poisson input seed 0, Fashion-MNIST test set.", "",
             f"Only the B-SNN right: {int((d > 0).sum())} images; only the BNN right: {int((d < 0).sum())}; "
             f"both or neither: {int((d == 0).sum())}.", "",
             "| images | B-SNN | BNN | gap (points) | image-sampling SE of the gap for this many images | SE of one accuracy (B-SNN / BNN) |",
             "|---|---|---|---|---|---|"]

    def row(label, sl):
        n = sl.stop - sl.start
        a, b = 100 * float(cs[sl].mean()), 100 * float(cb[sl].mean())
        lines.append(f"| {label} | {a:.2f} % | {b:.2f} % | {a - b:+.2f} | {gap_se_points(d, n):.2f} | "
                     f"{accuracy_se_points(cs, n):.2f} / {accuracy_se_points(cb, n):.2f} |")
        return a - b

    row("all 10000", slice(0, 10000))
    row("first 500 (quick sweeps)", slice(0, 500))
    blocks = [row(f"{a}-{a + 1999}" + (" (the reference runs' images)" if a == 0 else ""), slice(a, a + 2000))
              for a in range(0, 10000, 2000)]
    mean = sum(blocks) / len(blocks)
    sd = math.sqrt(sum((g - mean) ** 2 for g in blocks) / (len(blocks) - 1))
    lines += ["", f"The five disjoint 2000-image blocks' gaps: mean {mean:+.2f}, standard deviation {sd:.2f} points "
              f"(the formula's SE for 2000 images, from all 10000: {gap_se_points(d, 2000):.2f}).", ""]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
