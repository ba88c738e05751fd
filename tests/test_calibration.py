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

from helpers import REPO_ROOT, calibrated_model, fmnist, quiet_chip

MODES = ("nominal", "reference", "trim", "reference_trim")
WHOLE_ROW = {"cells_per_sensing": None}


def _cfg(mode, sigma=0.0, **kw):
    """An STT chip with only device spread (current sensing of whole rows, no access transistor: the
    lognormal-mean formula below is for bare devices) under calibration ``mode``."""
    kw.setdefault("sense_amp", {"scheme": "current"})
    kw.setdefault("array", WHOLE_ROW)
    kw.setdefault("cell", {"access_resistance_ohm": 0.0})
    kw["calibration"] = {"mode": mode, **kw.get("calibration", {})}
    return quiet_chip(SttMramDevice(sigma_r_p=sigma, sigma_r_ap=sigma), **kw)


@pytest.mark.parametrize("mode", MODES)
def test_every_calibration_of_an_ideal_chip_reproduces_the_integer_engine(mode):
    for kind in ("bsnn", "bnn"):
        prog = fold_model(calibrated_model(kind, negative_gamma=0.3))
        d = fmnist("test", 24)
        ref = evaluate_xnor(prog, d, keep_predictions=True)
        for cfg in (_cfg(mode), AnalogConfig.ideal(calibration={"mode": mode}),
                    AnalogConfig.ideal(RramDevice(sigma_lrs=0, sigma_hrs=0, read_sigma=0), calibration={"mode": mode})):
            res = evaluate(FastChipBatch(prog, cfg, [4]), d, error_stats=True, keep_predictions=True)[0]
            assert torch.equal(res.predictions, ref.predictions) and res.spike_rates == ref.spike_rates
            assert all(v["max_abs_err"] == 0 for v in res.errors.values())


def _layer2_mean_errors(mode, sigma, chips=60):
    """Per chip: mean sensed-count error and mean ideal count of layer 2 (one sensing, 72 cells)."""
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
    cancels each line's offset to within half its step (the trim read is noise-free here)."""
    prog = fold_model(calibrated_model("bsnn", residual="paper"))
    d = fmnist("test", 8)
    cal = {"mode": "trim", "trim_bits": 6, "trim_range_lsb": 16.0}
    cfg = _cfg("trim", sense_amp={"scheme": "current", "offset_sigma_v": None, "offset_sigma_lsb": 4.0}, calibration=cal)
    fb = FastChipBatch(prog, cfg, [3])
    step = 16.0 / 32
    for l in prog.xnor_layers:
        st = fb.state[l.index]
        offset = st.periphery.offset_v / (st.calibration.lsb * st.weights.vpu)
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


def test_trim_reads_the_held_slot_through_the_buffer():
    """The trim read goes through the sense path of the line (calibration.py uses sense()), so a
    residual layer's held slot carries its buffer gain g. With ideal devices a zero-input read of a
    line with M1 zero bits gives, per slot, N0 = b + M1 l (b, l its nominal baseline and LSB);
    summed as the circuit does, g N0 / l + N0 / l - 2 b / l = 2 M1 + (g - 1)(b / l + M1), so the
    trim the chip measures is (g - 1)(b / l + M1) -- here checked per line against that formula
    (by hand, not through the code), to within the DAC's half step."""
    prog = fold_model(calibrated_model("bsnn", residual="paper"))
    cal = {"mode": "trim", "trim_bits": 12, "trim_range_lsb": 64.0}
    cfg = _cfg("trim", buffer={"gain_sigma": 0.01}, calibration=cal)
    fb = FastChipBatch(prog, cfg, [4])
    half = 64.0 / 2 ** 11 / 2
    checked = 0
    for l in prog.xnor_layers:
        if l.residual_from is None:
            continue
        st = fb.state[l.index]
        g = st.periphery.buffer_gain[0].double()  # [S, rows]
        m = fb.maps[l.index]
        cells = torch.tensor([m.sensing_cells(s) for s in range(m.n_sensings)], dtype=torch.float64).view(-1, 1)
        r = fb.off_ratio
        b_over_l = cells * r / (1 - r)
        m1 = fb._zero_bits[l.index].double()
        expect = (g - 1) * (b_over_l + m1)
        assert float(expect.abs().max()) > 0.5  # a gain error of a percent is worth half an LSB and more here
        assert float((st.calibration.correction_lsb[0].double() - expect).abs().max()) <= half + 1e-5
        checked += 1
    assert checked > 0


