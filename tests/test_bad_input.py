"""Bad input as a new user gives it: one clear error (exit 2, no traceback), nothing written.

File-system refusals (a path under a file, a full disk), damaged stores, hand-edited checkpoints,
damaged or foreign resume states, malformed scheduler addresses; and reading results needs no write.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from imcnoise.cli.main import app
from imcnoise.models.checkpoint import CheckpointError, load_checkpoint
from imcnoise.sweep.scenario import SHIPPED_DIR

from helpers import REPO_ROOT, assert_clean_error

BNN = SHIPPED_DIR / "fmnist-bnn" / "model.pt"


def _invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_paths_that_cannot_be_created_are_named(tmp_path):
    """--out / --json under a plain file: the OS refuses; each command names the path and the reason."""
    f = tmp_path / "afile"
    f.write_text("x")
    for args, path in ((["sweep", REPO_ROOT / "scenarios" / "smoke.yaml", "--out", f / "sweep"], f / "sweep"),
                       (["eval", BNN, "--limit", "4", "--json", f / "r.json"], f / "r.json"),
                       (["export", BNN, "--out", f / "chip"], f / "chip")):
        r = _invoke(*args)
        assert_clean_error(r)
        assert f"{path}" in r.output and "Not a directory" in r.output, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_a_full_disk_is_one_error(tmp_path, monkeypatch):
    """Writing the --json result fails with ENOSPC (simulated): the error says so and names the file."""
    target = tmp_path / "r.json"

    def full(self, *a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))

    monkeypatch.setattr(Path, "write_text", full)
    r = _invoke("eval", BNN, "--limit", "4", "--json", target)
    assert_clean_error(r)
    assert f"{target}: No space left on device" in r.output, r.output


def test_a_damaged_results_store_is_named_and_left_alone(tmp_path):
    d = tmp_path / "res"
    d.mkdir()
    (d / "results.sqlite").write_bytes(b"this is not a database" * 10)
    before = (d / "results.sqlite").read_bytes()
    r = _invoke("report", d)
    assert_clean_error(r)
    assert "results.sqlite: cannot use this results store (file is not a database)" in r.output, r.output
    assert (d / "results.sqlite").read_bytes() == before and sorted(p.name for p in d.iterdir()) == ["results.sqlite"]
    r = _invoke("sweep", REPO_ROOT / "scenarios" / "smoke.yaml", "--out", d)  # a sweep refuses it too
    assert_clean_error(r)
    assert "cannot use this results store" in r.output


def test_reading_results_writes_nothing(tmp_path):
    """load_results opens the store read-only: no journal, no schema, no lock -- a read-only results
    folder (or one another user owns) can be read. Checked here by the folder's files and bytes."""
    import shutil
    import sqlite3

    from imcnoise.sweep import load_results

    d = tmp_path / "res"
    d.mkdir()
    db = sqlite3.connect(d / "results.sqlite")  # a store a sweep left, closed cleanly
    from imcnoise.sweep.store import SCHEMA

    db.executescript(SCHEMA)
    db.execute("INSERT INTO meta VALUES ('scenario', '{}')")
    db.commit()
    db.close()
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    res = load_results(d)
    assert res["trials"].empty
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before
    shutil.rmtree(d)


@pytest.mark.parametrize("edit, expect", [
    (lambda c: c.pop("model_config"), "field 'model_config' missing"),
    (lambda c: c["model_config"].__setitem__("width", "wide"), "model_config.width: expected float, got 'wide'"),
    (lambda c: c["model_config"].__setitem__("timesteps", 2.5), "model_config.timesteps: expected int"),
    (lambda c: c.__setitem__("state", [1, 2]), "field 'state' must be a dict"),
    (lambda c: c["state"].__setitem__(next(iter(c["state"])), [0.0]), "are not tensors"),
    (lambda c: c.__setitem__("metrics", [0.9]), "field 'metrics' must be a dict"),
    (lambda c: c["state"].pop(next(k for k in c["state"] if k.endswith(".alpha"))), "missing"),
])
def test_hand_edited_checkpoints_are_refused_naming_the_field(tmp_path, edit, expect):
    ckpt = torch.load(BNN, weights_only=True)
    ckpt["model_config"], ckpt["state"] = dict(ckpt["model_config"]), dict(ckpt["state"])
    edit(ckpt)
    f = tmp_path / "edited.pt"
    torch.save(ckpt, f)
    with pytest.raises(CheckpointError, match=expect.replace("(", r"\(").replace(".", r"\.")):
        load_checkpoint(f)
    r = _invoke("eval", f, "--limit", "4")
    assert_clean_error(r)
    assert str(f) in r.output


