"""Energy and latency model (imcnoise/imc/physics/energy.py) against numbers worked out by hand.

The tiny test network (width 0.125, T = 4 for the B-SNN): 28x28 Fashion-MNIST images padded to
32x32, first layer 1 -> 8 channels (digital), binary layer 2: conv 8 -> 16 channels on 16x16
(M = 72 cells per row, one slot), ..., fc layers of 512, output layer 512 -> 10 classes (digital).
"""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from imcnoise.cli.main import app
from imcnoise.imc import AnalogChip, FastChipBatch, SttMramDevice, evaluate, fold_model
from imcnoise.imc.physics.energy import inference_energy, poisson_rate
from imcnoise.models.checkpoint import save_checkpoint

from helpers import calibrated_model, fmnist, quiet_chip

G_ON = 1 / 6e3  # bare MTJ (no access transistor) in these configurations
R = 0.5  # G_off / G_on at TMR 100 %


def _cfg(scheme="current", **kw):
    kw.setdefault("cell", {"access_resistance_ohm": 0.0})
    kw.setdefault("array", {"cells_per_sensing": None})
    sa = {"scheme": scheme, "read_time_s": 1e-8, **kw.pop("sense_amp", {})}
    return quiet_chip(SttMramDevice(sigma_r_p=0, sigma_r_ap=0, read_voltage_v=0.2), sense_amp=sa, **kw)


def _run(kind, cfg, n=16):
    prog = fold_model(calibrated_model(kind, residual="paper", timesteps=4))
    d = fmnist("test", n)
    eng = FastChipBatch(prog, cfg, [2])
    ideal = {}
    orig = eng.mac

    def hook(layer, slots, p):  # the exact counts of every read (ideal devices: what the chip senses)
        out = orig(layer, slots, p)
        ideal.setdefault(layer.index, []).append(out[:, 0].double())
        return out

    eng.mac = hook
    res = evaluate(eng, d, activity=True, error_stats=True)[0]
    return prog, d, res, {k: torch.cat(v) for k, v in ideal.items()}


def test_current_sensing_components_match_hand_calculations():
    """Layer 2 (72 cells, 16 rows, 256 positions, T = 4), per inference, with V = 0.2 V, G_on =
    1/6 kOhm, t = 10 ns and the ideal counts d of every read:
    array = V^2 G_on t sum over reads of (72 r + d (1 - r));
    drivers = T L 72 lines x 16 cells crossed x 0.1 fF x V^2 = 4 x 256 x 72 x 16 x 0.1e-15 x 0.04 = 4.72e-12 J;
    ADC = T L 16 conversions x FoM 2^7 (full resolution: ceil(log2(73)) = 7 bits) = 16384 x 10.2e-15 x 128 = 21.4 nJ;
    neurons = 0.05 pJ x (3 per row and step + 1 per spike); the buffer only on residual layers;
    latency (every row read at once, conversions not timed here: test_adc_sharing_...) = T x sum over
    layers of positions x slots x 10 ns + the digital layers (T x 32 x 32 x 8 x 9 / 256 ns + T x 512 x 10 / 256 ns)."""
    cfg = _cfg("current", array={"cells_per_sensing": None, "rows_per_read": None}, sense_amp={"adc_bit_time_s": 0.0})
    prog, d, res, ideal = _run("bsnn", cfg)
    rep = inference_energy(prog, cfg, res.activity, res.spike_rates, poisson_rate(d.images, prog.image_size))
    T, n_img, v, t = 4, len(d), 0.2, 1e-8
    layer = prog.xnor_layers[0]
    assert (layer.cols, layer.rows, layer.positions) == (72, 16, 256)
    dots = ideal[2]  # [T*B, rows, L]-ish: every read of layer 2
    assert dots.numel() == T * 256 * 16 * n_img
    units = float((72 * R + dots * (1 - R)).sum()) / n_img
    assert rep.joules["L2"]["array"] == pytest.approx(v * v * G_ON * t * units, rel=1e-9)
    assert rep.joules["L2"]["drivers"] == pytest.approx(4.718592e-12, rel=1e-6)
    assert rep.joules["L2"]["adc"] == pytest.approx(4 * 256 * 16 * 10.2e-15 * 128, rel=1e-12)
    spikes = res.spike_rates[2] * T * 256 * 16
    assert rep.joules["L2"]["neurons"] == pytest.approx(0.05e-12 * (3 * T * 256 * 16 + spikes), rel=1e-9)
    assert rep.joules["L2"]["buffer"] == 0
    analog = T * sum(l.positions * l.n_slots for l in prog.xnor_layers) * t
    digital = T * 32 * 32 * 8 * 9 / 256e9 + T * 512 * 10 / 256e9
    assert rep.latency_s == pytest.approx(analog + digital, rel=1e-12)
    assert rep.total_j == pytest.approx(sum(rep.by_component().values()))
    assert rep.array_ops == pytest.approx(sum(2 * T * l.positions * l.n_slots * l.rows * l.cols for l in prog.xnor_layers))


