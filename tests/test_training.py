"""Training loop, checkpoints and the train/eval commands (paper Alg. 1)."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from imcnoise.cli.main import app
from imcnoise.data.transforms import NORMALIZATION
from imcnoise.models.checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from imcnoise.models.inputs import model_input
from imcnoise.models.vgg import BinaryVGG11, ModelConfig
from imcnoise.training.config import TrainConfig
from imcnoise.training.loop import init_model, train

from helpers import calibrated_model, fmnist, assert_clean_error

TINY = dict(dataset="fashion-mnist", width=0.125, timesteps=2, train_limit=256, eval_limit=64, batch_size=32,
            epochs=2, precision="fp32")


@pytest.mark.parametrize("kind", ["bsnn", "bnn"])
def test_tiny_model_trains_on_real_subset_and_loss_falls(kind):
    torch.manual_seed(0)
    mean, std = NORMALIZATION["fashion-mnist"]
    cfg = ModelConfig(kind=kind, width=0.125, timesteps=2, in_channels=1, input_mean=mean, input_std=std)
    model = init_model(BinaryVGG11(cfg), TrainConfig(model=kind))
    data = fmnist("train", 256)
    opt = torch.optim.Adam(model.parameters(), 2e-3)
    losses = []
    for epoch in range(5):
        for start in range(0, 256, 64):
            idx = torch.arange(start, start + 64)
            loss = F.cross_entropy(model(model_input(cfg, data.images[idx], idx, epoch)), data.labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            model.clip_latent_()
            losses.append(float(loss.detach()))
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    assert last < 0.8 * first, (first, last)


def test_training_is_deterministic_and_resume_continues_exactly(tmp_path):
    cfg = TrainConfig(model="bsnn", **TINY)
    train(cfg, tmp_path / "a", progress=False)  # uninterrupted, 2 epochs
    _train_first_epoch_only(cfg, tmp_path / "b")  # killed after epoch 1 ...
    assert torch.load(tmp_path / "b" / "last.pt", weights_only=True)["epoch"] == 0
    train(cfg, tmp_path / "b", resume=True, progress=False)  # ... and resumed
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert [h["test_acc"] for h in a["history"]] == [h["test_acc"] for h in b["history"]]
    with pytest.raises(ValueError, match="cannot resume"):
        train(TrainConfig(model="bsnn", **{**TINY, "lr": 1e-3}), tmp_path / "b", resume=True, progress=False)


def _train_first_epoch_only(cfg: TrainConfig, out):
    """Run the first epoch of ``cfg`` and stop, as a killed process would."""
    import imcnoise.training.loop as loop

    class Stop(Exception):
        pass

    orig = loop.write_model_card
    calls = {"n": 0}

    def card(*a, **k):
        orig(*a, **k)
        calls["n"] += 1
        if calls["n"] == 1:
            raise Stop

    loop.write_model_card = card
    try:
        with pytest.raises(Stop):
            train(cfg, out, progress=False)
    finally:
        loop.write_model_card = orig


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    model = calibrated_model("bsnn")
    path = save_checkpoint(tmp_path / "m.pt", model, training={"seed": 0}, metrics={"test_accuracy": 0.1},
                           data={"dataset": "fashion-mnist"})
    loaded, meta = load_checkpoint(path)
    x = (torch.rand(4, 3, 1, 32, 32) < 0.4).float()
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert meta["versions"]["torch"] == str(torch.__version__)
    assert path.stat().st_size < 200_000  # signs as bits: small
    assert meta["model_config"]["kind"] == "bsnn"


def test_mismatched_checkpoint_gives_clear_error(tmp_path):
    model = calibrated_model("bsnn")
    path = save_checkpoint(tmp_path / "m.pt", model, training={}, metrics={}, data={"dataset": "fashion-mnist"})
    with pytest.raises(CheckpointError, match=r"kind='bsnn' but kind='bnn' was requested"):
        load_checkpoint(path, expect={"kind": "bnn"})
    with pytest.raises(CheckpointError, match=r"dataset='fashion-mnist' but dataset='cifar100'"):
        load_checkpoint(path, expect={"dataset": "cifar100"})
    # a state that does not fit the config
    obj = read_checkpoint(path)
    obj["model_config"]["width"] = 0.25
    torch.save(obj, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="weight shape"):
        load_checkpoint(tmp_path / "bad.pt")
    # a training-state file is not an inference checkpoint
    torch.save({"model": {}}, tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match="resume only"):
        load_checkpoint(tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    # a NaN scale or batch-norm statistic would evaluate and sweep to full (meaningless) tables
    for key in ("layers.1.alpha", "norms.2.running_var"):
        obj = read_checkpoint(path)
        assert key in obj["state"], sorted(obj["state"])[:20]
        obj["state"][key] = obj["state"][key].clone().fill_(float("nan"))
        torch.save(obj, tmp_path / "nan.pt")
        with pytest.raises(CheckpointError, match=rf"{key} holds NaN or infinite values"):
            load_checkpoint(tmp_path / "nan.pt")


def test_train_and_eval_commands(tmp_path):
    runner = CliRunner()
    out = tmp_path / "run"
    r = runner.invoke(app, ["train", "--model", "bnn", "--dataset", "fashion-mnist", "--width", "0.125", "--epochs", "1",
                            "--train-limit", "128", "--eval-limit", "32", "--batch-size", "32", "--out", str(out)])
    assert r.exit_code == 0, r.output
    card = (out / "MODEL_CARD.md").read_text()
    assert "imcnoise train --model bnn" in card and "test accuracy" in card
    # the card names the CPU the run used (training is bit-reproducible per kind of CPU only)
    from imcnoise.models.checkpoint import machine_description

    assert f"| machine | {machine_description()} |" in card
    hist = json.loads((out / "history.json").read_text())
    assert len(hist) == 1
    r = runner.invoke(app, ["eval", str(out / "model.pt"), "--limit", "32"])
    assert r.exit_code == 0, r.output
    assert "accuracy" in r.output and "firing rates per layer" in r.output
    r = runner.invoke(app, ["eval", str(out / "model.pt"), "--dataset", "cifar10", "--limit", "4", "--data-dir", str(tmp_path)])
    assert r.exit_code == 2 and "error:" in r.output
    r = runner.invoke(app, ["train", "--model", "xnn", "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "--model='xnn'" in r.output
    r = runner.invoke(app, ["train", "--model", "bnn", "--epochs", "0", "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "--epochs=0" in r.output


def test_machine_description_names_the_cpu_and_its_widest_vector_unit():
    """By hand from the cpuinfo lines below: the first ``model name``, the logical CPUs, and the widest of
    AMX > AVX-512 VNNI > AVX-512 > AVX2 among the first ``flags`` line's extensions."""
    import os

    from imcnoise.models.checkpoint import machine_description

    n = os.cpu_count()
    xeon = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8480C\nflags\t\t: fpu avx2 avx512f avx512_vnni amx_tile\n"
    epyc = "model name\t: AMD EPYC 9654\nflags\t\t: fpu avx2 avx512f\nmodel name\t: other\n"
    assert machine_description(xeon) == f"Intel(R) Xeon(R) Platinum 8480C, {n} logical CPUs, AMX"
    assert machine_description(epyc) == f"AMD EPYC 9654, {n} logical CPUs, AVX-512"
    assert machine_description("model name : Old\nflags : sse2 avx2\n") == f"Old, {n} logical CPUs, AVX2"


