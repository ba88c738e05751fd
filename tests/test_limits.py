"""Limits of a buildable chip (imcnoise/imc/physics/limits.py): each refuses the configuration
that exceeds it, naming the field, the value and the limit; the default chip is within all of them."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from imcnoise.cli.main import app
from imcnoise.imc import AnalogConfig, ChipLimitError, FastChipBatch, check_buildable, fold_model
from imcnoise.imc.physics.limits import cell_current_a, line_current_a, subarray_power_w

from helpers import REPO_ROOT, calibrated_model
from test_sweep import ckpts, run_cli, write_scenario  # noqa: F401  (ckpts: a fixture)


def test_the_default_chip_is_within_every_limit_by_hand():
    """Default: MTJ 6 / 12 kOhm + 1.5 kOhm access (G_on = 133.3 uS, G_off = 74.1 uS, r = 0.5556),
    0.2 V, merged-line sensing of 63-cell sensings, 16 rows of a 128 x 128 sub-array per read.
    Device current: V G_on / (1 + r) = 0.2 x 133.3 uS / 1.5556 = 17.1 uA < 20 uA.
    Line current: cells inject V (G_read - rho G_tot) into the floating line (rho = its V_SL / V);
    the worst pattern, matches on the far 1 - 1/sqrt(3) of the line (36 of 63 cells: rho = (36 + 27 r)
    / (63 (1 + r)) = 0.5204), drives 27 x V G_on (rho (1 + r) - r) = 27 x 0.2 V x 133.3 uS x 0.2540
    = 0.183 mA through the segment at the boundary, < 0.218 mA (80 x 136 nm at 2 MA/cm^2).
    Sub-array power: 16 rows x the sensings of a row (63 + 63 + 2 cells), each at its largest power
    V^2 G_on max_N N (1 - N/S), S = n (1 + r), at N = S / 2: n (1 + r) / 4 units -> for 63 cells
    0.04 x 133.3e-6 x 24.5 = 0.131 mW, for 2 cells (N >= 2 r > S/2: N = 2 r) 0.04 x 133.3e-6 x 0.494;
    16 x (2 x 0.131 + 0.0026) mW = 4.25 mW < 5 mW."""
    cfg = AnalogConfig()
    check_buildable(cfg)
    r = 7.5 / 13.5
    assert cell_current_a(cfg) == pytest.approx(0.2 / 7.5e3 / (1 + r), rel=1e-9)
    rho = (36 + 27 * r) / (63 * (1 + r))
    assert line_current_a(cfg) >= 27 * 0.2 / 7.5e3 * (rho * (1 + r) - r) * (1 - 1e-9)
    assert line_current_a(cfg) == pytest.approx(0.183e-3, rel=0.03) and line_current_a(cfg) < 0.218e-3
    p63 = 0.04 / 7.5e3 * 63 * (1 + r) / 4
    n2 = 2 * r  # both cells mismatching is the largest N (1 - N/S) for a 2-cell line: N <= 2 < S / 2? no: N in [2r, 2]
    p2 = 0.04 / 7.5e3 * max(x * (1 - x / (2 * (1 + r))) for x in (n2, n2 + (1 - r), 2.0))
    assert subarray_power_w(cfg) == pytest.approx(16 * (2 * p63 + p2), rel=1e-3)
    assert subarray_power_w(cfg) < 5e-3


@pytest.mark.parametrize("changes,field,words", [
    ({"device": {"model": "stt_mram", "read_voltage_v": 0.3}}, "chip.limits.cell_current_a", "read disturb"),
    ({"sense_amp": {"scheme": "current"}, "device": {"model": "stt_mram", "read_voltage_v": 0.1},
      "array": {"cells_per_sensing": 128}}, "chip.limits.line_current_a", "electromigration"),
    ({"array": {"rows_per_read": 128}}, "chip.limits.subarray_power_w", "rows_per_read"),
    ({"sense_amp": {"scheme": "current"}, "device": {"model": "stt_mram", "read_voltage_v": 0.02},
      "array": {"cells_per_sensing": 63, "rows_per_read": 4}}, "chip.limits.ir_drop_fraction", "cells_per_sensing"),
    ({"array": {"wire_resistance_ohm": 10.0}}, "chip.limits.ir_drop_fraction", "wire_resistance_ohm"),
])
def test_each_limit_refuses_the_configuration_that_exceeds_it(changes, field, words):
    cfg = AnalogConfig(**changes)
    with pytest.raises(ChipLimitError) as exc:
        check_buildable(cfg)
    assert exc.value.field == field and str(exc.value).startswith(field) and words in str(exc.value)
    assert "exceeds the limit" in str(exc.value) or "more than the limit" in str(exc.value)
    # the same configuration runs when that limit is lifted
    name = field.rsplit(".", 1)[1]
    lifted = cfg.model_copy(update={"limits": cfg.limits.model_copy(update={name: float("inf")})})
    try:
        check_buildable(lifted)
    except ChipLimitError as again:
        assert again.field != field
    # and every engine refuses it
    with pytest.raises(ChipLimitError):
        FastChipBatch(fold_model(calibrated_model("bnn")), cfg, [0])


def test_a_sweep_point_beyond_a_limit_is_refused_before_anything_is_written(tmp_path, ckpts):  # noqa: F811
    """The scenario's base chip is buildable; its second point (current sensing at 0.2 V puts the
    whole read voltage across a 7.5 kOhm cell: 27 uA) is not: the sweep names the point and the limit."""
    sweep = {"axes": [{"path": "chip.sense_amp.scheme", "values": ["voltage", "current"]}]}
    f = write_scenario(tmp_path / "s.yaml", ckpts, sweep=sweep, trials=1)
    r = run_cli(f)
    assert r.exit_code == 2, r.output
    assert "sweep point 1 (scheme=current)" in r.output and "chip.limits.cell_current_a" in r.output
    assert not (tmp_path / "out").exists()


def test_energy_refuses_a_chip_file_beyond_a_limit(tmp_path):
    """Current sensing of the default cells at 0.2 V puts V / (R_P + R_access) = 0.2 / 7.5 kOhm =
    26.7 uA through an on-state device (no partner in series, unlike the merged line): over the
    20 uA read-disturb limit, so `imcnoise energy --chip` refuses it with the field and the value."""
    chip = tmp_path / "current.yaml"
    chip.write_text("sense_amp: {scheme: current}\n")
    ckpt = REPO_ROOT / "imcnoise" / "checkpoints" / "fmnist-bnn" / "model.pt"
    r = CliRunner().invoke(app, ["energy", str(ckpt), "--chip", str(chip), "--images", "2"])
    assert r.exit_code == 2 and "chip.limits.cell_current_a" in r.output and "26.7 uA" in r.output, r.output
    assert isinstance(r.exception, SystemExit)


def test_a_bad_chip_file_is_named_by_the_option_it_was_given_as(tmp_path):
    """A chip file that fails validation is named with the option the user gave it as: ``--chip`` under
    ``imcnoise energy`` (not ``--hw-aware``, the training option that shares the reader)."""
    chip = tmp_path / "bad.yaml"
    chip.write_text("sense_amp: {adc_bits: 99}\n")
    ckpt = REPO_ROOT / "imcnoise" / "checkpoints" / "fmnist-bnn" / "model.pt"
    r = CliRunner().invoke(app, ["energy", str(ckpt), "--chip", str(chip), "--images", "2"])
    assert r.exit_code == 2 and isinstance(r.exception, SystemExit), r.output
    assert f"--chip {chip}: chip.sense_amp.adc_bits" in r.output and "--hw-aware" not in r.output, r.output
