"""Sense path of a sub-array's output lines: read noise, residual buffer, sense amplifier, ADC.

One small function per physical effect; :func:`sense` applies them in the order the circuit does.
Signals are in LSB: 1 LSB = the current difference of one XNOR match, G_on - G_off, at the
*nominal* device values (calibration). A row of n cells with ideal devices carries
n * G_off + dot * (G_on - G_off), i.e. ``n * r / (1 - r) + dot`` LSB with r = G_off / G_on; the
sense path subtracts that nominal baseline, so ideal devices give exactly the XNOR popcount.

Residual layers (paper Sec. III, eq. 11) read two time slots: the tau1 MAC is held on a capacitor
-- static gain mismatch, droop exp(-t/RC) and kT/C noise act on the whole held signal, baseline
included (:func:`hold`) -- then the tau2 MAC is added and the sum is sensed once. When every effect
is off the sum is exact.

Tensors are in the reads layout ``[N, K, L, tiles, rows]`` (N = T*B samples, K chips, L output
positions, column tiles, rows; :mod:`imcnoise.imc.engines.layouts`); static per-chip values
(offsets, buffer gains) are ``[K, 1, tiles, rows]``, cells per tile ``[tiles, 1]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ... import defaults as D
from ...seeding import generator
from ..config import AnalogConfig, ResidualBufferConfig


# ------------------------------------------------------------------------------- static draws
@dataclass
class PeripheryDraw:
    """Static per-chip draws of one layer: one value per (column tile, output line)."""

    offset_lsb: torch.Tensor  # [n_col_tiles, rows]
    buffer_gain: torch.Tensor  # [n_col_tiles, rows]


def draw_periphery(cfg: AnalogConfig, chip_seed: int, layer_index: int, n_col_tiles: int, rows: int,
                   device=None) -> PeripheryDraw:
    """Sense-amp offsets and buffer gains of one layer of one chip instance (drawn once per chip)."""
    g = generator(chip_seed, "periphery", layer_index)
    off = torch.randn(n_col_tiles, rows, generator=g, dtype=torch.float64) * offset_sigma_lsb(cfg)
    gain = 1.0 + torch.randn(n_col_tiles, rows, generator=g, dtype=torch.float64) * cfg.buffer.gain_sigma
    return PeripheryDraw(off.float().to(device), gain.float().to(device))


# ------------------------------------------------------------------------------- units
def volts_to_lsb(volts: float, lsb_voltage_v: float) -> float:
    """A sense-node voltage in LSB (one XNOR match is ``lsb_voltage_v`` at the sense node)."""
    return volts / lsb_voltage_v


def offset_sigma_lsb(cfg: AnalogConfig) -> float:
    """Static sense-amp offset std in LSB (given in LSB, or in volts and converted)."""
    sa = cfg.sense_amp
    return volts_to_lsb(sa.offset_sigma_v, sa.lsb_voltage_v) if sa.offset_sigma_v is not None else sa.offset_sigma_lsb


def buffer_droop(buf: ResidualBufferConfig) -> float:
    """Fraction of the held voltage left after the hold time: exp(-t / (R C))."""
    if math.isinf(buf.leak_resistance_ohm) or buf.hold_time_s == 0:
        return 1.0
    return math.exp(-buf.hold_time_s / (buf.leak_resistance_ohm * buf.capacitance_f))


def ktc_sigma_v(buf: ResidualBufferConfig) -> float:
    """kT/C noise of sampling onto the buffer capacitor: sigma_V = sqrt(k T / C) (0 when off)."""
    if not buf.kt_c_noise:
        return 0.0
    return math.sqrt(D.BOLTZMANN_J_PER_K * buf.temperature_k / buf.capacitance_f)


# ------------------------------------------------------------------------------- the reads
@dataclass
class SlotRead:
    """One time slot's array reads: row currents (normalised to G_on) and, when the devices have
    per-read noise, its std (same layout)."""

    current: torch.Tensor
    read_std: torch.Tensor | None = None


@dataclass
class SenseStatic:
    """What the sense path of one layer knows of the chips of a pass."""

    cells: torch.Tensor  # [tiles, 1] cells per column tile
    off_ratio: float  # nominal G_off / G_on (the calibration)
    offset: torch.Tensor  # [K, 1, tiles, rows] static sense-amp offset, LSB
    gain: torch.Tensor  # [K, 1, tiles, rows] static buffer gain

    @property
    def lsb(self) -> float:
        """One XNOR match in normalised current units."""
        return 1.0 - self.off_ratio

    @property
    def baseline(self) -> torch.Tensor:
        """The nominal all-mismatch current of a tile, in LSB: n * G_off / (G_on - G_off)."""
        return self.cells * (self.off_ratio / self.lsb)


# ------------------------------------------------------------------------------- one function per effect
def add_slot(v: torch.Tensor | None, read: SlotRead, static: SenseStatic) -> torch.Tensor:
    """The slot's row currents converted to LSB and added to the sense node (new tensor when v is None)."""
    x = read.current / static.lsb
    return x if v is None else v.add_(x)