def test_list_presets_needs_no_out_and_training_without_out_is_refused():
    r = CliRunner().invoke(app, ["train", "--list-presets"])
    assert r.exit_code == 0 and "fmnist-bsnn: " in r.output and "cifar10jpeg-bsnn-w0.5: " in r.output, r.output
    r = CliRunner().invoke(app, ["train", "--preset", "fmnist-bsnn"])
    assert "--out: missing" in r.output, r.output
    assert_clean_error(r)


def test_a_batch_larger_than_the_training_subset_is_refused(tmp_path):
    """16 training images in batches of 32: no full batch, so no training step would run; the
    command must say so instead of writing an untrained checkpoint as if it had trained."""
    out = tmp_path / "run"
    r = CliRunner().invoke(app, ["train", "--model", "bnn", "--dataset", "fashion-mnist", "--width", "0.125", "--epochs", "1",
                                 "--train-limit", "16", "--batch-size", "32", "--out", str(out)])
    assert r.exit_code == 2 and "--batch-size=32: larger than the 16 training images" in r.output, r.output
    assert not (out / "model.pt").exists()


def test_a_float_teacher_checkpoint_is_refused_by_every_chip_command(tmp_path):
    """A full-precision (teacher) model has no binary layers: energy, export, eval --engine xnor and
    a sweep's models must each refuse it with one error naming the file, not an AttributeError."""
    from imcnoise.models.vgg import BinaryVGG11, ModelConfig

    mean, std = NORMALIZATION["fashion-mnist"]
    model = BinaryVGG11(ModelConfig(kind="float", width=0.125, in_channels=1, num_classes=10, input_mean=mean,
                                    input_std=std)).eval()
    path = save_checkpoint(tmp_path / "teacher.pt", model, training={}, metrics={}, data={"dataset": "fashion-mnist"})
    expect = f"{path}: a 'float' model has no binary layers to fold onto the XNOR chip"
    for args in (["energy", str(path), "--images", "2"], ["eval", str(path), "--engine", "xnor", "--limit", "2"],
                 ["export", str(path), "--out", str(tmp_path / "ex")]):
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 2 and expect in r.output, (args, r.output)
    sc = tmp_path / "s.yaml"
    sc.write_text(f"name: t\nseed: 1\ndataset: {{name: fashion-mnist, limit: 4}}\nmodels: {{bsnn: {path}, bnn: {path}}}\n"
                  f"trials: 1\noutput: {tmp_path / 'out'}\n")
    r = CliRunner().invoke(app, ["sweep", str(sc), "--no-progress"])
    assert r.exit_code == 2 and "a 'float' model has no binary layers" in r.output, r.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "ex").exists()


