"""Sense path of one sub-array output line: residual buffer, sense amplifier, ADC.

Signals are in LSB units: 1 LSB = the current difference of one XNOR match, G_on - G_off, at the
*nominal* device values (calibration). A row of n cells with ideal devices carries
n * G_off + dot * (G_on - G_off), i.e. ``n * r / (1 - r) + dot`` LSB with r = G_off / G_on; the
sense path subtracts that nominal baseline, so ideal devices give exactly the XNOR popcount.

Residual layers (paper Sec. III, eq. 11): the tau1 MAC is held on a capacitor -- static gain
mismatch, droop exp(-t/RC) and kT/C noise act on the whole held signal, baseline included --
then the tau2 MAC is added and the sum is sensed once. When every effect is off the sum is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..seeding import derive_seed, generator, image_normals
from .config import AnalogConfig


@dataclass
class PeripheryDraw:
    """Static per-chip draws of one layer: one value per (column tile, output line)."""

    offset_lsb: torch.Tensor  # [n_col_tiles, rows]
    buffer_gain: torch.Tensor  # [n_col_tiles, rows]


def draw_periphery(cfg: AnalogConfig, chip_seed: int, layer_index: int, n_col_tiles: int, rows: int,
                   device=None) -> PeripheryDraw:
    g = generator(chip_seed, "periphery", layer_index)
    off = torch.randn(n_col_tiles, rows, generator=g, dtype=torch.float64) * cfg.sense_amp.offset_lsb
    gain = 1.0 + torch.randn(n_col_tiles, rows, generator=g, dtype=torch.float64) * cfg.buffer.gain_sigma
    return PeripheryDraw(off.float().to(device), gain.float().to(device))


@dataclass
class ReadContext:
    """Keys of every read of one layer for K chips: per-read normals come from streams seeded by
    (chip seed, purpose, layer, column tile, slot) and drawn per image (``image_normals``), so they
    are the same however images and chips are batched."""

    chip_seeds: list[int]
    layer: int
    index: torch.Tensor  # [B] data-set indices of the images
    T: int

    def normals(self, purpose: str, slot: int, shape: tuple, device=None) -> torch.Tensor:
        """Dense normals shaped like the reads, ``[T*B, K, L, tiles, rows]``."""
        _, K, L, nt, rows = shape
        B = self.index.shape[0]
        out = torch.empty(self.T, B, K, L, nt, rows, device=device)
        for k, chip in enumerate(self.chip_seeds):
            for c in range(nt):
                z = image_normals(derive_seed(chip, purpose, self.layer, c, slot), self.index, self.T * rows * L, device)
                out[:, :, k, :, c, :] = z.view(B, self.T, rows, L).permute(1, 0, 3, 2)
        return out.view(self.T * B, K, L, nt, rows)


def squared_conductance(g: torch.Tensor) -> torch.Tensor:
    """G^2 on a 2**-8 grid: the read-noise variance weights. Coarse enough that the variance MAC is
    an exact fp32 sum in every engine (<= 512 cells x 64 x 2**8 < 2**24), fine enough for a std."""
    return torch.round(g.float() ** 2 * 256.0) / 256.0


def sense(raw: list[torch.Tensor], read_std: list[torch.Tensor | None], cells: torch.Tensor, off_ratio: float,
          offset: torch.Tensor, gain: torch.Tensor, cfg: AnalogConfig, ctx: ReadContext | None) -> torch.Tensor:
    """Digitised counts from the raw slot currents (normalised to G_on; consumed in place).

    Layout: ``raw`` slots ``[N, K, L, tiles, rows]`` (N = T*B samples, K chips, L positions);
    ``read_std`` per-read std of the device read noise of each slot (same shape, or None);
    ``cells`` ``[tiles, 1]``; ``offset``, ``gain`` ``[K, 1, tiles, rows]``. Every engine calls this one function, so their arithmetic is
    identical. Per-read noise (device read noise, kT/C of the held slot, sense-amp noise) is
    Gaussian, drawn from ``ctx`` only for the effects that are on.
    """
    dl = 1.0 - off_ratio
    baseline = cells * (off_ratio / dl)
    shape = tuple(raw[0].shape)
    dev = raw[0].device
    if len(raw) == 2:
        v = raw[0].div_(dl)
        if read_std[0] is not None:
            v.addcmul_(read_std[0].div_(dl), ctx.normals("device-read", 0, shape, dev))
        v.mul_(gain * cfg.buffer.droop)
        s_ktc = cfg.buffer.ktc_sigma_lsb(cfg.sense_amp.lsb_voltage_v)
        if s_ktc > 0:
            v.add_(ctx.normals("ktc", 0, shape, dev), alpha=s_ktc)
        v.add_(raw[1].div_(dl))
        if read_std[1] is not None:
            v.addcmul_(read_std[1].div_(dl), ctx.normals("device-read", 1, shape, dev))
        v.add_(offset - 2 * baseline)
    else:
        v = raw[0].div_(dl)
        if read_std[0] is not None:
            v.addcmul_(read_std[0].div_(dl), ctx.normals("device-read", 0, shape, dev))
        v.add_(offset - baseline)
    if cfg.sense_amp.noise_sigma_lsb > 0:
        v.add_(ctx.normals("sense", 0, shape, dev), alpha=cfg.sense_amp.noise_sigma_lsb)
    full_scale = cells * len(raw)
    bits = cfg.sense_amp.adc_bits
    if bits is None or 2 ** bits >= int(full_scale.max()) + 1:
        q = v.round_()
    else:
        step = full_scale / (2 ** bits - 1)
        q = v.div_(step).round_().mul_(step)
    if cfg.sense_amp.clip:
        q.clamp_(min=0.0)
        q = torch.minimum(q, full_scale, out=q) if full_scale.numel() > 1 else q.clamp_(max=float(full_scale.max()))
    return q


def cells_tensor(m, device=None) -> torch.Tensor:
    """Cells per column tile of a layer map, shaped ``[tiles, 1]`` for :func:`sense`."""
    return torch.tensor([m.cells(c) for c in range(m.n_col_tiles)], dtype=torch.float32, device=device).view(-1, 1)
