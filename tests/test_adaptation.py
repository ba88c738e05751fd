"""Per-chip adaptation (chip.adaptation, imcnoise/imc/engines/adaptation.py, imc/program/refold.py):
batch-norm re-estimation on the chip, re-folded into each neuron's registers.

The re-fold against numbers worked by hand; a chip whose counts are the exact counts shifted (or
scaled) is brought back spike for spike; an ideal chip changes no register; the adaptation images
are never evaluation images and their reads draw their own noise; a sweep with adaptation records
its one-off cost, and a scenario without it keeps its hash."""

from __future__ import annotations

import pytest
import torch

from imcnoise.imc import (AdaptationConfig, AnalogConfig, FastChipBatch, XnorEngine, adapt, evaluate, evaluate_xnor,
                          fold_model, software_statistics, with_statistics)
from imcnoise.imc import fold_checkpoint
from imcnoise.imc.engines.adaptation import adaptation_input_seed
from imcnoise.models.checkpoint import shipped_checkpoint
from imcnoise.imc.physics.noise import ReadNoise
from imcnoise.imc.program import ChipProgram, RowStatistics, refold_registers

from helpers import calibrated_model, fmnist, quiet_chip


def _stats(rows: list[list[float]]) -> RowStatistics:
    """Statistics of per-row count samples (each row its own list, samples along N)."""
    d = torch.tensor(rows, dtype=torch.float64).T.unsqueeze(1)  # [N, L=1, rows]
    return RowStatistics.of(d)


def test_refold_registers_by_hand():
    """Row 0: software counts {2, 4} (mean 3, std 1), chip counts {5, 9} (mean 7, std 2), bias 1.1,
    theta_hat 2, u = 1. Row 1: the same but u = 0 (input-independent row: never adjusted).

    bias: bias' = 1.1 + (7 - 3) = 5.1, theta unchanged.
    bias_threshold: rho = 2, bias' = 7 + 2 (1.1 - 3) = 3.2, theta' = 4; with 0.25-count registers the
    bias adjustment 2.1 is held as 2.0 (8 steps): 3.1; the threshold's 2.0 is exact."""
    sw, chip = _stats([[2, 4], [2, 4]]), _stats([[5, 9], [5, 9]])
    bias, theta, u = torch.tensor([1.1, 1.1], dtype=torch.float64), torch.tensor([2.0, 2.0], dtype=torch.float64), \
        torch.tensor([1.0, 0.0], dtype=torch.float64)
    b, t = refold_registers(bias, theta, u, sw, chip, "bias", 0.0)
    assert b.tolist() == pytest.approx([5.1, 1.1]) and t.tolist() == [2.0, 2.0]
    b, t = refold_registers(bias, theta, u, sw, chip, "bias_threshold", 0.0)
    assert b.tolist() == pytest.approx([3.2, 1.1]) and t.tolist() == [4.0, 2.0]
    b, t = refold_registers(bias, theta, u, sw, chip, "bias_threshold", 0.25)
    assert b.tolist() == pytest.approx([3.1, 1.1]) and t.tolist() == [4.0, 2.0]
    # a row whose software count never varies carries no scale: rho = 1 (the bias rule)
    b, t = refold_registers(bias[:1], theta[:1], u[:1], _stats([[3, 3]]), _stats([[6, 8]]), "bias_threshold", 0.0)
    assert b.tolist() == pytest.approx([5.1]) and t.tolist() == [2.0]


class _DistortedChip(XnorEngine):
    """The exact counts, shifted by ``offset`` and scaled by ``scale`` in every binary layer: a chip
    whose statistics differ from the software model's in a known way."""

    def __init__(self, program, offset=0.0, scale=1.0):
        super().__init__(program, "gemm")
        self.offset, self.scale = offset, scale

    def mac(self, layer, slots, p):
        return super().mac(layer, slots, p) * self.scale + self.offset


def _program(kind):
    return fold_model(calibrated_model(kind, negative_gamma=0.3, zero_gamma=1))


