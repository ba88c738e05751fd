"""Per-read random numbers: a pure function of (chip seed, purpose, layer, column tile, slot, image).

Every array read draws its dynamic noise (device read noise, kT/C of the held slot, sense-amp
noise) from streams keyed by what the read is, never by execution order: an image's numbers do
not depend on which images share its batch, on which chips share its pass, on the engine or on
the device. So batch sizes, chips per pass, resumed and parallel runs give identical results.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ...seeding import derive_seed

_U64 = 0xFFFFFFFFFFFFFFFF


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _U64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _U64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _U64
    return x ^ (x >> 31)


def image_normals(seed: int, image_index: torch.Tensor, per_image: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Standard normals ``[B, per_image]``: one generator stream per (seed, image index).

    Drawn on the CPU (torch's MT19937) and moved, so every device sees the same values.
    """
    idx = image_index.tolist()
    out = torch.empty(len(idx), per_image, dtype=torch.float32)
    g = torch.Generator()
    base = _splitmix64(seed & _U64)
    for i, ix in enumerate(idx):
        g.manual_seed(_splitmix64(base ^ (ix & _U64)) & ((1 << 63) - 1))
        torch.randn(per_image, generator=g, out=out[i])
    return out.to(device=device if device is not None else image_index.device, dtype=dtype)


@dataclass
class ReadNoise:
    """Normals for every read of one layer of the chips ``chip_seeds`` on a batch of images.

    ``index``: data-set indices of the images (``[B]``); ``T``: time steps. :meth:`normals`
    returns one value per read in the reads layout ``[T*B, K, L, tiles, rows]``
    (:mod:`imcnoise.imc.engines.layouts`).
    """

    chip_seeds: list[int]
    layer: int
    index: torch.Tensor
    T: int

    def normals(self, purpose: str, slot: int, shape: tuple, device=None) -> torch.Tensor:
        _, K, L, nt, rows = shape
        B = self.index.shape[0]
        out = torch.empty(self.T, B, K, L, nt, rows, device=device)
        for k, chip in enumerate(self.chip_seeds):
            for c in range(nt):
                z = image_normals(derive_seed(chip, purpose, self.layer, c, slot), self.index, self.T * rows * L, device)
                out[:, :, k, :, c, :] = z.view(B, self.T, rows, L).permute(1, 0, 3, 2)
        return out.view(self.T * B, K, L, nt, rows)
