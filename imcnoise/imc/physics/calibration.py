"""Calibration of the sense path: each line's baseline (zero-count signal), LSB (one match) and trim,
measured through the chip's own noisy path.

A line (one sensing of one row) of n cells carries the signal N = sum_j w_j G_read,j (:mod:`.schemes`):
an on-state device where the cell matches (XNOR = 1), an off-state one where it does not. With
ideal devices N = n G_off + dot (G_on - G_off); the ADC turns N into ``dot`` with a baseline b and
an LSB l, count = (N - b) / l. Which b and l the chip uses, and whether it trims each line's
offset, is the scheme (all signals normalised to the nominal on-state cell, r = G_off / G_on):

* :class:`NominalCalibration` (``nominal``): b = n r, l = 1 - r (as voltages of a nominal line:
  with voltage sensing a line's own sum of conductances scales them in its signal units). Devices drawn lognormal with
  median = nominal have mean nominal * exp(sigma^2 / 2), so every read is biased by about
  (sigma^2/2) sum(G) / (1 - r) LSB, the same sign in every line (device-parameters.md,
  "Calibration and the mean of a lognormal spread"). The simulator's numbers, not the chip's.
* :class:`ReferenceCalibration` (``reference``): per sub-array, R reference rows of devices of the
  same population (cells storing bit 1), read with every input at 1 (each cell reads its on-state
  device: the level of n matches) and at 0 (the level of 0 matches) through the same kind of line
  and sense path as any row (their own comparator offsets, device read noise, comparator noise),
  each averaged over ``reads`` reads: b = the mean low level, l = (mean high level - b) / n. The
  ADC's range follows from them. Unbiased; the finite-sample error of the references
  (~ sigma sqrt(n / R) G / (1 - r) LSB, common to the lines of a sub-array), their noise and
  offsets stay. With voltage sensing the levels are voltages (each reference row's own ratio),
  converted to each line's signal units with its own volts-per-unit.
* :class:`TrimCalibration` (``trim``): nominal b and l; per line a foreground offset
  calibration: with all inputs at 0 (every cell reads its B device; the ideal count is M1, the
  line's 0-bits) the line is read ``reads`` times through its sense path -- a residual layer's
  line sums both slots, the held one through the buffer (gain, droop, kT/C) -- and its mean error
  against M1 (x n_slots) is removed by a trim DAC of ``trim_bits`` over +-``trim_range_lsb``
  (:func:`trim_dac`); what the DAC cannot resolve (its step and range), the averaged noise and the
  input-dependent part of the device error stay.
* :class:`ReferenceTrimCalibration` (``reference_trim``): reference rows for b and l, then the trim;
  the reference rows' own comparators are auto-zero trimmed first (:func:`trimmed_offsets`).

Every scheme then adds the configured common-mode residue (``baseline_shift_lsb``, ``gain_shift``).
With ``chip.mapping: gated`` (:mod:`.schemes`) a 0 input reads nothing: the reference rows' low
level (all inputs 0) is the offset alone, and each line's zero-count level sits M1 match steps
below its zero-input level (:meth:`NominalCalibration._zero_count`); trim reads the zero input as
for xnor, which on a gated line measures its offset only (no device conducts).
``reads: null`` measures exactly, without noise or reference offsets (the legacy chip's
calibration: what the simulator knows). The bitwise scheme calibrates its latches instead
(:class:`LatchCalibration`): the reference level of every latch is the mean of a reference
on-state and off-state cell of its sub-array (reference modes) or the nominal midpoint, and with
trim each latch's offset is measured through its own noisy decision path and cancelled by a DAC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..config import AnalogConfig, CalibrationConfig
from .noise import normal_table, stream_key, stream_normals
from .sense import PeripheryDraw, SenseStatic, SlotRead, noise_sigma_v, sense


@dataclass
class LineCalibration:
    """What the sense path of one layer of one chip knows: per (sensing, output line) ``[S, rows]``."""

    baseline: torch.Tensor  # zero-count signal of one slot (normalised)
    lsb: torch.Tensor  # signal of one match (normalised)
    correction_lsb: torch.Tensor  # subtracted from every count (trim, common-mode shift)


@dataclass
class LayerLines:
    """A layer of one chip as the calibration sees it (``S`` sensings x ``rows`` lines)."""

    chip_seed: int
    layer: int
    cells: torch.Tensor  # [S] cells of each sensing
    w_a: torch.Tensor  # [S, rows, n] the lines' weights (:class:`.schemes.SensingWeights`)
    w_b: torch.Tensor
    sq_b: torch.Tensor | None  # squared B weights (read noise of a zero-input read)
    vpu: torch.Tensor | float  # [S, rows] volts per unit of signal
    static: dict  # per-line statics of the scheme's read noise (voltage sensing: total, square_total)
    zero_bits: torch.Tensor  # [S, rows] M1 of each line (stored bits)
    periphery: PeripheryDraw  # [S, rows] comparator offsets (V) and buffer gains of the lines
    n_slots: int  # time slots a read of this layer sums (2: residual layer)
    row_tile: torch.Tensor  # [rows] the row tile (sub-array) of each row
    ref_a: torch.Tensor | None = None  # [S, row tiles, R, n] reference rows' weights (on-state devices)
    ref_b: torch.Tensor | None = None  # [S, row tiles, R, n] (off-state devices)
    ref_sq_a: torch.Tensor | None = None
    ref_sq_b: torch.Tensor | None = None
    ref_vpu: torch.Tensor | float = 1.0  # [S, row tiles, R]
    ref_offset_v: torch.Tensor | None = None  # [S, row tiles, R]


class CalibrationNoise:
    """Per-read normals of calibration reads, keyed by (chip, purpose of the measurement, layer, effect,
    slot) and positioned by (read, line): independent of the inference's noise streams."""

    def __init__(self, chip_seed: int, layer: int, kind: str):
        self.chip_seed, self.layer, self.kind = chip_seed, layer, kind

    def stream(self, purpose: str, slot: int, shape: tuple, device=None):
        """Counters (key, first per read, position per line) of the reads ``[reads, 1, 1, *lines]``:
        read n of line p has counter key + n * lines + p."""
        key = stream_key(self.chip_seed, "calibration-noise", self.kind, purpose, self.layer, slot)
        lines = math.prod(shape[2:])
        first = torch.arange(shape[0], dtype=torch.int64, device=device) * lines
        return torch.tensor([key], dtype=torch.int64, device=device), first, torch.arange(lines, dtype=torch.int64,
                                                                                             device=device).view(shape[2:])

    def normals(self, purpose: str, slot: int, shape: tuple, device=None) -> torch.Tensor:
        """float64 normals of :meth:`stream` in ``shape``."""
        key, first, pos = self.stream(purpose, slot, shape, device)
        return stream_normals(first.view(-1, 1) + key.view(1, 1), pos.reshape(-1), normal_table(device, torch.float64)).view(shape)


