#!/usr/bin/env python3
"""Copy trials another sweep already computed into a sweep's store, where they are the same computation.

A trial's numbers are a function of its point's configuration (the chip, inference, data set and
input seed: ``scenario.POINT_DEFINING``), the model checkpoint (its SHA-256) and the chip seed
(``runner.chip_seed``: derived from the scenario seed and the trial index) -- never of the scenario
it ran in, of batching, of chips per pass or of the process (README "Reproducibility and exactness";
tests/test_fast_engine.py). So when two scenarios share a point configuration, a seed and the
checkpoints, the trials one of them shipped (``trials.parquet``) are the other's, bit for bit. This
script puts them into a sweep's store before that sweep runs; the sweep then computes only the
points it does not find, and its tables are what a full run gives (``--verify`` checks that on
points both have computed).

    .venv/bin/python scripts/reuse_trials.py SCENARIO --out DIR --from RESULTS_DIR [RESULTS_DIR ...] [--verify]
        [--trials N] [--limit N]

``--trials`` / ``--limit`` override the scenario's as the sweep's own options do (give the sweep the same ones:
the store records the scenario it was made for).

A source point is reused only if its configuration equals the destination point's field for field,
each model's checkpoint hash is the same, and the image count agrees; of its trials the first n are
copied (0 .. n-1, every model, each with the chip seed the destination draws for that index; n at
most the destination's trials), so a scenario that asks for more chips per point than its source ran
computes only the rest. A destination point that already holds trials is left alone; a point is marked
finished only when all its trials came over. ``--verify``: for destination points the sweep has already computed,
compare their stored rows with what this script would copy (every field but wall time, finish time,
package versions and scenario hash) and write nothing.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import pandas as pd

from imcnoise.sweep.points import flatten, point_scenario
from imcnoise.sweep.runner import StopRule, _diffs, chip_seed, load_data, open_store, point_config, prepare
from imcnoise.sweep.scenario import load_scenario
from imcnoise.sweep.store import ResultsStore

COLUMNS = ["point", "model", "trial", "chip_seed", "accuracy", "correct", "n_images", "spike_rates", "errors", "energy_nj",
           "latency_us", "energy", "wall_s", "engine", "checkpoint_sha256", "scenario_hash", "versions", "finished_at"]
NOT_COMPARED = {"wall_s", "finished_at", "versions", "scenario_hash"}


def _same(a, b) -> bool:
    missing = lambda v: v is None or (isinstance(v, float) and math.isnan(v))
    if missing(a) or missing(b):
        return missing(a) and missing(b)
    return a == b


def source_points(frame: pd.DataFrame) -> dict[int, tuple[dict, pd.DataFrame]]:
    """Per source point: its configuration (the ``param.`` columns, case name left out) and its rows."""
    params = [c for c in frame.columns if c.startswith("param.") and c != "param.case"]
    out = {}
    for p, rows in frame.groupby("point"):
        first = rows.iloc[0]
        out[int(p)] = ({c[len("param."):]: (None if pd.isna(first[c]) else first[c].item() if hasattr(first[c], "item")
                                            else first[c]) for c in params}, rows)
    return out


def store_rows(rows: pd.DataFrame, point: int, scenario_hash: str) -> list[dict]:
    """The store's rows (runner.trial_rows' fields) of a source point's parquet rows."""
    rates = sorted((c for c in rows.columns if c.startswith("rate.L")), key=lambda c: int(c[len("rate.L"):]))
    energy = [c for c in rows.columns if c.startswith("energy_nj.")]
    out = []
    for _, r in rows.iterrows():
        e = {c[len("energy_nj."):]: float(r[c]) for c in energy if not pd.isna(r[c])}
        out.append({"point": point, "model": r["model"], "trial": int(r["trial"]), "chip_seed": int(r["chip_seed"]),
                    "accuracy": float(r["accuracy"]), "correct": int(r["correct"]), "n_images": int(r["n_images"]),
                    "spike_rates": json.dumps({c[len("rate.L"):]: float(r[c]) for c in rates if not pd.isna(r[c])}),
                    "errors": None if r["errors"] is None or (isinstance(r["errors"], float) and math.isnan(r["errors"]))
                    else r["errors"],
                    "energy_nj": float(r["energy_nj"]), "latency_us": float(r["latency_us"]),
                    "energy": json.dumps(e) if e else None, "wall_s": float(r["wall_s"]), "engine": r["engine"],
                    "checkpoint_sha256": r["checkpoint_sha256"], "scenario_hash": scenario_hash,
                    "versions": r["versions"], "finished_at": r["finished_at"]})
    return out


