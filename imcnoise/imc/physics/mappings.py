"""How a binary row drives its cells (``chip.mapping``): one class per mapping.

Both mappings store weight bit b of a cell as the same complementary pair (G_A, G_B) = (G_on, G_off)
for b = 1 and (G_off, G_on) for b = 0 (:func:`.cell.target_conductances`); they differ in how the
input bit x drives the pair and how the count is read out.

* :class:`XnorMapping` (``xnor``, the paper's eq. 10): x drives line A and its complement 1 - x
  line B, both devices on one summing line, so every read senses one device of every cell:
  N = sum_j [x_j G_A,j + (1 - x_j) G_B,j] = n G_off + (G_on - G_off) popcount(XNOR(b, x)).
* :class:`GatedMapping` (``gated``, the paper's eq. 8 read differentially, as SNN crossbars do):
  the devices of cell j sit on a positive and a negative summing line and BOTH are driven by x_j
  (its input line at V x_j: a 0 input draws no current; the devices stay connected and load the
  lines, so the IR-drop weights of :mod:`.line` stay static). The sense stage takes the difference
  I+ - I- = V G_on sum_j x_j (w+ G+ - w- G-)_j: the engines' weights are w_A = w+ G+ - w- G- (signed,
  on the grid) and w_B = 0; with ideal devices the signal is (1 - r) sum_j x_j (2 b_j - 1), and the
  XNOR count follows digitally for any 0/1 inputs (the B-SNN's spikes and the BNN's +-1 bits alike)
  from XNOR(b, x) = (1 - b) + x (2 b - 1):

      popcount(XNOR(b, o)) = M1 + sum_j x_j (2 b_j - 1),   M1 = the row's 0-bits (a register),

  so each line's zero-count level sits M1 match steps below its zero-input level (the ADC's range is
  shifted by M1 per line and still spans 0..n counts). Device read noise comes from the driven
  cells only, var = read_sigma^2 sum_j x_j [(w+ G+)^2 + (w- G-)^2]: it grows with the number of
  active inputs, where the xnor row's is set by all n cells. With bitwise latches only the driven
  cells are read (device A against the reference, as the xnor row's x = 1 reads), each decision b'
  counting 2 b' - 1 (variance 4 p (1 - p)). The merged-line voltage scheme has no gated form: the
  two lines' totals depend on the stored weights (refused by the schema).
"""

from __future__ import annotations

import torch


class Mapping:
    name = ""
    every_cell_driven = True  # does a 0 input drive a line too?

    def devices_share_a_line(self) -> bool:
        """Both devices of a cell on one summing line (its IR-drop load is G_A + G_B)."""
        return True

    def engine_weights(self, p: torch.Tensor, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The engines' (w_A, w_B) from the position-weighted devices (w G_A, w G_B) ``p``, ``m``."""
        return p, m

    def squared_weights(self, sq_p: torch.Tensor, sq_m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The read-noise weights from the squared position-weighted devices."""
        return sq_p, sq_m

    def latch_weights(self, qa, qb, va, vb, present) -> tuple:
        """Bitwise: (w_A, w_B, variance weights) from the latch decisions' probabilities."""
        return qa, qb, va, vb

    def zero_input_level(self, cells: torch.Tensor, off_ratio: float) -> torch.Tensor:
        """Nominal signal of a line with every input at 0 (units of G_on): xnor, every cell reads its
        B device, whose nominal sum over a zero-count row is n r."""
        return cells * off_ratio

    def zero_count_level(self, level: torch.Tensor, lsb: torch.Tensor, zero_bits: torch.Tensor) -> torch.Tensor:
        """The baseline (signal of a count of 0) from the level of a row reading no match."""
        return level

    def conducting_cell_units(self, off_ratio: float) -> float:
        """Nominal conductance (units of G_on) of one cell read with its input at 1 and matching: xnor, its on-state device."""
        return 1.0


class XnorMapping(Mapping):
    name = "xnor"


class GatedMapping(Mapping):
    name = "gated"
    every_cell_driven = False

    def devices_share_a_line(self) -> bool:
        return False  # the positive line is loaded by the G+ devices, the negative one by the G- devices

    def engine_weights(self, p, m):
        return p - m, torch.zeros_like(p)

    def squared_weights(self, sq_p, sq_m):
        return sq_p + sq_m, torch.zeros_like(sq_p)  # both devices of a driven cell are read

    def latch_weights(self, qa, qb, va, vb, present):
        zero = torch.zeros_like(qa)  # a driven cell's decision counts 2 b - 1 (exact on the grid)
        return (2 * qa - 1) * present, zero, None if va is None else 4 * va, None if vb is None else zero

    def zero_input_level(self, cells, off_ratio):
        return torch.zeros_like(cells)  # a 0 input reads nothing

    def zero_count_level(self, level, lsb, zero_bits):
        return level - zero_bits.double() * lsb  # count = M1 + signal / lsb

    def conducting_cell_units(self, off_ratio):
        return 1.0 + off_ratio  # both devices of a driven cell conduct


MAPPINGS = {"xnor": XnorMapping, "gated": GatedMapping}


def make_mapping(cfg) -> Mapping:
    return MAPPINGS[cfg.mapping]()


__all__ = ["Mapping", "XnorMapping", "GatedMapping", "MAPPINGS", "make_mapping"]