@pytest.mark.parametrize("kind", ["bsnn", "bnn"])
def test_adaptation_undoes_a_shift_and_a_scale_spike_for_spike(kind):
    """Counts shifted by +3 in every layer: bias adaptation adds exactly 3 to every input-dependent
    row's bias (a whole number of 1/16-count steps) and the chip's outputs equal the exact engine's
    for every image. Counts doubled: bias_threshold adaptation doubles bias and threshold (rho = 2,
    m_c = 2 m_s) and again every output equals the exact one. Without adaptation both chips are wrong."""
    prog = _program(kind)
    train, test = fmnist("train", 32), fmnist("test", 24)
    idx = torch.arange(len(train))
    stats = software_statistics(prog, train.images, idx, 0)
    exact = evaluate_xnor(prog, test, keep_predictions=True)
    for offset, scale, mode in ((3.0, 1.0, "bias"), (0.0, 2.0, "bias_threshold")):
        chip = _DistortedChip(prog, offset, scale)
        before = evaluate(chip, test, keep_predictions=True)[0]
        assert before.spike_rates != exact.spike_rates
        adapt(chip, train.images, idx, 0, stats, AdaptationConfig(mode=mode, register_lsb=2 ** -4 if scale == 1 else 0.0))
        after = evaluate(chip, test, keep_predictions=True)[0]
        assert torch.equal(after.predictions, exact.predictions) and after.spike_rates == exact.spike_rates, (offset, scale)
        for l in prog.xnor_layers:
            b, t = chip.registers[l.index]
            u = torch.from_numpy(l.input_dependent).double()
            want_b = torch.from_numpy(l.bias) + 3 * u if scale == 1 else torch.from_numpy(l.bias) * torch.where(u > 0, 2.0, 1.0)
            assert torch.allclose(b[0, 0], want_b, rtol=1e-12, atol=1e-12), l.index


def test_adaptation_on_an_ideal_chip_changes_no_register():
    """With every non-ideality off the chip's counts are the exact ones, their statistics the software
    model's to the bit: every adjustment is 0 and every register keeps its folded value exactly."""
    prog = _program("bsnn")
    train = fmnist("train", 16)
    idx = torch.arange(len(train))
    stats = software_statistics(prog, train.images, idx, 5)
    cfg = quiet_chip(adaptation={"mode": "bias_threshold"})
    chip = FastChipBatch(prog, cfg, [1, 2])
    adapt(chip, train.images, idx, 5, stats, cfg.adaptation)
    for l in prog.xnor_layers:
        b, t = chip.registers[l.index]
        assert torch.equal(b, torch.from_numpy(l.bias).expand_as(b)) and torch.equal(t, torch.from_numpy(l.theta_hat).expand_as(t))


def test_adaptation_recovers_an_uncalibrated_offset():
    """The default chip with reference-row calibration only (no trim): its comparator offsets stay
    (4.5 mV = several LSB per line) and the BNN loses most of its accuracy; bias adaptation on 64
    training images measures each line's mean shift and takes it out of the bias register (the
    shipped BNN: 29 % -> 90 % on 300 images of two such chips, measured)."""
    prog = fold_checkpoint(shipped_checkpoint("shipped:fmnist-bnn"))
    train, test = fmnist("train", 64), fmnist("test", 100)
    idx = torch.arange(len(train))
    stats = software_statistics(prog, train.images, idx, 0)
    cfg = AnalogConfig(calibration={"mode": "reference"}, adaptation={"mode": "bias"},
                       limits={"subarray_power_w": float("inf")})
    exact = evaluate_xnor(prog, test).accuracy
    chip = FastChipBatch(prog, cfg, [7])
    before = evaluate(chip, test)[0].accuracy
    adapt(chip, train.images, idx, 0, stats, cfg.adaptation)
    after = evaluate(chip, test)[0].accuracy
    assert before < exact - 0.3 and after > exact - 0.05, (exact, before, after)


def test_the_adaptation_pass_draws_its_own_numbers():
    """Its Poisson input seed differs from the evaluation's, and its reads' noise is another stream
    (an inference read at the same image index would otherwise repeat the adaptation's draw)."""
    assert adaptation_input_seed(0) != 0 and adaptation_input_seed(0) == adaptation_input_seed(0)
    a = ReadNoise([3], 2, torch.arange(4), 2).normals("comparator", 0, (8, 1, 1, 5))
    b = ReadNoise([3], 2, torch.arange(4), 2, run="adaptation").normals("comparator", 0, (8, 1, 1, 5))
    assert not torch.equal(a, b) and (a - b).abs().min() > 0


def test_statistics_are_stored_with_the_program(tmp_path):
    """The software statistics travel with the program file (save / load keeps every sum)."""
    prog = _program("bnn")
    train = fmnist("train", 8)
    idx = torch.arange(8)
    prog = with_statistics(prog, train.images, idx, 0, "fashion-mnist train[0:8]")
    back = ChipProgram.load(prog.save(tmp_path / "p"))
    assert back.meta["statistics"]["images"] == 8
    for l in prog.xnor_layers:
        s, t = prog.statistics[l.index], back.statistics[l.index]
        assert s.n == t.n and torch.equal(s.total, t.total) and torch.equal(s.squares, t.squares)
        # n = images x positions (BNN: T = 1)
        assert s.n == 8 * l.positions


