"""Sensing schemes (imcnoise/imc/physics/schemes.py): exactness when ideal, the merged-line ratio
against an independent calculation, the bitwise latch against its margin formula, and the legacy chip."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import integrate, stats

from imcnoise.imc import AnalogChip, AnalogConfig, FastChipBatch, SttMramDevice, evaluate, evaluate_xnor, fold_model
from imcnoise.imc.engines import layouts

from helpers import REPO_ROOT, calibrated_model, fmnist, quiet_chip, record_layer


@pytest.mark.parametrize("scheme", ["current", "voltage", "bitwise"])
def test_every_scheme_and_sensing_size_is_exact_with_ideal_devices(scheme):
    """Ideal devices, no wire resistance, no offsets: any scheme with any cells_per_sensing counts
    exactly what the integer engine counts (also through the calibration: reference rows + trim)."""
    for kind in ("bsnn", "bnn"):
        prog = fold_model(calibrated_model(kind, negative_gamma=0.3))
        d = fmnist("test", 16)
        ref = evaluate_xnor(prog, d, keep_predictions=True)
        for cps in (9, 27, 64, None):
            cfg = quiet_chip(sense_amp={"scheme": scheme}, array={"cells_per_sensing": cps})
            res = evaluate(FastChipBatch(prog, cfg, [3]), d, keep_predictions=True, error_stats=True)[0]
            assert torch.equal(res.predictions, ref.predictions) and res.spike_rates == ref.spike_rates, (kind, cps)
            assert all(v["max_abs_err"] == 0 for v in res.errors.values())


def test_voltage_sensing_counts_are_the_ratio_of_the_line_conductances():
    """Merged source line, device spread 0.08, nominal calibration, no wire resistance: every sensed
    count is (V_SL - V_0) / V_lsb with V_SL = V sum_j G_read,j / sum_j (G_A,j + G_B,j) of the line's
    own cells and the nominal levels V_0 = V r / (1 + r), V_lsb = V (1 - r) / (n (1 + r)) -- computed
    here in float64 from the programmed conductances and the input bits (only float32 ties differ)."""
    prog = fold_model(calibrated_model("bnn", residual="none"))
    cfg = quiet_chip(SttMramDevice(sigma_r_p=0.08, sigma_r_ap=0.08), calibration={"mode": "nominal"},
                     array={"cells_per_sensing": None})
    chip = AnalogChip(prog, cfg, chip_seed=4)
    layer = prog.xnor_layers[0]
    seen = record_layer(chip, layer.index)
    chip.run(fmnist("test", 4).images, torch.arange(4))
    w = chip.state[layer.index].weights
    ga, gb = w.w_a[0].double(), w.w_b[0].double()  # the line's cells (one sensing of 72)
    n = layer.cols
    x = torch.nn.functional.unfold(layouts.nchw(seen["x"]).double(), 3, padding=1).transpose(1, 2)
    v_sl = (x @ ga.T + (1 - x) @ gb.T) / (ga + gb).sum(-1)  # / V
    r = chip.off_ratio
    v = (v_sl - r / (1 + r)) / ((1 - r) / (n * (1 + r)))
    expect = torch.round(v).clamp(0, n)
    got = seen["dot"].double()
    tie = ((v - v.floor()) - 0.5).abs() < 1e-3
    assert torch.equal(got[~tie], expect[~tie]) and float(tie.double().mean()) < 1e-2
    # and the spread makes the ratio err: against the XNOR count (on-state devices read) it is off
    ideal = x @ (ga.T > 0.75).double() + (1 - x) @ (gb.T > 0.75).double()
    assert float((expect - ideal).abs().mean()) > 0.1


def test_voltage_sensing_cancels_the_common_mode_of_a_lognormal_spread():
    """Devices drawn lognormal around nominal are brighter on average by exp(sigma^2 / 2): with
    nominal calibration, current sensing reads every line high by about
    (exp(sigma^2/2) - 1) sum(G_read) / (G_on - G_off) LSB (test_calibration.py), but the merged
    line's ratio V_SL = V sum G_read / sum G_tot scales both sums alike: its mean error stays below
    a fifth of current sensing's on the same chips (sigma 0.15, 72-cell lines)."""
    prog = fold_model(calibrated_model("bsnn", residual="none"))
    d = fmnist("test", 4)
    mean = {}
    for scheme in ("current", "voltage"):
        cfg = quiet_chip(SttMramDevice(sigma_r_p=0.15, sigma_r_ap=0.15), calibration={"mode": "nominal"},
                         sense_amp={"scheme": scheme}, array={"cells_per_sensing": None}, cell={"access_resistance_ohm": 0.0})
        res = evaluate(FastChipBatch(prog, cfg, list(range(20))), d, error_stats=True)
        mean[scheme] = float(np.mean([r.errors[2]["mean_err"] for r in res]))
    assert mean["current"] > 1.0
    assert abs(mean["voltage"]) < 0.2 * mean["current"]


