"""Poisson rate encoding of pixel intensities (paper Alg. 1, line 3).

A pixel of intensity p (uint8 value v, p = v/255) spikes at each time step with probability p.
Random numbers come from a counter-based hash of (seed, image index, time step, pixel), not from
a stateful generator: the spike train of an image is a pure function of the seed and the image's
index in its data set, whatever the batch size, the order of evaluation, the device or the
engine. The float model, the integer XNOR engine and every analog chip therefore see exactly the
same input spikes.
"""

from __future__ import annotations

import torch

from ..seeding import MASK32 as _MASK32, mix32 as _mix32


def uniform_bits24(seed: int, index: torch.Tensor, timesteps: int, numel: int, device=None) -> torch.Tensor:
    """24-bit uniform integers ``[T, N, numel]`` keyed by (seed, image index, t, element)."""
    dev = device if device is not None else index.device
    idx = index.to(device=dev, dtype=torch.int64)
    s = _mix32(torch.tensor([seed & _MASK32], dtype=torch.int64, device=dev) ^ ((seed >> 32) & _MASK32))
    per_image = _mix32(_mix32(idx & _MASK32) ^ s ^ ((idx >> 32) & _MASK32))  # [N]
    t = torch.arange(timesteps, dtype=torch.int64, device=dev)
    e = torch.arange(numel, dtype=torch.int64, device=dev)
    counter = (t[:, None, None] * numel + e[None, None, :]) & _MASK32  # [T,1,E]
    h = _mix32(_mix32(counter ^ per_image[None, :, None]) ^ s)
    return h >> 8


def poisson_spikes(images_u8: torch.Tensor, index: torch.Tensor, timesteps: int, seed: int,
                   dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Rate-coded spikes ``[T, N, C, H, W]`` in {0, 1} for uint8 images ``[N, C, H, W]``.

    Spike iff u24 * 255 < v * 2**24 with u24 uniform on [0, 2**24): exactly P = ceil(v * 2**24 / 255) / 2**24,
    i.e. v/255 to within 2**-24, computed in integers so it is identical on every device.
    """
    if images_u8.dtype != torch.uint8:
        raise TypeError(f"poisson_spikes expects uint8 images, got {images_u8.dtype}")
    n = images_u8.shape[0]
    numel = images_u8[0].numel()
    u = uniform_bits24(seed, index, timesteps, numel, images_u8.device)
    v = images_u8.reshape(1, n, numel).to(torch.int64)
    spikes = (u * 255) < (v << 24)
    return spikes.to(dtype).reshape(timesteps, *images_u8.shape)
