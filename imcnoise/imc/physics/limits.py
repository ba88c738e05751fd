"""What a buildable chip must respect: the currents, power, swing and line model of its operating point.

:func:`check_buildable` evaluates the nominal chip (nominal cells, worst-case inputs) and refuses a
configuration beyond a limit with a :class:`ChipLimitError` naming the limit's field, the value
and the limit, and the fields that set the value. Every engine calls it, and so does scenario
validation for every sweep point (a combination of axis values can exceed a limit that no single
value does). The limits (``chip.limits``, defaults and sources in :mod:`imcnoise.defaults`):

* ``cell_current_a`` -- the largest current through one device during a read (read disturb of an
  MTJ): current and bitwise sensing put the read voltage across the cell, V G_on; on a merged
  source line a read device sees V - V_SL, at most V G_on / (1 + r) (one match among mismatches);
* ``line_current_a`` -- the largest current in a summing line (electromigration): current sensing
  carries n V G_on into the sense stage (all cells matching); a merged source line carries only
  the currents between its cells, the largest suffix sum of the cells' injections
  V (G_read,j - rho G_tot,j) over worst-case patterns (:func:`.line.worst_patterns`); a bitwise read
  passes one cell's current per bit line;
* ``subarray_power_w`` -- the power one sub-array read draws from its drivers: rows_per_read x
  the sum over a row's sensings of the largest power of each line (V I_drawn; gated mapping with
  current sensing: both devices of every cell, n V^2 (G_on + G_off));
* ``ir_drop_fraction`` -- the largest deviation of a summing line's node voltages from their
  nominal value, relative to V_read (:func:`.line.worst_node_deviation`; for the gated mapping
  the bound of the xnor line, whose cells load it with G_on + G_off where a gated line's carry
  G_on or G_off: conservative). The line network is
  solved exactly for ohmic devices; beyond this deviation the devices' bias dependence (an MTJ's
  TMR falls with its voltage) makes the ohmic model wrong;
* the current sense stage's full-scale swing must fit the supply (checked by the schema).
"""

from __future__ import annotations


import torch

from ..config import AnalogConfig, cell_g_on_siemens, cell_off_ratio
from .line import worst_node_deviation, worst_patterns
from .mappings import make_mapping


