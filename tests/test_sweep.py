"""Monte Carlo sweeps: scenario validation, crash-safe resumable store, reproducibility, statistics, plots."""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from scipy import stats
from typer.testing import CliRunner

from imcnoise.cli.main import app
from imcnoise.models.checkpoint import save_checkpoint
from imcnoise.sweep import load_results
from imcnoise.sweep.stats import t_halfwidth as ci_halfwidth

from helpers import calibrated_model, assert_clean_error

VOLATILE = ["wall_s", "finished_at", "versions"]


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpts")
    out = {}
    for kind in ("bsnn", "bnn"):
        m = calibrated_model(kind, width=0.125, timesteps=2)
        out[kind] = save_checkpoint(d / f"{kind}.pt", m, training={}, metrics={}, data={"dataset": "fashion-mnist"})
    return out


def write_scenario(path: Path, ckpts, **over) -> Path:
    sc = {
        "name": "test", "seed": 3,
        "dataset": {"name": "fashion-mnist", "limit": 24},
        "models": {"bsnn": str(ckpts["bsnn"]), "bnn": str(ckpts["bnn"])},
        # the swept spreads and offsets are the only non-idealities (AnalogConfig.ideal's other settings),
        # so the noise-free corner must reproduce the integer engine
        "chip": {"device": {"model": "stt_mram", "sigma_r_p": 0.04, "sigma_r_ap": 0.04},
                 "sense_amp": {"offset_sigma_lsb": 0.5, "adc_bits": None}, "buffer": {"kt_c_noise": False},
                 "array": {"wire_resistance_ohm": 0.0}},
        "sweep": {"axes": [{"paths": ["chip.device.sigma_r_p", "chip.device.sigma_r_ap"], "values": [0.0, 0.05]},
                           {"path": "chip.sense_amp.offset_sigma_lsb", "values": [0.0, 1.0]}]},
        "trials": 3, "run": {"batch_size": 12, "chips_per_pass": 2},
        "output": str(path.parent / "out"),
    }
    for k, v in over.items():
        cur = sc
        parts = k.split(".")
        for p in parts[:-1]:
            cur = cur.setdefault(p, {})
        cur[parts[-1]] = v
    path.write_text(yaml.safe_dump(sc))
    return path


def run_cli(*args):
    return CliRunner().invoke(app, ["sweep", *map(str, args), "--no-progress"])


def trials_of(out: Path) -> pd.DataFrame:
    db = sqlite3.connect(out / "results.sqlite")
    df = pd.read_sql_query("SELECT * FROM trials ORDER BY point, model, trial", db)
    db.close()
    return df.drop(columns=VOLATILE)


@pytest.mark.parametrize("over,expect", [
    ({"chip.device.sigma_r_p": -0.1}, r"chip\.device\.sigma_r_p: Input should be greater than or equal to 0 \[allowed 0 \.\. 1\] \(got -0\.1\)"),
    ({"chip.device.p_stuck_p": 1.5}, r"chip\.device\.p_stuck_p: Input should be less than or equal to 1 \[allowed 0 \.\. 1\] \(got 1\.5\)"),
    ({"chip.sense_amp.offset": 1.0}, r"chip\.sense_amp\.offset: unknown key; allowed keys: scheme, stage, .*offset_sigma_v, offset_sigma_lsb"),
    ({"trials": "many"}, r"trials: Input should be a valid integer"),
    ({"chip.device.model": "flash"}, r"chip\.device: .*'stt_mram', 'rram'"),
    ({"models.bsnn": "nowhere.pt"}, r"models: checkpoint 'nowhere.pt' not found"),
    ({"sweep.axes": [{"path": "chip.device.sigma_rp", "values": [0.1]}]},
     r"sweep\.axes\[0\]\.path: 'chip\.device\.sigma_rp' is not a parameter of this scenario \(chip\.device has: "),
    ({"sweep.axes": [{"path": "chip.device.sigma_r_p", "values": [0.1, -2]}]},
     r"sweep\.axes\[0\]\.values\[1\] -> chip\.device\.sigma_r_p: Input should be greater than or equal to 0"),
    ({"dataset.name": "imagenet"}, r"dataset\.name: Value error, unknown data set 'imagenet'"),
    ({"unknown_top": 1}, r"unknown_top: unknown key"),
])
def test_bad_scenario_gives_clear_error_and_writes_nothing(tmp_path, ckpts, over, expect):
    f = write_scenario(tmp_path / "s.yaml", ckpts, **over)
    r = run_cli(f)
    assert r.exit_code == 2, r.output
    assert "error:" in r.output
    assert_clean_error(r)
    assert str(f) in r.output or "models:" in r.output  # the file, or the models section, is named
    import re

    assert re.search(expect, r.output), r.output
    assert not (tmp_path / "out").exists()


