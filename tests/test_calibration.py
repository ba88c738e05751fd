"""Calibration of the sense path, sensing in physical units, common random numbers (issue 11)."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError

from imcnoise import defaults as D
from imcnoise.imc import (GRID, AnalogChip, AnalogConfig, FastChipBatch, ResidualBufferConfig, RramDevice, SenseAmpConfig,
                          SttMramDevice, evaluate, evaluate_xnor, fold_model, make_noise_model)
from imcnoise.imc.config import full_scale_swing_v, lsb_voltage_v, transimpedance_ohm, volts_per_unit
from imcnoise.imc.physics.calibration import trim_dac
from imcnoise.imc.physics.devices import program_conductances
from imcnoise.imc.physics.sense import ktc_sigma_v, offset_sigma_v
from imcnoise.sweep import load_scenario

from helpers import REPO_ROOT, calibrated_model, fmnist

MODES = ("nominal", "reference", "trim")


def _cfg(mode, sigma=0.0, **kw):
    kw.setdefault("buffer", ResidualBufferConfig(kt_c_noise=False))
    return AnalogConfig(device=SttMramDevice(sigma_r_p=sigma, sigma_r_ap=sigma), calibration={"mode": mode}, **kw)


@pytest.mark.parametrize("mode", MODES)
def test_every_calibration_of_an_ideal_chip_reproduces_the_integer_engine(mode):
    for kind in ("bsnn", "bnn"):
        prog = fold_model(calibrated_model(kind, negative_gamma=0.3))
        d = fmnist("test", 24)
        ref = evaluate_xnor(prog, d, keep_predictions=True)
        for cfg in (_cfg(mode), AnalogConfig(device=RramDevice(sigma_lrs=0, sigma_hrs=0, read_sigma=0), calibration={"mode": mode},
                                             buffer=ResidualBufferConfig(kt_c_noise=False))):
            res = evaluate(FastChipBatch(prog, cfg, [4]), d, error_stats=True, keep_predictions=True)[0]
            assert torch.equal(res.predictions, ref.predictions) and res.spike_rates == ref.spike_rates
            assert all(v["max_abs_err"] == 0 for v in res.errors.values())


def _layer2_mean_errors(mode, sigma, chips=60):
    """Per chip: mean sensed-count error and mean ideal count of layer 2 (one column tile, 72 cells)."""
    prog = fold_model(calibrated_model("bsnn", residual="none"))
    res = evaluate(FastChipBatch(prog, _cfg(mode, sigma), list(range(chips))), fmnist("test", 4), error_stats=True)
    return (torch.tensor([r.errors[2]["mean_err"] for r in res], dtype=torch.float64),
            torch.tensor([r.errors[2]["mean_ideal"] for r in res], dtype=torch.float64), prog.xnor_layers[0].cols)


def test_nominal_calibration_reads_high_by_the_lognormal_mean_and_reference_calibration_does_not():
    """Devices drawn with median = nominal have mean nominal * exp(sigma^2/2): a nominal baseline
    and LSB read (exp(sigma^2/2) - 1) * sum(G_read) / (G_on - G_off) LSB too high on average; the
    reference columns, drawn from the same population, remove it (device-parameters.md)."""
    sigma, r = 0.15, 0.5
    err, ideal, n = _layer2_mean_errors("nominal", sigma)
    # every read senses one device per cell: `ideal` on-state devices (G = 1) and n - ideal off ones (G = r)
    expect = (math.exp(sigma ** 2 / 2) - 1) * (ideal + (n - ideal) * r) / (1 - r)
    se = float(err.std()) / math.sqrt(len(err))
    assert float(expect.mean()) > 1.0  # the bias is large at this spread ...
    assert abs(float(err.mean() - expect.mean())) < 5 * se  # ... and it is what the lognormal mean predicts
    ref, _, _ = _layer2_mean_errors("reference", sigma)
    se = float(ref.std()) / math.sqrt(len(ref))
    assert abs(float(ref.mean())) < 5 * se  # unbiased: only the references' finite-sample error is left
    assert float(expect.mean()) > 5 * se


def test_trim_removes_static_offsets_to_within_its_resolution():
    """Large comparator offsets, ideal devices: nominal calibration keeps them, the trim DAC
    cancels each line's offset to within half its step."""
    prog = fold_model(calibrated_model("bsnn", residual="paper"))
    d = fmnist("test", 8)
    sa = SenseAmpConfig(offset_sigma_lsb=4.0)
    cal = {"mode": "trim", "trim_bits": 6, "trim_range_lsb": 16.0}
    cfg = AnalogConfig(device=SttMramDevice(sigma_r_p=0, sigma_r_ap=0), sense_amp=sa, calibration=cal,
                       buffer=ResidualBufferConfig(kt_c_noise=False))
    fb = FastChipBatch(prog, cfg, [3])
    step = 16.0 / 32
    for l in prog.xnor_layers:
        st = fb.state[l.index]
        offset = st.periphery.offset_v / lsb_voltage_v(cfg)
        residue = offset - st.calibration.correction_lsb  # what the trim leaves of each line's offset
        inside = offset.abs() < 16 - step
        assert float(offset.abs().max()) > 4  # offsets of several LSB ...
        assert float(residue[inside].abs().max()) <= step / 2 + 1e-6  # ... trimmed to half a step
    trimmed = evaluate(fb, d, error_stats=True)[0].errors
    untrimmed = evaluate(FastChipBatch(prog, cfg.model_copy(update={"calibration": cfg.calibration.model_copy(
        update={"mode": "nominal"})}), [3]), d, error_stats=True)[0].errors
    for l in trimmed:
        assert trimmed[l]["rms_err"] < 0.5 * untrimmed[l]["rms_err"]
    # the DAC itself: two's complement, saturating
    e = torch.tensor([0.2, 0.26, -0.74, 100.0, -100.0])
    assert trim_dac(e, 6, 16.0).tolist() == [0.0, 0.5, -0.5, 15.5, -16.0]


