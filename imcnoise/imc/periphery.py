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

from ..seeding import counter_normal, derive_seed, generator
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


def read_noise(chip_seed: int, purpose: str, layer: int, tile: int, slot: int, image_index: torch.Tensor, T: int,
               rows: int, positions: int, device=None) -> torch.Tensor:
    """Standard normals ``[T*B, rows, positions]`` for every read, keyed by image index (batch-invariant)."""
    seed = derive_seed(chip_seed, purpose, layer, tile, slot)
    z = counter_normal(seed, image_index, T * rows * positions, device=device)
    B = image_index.shape[0]
    return z.view(B, T, rows, positions).transpose(0, 1).reshape(T * B, rows, positions)


def tile_noise(chip_seeds: list[int], purpose: str, layer: int, n_tiles: int, slot: int, image_index: torch.Tensor,
               T: int, rows: int, positions: int, device=None) -> torch.Tensor:
    """Standard normals ``[T*B, K, tiles, rows, positions]`` for K chips (see :func:`read_noise`)."""
    return torch.stack([torch.stack([read_noise(s, purpose, layer, c, slot, image_index, T, rows, positions, device)
                                     for c in range(n_tiles)], dim=1) for s in chip_seeds], dim=1)


def squared_conductance(g: torch.Tensor) -> torch.Tensor:
    """G^2 on a 2**-8 grid: the read-noise variance weights. Coarse enough that the variance MAC is
    an exact fp32 sum in every engine (<= 512 cells x 64 x 2**8 < 2**24), fine enough for a std."""
    return torch.round(g.float() ** 2 * 256.0) / 256.0


def adc(v: torch.Tensor, full_scale: torch.Tensor, bits: int | None, clip: bool) -> torch.Tensor:
    """Digitise sensed counts: nearest integer with full resolution, else steps of FS/(2^bits - 1).

    ``full_scale`` (counts, broadcastable to ``v``) is the largest possible count of the read.
    """
    if bits is None or 2 ** bits >= int(full_scale.max()) + 1:
        q = torch.round(v)
    else:
        step = full_scale / (2 ** bits - 1)
        q = torch.round(v / step) * step
    return torch.minimum(q.clamp(min=0.0), full_scale) if clip else q


def sense(raw: list[torch.Tensor], cells: torch.Tensor, off_ratio: float, offset: torch.Tensor, gain: torch.Tensor,
          cfg: AnalogConfig, noise: dict[str, torch.Tensor | None]) -> torch.Tensor:
    """Digitised counts from the raw slot signals (LSB units, baseline included).

    Shapes broadcast: ``raw`` slots ``[N, K, tiles, rows, L]``; ``cells`` (cells per tile) as
    ``[tiles, 1, 1]``; ``offset`` / ``gain`` ``[K, tiles, rows, 1]``; ``noise`` holds standard
    normals shaped like ``raw`` for "ktc" and "sa" (None when that effect is off). Every engine
    calls this one function, so their arithmetic is identical.
    """
    baseline = cells * (off_ratio / (1.0 - off_ratio))
    if len(raw) == 2:
        held = raw[0] * (gain * cfg.buffer.droop)
        if noise.get("ktc") is not None:
            held = held + noise["ktc"] * cfg.buffer.ktc_sigma_lsb(cfg.sense_amp.lsb_voltage_v)
        v = held + raw[1] - 2 * baseline
    else:
        v = raw[0] - baseline
    v = v + offset
    if noise.get("sa") is not None:
        v = v + noise["sa"] * cfg.sense_amp.noise_sigma_lsb
    return adc(v, cells * len(raw), cfg.sense_amp.adc_bits, cfg.sense_amp.clip)


def cells_tensor(m, device=None) -> torch.Tensor:
    """Cells per column tile of a layer map, shaped ``[tiles, 1, 1]`` for :func:`sense`."""
    return torch.tensor([m.cells(c) for c in range(m.n_col_tiles)], dtype=torch.float32, device=device).view(-1, 1, 1)


def sense_noise(cfg: AnalogConfig, chip_seeds: list[int], layer: int, n_tiles: int, n_slots: int, image_index: torch.Tensor,
                T: int, rows: int, positions: int, device=None) -> dict[str, torch.Tensor | None]:
    """Per-read normals of the buffer (kT/C, residual layers only) and of the sense amplifier."""
    noise: dict[str, torch.Tensor | None] = {"ktc": None, "sa": None}
    if n_slots == 2 and cfg.buffer.ktc_sigma_lsb(cfg.sense_amp.lsb_voltage_v) > 0:
        noise["ktc"] = tile_noise(chip_seeds, "ktc", layer, n_tiles, 0, image_index, T, rows, positions, device)
    if cfg.sense_amp.noise_sigma_lsb > 0:
        noise["sa"] = tile_noise(chip_seeds, "sense", layer, n_tiles, 0, image_index, T, rows, positions, device)
    return noise
