"""Small, batched, deterministic transform layer on uint8 image tensors.

All randomness comes from an explicit :class:`torch.Generator`, so a training run is a pure
function of its seed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Per-channel mean/std of the training sets, from the data sets' own statistics
# (Fashion-MNIST: 0.2860/0.3530; CIFAR-10 and CIFAR-100: commonly quoted values).
NORMALIZATION = {
    "fashion-mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar10-jpeg": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}


def random_crop_flip(images: torch.Tensor, generator: torch.Generator, *, padding: int = 4, flip: bool = True) -> torch.Tensor:
    """Random crop after zero padding, and random horizontal flip, per image (batched)."""
    n, c, h, w = images.shape
    if padding > 0:
        padded = F.pad(images, (padding,) * 4)
        dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
        dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
        rows = (dy[:, None] + torch.arange(h)[None, :])  # [n, h]
        cols = (dx[:, None] + torch.arange(w)[None, :])  # [n, w]
        idx_n = torch.arange(n)[:, None, None, None]
        idx_c = torch.arange(c)[None, :, None, None]
        images = padded[idx_n, idx_c, rows[:, None, :, None], cols[:, None, None, :]]
    if flip:
        do = torch.rand(n, generator=generator) < 0.5
        images = torch.where(do[:, None, None, None], images.flip(-1), images)
    return images


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 -> float in [0, 1] (pixel intensity = Poisson spike probability)."""
    return images.float().div_(255.0)
