"""Sensing schemes: how the cells of a sensing become the signal its sense path converts.

An engine computes, per read and per sensing (one summing line), ONE matrix-vector product of
the drive [x, 1 - x] (line A driven where the input bit is 1, line B where it is 0) with grid
weights (w_A, w_B) per cell -- the line's **signal** N = sum_j [x_j w_A,j + (1 - x_j) w_B,j] in
units of the nominal on-state cell conductance G_on -- and, with device read noise, the same
product with the squared weights. What the weights are, how N becomes a voltage at the sense
node, and what per-read noise it carries is the scheme, one class each:

* :class:`CurrentSensing`: the line is held at virtual ground; I = V_read G_on sum_j w_j G_read,j
  with the exact position weights of :mod:`.line` (wire resistance), so w_A = w G_A, w_B = w G_B;
  the sense stage's transimpedance Z gives V = I Z: one unit of N is V_read G_on Z volts, the
  same for every line.
* :class:`VoltageSensing`: the merged source line floats at
  V_SL = V_read (w . G_read) / (w . G_tot) (Thevenin, :mod:`.line`): the same weights, and one
  unit of N is V_read / (w . G_tot) -- each line's own total conductance. The ratio is the
  scheme's own error under variation: a line whose devices are all brighter by a factor has the
  same V_SL, but the match step V_read (G_on - G_off) / sum G_tot of a line differs from the
  reference rows' by its own sum (a static gain error per line), and its per-read noise follows
  from the equation (:meth:`VoltageSensing.read_variance`).
* :class:`BitwiseSensing`: every cell is read by a latch against a reference level, the XNOR bits
  are counted in exact digital logic: w_A,j = P(latch says "match" | x_j = 1), w_B,j the same for
  x_j = 0 -- 0 or 1 for a static chip (device spread, stuck-at faults, latch offset), a
  probability on the conductance grid with per-read noise (the latch's decision noise and the
  device's read noise, Gaussian at its input: Phi(margin / sigma)); the popcount's per-read
  variance is sum p (1 - p) (a second product), drawn as one normal per count.

**Mappings** (``chip.mapping``, :mod:`.mappings`): the above is the paper's ``xnor`` mapping; with
``gated`` only inputs at 1 drive their cells, both devices of each on a positive and a negative
line whose difference is sensed: w_A = w+ G+ - w- G-, w_B = 0, and the count is M1 + the signal.

All weights lie on the 2**-12 grid of :mod:`.cell`, so every engine's product is an exact fp32
sum in any order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..config import AnalogConfig, cell_g_on_siemens, cell_off_ratio, transimpedance_ohm, volts_per_unit
from .cell import grid_product, quantize_conductance, squared_conductance
from .line import position_weights
from .mappings import make_mapping


@dataclass
class SensingWeights:
    """What the engines need of one layer of one chip: per sensing s and row (line) ``[S, rows, n]``
    weights of line A and line B (zero beyond the sensing's cells), the squared ones when the
    devices have read noise, and per line ``[S, rows]`` the sense-node volts of one unit of
    signal (``vpu``) and the static total of the squared weights (``square_total``)."""

    w_a: torch.Tensor
    w_b: torch.Tensor
    sq_a: torch.Tensor | None
    sq_b: torch.Tensor | None
    vpu: torch.Tensor | float
    square_total: torch.Tensor | None = None

    @property
    def total(self) -> torch.Tensor:
        """sum_j (w_A + w_B) per line (float64; w_A + w_B of two grid weights is exact in their float32)."""
        return (self.w_a + self.w_b).double().sum(-1)

    def chip(self, k: int) -> "SensingWeights":
        """Chip ``k`` of weights stacked over chips (a leading axis)."""
        pick = lambda t: t if t is None or isinstance(t, float) else t[k]
        return SensingWeights(self.w_a[k], self.w_b[k], pick(self.sq_a), pick(self.sq_b), pick(self.vpu), pick(self.square_total))


class Scheme:
    name = ""
    analog = True  # the line's signal is an analog quantity converted by an ADC

    def __init__(self, cfg: AnalogConfig):
        self.cfg = cfg
        self.mapping = make_mapping(cfg)
        self.off_ratio = cell_off_ratio(cfg)
        # the wire resistance in units of the nominal on-state cell: r G_on
        self.r_norm = cfg.array.wire_resistance_ohm * cell_g_on_siemens(cfg)

    # ------------------------------------------------------------------ weights
    def _pair_lines(self, g_a: torch.Tensor, g_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Grid weights (w G_A, w G_B) of cells ``[S, rows, n]`` (normalised to G_on) with the exact
        IR-drop position weights w (:func:`.line.position_weights`; none when r = 0) of the line each
        device is on: one line loaded by G_A + G_B (xnor), or a line per device (gated)."""
        if self.r_norm == 0:
            return g_a.float(), g_b.float()
        if self.mapping.devices_share_a_line():
            w_p = w_m = position_weights((g_a + g_b).double(), self.r_norm)  # exact: grid values
        else:
            w_p, w_m = position_weights(g_a.double(), self.r_norm), position_weights(g_b.double(), self.r_norm)
        return grid_product(g_a, w_p), grid_product(g_b, w_m)

    def weights(self, g_a: torch.Tensor, g_b: torch.Tensor) -> SensingWeights:
        """The engines' weights of cells ``[S, rows, n]``: xnor (w G_A, w G_B), gated (w+ G+ - w- G-, 0)
        (:mod:`.mappings`), their squares when the devices have read noise, and volts per unit."""
        p, m = self._pair_lines(g_a, g_b)
        w_a, w_b = self.mapping.engine_weights(p, m)
        sq_a = sq_b = None
        if self.cfg.device.read_sigma > 0:
            sq_a, sq_b = self.mapping.squared_weights(squared_conductance(p), squared_conductance(m))
        return SensingWeights(w_a, w_b, sq_a, sq_b, self.vpu(w_a, w_b))

    def vpu(self, w_a: torch.Tensor, w_b: torch.Tensor) -> torch.Tensor | float:
        raise NotImplementedError

    # ------------------------------------------------------------------ per-read noise
    def read_std(self, signal: torch.Tensor, square: torch.Tensor, static: dict) -> torch.Tensor:
        """Std of the signal (units) from device read noise, per read, in place in ``square`` (the
        product of the drive with the squared weights: sum over the read devices of (w G)^2): each
        device fluctuates independently by read_sigma of its conductance, so std = read_sigma sqrt(square)."""
        return square.sqrt_().mul_(self.cfg.device.read_sigma)

    # ------------------------------------------------------------------ what a read draws
    def line_current_a(self, signal_units: float, total_units: float) -> float:
        """Current drawn from the drivers by one line whose signal is ``signal_units`` (and total
        conductance ``total_units``), in amperes."""
        return self.cfg.device.read_voltage_v * cell_g_on_siemens(self.cfg) * signal_units

    def line_power_w(self, signal_units: float, total_units: float) -> float:
        return self.cfg.device.read_voltage_v * self.line_current_a(signal_units, total_units)


class CurrentSensing(Scheme):
    """The line at virtual ground: I = V_read G_on N, V = Z I (one unit: V_read G_on Z)."""

    name = "current"

    def vpu(self, w_a, w_b):
        return volts_per_unit(self.cfg)


class VoltageSensing(Scheme):
    """The merged source line: V_SL = V_read N / (w . G_tot) (one unit: V_read / (w . G_tot) of the line).

    Per-read device noise: V_SL = V N / (N + N'), N' = sum over the non-read devices. With
    independent fluctuations dN (read devices) and dN' (non-read ones), to first order
    dV_SL = (V / S) [(1 - rho) dN - rho dN'], rho = N / S, S = N + N': in units of the line's
    signal (S / V) the variance is sigma^2 [(1 - rho)^2 sum_read (wG)^2 + rho^2 sum_nonread (wG)^2],
    with sum_nonread = sum_all - sum_read (static ``square_total``)."""

    name = "voltage"

    def vpu(self, w_a, w_b):
        return self.cfg.device.read_voltage_v / (w_a + w_b).double().sum(-1)  # w_a + w_b: exact (grid)

    def weights(self, g_a, g_b):
        sw = super().weights(g_a, g_b)
        if sw.sq_a is not None:
            sw.square_total = (sw.sq_a + sw.sq_b).double().sum(-1).float()  # sq_a + sq_b: exact (2^-8 grid)
        return sw

    def read_std(self, signal, square, static):
        total, square_total = static["total"], static["square_total"]  # per line: S = w . G_tot, sum_all (wG)^2
        rho = signal / total
        other = square_total - square
        return square.mul_((1 - rho) ** 2).add_(other.mul_(rho * rho)).sqrt_().mul_(self.cfg.device.read_sigma)

    def line_current_a(self, signal_units, total_units):
        """Current from the driven lines through the read devices into the floating line and out
        through the others: V G_on N (1 - N / S)."""
        v, g = self.cfg.device.read_voltage_v, cell_g_on_siemens(self.cfg)
        return v * g * signal_units * (1.0 - signal_units / total_units)


class BitwiseSensing(Scheme):
    """Each cell read by its own latch: P(match) per cell and input state as weights; popcount exact.

    A latch compares v_j = vpu G_read,j + offset (vpu = bit_margin / (1 - r): a nominal on / off
    read differ by bit_margin_v) with the reference level vpu G_ref. The decision is static
    without per-read noise; with the latch's decision noise sigma_n and the device's read noise
    (read_sigma G_read vpu) it is "match" with probability Phi(margin / sigma), margin =
    vpu (G_read - G_ref) + offset."""

    name = "bitwise"
    analog = False

    def latch_weights(self, g_a: torch.Tensor, g_b: torch.Tensor, ref: torch.Tensor, offset_v: torch.Tensor,
                      noise_v: float) -> SensingWeights:
        """``g_a``/``g_b`` ``[S, rows, n]``, ``ref`` the reference level per cell (units), ``offset_v``
        the latch offsets per cell (V, after trim): match probabilities (or bits) and, with noise,
        their variance weights p (1 - p)."""
        vpu = volts_per_unit(self.cfg)
        rs = self.cfg.device.read_sigma
        out = []
        for g in (g_a, g_b):
            margin = vpu * (g.double() - ref) + offset_v
            sig = torch.sqrt(noise_v ** 2 + (rs * vpu * g.double()) ** 2)
            if bool((sig == 0).all()):
                p = (margin > 0).double()
            else:
                p = torch.where(sig > 0, 0.5 * torch.erfc(-margin / (sig.clamp_min(1e-30) * math.sqrt(2.0))), (margin > 0).double())
            out.append(p)
        (pa, pb) = out
        present = g_a > 0  # cells beyond a sensing's end (padding) have no latch
        pa, pb = pa * present, pb * present
        dyn = noise_v > 0 or rs > 0
        qa, qb = quantize_conductance(pa).float(), quantize_conductance(pb).float()
        va = quantize_conductance(pa * (1 - pa)).float() if dyn else None
        vb = quantize_conductance(pb * (1 - pb)).float() if dyn else None
        return SensingWeights(*self.mapping.latch_weights(qa, qb, va, vb, present), 1.0)

    def read_std(self, signal, square, static):
        return square.sqrt_()  # sum of p (1 - p) over the driven cells: the popcount's variance

    def line_current_a(self, signal_units, total_units):
        return self.cfg.device.read_voltage_v * cell_g_on_siemens(self.cfg) * signal_units


SCHEMES = {"current": CurrentSensing, "voltage": VoltageSensing, "bitwise": BitwiseSensing}


def make_scheme(cfg: AnalogConfig) -> Scheme:
    return SCHEMES[cfg.sense_amp.scheme](cfg)


__all__ = ["SensingWeights", "Scheme", "CurrentSensing", "VoltageSensing", "BitwiseSensing", "SCHEMES", "make_scheme",
           "transimpedance_ohm"]
