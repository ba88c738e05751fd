"""Engines that run chip instances of an analog configuration.

What the analog engines share: the chips (seeds), the mapping of layers onto sub-arrays, the
static state of each chip (comparator offsets, buffer gains, the calibration of every line), and
the MAC of a layer = row currents of every read (:meth:`AnalogEngine.tile_currents`, the one thing
an analog engine supplies) passed through the one sense path
(:func:`~imcnoise.imc.physics.sense.sense`), column tiles added digitally.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import AnalogConfig, lsb_voltage_v, volts_per_unit
from ..physics.calibration import LayerArrays, LineCalibration, calibration_scheme
from ..physics.energy import LayerActivity
from ..physics.cell import GRID, nominal_off_ratio
from ..physics.devices import make_noise_model
from ..physics.noise import ReadNoise
from ..physics.sense import PeripheryDraw, SenseStatic, SlotRead, buffer_droop, draw_periphery, sense
from ..program import ChipProgram, LayerMap, XnorLayer, map_layer
from .base import Engine, Pass


@dataclass
class ChipState:
    """The static state of one layer of the engine's chips (``[tiles, rows]``, or ``[K, tiles, rows]``)."""

    periphery: PeripheryDraw
    calibration: LineCalibration


def stack_states(states: list[ChipState]) -> ChipState:
    s = lambda get: torch.stack([get(x) for x in states])
    return ChipState(PeripheryDraw(s(lambda x: x.periphery.offset_v), s(lambda x: x.periphery.buffer_gain)),
                     LineCalibration(s(lambda x: x.calibration.baseline), s(lambda x: x.calibration.lsb),
                                     s(lambda x: x.calibration.correction_lsb)))


class AnalogEngine(Engine):
    def __init__(self, program: ChipProgram, config: AnalogConfig, chip_seeds: list[int], device: str | torch.device = "cpu"):
        super().__init__(program, device)
        self.config = config
        self.chip_seeds = [int(s) for s in chip_seeds]
        self.off_ratio = nominal_off_ratio(config.device)
        self.noise_model = make_noise_model(config.device)
        self.maps: dict[int, LayerMap] = {l.index: map_layer(l, config.array) for l in program.xnor_layers}
        self._calibrate = calibration_scheme(config.calibration, self.off_ratio, self.noise_model, config.t_inference_s)
        self._volts_per_unit = volts_per_unit(config)
        self._zero_bits = {}
        for l in program.xnor_layers:
            bits = torch.from_numpy(l.bits)
            self._zero_bits[l.index] = torch.stack([(bits[:, a:b] == 0).sum(1) for a, b in self.maps[l.index].col_tiles])
        # per layer: static state of the chips, tensors [tiles, rows] (one chip) or [K, tiles, rows]
        self.state: dict[int, ChipState] = {}
        self.activity: list[dict[int, list[int]]] | None = None  # per chip, while recorded (energy): grid counts

    @property
    def n_chips(self) -> int:
        return len(self.chip_seeds)

    def chip_state(self, chip_seed: int, layer: XnorLayer, conductances: list[torch.Tensor]) -> ChipState:
        """Draw one layer's periphery of a chip and calibrate its lines against its programmed
        conductances (``[rows, 2*cells]`` per column tile)."""
        m = self.maps[layer.index]
        per = draw_periphery(self.config, chip_seed, layer.index, m.n_col_tiles, layer.rows)
        arrays = LayerArrays(chip_seed, layer.index, [m.cells(c) for c in range(m.n_col_tiles)], m.row_tiles,
                             conductances, self._zero_bits[layer.index], per.offset_v.double() / lsb_voltage_v(self.config),
                             layer.n_slots, per.buffer_gain.double() * buffer_droop(self.config.buffer))
        cal = self._calibrate(arrays)
        to = lambda t: t.to(self.device)
        return ChipState(PeripheryDraw(to(per.offset_v), to(per.buffer_gain)),
                         LineCalibration(to(cal.baseline), to(cal.lsb), to(cal.correction_lsb)))

    def tile_currents(self, layer: XnorLayer, bits: torch.Tensor, chips: slice, squared: bool = False) -> list[torch.Tensor]:
        """Row currents of every read, one READS tensor ``[N, Kc, L, rows]`` (normalised to G_on) per
        column tile, of the chips ``chips`` for one slot's input bits; ``squared``: the same reads
        on the squared conductances (the variance weights of device read noise,
        :func:`~imcnoise.imc.physics.cell.squared_conductance`). Fresh tensors: the sense path works in them."""
        raise NotImplementedError

    def sense_static(self, layer: XnorLayer, chips: slice, c: int) -> SenseStatic:
        """What the sense path of column tile ``c`` knows of the chips ``chips``."""
        m, st = self.maps[layer.index], self.state[layer.index]
        v = lambda t: t.view(-1, m.n_col_tiles, 1, layer.rows)[chips, c]
        return SenseStatic(m.cells(c), v(st.calibration.baseline), v(st.calibration.lsb), v(st.calibration.correction_lsb),
                           v(st.periphery.offset_v), v(st.periphery.buffer_gain), self._volts_per_unit)

    def mac(self, layer: XnorLayer, slots: list[torch.Tensor], p: Pass) -> torch.Tensor:
        read_sigma = self.config.device.read_sigma
        currents = [self.tile_currents(layer, s, p.chips) for s in slots]
        stds = [self.tile_currents(layer, s, p.chips, squared=True) if read_sigma > 0 else None for s in slots]
        nt = self.maps[layer.index].n_col_tiles
        if self.activity is not None:
            self._record_activity(layer, currents, p)
        total = None
        for c in range(nt):
            reads = [SlotRead(cur[c], None if std is None else std[c].sqrt_().mul_(read_sigma)) for cur, std in zip(currents, stds)]
            noise = ReadNoise(self.chip_seeds[p.chips], layer.index, p.index, p.T, c, nt)
            counts = sense(reads, self.sense_static(layer, p.chips, c), self.config, noise)
            total = counts if total is None else total.add_(counts)  # column tiles added digitally
        return total

    def _record_activity(self, layer: XnorLayer, currents: list[list[torch.Tensor]], p: Pass) -> None:
        """Summed row currents of every read, and squared ones of the held slot (energy). Currents
        lie on the conductance grid: counted in grid steps as integers, the sums are exact and do
        not depend on how images or chips were batched."""
        kc = currents[0][0].shape[1]
        units, held = [0] * kc, [0] * kc
        for s, slot in enumerate(currents):
            for t in slot:
                q = torch.round(t * GRID).to(torch.int64)  # exact
                for i, v in enumerate(q.sum(dim=(0, 2, 3)).tolist()):
                    units[i] += v
                if s == 0 and len(currents) == 2:
                    per_sample = (q * q).sum(dim=(2, 3))  # [N, Kc], < 2**61 each
                    for i in range(kc):
                        held[i] += sum(per_sample[:, i].tolist())
        for i in range(kc):
            a = self.activity[p.chips.start + i].setdefault(layer.index, [0, 0])
            a[0] += units[i]
            a[1] += held[i]

    def activity_per_inference(self, counts: dict[int, list[int]], images: int) -> dict[int, LayerActivity]:
        """A chip's recorded activity (integer grid counts) per inference, in units of the nominal G_on."""
        return {l: LayerActivity(u / GRID / images, h / GRID ** 2 / images) for l, (u, h) in counts.items()}