def test_wrong_model_kind_and_missing_data_are_refused(tmp_path, ckpts):
    f = write_scenario(tmp_path / "s.yaml", ckpts, **{"models.bsnn": str(ckpts["bnn"])})
    r = run_cli(f)
    assert r.exit_code == 2 and "holds a 'bnn' model" in r.output
    f = write_scenario(tmp_path / "s.yaml", ckpts, **{"dataset.name": "cifar100", "dataset.data_dir": str(tmp_path)})
    r = run_cli(f)
    assert r.exit_code == 2 and "trained on 'fashion-mnist'" in r.output
    assert not (tmp_path / "out").exists()
    # checkpoints of a data set that is not here (and may not be downloaded): refused before anything is written
    c100 = {}
    for kind in ("bsnn", "bnn"):
        m = calibrated_model(kind, width=0.125, timesteps=2)
        c100[kind] = save_checkpoint(tmp_path / f"{kind}100.pt", m, training={}, metrics={}, data={"dataset": "cifar100"})
    (tmp_path / "empty").mkdir()
    f = write_scenario(tmp_path / "s.yaml", c100, **{"dataset.name": "cifar100", "dataset.data_dir": str(tmp_path / "empty")})
    r = run_cli(f)
    assert r.exit_code == 2 and "dataset:" in r.output and "cifar-100" in r.output.lower() and "downloads are off" in r.output, r.output
    assert not (tmp_path / "out").exists()