@pytest.mark.parametrize("value", ["0", "100000000000"])
def test_out_of_range_threads_are_refused(value):
    """--threads outside 1 .. 256 (the range of run.threads_per_worker) gets one error; a huge value
    used to reach torch.set_num_threads and abort the process."""
    r = CliRunner().invoke(app, ["eval", "imcnoise/checkpoints/fmnist-bnn/model.pt", "--threads", value])
    assert r.exit_code == 2 and f"--threads={value}: torch CPU threads, allowed 1 .. 256" in r.output, r.output


def test_ideal_batch_norm_statistics_are_the_average_of_the_batch_statistics():
    """``reestimate_batch_norms`` over 2 batches of 64 images: every batch norm's running mean is
    the mean of its two batch means and its running variance the mean of the two unbiased batch
    variances (equal batches: the cumulative average of Ioffe & Szegedy's population statistics).
    The expectation is computed here from the batch norms' recorded inputs; an exponential average
    (momentum 0.1) or statistics not reset first would miss it by far more than 1e-5."""
    from imcnoise.training.batchnorm import batch_norms, reestimate_batch_norms

    model = calibrated_model("bsnn", timesteps=2)
    data = fmnist("train", 128)
    idx = torch.arange(128)
    for m in batch_norms(model):
        m.momentum = 0.1  # as in training; the re-estimate must not average exponentially
    first = batch_norms(model)[0]
    seen = []
    hook = first.register_forward_pre_hook(lambda m, inp: seen.append(inp[0].detach().clone()))
    reestimate_batch_norms(model, data.images[idx], idx, input_seed=5, batch_size=64)
    hook.remove()
    assert len(seen) == 2 and not model.training and first.momentum == 0.1  # mode and momentum restored
    dims = [0, 2, 3]
    mean = torch.stack([x.double().mean(dims) for x in seen]).mean(0)
    var = torch.stack([x.double().var(dims, unbiased=True) for x in seen]).mean(0)
    assert torch.allclose(first.running_mean.double(), mean, rtol=1e-5, atol=1e-6)
    assert torch.allclose(first.running_var.double(), var, rtol=1e-5, atol=1e-6)
    assert int(first.num_batches_tracked) == 2


