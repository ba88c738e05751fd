"""The shipped checkpoints: model cards, size, and spike-exact folding on real test sets.

The full test sets of every checkpoint (float vs XNOR, XNOR vs ideal analog) are checked by
``scripts/verify_exactness.py`` (report in results/exactness.md); CI runs Fashion-MNIST in full
and fixed subsets of the rest to stay within its time budget.
"""

from __future__ import annotations

import pytest

from imcnoise.data import load_dataset
from imcnoise.imc import AnalogChip, AnalogConfig, XnorEngine, compare_engines, compare_runs, fold_checkpoint
from imcnoise.models.checkpoint import load_checkpoint
from imcnoise.sweep.scenario import SHIPPED_DIR

PRESETS = ["fmnist-bsnn", "fmnist-bnn", "fmnist-bsnn-hw", "fmnist-bnn-hw", "fmnist-bsnn-hw-frozen", "fmnist-bsnn-hw-ideal",
           "fmnist-bsnn-hw-frozen-ideal", "fmnist-bsnn-t4", "fmnist-bsnn-t16", "cifar10jpeg-bsnn", "cifar10jpeg-bnn"]
# images per check (the whole test sets, 10,000 each: scripts/verify_exactness.py, results/exactness.md)
FULL = {"fmnist-bsnn": 1000, "fmnist-bnn": 2000, "fmnist-bsnn-hw": 500, "fmnist-bnn-hw": 2000,
        "fmnist-bsnn-hw-frozen": 300, "fmnist-bsnn-hw-ideal": 300, "fmnist-bsnn-hw-frozen-ideal": 300, "fmnist-bsnn-t4": 500, "fmnist-bsnn-t16": 200,
        "cifar10jpeg-bsnn": 500, "cifar10jpeg-bnn": 2000}


def _ckpt(name):
    p = SHIPPED_DIR / name / "model.pt"
    if not p.is_file():
        pytest.fail(f"shipped checkpoint {p} missing (train it with scripts/train_shipped.sh {name})")
    return p


def _data(meta, request, limit=None):
    ds = meta["data"]["dataset"]
    if ds == "cifar10-jpeg":
        request.getfixturevalue("cifar10_jpeg_dir")
    return load_dataset(ds, "test").subset(limit)


@pytest.fixture(autouse=True)
def _shared_data_env(monkeypatch):
    from conftest import shared_data_dir

    monkeypatch.setenv("IMCNOISE_DATA_DIR", str(shared_data_dir()))


@pytest.mark.parametrize("name", PRESETS)
def test_checkpoint_is_small_and_has_a_model_card(name):
    p = _ckpt(name)
    assert p.stat().st_size < 2_000_000
    card = (p.parent / "MODEL_CARD.md").read_text()
    for field in ("command", "seed", "data", "epochs", "wall time", "test accuracy", "imcnoise train --preset " + name):
        assert field in card, field
    model, meta = load_checkpoint(p)
    assert meta["model_config"]["kind"] == name.split("-")[1]
    assert meta["training"]["epochs_done"] == meta["training"]["epochs"]
    # the accuracy stored in the checkpoint is the one its model card states (to the card's 0.01 %)
    import re

    stated = re.search(r"\*\*test accuracy\*\* \| \*\*([0-9.]+) %\*\*", card)
    assert stated, "model card without its test accuracy line"
    assert 100 * meta["metrics"]["test_accuracy"] == pytest.approx(float(stated.group(1)), abs=0.005 + 1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("name", PRESETS)
def test_xnor_engine_equals_trained_model_spike_for_spike(name, request):
    p = _ckpt(name)
    model, meta = load_checkpoint(p)
    data = _data(meta, request, FULL[name])
    res = compare_engines(model, fold_checkpoint(p), data, batch_size=100)
    assert res.prediction_mismatches == 0, res.summary()
    assert res.non_tie_mismatches == 0, res.summary()
    assert res.total_mismatches == res.ties == 0, res.summary()  # the goal: not even ties
    assert res.images == len(data)


@pytest.mark.slow
@pytest.mark.parametrize("name", PRESETS)
def test_ideal_analog_path_equals_integer_engine(name, request):
    p = _ckpt(name)
    _, meta = load_checkpoint(p)
    data = _data(meta, request, 100)
    prog = fold_checkpoint(p)
    res = compare_runs(XnorEngine(prog).run, AnalogChip(prog, AnalogConfig.ideal()).run, data, batch_size=50)
    assert res.exact, res.summary()


def test_stored_accuracy_matches_evaluation(request):
    from imcnoise.training.evaluate import evaluate

    p = _ckpt("fmnist-bnn")
    model, meta = load_checkpoint(p)
    res = evaluate(model, _data(meta, request))
    # training evaluated the latent-weight model in channels-last fp32; only fp32 near-ties can differ
    assert res.accuracy == pytest.approx(meta["metrics"]["test_accuracy"], abs=5e-4)