def test_same_seed_gives_identical_parquet_and_paired_stats_match_hand_computation(tmp_path, ckpts):
    outs = []
    for name, extra in (("a", ["--chips-per-pass", "2", "--batch-size", "12"]), ("b", ["--chips-per-pass", "3", "--batch-size", "7"])):
        f = write_scenario(tmp_path / f"{name}.yaml", ckpts)
        r = run_cli(f, "--out", tmp_path / name, *extra)
        assert r.exit_code == 0, r.output
        assert "B-SNN - BNN" in r.output  # the summary table is printed
        outs.append(tmp_path / name)
    a = pd.read_parquet(outs[0] / "trials.parquet").drop(columns=VOLATILE)
    b = pd.read_parquet(outs[1] / "trials.parquet").drop(columns=VOLATILE)
    pd.testing.assert_frame_equal(a, b)  # other chip and image batching, same numbers
    assert len(a) == 4 * 3 * 2 and not a.duplicated(["point", "model", "trial"]).any()
    # every parameter value is in the table
    assert {"param.chip.device.sigma_r_p", "param.chip.sense_amp.offset_sigma_lsb", "param.chip.array.rows"} <= set(a.columns)
    # paired difference and CI by hand
    res = load_results(outs[0])
    p = res["paired"].iloc[-1]
    g = a[a.point == p.point].pivot(index="trial", columns="model", values="accuracy")
    d = (g["bsnn"] - g["bnn"]).to_numpy()
    h = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    assert p.diff_mean == pytest.approx(d.mean()) and p.diff_ci95_low == pytest.approx(d.mean() - h)
    if d.std() > 0:
        assert p.ttest_rel_p == pytest.approx(stats.ttest_rel(g["bsnn"], g["bnn"]).pvalue)
    # plots exist and are real images
    for png in ("accuracy_vs_sigma_r_p.png", "accuracy_vs_offset_sigma_lsb.png"):
        data = (outs[0] / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    summary = pd.read_csv(outs[0] / "summary.csv")
    assert set(summary.model) == {"bsnn", "bnn", "bsnn-bnn"}
    md = (outs[0] / "summary.md").read_text()
    assert "| sigma_r_p | sigma_r_ap | offset_sigma_lsb | B-SNN | BNN | B-SNN - BNN [95% CI] | p (t) | n | nJ B-SNN | nJ BNN | stop |" in md
    assert md.count("| 0.05 | 0.05 | 1.0 |") == 1  # one row per point
    # the noise-free point reproduces the integer XNOR engine on every chip
    ref = res["reference"].set_index("model").accuracy
    zero = a[(a["param.chip.device.sigma_r_p"] == 0) & (a["param.chip.sense_amp.offset_sigma_lsb"] == 0)]
    for m in ("bsnn", "bnn"):
        assert (zero[zero.model == m].accuracy == ref[m]).all()


def test_changed_scenario_in_same_directory_is_refused(tmp_path, ckpts):
    f = write_scenario(tmp_path / "s.yaml", ckpts, trials=1)
    assert run_cli(f).exit_code == 0
    before = trials_of(tmp_path / "out")
    r = run_cli(f, "--set", "chip.device.tmr=0.5")
    assert r.exit_code == 2 and "different scenario" in r.output
    pd.testing.assert_frame_equal(before, trials_of(tmp_path / "out"))  # nothing touched
    # more trials of the same scenario extend it
    assert run_cli(f, "--trials", "2").exit_code == 0
    after = trials_of(tmp_path / "out")
    assert len(after) == 2 * len(before)
    pd.testing.assert_frame_equal(before, after[after.trial == 0].reset_index(drop=True))


def test_sigkill_mid_run_resumes_to_exactly_the_uninterrupted_rows(tmp_path, ckpts):
    over = {"trials": 4, "run.chips_per_pass": 1, "dataset.limit": 48}
    ref_f = write_scenario(tmp_path / "ref.yaml", ckpts, output=str(tmp_path / "ref"), **over)
    assert run_cli(ref_f).exit_code == 0
    f = write_scenario(tmp_path / "s.yaml", ckpts, output=str(tmp_path / "killed"), **over)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "imcnoise.cli.main", "sweep", str(f), "--no-progress"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = tmp_path / "killed" / "results.sqlite"
    deadline = time.time() + 240
    n = 0
    while time.time() < deadline:
        time.sleep(0.2)
        if db.exists():
            try:
                c = sqlite3.connect(db, timeout=1)
                n = c.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
                c.close()
            except sqlite3.Error:
                continue
            if n >= 4:
                break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 4 <= n < 32, n  # killed mid-run
    partial = trials_of(tmp_path / "killed")
    assert len(partial) % 2 == 0  # pairs are written together
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    pd.testing.assert_frame_equal(trials_of(tmp_path / "killed"), trials_of(tmp_path / "ref"))


def test_adaptive_trials_stop_at_ci_target_independent_of_batching(tmp_path, ckpts):
    outs = []
    for name, chips in (("a", 1), ("b", 4)):
        f = write_scenario(tmp_path / f"{name}.yaml", ckpts, output=str(tmp_path / name))
        r = run_cli(f, "--ci-target", "0.2", "--min-trials", "2", "--max-trials", "6", "--chips-per-pass", chips)
        assert r.exit_code == 0, r.output
        outs.append(tmp_path / name)
    a, b = trials_of(outs[0]), trials_of(outs[1])
    pd.testing.assert_frame_equal(a, b)
    res = load_results(outs[0])
    for row in res["paired"].itertuples():
        d = a[a.point == row.point].pivot(index="trial", columns="model", values="accuracy")
        diffs = list(d["bsnn"] - d["bnn"])
        assert row.n_pairs == len(diffs) >= 2
        if row.n_pairs < 6:
            assert ci_halfwidth(diffs) < 0.2 and "target" in row.stop_reason
            assert all(ci_halfwidth(diffs[:n]) >= 0.2 for n in range(2, len(diffs)))
        else:
            assert "max_trials" in row.stop_reason


def test_report_command_and_api(tmp_path, ckpts):
    f = write_scenario(tmp_path / "s.yaml", ckpts, trials=2)
    assert run_cli(f).exit_code == 0
    (tmp_path / "out" / "summary.md").unlink()
    r = CliRunner().invoke(app, ["report", str(tmp_path / "out")])
    assert r.exit_code == 0 and (tmp_path / "out" / "summary.md").is_file()
    res = load_results(tmp_path / "out")
    assert set(res) >= {"trials", "per_model", "paired", "reference"}
    r = CliRunner().invoke(app, ["report", str(tmp_path / "nothing")])
    assert r.exit_code == 2 and "no sweep results" in r.output


def test_plots_take_categorical_axes_in_scenario_order(tmp_path):
    """A sweep over a string parameter (chip.calibration.mode) is plotted against its categories,
    in the scenario's order, beside a numeric axis (this used to fail after the tables were written)."""
    import matplotlib.image as mpimg

    from imcnoise.sweep.report import plot_axes

    modes, spreads = ["nominal", "reference", "trim"], [0.04, 0.08]
    rows, point = [], 0
    for mode in modes:
        for s in spreads:
            for m in ("bsnn", "bnn"):
                acc = 0.9 - (0.3 if (m == "bsnn" and mode != "trim") else 0.0) * s / 0.08
                rows.append({"point": point, "model": m, "mean": acc, "ci95_low": acc - 0.01, "ci95_high": acc + 0.01, "n": 4,
                             "chip.calibration.mode": mode, "chip.device.sigma_r_p": s})
            point += 1
    res = {"axes": ["chip.calibration.mode", "chip.device.sigma_r_p"], "per_model": pd.DataFrame(rows),
           "reference": pd.DataFrame([{"model": "bsnn", "accuracy": 0.9}, {"model": "bnn", "accuracy": 0.9}]),
           "scenario": {"scenario": {"name": "t", "sweep": {"axes": [{"path": "chip.calibration.mode", "values": modes},
                                                                      {"path": "chip.device.sigma_r_p", "values": spreads}]}}}, "models": ["bsnn", "bnn"]}
    files = plot_axes(res, tmp_path)
    assert [f.name for f in files] == ["accuracy_vs_mode.png", "accuracy_vs_sigma_r_p.png"]
    for f in files:
        assert mpimg.imread(f).shape[0] > 100


def test_duplicate_keys_and_deep_nesting_are_refused_naming_the_problem(tmp_path, ckpts):
    """PyYAML keeps the last of two equal keys silently; a scenario naming ``seed`` twice must be
    refused with the key and both lines, and YAML nested deeper than Python can recurse gets one
    clear error too; nothing is written."""
    f = write_scenario(tmp_path / "s.yaml", ckpts)
    text = f.read_text()
    f.write_text(text + "seed: 4\n")
    first = 1 + next(i for i, line in enumerate(text.splitlines()) if line.startswith("seed:"))
    r = run_cli(f)
    assert r.exit_code == 2 and f"found duplicate key 'seed' (first at line {first})" in r.output, r.output
    assert isinstance(r.exception, SystemExit) and not (tmp_path / "out").exists()
    f.write_text("a: " + "[" * 5000 + "]" * 5000 + "\n")
    r = run_cli(f)
    assert r.exit_code == 2 and "not valid YAML: nested too deeply to read" in r.output, r.output
    assert isinstance(r.exception, SystemExit)


def test_a_report_killed_mid_write_leaves_the_previous_files(tmp_path, ckpts, monkeypatch):
    """Every report file is written to a temporary file and renamed: when writing summary.csv
    fails half-way (here: after writing part of it), the previous summary.csv is intact and no
    temporary file is left behind."""
    from imcnoise.sweep import write_report

    f = write_scenario(tmp_path / "s.yaml", ckpts, trials=1)
    assert run_cli(f).exit_code == 0
    out = tmp_path / "out"
    before = (out / "summary.csv").read_bytes()
    assert len(before) > 100

    def broken(self, path, *a, **k):
        Path(path).write_text("point,mo")  # a partial file, then the disk fills up
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken)
    with pytest.raises(OSError, match="No space left"):
        write_report(out)
    assert (out / "summary.csv").read_bytes() == before
    assert not [p.name for p in out.iterdir() if ".tmp" in p.name]