def test_adaptation_images_are_never_evaluation_images():
    """Test split: any training images (a seed-drawn sample). Training split with limit 100: only
    indices >= 100. Not enough left: one clear error naming the field."""
    from imcnoise.sweep.runner import adaptation_indices
    from imcnoise.sweep.scenario import Scenario, ScenarioError

    base = {"name": "x", "models": {"bsnn": "shipped:fmnist-bsnn", "bnn": "shipped:fmnist-bnn"}}
    test = Scenario.model_validate({**base, "dataset": {"split": "test", "limit": 100}})
    idx = adaptation_indices(test, 50, 1000)
    assert len(set(idx.tolist())) == 50 and int(idx.max()) < 1000
    train = Scenario.model_validate({**base, "dataset": {"split": "train", "limit": 100}})
    idx = adaptation_indices(train, 50, 1000)
    assert int(idx.min()) >= 100 and len(set(idx.tolist())) == 50
    with pytest.raises(ScenarioError, match="chip.adaptation.images"):
        adaptation_indices(train, 950, 1000)


def test_a_scenario_without_adaptation_keeps_its_hash():
    """chip.adaptation came after results were stored: at its default it stays out of the hash (and
    any other setting enters it)."""
    from imcnoise.sweep.scenario import Scenario

    base = {"name": "x", "models": {"bsnn": "shipped:fmnist-bsnn", "bnn": "shipped:fmnist-bnn"}}
    plain = Scenario.model_validate(base).result_defining()
    assert "adaptation" not in plain["chip"]
    on = Scenario.model_validate({**base, "chip": {"adaptation": {"mode": "bias"}}}).result_defining()
    assert on["chip"]["adaptation"]["mode"] == "bias"


def test_a_sweep_adapts_each_chip_as_the_api_does_and_records_the_cost(tmp_path):
    """A sweep axis over chip.adaptation.mode (off, bias) on chips with untrimmed offsets: the
    adapted point's trials equal FastChipBatch + adapt() run here on the same chips with the
    runner's adaptation images (a seed-drawn sample of the training split) and the same input seed;
    its one-off cost is recorded as adaptation_once = images x energy per inference; the off point
    has none."""
    import pandas as pd
    import yaml
    from typer.testing import CliRunner

    from imcnoise.cli.main import app
    from imcnoise.data import load_dataset
    from imcnoise.models.checkpoint import save_checkpoint
    from imcnoise.sweep.runner import adaptation_indices, chip_seed
    from imcnoise.sweep.scenario import load_scenario

    ck = save_checkpoint(tmp_path / "bnn.pt", calibrated_model("bnn", width=0.125), training={}, metrics={},
                         data={"dataset": "fashion-mnist"})
    sc = {"name": "adapt", "seed": 4, "dataset": {"name": "fashion-mnist", "limit": 20}, "models": {"bnn": str(ck)},
          "compare": [], "chip": {"calibration": {"mode": "reference"}, "adaptation": {"images": 16},
                                   "limits": {"subarray_power_w": float("inf")}},
          "sweep": {"axes": [{"path": "chip.adaptation.mode", "values": ["off", "bias"]}]},
          "trials": 2, "run": {"batch_size": 10}, "output": str(tmp_path / "out")}
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(sc))
    r = CliRunner().invoke(app, ["sweep", str(f), "--no-progress"])
    assert r.exit_code == 0, r.output
    a = pd.read_parquet(tmp_path / "out" / "trials.parquet").sort_values(["point", "trial"])
    on, off = a[a.point == 1], a[a.point == 0]
    assert off["energy_nj.adaptation_once"].isna().all() if "energy_nj.adaptation_once" in a else True
    assert (on["energy_nj.adaptation_once"] == 16 * on["energy_nj"]).all()
    scen, _ = load_scenario(f)
    train = load_dataset("fashion-mnist", "train")
    idx = adaptation_indices(scen, 16, len(train))
    prog = fold_model(calibrated_model("bnn", width=0.125))
    stats = software_statistics(prog, train.images[idx], idx, scen.input_seed)
    cfg = scen.chip.model_copy(update={"adaptation": AdaptationConfig(mode="bias", images=16)})
    chip = FastChipBatch(prog, cfg, [chip_seed(scen, t) for t in range(2)])
    adapt(chip, train.images[idx], idx, scen.input_seed, stats, cfg.adaptation)
    res = evaluate(chip, fmnist("test", 20))
    assert on.correct.tolist() == [x.correct for x in res]


def test_hardware_aware_training_refuses_an_adapting_chip():
    """Hardware-aware training samples freshly programmed chips; a chip file asking for adaptation
    would be silently ignored there, so it is refused naming the field."""
    from imcnoise.training.hw_aware import ChipInTheLoop

    with pytest.raises(ValueError, match="chip.adaptation.mode = bias"):
        ChipInTheLoop(calibrated_model("bnn"), AnalogConfig(adaptation={"mode": "bias"}), 0)
