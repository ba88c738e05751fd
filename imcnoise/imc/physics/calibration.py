"""Calibration of the sense path: each sub-array's baseline (zero-count current) and LSB (one match).

A row of n cells carries I = sum_j G_read,j, the sum of the device read in each cell: an on-state
device where the cell matches (XNOR = 1), an off-state device where it does not. With ideal devices
I = n G_off + dot (G_on - G_off); the ADC turns I into ``dot`` with a baseline b and an LSB l:

    count = (I - b) / l.

Which b and l the chip uses is the calibration scheme, one class each (all currents normalised to
the nominal on-state conductance, r = G_off / G_on nominal):

* :class:`NominalCalibration`: b = n r, l = 1 - r. Devices drawn lognormal with median = nominal
  have mean nominal * exp(sigma^2 / 2), so every read is biased by about (sigma^2/2) * sum(G) / (1 - r)
  LSB, the same sign in every line (device-parameters.md, "Calibration and the mean of a lognormal
  spread"). The simulator's numbers, not the chip's: kept to show the effect.
* :class:`ReferenceCalibration`: per sub-array, R all-on and R all-off reference columns built
  from devices of the same population, read once (at the start of inference, so after any drift):
  b = mean_r sum_j G_off,rj and l = (mean_r sum_j G_on,rj - b) / n. Unbiased; the finite-sample
  error of the references (~ sigma sqrt(n / R) G / (1 - r) LSB, common to the sub-array) stays.
  Reference lines are assumed read by a quiet, offset-free path (many averaged reads).
* :class:`TrimCalibration`: nominal b and l, and per output line a foreground offset calibration:
  with all inputs at 0 (every cell reads its B device; the ideal count is M1, the row's 0-bits in
  the tile) the line's error e = (sum_j G_B,j - n r) / (1 - r) + offset - M1 (per summed slot,
  through the buffer for a residual layer) is measured and a trim
  DAC of ``trim_bits`` over +-``trim_range_lsb`` (:func:`trim_dac`) subtracts it; what the DAC cannot resolve (its step
  and range) stays, and so does the input-dependent part of the device error.

Every scheme then adds the configured common-mode residue (``baseline_shift_lsb``, ``gain_shift``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import CalibrationConfig
from .devices import program_many
from ...seeding import derive_seed


@dataclass
class LineCalibration:
    """What the sense path of one layer of one chip knows: per (column tile, output line)."""

    baseline: torch.Tensor  # [tiles, rows] zero-count current of one slot (normalised)
    lsb: torch.Tensor  # [tiles, rows] current of one match (normalised)
    correction_lsb: torch.Tensor  # [tiles, rows] subtracted from every count (trim, common-mode shift)


@dataclass
class LayerArrays:
    """A layer of one chip as the calibration sees it."""

    chip_seed: int
    layer: int
    cells: list[int]  # per column tile
    row_tiles: tuple[tuple[int, int], ...]
    conductances: list[torch.Tensor]  # per column tile: programmed [rows, 2*cells] (A devices, then B)
    zero_bits: torch.Tensor  # [tiles, rows] M1 of each row in each tile (stored bits)
    offset_lsb: torch.Tensor  # [tiles, rows] static comparator offset in nominal LSB
    n_slots: int = 1  # time slots a read of this layer sums (2: residual layer)
    hold_gain: torch.Tensor | float = 1.0  # [tiles, rows] static buffer gain x droop of the held slot


class NominalCalibration:
    """b = n r, l = 1 - r: the nominal device values."""

    def __init__(self, cfg: CalibrationConfig, off_ratio: float, noise_model, t_inference_s: float):
        self.cfg, self.r = cfg, off_ratio
        self.noise_model, self.t_inference_s = noise_model, t_inference_s

    def _nominal(self, a: LayerArrays) -> LineCalibration:
        rows = a.zero_bits.shape[1]
        cells = torch.tensor(a.cells, dtype=torch.float64).view(-1, 1).expand(-1, rows)
        return LineCalibration(cells * self.r, torch.full_like(cells, 1.0 - self.r), torch.zeros_like(cells))

    def line_calibration(self, a: LayerArrays) -> LineCalibration:
        return self._nominal(a)

    def __call__(self, a: LayerArrays) -> LineCalibration:
        c = self.line_calibration(a)
        return LineCalibration(c.baseline.float(), (c.lsb * (1.0 + self.cfg.gain_shift)).float(),
                               (c.correction_lsb - self.cfg.baseline_shift_lsb).float())


class ReferenceCalibration(NominalCalibration):
    """b = mean_r sum_j G_off,rj, l = (mean_r sum_j G_on,rj - b) / n over R reference columns per sub-array."""

    def line_calibration(self, a: LayerArrays) -> LineCalibration:
        R, r = self.cfg.reference_columns, self.r
        rows = a.zero_bits.shape[1]
        subs = [(c, ri, r0, r1) for c in range(len(a.cells)) for ri, (r0, r1) in enumerate(a.row_tiles)]
        targets = [torch.cat([torch.ones(R, a.cells[c]), torch.full((R, a.cells[c]), r)]).float() for c, *_ in subs]
        seeds = [derive_seed(a.chip_seed, "reference", a.layer, ri, c) for c, ri, *_ in subs]
        base = torch.empty(len(a.cells), rows, dtype=torch.float64)
        lsb = torch.empty_like(base)
        for (c, _, r0, r1), g in zip(subs, program_many(self.noise_model, targets, seeds, self.t_inference_s)):
            on, off = g[:R].double().sum(1).mean(), g[R:].double().sum(1).mean()
            base[c, r0:r1] = off
            lsb[c, r0:r1] = (on - off) / a.cells[c]
        return LineCalibration(base, lsb, torch.zeros_like(base))


class TrimCalibration(NominalCalibration):
    """Nominal b and l; per line a trim DAC cancels the static error measured with all inputs at 0.

    The calibration read runs the line as it operates: a residual layer's line sums both slots
    (the held one through the buffer's gain and droop), so the trim also takes out the static
    part of the buffer error at the reference input."""

    def line_calibration(self, a: LayerArrays) -> LineCalibration:
        nom = self._nominal(a)
        one = 1.0 - self.r
        slot = torch.stack([g[:, g.shape[1] // 2:].double().sum(1) for g in a.conductances]) / one  # [tiles, rows]
        sensed = slot if a.n_slots == 1 else slot * torch.as_tensor(a.hold_gain, dtype=torch.float64) + slot
        error = sensed - a.n_slots * nom.baseline / one + a.offset_lsb.double() - a.n_slots * a.zero_bits.double()
        return LineCalibration(nom.baseline, nom.lsb, trim_dac(error, self.cfg.trim_bits, self.cfg.trim_range_lsb))


def trim_dac(error_lsb: torch.Tensor, bits: int, range_lsb: float) -> torch.Tensor:
    """The trim a two's-complement DAC of ``bits`` over +-``range_lsb`` applies against a measured
    error (LSB): code = round(e / step) saturated to [-2**(bits-1), 2**(bits-1) - 1], step =
    range / 2**(bits-1). Residual: |e - trim| <= step / 2 inside the range."""
    half = 2 ** (bits - 1)
    step = range_lsb / half
    return (error_lsb / step).round().clamp(-half, half - 1) * step


SCHEMES = {"nominal": NominalCalibration, "reference": ReferenceCalibration, "trim": TrimCalibration}


def calibration_scheme(cfg: CalibrationConfig, off_ratio: float, noise_model, t_inference_s: float) -> NominalCalibration:
    return SCHEMES[cfg.mode](cfg, off_ratio, noise_model, t_inference_s)