@pytest.mark.parametrize("content, expect", [
    (b"junk", "not a readable training state"),
    (None, "an inference checkpoint (model.pt)"),
])
def test_a_damaged_or_foreign_resume_state_is_refused(tmp_path, content, expect):
    out = tmp_path / "run"
    out.mkdir()
    (out / "last.pt").write_bytes(BNN.read_bytes() if content is None else content)
    r = _invoke("train", "--model", "bnn", "--dataset", "fashion-mnist", "--width", "0.125", "--epochs", "1",
                "--train-limit", "64", "--eval-limit", "16", "--batch-size", "32", "--out", out, "--resume")
    assert_clean_error(r)
    assert f"{out / 'last.pt'}: cannot resume, {expect}" in r.output, r.output
    assert sorted(p.name for p in out.iterdir()) == ["last.pt"]


@pytest.mark.parametrize("address", ["not-an-address", "foo://host:1"])
def test_a_malformed_scheduler_address_is_named(tmp_path, address):
    r = _invoke("sweep", REPO_ROOT / "scenarios" / "smoke.yaml", "--out", tmp_path / "s", "--scheduler", address)
    assert_clean_error(r)
    assert "run.scheduler" in r.output and repr(address) in r.output, r.output
    assert not (tmp_path / "s").exists()


class _Boom:
    """A pickle that would run code when loaded: os.system('touch <marker>')."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_hostile_pickles_and_yaml_tags_run_nothing(tmp_path):
    """A checkpoint or resume state holding a pickled callable, and a scenario with a python/object
    YAML tag, are refused without running the payload (torch weights_only, yaml safe loading)."""
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"format": "x", "payload": _Boom(marker)}, evil)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(evil)
    out = tmp_path / "run"
    out.mkdir()
    (out / "last.pt").write_bytes(evil.read_bytes())
    r = _invoke("train", "--model", "bnn", "--dataset", "fashion-mnist", "--width", "0.125", "--epochs", "1",
                "--train-limit", "64", "--eval-limit", "16", "--batch-size", "32", "--out", out, "--resume")
    assert_clean_error(r)
    sc = tmp_path / "s.yaml"
    text = (REPO_ROOT / "scenarios" / "smoke.yaml").read_text()
    assert "\nname: smoke\n" in text
    sc.write_text(text.replace("\nname: smoke\n", f"\nname: !!python/object/apply:os.system ['touch {marker}']\n"))
    r = _invoke("sweep", sc, "--out", tmp_path / "o")
    assert_clean_error(r)
    assert "not valid YAML" in r.output and "python/object" in r.output, r.output
    assert not marker.exists() and not (tmp_path / "o").exists()


def test_stuck_probabilities_summing_above_one_are_refused_for_every_device():
    """One rule (TwoStateDevice) for every two-state device: p_stuck_on + p_stuck_off <= 1, the error
    naming both fields and their sum (0.6 + 0.6 = 1.2; 0.7 + 0.5 = 1.2)."""
    from imcnoise.imc.config import RramDevice, SttMramDevice

    for cls, a, b in ((SttMramDevice, "p_stuck_p", "p_stuck_ap"), (RramDevice, "p_stuck_lrs", "p_stuck_hrs")):
        with pytest.raises(ValueError) as e:
            cls(**{a: 0.6, b: 0.6})
        assert f"{a} + {b} = 1.2 must be <= 1" in str(e.value)
        assert getattr(cls(**{a: 0.5, b: 0.5}), a) == 0.5
