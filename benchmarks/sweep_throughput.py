#!/usr/bin/env python3
"""Chip-trials x images per second of a sweep, per model and engine, on the default scenario.

    .venv/bin/python benchmarks/sweep_throughput.py [--scenario scenarios/stt_mram.yaml] [--points 2] [--trials 2] [--images 200]
    .venv/bin/python benchmarks/sweep_throughput.py --results results/design_space_reference

Runs the first `--points` points of the scenario with `--trials` chip instances each into a
temporary directory, once per engine, and reports the throughput of each model (from the per-trial
wall times stored in the results) and of the whole sweep (wall clock, including set-up).

``--results DIR`` instead reads a finished sweep (its store or shipped trials.parquet) and reports
the wall time of each of its points -- every chip instance of every model, programming included, as
each trial recorded it: for ``results/design_space_reference`` the time of one design-space point
(16 chips x 2000 images, both models) per architecture, on the machine and load its log names.
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
    ap.add_argument("--results", default=None, help="a finished sweep's folder: per-point wall time from its trials")
    args = ap.parse_args()
    if args.results:
        return point_times(Path(args.results))
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


def point_times(directory: Path) -> None:
    """Per point of a finished sweep: its parameters, chips, images, each model's summed trial seconds
    and the point's total (the trials' own wall times: programming, calibration and inference)."""
    res = load_results(directory)
    tr, axes = res["trials"], res.get("axes") or []
    print(f"sweep {directory} (trial wall times as stored; the machine is the one its log names)\n")
    models = sorted(tr.model.unique())
    print("| point | parameters | chips | images | " + " | ".join(f"{m} s" for m in models) + " | point s | min |")
    print("|---|---|---|---|" + "---|" * len(models) + "---|---|")
    for p, g in tr.groupby("point"):
        params = ", ".join(f"{a}={g[f'param.{a}'].iloc[0]}" for a in axes if f"param.{a}" in g)
        secs = [float(g[g.model == m].wall_s.sum()) for m in models]
        chips = g.trial.nunique()
        print(f"| {p} | {params} | {chips} | {int(g.n_images.iloc[0])} | " + " | ".join(f"{x:.0f}" for x in secs)
              + f" | {sum(secs):.0f} | {sum(secs) / 60:.1f} |")


if __name__ == "__main__":
    main()