def test_sense_stage_defaults_fit_the_supply_and_units_round_trip():
    cfg = AnalogConfig()
    dev, sa = cfg.device, cfg.sense_amp
    # auto stage: two slots of a full row of on-state cells end exactly at the full scale, below the supply
    assert full_scale_swing_v(cfg) == pytest.approx(sa.full_scale_v) and sa.full_scale_v < sa.supply_v
    z = transimpedance_ohm(cfg)
    assert full_scale_swing_v(cfg) == pytest.approx(2 * cfg.array.cols * dev.read_voltage_v / dev.r_p_ohm * z)
    # one match: V_read (G_on - G_off) Z, within the 1-2 mV the supply allows for a 252-cell row and 2 slots
    v_lsb = lsb_voltage_v(cfg)
    assert v_lsb == pytest.approx(dev.read_voltage_v * (dev.g_on_siemens - dev.g_off_siemens) * z)
    assert 0.5e-3 < v_lsb < 2e-3
    assert v_lsb == pytest.approx(volts_per_unit(cfg) * (1 - dev.g_off_siemens / dev.g_on_siemens))
    # kT/C of the default buffer is below an LSB; the uncalibrated latch offset is several
    assert ktc_sigma_v(cfg.buffer) < v_lsb < D.SA_OFFSET_UNCALIBRATED_V
    # volts <-> LSB
    for lsb in (0.0, 0.3, 2.5):
        c = AnalogConfig(sense_amp={"offset_sigma_lsb": lsb})
        assert offset_sigma_v(c) == pytest.approx(lsb * v_lsb)
        back = AnalogConfig(sense_amp={"offset_sigma_v": offset_sigma_v(c)})
        assert offset_sigma_v(back) / lsb_voltage_v(back) == pytest.approx(lsb)
    # RRAM: the same stage, a larger match (on/off 100)
    assert lsb_voltage_v(AnalogConfig(device=RramDevice())) == pytest.approx(0.8 * (1 - 0.01) / 512)
    # an explicit integrator or TIA must fit the supply
    ok = AnalogConfig(sense_amp={"stage": "integrator", "integration_time_s": 1e-9, "integration_capacitance_f": 200e-12})
    assert full_scale_swing_v(ok) == pytest.approx(2 * 256 * 0.25 / 6e3 * 1e-9 / 200e-12)
    with pytest.raises(ValidationError, match=r"full-scale swing .* V .* more than supply_v = 0.9 V"):
        AnalogConfig(sense_amp={"stage": "tia", "feedback_resistance_ohm": 1e3})
    with pytest.raises(ValidationError, match="full_scale_v = 1.5 V exceeds supply_v = 0.9 V"):
        AnalogConfig(sense_amp={"full_scale_v": 1.5})


def test_common_random_numbers_a_chip_keeps_its_draws_across_sigmas_and_fault_rates():
    """A chip's conductance errors at two sigmas differ only by the scale; its stuck devices at a
    higher fault rate include those at a lower one."""
    target = torch.cat([torch.ones(1, 5000), torch.full((1, 5000), 0.5)], dim=1)
    ln = {}
    for s in (0.02, 0.07):
        g = program_conductances(make_noise_model(SttMramDevice(sigma_r_p=s, sigma_r_ap=s)), target, seed=11, t_inference=0.0)
        ln[s] = torch.log(g.double() / target.double()) / s
    # the same standard normals, up to the conductance grid (relative step 2**-12 of G_on)
    assert float((ln[0.02] - ln[0.07]).abs().max()) < 2 * (2.0 / GRID) / 0.02
    assert float(torch.corrcoef(torch.stack([ln[0.02].flatten(), ln[0.07].flatten()]))[0, 1]) > 0.999
    stuck = {}
    for p in (0.001, 0.01):
        g = program_conductances(make_noise_model(SttMramDevice(sigma_r_p=0, sigma_r_ap=0, p_stuck_p=p, p_stuck_ap=p)),
                                 target, seed=11, t_inference=0.0)
        stuck[p] = g != target
    assert stuck[0.001].any() and bool((stuck[0.001] <= stuck[0.01]).all())  # a subset
    # the sweep's chip instances: the same seed at every point
    from imcnoise.sweep.points import expand_points
    from imcnoise.sweep.runner import chip_seed

    sc, _ = load_scenario(REPO_ROOT / "scenarios" / "smoke.yaml")
    assert len({chip_seed(sc, 1) for _ in expand_points(sc)}) == 1 and chip_seed(sc, 0) != chip_seed(sc, 1)


def test_aihwkit_path_and_fast_engine_calibrate_identically():
    prog = fold_model(calibrated_model("bnn", negative_gamma=0.3))
    for mode in MODES:
        cfg = _cfg(mode, 0.06, sense_amp=SenseAmpConfig(offset_sigma_v=1e-3))
        fast = FastChipBatch(prog, cfg, [9])
        chip = AnalogChip(prog, cfg, 9)
        for l in prog.xnor_layers:
            a, b = fast.state[l.index], chip.state[l.index]
            assert torch.equal(a.calibration.baseline[0], b.calibration.baseline)
            assert torch.equal(a.calibration.lsb[0], b.calibration.lsb)
            assert torch.equal(a.calibration.correction_lsb[0], b.calibration.correction_lsb)


def test_shipped_scenarios_validate():
    for path in sorted((REPO_ROOT / "scenarios").glob("*.yaml")):
        sc, _ = load_scenario(path)
        assert sc.name == path.stem
