"""Fast Monte Carlo engine: K chip instances per pass, same draws and results as the aihwkit path.

A line's signal is sum_j x_j (w_A,j - w_B,j) + sum_j w_B,j (:mod:`..physics.schemes`): one
convolution (or matmul) with the per-chip effective weights w_A - w_B plus a per-line constant
replaces the 2n-input MVM of the complementary pair. The sensings of a layer are channel groups
(a grouped convolution, groups = sensings, each group's channels gathered from the layer's input
with zero channels where a sensing is narrower). Everything chip-independent (Poisson input, the
digital first layer) is computed once per batch and shared by the K chips. On the CPU the chips
then go through the binary layers one after the other (which keeps a chip's activations in
cache); on CUDA all K chips go through each layer together, as one grouped convolution with
groups = K * sensings.

Equivalence with :class:`~imcnoise.imc.engines.aihwkit.AnalogChip` is by construction: programmed
conductances come from the same noise-model calls under the same seeds
(:func:`~imcnoise.imc.physics.devices.program_conductances`), the same physics turns them into line
weights, they lie on a 2**-12 grid so every MAC is an exact fp32 sum in any summation order, and
the periphery is the same sense path.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..config import AnalogConfig, ArrayConfig
from ..physics.devices import program_many, program_seed
from ..physics.cell import GRID, target_conductances
from ..physics.schemes import SensingWeights
from ..program import ChipProgram, LayerMap, XnorLayer, map_layer
from . import kernels
from .analog import AnalogEngine, stack_layers


def sensing_channels(layer: XnorLayer, m: LayerMap) -> tuple[torch.Tensor, int]:
    """Index of the input channel (conv) or feature (fc) of every (sensing, position in it), with
    the index ``C`` (one past the last) where a sensing is narrower than the widest: ``[S * per]``."""
    if layer.kind == "conv":
        groups = m.sensing_chans
        size = layer.in_features
    else:
        groups = m.sensings
        size = layer.in_features
    per = max(b - a for a, b in groups)
    idx = torch.full((len(groups), per), size, dtype=torch.long)
    for s, (a, b) in enumerate(groups):
        idx[s, :b - a] = torch.arange(a, b)
    return idx.view(-1), per


class _LayerKernel:
    """The per-chip effective weights of one layer in the layout of the kernel that uses them:
    conv ``[K, S*rows, per, k, k]`` (channel groups zero-padded to ``per``), fc ``[K, S, per, rows]``,
    and the per-line constant sum_j w_B,j ``[K, S*rows]``."""

    def __init__(self, layer: XnorLayer, m: LayerMap, w: SensingWeights, squared: bool, device):
        # w.w_a / w.w_b: [K, S, rows, n] (n = cells of the widest sensing)
        wa, wb = (w.sq_a, w.sq_b) if squared else (w.w_a, w.w_b)
        K, S, rows, n = wa.shape
        self.idx, self.per = sensing_channels(layer, m)
        c = layer.in_features
        # the sensings cover the channels in order, narrower only at the end: appending zero channels suffices
        self.tail = len(self.idx) - c if torch.equal(self.idx[:c], torch.arange(c)) else None
        self.idx = self.idx.to(device)
        d = (wa - wb).float()
        self.const = wb.double().sum(-1).float().reshape(K, S * rows).to(device)
        if layer.kind == "conv":
            k2 = layer.kernel * layer.kernel
            pad = self.per * k2 - n
            if pad:
                d = F.pad(d, (0, pad))
            self.w = d.reshape(K, S * rows, self.per, layer.kernel, layer.kernel).contiguous().to(device)
        else:
            if self.per - n:
                d = F.pad(d, (0, self.per - n))
            self.w = d.transpose(2, 3).contiguous().to(device)  # [K, S, per, rows]
        self.S, self.rows = S, rows
        self.cache = [{} for _ in range(K)]  # per chip: integer weights and the int8 kernel (kernels.conv_bits)


def _gather(x: torch.Tensor, idx: torch.Tensor, tail: int | None) -> torch.Tensor:
    """Input channels / features of every sensing (zero where a sensing is narrower): last axis ->
    ``idx``; when only the last sensing is narrower (``tail`` zero channels appended, the usual
    layout), a pad, or nothing at all."""
    if tail is not None:
        return F.pad(x, (0, tail)) if tail else x
    return F.pad(x, (0, 1)).index_select(-1, idx)


def _conv(layer: XnorLayer, x: torch.Tensor, k: _LayerKernel, chips: slice) -> torch.Tensor:
    """Per chip, one grouped channels-last convolution over the layer's sensings: READS ``[N, Kc, L, S, rows]``."""
    n, kx = x.shape[0], x.shape[1]
    h, wd = x.shape[2], x.shape[3]
    out = []
    for i, c in enumerate(range(chips.start, chips.stop)):
        xk = _gather(x[:, min(i, kx - 1)], k.idx, k.tail)  # [N, H, W, S*per], channels-last
        y = _conv_chip(layer, xk.permute(0, 3, 1, 2), k, c)  # [N, H, W, S*rows]
        out.append(y.reshape(n, 1, h * wd, k.S, k.rows))  # channels-last output: a view
    return out[0] if len(out) == 1 else torch.cat(out, dim=1)