def test_calibration_residual_falls_as_one_over_sqrt_reads():
    """Calibration reads go through the chip's noisy path: with comparator noise sigma_n (ideal
    devices, no offsets) the measured trim of each line is its noise averaged over ``reads`` reads,
    so its spread over many lines and chips is sigma_n / sqrt(reads) (a 12-bit DAC over +-8 LSB: its
    step, 1/256 LSB, is far below). Measured at 1, 4, 16 and 64 reads: each 4x more reads halves it
    (within 10 %), and the size matches sigma_n / sqrt(reads) (within 10 %)."""
    prog = fold_model(calibrated_model("bnn", residual="none"))
    sigma_lsb = 0.8
    spread = {}
    for reads in (1, 4, 16, 64):
        cfg = _cfg("trim", sense_amp={"scheme": "current", "noise_sigma_lsb": sigma_lsb},
                   calibration={"mode": "trim", "trim_bits": 12, "trim_range_lsb": 8.0, "reads": reads})
        fb = FastChipBatch(prog, cfg, list(range(40)))
        corr = torch.cat([fb.state[l.index].calibration.correction_lsb.flatten() for l in prog.xnor_layers]).double()
        spread[reads] = float(corr.std())
    for reads, s in spread.items():
        assert s == pytest.approx(sigma_lsb / math.sqrt(reads), rel=0.1), (reads, s)
    for a, b in ((1, 4), (4, 16), (16, 64)):
        assert spread[a] / spread[b] == pytest.approx(2.0, rel=0.1)
    # the reference rows' levels too: baseline spread over chips from comparator noise of R rows x reads
    for reads in (1, 16):
        cfg = _cfg("reference", sense_amp={"scheme": "current", "noise_sigma_lsb": sigma_lsb},
                   calibration={"mode": "reference", "reads": reads, "reference_columns": 4})
        fb = FastChipBatch(prog, cfg, list(range(40)))
        l = prog.xnor_layers[0]
        base = fb.state[l.index].calibration.baseline[:, 0, 0].double()  # one line per chip
        r = fb.off_ratio  # ideal devices: the true baseline is n r, one LSB 1 - r
        err = (base - l.cols * r) / (1 - r)
        expect = sigma_lsb / math.sqrt(4 * reads)  # in counts: each reference row's noise, averaged over R x reads
        assert float(err.std()) == pytest.approx(expect, rel=0.3)