def add_read_noise(v: torch.Tensor, read: SlotRead, static: SenseStatic, z) -> torch.Tensor:
    """Device read noise: each device's conductance fluctuates independently per read; the row
    current's std is read_sigma * sqrt(sum_j x_j G_j^2) (``read.read_std``)."""
    if read.read_std is None:
        return v
    return v.addcmul_(read.read_std / static.lsb, z())


def hold(v: torch.Tensor, static: SenseStatic, cfg: AnalogConfig, z) -> torch.Tensor:
    """The residual buffer holding the tau1 MAC: static gain mismatch x droop, then kT/C noise."""
    v.mul_(static.gain * buffer_droop(cfg.buffer))
    s = volts_to_lsb(ktc_sigma_v(cfg.buffer), cfg.sense_amp.lsb_voltage_v)
    return v.add_(z(), alpha=s) if s > 0 else v


def remove_baseline(v: torch.Tensor, static: SenseStatic, n_slots: int) -> torch.Tensor:
    """Subtract the calibrated baseline of every summed slot; the static sense-amp offset adds."""
    return v.add_(static.offset - n_slots * static.baseline)


def add_sense_noise(v: torch.Tensor, cfg: AnalogConfig, z) -> torch.Tensor:
    """Dynamic sense-amplifier noise, per read."""
    s = cfg.sense_amp.noise_sigma_lsb
    return v.add_(z(), alpha=s) if s > 0 else v


def adc(v: torch.Tensor, full_scale: torch.Tensor, bits: int | None) -> torch.Tensor:
    """Uniform ADC over [0, full scale]; with enough bits every count is resolved (rounding)."""
    if bits is None or 2 ** bits >= int(full_scale.max()) + 1:
        return v.round_()
    step = full_scale / (2 ** bits - 1)
    return v.div_(step).round_().mul_(step)


def clip(q: torch.Tensor, full_scale: torch.Tensor) -> torch.Tensor:
    """The ADC's input range: counts below 0 or above full scale saturate."""
    q.clamp_(min=0.0)
    return torch.minimum(q, full_scale, out=q) if full_scale.numel() > 1 else q.clamp_(max=float(full_scale.max()))


# ------------------------------------------------------------------------------- the whole path
def sense(reads: list[SlotRead], static: SenseStatic, cfg: AnalogConfig, noise=None) -> torch.Tensor:
    """Digitised counts ``[N, K, L, tiles, rows]`` of one layer's reads (one or two time slots).

    ``noise`` (:class:`~.noise.ReadNoise`) supplies the per-read normals; it is asked only for
    the effects that are on. Every engine calls this one function, so their arithmetic is identical.
    """
    shape = tuple(reads[0].current.shape)
    dev = reads[0].current.device

    def normals(purpose: str, slot: int):
        return lambda: noise.normals(purpose, slot, shape, dev)

    v = None
    last = len(reads) - 1
    for s, read in enumerate(reads):
        v = add_slot(v, read, static)
        v = add_read_noise(v, read, static, normals("device-read", s))
        if s < last:
            v = hold(v, static, cfg, normals("ktc", s))
    v = remove_baseline(v, static, len(reads))
    v = add_sense_noise(v, cfg, normals("sense", 0))
    full_scale = static.cells * len(reads)
    q = adc(v, full_scale, cfg.sense_amp.adc_bits)
    return clip(q, full_scale) if cfg.sense_amp.clip else q