def test_a_second_sweep_into_a_directory_being_written_is_refused(tmp_path, ckpts):
    """While one sweep holds OUT (its store open), a second one into OUT gets one clear error naming
    the holder, not an IntegrityError traceback; nothing of the first is touched, and once it is
    closed the directory can be written again."""
    from imcnoise.sweep import load_scenario, prepare
    from imcnoise.sweep.runner import open_store

    f = write_scenario(tmp_path / "s.yaml", ckpts, trials=1)
    sc, base = load_scenario(f)
    prep = prepare(sc, base)
    from imcnoise.data import load_dataset

    held = open_store(prep, load_dataset("fashion-mnist", "test").subset(sc.dataset.limit))
    try:
        r = run_cli(f)
        assert r.exit_code == 2 and "another sweep (pid " in r.output and "is writing results here" in r.output, r.output
        assert isinstance(r.exception, SystemExit)
        assert held.db.execute("SELECT count(*) FROM trials").fetchone()[0] == 0  # the refused sweep wrote nothing
    finally:
        held.close()
    assert run_cli(f).exit_code == 0


def test_a_bnn_trained_on_another_data_set_is_refused_naming_it(tmp_path, ckpts):
    """Both models' data sets are checked, not only the B-SNN's: a BNN whose checkpoint says
    cifar10-jpeg in a Fashion-MNIST scenario is refused before anything is written."""
    other = save_checkpoint(tmp_path / "bnn-cifar.pt", calibrated_model("bnn", width=0.125, timesteps=2), training={},
                            metrics={}, data={"dataset": "cifar10-jpeg"})
    f = write_scenario(tmp_path / "s.yaml", {"bsnn": ckpts["bsnn"], "bnn": other})
    r = run_cli(f)
    assert r.exit_code == 2 and f"models.bnn ({other}) was trained on 'cifar10-jpeg'" in r.output, r.output
    assert not (tmp_path / "out").exists()