def test_first_layer_poisson_and_output_layer_by_hand():
    """B-SNN first layer: each input spike adds its 8 x 9 fan-out (fp32 add, 0.9 pJ), each output
    and step costs batch norm and the neuron (3.7 + 3 x 0.9 pJ): with the measured input rate rho
    (mean pixel / 255 x 28^2/32^2, computed here from the images) that is
    4 rho 1024 x 72 x 0.9 pJ + 4 x 1024 x 8 x 6.4 pJ; Poisson: 4 x 1024 pixels x 0.1 pJ = 0.41 nJ.
    BNN first layer: 1024 x 8 x 9 multiply-adds (4.6 pJ each) + 1024 x 8 x (3.7 + 1.8) pJ.
    Output layer (512 -> 10): B-SNN one add per spike, class and step plus the membrane per class
    and step, 4 x rate x 5120 x 0.9 pJ + 40 x 0.9 pJ; BNN 5120 adds."""
    cfg = _cfg("current")
    prog, d, res, _ = _run("bsnn", cfg)
    rho = float(d.images.double().mean()) / 255 * (28 * 28) / (32 * 32)
    rep = inference_energy(prog, cfg, res.activity, res.spike_rates, poisson_rate(d.images, prog.image_size))
    assert rep.joules["L1"]["first_layer"] == pytest.approx(4 * rho * 1024 * 72 * 0.9e-12 + 4 * 1024 * 8 * 6.4e-12, rel=1e-9)
    assert rep.joules["input"]["poisson"] == pytest.approx(4 * 1024 * 0.1e-12, rel=1e-12)
    last = prog.xnor_layers[-1].index
    assert rep.joules[f"L{prog.output.index}"]["output_layer"] == pytest.approx(
        4 * res.spike_rates[last] * 5120 * 0.9e-12 + 40 * 0.9e-12, rel=1e-9)
    prog, d, res, _ = _run("bnn", cfg)
    rep = inference_energy(prog, cfg, res.activity, res.spike_rates)
    assert rep.joules["L1"]["first_layer"] == pytest.approx(1024 * 72 * 4.6e-12 + 1024 * 8 * 5.5e-12, rel=1e-9)
    assert rep.joules[f"L{prog.output.index}"]["output_layer"] == pytest.approx(5120 * 0.9e-12, rel=1e-12)
    # BNN neurons: compare only (+ bias), 2 ops per row, no spikes
    assert rep.joules["L2"]["neurons"] == pytest.approx(0.05e-12 * 2 * 256 * 16, rel=1e-12)


def test_voltage_sensing_array_energy_is_the_current_through_the_floating_line():
    """Merged source line of n = 72 nominal cells with d matches: the read devices carry
    G_read (V - V_SL) from the driven lines into the line and the others carry it out, so a read
    draws V^2 G_on N (1 - N / S) with N = 72 r + d (1 - r), S = 72 (1 + r) (units of G_on). Summed
    by hand over the ideal counts of every read (the engine counts N in steps of 1/8: within 1e-3)."""
    cfg = _cfg("voltage")
    prog, d, res, ideal = _run("bsnn", cfg)
    rep = inference_energy(prog, cfg, res.activity, res.spike_rates)
    n = 72
    N = n * R + ideal[2] * (1 - R)
    units = float((N * (1 - N / (n * (1 + R)))).sum()) / len(d)
    assert rep.joules["L2"]["array"] == pytest.approx(0.04 * G_ON * 1e-8 * units, rel=1e-3)
    # below the current-sensing array energy of the same reads: the line floats at V_SL, not at 0 V
    cur = inference_energy(prog, _cfg("current"), _run("bsnn", _cfg("current"))[2].activity, res.spike_rates)
    assert rep.joules["L2"]["array"] < cur.joules["L2"]["array"]


