#!/usr/bin/env python3
"""Accuracy of the shipped Fashion-MNIST B-SNN and BNN on ONE STT-MRAM chip at a few variation levels.

    .venv/bin/python examples/stt_mram_chip.py [--images 300] [--seed 0]

Uses the analog chip API directly (imcnoise.imc): fold a checkpoint, build a chip on aihwkit tiles
from an AnalogConfig and a chip seed, evaluate, and re-draw the same chip at another variation
level. For many chips and noise levels use `imcnoise sweep` (Monte Carlo, paired, with CIs).
"""

from __future__ import annotations

import argparse
from imcnoise.data import load_dataset
from imcnoise.imc import AnalogChip, AnalogConfig, SenseAmpConfig, SttMramDevice, evaluate, evaluate_xnor, fold_checkpoint
from imcnoise.sweep.scenario import SHIPPED_DIR


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0, help="chip instance")
    args = ap.parse_args()
    data = load_dataset("fashion-mnist", "test").subset(args.images)
    sigmas = [0.0, 0.02, 0.05, 0.08]
    print(f"Fashion-MNIST, first {len(data)} test images; STT-MRAM (R_P 6 kOhm, TMR 100 %), sense-amp offset 0.5 LSB,\n"
          f"one chip instance (seed {args.seed}); sigma = std of ln R_P and ln R_AP\n")
    print("| model | ideal XNOR | " + " | ".join(f"sigma {s}" for s in sigmas) + " |")
    print("|---|---|" + "---|" * len(sigmas))
    for kind in ("bsnn", "bnn"):
        prog = fold_checkpoint(SHIPPED_DIR / f"fmnist-{kind}" / "model.pt")
        ideal = evaluate_xnor(prog, data).accuracy
        accs = []
        for s in sigmas:
            cfg = AnalogConfig(device=SttMramDevice(sigma_r_p=s, sigma_r_ap=s), sense_amp=SenseAmpConfig(offset_sigma_lsb=0.5))
            chip = AnalogChip(prog, cfg, chip_seed=args.seed)
            accs.append(evaluate(chip, data, batch_size=50)[0].accuracy)
        print(f"| {kind.upper()} | {100 * ideal:.1f} % | " + " | ".join(f"{100 * a:.1f} %" for a in accs) + " |")


if __name__ == "__main__":
    main()
