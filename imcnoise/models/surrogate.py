"""Surrogate gradient of the spike function, paper eq. (4).

    d o / d u  =  delta * max(0, 1 - |(u - theta) / theta|)

with damping factor delta (0.3 in the paper, after Kim & Panda 2020).
"""

from __future__ import annotations

import torch

DEFAULT_DELTA = 0.3


def triangle_surrogate(u: torch.Tensor, theta: float, delta: float = DEFAULT_DELTA) -> torch.Tensor:
    """Value of eq. (4) at membrane potential ``u``."""
    return (1.0 - ((u - theta) / theta).abs()).clamp_(min=0.0).mul_(delta)
