"""Analog XNOR chip on aihwkit tiles (the reference analog path).

Each column tile x row tile of a folded layer is one aihwkit ``TorchInferenceTile`` whose
``2 * cells`` inputs are the A lines (driven by the input bit o) and the B lines (driven by
1 - o) of its cells. Device effects enter through aihwkit's ``program_weights`` /
``drift_weights`` with our noise models (:mod:`imcnoise.imc.physics.devices`), on the devices'
target conductances (:func:`~imcnoise.imc.physics.cell.target_conductances`). The programmed
devices then become cells (access transistors) and line weights (the scheme, IR drop) through the
same physics as every engine, and the tile's forward weights are set to those line weights: a
sensing's signal is the tile's MVM of a drive vector that drives only the sensing's cells (the
MVM itself is ideal, ``forward.is_perfect``). Everything after the line is the shared sense path.

A chip instance is defined by its seed: every programming draw is made under torch's generator
seeded with ``program_seed(chip_seed, layer, row_tile, col_tile)``, the comparator offsets and
buffer gains from ``derive_seed(chip_seed, "periphery", layer)``, reference rows from
``derive_seed(chip_seed, "reference", ...)``, and per-read noise from counter-based streams keyed
by image index (:mod:`imcnoise.imc.physics.noise`), so results do not depend on batching.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..config import AnalogConfig
from ..physics.cell import target_conductances
from ..physics.devices import program_seed
from ..program import ChipProgram, LayerMap, XnorLayer
from . import layouts as lay
from .analog import AnalogEngine


class AnalogChip(AnalogEngine):
    """One chip instance: a folded program on noisy XNOR sub-arrays built from aihwkit tiles."""

    def __init__(self, program: ChipProgram, config: AnalogConfig | None = None, chip_seed: int = 0,
                 device: str | torch.device = "cpu"):
        super().__init__(program, config or AnalogConfig(), [chip_seed], device)
        self._build_tiles()
        self.program_chip(chip_seed)

    @property
    def chip_seed(self) -> int:
        return self.chip_seeds[0]

    # ------------------------------------------------------------------ programming
    def _rpu_config(self):
        from aihwkit.simulator.configs import TorchInferenceRPUConfig

        cfg = TorchInferenceRPUConfig()
        cfg.forward.is_perfect = True  # the MVM is ideal; non-idealities are ours (devices, periphery)
        cfg.mapping.weight_scaling_omega = 0.0  # conductances are stored as they are, no digital rescaling
        cfg.drift_compensation = None
        cfg.noise_model = self.noise_model
        return cfg

    def _build_tiles(self) -> None:
        from aihwkit.simulator.tiles.inference_torch import TorchInferenceTile

        self.tiles: dict[int, list[list]] = {}
        for layer in self.program.xnor_layers:
            m = self.maps[layer.index]
            bits = torch.from_numpy(layer.bits)
            grid = []
            for (r0, r1) in m.row_tiles:
                row = []
                for (c0, c1) in m.col_tiles:
                    tile = TorchInferenceTile(r1 - r0, 2 * (c1 - c0), self._rpu_config())
                    tile.set_weights(target_conductances(bits[r0:r1, c0:c1], self.device_off_ratio), apply_weight_scaling=False)
                    tile.eval()
                    row.append(tile.to(self.device))
                grid.append(row)
            self.tiles[layer.index] = grid

    @torch.no_grad()
    def program_chip(self, chip_seed: int) -> None:
        """(Re)draw this chip instance: programming noise (aihwkit ``program_weights``), drift to
        ``t_inference_s``, then the cells, line weights, static periphery and calibration; the tiles'
        forward weights become the line weights."""
        self.chip_seeds = [int(chip_seed)]
        t_inf = self.config.t_inference_s
        self._squares = {}
        for layer in self.program.xnor_layers:
            m = self.maps[layer.index]
            for ri, row in enumerate(self.tiles[layer.index]):
                for ci, tile in enumerate(row):
                    with torch.random.fork_rng(devices=[]):
                        torch.manual_seed(program_seed(self.chip_seed, layer.index, ri, ci))
                        tile.program_weights()  # from the stored reference (target) conductances
                        if t_inf > 0:
                            tile.drift_weights(t_inf)
            devices = [self.device_conductances(layer.index, c) for c in range(m.n_col_tiles)]
            st = self.chip_layer(self.chip_seed, layer, devices)
            self.state[layer.index] = st
            signal = self._tile_layout(st.weights.w_a, st.weights.w_b, m)
            square = None if st.weights.sq_a is None else self._tile_layout(st.weights.sq_a, st.weights.sq_b, m)
            for ri, (r0, r1) in enumerate(m.row_tiles):
                for ci, tile in enumerate(self.tiles[layer.index][ri]):
                    tile.tile.set_weights(signal[ci][r0:r1])  # the forward weights: the line weights
            self._squares[layer.index] = square

    def device_conductances(self, layer_index: int, col_tile: int) -> torch.Tensor:
        """Programmed device conductances ``[rows, 2*cells]`` of one column tile (all row tiles); read
        right after programming, before the forward weights become the line weights."""
        return torch.cat([row[col_tile].get_weights()[0] for row in self.tiles[layer_index]], dim=0).cpu()

    def conductances(self, layer_index: int, col_tile: int) -> torch.Tensor:
        """The tiles' forward weights ``[rows, 2*cells]`` of one column tile: the line weights of its sensings."""
        return torch.cat([row[col_tile].get_weights()[0] for row in self.tiles[layer_index]], dim=0)

    @staticmethod
    def _tile_layout(w_a: torch.Tensor, w_b: torch.Tensor, m: LayerMap) -> list[torch.Tensor]:
        """Sensing weights ``[S, rows, n]`` -> per column tile ``[rows, 2*cells]`` (A lines, then B)."""
        out = []
        for c in range(m.n_col_tiles):
            cells, c0 = m.cells(c), m.col_tiles[c][0]
            t = torch.zeros(w_a.shape[1], 2 * cells, dtype=w_a.dtype)
            for s in m.tile_sensings(c):
                a, b = m.sensings[s]
                t[:, a - c0:b - c0] = w_a[s, :, :b - a].cpu()
                t[:, cells + a - c0:cells + b - c0] = w_b[s, :, :b - a].cpu()
            out.append(t)
        return out

    # ------------------------------------------------------------------ analog MAC
    def _tile_inputs(self, layer: XnorLayer, m: LayerMap, c: int, bits: torch.Tensor) -> torch.Tensor:
        """Input bits of column tile c for every read: ``[N, L, cells]``."""
        if layer.kind == "conv":
            g0, g1 = m.chan_groups[c]
            p = F.unfold(lay.nchw(bits)[:, g0:g1].float(), layer.kernel, padding=layer.padding)  # bit-0 padding
            return p.transpose(1, 2)
        c0, c1 = m.col_tiles[c]
        return bits[:, None, c0:c1].float()

    def read_signals(self, layer: XnorLayer, bits: torch.Tensor, chips: slice, squared: bool = False) -> torch.Tensor:
        m = self.maps[layer.index]
        out = [None] * m.n_sensings
        for c in range(m.n_col_tiles):
            x = self._tile_inputs(layer, m, c, bits[:, 0])
            n, L, cells = x.shape
            c0 = m.col_tiles[c][0]
            for s in m.tile_sensings(c):
                a, b = m.sensings[s]
                drive = torch.zeros(n * L, 2 * cells, device=x.device)
                xs = x.reshape(n * L, cells)[:, a - c0:b - c0]
                drive[:, a - c0:b - c0] = xs  # A lines: o
                drive[:, cells + a - c0:cells + b - c0] = 1 - xs  # B lines: 1 - o; the other sensings undriven
                if squared:
                    i = drive @ self._squares[layer.index][c].to(x.device).T
                else:
                    i = torch.cat([row[c](drive) for row in self.tiles[layer.index]], dim=1)
                out[s] = i.view(n, 1, L, -1)
        return torch.stack(out, dim=3)  # [N, K=1, L, S, rows]
