#!/usr/bin/env python3
"""Exactness evaluation on full test sets, for every shipped checkpoint.

1. float (trained model, eval mode, fp64) vs integer XNOR engine: predictions and every spike of
   every layer, time step and neuron (differences must be floating-point ties: counted);
2. integer XNOR engine vs the analog path on aihwkit tiles with every non-ideality off;
3. (with --fast) fast Monte Carlo engine vs aihwkit path on noisy chips.

    .venv/bin/python scripts/verify_exactness.py [--limit N] [--out results/exactness.md]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


from imcnoise.data import load_dataset
from imcnoise.imc import AnalogChip, AnalogConfig, XnorEngine, compare_engines, compare_runs, fold_checkpoint
from imcnoise.models.checkpoint import load_checkpoint
from imcnoise.sweep.scenario import SHIPPED_DIR


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=None, help="first N test images (default: all)")
    ap.add_argument("--checkpoints", nargs="*", default=None, help="shipped names (default: all shipped)")
    ap.add_argument("--skip-analog", action="store_true")
    ap.add_argument("--out", type=Path, default=None, help="write a markdown report here")
    args = ap.parse_args(argv)
    names = args.checkpoints or sorted(d.name for d in SHIPPED_DIR.iterdir() if (d / "model.pt").is_file())
    lines = ["# Exactness on full test sets", "", f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
             f"command: `{' '.join(['scripts/verify_exactness.py', *(argv or sys.argv[1:])])}`", "",
             "| checkpoint | test images | float (fp64) vs XNOR: spikes | predictions | ties | XNOR vs analog-ideal (aihwkit): spikes | predictions | time |",
             "|---|---|---|---|---|---|---|---|"]
    ok = True
    for name in names:
        ckpt = SHIPPED_DIR / name / "model.pt"
        model, meta = load_checkpoint(ckpt)
        data = load_dataset(meta["data"]["dataset"], "test").subset(args.limit)
        prog = fold_checkpoint(ckpt)
        t0 = time.time()
        a = compare_engines(model, prog, data, batch_size=64, progress=True)
        print(f"{name}: float vs xnor: {a.summary()}", flush=True)
        cell_b = ("skipped", "skipped")
        if not args.skip_analog:
            eng = XnorEngine(prog)
            chip = AnalogChip(prog, AnalogConfig.ideal(), chip_seed=0)
            b = compare_runs(eng.run, chip.run, data, batch_size=32, progress=True)
            print(f"{name}: xnor vs analog ideal: {b.summary()}", flush=True)
            cell_b = (f"{b.spike_mismatches} of {b.decisions:,} differ", f"{b.prediction_mismatches} differ")
            ok &= b.exact
        ok &= a.non_tie_mismatches == 0 and a.prediction_mismatches == 0
        lines.append(f"| {name} | {a.images} | {a.total_mismatches} of {sum(a.decisions.values()):,} differ | "
                     f"{a.prediction_mismatches} differ | {a.ties} | {cell_b[0]} | {cell_b[1]} | {time.time() - t0:.0f} s |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