def test_inference_timesteps_runs_the_bsnn_for_that_many_steps(tmp_path, ckpts):
    """``inference.timesteps: 4`` on a B-SNN trained at T = 2: on the noise-free chip every trial and
    the reference row equal the integer XNOR engine run for 4 steps (computed here from the folded
    checkpoint), and differ from 2 steps; the BNN (one pass) is unchanged."""
    import dataclasses

    from imcnoise.data import load_dataset
    from imcnoise.imc import evaluate_xnor, fold_checkpoint

    f = write_scenario(tmp_path / "t.yaml", ckpts, **{"inference.timesteps": 4, "trials": 2,
                                                      "sweep.axes": [{"paths": ["chip.device.sigma_r_p", "chip.device.sigma_r_ap"], "values": [0.0]}],
                                                      "chip.sense_amp.offset_sigma_lsb": 0.0})
    r = run_cli(f)
    assert r.exit_code == 0, r.output
    a = pd.read_parquet(tmp_path / "out" / "trials.parquet")
    data = load_dataset("fashion-mnist", "test").subset(24)
    prog = fold_checkpoint(ckpts["bsnn"])
    t4 = evaluate_xnor(dataclasses.replace(prog, timesteps=4), data, keep_predictions=True)
    t2 = evaluate_xnor(prog, data, keep_predictions=True)
    assert not torch.equal(t4.predictions, t2.predictions) or t4.spike_rates != t2.spike_rates
    assert (a[a.model == "bsnn"].correct == t4.correct).all()
    # the firing rates too: 24 images may give T = 2 and T = 4 the same number of correct answers
    # (asserted above: the rates or predictions of the two differ)
    for _, row in a[a.model == "bsnn"].iterrows():
        assert {l: row[f"rate.L{l}"] for l in t4.spike_rates} == pytest.approx(t4.spike_rates, rel=1e-12)
    assert (a[a.model == "bnn"].correct == evaluate_xnor(fold_checkpoint(ckpts["bnn"]), data).correct).all()
    ref = load_results(tmp_path / "out")["reference"].set_index("model")
    assert ref.loc["bsnn", "accuracy"] == t4.accuracy


