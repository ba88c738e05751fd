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
# input spikes and per-read noise are identical however images are batched, ordered or spread
# over chips and devices.

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
