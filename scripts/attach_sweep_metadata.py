#!/usr/bin/env python3
"""Give a shipped trials.parquet written before 2026-12-02 the sweep metadata that `imcnoise report`
and `load_results` read when there is no store (axes, scenario, noise-free reference, stops).

    .venv/bin/python scripts/attach_sweep_metadata.py results/stt_mram_reference scenarios/stt_mram_reference.yaml

Nothing is copied by hand: the scenario document and the noise-free reference accuracies come from
the sweep's own code (`prepare` + `open_store` into a temporary directory: the reference is the
integer XNOR engine on the scenario's images, seconds), checked against the trials (same scenario
hash, same checkpoints); each point's stop is its number of stored trials with the reason a fixed
sweep records (its own stop rule). The trials themselves are not touched; the report is then rewritten from them.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import tempfile
from pathlib import Path

import pandas as pd

from imcnoise.sweep import load_scenario, write_report
from imcnoise.files import atomic_write
from imcnoise.sweep.report import TRIALS_FILE, results_from_frames
from imcnoise.sweep.runner import StopRule, load_data, open_store, prepare


def main(results: str, scenario: str) -> None:
    out = Path(results)
    trials = pd.read_parquet(out / TRIALS_FILE)
    sc, base = load_scenario(scenario)
    with tempfile.TemporaryDirectory() as tmp:
        prep = prepare(sc, base, tmp)
        if set(trials.scenario_hash) != {prep.digest}:
            sys.exit(f"error: {out}: trials of scenario hash {set(trials.scenario_hash)}, {scenario} has {prep.digest}")
        for m, h in prep.hashes.items():
            if set(trials.loc[trials.model == m, "checkpoint_sha256"]) != {h}:
                sys.exit(f"error: {out}: the {m} trials come from another checkpoint than {scenario} names")
        store = open_store(prep, load_data(sc, sc.dataset.limit))
        rule = StopRule(sc)
        for pt, g in trials.groupby("point"):
            acc = g.pivot(index="trial", columns="model", values="accuracy")
            diffs = (acc["bsnn"] - acc["bnn"]).to_dict()
            store.set_stop(int(pt), len(diffs), rule.reason(diffs))  # the reason the sweep itself records
        store.close()
        db = sqlite3.connect(Path(tmp) / "results.sqlite")
        reference = pd.read_sql_query("SELECT model, accuracy, n_images, checkpoint_sha256 FROM reference", db)
        stops = pd.read_sql_query("SELECT * FROM stops", db).set_index("point")
        doc = json.loads(db.execute("SELECT value FROM meta WHERE key = 'scenario'").fetchone()[0])
        db.close()
    axes = list(trials.attrs.get("axes") or [])
    res = results_from_frames(trials, axes, stops, reference, doc)
    atomic_write(out / TRIALS_FILE, lambda t: res["trials"].to_parquet(t, index=False))
    res = write_report(out)
    print(res["markdown"])


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