def test_confidence_intervals_stay_within_what_a_mean_can_be():
    """Known answers, by hand. Two chips at 50 % and 100 %: mean 0.75, s = 0.35355, t_{0.975,1} =
    12.7062, h = 12.7062 * 0.35355 / sqrt(2) = 3.1766 -- the t interval [-2.43, 3.93] is cut to [0, 1].
    Four chips at 0.88, 0.89, 0.90, 0.91: mean 0.895, s = 0.012910, t_{0.975,3} = 3.1824,
    h = 0.020543: [0.874457, 0.915543], inside the range, unchanged. A paired difference of -0.9 and
    +0.9 (mean 0, h = 12.7062 * 1.27279 / 1.41421 = 11.4356) is cut to [-1, 1]."""
    from imcnoise.sweep.stats import ACCURACY_RANGE, DIFFERENCE_RANGE, mean_ci

    m, s, lo, hi = mean_ci([0.5, 1.0], ACCURACY_RANGE)
    assert (m, lo, hi) == (0.75, 0.0, 1.0) and s == pytest.approx(0.353553, abs=1e-6)
    m, s, lo, hi = mean_ci([0.88, 0.89, 0.90, 0.91], ACCURACY_RANGE)
    assert lo == pytest.approx(0.874457, abs=2e-6) and hi == pytest.approx(0.915543, abs=2e-6)
    assert mean_ci([-0.9, 0.9], DIFFERENCE_RANGE)[2:] == (-1.0, 1.0)
    assert ci_halfwidth([-0.9, 0.9]) == pytest.approx(11.4356, abs=1e-4)  # the stop rule sees the whole width
    assert all(math.isnan(x) for x in mean_ci([0.7], ACCURACY_RANGE)[1:])


def test_shipped_results_are_read_and_reported_without_their_store(tmp_path, ckpts):
    """Only trials.parquet, the summaries and plots are shipped (the store is not): load_results and
    `imcnoise report` on a directory holding just trials.parquet give the same tables, noise-free
    reference and stop reasons as from the store."""
    f = write_scenario(tmp_path / "s.yaml", ckpts)
    assert run_cli(f).exit_code == 0
    full = load_results(tmp_path / "out")
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    (shipped / "trials.parquet").write_bytes((tmp_path / "out" / "trials.parquet").read_bytes())
    r = CliRunner().invoke(app, ["report", str(shipped)])
    assert r.exit_code == 0, r.output
    assert (shipped / "summary.md").read_text() == (tmp_path / "out" / "summary.md").read_text()
    part = load_results(shipped)
    for k in ("per_model", "paired", "reference"):
        pd.testing.assert_frame_equal(part[k], full[k])
    assert part["scenario"] == full["scenario"] and list(part["stops"].reason) == list(full["stops"].reason)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_clean_error(CliRunner().invoke(app, ["report", str(empty)]))


