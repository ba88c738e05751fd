"""Energy and latency of one inference on the configured chip, from the activity a run observed.

One function per component; the per-operation figures and their sources are in
:mod:`imcnoise.defaults` and the chip schema. Everything is per inference (one image, all T time
steps):

* **array** -- what the drivers deliver during the reads a run observed, V_read^2 G_on t_read x
  ``array_units`` (:class:`LayerActivity`, from the programmed conductances and the actual inputs;
  the scheme defines the units, :mod:`.schemes`): current sensing, the line's signal sum_j w_j
  G_read,j (a non-spike drives the complement line, so it costs as much as a spike); merged-line
  voltage sensing, N (1 - N / S) (the current through the read devices into the floating line and
  out through the others); bitwise, every cell's own read, d + (n - d) G_off / G_on for d matches;
  with the gated mapping only the cells whose input is 1 conduct, both devices of each at their
  nominal conductance, (1 + G_off / G_on) per driven cell (bitwise: device A of each, as its
  latch decided), and only their input lines are charged and their latches decide;
* **drivers** -- each input vector charges the input lines of a sub-array: cells * C_line *
  V_read^2 with C_line = rows * C_per_cell (the lines stay driven while the sub-array's rows are
  read in turn);
* **adc** -- one conversion per line (sensing x row) and input vector (a residual layer's two
  slots are summed on the buffer and converted once): FoM * 2^bits (Walden), bits = the
  configured resolution or the full one, ceil(log2(slots * cells + 1)); bitwise: one latch
  decision per cell and a popcount (n / 8 8-bit adds) per line;
* **buffer** -- holding the tau1 MAC on C_buf costs C_buf * V_held^2 per hold;
* **neurons** -- digital accumulation per output and time step: (sensings - 1) partial-sum adds,
  charge (+dot, -bias), compare, and a reset add per spike (B-SNN); a bias add and a compare (BNN);
* **first / output layer** -- full precision: the B-SNN's first layer accumulates its fan-out for
  each input spike (event-driven adds), the BNN's multiplies and adds every input; batch norm and
  the neuron per output; the output layer's inputs are binary, so it only adds: per incoming
  spike and time step (B-SNN), or +-w per input (BNN);
* **poisson** -- one LFSR step and comparison per pixel and time step (B-SNN).

Latency: the sub-arrays of a layer work in parallel, the input vectors of a layer (output
positions, slots, time steps) one after the other. A sub-array takes ceil(rows / rows_per_read)
reads per vector; each read drives its lines for t_read per slot, then its converters (one per
``adc_share`` lines) convert their lines one after the other, (bits + 1) SAR cycles each
(conversions are not overlapped with the next read). Layers run one after the other; the digital
layers run on DIGITAL_LANES MAC lanes at DIGITAL_CLOCK_HZ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ... import defaults as D
from ..config import AnalogConfig, cell_g_on_siemens, cell_off_ratio, volts_per_unit
from ..program.mapping import LayerMap, map_layer

if TYPE_CHECKING:  # the program is only read here (its layers' geometry), never built
    from ..program import ChipProgram

COMPONENTS = ("array", "drivers", "adc", "buffer", "neurons", "first_layer", "output_layer", "poisson")


@dataclass
class LayerActivity:
    """What one chip's binary layer did per inference (averaged over the images of a run)."""

    array_units: float = 0.0  # sum over all reads of the array energy in units of V_read^2 G_on t_read
    held_units_sq: float = 0.0  # sum over held (tau1) reads of the squared held signal, units^2 (one volts-per-unit)
    held_volts_sq: float | None = None  # the same in V^2 (lines with their own volts-per-unit: voltage sensing)
    driven_inputs: float | None = None  # gated mapping: input cells at 1 summed over the reads (None: every input drives a line)