def _conv_chip(layer: XnorLayer, x: torch.Tensor, k: _LayerKernel, c: int) -> torch.Tensor:
    """One chip's grouped convolution of 0/1 inputs ``x`` (``[N, S*per, H, W]``, channels-last) plus
    the per-line constant, channels-last ``[N, H, W, S*rows]``: fp32, or on the int8 units
    (:func:`.kernels.conv_bits`; the weights are integers on the 2**-12 grid, so both are exact and
    give the same bits). Which one is measured per shape (:func:`.kernels.choose`; ``IMCNOISE_MAC``
    overrides), the int8 side timed with its weight packing, which every chip pays anew: on a
    2-core Xeon with AMX (benchmarks/mc_throughput.py, 4 chips x 200 images, 1 thread) int8 took
    33.2 s against 23.6 s for the B-SNN -- the int8 kernels of 7-channel groups plus the digit
    recombination saved less than the packing cost."""
    w = k.w[c].reshape(-1, k.per, layer.kernel, layer.kernel)
    cache = k.cache[c]
    key = ("fast-conv", tuple(w.shape), k.S, layer.padding, tuple(x.shape))

    def w_int() -> torch.Tensor | None:
        """This chip's weights as grid integers (None if any is off the grid), made once per chip."""
        if "w_int" not in cache:
            wi = w * GRID
            cache["w_int"] = wi.to(torch.int64) if torch.equal(wi, wi.round()) else None
        return cache["w_int"]

    def fp32() -> torch.Tensor:
        return F.conv2d(x, w, k.const[c], padding=layer.padding, groups=k.S).permute(0, 2, 3, 1)

    def int8(fresh: bool = False) -> torch.Tensor:
        kc = {} if fresh else cache  # fresh: pay for packing this chip's weights, as every chip does
        return kernels.conv_bits(x, w, w_int(), 1.0 / GRID, k.S, layer.padding, kc) + k.const[c]

    # fp32 without making the integer weights where int8 cannot run or was measured slower for this shape
    if x.device.type != "cpu" or kernels.mode() == "fp32" or not kernels.int8_available() \
            or kernels.CHOICES.get(key) == "fp32" or w_int() is None:
        return fp32()
    return kernels.run_faster(key, int8, fp32, int8_as_measured=lambda: int8(fresh=True))


def _conv_grouped(layer: XnorLayer, x: torch.Tensor, k: _LayerKernel, chips: slice) -> torch.Tensor:
    """GPU kernel: one grouped convolution over all chips and sensings."""
    w, const = k.w[chips], k.const[chips]
    K = w.shape[0]
    xg = _gather(x, k.idx, k.tail)  # [N, Kx, H, W, S*per]
    n, h, wd = xg.shape[0], xg.shape[2], xg.shape[3]
    xg = xg.expand(n, K, *xg.shape[2:]).permute(0, 1, 4, 2, 3).reshape(n, K * k.S * k.per, h, wd)
    out = F.conv2d(xg, w.reshape(K * k.S * k.rows, k.per, layer.kernel, layer.kernel), const.reshape(-1),
                   padding=layer.padding, groups=K * k.S)
    return out.view(n, K, k.S, k.rows, h * wd).permute(0, 1, 4, 2, 3)


