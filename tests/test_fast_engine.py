"""Fast Monte Carlo engine: same draws and bit-identical results as the aihwkit path."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from imcnoise.cli.main import app
from imcnoise.imc import (AihwkitPcmDevice, AnalogChip, AnalogConfig, FastChipBatch, ResidualBufferConfig, RramDevice,
                          SenseAmpConfig, SttMramDevice, auto_k, evaluate, fold_model)
from imcnoise.sweep.scenario import SHIPPED_DIR

from helpers import REPO_ROOT, calibrated_model, fmnist

CONFIGS = {
    "ideal": AnalogConfig.ideal(),
    "default": AnalogConfig(),  # the buildable default: voltage sensing, IR drop, trim through the noisy path, 6-bit ADCs
    "voltage-all-effects": AnalogConfig(
        device=SttMramDevice(sigma_r_p=0.05, sigma_r_ap=0.07, p_stuck_p=0.01, p_stuck_ap=0.01, read_sigma=0.02),
        sense_amp=SenseAmpConfig(offset_sigma_lsb=0.8, noise_sigma_lsb=0.3, adc_bits=6),
        buffer=ResidualBufferConfig(gain_sigma=0.02, capacitance_f=2e-15, hold_time_s=1e-7, leak_resistance_ohm=1e9)),
    "current-trim": AnalogConfig(device=SttMramDevice(read_voltage_v=0.08, read_sigma=0.01),
                                 sense_amp=SenseAmpConfig(scheme="current", adc_bits=5, noise_sigma_v=0.2e-3),
                                 array={"cells_per_sensing": 18, "rows_per_read": 4}, calibration={"mode": "trim", "reads": 4}),
    "bitwise-noisy": AnalogConfig(device=SttMramDevice(sigma_r_p=0.25, sigma_r_ap=0.25, read_voltage_v=0.1, read_sigma=0.02),
                                  sense_amp=SenseAmpConfig(scheme="bitwise", noise_sigma_v=2e-3), array={"rows_per_read": 2}),
    "rram-drift": AnalogConfig(device=RramDevice(relaxation_sigma=0.02), sense_amp=SenseAmpConfig(offset_sigma_v=0.01),
                               t_inference_s=3600.0),
    "aihwkit-pcm": AnalogConfig(device=AihwkitPcmDevice(), t_inference_s=100.0),
    # a device without drift read an hour after programming: both engines apply the one drift rule
    "stt-after-an-hour": AnalogConfig(device=SttMramDevice(sigma_r_p=0.05, sigma_r_ap=0.05), t_inference_s=3600.0),
    "small-arrays": AnalogConfig(device=SttMramDevice(sigma_r_p=0.04), array={"rows": 24, "cols": 40}),
}


@pytest.mark.parametrize("kind", ["bsnn", "bnn"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_fast_engine_is_bit_identical_to_aihwkit_path(kind, name):
    cfg = CONFIGS[name]
    prog = fold_model(calibrated_model(kind, negative_gamma=0.3))
    d = fmnist("test", 16)
    seeds = [5, 6]
    fast = evaluate(FastChipBatch(prog, cfg, seeds), d, batch_size=12, keep_predictions=True, error_stats=True,
                    activity=True)
    for s, f in zip(seeds, fast):
        chip = AnalogChip(prog, cfg, s)
        a = evaluate(chip, d, batch_size=8, keep_predictions=True, error_stats=True, activity=True)[0]
        assert torch.equal(a.predictions, f.predictions)
        assert a.spike_rates == f.spike_rates
        # each chip its own error table (not one pooled over the pass); sums in another batching order
        assert a.errors.keys() == f.errors.keys()
        for l in a.errors:
            assert a.errors[l] == pytest.approx(f.errors[l], rel=1e-12)
        assert a.activity == f.activity  # integer sums: exactly the same energy inputs
    if name != "ideal":
        assert fast[0].errors != fast[1].errors
    # the same line weights: the fast engine's per-chip weights are the aihwkit tiles' forward weights
    fb = FastChipBatch(prog, cfg, seeds[:1])
    chip = AnalogChip(prog, cfg, seeds[0])
    for layer in prog.xnor_layers[1:3]:
        assert torch.equal(fb.state[layer.index].weights.w_a[0], chip.state[layer.index].weights.w_a)
        tiles = chip._tile_layout(chip.state[layer.index].weights.w_a, chip.state[layer.index].weights.w_b, chip.maps[layer.index])
        assert torch.equal(chip.conductances(layer.index, 0), tiles[0])


def test_results_do_not_depend_on_chips_per_pass_or_batch_size():
    prog = fold_model(calibrated_model("bsnn"))
    cfg = CONFIGS["voltage-all-effects"]
    d = fmnist("test", 20)
    together = evaluate(FastChipBatch(prog, cfg, [1, 2, 3]), d, batch_size=20, keep_predictions=True)
    for i, s in enumerate([1, 2, 3]):
        alone = evaluate(FastChipBatch(prog, cfg, [s]), d, batch_size=7, keep_predictions=True)[0]
        assert torch.equal(alone.predictions, together[i].predictions)
        assert alone.spike_rates == together[i].spike_rates


@pytest.mark.parametrize("kind", ["bsnn", "bnn"])
def test_grouped_gpu_code_path_gives_the_same_results(kind):
    """The GPU path (all chips in one grouped convolution) run on the CPU equals the per-chip path."""
    prog = fold_model(calibrated_model(kind))
    cfg = CONFIGS["voltage-all-effects"]
    d = fmnist("test", 12)
    per_chip = evaluate(FastChipBatch(prog, cfg, [1, 2, 3]), d, batch_size=12, keep_predictions=True)
    fb = FastChipBatch(prog, cfg, [1, 2, 3], grouped=True)
    grouped = evaluate(fb, d, batch_size=12, keep_predictions=True)
    for a, b in zip(per_chip, grouped):
        assert torch.equal(a.predictions, b.predictions) and a.spike_rates == b.spike_rates


def test_auto_k_fits_the_chips_into_a_quarter_of_the_free_gpu_memory(monkeypatch):
    """On CUDA, K is what fits in 25 % of the free memory, from the largest layer's bytes per chip
    (with the sensings of the mapping); on the CPU chips run one by one: the cap."""
    from imcnoise.imc import ArrayConfig, map_layer
    from imcnoise.imc.engines.fast import chip_bytes_per_sample

    prog = fold_model(calibrated_model("bsnn", width=0.5))  # 0.5: layers with more channels than one tile holds
    arr = ArrayConfig()
    per_chip = max(chip_bytes_per_sample(l, map_layer(l, arr)) for l in prog.xnor_layers) * prog.timesteps * 100
    assert any(map_layer(l, arr).n_sensings > -(-l.cols // 64) for l in prog.xnor_layers)  # 63-cell sensings counted
    for free, want in ((per_chip * 40, 10), (per_chip * 3, 1), (per_chip * 10 ** 6, 64)):
        monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None, free=free: (free, 2 * free))
        assert auto_k(prog, 100, torch.device("cuda"), arr) == want
    assert auto_k(prog, 100, torch.device("cpu")) == 64


@pytest.mark.slow
def test_shipped_scenario_fast_equals_aihwkit_for_all_trials(tmp_path):
    """All points of the default scenario, its first two chips, both models (on its first 16 images)."""
    if not (SHIPPED_DIR / "fmnist-bsnn" / "model.pt").is_file():
        pytest.fail("shipped Fashion-MNIST checkpoints missing")
    frames = {}
    for engine in ("fast", "aihwkit"):
        out = tmp_path / engine
        r = CliRunner().invoke(app, ["sweep", str(REPO_ROOT / "scenarios" / "stt_mram.yaml"), "--engine", engine,
                                     "--limit", "16", "--trials", "2", "--out", str(out), "--no-progress"])
        assert r.exit_code == 0, r.output
        frames[engine] = pd.read_parquet(out / "trials.parquet").drop(columns=["wall_s", "finished_at", "engine", "versions"])
    assert len(frames["fast"]) == len(frames["aihwkit"]) > 0
    pd.testing.assert_frame_equal(frames["fast"], frames["aihwkit"])


def test_int8_digits_recombine_to_the_weights():
    """w = 128 hi + lo with lo in [0, 127], by hand: 300 = 128*2 + 44; -1 = 128*(-1) + 127;
    -300 = 128*(-3) + 84; 16383 = 128*127 + 127; |w| <= 127 stays one digit; |w| >= 2**14 does not fit."""
    from imcnoise.imc.engines.kernels import split_digits

    hi, lo = split_digits(torch.tensor([300, -1, -300, 16383, 0]))
    assert hi.tolist() == [2, -1, -3, 127, 0] and lo.tolist() == [44, 127, 84, 127, 0]
    assert hi.dtype == lo.dtype == torch.int8
    assert [d.tolist() for d in split_digits(torch.tensor([-127, 127, 5]))] == [[-127, 127, 5]]
    assert split_digits(torch.tensor([1 << 14])) is None


def test_the_measured_mac_choice_keeps_the_faster_path_and_honours_the_override(monkeypatch):
    """kernels.choose: under IMCNOISE_MAC=auto it times both callables and keeps the faster -- an
    int8 side that sleeps 20 ms per call loses to an instant fp32 side, and the other way round --
    returns the result it measured, and reuses the choice for the same key without calling again;
    IMCNOISE_MAC=fp32 / int8 decide without calling either; two exact paths that disagree raise."""
    import time

    from imcnoise.imc.engines import kernels

    if not kernels.int8_available():
        pytest.skip("no oneDNN int8 kernels in this torch build")
    monkeypatch.setattr(kernels, "CHOICES", {})
    y = torch.arange(6.0)

    def slow():
        time.sleep(0.02)
        return y.clone()

    def fast():
        return y.clone()

    def never():
        raise AssertionError("called although the choice was made")

    monkeypatch.setenv("IMCNOISE_MAC", "auto")
    name, out = kernels.choose(("a",), slow, fast)
    assert name == "fp32" and torch.equal(out, y)
    assert kernels.choose(("b",), fast, slow)[0] == "int8"
    assert kernels.choose(("a",), never, never) == ("fp32", None)  # cached per key
    assert kernels.CHOICES == {("a",): "fp32", ("b",): "int8"}
    with pytest.raises(AssertionError, match="differ"):
        kernels.choose(("c",), fast, lambda: y + 1)
    for forced in ("fp32", "int8"):
        monkeypatch.setenv("IMCNOISE_MAC", forced)
        assert kernels.choose(("d",), never, never) == (forced, None)
    monkeypatch.setenv("IMCNOISE_MAC", "bf17")
    with pytest.raises(ValueError, match="IMCNOISE_MAC"):
        kernels.choose(("e",), never, never)


def test_the_fast_engine_measures_its_mac_path_under_auto(monkeypatch):
    """Under IMCNOISE_MAC=auto the fast engine times its per-chip int8 convolution (packing
    included) against fp32 for every conv shape it meets, and the signals are those of fp32."""
    from imcnoise.imc.engines import kernels

    if not kernels.int8_available():
        pytest.skip("no oneDNN int8 kernels in this torch build")
    prog = fold_model(calibrated_model("bsnn", negative_gamma=0.3))
    layer = next(l for l in prog.xnor_layers if l.kind == "conv")
    g = torch.Generator().manual_seed(2)
    bits = (torch.rand(3, 1, layer.in_size, layer.in_size, layer.in_features, generator=g) < 0.3).float()
    signals = {}
    for mode in ("fp32", "auto"):
        monkeypatch.setenv("IMCNOISE_MAC", mode)
        monkeypatch.setattr(kernels, "CHOICES", {})
        fb = FastChipBatch(prog, CONFIGS["default"], [5, 6])
        signals[mode] = [fb.read_signals(layer, bits, chips) for chips in fb.chip_groups()]
        assert any(k[0] == "fast-conv" for k in kernels.CHOICES) == (mode == "auto")
    for a, b in zip(signals["fp32"], signals["auto"], strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("cfg_name", ["default", "voltage-all-effects"])
def test_int8_and_fp32_array_macs_give_the_same_counts(monkeypatch, cfg_name):
    """The fast engine's array MACs on the int8 units (oneDNN int8 convolution, int32 sums, weights
    as int8 digits of their 2**-12 grid integers) and in fp32: every read's signal identical, on the
    same chips and inputs; and the int8 path really ran (IMCNOISE_MAC=int8 forces it)."""
    from imcnoise.imc.engines import kernels

    if not kernels.int8_available():
        pytest.skip("no oneDNN int8 kernels in this torch build")
    prog = fold_model(calibrated_model("bnn", negative_gamma=0.3))
    g = torch.Generator().manual_seed(1)
    signals = {}
    for mode in ("fp32", "int8"):
        monkeypatch.setenv("IMCNOISE_MAC", mode)
        fb = FastChipBatch(prog, CONFIGS[cfg_name], [3, 4])
        out, ran = [], 0
        for layer in prog.xnor_layers:
            if layer.kind != "conv":
                continue
            g.manual_seed(layer.index)
            bits = (torch.rand(3, 1, layer.in_size, layer.in_size, layer.in_features, generator=g) < 0.3).float()
            for chips in fb.chip_groups():
                out.append(fb.read_signals(layer, bits, chips))
            ran += sum(c.get("int8") is not None for c in fb.kernels[layer.index][0].cache)
        signals[mode] = out
        assert (ran > 0) == (mode == "int8")
    assert len(signals["fp32"]) > 0
    for a, b in zip(signals["fp32"], signals["int8"]):
        assert torch.equal(a, b)


@pytest.mark.parametrize("kind", ["bsnn", "bnn"])
def test_sensing_in_chunks_of_samples_changes_no_bit(kind, monkeypatch):
    """The sense path runs over chunks of a layer's samples (engines/analog.py, READS_PER_CHUNK):
    with chunks of a few hundred reads (many chunks per layer, a ragged last one) and without any,
    every chip's predictions, firing rates, sensed-count errors and array activity are identical --
    so the noise of a read is keyed by the read, not by the chunk it was sensed in."""
    from imcnoise.imc.engines import analog

    cfg = CONFIGS["voltage-all-effects"]
    prog = fold_model(calibrated_model(kind, negative_gamma=0.3))
    d = fmnist("test", 10)
    runs = {}
    for chunk in ("0", "700"):
        monkeypatch.setenv("IMCNOISE_READS_CHUNK", chunk)
        per_layer = max(analog.samples_per_chunk(l.positions * 2 * l.rows) for l in prog.xnor_layers)
        assert (chunk == "0") == (per_layer > 10 * prog.timesteps)  # "700": every layer is cut into chunks
        runs[chunk] = evaluate(FastChipBatch(prog, cfg, [5, 6]), d, keep_predictions=True, error_stats=True, activity=True)
    for a, b in zip(runs["0"], runs["700"]):
        assert torch.equal(a.predictions, b.predictions) and a.spike_rates == b.spike_rates
        assert a.errors == b.errors and a.activity == b.activity
    assert not torch.equal(runs["0"][0].predictions, runs["0"][1].predictions) or runs["0"][0].errors != runs["0"][1].errors


def test_a_new_drifting_device_drifts_on_both_engines(monkeypatch):
    """A device model that only overrides ``drift`` (here: every conductance loses 10 % by the time of
    inference) drifts the same on the fast engine as on aihwkit's tiles -- one drift rule, no list of
    the models that drift -- and the drift changes what the chip computes."""
    from imcnoise.imc.engines import analog
    from imcnoise.imc.physics.devices import SttMramNoiseModel

    class Fading(SttMramNoiseModel):
        def drift(self, g_prog, t_inference, relaxation):
            return g_prog * 0.9

    monkeypatch.setattr(analog, "make_noise_model", lambda device: Fading(device))
    cfg = AnalogConfig(device=SttMramDevice(sigma_r_p=0.03, sigma_r_ap=0.03), sense_amp=SenseAmpConfig(offset_sigma_lsb=0.0),
                       calibration={"mode": "nominal"}, t_inference_s=60.0)
    prog = fold_model(calibrated_model("bnn", negative_gamma=0.3))
    d = fmnist("test", 6)
    fast = FastChipBatch(prog, cfg, [3])
    chip = AnalogChip(prog, cfg, 3)
    l = prog.xnor_layers[0].index
    assert torch.equal(fast.state[l].weights.w_a[0], chip.state[l].weights.w_a)
    a = evaluate(fast, d, keep_predictions=True, error_stats=True)[0]
    b = evaluate(chip, d, keep_predictions=True, error_stats=True)[0]
    assert torch.equal(a.predictions, b.predictions) and a.errors == b.errors
    monkeypatch.setattr(analog, "make_noise_model", lambda device: SttMramNoiseModel(device))
    fresh = FastChipBatch(prog, cfg, [3])
    assert not torch.equal(fresh.state[l].weights.w_a[0], fast.state[l].weights.w_a[0])
