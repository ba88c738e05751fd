"""Fold to a chip program and the integer XNOR engine (paper Sec. III, eq. 6-11, Alg. 2)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from imcnoise.cli.main import app
from imcnoise.imc import ChipProgram, XnorEngine, compare_engines, fold_model
from imcnoise.models.checkpoint import save_checkpoint

from helpers import REPO_ROOT, calibrated_model, fmnist


def test_fold_reproduces_paper_bias_and_threshold():
    """gamma = 1, beta = 0: bias = M1 + mu/alpha and theta_hat = sigma*theta/alpha (Alg. 2)."""
    model = calibrated_model("bsnn", residual="none")
    for norm in model.norms[1:-1]:
        torch.nn.init.ones_(norm.weight)
        torch.nn.init.zeros_(norm.bias)
    prog = fold_model(model)
    for layer, (spec, mod, norm) in zip(prog.xnor_layers, [t for t in zip(model.plan, model.layers, model.norms) if t[0].binary]):
        w = mod.binary_weight().detach().double().reshape(spec.out_features, -1)
        alpha = mod.alpha().detach().double()
        mu = norm.running_mean.double()
        sigma = torch.sqrt(norm.running_var.double() + norm.eps)
        m1 = (w < 0).sum(1)
        assert np.array_equal(layer.m1, m1.numpy())
        assert np.array_equal(layer.bits, (w > 0).numpy().astype(np.uint8))
        assert np.allclose(layer.bias, (m1 + mu / alpha).numpy(), rtol=1e-12, atol=1e-9)
        assert np.allclose(layer.theta_hat, (sigma * model.config.threshold / alpha).numpy(), rtol=1e-12)
        assert not layer.flipped.any()


@pytest.mark.parametrize("kind", ["bsnn", "bnn"])
@pytest.mark.parametrize("residual", ["paper", "none"])
def test_spike_exact_with_forced_negative_and_zero_gamma(kind, residual):
    model = calibrated_model(kind, residual=residual, negative_gamma=0.5, zero_gamma=1)
    prog = fold_model(model)
    flipped = sum(int(l.flipped.sum()) for l in prog.xnor_layers)
    assert flipped > 0 and all((l.input_dependent == 0).sum() == 1 for l in prog.xnor_layers)
    assert all((l.residual_from is not None) == (residual == "paper" and l.index in (3, 4, 5, 6, 7, 9)) for l in prog.xnor_layers)
    res = compare_engines(model, prog, fmnist("test", 96), batch_size=48)
    assert res.exact, res.summary()
    assert sum(res.decisions.values()) > 100_000
    # the neurons do fire, and the flipped rows matter: the folded engine run with unflipped bits differs
    for l in prog.xnor_layers:
        l.bits[l.flipped] ^= 1
    broken = compare_engines(model, prog, fmnist("test", 48), batch_size=48)
    assert not broken.exact


@pytest.mark.parametrize("backend", ["popcount", "int8", "auto"])
@pytest.mark.parametrize("kind", ["bsnn", "bnn"])
def test_every_integer_backend_equals_the_gemm_backend_spike_for_spike(kind, backend, monkeypatch):
    """popcount (XOR + hardware popcount) and int8 (oneDNN int8 convolution / torch._int_mm with
    int32 sums) compute the same integer dot products as the fp32 gemm: every spike of every
    layer and every output identical. ``auto`` measures int8 against gemm on every binary layer's
    real inputs (a conv and an fc key at least) and runs the faster: the same spikes."""
    from imcnoise.imc.engines import kernels
    from imcnoise.models.vgg import Recording

    if backend in ("int8", "auto") and not kernels.int8_available():
        pytest.skip("no oneDNN int8 kernels in this torch build")
    monkeypatch.setenv("IMCNOISE_MAC", "auto")
    monkeypatch.setattr(kernels, "CHOICES", {})
    prog = fold_model(calibrated_model(kind, negative_gamma=0.3))
    d = fmnist("test", 32)
    idx = torch.arange(32)
    ra, rb = Recording(keep=True), Recording(keep=True)
    a = XnorEngine(prog, "gemm").run(d.images, idx, 0, ra)
    b = XnorEngine(prog, backend).run(d.images, idx, 0, rb)
    assert torch.equal(a, b)
    assert ra.spikes.keys() == rb.spikes.keys() and len(ra.spikes) == len(prog.xnor_layers) + 1
    for k in ra.spikes:
        assert torch.equal(ra.spikes[k], rb.spikes[k]), k
    measured = {key[1] for key in kernels.CHOICES if key[0] == "xnor-mac"}
    assert measured == ({"conv", "fc"} if backend == "auto" else set())


def test_mismatches_are_classified_as_ties_or_not():
    """Lowering the engine's folded threshold by eps makes exactly the spikes whose reference
    membrane lies within |k|*eps of theta differ: those must be counted as ties (with a tolerance
    of that size) and the ones downstream as propagated; a large shift gives non-ties."""
    model = calibrated_model("bsnn", residual="none")
    prog = fold_model(model)
    d = fmnist("test", 32)
    layer = prog.xnor_layers[0]
    theta = layer.theta_hat.copy()
    layer.theta_hat = theta - 0.02
    res = compare_engines(model, prog, d, batch_size=32, tie_tol=0.05)
    assert res.ties > 0 and res.non_tie_mismatches == 0, res.summary()
    assert res.mismatches[layer.index] == res.ties and sum(res.propagated.values()) > 0
    layer.theta_hat = theta - 0.5
    res = compare_engines(model, prog, d, batch_size=32, tie_tol=1e-9)
    assert res.non_tie_mismatches > 0


def test_export_round_trip_rebuilds_from_files_alone(tmp_path):
    model = calibrated_model("bsnn", negative_gamma=0.3)
    ckpt = save_checkpoint(tmp_path / "m.pt", model, training={}, metrics={}, data={"dataset": "fashion-mnist"})
    out = tmp_path / "export"
    r = CliRunner().invoke(app, ["export", str(ckpt), "--out", str(out), "--samples", "12"])
    assert r.exit_code == 0, r.output
    assert "Total XNOR array reads per inference" in (out / "summary.md").read_text()
    # the saved program loads back identically
    again = ChipProgram.load(out)
    prog = fold_model(model)
    for a, b in zip(prog.xnor_layers, again.xnor_layers):
        assert np.array_equal(a.bits, b.bits) and np.array_equal(a.bias, b.bias) and np.array_equal(a.theta_hat, b.theta_hat)
    # a numpy-only script rebuilds the inference from the files and reproduces the engine's predictions
    p = subprocess.run([sys.executable, str(REPO_ROOT / "examples" / "rebuild_from_export.py"), str(out)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "12/12 predictions equal" in p.stdout
    model_bnn = calibrated_model("bnn", negative_gamma=0.3)
    ckpt = save_checkpoint(tmp_path / "b.pt", model_bnn, training={}, metrics={}, data={"dataset": "fashion-mnist"})
    r = CliRunner().invoke(app, ["export", str(ckpt), "--out", str(tmp_path / "eb"), "--samples", "12"])
    assert r.exit_code == 0, r.output
    p = subprocess.run([sys.executable, str(REPO_ROOT / "examples" / "rebuild_from_export.py"), str(tmp_path / "eb")],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and "12/12 predictions equal" in p.stdout, p.stdout + p.stderr


def test_eval_command_both_engines_agree(tmp_path):
    model = calibrated_model("bsnn")
    ckpt = save_checkpoint(tmp_path / "m.pt", model, training={}, metrics={}, data={"dataset": "fashion-mnist"})
    outs = {}
    for engine in ("float", "xnor"):
        r = CliRunner().invoke(app, ["eval", str(ckpt), "--engine", engine, "--limit", "64", "--precision", "fp64"])
        assert r.exit_code == 0, r.output
        outs[engine] = r.output.splitlines()[-2:]
    assert outs["float"][0].split(":", 1)[1] == outs["xnor"][0].split(":", 1)[1]  # same accuracy text
    assert outs["float"][1] == outs["xnor"][1]  # same firing rates
