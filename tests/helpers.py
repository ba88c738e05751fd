"""Small models with realistic batch-norm statistics, for tests that must run in seconds."""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]

from imcnoise.data import load_dataset
from imcnoise.data.transforms import NORMALIZATION
from imcnoise.models.inputs import model_input
from imcnoise.models.vgg import BinaryVGG11, ModelConfig


def fmnist(split: str = "test", n: int | None = None):
    return _fmnist(split).subset(n)


@functools.lru_cache(maxsize=None)
def _fmnist(split: str):
    return load_dataset("fashion-mnist", split)


def calibrated_model(kind: str = "bsnn", residual: str = "paper", width: float = 0.125, timesteps: int = 4,
                     seed: int = 0, negative_gamma: float = 0.0, zero_gamma: int = 0) -> BinaryVGG11:
    """Random model whose BN running statistics come from real Fashion-MNIST images.

    ``negative_gamma``: fraction of channels per layer whose BN weight gamma is made negative;
    ``zero_gamma``: number of channels per binary layer with gamma = 0 (input-independent rows).
    Built once per argument set in a test session; every call returns its own copy.
    """
    return copy.deepcopy(_calibrated(kind, residual, width, timesteps, seed, negative_gamma, zero_gamma))


@functools.lru_cache(maxsize=None)
def _calibrated(kind, residual, width, timesteps, seed, negative_gamma, zero_gamma) -> BinaryVGG11:
    torch.manual_seed(seed)
    mean, std = NORMALIZATION["fashion-mnist"]
    cfg = ModelConfig(kind=kind, width=width, timesteps=timesteps, in_channels=1, num_classes=10, residual=residual,
                      input_mean=mean, input_std=std)
    model = BinaryVGG11(cfg)
    data = fmnist("train", 256)
    for norm in model.norms:
        if isinstance(norm, torch.nn.modules.batchnorm._BatchNorm):
            norm.momentum = None  # cumulative average over the calibration batches
            torch.nn.init.uniform_(norm.bias, -0.6, 0.3)
    model.train()
    with torch.no_grad():
        for start in range(0, len(data), 64):
            idx = torch.arange(start, start + 64)
            model(model_input(cfg, data.images[idx], idx, seed))
    g = torch.Generator().manual_seed(seed + 1)
    for spec, norm in zip(model.plan, model.norms):
        if not isinstance(norm, torch.nn.modules.batchnorm._BatchNorm):
            continue
        with torch.no_grad():
            c = norm.weight.shape[0]
            if negative_gamma > 0:
                flip = torch.rand(c, generator=g) < negative_gamma
                norm.weight[flip] *= -1
                # keep the neuron active with a negative scale: shift its bias up
                norm.bias[flip] += 1.0
            if zero_gamma and spec.binary:
                norm.weight[:zero_gamma] = 0.0
    return model.eval()


NO_LIMITS = {"cell_current_a": float("inf"), "line_current_a": float("inf"), "subarray_power_w": float("inf"),
             "ir_drop_fraction": float("inf")}


def quiet_chip(device=None, **sections):
    """The default chip with every non-ideality off (``AnalogConfig.ideal``) and its limits switched
    off, plus ``sections`` (e.g. ``sense_amp={"scheme": "current"}``): isolates one mechanism; the
    limits have their own tests (test_limits.py)."""
    from imcnoise.imc import AnalogConfig

    sections = dict(sections)
    sections["limits"] = {**NO_LIMITS, **sections.get("limits", {})}
    return AnalogConfig.ideal(device, **sections)


def assert_clean_error(result, code: int = 2) -> None:
    """A CLI call (typer's ``CliRunner``) that ended in one clear error: the exit code ``code`` and
    no exception other than the ``SystemExit`` of that exit. (``CliRunner`` catches exceptions, so a
    crash never shows a traceback in ``result.output``: only ``result.exception`` tells.)"""
    exc = result.exception
    assert result.exit_code == code, (result.exit_code, result.output)
    assert exc is None or isinstance(exc, SystemExit), f"crashed with {type(exc).__name__}: {exc}\n{result.output}"


def record_layer(chip, layer_index: int) -> dict:
    """Wrap ``chip.mac`` so that the reads of binary layer ``layer_index`` are kept: ``seen["x"]`` the
    first slot's input bits of chip 0, ``seen["dot"]`` its counts (the last batch run)."""
    seen = {}
    orig = chip.mac

    def hook(layer, slots, p):
        out = orig(layer, slots, p)
        if layer.index == layer_index:
            seen["x"], seen["dot"] = slots[0][:, 0], out[:, 0]
        return out

    chip.mac = hook
    return seen
