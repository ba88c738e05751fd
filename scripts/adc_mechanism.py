#!/usr/bin/env python3
"""Why is the B-SNN worse at 5-bit ADCs than at 4 bits? The ADC's rounding, taken apart.

On the default xnor / voltage array the shipped B-SNN scores 81.5 / 75.7 / 88.9 / 89.0 % at 4 / 5 / 6 / 8
ADC bits (16 chips x 2000 images, results/design_space_reference_adc), and 79.2 / 76.8 / 90.0 / 89.8 % with
the rounding alone on an otherwise ideal chip (results/adc_rounding). The size of the rounding error does not
order that (the 4-bit error is the larger). This script isolates the mechanism on that ideal chip (no device
spread, comparator offset, wire resistance or kT/C; reference rows + trim; one chip instance: the chip is
then deterministic), first 500 test images, fast engine:

1. **Rounding against subtractive dither** at the same resolution: the converter adds a uniform u in
   [-1/2, 1/2) code to its input and subtracts it from its output, q = (round(v / step + u) - u) step. Its
   error is then uniform over one code and independent of the input (Schuchman 1964; Gray & Stockham,
   "Dithered quantizers", IEEE Trans. Inf. Theory 39(3), 1993): same size (rms step / sqrt(12)), no
   correlation with what is converted. u is a counter-based uniform keyed by (chip, layer, image, time
   step, read) (imcnoise.imc.physics.noise), so the runs are reproducible. If the dithered converter keeps
   the accuracy, the loss comes from the rounding error's dependence on the input, not from its size.
2. **Tie-breaking**: the chip's converter rounds a value exactly between two codes to the even one
   (torch.round); on an ideal chip counts are exact integers, and with 2 slots of 63 cells the 5-bit code is
   126 / 31 counts wide, so the count 63 = 15.5 codes is such a tie (by hand: 63 * 31 / 126 = 15.5; the same
   for 4 bits, 63 / 8.4 = 7.5). Half-up and half-down rounding show how much of the result sits on ties.
3. **Which layer**: the B-SNN with the low-resolution converter in one binary layer only (8 bits elsewhere).
4. **Static or fluctuating**: per neuron (output line and position) the mean of its sensed-count error over
   all images and time steps (the static part a spiking neuron integrates over T) and what fluctuates
   around it, for the layer that step 3 finds.

    .venv/bin/python scripts/adc_mechanism.py [--images 500] [--out results/adc_mechanism.md]

Eager kernels (IMCNOISE_COMPILE=0): the same numbers as compiled ones, and the converter can be swapped.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ["IMCNOISE_COMPILE"] = "0"  # before imcnoise: the converter below is swapped between runs

import torch

import imcnoise.imc.engines.analog as analog
import imcnoise.imc.physics.sense as sense_path
from imcnoise.data import load_dataset
from imcnoise.imc import AnalogConfig, ErrorStats, FastChipBatch, evaluate, fold_checkpoint
from imcnoise.imc.physics.noise import uniforms_at
from imcnoise.models.checkpoint import machine_description
from imcnoise.sweep.scenario import SHIPPED_DIR

CHIP_SEED = 7
ROUNDING = sense_path.adc


def ideal_chip(bits: int) -> AnalogConfig:
    """The default chip with the ADC's rounding as its only error (results/adc_rounding's chip)."""
    c = AnalogConfig()
    return c.model_copy(update={
        "device": c.device.model_copy(update={"sigma_r_p": 0.0, "sigma_r_ap": 0.0}),
        "sense_amp": c.sense_amp.model_copy(update={"offset_sigma_v": 0.0, "adc_bits": bits}),
        "array": c.array.model_copy(update={"wire_resistance_ohm": 0.0}),
        "buffer": c.buffer.model_copy(update={"kt_c_noise": False})})


class Probe:
    """What the patched sense path and error statistics see: the layer being sensed, its noise
    streams (for the dither's counters), ties at the converter, per-neuron error sums."""

    def __init__(self):
        self.layer_bits: dict[int, int] = {}
        self.noise = None
        self.reset()

    def reset(self):
        self.ties: dict[int, list[int]] = {}  # layer -> [reads exactly between two codes, reads]
        self.neuron: dict[int, list] = {}  # layer -> [sum of error per (position, row), sum of squares, samples]


PROBE = Probe()
_sense = analog.sense


def sense_per_layer(reads, static, cfg, noise=None, digitize=True):
    """analog.sense with this layer's converter resolution (PROBE.layer_bits) and its noise streams noted."""
    PROBE.noise = noise
    if noise is not None and noise.layer in PROBE.layer_bits:
        cfg = cfg.model_copy(update={"sense_amp": cfg.sense_amp.model_copy(update={"adc_bits": PROBE.layer_bits[noise.layer]})})
    return _sense(reads, static, cfg, noise, digitize)


def counting_ties(adc):
    def converter(v, step):
        x = v / step
        if PROBE.noise is not None:
            t = PROBE.ties.setdefault(PROBE.noise.layer, [0, 0])
            t[0] += int((x - torch.floor(x) == 0.5).sum())
            t[1] += x.numel()
        return adc(v, step)
    return converter


def half_up(v, step):
    return torch.floor(v / step + 0.5) * step


def half_down(v, step):
    return torch.ceil(v / step - 0.5) * step


def subtractive_dither(v, step):
    """q = (round(v / step + u) - u) step, u uniform on [-1/2, 1/2) per read, keyed by the read."""
    keys, first, positions = PROBE.noise.stream("adc-dither", 0, tuple(v.shape), v.device)
    n, k = v.shape[0], v.shape[1]
    counters = first.view(n, 1, 1) + keys.view(1, k, 1) + positions.reshape(1, 1, -1)
    u = (uniforms_at(counters).view(v.shape) - 0.5).to(v.dtype)
    return (torch.round(v / step + u) - u) * step


_add = ErrorStats.add


def add_per_neuron(self, layer, err, ideal):
    """ErrorStats.add, and per neuron (position, row) of the layer the sum of its errors."""
    _add(self, layer, err, ideal)
    e = err.double()  # [N, L, rows]
    s = PROBE.neuron.setdefault(layer, [0.0, 0.0, 0])
    s[0] = s[0] + e.sum(0)
    s[1] = s[1] + (e * e).sum(0)
    s[2] += e.shape[0]


def run(program, data, bits: int, converter=ROUNDING, layer_bits: dict | None = None):
    """One chip instance (the ideal chip is deterministic): EvalResult with error statistics."""
    sense_path.adc = counting_ties(converter)
    PROBE.layer_bits = dict(layer_bits or {})
    PROBE.reset()
    try:
        return evaluate(FastChipBatch(program, ideal_chip(bits), [CHIP_SEED]), data, batch_size=100, error_stats=True)[0]
    finally:
        sense_path.adc = ROUNDING
        PROBE.layer_bits = {}


def static_split(layer: int) -> tuple[float, float]:
    """(std over neurons of each neuron's mean error, rms of the error around its neuron's mean), LSB."""
    s1, s2, n = PROBE.neuron[layer]
    mean = s1 / n
    fluct = (s2 / n - mean * mean).clamp(min=0).mean().sqrt()
    return float(mean.std()), float(fluct)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=500)
    ap.add_argument("--out", type=Path, default=None, help="write the markdown tables here (default: stdout only)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    analog.sense = sense_per_layer
    ErrorStats.add = add_per_neuron
    t0 = time.time()
    data = load_dataset("fashion-mnist", "test").subset(args.images)
    progs = {k: fold_checkpoint(SHIPPED_DIR / f"fmnist-{k}" / "model.pt") for k in ("bsnn", "bnn")}
    lines = [f"# The ADC's rounding taken apart (`scripts/adc_mechanism.py --images {args.images}`)", "",
             f"Machine: {machine_description()}. Ideal default chip (rounding is its only error), chip seed {CHIP_SEED}, "
             f"first {args.images} Fashion-MNIST test images, shipped models. Accuracy in %.", ""]

    def out(s=""):
        print(s, flush=True)
        lines.append(s)

    out("## 1. Rounding against subtractive dither, and tie-breaking")
    out()
    out("| model | ADC bits | rounding (the chip: half to even) | half up | half down | subtractive dither | "
        "reads exactly between two codes | last binary layer fires |")
    out("|---|---|---|---|---|---|---|---|")
    for kind, p in progs.items():
        last = p.xnor_layers[-1].index
        for bits in (4, 5, 6, 8):
            r = run(p, data, bits)
            ties = sum(t[0] for t in PROBE.ties.values()) / max(1, sum(t[1] for t in PROBE.ties.values()))
            row = [f"{100 * r.accuracy:.1f}"]
            rows = {}
            if bits < 8:
                for name, conv in (("up", half_up), ("down", half_down), ("dither", subtractive_dither)):
                    rows[name] = run(p, data, bits, conv)
                row += [f"{100 * rows[n].accuracy:.1f}" for n in ("up", "down", "dither")]
            else:
                row += ["-", "-", "-"]
            fire = f"{100 * r.spike_rates[last]:.1f} %" + (f" (dither {100 * rows['dither'].spike_rates[last]:.1f} %)" if rows else "")
            out(f"| {kind} | {bits} | " + " | ".join(row) + f" | {100 * ties:.1f} % | {fire} |")
    out()

    out("## 2. The B-SNN with the low-resolution converter in one binary layer only (8 bits elsewhere)")
    out()
    layers = [l.index for l in progs["bsnn"].xnor_layers]
    out("| layer | " + " | ".join(str(l) for l in layers) + " |")
    out("|---|" + "---|" * len(layers))
    culprit = {}
    for bits in (4, 5):
        accs = {}
        for l in layers:
            accs[l] = run(progs["bsnn"], data, 8, layer_bits={l: bits}).accuracy
        culprit[bits] = min(accs, key=accs.get)
        out(f"| {bits} bits in this layer alone | " + " | ".join(f"{100 * accs[l]:.1f}" for l in layers) + " |")
    out()

    out("## 3. Static and fluctuating error per neuron (B-SNN, the whole network at the given resolution)")
    out()
    out("Per neuron (one output line at one position): the mean of its sensed-count error over all images and "
        "time steps (static: what an integrate-and-fire neuron sums over T) and the rms around that mean "
        "(fluctuating), in counts (LSB), for the layers step 2 finds.")
    out()
    out("| converter | layer | std over neurons of the static error | rms fluctuating error | mean error |")
    out("|---|---|---|---|---|")
    for bits in (4, 5, 6):
        for name, conv in (("rounding", ROUNDING), ("dither", subtractive_dither)):
            if bits == 6 and name == "dither":
                continue
            r = run(progs["bsnn"], data, bits, conv)
            for l in sorted(set(culprit.values())):
                st, fl = static_split(l)
                out(f"| {bits} bits, {name} | {l} | {st:.2f} | {fl:.2f} | {r.errors[l]['mean_err']:+.2f} |")
    out()
    out(f"Run time {time.time() - t0:.0f} s (one torch thread, eager kernels).")
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
