"""Fast Monte Carlo engine: K chip instances per pass, same draws and results as the aihwkit path.

A row's current is sum_j o_j (G_A,j - G_B,j) + sum_j G_B,j: one convolution (or matmul) with the
per-chip effective weights G_A - G_B plus a per-row constant replaces the 2M-input MVM of the
complementary pair. Column tiles are channel groups (a grouped convolution, groups = tiles).
Everything chip-independent (Poisson input, the digital first layer) is computed once per batch
and shared by the K chips. On the CPU the chips then go through the binary layers one after the
other (a channels-last convolution per chip, which oneDNN runs fastest and which keeps a chip's
activations in cache); on CUDA all K chips go through each layer together, as one grouped
convolution with groups = K * tiles.

Equivalence with :class:`~imcnoise.imc.engines.aihwkit.AnalogChip` is by construction: programmed
conductances come from the same noise-model calls under the same seeds
(:func:`~imcnoise.imc.physics.devices.program_conductances`), they lie on a 2**-12 grid so every MAC
is an exact fp32 sum in any summation order, and the periphery is the same sense path.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..config import AnalogConfig, ArrayConfig
from ..physics.cell import squared_conductance, target_conductances
from ..physics.devices import program_conductances, program_seed
from ..physics.sense import PeripheryDraw, draw_periphery
from ..program import ChipProgram, LayerMap, XnorLayer, map_layer
from .analog import AnalogEngine


class _Weights:
    """One set of per-chip effective weights of a layer: G_A - G_B per cell (conv ``[K, tiles*rows,
    per, k, k]``, fc ``[K, tiles, per, rows]``) and sum_j G_B,j per row (``[K, tiles, rows]``)."""

    def __init__(self, layer: XnorLayer, m: LayerMap, per: int, chips: list[list[torch.Tensor]], device):
        # chips[k][c]: normalised conductances [rows, 2*cells] of column tile c of chip k
        K, nt, rows = len(chips), m.n_col_tiles, layer.rows
        k2 = layer.kernel * layer.kernel if layer.kind == "conv" else 1
        shape = (K, nt, rows, per, layer.kernel, layer.kernel) if layer.kind == "conv" else (K, nt, rows, per)
        w = torch.zeros(shape)
        const = torch.zeros(K, nt, rows)
        for k in range(K):
            for c in range(nt):
                g = chips[k][c]
                cells = g.shape[1] // 2
                ga, gb = g[:, :cells], g[:, cells:]
                w[k, c, :, :cells // k2] = (ga - gb).view(rows, cells // k2, *shape[4:])
                const[k, c] = gb.sum(1)
        if layer.kind == "conv":
            self.w = w.reshape(K, nt * rows, per, layer.kernel, layer.kernel).to(device)
        else:
            self.w = w.transpose(2, 3).contiguous().to(device)
        self.const = const.to(device)


def _conv_per_chip(layer: XnorLayer, per: int, x: torch.Tensor, w: torch.Tensor, const: torch.Tensor) -> torch.Tensor:
    """CPU kernel: a channels-last convolution per chip (a ``[N, H, W, C]`` slice is channels-last
    already); oneDNN runs these ~2.5x faster than one grouped NCHW convolution."""
    K, nt, rows = const.shape
    n, h, wd = x.shape[0], x.shape[2], x.shape[3]
    bias = const.reshape(K, nt * rows)
    outs = [F.conv2d(x[:, min(k, x.shape[1] - 1)].permute(0, 3, 1, 2), w[k], bias[k], padding=layer.padding,
                     groups=nt).permute(0, 2, 3, 1) for k in range(K)]
    out = outs[0].unsqueeze(1) if K == 1 else torch.stack(outs, dim=1)
    return out.reshape(n, K, h * wd, nt, rows)


def _conv_grouped(layer: XnorLayer, per: int, x: torch.Tensor, w: torch.Tensor, const: torch.Tensor) -> torch.Tensor:
    """GPU kernel: one grouped convolution over all chips and column tiles."""
    K, nt, rows = const.shape
    n, h, wd = x.shape[0], x.shape[2], x.shape[3]
    xg = x.expand(n, K, *x.shape[2:]).permute(0, 1, 4, 2, 3).reshape(n, K * nt * per, h, wd)
    out = F.conv2d(xg, w.reshape(K * nt * rows, per, layer.kernel, layer.kernel), const.reshape(-1),
                   padding=layer.padding, groups=K * nt)
    return out.view(n, K, nt, rows, h * wd).permute(0, 1, 4, 2, 3)


def _fc(layer: XnorLayer, per: int, x: torch.Tensor, w: torch.Tensor, const: torch.Tensor) -> torch.Tensor:
    """Fully connected: one batched matrix product over chips and column tiles."""
    K, nt, rows = const.shape
    n = x.shape[0]
    xt = x.expand(n, K, x.shape[-1]).reshape(n, K * nt, per).transpose(0, 1)  # [K*nt, N, per]
    out = torch.bmm(xt, w.reshape(K * nt, per, rows))  # [K*nt, N, rows]
    out = out.view(K, nt, n, rows).permute(2, 0, 1, 3) + const.view(1, K, nt, rows)
    return out.unsqueeze(2)  # [N, K, 1, nt, rows]


class _LayerArrays:
    """The sub-arrays of one layer of K chips: currents and, with device read noise, squared currents."""

    def __init__(self, layer: XnorLayer, m: LayerMap, chips: list[list[torch.Tensor]], read_noise: bool, grouped: bool,
                 device):
        self.layer = layer
        self.per = max(b - a for a, b in (m.chan_groups if layer.kind == "conv" else m.col_tiles))
        self.nt = m.n_col_tiles
        self.currents = _Weights(layer, m, self.per, chips, device)
        self.squares = _Weights(layer, m, self.per, [[squared_conductance(g) for g in c] for c in chips], device) \
            if read_noise else None
        self.kernel = _fc if layer.kind == "fc" else (_conv_grouped if grouped else _conv_per_chip)

    def mvm(self, x: torch.Tensor, chips: slice, squared: bool = False) -> torch.Tensor:
        """READS ``[N, Kc, L, tiles, rows]`` of the chips ``chips`` for BITS / BITS_FC ``x`` (chip axis Kc or 1)."""
        ws = self.squares if squared else self.currents
        pad = self.nt * self.per - x.shape[-1]  # channel groups padded to equal width (zero weights)
        if pad:
            x = F.pad(x, (0, pad))
        return self.kernel(self.layer, self.per, x, ws.w[chips], ws.const[chips])


class FastChipBatch(AnalogEngine):
    """K chip instances (seeds) of one chip program under one analog configuration.

    ``grouped``: all chips through each layer at once (default on CUDA) instead of chip by chip.
    """

    def __init__(self, program: ChipProgram, config: AnalogConfig, chip_seeds: list[int], device: str | torch.device = "cpu",
                 grouped: bool | None = None):
        super().__init__(program, config, chip_seeds, device)
        self.grouped = self.device.type == "cuda" if grouped is None else bool(grouped)
        read = config.device.read_sigma > 0
        self.arrays: dict[int, _LayerArrays] = {}
        for layer in program.xnor_layers:
            m = self.maps[layer.index]
            bits = torch.from_numpy(layer.bits)
            chips = []
            for seed in self.chip_seeds:
                tiles = []
                for c, (c0, c1) in enumerate(m.col_tiles):
                    rows = [program_conductances(self.noise_model, target_conductances(bits[r0:r1, c0:c1], self.off_ratio),
                                                 program_seed(seed, layer.index, ri, c), config.t_inference_s)
                            for ri, (r0, r1) in enumerate(m.row_tiles)]
                    tiles.append(torch.cat(rows, dim=0).float())
                chips.append(tiles)
            self.arrays[layer.index] = _LayerArrays(layer, m, chips, read, self.grouped, self.device)
            per = [draw_periphery(config, s, layer.index, m.n_col_tiles, layer.rows, self.device) for s in self.chip_seeds]
            self.periphery[layer.index] = PeripheryDraw(torch.stack([p.offset_lsb for p in per]),
                                                        torch.stack([p.buffer_gain for p in per]))

    @property
    def K(self) -> int:
        return self.n_chips

    def chip_groups(self) -> list[slice]:
        return [slice(0, self.K)] if self.grouped else [slice(k, k + 1) for k in range(self.K)]

    def tile_currents(self, layer: XnorLayer, bits: torch.Tensor, chips: slice, squared: bool = False) -> torch.Tensor:
        return self.arrays[layer.index].mvm(bits, chips, squared)


def auto_k(program: ChipProgram, batch_size: int, device: torch.device, array: ArrayConfig | None = None,
           budget_fraction: float = 0.25, cap: int = 64) -> int:
    """How many chip instances to evaluate per pass.

    On the GPU all K chips are in memory together (grouped convolutions): K is what fits in a
    fraction of the free device memory, from the largest layer's activations per chip (inputs,
    per-tile currents of both slots, noise, the fp64 membrane). On the CPU chips run one after the
    other and share only the input and first layer, so memory does not limit K: the cap applies.
    """
    if device.type != "cuda":
        return cap
    per_chip = max(chip_bytes_per_sample(l, map_layer(l, array or ArrayConfig())) for l in program.xnor_layers)
    per_chip *= program.timesteps * batch_size
    free, _ = torch.cuda.mem_get_info(device)
    return int(max(1, min(cap, budget_fraction * free // max(1, per_chip))))


def chip_bytes_per_sample(layer: XnorLayer, m: LayerMap) -> int:
    """Device memory one chip needs per sample (image x time step) in one layer: input bits, fp32
    per-tile currents of both slots and their noise, and the fp64 membrane."""
    L = layer.positions
    act = layer.in_features * (layer.in_size ** 2 if layer.kind == "conv" else 1)
    return 4 * (act + 3 * m.n_col_tiles * layer.rows * L) + 8 * 2 * layer.rows * L
