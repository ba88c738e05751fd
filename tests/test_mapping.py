"""The gated mapping (chip.mapping: gated, imcnoise/imc/physics/schemes.py): only inputs at 1 conduct.

Exact with ideal devices for the B-SNN's spikes and the BNN's +-1 bits alike, the same bits in
both analog engines, device read noise that grows with the number of active inputs as the
differential pair's equation says, energy that follows the driven cells, and the voltage scheme
refused."""

from __future__ import annotations

import pytest
import torch

from imcnoise.imc import (AnalogChip, AnalogConfig, FastChipBatch, SttMramDevice, evaluate, evaluate_xnor, fold_model,
                          inference_energy)
from imcnoise.imc.config import cell_g_on_siemens, cell_off_ratio
from imcnoise.imc.engines import layouts

from helpers import calibrated_model, fmnist, quiet_chip, record_layer


@pytest.mark.parametrize("scheme", ["current", "bitwise"])
def test_gated_mapping_is_exact_with_ideal_devices(scheme):
    """popcount(XNOR(w, o)) = M1 + sum_j x_j (2 b_j - 1) for any 0/1 inputs: with ideal devices, no
    wire resistance and no offsets, the gated rows count exactly what the integer engine counts, for
    both networks, any sensing size, through reference rows + trim (the default calibration)."""
    for kind in ("bsnn", "bnn"):
        prog = fold_model(calibrated_model(kind, negative_gamma=0.3))
        d = fmnist("test", 16)
        ref = evaluate_xnor(prog, d, keep_predictions=True)
        for cps in (9, 64, None):
            cfg = quiet_chip(sense_amp={"scheme": scheme}, array={"cells_per_sensing": cps}, mapping="gated")
            res = evaluate(FastChipBatch(prog, cfg, [3]), d, keep_predictions=True, error_stats=True)[0]
            assert torch.equal(res.predictions, ref.predictions) and res.spike_rates == ref.spike_rates, (kind, cps)
            assert all(v["max_abs_err"] == 0 for v in res.errors.values())


@pytest.mark.parametrize("scheme,volts,cells", [("current", 0.08, 18), ("bitwise", 0.1, 63)])
def test_gated_fast_and_aihwkit_engines_agree_bit_for_bit(scheme, volts, cells):
    """Every non-ideality on (device spread and read noise, wire resistance, comparator offset and
    noise, trimmed reference calibration): the aihwkit tiles and the fast engine give the same
    predictions and the same per-layer errors on a gated chip."""
    prog = fold_model(calibrated_model("bsnn"))
    d = fmnist("test", 6)
    cfg = AnalogConfig(mapping="gated", sense_amp={"scheme": scheme, "noise_sigma_v": 1e-3}, array={"cells_per_sensing": cells},
                       device={"model": "stt_mram", "sigma_r_p": 0.1, "sigma_r_ap": 0.1, "read_sigma": 0.02,
                               "read_voltage_v": volts})
    a = evaluate(AnalogChip(prog, cfg, chip_seed=5), d, keep_predictions=True, error_stats=True)[0]
    b = evaluate(FastChipBatch(prog, cfg, [5]), d, keep_predictions=True, error_stats=True)[0]
    assert torch.equal(a.predictions, b.predictions) and a.errors == b.errors
    assert max(v["rms_err"] for v in a.errors.values()) > 0.5  # the effects are on


def _first_layer_reads(cfg, prog, images: int = 12, seed: int = 1):
    """Counts and input bits of the first binary layer of one chip: (counts [N*L, rows], inputs [N*L, cols])."""
    chip = FastChipBatch(prog, cfg, [seed])
    layer = prog.xnor_layers[0]
    seen = record_layer(chip, layer.index)
    d = fmnist("test", images)
    chip.run_chips(d.images, torch.arange(images))
    x = torch.nn.functional.unfold(layouts.nchw(seen["x"]).double(), 3, padding=1).transpose(1, 2)  # [N, L, cols]
    bits = torch.from_numpy(layer.bits).double()  # [rows, cols]
    ideal = x @ bits.T + (1 - x) @ (1 - bits).T  # the XNOR popcount, by definition
    return (seen["dot"].double() - ideal).reshape(-1, layer.rows), x.reshape(-1, layer.cols), chip.off_ratio