@dataclass
class EnergyReport:
    """Joules per inference by layer and component, and the latency of one inference."""

    joules: dict[str, dict[str, float]] = field(default_factory=dict)  # layer name -> component -> J
    latency_s: float = 0.0
    array_ops: float = 0.0  # XNOR array operations (2 per cell read: XNOR + accumulate)

    @property
    def total_j(self) -> float:
        return sum(sum(c.values()) for c in self.joules.values())

    def by_component(self) -> dict[str, float]:
        out = {c: 0.0 for c in COMPONENTS}
        for comps in self.joules.values():
            for c, j in comps.items():
                out[c] += j
        return out

    @property
    def array_tops_per_w(self) -> float:
        """Array operations per joule of the analog part (array, drivers, ADC, buffer), in TOPS/W."""
        analog = sum(self.by_component()[c] for c in ("array", "drivers", "adc", "buffer"))
        return self.array_ops / analog / 1e12 if analog else math.nan

    def to_dict(self) -> dict:
        return {"total_nj": self.total_j * 1e9, "latency_us": self.latency_s * 1e6,
                "components_nj": {c: j * 1e9 for c, j in self.by_component().items()},
                "layers_nj": {l: {c: j * 1e9 for c, j in comps.items()} for l, comps in self.joules.items()}}


# ------------------------------------------------------------------------------- components
def array_energy(cfg: AnalogConfig, array_units: float) -> float:
    """V_read^2 * G_on * t_read per unit of summed array activity."""
    dev = cfg.device
    return dev.read_voltage_v ** 2 * cell_g_on_siemens(cfg) * cfg.sense_amp.read_time_s * array_units


def driver_energy(cfg: AnalogConfig, line_reads: float) -> float:
    """C_per_cell * V_read^2 per (input line x cell it crosses) charged."""
    return D.LINE_CAPACITANCE_PER_CELL_F * cfg.device.read_voltage_v ** 2 * line_reads


def adc_bits(cfg: AnalogConfig, cells: int, slots: int) -> int:
    bits = cfg.sense_amp.adc_bits
    return bits if bits is not None else max(1, math.ceil(math.log2(slots * cells + 1)))


def adc_energy(cfg: AnalogConfig, bits: int, conversions: float) -> float:
    """Walden figure of merit: FoM * 2^bits per conversion."""
    return cfg.sense_amp.adc_fom_j_per_step * 2 ** bits * conversions


def latch_energy(decisions: float, popcount_bits: float) -> float:
    """Bitwise sensing: one latch decision per cell read, and popcounts of n bits as n / 8 8-bit adds."""
    return D.E_LATCH_J * decisions + D.E_ADD8_J * popcount_bits / 8.0


def buffer_energy(cfg: AnalogConfig, act: LayerActivity) -> float:
    """C_buf * V_held^2 per hold, V_held = volts_per_unit * N."""
    if act.held_volts_sq is not None:
        return cfg.buffer.capacitance_f * act.held_volts_sq
    return cfg.buffer.capacitance_f * volts_per_unit(cfg) ** 2 * act.held_units_sq


def neuron_energy(adds: float) -> float:
    return D.E_ADD16_J * adds


def poisson_rate(images_u8, image_size: int) -> float:
    """Fraction of the B-SNN's input pixels that spike per time step: mean intensity / 255 over
    the images zero-padded to ``image_size`` (the Poisson encoding's expected rate)."""
    h, w = images_u8.shape[-2:]
    return float(images_u8.double().mean()) / 255.0 * (h * w) / (image_size * image_size)


def sensing_bits(cfg: AnalogConfig, m: LayerMap, slots: int) -> list[int]:
    return [adc_bits(cfg, m.sensing_cells(s), slots) for s in range(m.n_sensings)]


def vector_time_s(cfg: AnalogConfig, m: LayerMap, rows: int, slots: int) -> float:
    """Time a sub-array takes per input vector: its row reads, each driving its lines for t_read
    per slot and converting them (``adc_share`` lines per converter, (bits + 1) SAR cycles each)."""
    sa, a = cfg.sense_amp, cfg.array
    rows_sub = min(rows, a.rows)
    reads = math.ceil(rows_sub / a.read_rows)
    t_read = slots * sa.read_time_s
    if sa.scheme == "bitwise":
        return reads * t_read
    per_tile = max(len(m.tile_sensings(c)) for c in range(m.n_col_tiles))
    lines = min(a.read_rows, rows_sub) * per_tile
    bits = max(sensing_bits(cfg, m, slots))
    return reads * (t_read + min(sa.adc_share, lines) * (bits + 1) * sa.adc_bit_time_s)