def test_adc_sharing_and_row_reads_set_the_latency():
    """Layer 2 on 32-cell sensings (3 channels: 27, 27, 18 cells), 4 rows per read, 8 lines per
    6-bit SAR ADC at 1 ns per cycle: a sub-array takes ceil(16 / 4) = 4 reads per input vector, each
    driving its lines 10 ns and converting 4 rows x 3 sensings = 12 lines on 2 converters, 8 after
    another at (6 + 1) ns: 4 x (10 + 56) ns = 264 ns per vector, T x 256 vectors."""
    cfg = _cfg("current", array={"cells_per_sensing": 32, "rows_per_read": 4},
               sense_amp={"adc_bits": 6, "adc_share": 8, "adc_bit_time_s": 1e-9})
    prog, d, res, _ = _run("bnn", cfg, n=4)
    rep = inference_energy(prog, cfg, res.activity, res.spike_rates)
    rep0 = inference_energy(prog, _cfg("current", array={"cells_per_sensing": 32}), res.activity, res.spike_rates)
    # the difference to the all-rows-at-once, free-conversion chip is layer 2's (and others') extra time
    from imcnoise.imc.physics.energy import vector_time_s
    from imcnoise.imc import map_layer

    layer = prog.xnor_layers[0]
    m = map_layer(layer, cfg.array)
    assert [m.sensing_cells(s) for s in range(m.n_sensings)] == [27, 27, 18]
    assert vector_time_s(cfg, m, layer.rows, layer.n_slots) == pytest.approx(4 * (10e-9 + 8 * 7e-9), rel=1e-12)
    assert rep.latency_s > rep0.latency_s
    # ADC energy: one 6-bit conversion per line and vector: 256 vectors x 16 rows x 3 sensings x 10.2 fJ x 64
    assert rep.joules["L2"]["adc"] == pytest.approx(256 * 16 * 3 * 10.2e-15 * 64, rel=1e-12)


def test_bitwise_sensing_costs_a_latch_per_cell_and_a_popcount():
    """One latch decision (10 fJ) per cell read and n / 8 8-bit adds (0.03 pJ) of popcount: layer 2,
    BNN (T = 1): 256 vectors x 16 rows x 72 cells x (10 fJ + 0.03 pJ / 8); no ADC, no buffer."""
    cfg = _cfg("bitwise", array={"rows_per_read": 1})
    prog, d, res, _ = _run("bnn", cfg, n=4)
    rep = inference_energy(prog, cfg, res.activity, res.spike_rates)
    assert rep.joules["L2"]["adc"] == pytest.approx(256 * 16 * 72 * (10e-15 + 0.03e-12 / 8), rel=1e-12)
    assert all(rep.joules[f"L{l.index}"]["buffer"] == 0 for l in prog.xnor_layers)


def test_sparse_spikes_do_not_save_array_energy_and_both_engines_agree():
    """A non-spike drives the complement line: array energy does not scale with the spike rate.
    Here: the B-SNN's array energy per time step is that of a read of every row regardless."""
    cfg = quiet_chip(SttMramDevice(sigma_r_p=0.03, sigma_r_ap=0.03), sense_amp={"scheme": "current"},
                     cell={"access_resistance_ohm": 0.0})
    prog, d, res, _ = _run("bsnn", cfg, n=8)
    layer = prog.xnor_layers[0]
    n = layer.cols
    per_read = res.activity[layer.index].array_units / (prog.timesteps * layer.positions * layer.rows)
    assert n * R * 0.95 < per_read < n * 1.05  # between all-off and all-on devices: ~n devices read every time
    chip = evaluate(AnalogChip(prog, cfg, 2), d, activity=True)[0]
    for l in prog.xnor_layers:
        assert chip.activity[l.index] == res.activity[l.index]


def test_energy_command_prints_a_breakdown(tmp_path):
    model = calibrated_model("bnn")
    ckpt = save_checkpoint(tmp_path / "m.pt", model, training={}, metrics={}, data={"dataset": "fashion-mnist"})
    r = CliRunner().invoke(app, ["energy", str(ckpt), "--images", "8"])
    assert r.exit_code == 0, r.output
    assert "| **total** |" in r.output and "TOPS/W" in r.output and "latency" in r.output
    r = CliRunner().invoke(app, ["energy", str(ckpt), "--images", "0"])
    assert r.exit_code == 2 and "--images=0" in r.output