def test_gated_read_noise_grows_with_the_active_inputs():
    """Device read noise alone (each cell's conductance fluctuates by read_sigma per read), whole
    rows on one line, unclipped full-resolution conversion, nominal calibration. A gated read of A
    active inputs reads both devices of each, nominal 1 and r = G_off / G_on, so its error in
    counts (LSB = 1 - r) has variance

        sigma^2 A (1 + r^2) / (1 - r)^2 + 1/12   (the last term: rounding to whole counts),

    i.e. 0.149 A + 0.083 for sigma 0.15 and r = 7.5 / 13.5 (1.5 kOhm access transistors with the
    6 / 12 kOhm MTJ). Measured per quartile of A (reads with A >= 8, where the noise is >= 1 count
and rounding adds its 1/12), each within 12 % of that; an implementation that
    squared the pair's difference (G+ - G-)^2 would give sigma^2 A + 1/12, off by a factor 6.6.
    The xnor row on the same chip reads one device of every cell whatever A is: its error variance
    does not follow A (top quartile / bottom quartile < 1.3, gated: > 2)."""
    prog = fold_model(calibrated_model("bsnn", residual="none"))
    base = dict(device=SttMramDevice(sigma_r_p=0.0, sigma_r_ap=0.0, read_sigma=0.15),
                sense_amp={"scheme": "current", "clip": False}, calibration={"mode": "nominal"},
                array={"cells_per_sensing": None})
    err, x, r = _first_layer_reads(quiet_chip(mapping="gated", **base), prog)
    assert r == pytest.approx(7.5 / 13.5, abs=1e-3)
    active = x.sum(-1)
    keep = active >= 8  # sigma >= 1 count: rounding adds its 1/12 (Sheppard); below it, it does not
    err, active = err[keep], active[keep]
    edges = torch.quantile(active, torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=torch.float64))
    ratios, vars_ = [], []
    for q in range(4):
        sel = (active >= edges[q]) & (active <= edges[q + 1]) if q == 3 else (active >= edges[q]) & (active < edges[q + 1])
        if int(sel.sum()) < 50:
            continue
        expect = float((0.15 ** 2 * active[sel] * (1 + r * r) / (1 - r) ** 2).mean()) + 1 / 12
        got = float(err[sel].var())
        ratios.append(got / expect)
        vars_.append(got)
    assert len(ratios) >= 3 and all(abs(q - 1) < 0.12 for q in ratios), ratios
    assert vars_[-1] / vars_[0] > 2.0
    err_x, x_x, _ = _first_layer_reads(quiet_chip(**base), prog)
    a_x = x_x.sum(-1)
    lo, hi = err_x[a_x <= torch.quantile(a_x, 0.25)].var(), err_x[a_x >= torch.quantile(a_x, 0.75)].var()
    assert float(hi / lo) < 1.3


def test_gated_drivers_and_latches_follow_the_active_inputs():
    """Energy: an xnor row drives one line of every input (its bit or the complement), a gated row
    only the inputs at 1. So per binary layer the gated chip's driver energy is the xnor chip's
    times the layer's input density (fraction of 1s over its reads' receptive fields, counted here
    with unfold from the recorded inputs), and its array energy with ideal devices is
    V^2 G_on t_read (1 + r) x (driven cells): both devices of each driven cell at nominal
    conductance."""
    prog = fold_model(calibrated_model("bsnn", residual="none"))
    d = fmnist("test", 8)
    reps, acts = {}, {}
    for mapping in ("xnor", "gated"):
        cfg = quiet_chip(mapping=mapping, sense_amp={"scheme": "current"})
        chip = FastChipBatch(prog, cfg, [0])
        layer = prog.xnor_layers[0]
        seen = {}
        orig = chip.mac

        def hook(lay, slots, p, orig=orig, seen=seen):
            if lay.index == layer.index:
                seen.setdefault("x", []).append(slots[0][:, 0])
            return orig(lay, slots, p)

        chip.mac = hook
        res = evaluate(chip, d, activity=True, batch_size=8)[0]
        reps[mapping] = inference_energy(prog, cfg, res.activity, res.spike_rates)
        acts[mapping] = res.activity
        xs = torch.cat(seen["x"])
    x = torch.nn.functional.unfold(layouts.nchw(xs).double(), 3, padding=1)  # [N, cols, L]
    density = float(x.mean())
    name = f"L{layer.index}"
    e_x, e_g = reps["xnor"].joules[name], reps["gated"].joules[name]
    assert e_g["drivers"] == pytest.approx(e_x["drivers"] * density, rel=1e-9)
    assert 0.01 < density < 0.9
    driven_cells = float(x.sum()) / len(d.images) * layer.rows  # per inference
    r = cell_off_ratio(cfg)
    per_unit = cfg.device.read_voltage_v ** 2 * cell_g_on_siemens(cfg) * cfg.sense_amp.read_time_s
    assert e_g["array"] == pytest.approx(per_unit * (1 + r) * driven_cells, rel=1e-3)


