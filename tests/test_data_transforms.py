"""The batched augmentation: deterministic given the generator, shape- and dtype-preserving."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from imcnoise.data.transforms import NORMALIZATION, random_crop_flip, to_unit


def _images(n=16, c=3, h=32, w=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, c, h, w), generator=g, dtype=torch.uint8)


@pytest.mark.parametrize("shape", [(16, 3, 32, 32), (5, 1, 28, 28), (3, 2, 7, 9)])
def test_deterministic_given_generator(shape):
    x = _images(*shape)
    a = random_crop_flip(x, torch.Generator().manual_seed(42))
    b = random_crop_flip(x, torch.Generator().manual_seed(42))
    c = random_crop_flip(x, torch.Generator().manual_seed(43))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert a.shape == x.shape and a.dtype == torch.uint8


def test_generator_state_advances():
    x = _images()
    g = torch.Generator().manual_seed(1)
    a, b = random_crop_flip(x, g), random_crop_flip(x, g)
    assert not torch.equal(a, b)


def test_identity_without_padding_and_flip():
    x = _images()
    g = torch.Generator().manual_seed(0)
    state = g.get_state()
    y = random_crop_flip(x, g, padding=0, flip=False)
    assert torch.equal(y, x) and y.dtype == x.dtype
    assert torch.equal(g.get_state(), state)  # no random numbers drawn


def test_flip_only_is_per_image_mirror():
    x = _images(n=64)
    y = random_crop_flip(x, torch.Generator().manual_seed(3), padding=0, flip=True)
    flipped = [torch.equal(y[i], x[i].flip(-1)) for i in range(64)]
    kept = [torch.equal(y[i], x[i]) for i in range(64)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 10 < sum(flipped) < 54  # about half


def test_crop_is_a_window_of_the_zero_padded_image():
    x = _images(n=32, c=2, h=8, w=8)
    p = 2
    y = random_crop_flip(x, torch.Generator().manual_seed(5), padding=p, flip=False)
    padded = F.pad(x, (p,) * 4)
    offsets = set()
    for i in range(32):
        hits = [(dy, dx) for dy in range(2 * p + 1) for dx in range(2 * p + 1)
                if torch.equal(y[i], padded[i, :, dy:dy + 8, dx:dx + 8])]
        assert hits, f"image {i} is not a crop of its padded original"
        offsets.add(hits[0])
    assert len(offsets) > 5  # offsets vary across the batch


def test_to_unit_and_normalization_table():
    x = torch.tensor([[[[0, 128, 255]]]], dtype=torch.uint8)
    u = to_unit(x)
    assert u.dtype == torch.float32 and torch.allclose(u, torch.tensor([0.0, 128 / 255, 1.0]).view(1, 1, 1, 3))
    for name, (mean, std) in NORMALIZATION.items():
        assert len(mean) == len(std) == (1 if name == "fashion-mnist" else 3)
