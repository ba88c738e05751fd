#!/usr/bin/env python3
"""Chip-trials x images per second of a sweep, per model and engine, on the default scenario.

    .venv/bin/python benchmarks/sweep_throughput.py [--scenario scenarios/stt_mram.yaml] [--points 2] [--trials 2] [--images 200]

Runs the first `--points` points of the scenario with `--trials` chip instances each into a
temporary directory, once per engine, and reports the throughput of each model (from the per-trial
wall times stored in the results) and of the whole sweep (wall clock, including set-up).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


from _common import machine
from imcnoise.sweep import load_results, load_scenario, prepare, run_sweep


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default="scenarios/stt_mram.yaml")
    ap.add_argument("--points", type=int, default=2)
    ap.add_argument("--trials", type=int, default=2)
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--engines", nargs="*", default=["fast", "aihwkit"])
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda")
    args = ap.parse_args()
    print(f"machine: {machine()}\n")
    print("| engine | model | chip-trials | images each | model seconds | chip-trials x images / s | sweep wall s |")
    print("|---|---|---|---|---|---|---|")
    for engine in args.engines:
        sc, base = load_scenario(args.scenario, [("trials", args.trials), ("dataset.limit", args.images), ("run.engine", engine), ("run.device", args.device)])
        with tempfile.TemporaryDirectory() as tmp:
            prep = prepare(sc, base, Path(tmp) / "out")
            prep.points = prep.points[: args.points]
            t = time.perf_counter()
            run_sweep(prep, progress=False, log=lambda *a: None).close()
            wall = time.perf_counter() - t
            tr = load_results(Path(tmp) / "out")["trials"]
        for m, g in tr.groupby("model"):
            n, imgs, secs = len(g), int(g.n_images.iloc[0]), float(g.wall_s.sum())
            print(f"| {engine} | {m} | {n} | {imgs} | {secs:.1f} | {n * imgs / secs:.1f} | {wall:.1f} |")


if __name__ == "__main__":
    main()
