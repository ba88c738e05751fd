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
from ..physics.devices import program_many, program_seed
from ..program import ChipProgram, LayerMap, XnorLayer, map_layer
from .analog import AnalogEngine, stack_states


class _Weights:
    """One set of per-chip effective weights of a layer -- G_A - G_B per cell and sum_j G_B,j per
    row (``const``, ``[K, tiles, rows]``) -- in the layout of the kernel that uses them:
    ``tiles`` (a list per chip of ``[rows, channels of the tile, k, k]``), ``grouped`` (``[K,
    tiles*rows, per, k, k]``, channel groups zero-padded to ``per``) or ``fc`` (``[K, tiles, per, rows]``)."""

    def __init__(self, layer: XnorLayer, m: LayerMap, per: int, chips: list[list[torch.Tensor]], layout: str, device):
        # chips[k][c]: normalised conductances [rows, 2*cells] of column tile c of chip k
        K, nt, rows = len(chips), m.n_col_tiles, layer.rows
        kk = (layer.kernel, layer.kernel) if layer.kind == "conv" else ()
        k2 = layer.kernel * layer.kernel if layer.kind == "conv" else 1
        const = torch.zeros(K, nt, rows)
        tiles = [[None] * nt for _ in range(K)]
        for k in range(K):
            for c in range(nt):
                g = chips[k][c]
                cells = g.shape[1] // 2
                ga, gb = g[:, :cells], g[:, cells:]
                tiles[k][c] = (ga - gb).reshape(rows, cells // k2, *kk)
                const[k, c] = gb.sum(1)
        self.const = const.to(device)
        if layout == "tiles":
            self.tiles = [[t.contiguous().to(device) for t in chip] for chip in tiles]
            return
        w = torch.zeros(K, nt, rows, per, *kk)
        for k in range(K):
            for c in range(nt):
                w[k, c, :, :tiles[k][c].shape[1]] = tiles[k][c]
        self.w = (w.reshape(K, nt * rows, per, *kk) if layout == "grouped" else w.transpose(2, 3).contiguous()).to(device)


def _conv_tiles(layer: XnorLayer, m: LayerMap, per: int, x: torch.Tensor, ws: _Weights, chips: slice) -> list[torch.Tensor]:
    """CPU kernel: per chip, one channels-last convolution per column tile (no padding of the
    channel groups; oneDNN runs these up to ~2x faster than one grouped convolution)."""
    const = ws.const[chips]
    K, nt, rows = const.shape
    n, h, wd = x.shape[0], x.shape[2], x.shape[3]
    tiles = [[] for _ in range(nt)]
    for i, k in enumerate(range(chips.start, chips.stop)):
        xk = x[:, min(i, x.shape[1] - 1)]  # [N, H, W, C], a channels-last slice
        for c, (g0, g1) in enumerate(m.chan_groups):
            y = F.conv2d(xk[..., g0:g1].permute(0, 3, 1, 2), ws.tiles[k][c], const[i, c], padding=layer.padding)
            tiles[c].append(y.permute(0, 2, 3, 1).reshape(n, 1, h * wd, rows))  # channels-last output: a view
    return [t[0] if K == 1 else torch.cat(t, dim=1) for t in tiles]


def _conv_grouped(layer: XnorLayer, m: LayerMap, per: int, x: torch.Tensor, ws: _Weights, chips: slice) -> list[torch.Tensor]:
    """GPU kernel: one grouped convolution over all chips and column tiles."""
    w, const = ws.w[chips], ws.const[chips]
    K, nt, rows = const.shape
    x = _pad_groups(x, nt * per)
    n, h, wd = x.shape[0], x.shape[2], x.shape[3]
    xg = x.expand(n, K, *x.shape[2:]).permute(0, 1, 4, 2, 3).reshape(n, K * nt * per, h, wd)
    out = F.conv2d(xg, w.reshape(K * nt * rows, per, layer.kernel, layer.kernel), const.reshape(-1),
                   padding=layer.padding, groups=K * nt)
    out = out.view(n, K, nt, rows, h * wd)
    return [out[:, :, c].transpose(2, 3) for c in range(nt)]


def _fc(layer: XnorLayer, m: LayerMap, per: int, x: torch.Tensor, ws: _Weights, chips: slice) -> list[torch.Tensor]:
    """Fully connected: one batched matrix product over chips and column tiles."""
    w, const = ws.w[chips], ws.const[chips]
    K, nt, rows = const.shape
    x = _pad_groups(x, nt * per)
    n = x.shape[0]
    xt = x.expand(n, K, x.shape[-1]).reshape(n, K * nt, per).transpose(0, 1)  # [K*nt, N, per]
    out = torch.bmm(xt, w.reshape(K * nt, per, rows)).view(K, nt, n, rows)
    return [(out[:, c].transpose(0, 1) + const[:, c]).unsqueeze(2) for c in range(nt)]  # [N, K, 1, rows]


def _pad_groups(x: torch.Tensor, width: int) -> torch.Tensor:
    """Zero inputs after the last channel / feature so that every column tile is ``per`` wide."""
    pad = width - x.shape[-1]
    return F.pad(x, (0, pad)) if pad else x


class _LayerArrays:
    """The sub-arrays of one layer of K chips: currents and, with device read noise, squared currents."""

    def __init__(self, layer: XnorLayer, m: LayerMap, chips: list[list[torch.Tensor]], read_noise: bool, grouped: bool,
                 device):
        self.layer, self.map = layer, m
        self.per = max(b - a for a, b in (m.chan_groups if layer.kind == "conv" else m.col_tiles))
        self.kernel, layout = ((_fc, "fc") if layer.kind == "fc" else (_conv_grouped, "grouped") if grouped
                               else (_conv_tiles, "tiles"))
        self.currents = _Weights(layer, m, self.per, chips, layout, device)
        self.squares = _Weights(layer, m, self.per, [[squared_conductance(g) for g in c] for c in chips], layout, device) \
            if read_noise else None

    def mvm(self, x: torch.Tensor, chips: slice, squared: bool = False) -> list[torch.Tensor]:
        """READS ``[N, Kc, L, rows]`` per column tile, of the chips ``chips`` for BITS / BITS_FC ``x``
        (chip axis Kc or 1)."""
        return self.kernel(self.layer, self.map, self.per, x, self.squares if squared else self.currents, chips)


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
            targets = [target_conductances(bits[r0:r1, c0:c1], self.off_ratio) for (c0, c1) in m.col_tiles for (r0, r1) in m.row_tiles]
            chips = []  # chips[k][c]: conductances [rows, 2*cells] of column tile c of chip k (row tiles stacked)
            for s in self.chip_seeds:
                seeds = [program_seed(s, layer.index, ri, c) for c in range(m.n_col_tiles) for ri in range(m.n_row_tiles)]
                g = iter(program_many(self.noise_model, targets, seeds, config.t_inference_s))
                chips.append([torch.cat([next(g) for _ in m.row_tiles]).float() for _ in m.col_tiles])
            self.arrays[layer.index] = _LayerArrays(layer, m, chips, read, self.grouped, self.device)
            self.state[layer.index] = stack_states([self.chip_state(s, layer, g) for s, g in zip(self.chip_seeds, chips)])

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