def test_any_number_of_models_on_the_same_chips_with_the_compare_pairs(tmp_path, ckpts):
    """Three models (a second B-SNN beside the pair) and two compare pairs: every model runs on every
    chip instance (same chip seeds); the pair's models give exactly the numbers of a two-model sweep
    of the same scenario (adding a model changes nothing else); each pair's paired statistics are the
    hand-computed mean and Student-t interval of a - b over the chips; the summary has a column per
    model and per pair."""
    other = save_checkpoint(tmp_path / "bsnn2.pt", calibrated_model("bsnn", width=0.125, timesteps=2, seed=7), training={},
                            metrics={}, data={"dataset": "fashion-mnist"})
    two = write_scenario(tmp_path / "two.yaml", ckpts, output=str(tmp_path / "two"))
    three = write_scenario(tmp_path / "three.yaml", ckpts, output=str(tmp_path / "three"),
                           models={"bsnn": str(ckpts["bsnn"]), "bnn": str(ckpts["bnn"]), "bsnn_b": str(other)},
                           compare=[["bsnn", "bnn"], ["bsnn_b", "bsnn"]])
    for f in (two, three):
        r = run_cli(f)
        assert r.exit_code == 0, r.output
    a = pd.read_parquet(tmp_path / "two" / "trials.parquet").drop(columns=VOLATILE + ["scenario_hash"])
    b = pd.read_parquet(tmp_path / "three" / "trials.parquet").drop(columns=VOLATILE + ["scenario_hash"])
    assert set(b.model) == {"bsnn", "bnn", "bsnn_b"}
    seeds = b.pivot_table(index=["point", "trial"], columns="model", values="chip_seed")
    assert (seeds.nunique(axis=1) == 1).all() and len(seeds) == 4 * 3
    pd.testing.assert_frame_equal(b[b.model != "bsnn_b"].reset_index(drop=True), a.reset_index(drop=True))
    res = load_results(tmp_path / "three")
    assert res["models"] == ["bsnn", "bnn", "bsnn_b"] and res["pairs"] == [("bsnn", "bnn"), ("bsnn_b", "bsnn")]
    row = res["paired"][(res["paired"].point == 3) & (res["paired"].pair == "bsnn_b-bsnn")].iloc[0]
    g = b[b.point == 3].pivot(index="trial", columns="model", values="accuracy")
    d = (g["bsnn_b"] - g["bsnn"]).to_numpy()
    h = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    assert row.diff_mean == pytest.approx(d.mean()) and row.diff_ci95_low == pytest.approx(max(-1.0, d.mean() - h))
    md = (tmp_path / "three" / "summary.md").read_text()
    assert "| B-SNN | BNN | bsnn_b | B-SNN - BNN [95% CI] | p (t) B-SNN - BNN | bsnn_b - B-SNN [95% CI] | p (t) bsnn_b - B-SNN | n |" in md
    csv = pd.read_csv(tmp_path / "three" / "summary.csv")
    assert set(csv.model) == {"bsnn", "bnn", "bsnn_b", "bsnn-bnn", "bsnn_b-bsnn"}


@pytest.mark.parametrize("over, expect", [
    ({"compare": [["bsnn", "nobody"]]}, r"compare\[0\]: 'nobody' is not a model of this scenario"),
    ({"compare": [["bsnn", "bsnn"]]}, r"compare\[0\]: a model compared with itself"),
    ({"models": {"Bad-Name": "x.pt"}}, r"model name 'Bad-Name'"),
    ({"models": {"hint": "get them"}}, r"name at least one model"),
    ({"models": {"only": "shipped:fmnist-bsnn"}, "adaptive": {"ci_target": 0.01}, "dataset": {"name": "fashion-mnist"}},
     r"adaptive.ci_target stops on the first compare pair"),
])
def test_bad_models_and_compare_sections_are_named(tmp_path, ckpts, over, expect):
    import re

    f = write_scenario(tmp_path / "s.yaml", ckpts, **over)
    r = run_cli(f)
    assert r.exit_code == 2 and re.search(expect, r.output), r.output
    assert not (tmp_path / "out").exists()


