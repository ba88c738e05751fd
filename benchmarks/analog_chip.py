#!/usr/bin/env python3
"""Time per chip instance on the aihwkit path: program (draw) + evaluate N test images, for both
shipped Fashion-MNIST models, and the slowdown versus the integer XNOR engine on the same images.

    .venv/bin/python benchmarks/analog_chip.py [--images 1000] [--threads N]
"""

from __future__ import annotations

import argparse

import torch

from _common import machine, shipped, timed
from imcnoise.data import load_dataset
from imcnoise.imc import AnalogChip, AnalogConfig, SenseAmpConfig, SttMramDevice, evaluate, evaluate_xnor, fold_checkpoint


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--bsnn", default=None)
    ap.add_argument("--bnn", default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = AnalogConfig(device=SttMramDevice(sigma_r_p=0.03, sigma_r_ap=0.03), sense_amp=SenseAmpConfig(offset_sigma_lsb=0.5))
    print(f"machine: {machine()}\nchip: STT-MRAM sigma 0.03, sense-amp offset 0.5 LSB, kT/C at 10 fF, 256x256 sub-arrays\n")
    print("| model | program chip (s) | evaluate (s) | per chip instance (s) | integer engine (s) | slowdown | accuracy chip / ideal |")
    print("|---|---|---|---|---|---|---|")
    for kind, path in (("bsnn", args.bsnn or shipped("fmnist-bsnn")), ("bnn", args.bnn or shipped("fmnist-bnn"))):
        prog = fold_checkpoint(path)
        data = load_dataset("fashion-mnist", "test").subset(args.images)
        chip = AnalogChip(prog, cfg, chip_seed=0, device=args.device)
        t_prog, _ = timed(lambda: chip.program_chip(1))
        t_eval, r = timed(lambda: evaluate(chip, data, batch_size=50)[0])
        t_int, ri = timed(lambda: evaluate_xnor(prog, data, batch_size=100, device=args.device))
        print(f"| {kind} | {t_prog:.2f} | {t_eval:.1f} | {t_prog + t_eval:.1f} | {t_int:.1f} | {(t_prog + t_eval) / t_int:.1f}x | "
              f"{100 * r.accuracy:.1f} % / {100 * ri.accuracy:.1f} % |")


if __name__ == "__main__":
    main()