def measure(signal: torch.Tensor, square: torch.Tensor | None, static: SenseStatic, cfg: AnalogConfig, scheme,
            scheme_static: dict, n_slots: int, reads: int | None, noise: CalibrationNoise) -> torch.Tensor:
    """The analog value the sense path produces for a constant signal (``[..lines]`` per slot),
    averaged over ``reads`` reads: ``sense(digitize=False)`` on ``[reads, 1, 1, *lines]`` (float64)."""
    r = 1 if reads is None else reads
    shape = (r, 1, 1) + tuple(signal.shape)
    mk = lambda t: t.double().expand(shape).clone()
    slots = []
    for s in range(n_slots):
        std = None
        if square is not None and reads is not None and cfg.device.read_sigma > 0:
            std = scheme.read_std(mk(signal), mk(square), scheme_static)
        slots.append(SlotRead(mk(signal), std))
    quiet = cfg if reads is not None else cfg.model_copy(update={
        "sense_amp": cfg.sense_amp.model_copy(update={"noise_sigma_v": 0.0, "noise_sigma_lsb": None}),
        "buffer": cfg.buffer.model_copy(update={"kt_c_noise": False})})
    v = sense(slots, static, quiet, noise, digitize=False)
    return v.mean(dim=(0, 1, 2))  # float64: the mean of the reads