def test_sweep_cases_set_their_fields_together_and_are_plotted(tmp_path, ckpts):
    """Two cases x one axis: each case's settings reach its chips (the noise-free case reproduces
    the integer engine on every trial, the other -- a 3-LSB comparator offset, no trim -- does not),
    rows carry the case name, and the case plot is written."""
    from imcnoise.data import load_dataset
    from imcnoise.imc import evaluate_xnor, fold_checkpoint

    f = write_scenario(tmp_path / "c.yaml", ckpts, **{
        "trials": 2, "chip.device.sigma_r_p": 0.0, "chip.device.sigma_r_ap": 0.0, "chip.sense_amp.offset_sigma_lsb": 0.0,
        "sweep.axes": [{"path": "input_seed", "values": [0]}],
        "sweep.cases": [{"name": "clean", "set": {"chip.sense_amp.offset_sigma_lsb": 0.0}},
                        {"name": "offset", "set": {"chip.calibration.mode": "reference", "chip.sense_amp.offset_sigma_lsb": 3.0}}]})
    r = run_cli(f)
    assert r.exit_code == 0, r.output
    a = pd.read_parquet(tmp_path / "out" / "trials.parquet")
    a = a.rename(columns={"param.case": "case"})
    assert set(a["case"]) == {"clean", "offset"}
    data = load_dataset("fashion-mnist", "test").subset(24)
    for m in ("bsnn", "bnn"):
        exact = evaluate_xnor(fold_checkpoint(ckpts[m]), data)
        clean, off = a[(a.model == m) & (a.case == "clean")], a[(a.model == m) & (a.case == "offset")]
        assert (clean.correct == exact.correct).all(), m
    assert (a[a.case == "offset"].correct.to_numpy() != a[a.case == "clean"].correct.to_numpy()).any()
    assert (tmp_path / "out" / "accuracy_by_case.png").is_file()


def test_reused_trials_give_the_tables_of_a_full_run(tmp_path, ckpts):
    """scripts/reuse_trials.py: scenario B shares one point (spread 0.05) with scenario A, which ran first
    with 2 chips per point; B asks for 3. B's store seeded with A's shipped trials.parquet (trials 0-1 of
    that point), then swept, holds exactly the rows of B run in full (every field but wall time, finish
    time and versions): the reused trials were the same computation, and the sweep added trial 2. A point
    whose configuration differs (spread 0.0 of A against 0.1 of B) is not taken. B's file says 2 chips and
    every command raises it to 3 with ``--trials 3``, as the full-size design space raises its file's 4."""
    axes = lambda v: [{"paths": ["chip.device.sigma_r_p", "chip.device.sigma_r_ap"], "values": v}]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = write_scenario(tmp_path / "a" / "s.yaml", ckpts, **{"sweep.axes": axes([0.0, 0.05]), "trials": 2})
    b = write_scenario(tmp_path / "b" / "s.yaml", ckpts, **{"sweep.axes": axes([0.05, 0.1]), "trials": 2})
    assert run_cli(a).exit_code == 0 and run_cli(b, "--trials", 3, "--out", tmp_path / "full").exit_code == 0
    script = Path(__file__).resolve().parents[1] / "scripts" / "reuse_trials.py"
    r = subprocess.run([sys.executable, str(script), str(b), "--out", str(tmp_path / "reused"), "--from", str(tmp_path / "a" / "out"),
                        "--trials", "3"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "1 of 2 points reused" in r.stdout, r.stdout + r.stderr
    assert "point 0 (" in r.stdout and "point 1 (" not in r.stdout, r.stdout  # B's 0.05 is its point 0
    assert "trials 0-1 (4 rows)" in r.stdout and "the sweep runs trials 2-2" in r.stdout, r.stdout
    assert len(trials_of(tmp_path / "reused")) == 4  # one point, 2 trials x 2 models, before B runs
    assert run_cli(b, "--trials", 3, "--out", tmp_path / "reused").exit_code == 0
    pd.testing.assert_frame_equal(trials_of(tmp_path / "reused"), trials_of(tmp_path / "full"))
    v = subprocess.run([sys.executable, str(script), str(b), "--out", str(tmp_path / "full"), "--from", str(tmp_path / "a" / "out"),
                        "--trials", "3", "--verify"], capture_output=True, text=True, timeout=600)
    assert v.returncode == 0 and "identical in every compared field" in v.stdout, v.stdout + v.stderr
