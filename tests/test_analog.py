"""Analog XNOR arrays on aihwkit tiles: device statistics, periphery, exactness when ideal."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError
from scipy import stats

from imcnoise.imc import (GRID, AihwkitPcmDevice, AihwkitReRamDevice, AnalogChip, AnalogConfig, FastChipBatch, ReadNoise,
                          ResidualBufferConfig, RramDevice, SenseAmpConfig, SttMramDevice, evaluate, evaluate_xnor, fold_model,
                          make_noise_model, nominal_off_ratio, sense, target_conductances)
from imcnoise.imc.config import lsb_voltage_v
from imcnoise.imc.engines import layouts
from imcnoise.imc.physics.sense import SenseStatic, SlotRead, buffer_droop, ktc_sigma_v

from helpers import calibrated_model, fmnist, quiet_chip, record_layer

N_DEV = 200_000


def _program(device, n=N_DEV, seed=0, t=0.0):
    """Program n devices in the on state and n in the off state; returns normalised G (on, off)."""
    nm = make_noise_model(device)
    r = nominal_off_ratio(device)
    w = torch.cat([torch.ones(n), torch.full((n,), r)]).view(1, -1)
    torch.manual_seed(seed)
    g, drift = nm.apply_programming_noise(w)
    if t > 0:
        g = nm.apply_drift_noise(g, drift, t)
    return g[0, :n], g[0, n:]


def test_stt_mram_conductances_match_configured_median_and_sigma():
    dev = SttMramDevice(r_p_ohm=6e3, tmr=1.0, sigma_r_p=0.05, sigma_r_ap=0.08)
    g_on, g_off = _program(dev)
    # median: R_P and R_AP = R_P (1 + TMR) (normalised: G_on = 1, G_off = 0.5)
    for g, nominal, sigma in ((g_on, 1.0, 0.05), (g_off, 0.5, 0.08)):
        r = 1.0 / g.double()  # in units of R_P
        med = float(r.median())
        assert abs(med - 1 / nominal) / (1 / nominal) < 4 * 1.2533 * sigma / math.sqrt(N_DEV) + 1 / GRID
        s = float(torch.log(r).std())
        # sd of a sample sd ~ sigma / sqrt(2n); grid quantisation adds < 1/GRID relative
        assert abs(s - sigma) < 5 * sigma / math.sqrt(2 * N_DEV) + 2 / GRID
    # lognormal: ln R is normal (KS test against the configured distribution)
    ks = stats.kstest(torch.log(1 / g_on.double()).numpy(), "norm", args=(0.0, 0.05))
    assert ks.pvalue > 1e-4


def test_rram_conductances_and_drift():
    dev = RramDevice(sigma_lrs=0.05, sigma_hrs=0.2, drift_nu=0.01, drift_t0_s=1.0)
    g_on, g_off = _program(dev)
    n = g_on.numel()
    # std of a sample std ~ sigma / sqrt(2n); the 2**-12 grid adds < 1/GRID (relative)
    assert abs(float(torch.log(g_on.double()).std()) - 0.05) < 5 * 0.05 / math.sqrt(2 * n) + 1 / GRID
    # median of a lognormal sample: sd ~ 1.2533 sigma / sqrt(n) (relative)
    assert abs(float(g_on.median()) - 1.0) < 5 * 1.2533 * 0.05 / math.sqrt(n) + 1 / GRID
    # HRS = 1/100 of LRS here; grid quantisation (2**-12) dominates relative error there, check the median only
    assert abs(float(g_off.median()) - 0.01) < 1 / GRID
    on_t, _ = _program(dev, t=1e4)  # 4 decades after t0: mean loses 4 * 1 %
    assert abs(float(on_t.median()) / float(g_on.median()) - 0.96) < 0.002


@pytest.mark.parametrize("p_on,p_off", [(0.01, 0.0), (0.0, 0.02), (0.005, 0.015)])
def test_stuck_at_fractions_within_binomial_bounds(p_on, p_off):
    dev = SttMramDevice(sigma_r_p=0.0, sigma_r_ap=0.0, p_stuck_p=p_on, p_stuck_ap=p_off)
    g_on, g_off = _program(dev)
    n = N_DEV
    stuck_ap = int((g_on < 0.75).sum())  # on-target devices found in AP
    stuck_p = int((g_off > 0.75).sum())  # off-target devices found in P
    for k, p in ((stuck_ap, p_off), (stuck_p, p_on)):
        lo, hi = stats.binom.ppf([1e-5, 1 - 1e-5], n, p)
        assert lo <= k <= hi, (k, p)


def test_ideal_analog_chip_equals_integer_engine():
    """The default chip (merged-line voltage sensing of 64-cell sensings, access transistors, reference
    rows and trim read through the chip) with its non-idealities off counts exactly."""
    for kind in ("bsnn", "bnn"):
        prog = fold_model(calibrated_model(kind, negative_gamma=0.3))
        d = fmnist("test", 48)
        ref = evaluate_xnor(prog, d, keep_predictions=True)
        chip = AnalogChip(prog, AnalogConfig.ideal(), chip_seed=3)
        res = evaluate(chip, d, batch_size=24, error_stats=True, keep_predictions=True)[0]
        assert torch.equal(res.predictions, ref.predictions)
        assert res.spike_rates == ref.spike_rates
        assert all(v["frac_wrong"] == 0 and v["max_abs_err"] == 0 for v in res.errors.values())


def test_ideal_rram_chip_is_exact_too():
    prog = fold_model(calibrated_model("bsnn"))
    d = fmnist("test", 24)
    cfg = AnalogConfig.ideal(RramDevice(sigma_lrs=0, sigma_hrs=0, read_sigma=0))
    res = evaluate(AnalogChip(prog, cfg), d, error_stats=True, keep_predictions=True)[0]
    assert torch.equal(res.predictions, evaluate_xnor(prog, d, keep_predictions=True).predictions)
    assert all(v["max_abs_err"] == 0 for v in res.errors.values())


def _dot_counts(chip, prog, d, layer_index):
    """Sensed and ideal dot of one layer for a batch, ``[T*B, rows, H, W]`` (via a hook on mac)."""
    seen = {}
    orig = chip.mac

    def hook(layer, slots, p):
        out = orig(layer, slots, p)
        if layer.index == layer_index:
            seen["dot"] = layouts.dots_to_nchw(out[:, 0], layer).double()
            seen["ideal"] = sum(chip.ideal_dot(layer, layouts.nchw(s[:, 0])) for s in slots)
        return out

    chip.mac = hook
    chip.run(d.images, torch.arange(len(d)))
    chip.mac = orig
    return seen["dot"], seen["ideal"]


def _line_lsb_v(chip, layer):
    """Each line's own LSB voltage (calibrated LSB x the line's volts per unit): with merged-line
    sensing a line of fewer cells than a full sensing has a larger step."""
    st = chip.state[layer.index]
    return st.calibration.lsb * st.weights.vpu


def _set_offsets(chip, layer, offset_lsb):
    """Replace the static comparator offsets of one layer of a one-chip engine (given in LSB of each line)."""
    per = chip.state[layer.index].periphery
    per.offset_v = offset_lsb.to(per.offset_v.dtype) * _line_lsb_v(chip, layer)


WHOLE_ROW = {"cells_per_sensing": None}  # one sensing per 128-cell row: layer 2's 72 cells on one line


def test_known_offset_shifts_the_measured_dot():
    prog = fold_model(calibrated_model("bsnn", residual="none"))
    d = fmnist("test", 8)
    chip = AnalogChip(prog, quiet_chip(array=WHOLE_ROW))
    layer = prog.xnor_layers[0]  # layer 2: one sensing (M = 72 cells)
    assert chip.maps[layer.index].n_sensings == 1
    _set_offsets(chip, layer, torch.full((1, layer.rows), 2.0))
    dot, ideal = _dot_counts(chip, prog, d, layer.index)
    assert torch.equal(dot, (ideal + 2).clamp(max=layer.cols))
    # a column with offset -3.4 reads 3 counts low (ADC rounds), others unchanged
    off = torch.zeros(1, layer.rows)
    off[0, 5] = -3.4
    _set_offsets(chip, layer, off)
    dot, ideal = _dot_counts(chip, prog, d, layer.index)
    diff = dot - ideal
    assert torch.equal(diff[:, 5], (-3.0 * torch.ones_like(ideal[:, 5])).clamp(min=-ideal[:, 5]))
    assert (diff[:, torch.arange(layer.rows) != 5] == 0).all()


def test_offsets_are_static_per_line_and_have_the_configured_statistics_across_chips():
    """Offsets: the same error in every read of a line; across chips mean 0 and std sigma (5 standard
    errors), every line independent of every other line and chip."""
    prog = fold_model(calibrated_model("bsnn", residual="none"))
    # nominal calibration: no reference rows (whose own comparators would shift the baseline), no trim
    cfg = quiet_chip(sense_amp={"offset_sigma_v": None, "offset_sigma_lsb": 1.5}, array=WHOLE_ROW,
                     calibration={"mode": "nominal"})
    d = fmnist("test", 8)
    layer = prog.xnor_layers[0]
    chip = AnalogChip(prog, cfg, chip_seed=1)
    dot, ideal = _dot_counts(chip, prog, d, layer.index)
    err = dot - ideal  # [T*B, rows, H, W]
    off = chip.state[layer.index].periphery.offset_v[0] / _line_lsb_v(chip, layer)[0]
    unclipped = (ideal + off.view(1, -1, 1, 1).round() >= 0) & (ideal + off.view(1, -1, 1, 1).round() <= layer.cols)
    expect = off.round().view(1, -1, 1, 1).expand_as(err)
    assert torch.equal(err[unclipped], expect[unclipped])
    assert torch.equal(AnalogChip(prog, cfg, chip_seed=1).state[layer.index].periphery.offset_v,
                       chip.state[layer.index].periphery.offset_v)  # same seed, same offsets
    # 400 chips x every line of every layer: the draws the engines use (draw_periphery, as chip_layer calls it)
    from imcnoise.imc.physics.sense import draw_periphery

    assert torch.equal(draw_periphery(cfg, 1, layer.index, 1, layer.rows).offset_v, chip.state[layer.index].periphery.offset_v)
    m = {l.index: chip.maps[l.index] for l in prog.xnor_layers}
    o = torch.stack([torch.cat([draw_periphery(cfg, seed, l.index, m[l.index].n_sensings, l.rows).offset_v.flatten()
                                for l in prog.xnor_layers]) for seed in range(400)]).double() / lsb_voltage_v(cfg)
    n = o.numel()
    assert abs(float(o.mean())) < 5 * 1.5 / math.sqrt(n)
    assert abs(float(o.std()) - 1.5) < 5 * 1.5 / math.sqrt(2 * n)
    per_line_mean = o.mean(0)  # each line's mean over chips: 0 within 5 SE of 400 chips
    assert float(per_line_mean.abs().max()) < 5 * 1.5 / math.sqrt(400) * 1.6  # max of ~600 lines: allow 1.6x
    c = torch.corrcoef(o[:, :300].T)  # lines across chips: uncorrelated (|r| of 400 samples: sd 0.05)
    off_diag = c[~torch.eye(300, dtype=torch.bool)]
    assert float(off_diag.abs().max()) < 5 / math.sqrt(400) + 0.03
    chips = torch.corrcoef(o[:50])  # chips across lines: uncorrelated
    assert float(chips[~torch.eye(50, dtype=torch.bool)].abs().max()) < 5 / math.sqrt(o.shape[1]) + 0.02


def _static(cells=50, lsb=0.5, offset_v=0.0, gain=1.0, vpu=1.0):
    t = lambda x: torch.tensor(float(x)).view(1, 1, 1, 1)
    return SenseStatic(cells, t(cells * (1 - lsb)), t(lsb), t(0.0), t(offset_v), t(gain), vpu)


def test_ktc_noise_sigma_matches_sqrt_kT_over_C():
    buf = ResidualBufferConfig(capacitance_f=10e-15, temperature_k=300.0)
    assert math.isclose(ktc_sigma_v(buf), math.sqrt(1.380649e-23 * 300 / 10e-15), rel_tol=1e-12)
    assert math.isclose(ktc_sigma_v(buf), 0.64e-3, rel_tol=0.01)  # device-parameters.md
    # through the sense path: hold 100 LSB, add 0; noise drawn per read from the chip's streams.
    # LSB = 0.5 units x 0.2 mV per unit = 0.1 mV, so kT/C is 6.4 LSB
    cfg = quiet_chip(sense_amp={"adc_bits": None, "clip": False}, buffer=buf)
    n_img, L = 1000, 400
    raw1 = torch.full((n_img, 1, L, 1, 1), 50.0)  # 100 LSB above zero... of which 50 baseline units
    raw0 = torch.zeros(n_img, 1, L, 1, 1)
    static = _static(cells=50, lsb=0.5, vpu=2e-4)
    counts = sense([SlotRead(raw1.clone()), SlotRead(raw0.clone())], static, cfg, ReadNoise([0], 3, torch.arange(n_img), 1))
    sigma = ktc_sigma_v(buf) / 1e-4
    # counts = round(100 + noise - 2 * 50) = round(noise); var = sigma^2 + 1/12 (rounding)
    n = counts.numel()
    assert abs(float(counts.double().std()) - math.sqrt(sigma ** 2 + 1 / 12)) < 5 * sigma / math.sqrt(2 * n)
    assert abs(float(counts.double().mean())) < 5 * sigma / math.sqrt(n)
    # the same reads give the same noise whatever else is in the batch
    c2 = sense([SlotRead(raw1[500:520].clone()), SlotRead(raw0[500:520].clone())], static, cfg,
               ReadNoise([0], 3, torch.arange(500, 520), 1))
    assert torch.equal(c2, counts[500:520])


def test_buffer_droop_and_gain_are_applied_to_the_held_slot():
    cfg = quiet_chip(buffer={"kt_c_noise": False, "hold_time_s": 1e-6, "leak_resistance_ohm": 1e8, "capacitance_f": 1e-14},
                     sense_amp={"clip": False, "adc_bits": 16})
    droop = math.exp(-1e-6 / (1e8 * 1e-14))
    assert math.isclose(buffer_droop(cfg.buffer), droop)
    lsb = 0.5
    raw1 = torch.full((1, 2, 1, 1, 1), 150.0)  # 300 LSB (two chips, one line each)
    raw2 = torch.full((1, 2, 1, 1, 1), 130.0)  # 260 LSB
    t = lambda *v: torch.tensor(v).view(2, 1, 1, 1)
    static = SenseStatic(256, t(128.0, 128.0), t(lsb, lsb), t(0.0, 0.0), t(0.0, 0.0), t(1.0, 0.9), 1.0)
    out = sense([SlotRead(raw1.clone()), SlotRead(raw2.clone())], static, cfg, None)
    expected = torch.tensor([300 * droop + 260 - 512, 300 * 0.9 * droop + 260 - 512])
    assert torch.equal(out.view(-1), expected.float().round())  # >= 10 bits resolve every count: integers
    cfg.sense_amp.adc_bits = 4  # 16 levels over 0..512: steps of 512/15
    out = sense([SlotRead(raw1 + 300), SlotRead(raw2.clone())], static, cfg, None)
    step = 512 / 15
    assert torch.allclose(out.view(-1), ((expected + torch.tensor([600 * droop, 540 * droop])) / step).round().float() * step)


def test_redraw_gives_new_chip_and_same_seed_reproduces():
    prog = fold_model(calibrated_model("bsnn"))
    cfg = AnalogConfig(device=SttMramDevice(sigma_r_p=0.05, sigma_r_ap=0.05), sense_amp=SenseAmpConfig(offset_sigma_lsb=0.5))
    chip = AnalogChip(prog, cfg, chip_seed=7)
    g7 = chip.conductances(3, 0).clone()
    chip.program_chip(8)
    assert not torch.equal(chip.conductances(3, 0), g7)
    chip.program_chip(7)
    assert torch.equal(chip.conductances(3, 0), g7)
    d = fmnist("test", 16)
    a = evaluate(chip, d, batch_size=16, keep_predictions=True)[0]
    b = evaluate(AnalogChip(prog, cfg, chip_seed=7), d, batch_size=5, keep_predictions=True)[0]  # other batching
    assert torch.equal(a.predictions, b.predictions) and a.spike_rates == b.spike_rates
    # targets are the complementary pair: bit 1 -> (G_on, G_off), bit 0 -> (G_off, G_on)
    t = target_conductances(torch.tensor([[1, 0]]), 0.5)
    assert t.tolist() == [[1.0, 0.5, 0.5, 1.0]]


@pytest.mark.parametrize("device", [AihwkitPcmDevice(), AihwkitReRamDevice(read_sigma=0.0), RramDevice(read_sigma=0.0)])
def test_aihwkit_and_rram_models_plug_in(device):
    """aihwkit's own noise models (and ours) program the chip's devices through the tiles: the chip's
    devices are what the model's programming and drift give for the sub-array's seed (computed here
    directly), and with the periphery ideal each sensed count is the calibrated ratio of those
    conductances' line signal, recomputed here from the input bits: sum_j [x G_A + (1 - x) G_B]."""
    from imcnoise.imc.physics.devices import program_conductances, program_seed

    prog = fold_model(calibrated_model("bnn", residual="none"))
    cfg = quiet_chip(device, sense_amp={"scheme": "current", "stage": "tia", "feedback_resistance_ohm": 10.0},
                     array=WHOLE_ROW, calibration={"mode": "nominal"}, cell={"access_resistance_ohm": 0.0}, t_inference_s=86400.0)
    chip = AnalogChip(prog, cfg, chip_seed=0)
    layer = prog.xnor_layers[0]
    m = chip.maps[layer.index]
    assert m.n_subarrays == 1 and m.n_sensings == 1
    target = target_conductances(torch.from_numpy(layer.bits), chip.device_off_ratio)
    g = program_conductances(chip.noise_model, target, program_seed(0, layer.index, 0, 0), cfg.t_inference_s)
    assert torch.equal(chip.state[layer.index].weights.w_a[0], g[:, :layer.cols].float())
    assert not torch.equal(g, target)
    d = fmnist("test", 4)
    seen = record_layer(chip, layer.index)
    chip.run(d.images, torch.arange(len(d)))
    x = torch.nn.functional.unfold(layouts.nchw(seen["x"]).double(), 3, padding=1).transpose(1, 2)  # [N, L, M]
    g64 = g.double()
    signal = x @ g64[:, :layer.cols].T + (1 - x) @ g64[:, layer.cols:].T  # [N, L, rows]
    r = chip.off_ratio
    v = (signal - layer.cols * r) / (1 - r)
    expect = torch.round(v).clamp(0, layer.cols)
    # the engine works in float32: it may round the other way only within float32 precision of a half
    tie = ((v - v.floor()) - 0.5).abs() < 1e-4
    assert torch.equal(seen["dot"].double()[~tie], expect[~tie]) and float(tie.double().mean()) < 1e-3
    assert float((seen["dot"].double() - expect).abs().max()) <= 1