class NominalCalibration:
    """b = n r, l = 1 - r: the nominal device values."""

    def __init__(self, cfg: AnalogConfig, scheme, off_ratio: float):
        self.cfg, self.scheme, self.r = cfg, scheme, off_ratio
        self.cal: CalibrationConfig = cfg.calibration

    def _nominal(self, a: LayerLines) -> LineCalibration:
        """b = n r, l = 1 - r at the sense node of a nominal line, in each line's signal units: the
        nominal levels are voltages (vpu_nom b, vpu_nom l), so a line with its own volts-per-unit
        (voltage sensing: V / sum G_tot of its devices) sees them scaled by vpu_nom / vpu."""
        rows = a.zero_bits.shape[1]
        cells = a.cells.double().view(-1, 1).expand(-1, rows)
        b, l = self.scheme.mapping.zero_input_level(cells, self.r), torch.full_like(cells, 1.0 - self.r)
        if not isinstance(a.vpu, float):  # voltage sensing: nominal vpu of an n-cell line is V / (n (1 + r))
            scale = (self.cfg.device.read_voltage_v / (cells * (1.0 + self.r))) / a.vpu.double()
            b, l = b * scale, l * scale
        return self._zero_count(a, LineCalibration(b, l, torch.zeros_like(cells)))

    def _zero_count(self, a: LayerLines, c: LineCalibration) -> LineCalibration:
        """The baseline b is the signal of a count of 0: xnor, the level of a row reading no match
        (what the reference rows measure); gated, M1 match steps below the zero-input level (the
        count is M1 + signal / l: :meth:`.mappings.Mapping.zero_count_level`)."""
        return LineCalibration(self.scheme.mapping.zero_count_level(c.baseline, c.lsb, a.zero_bits), c.lsb, c.correction_lsb)

    def line_calibration(self, a: LayerLines) -> LineCalibration:
        return self._nominal(a)

    def __call__(self, a: LayerLines) -> LineCalibration:
        c = self.line_calibration(a)
        return LineCalibration(c.baseline.float(), (c.lsb * (1.0 + self.cal.gain_shift)).float(),
                               (c.correction_lsb - self.cal.baseline_shift_lsb).float())

    # ------------------------------------------------------------------ shared measurements
    def reference_levels(self, a: LayerLines) -> LineCalibration:
        """b, l of every line from its sub-array's reference rows (high: all inputs 1, low: all 0)."""
        R = a.ref_a.shape[2]
        if self.cal.reads is None and self.cfg.sense_amp.scheme == "current":
            # exact, noise-free, one volts-per-unit for every line: the legacy arithmetic
            hi, lo = a.ref_a.double().sum(-1).mean(-1), a.ref_b.double().sum(-1).mean(-1)  # [S, row tiles]
            base, lsb = lo, (hi - lo) / a.cells.double().view(-1, 1)
        else:
            levels = []
            for kind, w, sq in (("reference-high", a.ref_a, a.ref_sq_a), ("reference-low", a.ref_b, a.ref_sq_b)):
                sig = w.double().sum(-1)  # [S, row tiles, R]
                square = None if sq is None else sq.double().sum(-1)
                ones = torch.ones_like(sig)
                offset = torch.zeros_like(sig) if self.cal.reads is None or a.ref_offset_v is None else a.ref_offset_v.double()
                vpu = a.ref_vpu if isinstance(a.ref_vpu, float) else a.ref_vpu.double()
                raw = SenseStatic(1, torch.zeros_like(sig), ones, torch.zeros_like(sig), offset, ones, vpu)
                st = {"total": (a.ref_a.double() + a.ref_b.double()).sum(-1), "square_total": None if sq is None else
                      (a.ref_sq_a.double() + a.ref_sq_b.double()).sum(-1)}
                v = measure(sig, square, raw, self.cfg, self.scheme, st, 1, self.cal.reads,
                            CalibrationNoise(a.chip_seed, a.layer, kind))  # in units of each reference row
                levels.append((v * vpu).mean(-1))  # volts, averaged over the R rows  [S, row tiles]
            hi_v, lo_v = levels
            per_line = lambda t: t[:, a.row_tile]  # [S, rows]
            vpu_line = a.vpu if isinstance(a.vpu, float) else a.vpu.double()
            base = per_line(lo_v) / vpu_line
            lsb = (per_line(hi_v) - per_line(lo_v)) / (vpu_line * a.cells.double().view(-1, 1))
            return self._zero_count(a, LineCalibration(base, lsb, torch.zeros_like(base)))
        per_line = lambda t: t[:, a.row_tile]
        return self._zero_count(a, LineCalibration(per_line(base), per_line(lsb), torch.zeros_like(per_line(base))))

    def trim(self, a: LayerLines, cal: LineCalibration) -> torch.Tensor:
        """The trim of every line: its zero-input reads through the sense path (with baseline and LSB
        ``cal``), their mean error against n_slots * M1, through the trim DAC."""
        zero_signal = a.w_b.double().sum(-1)  # every input 0: each cell reads its B device  [S, rows]
        square = None if a.sq_b is None else a.sq_b.double().sum(-1)
        st = SenseStatic(1, cal.baseline.double(), cal.lsb.double(), torch.zeros_like(cal.lsb.double()),
                         a.periphery.offset_v.double(), a.periphery.buffer_gain.double(),
                         a.vpu if isinstance(a.vpu, float) else a.vpu.double())
        v = measure(zero_signal, square, st, self.cfg, self.scheme, {k: None if t is None else t.double()
                                                                     for k, t in a.static.items()},
                    a.n_slots, self.cal.reads, CalibrationNoise(a.chip_seed, a.layer, "trim"))
        error = v - a.n_slots * a.zero_bits.double()
        return trim_dac(error, self.cal.trim_bits, self.cal.trim_range_lsb)


