"""Fold a trained B-SNN / BNN into a chip program (paper Sec. III, eq. 6-11, Alg. 2).

B-SNN layer l (eq. 5-6 with batch norm affine gamma, beta):

    u^t = u^{t-1} + k * s^t + c,   k = gamma * alpha / sigma,   c = beta - gamma * mu / sigma,
    s^t = sum_slots sum_j w_j o_j = sum_slots (dot_slot - M1),      sigma = sqrt(var + eps)

Dividing by |k| (v = u / |k|), with p = sign(k) absorbed into the bits (p*w: "flipped" rows, M1
counted on the stored bits):

    v^t = v^{t-1} + dot^t - [n_slots * M1 - c / |k|],   fire iff v > theta_hat = theta / |k|

which for gamma = 1, beta = 0, k > 0 is the paper's bias M1 + mu/alpha and theta_hat = sigma*theta/alpha.
BNN layer: y = k * s + c > 0 with s = sum_slots (2 dot - M) for +-1 activations, i.e.

    dot > bias = (n_slots * M - c / |k|) / 2,    theta_hat = 0.

k = 0 (gamma or alpha zero): the drive is the constant c; gain 0, bias = -c (theta_hat = theta
for B-SNN, 0 for BNN).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ...models.checkpoint import file_sha256, load_checkpoint
from ...models.vgg import BinaryVGG11
from .chip_program import ChipProgram, DigitalLayer, XnorLayer


def _np(t: torch.Tensor, dtype=None) -> np.ndarray:
    a = t.detach().cpu().numpy()
    return a.astype(dtype) if dtype is not None else a.copy()


def fold_model(model: BinaryVGG11, meta: dict | None = None) -> ChipProgram:
    cfg = model.config
    if cfg.kind not in ("bsnn", "bnn"):
        where = (meta or {}).get("checkpoint", "the model")
        raise ValueError(f"{where}: a {cfg.kind!r} model has no binary layers to fold onto the XNOR chip "
                         f"(kind must be 'bsnn' or 'bnn'; a 'float' model is a distillation teacher)")
    theta = float(cfg.threshold)
    layers = []
    for spec, layer, norm in zip(model.plan, model.layers, model.norms):
        if not spec.binary:
            if spec.output:
                layers.append(DigitalLayer(index=spec.index, kind=spec.kind, weight=_np(layer.weight.float()),
                                           bias=_np(layer.bias.float()), output=True))
            else:
                layers.append(DigitalLayer(index=spec.index, kind=spec.kind, weight=_np(layer.weight.float()),
                                           bn_mean=_np(norm.running_mean.float()), bn_var=_np(norm.running_var.float()),
                                           bn_weight=_np(norm.weight.float()), bn_bias=_np(norm.bias.float()),
                                           bn_eps=float(norm.eps), pool_after=spec.pool_after))
            continue
        w = layer.binary_weight().detach().double().cpu().reshape(spec.out_features, -1)  # +-1, [rows, M]
        alpha = layer.alpha().detach().double().cpu()
        mu = norm.running_mean.detach().double().cpu()
        sigma = torch.sqrt(norm.running_var.detach().double().cpu() + float(norm.eps))
        gamma = norm.weight.detach().double().cpu()
        beta = norm.bias.detach().double().cpu()
        k = gamma * alpha / sigma
        c = beta - gamma * mu / sigma
        p = torch.where(k < 0, -1.0, 1.0).double()
        bits = ((w * p[:, None]) > 0).to(torch.uint8)  # unipolar: -1 -> 0, +1 -> 1 (after polarity)
        m = bits.shape[1]
        m1 = (bits == 0).sum(1).to(torch.int64)
        n = 2 if spec.residual_from is not None else 1
        gain = (k != 0).to(torch.uint8)
        absk = k.abs()
        safe = torch.where(gain.bool(), absk, torch.ones_like(absk))
        if cfg.kind == "bsnn":
            bias = torch.where(gain.bool(), n * m1.double() - c / safe, -c)
            theta_hat = torch.where(gain.bool(), theta / safe, torch.full_like(absk, theta))
            neuron = "if"
        else:
            bias = torch.where(gain.bool(), (n * m - c / safe) / 2, -c)
            theta_hat = torch.zeros_like(absk)
            neuron = "sign"
        layers.append(XnorLayer(
            index=spec.index, kind=spec.kind, neuron=neuron, in_features=spec.in_features, out_features=spec.out_features,
            in_size=spec.in_size, pool_after=spec.pool_after, bits=_np(bits), flipped=_np(p < 0), m1=_np(m1),
            input_dependent=_np(gain), bias=_np(bias), theta_hat=_np(theta_hat), residual_from=spec.residual_from,
            residual_pool=spec.residual_pool, residual_repeat=spec.residual_repeat))
    return ChipProgram(kind=cfg.kind, timesteps=cfg.timesteps, threshold=theta, in_channels=cfg.in_channels,
                       image_size=cfg.image_size, num_classes=cfg.num_classes, input_mean=cfg.input_mean,
                       input_std=cfg.input_std, layers=layers, meta=dict(meta or {}))


def fold_checkpoint(path: str | Path) -> ChipProgram:
    model, ckpt = load_checkpoint(path)
    meta = {"checkpoint": str(path), "checkpoint_sha256": file_sha256(path), "dataset": ckpt.get("data", {}).get("dataset"),
            "test_accuracy": ckpt.get("metrics", {}).get("test_accuracy")}
    return fold_model(model, meta)
