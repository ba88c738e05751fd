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


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 31)


def image_normals(seed: int, image_index: torch.Tensor, per_image: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Standard normals ``[B, per_image]``: one generator stream per (seed, image index).

    The numbers of an image do not depend on which other images share its batch, on the batch
    order or on the engine; they are drawn on the CPU (torch's MT19937) and moved, so every device
    sees the same values.
    """
    idx = image_index.tolist()
    out = torch.empty(len(idx), per_image, dtype=torch.float32)
    g = torch.Generator()
    base = _splitmix64(seed & 0xFFFFFFFFFFFFFFFF)
    for i, ix in enumerate(idx):
        g.manual_seed(_splitmix64(base ^ (ix & 0xFFFFFFFFFFFFFFFF)) & ((1 << 63) - 1))
        torch.randn(per_image, generator=g, out=out[i])
    return out.to(device=device if device is not None else image_index.device, dtype=dtype)