class ChipLimitError(ValueError):
    """A configuration a real chip could not be built at; ``field`` is the limit's field."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def _fmt_a(i: float) -> str:
    return f"{i * 1e3:.3g} mA" if i >= 1e-3 else f"{i * 1e6:.3g} uA"


def cell_current_a(cfg: AnalogConfig) -> float:
    """Largest current through one device of a nominal read."""
    v, g, r = cfg.device.read_voltage_v, cell_g_on_siemens(cfg), cell_off_ratio(cfg)
    return v * g / (1.0 + r) if cfg.sense_amp.scheme == "voltage" else v * g


def line_current_a(cfg: AnalogConfig) -> float:
    """Largest current in one summing line (nominal cells, worst-case inputs)."""
    v, g, r, n = cfg.device.read_voltage_v, cell_g_on_siemens(cfg), cell_off_ratio(cfg), cfg.array.sensing_cells
    scheme = cfg.sense_amp.scheme
    if scheme == "current":
        return n * v * g
    if scheme == "bitwise":
        return v * g
    pats = worst_patterns(n)
    g_read = pats + (1 - pats) * r
    rho = g_read.sum(-1, keepdim=True) / (n * (1 + r))
    inj = g_read - rho * (1 + r)  # each cell's current into the line, units of V G_on
    suffix = inj.flip(-1).cumsum(-1).flip(-1)
    return float(suffix.abs().max()) * v * g


def line_power_w(cfg: AnalogConfig, n: int | None = None) -> float:
    """Largest power one line of ``n`` cells (default: a full sensing) draws from the drivers during a
    read (nominal cells)."""
    v, g, r = cfg.device.read_voltage_v, cell_g_on_siemens(cfg), cell_off_ratio(cfg)
    n = cfg.array.sensing_cells if n is None else n
    scheme = cfg.sense_amp.scheme
    if scheme == "voltage":  # V^2 G_on N (1 - N/S) for N = n r + d (1 - r), d = 0..n
        d = torch.arange(n + 1, dtype=torch.float64)
        nn = n * r + d * (1 - r)
        return float((nn * (1 - nn / (n * (1 + r)))).max()) * v * v * g
    if scheme == "current":  # every cell matching (gated: every input at 1, both devices of each conduct)
        return n * v * v * g * make_mapping(cfg).conducting_cell_units(r)
    return n * v * v * g  # every latch reading an on-state cell


def row_sensings(cfg: AnalogConfig) -> list[int]:
    """Cells of the sensings of one full sub-array row: full sensings, then the rest."""
    a = cfg.array
    full, rest = divmod(a.cols, a.sensing_cells)
    return [a.sensing_cells] * full + ([rest] if rest else [])


def subarray_power_w(cfg: AnalogConfig) -> float:
    """Largest power of one sub-array read: rows_per_read x the largest power of each sensing of a row."""
    return cfg.array.read_rows * sum(line_power_w(cfg, n) for n in row_sensings(cfg))


def _limits(cfg: AnalogConfig):
    """Every limit of the chip as (field of chip.limits, the chip's value, the limit, what the value
    is and what to change when it exceeds the limit)."""
    lim, a, dev, sa = cfg.limits, cfg.array, cfg.device, cfg.sense_amp
    drivers = ("chip.device.read_voltage_v, or raise chip.cell.access_resistance_ohm"
               + {"stt_mram": " or chip.device.r_p_ohm", "rram": " or chip.device.r_lrs_ohm"}.get(dev.model, ""))
    i_cell = cell_current_a(cfg)
    yield ("cell_current_a", i_cell, lim.cell_current_a,
           f"the largest current through one device, {_fmt_a(i_cell)} ({sa.scheme} sensing at {dev.read_voltage_v:g} V), "
           f"exceeds the limit {_fmt_a(lim.cell_current_a)} (read disturb); lower {drivers}")
    i_line = line_current_a(cfg)
    yield ("line_current_a", i_line, lim.line_current_a,
           f"the largest summing-line current, {_fmt_a(i_line)} ({sa.scheme} sensing of chip.array.cells_per_sensing = "
           f"{a.sensing_cells} cells at {dev.read_voltage_v:g} V), exceeds the limit {_fmt_a(lim.line_current_a)} "
           f"(electromigration); lower chip.array.cells_per_sensing or {drivers}")
    p = subarray_power_w(cfg)
    yield ("subarray_power_w", p, lim.subarray_power_w,
           f"one sub-array read draws up to {p * 1e3:.3g} mW (chip.array.rows_per_read = {a.read_rows} rows x sensings of "
           f"{'+'.join(str(n) for n in row_sensings(cfg))} cells, {sa.scheme} sensing at {dev.read_voltage_v:g} V), more "
           f"than the limit {lim.subarray_power_w * 1e3:.3g} mW; lower chip.array.rows_per_read or {drivers}")
    if sa.scheme != "bitwise" and a.wire_resistance_ohm > 0:
        dev_frac = worst_node_deviation(a.sensing_cells, cell_off_ratio(cfg), a.wire_resistance_ohm * cell_g_on_siemens(cfg),
                                        sa.scheme)
        yield ("ir_drop_fraction", dev_frac, lim.ir_drop_fraction,
               f"the summing line's IR drop moves its node voltages by up to {100 * dev_frac:.3g} % of the read voltage "
               f"({sa.scheme} sensing, chip.array.cells_per_sensing = {a.sensing_cells}, chip.array.wire_resistance_ohm = "
               f"{a.wire_resistance_ohm:g} Ohm per cell), more than the limit {100 * lim.ir_drop_fraction:.3g} %, beyond "
               "which the devices are not ohmic; lower chip.array.cells_per_sensing or chip.array.wire_resistance_ohm")


def check_buildable(cfg: AnalogConfig) -> None:
    """Raise :class:`ChipLimitError` naming the first limit the chip exceeds (see the module doc).
    Each limit is computed only once the ones before it hold."""
    for name, value, limit, what in _limits(cfg):
        if value > limit:
            raise ChipLimitError(f"chip.limits.{name}", f"chip.limits.{name}: {what}")
