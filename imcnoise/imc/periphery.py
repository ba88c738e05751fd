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


def adc(v: torch.Tensor, full_scale: int, bits: int | None, clip: bool) -> torch.Tensor:
    """Digitise a sensed count: nearest integer with full resolution, else steps of FS/(2^bits - 1)."""
    if bits is None or 2 ** bits >= full_scale + 1:
        q = torch.round(v)
    else:
        step = full_scale / (2 ** bits - 1)
        q = torch.round(v / step) * step
    return q.clamp(0.0, float(full_scale)) if clip else q


def sense(raw: list[torch.Tensor], n_cells: int, off_ratio: float, per: PeripheryDraw, tile: int, cfg: AnalogConfig,
          noise: dict[str, torch.Tensor | None]) -> torch.Tensor:
    """Counts ``[N, rows, L]`` from the raw slot signals (LSB units, baseline included).

    ``noise`` holds standard normals for "ktc" and "sa" (or None when that effect is off).
    """
    baseline = n_cells * off_ratio / (1.0 - off_ratio)
    offset = per.offset_lsb[tile].view(1, -1, 1)
    if len(raw) == 2:
        held = raw[0] * (per.buffer_gain[tile].view(1, -1, 1) * cfg.buffer.droop)
        if noise.get("ktc") is not None:
            held = held + noise["ktc"] * cfg.buffer.ktc_sigma_lsb(cfg.sense_amp.lsb_voltage_v)
        v = held + raw[1] - 2 * baseline
    else:
        v = raw[0] - baseline
    v = v + offset
    if noise.get("sa") is not None:
        v = v + noise["sa"] * cfg.sense_amp.noise_sigma_lsb
    return adc(v, len(raw) * n_cells, cfg.sense_amp.adc_bits, cfg.sense_amp.clip)