def test_sense_stage_defaults_fit_the_supply_and_units_round_trip():
    """The default chip senses the merged source line: by hand, with the 1.5 kOhm access transistor
    G_on = 1/7.5 kOhm, G_off = 1/13.5 kOhm, r = 0.5556; one match of a 63-cell sensing at 0.2 V is
    V (1 - r) / (63 (1 + r)) = 0.2 x 0.4444 / 98.0 = 0.907 mV."""
    cfg = AnalogConfig()
    assert cfg.sense_amp.scheme == "voltage" and cfg.array.sensing_cells == 63
    assert lsb_voltage_v(cfg) == pytest.approx(0.907e-3, rel=1e-3)
    assert volts_per_unit(cfg) == pytest.approx(0.2 / (63 * (1 + 7.5 / 13.5)), rel=1e-12)
    # kT/C of the default buffer is below an LSB; the default comparator offset (4.5 mV) is several
    assert ktc_sigma_v(cfg.buffer) < lsb_voltage_v(cfg) < offset_sigma_v(cfg)
    # volts <-> LSB
    for lsb in (0.0, 0.3, 2.5):
        c = AnalogConfig(sense_amp={"offset_sigma_lsb": lsb})
        assert offset_sigma_v(c) == pytest.approx(lsb * lsb_voltage_v(cfg))
        back = AnalogConfig(sense_amp={"offset_sigma_v": offset_sigma_v(c)})
        assert offset_sigma_v(back) / lsb_voltage_v(back) == pytest.approx(lsb)
    # current sensing, auto stage: two slots of a full sensing of on-state cells end at the full scale
    cur = AnalogConfig(sense_amp={"scheme": "current"})
    sa, dev = cur.sense_amp, cur.device
    assert full_scale_swing_v(cur) == pytest.approx(sa.full_scale_v) and sa.full_scale_v < sa.supply_v
    z = transimpedance_ohm(cur)
    g_on = 1 / (dev.r_p_ohm + cur.cell.access_resistance_ohm)
    assert full_scale_swing_v(cur) == pytest.approx(2 * 63 * dev.read_voltage_v * g_on * z)
    # RRAM, bare cells, current sensing of whole 128-cell rows: 0.8 V x (1 - 0.01) / (2 x 128)
    rr = AnalogConfig(device=RramDevice(), sense_amp={"scheme": "current"}, array=WHOLE_ROW, cell={"access_resistance_ohm": 0})
    assert lsb_voltage_v(rr) == pytest.approx(0.8 * (1 - 0.01) / 256)
    # an explicit integrator or TIA must fit the supply
    ok = AnalogConfig(sense_amp={"scheme": "current", "stage": "integrator", "read_time_s": 1e-9,
                                 "integration_capacitance_f": 200e-12})
    assert full_scale_swing_v(ok) == pytest.approx(2 * 63 * 0.2 * g_on * 1e-9 / 200e-12)
    with pytest.raises(ValidationError, match=r"full-scale swing .* V .* more than supply_v = 0.9 V"):
        AnalogConfig(sense_amp={"scheme": "current", "stage": "tia", "feedback_resistance_ohm": 1e5})
    with pytest.raises(ValidationError, match="full_scale_v = 1.5 V exceeds supply_v = 0.9 V"):
        AnalogConfig(sense_amp={"full_scale_v": 1.5})
    with pytest.raises(ValidationError, match=r"2 x read_voltage_v = 1 V, more than supply_v = 0.9 V"):
        AnalogConfig(device={"model": "stt_mram", "read_voltage_v": 0.5})


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
    # the periphery too: chip k's comparator offsets at two sigmas differ only by the scale, and two
    # chips differ (the sweep's chip k is derive_seed(seed, "chip", k) at every point: runner.chip_seed)
    from imcnoise.sweep.runner import chip_seed

    prog = fold_model(calibrated_model("bnn", residual="none"))
    sc, _ = load_scenario(REPO_ROOT / "scenarios" / "smoke.yaml")
    offs = {}
    for s in (1e-3, 3e-3):
        for k in (0, 1):
            cfg = quiet_chip(sense_amp={"offset_sigma_v": s}, calibration={"mode": "nominal"})
            offs[s, k] = FastChipBatch(prog, cfg, [chip_seed(sc, k)]).state[prog.xnor_layers[0].index].periphery.offset_v
    assert torch.allclose(offs[3e-3, 0], 3 * offs[1e-3, 0], rtol=1e-5) and not torch.allclose(offs[1e-3, 0], offs[1e-3, 1])


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
    for path in sorted((REPO_ROOT / "scenarios").glob("*.yaml")) + sorted((REPO_ROOT / "scenarios" / "legacy").glob("*.yaml")):
        sc, _ = load_scenario(path)
        assert sc.name == path.stem


@pytest.mark.parametrize("shift,gain", [(2.0, 0.0), (-3.0, 0.0), (0.0, 0.25)])
def test_common_mode_calibration_residue_shifts_and_scales_every_count(shift, gain):
    """``calibration.baseline_shift_lsb`` (s) and ``gain_shift`` (g) on an ideal chip whose rows are
    sensed whole (one sensing of n = 72 cells, full-resolution ADC, clipping on). By hand: a line's
    count is its match count c (the integer engine's); a baseline error of s LSB adds s to it, clipped
    to the ADC's range [0, n]: min(max(c + s, 0), n); a relative LSB error g divides the analog count by
    1 + g before the ADC rounds it: for g = 0.25, 0.8 c, never a tie for integer c (0.8 c = k + 1/2
    needs c = 1.25 k + 0.625), so floor(0.8 c + 1/2)."""
    prog = fold_model(calibrated_model("bnn", residual="none"))
    cfg = quiet_chip(calibration={"mode": "nominal", "baseline_shift_lsb": shift, "gain_shift": gain},
                     array={"cells_per_sensing": None})
    chip = AnalogChip(prog, cfg, chip_seed=1)
    layer = prog.xnor_layers[0]
    assert layer.cols == 72 and chip.maps[layer.index].n_sensings == 1
    seen = {}
    orig = chip.mac

    def hook(l, slots, p):
        out = orig(l, slots, p)
        if l.index == layer.index:
            seen["x"], seen["dot"] = slots[0], out[:, 0]
        return out

    chip.mac = hook
    chip.run(fmnist("test", 4).images, torch.arange(4))
    from imcnoise.imc.engines import layouts as lay

    exact = lay.dots_from_nchw(chip.ideal_dot(layer, lay.nchw(seen["x"][:, 0])))[:, 0].double()
    got = seen["dot"].double()
    if gain == 0:
        want = (exact + shift).clamp(0, 72)
    else:
        want = torch.floor(exact / (1 + gain) + 0.5)
    assert torch.equal(got, want)
    assert not torch.equal(got, exact)  # the residue changed the counts