def test_bad_analog_config_names_field_and_range():
    with pytest.raises(ValidationError, match=r"device\.stt_mram\.p_stuck_p[\s\S]*less than or equal to 1"):
        AnalogConfig(device={"model": "stt_mram", "p_stuck_p": 1.5})
    with pytest.raises(ValidationError, match=r"sigma_r_p[\s\S]*greater than or equal to 0"):
        AnalogConfig(device={"model": "stt_mram", "sigma_r_p": -0.1})
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        AnalogConfig(device={"model": "flash"})
    with pytest.raises(ValidationError, match="r_hrs_ohm"):
        RramDevice(r_lrs_ohm=1e6, r_hrs_ohm=1e5)
    with pytest.raises(ValidationError, match="adc_bits"):
        SenseAmpConfig(adc_bits=0)
    with pytest.raises(ValidationError, match="fitted only at"):
        AnalogConfig(device={"model": "aihwkit_reram_wan2022"}, t_inference_s=5.0)
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        AnalogConfig(sense_amp={"offset": 1})


def test_programming_many_sub_arrays_by_table_lookup_gives_each_sub_arrays_own_numbers():
    """``program_many`` (the fast engine's: one table of every (state, normal) result, then a gather)
    equals ``program_conductances`` (aihwkit's element-wise ``program_weights`` path, one sub-array at
    a time, under its own seed) device for device: with stuck-at faults, different sigmas per state,
    and RRAM drift after programming. 2 x 40,000 devices per sub-array reach the refined tail bins
    of the normal table (P(|z| > 4.17) ~ 3e-5 per device), where a wrong tail index would show."""
    from imcnoise.imc.physics.devices import program_conductances, program_many

    r = 0.4
    targets = [torch.cat([torch.ones(1, 40_000), torch.full((1, 40_000), r)], dim=1), torch.full((3, 7), r)]
    for device, t in ((SttMramDevice(sigma_r_p=0.05, sigma_r_ap=0.08, p_stuck_p=0.01, p_stuck_ap=0.02), 0.0),
                      (RramDevice(sigma_lrs=0.05, sigma_hrs=0.2, drift_nu=0.01, drift_t0_s=1.0), 3600.0)):
        nm = make_noise_model(device)
        got = program_many(nm, targets, [11, 12], t)
        for g, target, seed in zip(got, targets, [11, 12]):
            want = program_conductances(nm, target, seed, t)
            assert g.shape == want.shape and torch.equal(g, want)
        assert not torch.equal(got[0][0, :7], got[0][0, 7:14])  # the devices do vary
