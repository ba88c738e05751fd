#!/usr/bin/env python3
"""Chip pairs per second of the same sweep in process (1 thread) and on 1 and 2 Dask workers.

    .venv/bin/python benchmarks/sweep_scaling.py [--scenario scenarios/stt_mram.yaml] [--points 4] [--trials 4] [--images 300]

The first `--points` points of the scenario with `--trials` chip instances each, 2 models, into a
temporary directory, three times in one run: in this process with 1 torch thread, and on local
Dask clusters of 1 and 2 worker processes (1 thread each; blocks of `--block` chips). The Dask runs
include starting the cluster and each worker's set-up (imports, folding, data, compiled kernels
from the disk cache). All three tables must be identical; the script checks it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from _common import machine
from imcnoise.sweep import load_results, load_scenario, prepare, run_sweep
from imcnoise.sweep.distributed import Cluster, run_sweep_distributed

VOLATILE = ["wall_s", "finished_at", "versions"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default="scenarios/stt_mram.yaml")
    ap.add_argument("--points", type=int, default=4)
    ap.add_argument("--trials", type=int, default=4)
    ap.add_argument("--images", type=int, default=300)
    ap.add_argument("--block", type=int, default=1, help="chips per Dask task")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"machine: {machine()}\n")
    print("| executor | chip pairs | seconds | chip pairs / s | speed-up vs 1 worker |\n|---|---|---|---|---|")
    tables, rate = {}, {}
    for name, workers in (("in process, 1 thread", None), ("Dask, 1 worker", 1), ("Dask, 2 workers", 2)):
        sc, base = load_scenario(args.scenario, [("trials", args.trials), ("dataset.limit", args.images),
                                                 ("run.chips_per_pass", args.block)])
        with tempfile.TemporaryDirectory() as tmp:
            prep = prepare(sc, base, Path(tmp) / "out")
            prep.points = prep.points[: args.points]
            t = time.perf_counter()
            if workers is None:
                run_sweep(prep, progress=False, log=lambda *a: None).close()
            else:
                with Cluster(workers=workers) as client:
                    run_sweep_distributed(prep, client, progress=False, log=lambda *a: None).close()
            dt = time.perf_counter() - t
            tables[name] = load_results(Path(tmp) / "out")["trials"].drop(columns=VOLATILE)
        pairs = args.points * args.trials
        rate[name] = pairs / dt
        ref = rate.get("Dask, 1 worker")
        print(f"| {name} | {pairs} | {dt:.1f} | {rate[name]:.3f} | {rate[name] / ref:.2f}x |" if ref else
              f"| {name} | {pairs} | {dt:.1f} | {rate[name]:.3f} | |", flush=True)
    first = next(iter(tables.values()))
    for name, tab in tables.items():
        pd.testing.assert_frame_equal(first, tab)
    print(f"\ntables identical: yes; 2 workers vs 1: {rate['Dask, 2 workers'] / rate['Dask, 1 worker']:.2f}x")


if __name__ == "__main__":
    main()
