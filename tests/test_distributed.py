"""Sweeps on a Dask cluster (issue 13): identical tables, worker faults, adaptive trials, clear errors."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time

import pandas as pd
import pytest
from typer.testing import CliRunner

from imcnoise.cli.main import app
from imcnoise.sweep import load_scenario, prepare
from imcnoise.sweep.distributed import Cluster, run_sweep_distributed

from helpers import REPO_ROOT
from test_sweep import VOLATILE, ckpts, trials_of, write_scenario  # noqa: F401  (ckpts is a fixture)

pytest.importorskip("distributed")


def _parquet(out):
    return pd.read_parquet(out / "trials.parquet").drop(columns=VOLATILE)


def test_two_local_workers_give_the_in_process_tables(tmp_path):
    smoke = REPO_ROOT / "scenarios" / "smoke.yaml"
    for name, extra in (("local", []), ("dask", ["--workers", "2"])):
        r = CliRunner().invoke(app, ["sweep", str(smoke), "--out", str(tmp_path / name), "--no-progress", "--limit", "8",
                                     *extra])
        assert r.exit_code == 0, r.output
    a, b = _parquet(tmp_path / "local"), _parquet(tmp_path / "dask")
    assert len(a) == 16
    pd.testing.assert_frame_equal(a, b)


def test_adaptive_trials_on_workers_equal_the_sequential_rule(tmp_path, ckpts):  # noqa: F811
    outs = []
    for name, extra in (("seq", []), ("dask", ["--workers", "2", "--chips-per-pass", "1"])):
        f = write_scenario(tmp_path / f"{name}.yaml", ckpts, output=str(tmp_path / name))
        r = CliRunner().invoke(app, ["sweep", str(f), "--no-progress", "--ci-target", "0.2", "--min-trials", "2",
                                     "--max-trials", "6", *extra])
        assert r.exit_code == 0, r.output
        outs.append(tmp_path / name)
    pd.testing.assert_frame_equal(trials_of(outs[0]), trials_of(outs[1]))
    stops = [sqlite3.connect(o / "results.sqlite").execute("SELECT * FROM stops ORDER BY point").fetchall() for o in outs]
    assert stops[0] == stops[1]


def test_a_killed_worker_does_not_change_the_tables(tmp_path, ckpts):  # noqa: F811
    over = {"trials": 4, "run.chips_per_pass": 1, "dataset.limit": 48}
    ref = write_scenario(tmp_path / "ref.yaml", ckpts, output=str(tmp_path / "ref"), **over)
    assert CliRunner().invoke(app, ["sweep", str(ref), "--no-progress"]).exit_code == 0
    f = write_scenario(tmp_path / "s.yaml", ckpts, output=str(tmp_path / "dask"), **over)
    sc, base = load_scenario(f)
    prep = prepare(sc, base)
    done = {}
    with Cluster(workers=2) as client:
        pids = client.run(os.getpid)
        t = threading.Thread(target=lambda: done.setdefault("store", run_sweep_distributed(prep, client, progress=False,
                                                                                            log=lambda *a: None)))
        t.start()
        db = tmp_path / "dask" / "results.sqlite"
        deadline = time.time() + 300
        while time.time() < deadline:  # kill one worker as soon as the first rows are stored
            time.sleep(0.2)
            try:
                n = sqlite3.connect(db, timeout=1).execute("SELECT COUNT(*) FROM trials").fetchone()[0] if db.exists() else 0
            except sqlite3.Error:
                continue
            if n >= 2:
                break
        os.kill(next(iter(pids.values())), signal.SIGKILL)
        t.join(600)
        assert not t.is_alive() and "store" in done
        done["store"].close()
    assert n < 4 * 4 * 2  # killed mid-run (points x trials x models)
    pd.testing.assert_frame_equal(trials_of(tmp_path / "dask"), trials_of(tmp_path / "ref"))


def test_unreachable_scheduler_and_bad_cluster_flags_give_clear_errors(tmp_path):
    smoke = REPO_ROOT / "scenarios" / "smoke.yaml"
    r = CliRunner().invoke(app, ["sweep", str(smoke), "--out", str(tmp_path / "x"), "--scheduler", "tcp://127.0.0.1:9",
                                 "--set", "run.batch_size=32"])
    assert r.exit_code == 2 and "cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'" in r.output, r.output
    r = CliRunner().invoke(app, ["sweep", str(smoke), "--out", str(tmp_path / "x"), "--scheduler", "tcp://127.0.0.1:9",
                                 "--workers", "2"])
    assert r.exit_code == 2 and "either workers" in r.output
    r = CliRunner().invoke(app, ["sweep", str(smoke), "--out", str(tmp_path / "x"), "--workers", "0"])
    assert r.exit_code == 2 and "run.workers" in r.output


def test_dry_run_lists_points_and_estimates_time_without_writing(tmp_path):
    r = CliRunner().invoke(app, ["sweep", str(REPO_ROOT / "scenarios" / "smoke.yaml"), "--out", str(tmp_path / "x"), "--dry-run"])
    assert r.exit_code == 0, r.output
    assert "4 points x 2 chip instances x 2 models x 32 images" in r.output
    assert "estimated time in this process" in r.output and "Dask workers" in r.output
    assert not (tmp_path / "x").exists()
