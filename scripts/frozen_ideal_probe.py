#!/usr/bin/env python3
"""Does re-estimating the frozen fine-tune's batch-norm statistics on ideal images keep its gain on chips?

`fmnist-bsnn-hw-frozen` (batch norm frozen at `fmnist-bsnn`'s statistics during a hardware-aware
fine-tune) beats `fmnist-bsnn` on noisy chips but is 0.9 points below it on the ideal chip; with its
statistics re-estimated on ideal training images it recovers the ideal-chip accuracy
(`scripts/bn_statistics_check.py`). This script builds that network -- exactly what
`imcnoise train --preset fmnist-bsnn-hw-frozen-ideal` gives after its one epoch (the same steps as the
-frozen preset, then `training.batchnorm.epoch_reestimate` on the model in the training loop's
channels-last layout) -- from the shipped `fmnist-bsnn-hw-frozen` checkpoint, in about a minute instead of
the 43-minute fine-tune, and writes it to `runs/probe/fmnist-bsnn-hw-frozen-ideal/model.pt`, where
`scenarios/fmnist_hw_frozen_ideal.yaml` reads it:

    .venv/bin/python scripts/frozen_ideal_probe.py
    .venv/bin/imcnoise sweep scenarios/fmnist_hw_frozen_ideal.yaml --threads 1
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from imcnoise.data import load_dataset
from imcnoise.models.checkpoint import load_checkpoint, save_checkpoint
from imcnoise.sweep.scenario import SHIPPED_DIR
from imcnoise.training.batchnorm import epoch_reestimate
from imcnoise.training.config import PRESETS, TrainConfig

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "runs" / "probe" / "fmnist-bsnn-hw-frozen-ideal" / "model.pt"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    cfg = TrainConfig(**PRESETS["fmnist-bsnn-hw-frozen-ideal"])
    frozen = TrainConfig(**PRESETS["fmnist-bsnn-hw-frozen"])
    differ = {k for k, v in cfg.to_dict().items() if frozen.to_dict()[k] != v}
    if differ != {"bn_statistics"}:  # the probe stands for the preset only while the two differ in that alone
        raise SystemExit(f"fmnist-bsnn-hw-frozen-ideal differs from fmnist-bsnn-hw-frozen in {sorted(differ)}")
    model, meta = load_checkpoint(SHIPPED_DIR / "fmnist-bsnn-hw-frozen" / "model.pt")
    model = model.to(memory_format=torch.channels_last)  # as the training loop holds its model on a CPU
    train = load_dataset(cfg.dataset, "train")
    epoch_reestimate(model, train, cfg.seed, cfg.epochs - 1, cfg.bn_images, cfg.batch_size)
    training = {**meta["training"], "bn_statistics": cfg.bn_statistics,
                "command": "scripts/frozen_ideal_probe.py (the fmnist-bsnn-hw-frozen checkpoint re-estimated as the "
                           "fmnist-bsnn-hw-frozen-ideal preset does after its epoch)"}
    save_checkpoint(OUT, model.to(memory_format=torch.contiguous_format), training=training,
                    metrics=meta["metrics"], data=meta["data"])
    print(f"wrote {OUT.relative_to(REPO)} in {time.time() - t0:.0f} s (its test accuracy in the metadata is the -frozen "
          "checkpoint's; the sweep measures this one)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
