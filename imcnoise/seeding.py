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