def _latch_ber(r_p, r_ap, r_acc, sigma, s_frac):
    """Closed form / numerical integral of the latch-margin formula: a cell of device R = R0 e^{sigma z}
    in series with R_acc, compared with the midpoint G_m = (G1 + G0) / 2 of the nominal cells, with a
    Gaussian offset of s_frac (G1 - G0) (tests/ derivation: the BER of a single-cell read)."""
    g1, g0 = 1 / (r_p + r_acc), 1 / (r_ap + r_acc)
    gm, dg = (g1 + g0) / 2, g1 - g0
    if s_frac == 0:
        r_th = 1 / gm - r_acc
        return stats.norm.cdf(-math.log(r_th / r_p) / sigma), stats.norm.cdf(-math.log(r_ap / r_th) / sigma)
    g = lambda r0, z: 1 / (r0 * math.exp(sigma * z) + r_acc)
    p_on = integrate.quad(lambda z: stats.norm.pdf(z) * stats.norm.sf((g(r_p, z) - gm) / (s_frac * dg)), -9, 9)[0]
    p_off = integrate.quad(lambda z: stats.norm.pdf(z) * stats.norm.cdf((g(r_ap, z) - gm) / (s_frac * dg)), -9, 9)[0]
    return p_on, p_off


@pytest.mark.parametrize("sigma,offset_frac", [(0.2, 0.0), (0.3, 0.0), (0.2, 0.3)])
def test_bitwise_bit_error_rate_matches_the_latch_margin_formula(sigma, offset_frac):
    """Bitwise sensing, nominal reference level (the midpoint of nominal on / off cells), 1.5 kOhm
    access transistors: the fraction of on-state (P) device reads the latch calls "off", and of
    off-state (AP) reads it calls "on", over every cell of a chip, equal the formula
    Phi(-ln(R_th / R_P) / sigma) and Phi(-ln(R_AP / R_th) / sigma), R_th = 1 / G_m - R_acc
    (with a latch offset: integrated over it), within 5 binomial standard errors. Expected
    (helper derivation): sigma 0.2 -> 6.3 % / 2.6 %, sigma 0.3 -> 15.4 % / 9.8 %."""
    prog = fold_model(calibrated_model("bnn", residual="none"))
    bit_margin = 25e-3
    cfg = quiet_chip(SttMramDevice(sigma_r_p=sigma, sigma_r_ap=sigma, read_voltage_v=0.1),
                     sense_amp={"scheme": "bitwise", "offset_sigma_v": offset_frac * bit_margin, "bit_margin_v": bit_margin},
                     calibration={"mode": "nominal"}, cell={"access_resistance_ohm": 1.5e3})
    eng = FastChipBatch(prog, cfg, [0, 1])
    on_wrong = on_n = off_wrong = off_n = 0
    for l in prog.xnor_layers:
        bits = torch.from_numpy(l.bits).bool()
        m = eng.maps[l.index]
        w = eng.state[l.index].weights
        for s, (a, b) in enumerate(m.sensings):
            bs = bits[:, a:b]
            pa, pb = w.w_a[:, s, :, :b - a], w.w_b[:, s, :, :b - a]  # P(decide "match") reading A (x=1) / B (x=0)
            # reading A: its device is on (P) where the bit is 1; reading B: on where the bit is 0
            on_wrong += int((pa[:, bs] < 0.5).sum() + (pb[:, ~bs] < 0.5).sum())
            on_n += int(bs.sum() + (~bs).sum()) * 2
            off_wrong += int((pa[:, ~bs] > 0.5).sum() + (pb[:, bs] > 0.5).sum())
            off_n += int((~bs).sum() + bs.sum()) * 2
    p_on, p_off = _latch_ber(6e3, 12e3, 1.5e3, sigma, offset_frac)
    for wrong, n, p in ((on_wrong, on_n, p_on), (off_wrong, off_n, p_off)):
        assert abs(wrong / n - p) < 5 * math.sqrt(p * (1 - p) / n), (wrong / n, p)