class ReferenceCalibration(NominalCalibration):
    def line_calibration(self, a: LayerLines) -> LineCalibration:
        return self.reference_levels(a)


class TrimCalibration(NominalCalibration):
    def line_calibration(self, a: LayerLines) -> LineCalibration:
        nom = self._nominal(a)
        return LineCalibration(nom.baseline, nom.lsb, self.trim(a, nom))


class ReferenceTrimCalibration(NominalCalibration):
    def line_calibration(self, a: LayerLines) -> LineCalibration:
        ref = self.reference_levels(a)
        return LineCalibration(ref.baseline, ref.lsb, self.trim(a, ref))


def trim_dac(error_lsb: torch.Tensor, bits: int, range_lsb: float) -> torch.Tensor:
    """The trim a two's-complement DAC of ``bits`` over +-``range_lsb`` applies against a measured
    error (LSB): code = round(e / step) saturated to [-2**(bits-1), 2**(bits-1) - 1], step =
    range / 2**(bits-1). Residual: |e - trim| <= step / 2 inside the range."""
    half = 2 ** (bits - 1)
    step = range_lsb / half
    return (error_lsb / step).round().clamp(-half, half - 1) * step


class LatchCalibration:
    """Bitwise scheme: the latches' reference level and (with trim) their offsets.

    Reference level of the latches of a sub-array: the mean over its reference rows of
    (G_on + G_off) / 2 of each reference cell pair (modes with reference rows), else the nominal
    (1 + r) / 2. Trim (modes with trim): each latch's offset is measured ``reads`` times through
    its noisy decision path (its decision noise averages as 1 / sqrt(reads)) and a DAC of
    ``trim_bits`` over +-``trim_range_lsb`` (one LSB = bit_margin_v) removes it."""

    def __init__(self, cfg: AnalogConfig, off_ratio: float):
        self.cfg, self.cal, self.r = cfg, cfg.calibration, off_ratio

    def reference(self, ref_a: torch.Tensor | None, ref_b: torch.Tensor | None, cells: torch.Tensor) -> torch.Tensor:
        """[S, row tiles] reference level (units)."""
        if self.cal.mode in ("reference", "reference_trim") and ref_a is not None:
            n = cells.double().view(-1, 1, 1)
            return ((ref_a.double().sum(-1) + ref_b.double().sum(-1)) / (2 * n)).mean(-1)
        S = cells.shape[0]
        return torch.full((S, 1), (1.0 + self.r) / 2, dtype=torch.float64)

    def residual_offset(self, offset_v: torch.Tensor, chip_seed: int, layer: int) -> torch.Tensor:
        """Latch offsets after calibration (V)."""
        if self.cal.mode not in ("trim", "reference_trim"):
            return offset_v.double()
        return trimmed_offsets(offset_v, self.cfg, chip_seed, layer, "latch-trim")


def trimmed_offsets(offset_v: torch.Tensor, cfg: AnalogConfig, chip_seed: int, layer: int, kind: str) -> torch.Tensor:
    """Comparator offsets (V) after an auto-zero trim: each comparator's offset, measured with its
    inputs shorted over ``reads`` decisions (its decision noise averages as 1 / sqrt(reads)), is
    cancelled by the trim DAC (``trim_bits`` over +-``trim_range_lsb`` nominal LSB). How the
    comparators of the reference rows and the bitwise latches are calibrated before they are used."""
    from ..config import lsb_voltage_v

    cal = cfg.calibration
    lsb = lsb_voltage_v(cfg)
    measured = offset_v.double()
    s = noise_sigma_v(cfg)
    if cal.reads is not None and s > 0:
        z = CalibrationNoise(chip_seed, layer, kind).normals("sense", 0, (1, 1) + tuple(offset_v.shape))[0, 0]
        measured = measured + s / math.sqrt(cal.reads) * z
    return offset_v.double() - trim_dac(measured / lsb, cal.trim_bits, cal.trim_range_lsb) * lsb


SCHEMES = {"nominal": NominalCalibration, "reference": ReferenceCalibration, "trim": TrimCalibration,
           "reference_trim": ReferenceTrimCalibration}


def calibration_scheme(cfg: AnalogConfig, scheme, off_ratio: float) -> NominalCalibration:
    return SCHEMES[cfg.calibration.mode](cfg, scheme, off_ratio)
