"""Engines that run chip instances of an analog configuration.

What the analog engines share: the chips (seeds), the mapping of layers onto sub-arrays, the
static periphery of each chip, and the MAC of a layer = row currents of every read
(:meth:`AnalogEngine.tile_currents`, the one thing an analog engine supplies) passed through the
one sense path (:func:`~imcnoise.imc.physics.sense.sense`), column tiles added digitally.
"""

from __future__ import annotations

import torch

from ..config import AnalogConfig
from ..physics.cell import nominal_off_ratio
from ..physics.devices import make_noise_model
from ..physics.noise import ReadNoise
from ..physics.sense import PeripheryDraw, SenseStatic, SlotRead, sense
from ..program import ChipProgram, LayerMap, XnorLayer, map_layer
from .base import Engine, Pass


def cells_tensor(m: LayerMap, device=None) -> torch.Tensor:
    """Cells per column tile of a layer map, ``[tiles, 1]``."""
    return torch.tensor([m.cells(c) for c in range(m.n_col_tiles)], dtype=torch.float32, device=device).view(-1, 1)


class AnalogEngine(Engine):
    def __init__(self, program: ChipProgram, config: AnalogConfig, chip_seeds: list[int], device: str | torch.device = "cpu"):
        super().__init__(program, device)
        self.config = config
        self.chip_seeds = [int(s) for s in chip_seeds]
        self.off_ratio = nominal_off_ratio(config.device)
        self.noise_model = make_noise_model(config.device)
        self.maps: dict[int, LayerMap] = {l.index: map_layer(l, config.array) for l in program.xnor_layers}
        self._cells = {i: cells_tensor(m, self.device) for i, m in self.maps.items()}
        # per layer: static periphery of the chips, tensors [tiles, rows] (one chip) or [K, tiles, rows]
        self.periphery: dict[int, PeripheryDraw] = {}

    @property
    def n_chips(self) -> int:
        return len(self.chip_seeds)

    def tile_currents(self, layer: XnorLayer, bits: torch.Tensor, chips: slice, squared: bool = False) -> torch.Tensor:
        """Row currents READS ``[N, Kc, L, tiles, rows]`` (normalised to G_on) of the chips ``chips``
        for one slot's input bits; ``squared``: the same reads on the squared conductances (the
        variance weights of device read noise, :func:`~imcnoise.imc.physics.cell.squared_conductance`)."""
        raise NotImplementedError

    def sense_static(self, layer: XnorLayer, chips: slice) -> SenseStatic:
        m, per = self.maps[layer.index], self.periphery[layer.index]
        shape = (-1, 1, m.n_col_tiles, layer.rows)
        return SenseStatic(self._cells[layer.index], self.off_ratio, per.offset_lsb.view(shape)[chips],
                           per.buffer_gain.view(shape)[chips])

    def mac(self, layer: XnorLayer, slots: list[torch.Tensor], p: Pass) -> torch.Tensor:
        read_sigma = self.config.device.read_sigma
        reads = [SlotRead(self.tile_currents(layer, s, p.chips),
                          self.tile_currents(layer, s, p.chips, squared=True).sqrt_().mul_(read_sigma) if read_sigma > 0 else None)
                 for s in slots]
        noise = ReadNoise(self.chip_seeds[p.chips], layer.index, p.index, p.T)
        counts = sense(reads, self.sense_static(layer, p.chips), self.config, noise)
        return counts.sum(dim=3) if counts.shape[3] > 1 else counts[:, :, :, 0]  # column tiles added digitally
