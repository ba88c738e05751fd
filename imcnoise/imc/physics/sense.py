"""Sense path of a sub-array's output lines: read noise, residual buffer, sense amplifier, ADC.

One small function per physical effect; :func:`sense` applies them in the order the circuit does.
Currents are normalised to the nominal on-state conductance (one unit = the current of one nominal
on-state device at the read voltage); the sense stage turns one unit into ``volts_per_unit`` at
the sense node (:func:`imcnoise.imc.config.volts_per_unit`). Counts are in LSB of the line's
calibration (:mod:`.calibration`): count = (I - n_slots * baseline) / lsb, so ideal devices give
exactly the XNOR popcount. Voltages (kT/C, comparator offset and noise) convert to counts with the
line's actual LSB voltage, ``lsb * volts_per_unit``.

Residual layers (paper Sec. III, eq. 11) read two time slots: the tau1 MAC is held on a capacitor
-- static gain mismatch, droop exp(-t/RC) and kT/C noise act on the whole held signal, baseline
included (:func:`hold`) -- then the tau2 MAC is added and the sum is sensed once. When every effect
is off the sum is exact.

The path runs per column tile (a sub-array and its own sense amplifiers); tensors are in the
reads layout of one tile ``[N, K, L, rows]`` (N = T*B samples, K chips, L output positions;
:mod:`imcnoise.imc.engines.layouts`), static per-chip values ``[K, 1, rows]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ... import defaults as D
from ...seeding import generator
from ..config import AnalogConfig, ResidualBufferConfig, lsb_voltage_v


# ------------------------------------------------------------------------------- units
def offset_sigma_v(cfg: AnalogConfig) -> float:
    """Static comparator offset std in volts (given in V, or in LSB of the nominal match voltage)."""
    sa = cfg.sense_amp
    if sa.offset_sigma_lsb is not None:
        return sa.offset_sigma_lsb * lsb_voltage_v(cfg)
    return D.SA_OFFSET_SIGMA_V if sa.offset_sigma_v is None else sa.offset_sigma_v


def noise_sigma_v(cfg: AnalogConfig) -> float:
    """Dynamic comparator noise std per read in volts."""
    sa = cfg.sense_amp
    if sa.noise_sigma_lsb is not None:
        return sa.noise_sigma_lsb * lsb_voltage_v(cfg)
    return D.SA_NOISE_SIGMA_V if sa.noise_sigma_v is None else sa.noise_sigma_v


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


# ------------------------------------------------------------------------------- static draws
@dataclass
class PeripheryDraw:
    """Static per-chip draws of one layer: one value per (column tile, output line) (a leading chip
    axis when several chips are stacked)."""

    offset_v: torch.Tensor  # comparator offset, volts
    buffer_gain: torch.Tensor  # gain of the hold path


def draw_periphery(cfg: AnalogConfig, chip_seed: int, layer_index: int, n_col_tiles: int, rows: int,
                   device=None) -> PeripheryDraw:
    """Comparator offsets and buffer gains of one layer of one chip instance (drawn once per chip).
    The standard normals depend only on (chip seed, layer), not on the configured sigmas."""
    g = generator(chip_seed, "periphery", layer_index)
    z_off = torch.randn(n_col_tiles, rows, generator=g, dtype=torch.float64)
    z_gain = torch.randn(n_col_tiles, rows, generator=g, dtype=torch.float64)
    return PeripheryDraw((z_off * offset_sigma_v(cfg)).float().to(device), (1.0 + z_gain * cfg.buffer.gain_sigma).float().to(device))


# ------------------------------------------------------------------------------- the reads
@dataclass
class SlotRead:
    """One time slot's array reads: row currents (normalised) and, when the devices have per-read
    noise, its std (same layout). Handed over to :func:`sense`, which works in place on these
    tensors (the largest of an engine's pass): an engine passes freshly computed ones."""

    current: torch.Tensor
    read_std: torch.Tensor | None = None


@dataclass
class SenseStatic:
    """What the sense path of one column tile knows of the chips of a pass (per line: ``[K, 1, rows]``)."""

    cells: int  # cells of the tile's rows
    baseline: torch.Tensor  # calibrated zero-count current of one slot
    lsb: torch.Tensor  # calibrated current of one match
    correction_lsb: torch.Tensor  # subtracted from every count (trim, common-mode shift)
    offset_v: torch.Tensor  # static comparator offset
    gain: torch.Tensor  # static buffer gain
    volts_per_unit: float  # sense-node voltage of one unit of current

    def volts_to_lsb(self, volts: float) -> torch.Tensor:
        """A sense-node voltage in counts of each line: volts / (lsb * volts_per_unit)."""
        return volts / (self.lsb * self.volts_per_unit)


# ------------------------------------------------------------------------------- one function per effect
def add_slot(v: torch.Tensor | None, read: SlotRead, static: SenseStatic) -> torch.Tensor:
    """The slot's row currents in counts, added to the sense node (the first slot becomes it)."""
    x = read.current.div_(static.lsb)
    return x if v is None else v.add_(x)


def add_read_noise(v: torch.Tensor, read: SlotRead, static: SenseStatic, z) -> torch.Tensor:
    """Device read noise: each device's conductance fluctuates independently per read; the row
    current's std is read_sigma * sqrt(sum_j x_j G_j^2) (``read.read_std``)."""
    if read.read_std is None:
        return v
    return v.addcmul_(read.read_std.div_(static.lsb), z())


def hold(v: torch.Tensor, static: SenseStatic, cfg: AnalogConfig, z) -> torch.Tensor:
    """The residual buffer holding the tau1 MAC: static gain mismatch x droop, then kT/C noise."""
    v.mul_(static.gain * buffer_droop(cfg.buffer))
    s = ktc_sigma_v(cfg.buffer)
    return v.addcmul_(static.volts_to_lsb(s), z()) if s > 0 else v


def remove_baseline(v: torch.Tensor, static: SenseStatic, n_slots: int) -> torch.Tensor:
    """Subtract the calibrated baseline of every summed slot and the line's correction (trim); the
    static comparator offset adds."""
    return v.add_(static.volts_to_lsb(1.0) * static.offset_v - n_slots * static.baseline / static.lsb - static.correction_lsb)


def add_sense_noise(v: torch.Tensor, static: SenseStatic, cfg: AnalogConfig, z) -> torch.Tensor:
    """Dynamic comparator noise, per read."""
    s = noise_sigma_v(cfg)
    return v.addcmul_(static.volts_to_lsb(s), z()) if s > 0 else v


def adc(v: torch.Tensor, full_scale: int, bits: int | None) -> torch.Tensor:
    """Uniform ADC over [0, full scale] counts; with enough bits every count is resolved (rounding)."""
    if bits is None or 2 ** bits >= full_scale + 1:
        return v.round_()
    step = full_scale / (2 ** bits - 1)
    return v.div_(step).round_().mul_(step)


def clip(q: torch.Tensor, full_scale: int) -> torch.Tensor:
    """The ADC's input range: counts below 0 or above full scale saturate."""
    return q.clamp_(0.0, float(full_scale))


# ------------------------------------------------------------------------------- the whole path
def sense(reads: list[SlotRead], static: SenseStatic, cfg: AnalogConfig, noise=None) -> torch.Tensor:
    """Digitised counts ``[N, K, L, rows]`` of one column tile's reads (one or two time slots).

    ``noise`` (:class:`~.noise.ReadNoise` of the tile) supplies the per-read normals; it is asked
    only for the effects that are on. Every engine calls this one function, so their arithmetic is identical.
    The reads are consumed: the counts are computed in their memory.
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
    v = add_sense_noise(v, static, cfg, normals("sense", 0))
    full_scale = static.cells * len(reads)
    q = adc(v, full_scale, cfg.sense_amp.adc_bits)
    return clip(q, full_scale) if cfg.sense_amp.clip else q