def _fc(layer: XnorLayer, x: torch.Tensor, k: _LayerKernel, chips: slice) -> torch.Tensor:
    """Fully connected: one batched matrix product over chips and sensings: ``[N, Kc, 1, S, rows]``."""
    w, const = k.w[chips], k.const[chips]
    K = w.shape[0]
    xg = _gather(x, k.idx, k.tail)  # [N, Kx, S*per]
    n = xg.shape[0]
    xt = xg.expand(n, K, xg.shape[-1]).reshape(n, K * k.S, k.per).transpose(0, 1)  # [K*S, N, per]
    out = torch.bmm(xt, w.reshape(K * k.S, k.per, k.rows)).view(K, k.S, n, k.rows).permute(2, 0, 1, 3)
    return (out + const.view(K, k.S, k.rows)).unsqueeze(2)


class FastChipBatch(AnalogEngine):
    """K chip instances (seeds) of one chip program under one analog configuration.

    ``grouped``: all chips through each layer at once (default on CUDA) instead of chip by chip.
    """

    def __init__(self, program: ChipProgram, config: AnalogConfig, chip_seeds: list[int], device: str | torch.device = "cpu",
                 grouped: bool | None = None):
        super().__init__(program, config, chip_seeds, device)
        self.grouped = self.device.type == "cuda" if grouped is None else bool(grouped)
        self.kernels: dict[int, tuple[_LayerKernel, _LayerKernel | None]] = {}
        for layer in program.xnor_layers:
            m = self.maps[layer.index]
            bits = torch.from_numpy(layer.bits)
            targets = [target_conductances(bits[r0:r1, c0:c1], self.device_off_ratio) for (c0, c1) in m.col_tiles
                       for (r0, r1) in m.row_tiles]
            seeds = [program_seed(s, layer.index, ri, c) for s in self.chip_seeds for c in range(m.n_col_tiles)
                     for ri in range(m.n_row_tiles)]
            g = iter(program_many(self.noise_model, targets * len(self.chip_seeds), seeds, config.t_inference_s))
            devices = [[torch.cat([next(g) for _ in m.row_tiles]).float() for _ in m.col_tiles] for _ in self.chip_seeds]
            states = self.chip_layers(self.chip_seeds, layer, devices)
            st = stack_layers(states)
            self.state[layer.index] = st
            noisy = st.weights.sq_a is not None
            self.kernels[layer.index] = (_LayerKernel(layer, m, st.weights, False, self.device),
                                         _LayerKernel(layer, m, st.weights, True, self.device) if noisy else None)

    def chip_groups(self) -> list[slice]:
        return [slice(0, self.n_chips)] if self.grouped else [slice(k, k + 1) for k in range(self.n_chips)]

    def read_signals(self, layer: XnorLayer, bits: torch.Tensor, chips: slice, squared: bool = False) -> torch.Tensor:
        k = self.kernels[layer.index][1 if squared else 0]
        if layer.kind == "fc":
            return _fc(layer, bits, k, chips)
        return (_conv_grouped if self.grouped else _conv)(layer, bits, k, chips)


def auto_k(program: ChipProgram, batch_size: int, device: torch.device, array: ArrayConfig | None = None,
           budget_fraction: float = 0.25, cap: int = 64) -> int:
    """How many chip instances to evaluate per pass.

    On the GPU all K chips are in memory together (grouped convolutions): K is what fits in a
    fraction of the free device memory, from the largest layer's activations per chip (inputs,
    per-sensing signals of both slots, noise, the fp64 membrane). On the CPU chips run one after the
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
    per-sensing signals of both slots and their noise, and the fp64 membrane."""
    L = layer.positions
    act = layer.in_features * (layer.in_size ** 2 if layer.kind == "conv" else 1)
    return 4 * (act + 3 * m.n_sensings * layer.rows * L) + 8 * 2 * layer.rows * L
