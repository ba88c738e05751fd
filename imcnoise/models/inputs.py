"""Network input from uint8 images: Poisson spikes (B-SNN) or a normalised image (BNN).

Shared by training, the float evaluation and every IMC engine, so all see the same input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .encoding import poisson_spikes
from .vgg import ModelConfig


def pad_images(images_u8: torch.Tensor, size: int) -> torch.Tensor:
    """Zero-pad [N,C,H,W] symmetrically to size x size (Fashion-MNIST 28x28 -> 32x32)."""
    h, w = images_u8.shape[-2:]
    if (h, w) == (size, size):
        return images_u8
    if h > size or w > size:
        raise ValueError(f"images of {h}x{w} are larger than the model input {size}x{size}")
    top, left = (size - h) // 2, (size - w) // 2
    return F.pad(images_u8, (left, size - w - left, top, size - h - top))


def encode_images(kind: str, timesteps: int, image_size: int, input_mean, input_std, images_u8: torch.Tensor,
                  index: torch.Tensor, seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``[T, B, C, H, W]`` network input of uint8 images: Poisson spikes over ``timesteps`` steps
    (B-SNN, keyed by the images' data-set ``index`` and ``seed``) or the image normalised with
    ``input_mean`` / ``input_std`` (T = 1); images zero-padded to ``image_size``. The one encoding
    of the float model (:func:`model_input`) and of every chip engine."""
    images_u8 = pad_images(images_u8, image_size)
    if kind == "bsnn":
        return poisson_spikes(images_u8, index, timesteps, seed, dtype=dtype)
    x = images_u8.to(dtype) / 255.0
    c = x.shape[1]
    mean = torch.tensor(input_mean, dtype=dtype, device=x.device).expand(c).view(1, c, 1, 1)
    std = torch.tensor(input_std, dtype=dtype, device=x.device).expand(c).view(1, c, 1, 1)
    return ((x - mean) / std).unsqueeze(0)


def model_input(config: ModelConfig, images_u8: torch.Tensor, index: torch.Tensor, seed: int,
                dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``[T, B, C, H, W]`` input for :class:`BinaryVGG11` (T = 1 for the BNN).

    ``index`` are the images' positions in their data set and ``seed`` the encoding seed: the
    Poisson spikes depend only on (seed, index), see :mod:`.encoding`.
    """
    if images_u8.shape[1] != config.in_channels:
        raise ValueError(f"model expects {config.in_channels}-channel images, got {images_u8.shape[1]} channels")
    return encode_images(config.kind, config.timesteps, config.image_size, config.input_mean, config.input_std,
                         images_u8, index, seed, dtype)