def reusable_trials(rows: pd.DataFrame, prep, n_images: int) -> int:
    """How many leading trials (0 .. n-1) of a source point are complete for every model, each with the
    destination's chip seed for its index, the destination's checkpoint and image count."""
    n = 0
    while n < prep.scenario.trials:
        s = chip_seed(prep.scenario, n)
        if not all(((rows.model == m) & (rows.trial == n) & (rows.chip_seed == s) & (rows.n_images == n_images)
                    & (rows.checkpoint_sha256 == prep.hashes[m])).sum() == 1 for m in prep.models):
            break
        n += 1
    return n


def matching(prep, point, psc, sources, n_images: int):
    """The source point that is the same computation as ``point`` with the most reusable trials:
    (results dir, point, its first n trials' rows) or None."""
    want = {k: v for k, v in flatten(point_config(psc)).items()}
    best = None
    for where, points in sources:
        for sp, (config, rows) in points.items():
            if set(config) != set(want) or not all(_same(config[k], want[k]) for k in want):
                continue
            n = reusable_trials(rows, prep, n_images)
            if n and (best is None or n > best[0]):
                best = (n, where, sp, rows[rows.trial < n])
    return None if best is None else best[1:]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenario", type=Path)
    ap.add_argument("--out", type=Path, required=True, help="the destination sweep's output directory")
    ap.add_argument("--from", dest="sources", type=Path, nargs="+", required=True, help="result directories with trials.parquet")
    ap.add_argument("--verify", action="store_true", help="compare with points the destination already computed; write nothing")
    ap.add_argument("--trials", type=int, default=None, help="chip instances per point (the sweep's --trials)")
    ap.add_argument("--limit", type=int, default=None, help="images (the sweep's --limit)")
    args = ap.parse_args()
    overrides = [(k, v) for k, v in (("trials", args.trials), ("dataset.limit", args.limit)) if v is not None]
    sc, _ = load_scenario(args.scenario, overrides)
    prep = prepare(sc, args.scenario.parent, args.out)
    base_data = load_data(sc, sc.dataset.limit)
    sources = []
    for d in args.sources:
        f = d / "trials.parquet"
        if not f.is_file():
            raise SystemExit(f"--from {d}: no trials.parquet there")
        sources.append((d, source_points(pd.read_parquet(f))))
    # --verify reads the store while its sweep may still be writing (read-only, no lock); copying needs the lock
    store = ResultsStore(args.out, create=False) if args.verify else open_store(prep, base_data)
    rule = StopRule(sc)
    reused = compared = 0
    try:
        for p in prep.points:
            psc = point_scenario(sc, p)
            n = len(base_data) if psc.dataset.limit == sc.dataset.limit else len(load_data(psc, psc.dataset.limit))
            have = store.point_accuracies(p.index)
            found = matching(prep, p, psc, sources, n)
            if found is None:
                continue
            where, sp, rows = found
            new = store_rows(rows, p.index, prep.digest)
            if args.verify:
                if not have:
                    continue
                stored = {(r[1], r[2]): dict(zip(COLUMNS, r)) for r in store.db.execute(
                    f"SELECT {', '.join(COLUMNS)} FROM trials WHERE point = ?", (p.index,))}
                diff = [(r["model"], r["trial"], c) for r in new for c in COLUMNS if c not in NOT_COMPARED
                        and not _same(r[c], stored.get((r["model"], r["trial"]), {}).get(c))]
                compared += 1
                print(f"point {p.index} ({p.label()}) against {where} point {sp}: "
                      + ("identical in every compared field" if not diff else f"{len(diff)} fields differ, e.g. {diff[:3]}"))
                if diff:
                    return 1
                continue
            if have:
                print(f"point {p.index} ({p.label()}): already holds {len(have)} trials; left alone")
                continue
            store.add_trials(new)
            n = len(new) // len(prep.models)
            if n == sc.trials:  # complete: finished as the sweep would have finished it
                store.set_stop(p.index, sc.trials, rule.reason(_diffs(store.point_accuracies(p.index), rule)))
            reused += 1
            print(f"point {p.index} ({p.label()}): trials 0-{n - 1} ({len(new)} rows) from {where} point {sp}"
                  + ("" if n == sc.trials else f"; the sweep runs trials {n}-{sc.trials - 1}"))
    finally:
        store.close()
    print(f"{compared} points verified" if args.verify else f"{reused} of {len(prep.points)} points reused")
    return 0


if __name__ == "__main__":
    sys.exit(main())
