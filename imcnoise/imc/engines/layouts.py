"""Named tensor layouts of the engines, and the conversions between them.

One traversal (:mod:`.base`) serves every engine, so it works in one layout, channels innermost
with a chip axis K (chips of one pass; 1 for the single-chip engines):

========= ========================== ==========================================================
name      shape                      what
========= ========================== ==========================================================
BITS      ``[N, K, H, W, C]``        a convolution's input / output bits, N = T*B samples
BITS_FC   ``[N, K, F]``              a fully connected layer's input / output bits
READS     ``[N, K, L, tiles, rows]`` row currents or counts of every read: L output positions
                                     (H*W, or 1 for fc), column tiles (sub-arrays of a row)
DOTS      ``[N, K, L, rows]``        a layer's digitised dot products (tiles added digitally)
MODEL     ``[T, B, C, H, W]``        the float model's layout; recordings use it, so engines and
                                     the trained model compare spike for spike
========= ========================== ==========================================================

Channels innermost makes an OR-pool, a residual mapping and the fold's per-row parameters
(broadcast on the last axis) layout-free, and a chip's ``[N, H, W, C]`` slice is a
channels-last tensor that oneDNN convolves fastest.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..program import XnorLayer


def bits_from_nchw(x: torch.Tensor) -> torch.Tensor:
    """``[N, C, H, W]`` -> BITS ``[N, 1, H, W, C]`` (contiguous)."""
    return x.permute(0, 2, 3, 1).contiguous().unsqueeze(1)


def nchw(x: torch.Tensor) -> torch.Tensor:
    """One chip's ``[N, H, W, C]`` bits as an ``[N, C, H, W]`` (channels-last) view; fc bits unchanged."""
    return x.permute(0, 3, 1, 2) if x.dim() == 4 else x


def flatten_fc(x: torch.Tensor) -> torch.Tensor:
    """BITS ``[N, K, H, W, C]`` -> BITS_FC ``[N, K, C*H*W]`` in the model's (C, H, W) flatten order."""
    return x.permute(0, 1, 4, 2, 3).flatten(2)


def or_pool(x: torch.Tensor, k: int) -> torch.Tensor:
    """OR-pool (max-pool of binary values) over H, W of ``[..., H, W, C]`` bits."""
    if k == 1:
        return x
    if k % 2 == 0 and k > 2:  # OR over k x k = OR of 2 x 2 ORs
        return or_pool(or_pool(x, 2), k // 2)
    lead = x.shape[:-3]
    h, w, c = x.shape[-3:]
    if k == 2 and x.is_contiguous():  # the common case: four strided maxima, no permutes
        v = x.view(-1, h // 2, 2, w // 2, 2, c)
        y = torch.maximum(torch.maximum(v[:, :, 0, :, 0], v[:, :, 0, :, 1]), torch.maximum(v[:, :, 1, :, 0], v[:, :, 1, :, 1]))
        return y.view(*lead, h // 2, w // 2, c)
    y = F.max_pool2d(x.reshape(-1, h, w, c).permute(0, 3, 1, 2), k)
    return y.permute(0, 2, 3, 1).reshape(*lead, h // k, w // k, c)


def residual_input(src: torch.Tensor, layer: XnorLayer) -> torch.Tensor:
    """The identity mapping of a residual source (topology docstring): OR-pool, channel repetition
    (c -> c mod C_src), flatten for fc."""
    x = or_pool(src, layer.residual_pool) if src.dim() == 5 else src
    if layer.residual_repeat > 1:
        x = x.repeat(*([1] * (x.dim() - 1)), layer.residual_repeat)
    if layer.kind == "fc" and x.dim() == 5:
        x = flatten_fc(x)
    return x


def dots_from_nchw(d: torch.Tensor) -> torch.Tensor:
    """One chip's dot products ``[N, rows, H, W]`` (conv) or ``[N, rows]`` (fc) -> DOTS ``[N, 1, L, rows]``."""
    if d.dim() == 4:
        return d.permute(0, 2, 3, 1).reshape(d.shape[0], 1, -1, d.shape[1])
    return d.view(d.shape[0], 1, 1, d.shape[1])


def dots_to_nchw(d: torch.Tensor, layer: XnorLayer) -> torch.Tensor:
    """One chip's DOTS ``[N, L, rows]`` -> ``[N, rows, H, W]`` (conv) or ``[N, rows]`` (fc)."""
    if layer.kind == "conv":
        return d.transpose(1, 2).reshape(d.shape[0], layer.rows, layer.in_size, layer.in_size)
    return d[:, 0]


def neuron_out_to_bits(out: torch.Tensor, layer: XnorLayer) -> torch.Tensor:
    """Neuron outputs ``[T, B, K, L, rows]`` -> BITS ``[N, K, H, W, rows]`` or BITS_FC ``[N, K, rows]``."""
    out = out.flatten(0, 1)
    if layer.kind == "conv":
        return out.view(out.shape[0], out.shape[1], layer.in_size, layer.in_size, layer.rows)
    return out[:, :, 0]


def to_model_layout(a: torch.Tensor, layer: XnorLayer) -> torch.Tensor:
    """One chip's neuron outputs ``[T, B, L, rows]`` -> MODEL ``[T, B, rows, H, W]`` or ``[T, B, rows]``."""
    if layer.kind == "conv":
        return a.transpose(2, 3).reshape(a.shape[0], a.shape[1], layer.rows, layer.in_size, layer.in_size)
    return a[:, :, 0]