# ------------------------------------------------------------------------------- the whole chip
def inference_energy(program: ChipProgram, cfg: AnalogConfig, activity: dict[int, LayerActivity],
                     spike_rates: dict[int, float], input_rate: float | None = None) -> EnergyReport:
    """Energy and latency per inference of ``program`` on a chip of ``cfg``.

    ``activity``: per binary layer, what a run measured per inference; ``spike_rates``: per layer
    the fraction of 1s of its outputs (a run's recording); ``input_rate``: the B-SNN's fraction of
    input pixels spiking per time step (its Poisson input), for the first layer's event-driven adds.
    """
    rep = EnergyReport()
    T, bsnn = program.timesteps, program.kind == "bsnn"
    bitwise = cfg.sense_amp.scheme == "bitwise"
    first, out = program.first, program.output
    size = program.image_size
    # first (digital) layer: conv 3x3 of in_channels -> C1 on size x size, batch norm, neuron
    c1 = first.out_features
    dense_macs = size * size * c1 * program.in_channels * 9
    if bsnn:
        rate = 0.5 if input_rate is None else input_rate
        adds = T * rate * size * size * program.in_channels * c1 * 9  # each input spike adds its fan-out
        e_first = adds * D.E_FP32_ADD_J + T * size * size * c1 * (D.E_FP32_MULT_J + 3 * D.E_FP32_ADD_J)
        rep.joules["input"] = {"poisson": T * size * size * program.in_channels * D.E_POISSON_J}
    else:
        e_first = dense_macs * (D.E_FP32_MULT_J + D.E_FP32_ADD_J) + size * size * c1 * (D.E_FP32_MULT_J + 2 * D.E_FP32_ADD_J)
    rep.joules[f"L{first.index}"] = {"first_layer": e_first}
    latency = T * dense_macs / (D.DIGITAL_LANES * D.DIGITAL_CLOCK_HZ)
    for l in program.xnor_layers:
        m = map_layer(l, cfg.array)
        act = activity.get(l.index, LayerActivity())
        vectors = T * l.positions  # input vectors per slot applied to every sub-array per inference
        reads = vectors * l.n_slots
        line_reads = reads * sum(m.cells(c) for c in range(m.n_col_tiles)) * l.rows  # lines x cells crossed
        if act.driven_inputs is not None:  # gated mapping: only the inputs at 1 charge their lines
            line_reads = act.driven_inputs * l.rows
        S = m.n_sensings
        if bitwise:
            decisions = reads * l.rows * l.cols if act.driven_inputs is None else act.driven_inputs * l.rows
            e_conv = latch_energy(decisions, reads * l.rows * l.cols)
        else:
            e_conv = sum(adc_energy(cfg, b, vectors * l.rows) for b in sensing_bits(cfg, m, l.n_slots))
        per_step = (S - 1) + (3 if bsnn else 2)  # partial sums, charge / bias, compare
        spikes = spike_rates.get(l.index, 0.0) * T * l.positions * l.rows if bsnn else 0.0
        rep.joules[f"L{l.index}"] = {
            "array": array_energy(cfg, act.array_units), "drivers": driver_energy(cfg, line_reads), "adc": e_conv,
            "buffer": 0.0 if bitwise else buffer_energy(cfg, act),
            "neurons": neuron_energy(vectors * l.rows * per_step + spikes)}
        rep.array_ops += 2.0 * reads * l.rows * l.cols
        latency += vectors * vector_time_s(cfg, m, l.rows, l.n_slots)
    # output layer: F inputs -> classes, summed over T
    f_in, classes = out.weight.shape[1], out.out_features
    last = program.xnor_layers[-1].index
    # binary inputs need no multiplier: a spike adds its weight, a +-1 activation adds or subtracts it
    if bsnn:
        e_out = T * spike_rates.get(last, 0.5) * f_in * classes * D.E_FP32_ADD_J + T * classes * D.E_FP32_ADD_J
    else:
        e_out = f_in * classes * D.E_FP32_ADD_J
    rep.joules[f"L{out.index}"] = {"output_layer": e_out}
    latency += T * f_in * classes / (D.DIGITAL_LANES * D.DIGITAL_CLOCK_HZ)
    rep.latency_s = latency
    return rep


__all__ = ["COMPONENTS", "LayerActivity", "EnergyReport", "inference_energy", "poisson_rate", "cell_off_ratio"]