def test_frozen_batch_norm_keeps_the_init_checkpoints_statistics_and_init_may_change_timesteps(tmp_path):
    """``bn_statistics: frozen`` fine-tunes a T = 4 checkpoint at T = 2: the weights move, every
    batch norm's running statistics stay bit for bit the checkpoint's; with ``running`` they move.
    A checkpoint of another width is refused naming the field."""
    init = calibrated_model("bsnn", timesteps=4)
    path = save_checkpoint(tmp_path / "init.pt", init, training={"seed": 0}, metrics={"test_accuracy": 0.1},
                           data={"dataset": "fashion-mnist"})
    for mode in ("frozen", "running"):
        cfg = TrainConfig(model="bsnn", **{**TINY, "epochs": 1, "lr": 1e-2}, init=str(path), bn_statistics=mode)
        train(cfg, tmp_path / mode, progress=False)
        out, _ = load_checkpoint(tmp_path / mode / "model.pt")
        assert out.config.timesteps == 2
        same = [torch.equal(a.running_mean, b.running_mean) and torch.equal(a.running_var, b.running_var)
                for a, b in zip(out.norms, init.norms) if isinstance(a, torch.nn.BatchNorm2d)]
        assert all(same) if mode == "frozen" else not any(same), (mode, same)
        assert not torch.equal(out.layers[0].weight, init.layers[0].weight)
    with pytest.raises(ValueError, match="width"):
        train(TrainConfig(model="bsnn", **{**TINY, "width": 0.25}, init=str(path)), tmp_path / "w", progress=False)
    with pytest.raises(ValueError, match="bn-statistics"):
        TrainConfig(model="bsnn", bn_statistics="frozen")


def test_frozen_ideal_batch_norm_is_the_frozen_fine_tune_then_an_ideal_re_estimate(tmp_path):
    """``bn_statistics: frozen-ideal`` takes the same steps as ``frozen`` (batch norm in eval mode:
    every weight bit for bit that run's) and then keeps statistics re-estimated on ideal training
    images -- those of the frozen run's model re-estimated on the epoch's ``bn_images`` images
    (index permutation seeded by (seed, "bn", epoch), Poisson seed (seed, "bn-poisson", epoch), the
    training batch, the loop's channels-last layout), not the init checkpoint's. Running batch norm in training, or skipping the
    re-estimate, fails one of the two."""
    from imcnoise.seeding import derive_seed, generator
    from imcnoise.training.batchnorm import reestimate_batch_norms

    init = calibrated_model("bsnn", timesteps=2)
    path = save_checkpoint(tmp_path / "init.pt", init, training={"seed": 0}, metrics={"test_accuracy": 0.1},
                           data={"dataset": "fashion-mnist"})
    out = {}
    for mode in ("frozen", "frozen-ideal"):
        cfg = TrainConfig(model="bsnn", **{**TINY, "epochs": 1, "lr": 1e-2}, init=str(path), bn_statistics=mode,
                          bn_images=64)
        train(cfg, tmp_path / mode, progress=False)
        out[mode], _ = load_checkpoint(tmp_path / mode / "model.pt")
    frozen, both = out["frozen"], out["frozen-ideal"]
    assert all(torch.equal(a, b) for (n, a), (_, b) in zip(frozen.named_parameters(), both.named_parameters()))
    data = fmnist("train", 256)
    idx = torch.randperm(256, generator=generator(0, "bn", 0))[:64]
    frozen = frozen.to(memory_format=torch.channels_last)  # as the training loop holds its model on a CPU
    reestimate_batch_norms(frozen, data.images[idx], idx, derive_seed(0, "bn-poisson", 0), 32)
    norms = [(a, b, c) for a, b, c in zip(both.norms, frozen.norms, init.norms) if isinstance(a, torch.nn.BatchNorm2d)]
    assert all(torch.equal(a.running_mean, b.running_mean) and torch.equal(a.running_var, b.running_var) for a, b, _ in norms)
    assert not any(torch.equal(a.running_mean, c.running_mean) for a, _, c in norms)
