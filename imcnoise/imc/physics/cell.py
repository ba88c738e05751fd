"""The XNOR cell: a complementary device pair, and conductances on an exact grid.

A cell stores one weight bit w as a pair (G_A, G_B): bit 1 -> (G_on, G_off), bit 0 ->
(G_off, G_on). The input bit o drives line A and its complement 1 - o drives line B, so a row of
cells carries (device-parameters.md, "XNOR cell arithmetic")

    I = sum_j [o_j G_A,j + (1 - o_j) G_B,j] = sum_j G_B,j + sum_j o_j (G_A,j - G_B,j),

which with ideal devices is G_off * M + (G_on - G_off) * popcount(XNOR(w, o)).

Conductances are handled normalised to the nominal on-state conductance (1.0 = G_on) and held on
a grid of 2**-CONDUCTANCE_GRID_BITS (see :mod:`imcnoise.defaults`): every array MAC is then an
exact fp32 sum in any order, so every engine computes bit-identical currents.
:class:`XnorPairConverter` maps normalised weights to/from microsiemens for aihwkit's noise models.
"""

from __future__ import annotations

import torch
from aihwkit.inference.converter.base import BaseConductanceConverter

from ... import defaults as D
from ...runtime import compiled

GRID = float(2 ** D.CONDUCTANCE_GRID_BITS)


def quantize_conductance(g_norm: torch.Tensor) -> torch.Tensor:
    """Put normalised conductances on the 2**-12 grid in [0, CONDUCTANCE_MAX_NORM]."""
    return torch.round(g_norm.clamp(0.0, D.CONDUCTANCE_MAX_NORM) * GRID) / GRID


@compiled
def grid_product(g: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """quantize(g * w) in float64, as float32: conductances ``g`` weighted by (float64) ``w`` on the
    grid, in one fused loop (plain correctly rounded operations: the same bits compiled or not)."""
    return quantize_conductance(g.double() * w).float()


def squared_conductance(g: torch.Tensor) -> torch.Tensor:
    """G^2 on a 2**-8 grid: the weights of the read-noise variance. Coarse enough that the variance
    MAC is an exact fp32 sum in every engine (<= 512 cells x 64 x 2**8 < 2**24), fine enough for a std."""
    return torch.round(g.float() ** 2 * 256.0) / 256.0


def target_conductances(bits: torch.Tensor, off_ratio: float) -> torch.Tensor:
    """``[rows, cells]`` weight bits -> ``[rows, 2*cells]`` normalised targets: A = (1 | r), B = (r | 1)
    with r = G_off / G_on."""
    b = bits.float()
    ga = b + (1 - b) * off_ratio
    gb = (1 - b) + b * off_ratio
    return torch.cat([ga, gb], dim=1)


def nominal_off_ratio(device) -> float:
    """G_off / G_on of the nominal devices of a device configuration."""
    return device.g_off_siemens / device.g_on_siemens


def access_ratio(cfg) -> float:
    """a = R_access G_on,device: the access transistor's resistance in units of the on-state device's."""
    return cfg.cell.access_resistance_ohm * cfg.device.g_on_siemens


def cell_conductances(g_device: torch.Tensor, a: float) -> torch.Tensor:
    """Devices (normalised to the nominal on-state DEVICE, 1.0 = G_on,dev) in series with their access
    transistors (a = R_access G_on,dev) -> cells normalised to the nominal on-state CELL,
    G_on,cell = G_on,dev / (1 + a):

        g_cell = [G_on,dev g / (1 + a g)] / G_on,cell = g (1 + a) / (1 + a g),

    on the conductance grid (1 at g = 1; unchanged when a = 0)."""
    if a == 0:
        return g_device
    return _series_cells(g_device, torch.tensor(a, dtype=torch.float64, device=g_device.device))


@compiled
def _series_cells(g_device: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """:func:`cell_conductances` for a > 0 (``a`` a 0-d float64 tensor), as one fused loop."""
    g = g_device.double()
    return quantize_conductance(g * (1.0 + a) / (1.0 + a * g)).to(g_device.dtype)


class XnorPairConverter(BaseConductanceConverter):
    """Normalised tile weight (1.0 = G_on) <-> conductance in uS; one slice per physical device."""

    def __init__(self, g_on_us: float):
        if g_on_us <= 0:
            raise ValueError(f"g_on_us must be > 0, got {g_on_us}")
        self.g_on_us = float(g_on_us)
        self.g_max = float(g_on_us)  # aihwkit's noise models read g_max from their converter
        self.g_min = 0.0

    def __str__(self) -> str:
        return f"XnorPairConverter(g_on_us={self.g_on_us:.4g})"

    def convert_to_conductances(self, weights: torch.Tensor):
        return [weights * self.g_on_us], {}

    def convert_back_to_weights(self, conductances, params) -> torch.Tensor:
        if len(conductances) != 1:
            raise ValueError("XnorPairConverter expects exactly one conductance slice")
        return quantize_conductance(conductances[0] / self.g_on_us)
