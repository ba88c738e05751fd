"""Seed derivation: every random draw is keyed by *what* it is for, never by execution order.

``derive_seed(base, "chip", point, trial)`` gives the same 63-bit seed in any process, order,
batching or resumption, so re-runs, resumed runs and parallel runs draw identical numbers.
"""

from __future__ import annotations

import hashlib

import torch


def derive_seed(*keys) -> int:
    """Stable 63-bit seed from a tuple of ints/strings/floats (SHA-256 of their repr)."""
    text = "\x1f".join(repr(k) for k in keys).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") & ((1 << 63) - 1)


def generator(*keys, device: str | torch.device = "cpu") -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(derive_seed(*keys))
    return g


# --------------------------------------------------------------------------------------------
# Counter-based random numbers: a value is a pure function of (seed, image index, position), so
# per-read noise is identical however images are batched, ordered or spread over chips.

MASK32 = 0xFFFFFFFF


def mix32(x: torch.Tensor) -> torch.Tensor:
    """lowbias32 integer hash (C. Wellons, hash-prospector) on int64 tensors holding 32-bit values.

    Products are masked back to 32 bits; int64 wrap-around only touches bits above 32.
    """
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & MASK32
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & MASK32
    return x ^ (x >> 16)


def _key32(seed: int) -> int:
    return (seed ^ (seed >> 32)) & MASK32


def counter_normal(seed: int, image_index: torch.Tensor, per_image: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Standard normal numbers ``[N, per_image]`` keyed by (seed, image index, element).

    Box-Muller on two 24-bit uniforms from independent hash streams.
    """
    dev = device if device is not None else image_index.device
    idx = image_index.to(device=dev, dtype=torch.int64)
    k1, k2 = _key32(derive_seed(seed, "u1")), _key32(derive_seed(seed, "u2"))
    img = mix32((idx & MASK32) ^ ((idx >> 32) & MASK32) * 0x9E3779B1 & MASK32)[:, None]
    e = torch.arange(per_image, dtype=torch.int64, device=dev)[None, :]
    u1 = ((mix32(mix32(e ^ (img ^ k1)) ^ k1) >> 8).to(torch.float64) + 0.5) / 16777216.0
    u2 = ((mix32(mix32(e ^ (img ^ k2)) ^ k2) >> 8).to(torch.float64) + 0.5) / 16777216.0
    z = torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2.0 * torch.pi * u2)
    return z.to(dtype)
