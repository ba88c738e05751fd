#!/usr/bin/env python3
"""imcnoise at published operating points, next to what those macros report (issue 19).

    .venv/bin/python scripts/published_points.py [--chips 4] [--images 500] [--out results/published]

For every chip file of scenarios/chips/published/ (and the default chip) the shipped Fashion-MNIST
B-SNN and BNN run on ``--chips`` chip instances of ``--images`` test images: accuracy against the
noise-free integer engine (the loss), the sensed-count error of every line read (fraction of reads
wrong, mean |error| per cell of the sensing, rms), and the energy model's efficiency (array,
drivers, converters and buffer: 2 ops per cell read, TOPS/W) and energy per inference. The table
puts the figure each publication reports beside the prediction and says what differs between their
setting and ours. Writes ``comparison.md`` and ``comparison.csv``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from imcnoise.data import load_dataset  # noqa: E402
from imcnoise.imc import (AnalogConfig, ChipLimitError, FastChipBatch, check_buildable, evaluate, evaluate_xnor,  # noqa: E402
                          fold_checkpoint, inference_energy, poisson_rate)
from imcnoise.imc.config import lsb_voltage_v  # noqa: E402
from imcnoise.runtime import tune_allocator  # noqa: E402
from imcnoise.training.hw_aware import load_chip  # noqa: E402

# what each publication reports, and what differs from the point we simulate (their setting vs ours)
PUBLISHED = {
    "default": ("the buildable default chip (README)", "", ""),
    "jung2022_64x64": ("Jung et al., Nature 601:211 (2022), 64 x 64 MRAM crossbar, 28 nm",
                       "MNIST 2-layer perceptron: 93.23 % on chip vs 95.24 % software (-2.0 points)",
                       "their readout sums cell resistances in series (ours: merged-line voltage); a 2-layer MLP on "
                       "MNIST (ours: VGG11 B-SNN / BNN on Fashion-MNIST); cell spreads from their figures (unconfirmed)"),
    "pham2021_128bit": ("Pham et al., ISCAS 2021 (the paper's ref. [3]), 128-bit row accumulator",
                        "average error rate 0.085 at 128-bit vectors; MLP MNIST 98.45 %",
                        "the error-rate metric is not defined in the abstract (we give reads wrong and mean |error| / "
                        "cell); their MTJ, node and read voltage unknown (ours: NVSim MTJ, 0.2 V, 5 % spread)"),
    "pham2022_stt_bnn": ("Pham et al., STT-BNN, IEEE JETCAS 12(2):569 (2022)",
                         "311 TOPS/W; CIFAR-10 BNN 80.01 % under variation (-8.59 points vs software)",
                         "a 1-bit time-based decision per row (ours: a 6-bit converter, our neurons take counts); "
                         "their boosting against low TMR is not modelled; node unknown"),
    "nguyen2021_stt_bsnn": ("Nguyen et al., STT-BSNN, IEEE Access 9:151373 (2021), 65 nm, 1 x 288 sub-arrays",
                            "176.6 TOPS/W; CIFAR-10 B-SNN 83.85 %",
                            "their dynamic-threshold IF neuron in the periphery (ours: digital); their MTJ model fitted "
                            "at 65 nm (ours: NVSim MTJ); a 288-cell line needs 0.1 Ohm per cell here"),
    "neurosim_current_5bit": ("DNN+NeuroSim V1.3 defaults (current summation, 5-bit ADC, 8 columns per ADC)",
                              "(a simulator's defaults, no measurement)",
                              "held to our limits: 0.08 V and 18-cell sensings (NeuroSim sums 128 rows at 0.5 V)"),
}


def run_point(name: str, cfg: AnalogConfig, chips: int, data, progs: dict, refs: dict) -> list[dict]:
    rows = []
    seeds = list(range(1000, 1000 + chips))
    for kind, prog in progs.items():
        t0 = time.time()
        res = evaluate(FastChipBatch(prog, cfg, seeds), data, error_stats=True, activity=True, batch_size=100)
        acc = sum(r.accuracy for r in res) / len(res)
        reads = sum(v["reads"] for r in res for v in r.errors.values())
        wrong = sum(v["frac_wrong"] * v["reads"] for r in res for v in r.errors.values()) / reads
        rms = (sum(v["rms_err"] ** 2 * v["reads"] for r in res for v in r.errors.values()) / reads) ** 0.5
        rep = [inference_energy(prog, cfg, r.activity, r.spike_rates, poisson_rate(data.images, prog.image_size)) for r in res]
        tops = sum(e.array_tops_per_w for e in rep) / len(rep)
        nj = sum(e.total_j for e in rep) / len(rep) * 1e9
        rows.append({"point": name, "model": kind, "accuracy": acc, "loss_points": 100 * (refs[kind] - acc),
                     "dot_wrong": wrong, "dot_rms_lsb": rms, "tops_per_w": tops, "nj_per_inference": nj,
                     "lsb_mv": lsb_voltage_v(cfg) * 1e3, "seconds": time.time() - t0})
        print(f"  {name} {kind}: accuracy {100 * acc:.2f} % (loss {100 * (refs[kind] - acc):.2f}), "
              f"dot products wrong {100 * wrong:.1f} %, rms {rms:.2f} LSB, {tops:.1f} TOPS/W, {nj:.0f} nJ", flush=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chips", type=int, default=4)
    ap.add_argument("--images", type=int, default=500)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=REPO / "results" / "published")
    args = ap.parse_args()
    tune_allocator()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_dataset("fashion-mnist", "test").subset(args.images)
    progs = {k: fold_checkpoint(REPO / "imcnoise" / "checkpoints" / f"fmnist-{k}" / "model.pt") for k in ("bsnn", "bnn")}
    refs = {k: evaluate_xnor(p, data).accuracy for k, p in progs.items()}
    rows = []
    t0 = time.time()
    points = {"default": AnalogConfig()}
    for f in sorted((REPO / "scenarios" / "chips" / "published").glob("*.yaml")):
        points[f.stem] = load_chip(f, "chip file")
    for name, cfg in points.items():  # refuse an unbuildable point before any of them runs
        try:
            check_buildable(cfg)
        except ChipLimitError as exc:
            raise SystemExit(f"error: scenarios/chips/published/{name}.yaml: {exc}") from None
    for name, cfg in points.items():
        rows += run_point(name, cfg, args.chips, data, progs, refs)
    df = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out / "comparison.csv", index=False)
    lines = ["# imcnoise at published operating points", "",
             f"`scripts/published_points.py --chips {args.chips} --images {args.images}` ({time.strftime('%Y-%m-%d')}, "
             f"{time.time() - t0:.0f} s): shipped Fashion-MNIST B-SNN / BNN (noise-free {100 * refs['bsnn']:.2f} / "
             f"{100 * refs['bnn']:.2f} % on these images), {args.chips} chip instances each. Loss: points below the "
             "noise-free integer engine. Dot products wrong: fraction of neuron dot products (sensings and slots summed) "
             "whose sensed count differs from the exact one; rms in LSB. TOPS/W: the energy model's array, drivers, "
             "converters and buffer, 2 ops per cell read (the publications' usual accounting of a 1-bit MAC).", "",
             "| point | LSB | B-SNN loss | BNN loss | dot wrong B-SNN / BNN | TOPS/W B-SNN / BNN | nJ / inference B-SNN / BNN | "
             "published | what differs |", "|---|---|---|---|---|---|---|---|---|"]
    for name in points:
        b = df[(df.point == name) & (df.model == "bsnn")].iloc[0]
        n = df[(df.point == name) & (df.model == "bnn")].iloc[0]
        what, reported, differs = PUBLISHED.get(name, (name, "", ""))
        lines.append(f"| {name}: {what} | {b.lsb_mv:.2f} mV | {b.loss_points:+.2f} | {n.loss_points:+.2f} | "
                     f"{100 * b.dot_wrong:.1f} / {100 * n.dot_wrong:.1f} % | {b.tops_per_w:.0f} / {n.tops_per_w:.0f} | "
                     f"{b.nj_per_inference:.0f} / {n.nj_per_inference:.0f} | {reported} | {differs} |")
    (args.out / "comparison.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