def test_gated_voltage_sensing_is_refused():
    """The merged-line ratio of a gated row's two lines depends on its stored weights: refused,
    naming the field and what to use instead."""
    with pytest.raises(ValueError) as e:
        AnalogConfig(mapping="gated", sense_amp={"scheme": "voltage"})
    assert "mapping: gated" in str(e.value) and "current or bitwise" in str(e.value)
    with pytest.raises(ValueError) as e:
        AnalogConfig(mapping="and")
    assert "mapping" in str(e.value)


def test_the_default_chip_file_is_the_default_chip():
    """scenarios/chips/stt_mram_spread_0.05.yaml says it lists the default chip's fields: it must
    equal AnalogConfig() (whose spread default is the measured 0.05), field for field."""
    from helpers import REPO_ROOT
    from imcnoise.imc.config import read_chip_section

    from imcnoise.imc.physics.sense import offset_sigma_v

    doc = read_chip_section(REPO_ROOT / "scenarios" / "chips" / "stt_mram_spread_0.05.yaml")
    default = AnalogConfig()
    # the default's offset is null (= the cited default, resolved where it is used); the file names its value
    resolved = default.model_copy(update={"sense_amp": default.sense_amp.model_copy(
        update={"offset_sigma_v": offset_sigma_v(default)})})
    assert AnalogConfig(**doc) == resolved


def test_a_sweep_case_is_validated_as_a_whole():
    """A case whose settings only make sense together (gated mapping + current sensing: each alone
    on the default voltage-sensing chip is refused or different) validates; gated + voltage is
    refused with the case's index and name."""
    from imcnoise.sweep.scenario import ScenarioError, validate_scenario

    base = {"name": "t", "models": {"bsnn": "shipped:fmnist-bsnn", "bnn": "shipped:fmnist-bnn"},
            "chip": {"device": {"model": "stt_mram", "read_voltage_v": 0.08}, "array": {"cells_per_sensing": 18}}}
    ok = {**base, "sweep": {"cases": [{"name": "gc", "set": {"chip.mapping": "gated", "chip.sense_amp.scheme": "current"}}]}}
    assert validate_scenario(ok).sweep.cases[0].name == "gc"
    bad = {**base, "sweep": {"cases": [{"name": "gc", "set": {"chip.sense_amp.scheme": "current"}},
                                       {"name": "gv", "set": {"chip.mapping": "gated", "chip.sense_amp.adc_bits": 5}}]}}
    with pytest.raises(ScenarioError) as e:
        validate_scenario(bad)
    assert "sweep.cases[1] (gv)" in str(e.value) and "mapping: gated" in str(e.value)
    assert "cases[0]" not in str(e.value)


def test_results_stored_before_the_mapping_field_keep_their_scenario_hash(tmp_path):
    """chip.mapping was added after results/stt_mram was computed; at its default (xnor, what every
    earlier result had) it is left out of the scenario hash, so the shipped table is still this
    scenario's (a resumed or re-reported sweep finds it). Setting it to gated changes the hash."""
    import pandas as pd

    from helpers import REPO_ROOT
    from imcnoise.sweep import load_scenario
    from imcnoise.sweep.runner import prepare

    stored = set(pd.read_parquet(REPO_ROOT / "results" / "stt_mram" / "trials.parquet").scenario_hash)
    sc, base = load_scenario(REPO_ROOT / "scenarios" / "stt_mram.yaml")
    assert stored == {prepare(sc, base, tmp_path / "a").digest}
    doc = sc.model_dump(mode="json")
    doc["chip"]["mapping"] = "gated"
    doc["chip"]["sense_amp"]["scheme"] = "bitwise"
    doc["chip"]["device"]["read_voltage_v"] = 0.1
    gated = type(sc).model_validate(doc)
    doc["chip"]["mapping"] = "xnor"
    xnor = type(sc).model_validate(doc)
    assert prepare(gated, base, tmp_path / "b").digest != prepare(xnor, base, tmp_path / "c").digest