def test_bitwise_popcount_with_decision_noise_has_the_summed_bernoulli_moments():
    """With latch decision noise each cell read is a Bernoulli(p_j) decision; a popcount over the
    sensing has mean sum p_j and variance sum p_j (1 - p_j): the engine draws it as one normal of
    that size, rounded. Over many reads of one line the mean error and the variance of the count
    match those sums (computed here from the latch probabilities) within 5 standard errors."""
    prog = fold_model(calibrated_model("bnn", residual="none"))
    cfg = quiet_chip(SttMramDevice(sigma_r_p=0.1, sigma_r_ap=0.1, read_voltage_v=0.1),
                     sense_amp={"scheme": "bitwise", "noise_sigma_v": 6e-3, "offset_sigma_v": 0.0},
                     calibration={"mode": "nominal"}, array={"cells_per_sensing": None})
    chip = FastChipBatch(prog, cfg, [2])
    layer = prog.xnor_layers[0]
    seen = record_layer(chip, layer.index)
    d = fmnist("test", 8)
    chip.run_chips(d.images, torch.arange(8))
    w = chip.state[layer.index].weights
    pa, pb = w.w_a[0, 0].double(), w.w_b[0, 0].double()  # [rows, 72]
    x = torch.nn.functional.unfold(layouts.nchw(seen["x"]).double(), 3, padding=1).transpose(1, 2)
    mean = x @ pa.T + (1 - x) @ pb.T
    var = x @ (pa * (1 - pa)).T + (1 - x) @ (pb * (1 - pb)).T
    got = seen["dot"].double()
    z = (got - mean)
    assert float(var.mean()) > 0.3  # enough noise to measure
    n = z.numel()
    assert abs(float(z.mean())) < 5 * math.sqrt(float(var.mean()) / n) + 0.01
    assert float(z.var()) == pytest.approx(float(var.mean()) + 1 / 12, rel=0.05)  # + rounding


@pytest.mark.slow
@pytest.mark.parametrize("scenario,results", [("legacy/stt_mram", "legacy_chip/stt_mram"),
                                              ("legacy/rram", "legacy_chip/rram"), ("stt_mram", "stt_mram")])
def test_shipped_results_are_reproduced_exactly(scenario, results):
    """Stored trials of results/<results>/trials.parquet re-run from scenarios/<scenario>.yaml come
    out identical -- accuracy, correct count, every spike rate, energy and latency -- at the noisiest
    point: the default chip's sweep, and the legacy chip's
    (scenarios/chips/legacy_2026_11.yaml, every table before 2026-12; results/legacy_chip/ holds the
    default sweeps of commit 5f1634d)."""
    from imcnoise.data import load_dataset
    from imcnoise.sweep import load_scenario, prepare
    from imcnoise.sweep.points import point_scenario
    from imcnoise.sweep.runner import chip_seed, trial_rows

    table = pd.read_parquet(REPO_ROOT / "results" / results / "trials.parquet")
    sc, base = load_scenario(REPO_ROOT / "scenarios" / f"{scenario}.yaml")
    prep = prepare(sc, base)
    for point, trial in ((int(table.point.max()), int(table.trial.max())),):  # the noisiest point, its last chip
        p = prep.points[point]
        psc = point_scenario(sc, p)
        data = load_dataset(psc.dataset.name, psc.dataset.split).subset(psc.dataset.limit)
        rows = trial_rows(prep, p, psc, [trial], data, "{}")
        stored = table[(table.point == point) & (table.trial == trial)].set_index("model")
        for r in rows:
            s = stored.loc[r["model"]]
            assert r["chip_seed"] == chip_seed(sc, trial) == s.chip_seed
            assert r["accuracy"] == s.accuracy and r["correct"] == s.correct
            assert r["energy_nj"] == s.energy_nj and r["latency_us"] == s.latency_us
            assert {f"rate.L{k}": v for k, v in json.loads(r["spike_rates"]).items()} == \
                {k: s[k] for k in s.index if k.startswith("rate.L")}
