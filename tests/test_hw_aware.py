"""Hardware-aware training and distillation (issue 15)."""

from __future__ import annotations

import copy

import pytest
import torch
import yaml
from typer.testing import CliRunner

from imcnoise.cli.main import app
from imcnoise.imc import AnalogConfig, FastChipBatch, SttMramDevice, fold_model
from imcnoise.imc.engines import layouts as lay
from imcnoise.imc.engines.base import Pass
from imcnoise.models.checkpoint import save_checkpoint
from imcnoise.models.inputs import model_input
from imcnoise.seeding import derive_seed
from imcnoise.training.config import TrainConfig
from imcnoise.training.hw_aware import ChipInTheLoop, load_chip
from imcnoise.training.loop import _lr_lambda, _param_groups, train_step

from helpers import calibrated_model, fmnist


def _step(model, chip, idx, x, y):
    opt = torch.optim.Adam(_param_groups(model, 5e-4), lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(TrainConfig(), 10))
    model.train()
    if chip is None:
        return train_step(model, opt, sched, x, y, torch.device("cpu"), "fp32")
    loop = ChipInTheLoop(model, chip, seed=0)
    loop.step(0, idx)
    with loop:
        return train_step(model, opt, sched, x, y, torch.device("cpu"), "fp32")


@pytest.mark.parametrize("kind", ["bsnn", "bnn"])
def test_a_step_on_an_ideal_chip_is_the_standard_step(kind):
    base = calibrated_model(kind, negative_gamma=0.3).train()
    d = fmnist("train", 32)
    idx = torch.arange(32)
    x, y = model_input(base.config, d.images, idx, 0), d.labels
    a, b = copy.deepcopy(base), copy.deepcopy(base)
    la = _step(a, None, idx, x, y)
    lb = _step(b, AnalogConfig.ideal(), idx, x, y)
    assert la == lb
    for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(p, q), n


@pytest.mark.parametrize("kind", ["bsnn", "bnn"])
def test_the_training_errors_are_the_chips_errors(kind):
    """What a layer adds in training is exactly the chip engine's sensed count minus the exact
    count, in the units of the layer's float sum s = sum_j w_j x_j (w_j = +-1).

    By hand, for one row of n cells with weight bits b_j (w_j = 2 b_j - 1) and a count
    c = #{j: b_j == x_j} of matches:
    * spikes x_j in {0, 1}: c = #{x=1, b=1} + #{x=0, b=0} = #{x=1, b=1} + #{b=0} - #{x=1, b=0}, so
      s = #{x=1, b=1} - #{x=1, b=0} = c - #{b=0}: a count error e is an error e in s (factor 1);
    * +-1 activations (bit x'_j = (x_j + 1) / 2): s = #matches - #mismatches = 2 c - n: factor 2;
    * a channel whose batch-norm scale is negative is folded with its bits flipped (b -> 1 - b,
      ``flipped``), which turns c into n - c for the same s up to a constant: the error changes sign
      (p = -1 for flipped channels, +1 otherwise).
    A wrong factor (1 for the BNN), a lost sign, or errors from another chip than the engine's
    fail the equality below; the last assertion makes sure the chip errs at all."""
    model = calibrated_model(kind, negative_gamma=0.3, residual="paper")
    chip = AnalogConfig(device=SttMramDevice(sigma_r_p=0.05, sigma_r_ap=0.05), sense_amp={"offset_sigma_v": 1e-3})
    d = fmnist("train", 8)
    idx = torch.arange(8)
    loop = ChipInTheLoop(model, chip, seed=4)
    loop.step(0, idx)
    prog = fold_model(model)
    eng = FastChipBatch(prog, chip, [derive_seed(4, "hw-chip", 0)])
    seen = {}
    def keep(i):
        def hook(module, inp, out):
            seen[i] = [t.detach() for t in inp[0]]  # the layer's input list: one tensor per slot
        return hook

    hooks = [layer.register_forward_hook(keep(spec.index)) for spec, layer in zip(model.plan, model.layers) if spec.binary]
    with torch.no_grad():
        model(model_input(model.config, d.images, idx, 0))
    for h in hooks:
        h.remove()
    for l in prog.xnor_layers:
        inputs = seen[l.index]
        got = loop.error(l.index, inputs)
        bits = [(t > 0).float() for t in inputs]
        slots = [lay.bits_from_nchw(b) if b.dim() == 4 else b.unsqueeze(1) for b in bits]
        sensed = lay.dots_to_nchw(eng.mac(l, slots, Pass(idx, prog.timesteps, slice(0, 1)))[:, 0], l).double()
        exact = sum(eng.ideal_dot(l, b) for b in bits)
        p = (1 - 2 * torch.from_numpy(l.flipped).double())
        p = p.view(-1, 1, 1) if l.kind == "conv" else p
        want = (1.0 if kind == "bsnn" else 2.0) * p * (sensed - exact)
        assert torch.equal(got.double(), want)
        assert float(want.abs().sum()) > 0  # the chip does make errors
        # under the training step's bf16 autocast (the default precision) the errors stay exact: the
        # chip's MACs must not run in bf16 (8 significant bits; they were, before 2026-12-03)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert torch.equal(loop.error(l.index, inputs).double(), want)


def test_hw_aware_and_distilled_training_from_the_command_line(tmp_path):
    teacher = calibrated_model("float", width=0.125)
    tpath = save_checkpoint(tmp_path / "teacher.pt", teacher, training={}, metrics={}, data={"dataset": "fashion-mnist"})
    init = save_checkpoint(tmp_path / "init.pt", calibrated_model("bnn", width=0.125), training={}, metrics={},
                           data={"dataset": "fashion-mnist"})
    chip = tmp_path / "chip.yaml"
    chip.write_text(yaml.safe_dump({"chip": {"device": {"model": "stt_mram", "sigma_r_p": 0.05, "sigma_r_ap": 0.05}}}))
    r = CliRunner().invoke(app, ["train", "--model", "bnn", "--width", "0.125", "--epochs", "1", "--train-limit", "64",
                                 "--eval-limit", "32", "--batch-size", "32", "--residual", "paper", "--init", str(init),
                                 "--teacher", str(tpath), "--kd-alpha", "0.5", "--hw-aware", str(chip), "--hw-resample", "2",
                                 "--out", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    card = (tmp_path / "run" / "MODEL_CARD.md").read_text()
    assert "**hardware-aware**" in card and "knowledge distillation" in card and "initialised from" in card
    assert load_chip(chip).device.sigma_r_p == 0.05
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"chip": {"device": {"model": "stt_mram", "sigma_r_p": 7}}}))
    r = CliRunner().invoke(app, ["train", "--model", "bnn", "--epochs", "1", "--hw-aware", str(bad), "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "chip.device.sigma_r_p: Input should be less than or equal to 1 [allowed 0 .. 1] (got 7)" in r.output, r.output
    r = CliRunner().invoke(app, ["train", "--model", "bnn", "--epochs", "1", "--kd-alpha", "0.5", "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "--kd-alpha" in r.output
