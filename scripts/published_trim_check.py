#!/usr/bin/env python3
"""Why long sensings lose the B-SNN (results/published/comparison.md): the Pham et al. 2022 chip file
(128-cell merged-line sensings, 0.45 mV per match) on one chip instance, 300 test images, as the file
says, with a wider trim DAC (+-64 LSB over 8 bits instead of +-16 over 6), and without comparator
offset. A 4.5 mV offset is 10 LSB rms at 0.45 mV per match; the default trim reaches +-16 LSB.

    .venv/bin/python scripts/published_trim_check.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch, sys
torch.set_num_threads(1)
from imcnoise.training.hw_aware import load_chip
from imcnoise.imc import FastChipBatch, evaluate, fold_checkpoint
from imcnoise.data import load_dataset
from imcnoise.sweep.scenario import SHIPPED_DIR
prog = fold_checkpoint(SHIPPED_DIR / "fmnist-bsnn" / "model.pt")
data = load_dataset("fashion-mnist", "test").subset(300)
base = load_chip(Path(__file__).resolve().parents[1] / "scenarios/chips/published/pham2022_stt_bnn.yaml", "chip file")
for name, upd in [("as published file", {}),
                  ("trim range +-64 LSB, 8 bits", {"calibration": base.calibration.model_copy(update={"trim_range_lsb": 64.0, "trim_bits": 8})}),
                  ("no comparator offset", {"sense_amp": base.sense_amp.model_copy(update={"offset_sigma_v": 0.0})})]:
    cfg = base.model_copy(update=upd)
    r = evaluate(FastChipBatch(prog, cfg, [0]), data, batch_size=100)[0]
    print(f"{name}: B-SNN {100*r.accuracy:.1f} %", flush=True)
