"""Fast Monte Carlo engine: K chip instances per pass, same draws and results as the aihwkit path.

A row's current is sum_j o_j (G_A,j - G_B,j) + sum_j G_B,j: one convolution (or matmul) with the
per-chip effective weights G_A - G_B plus a per-row constant replaces the 2M-input MVM of the
complementary pair. Column tiles are channel groups and chips are stacked along channels, so a
layer of K chips is ONE grouped convolution (groups = K * tiles) over all T*B samples. Everything
chip-independent (Poisson input, the digital first layer) is computed once and shared.

Equivalence with :class:`~imcnoise.imc.analog_chip.AnalogChip` is by construction: programmed
conductances come from the same noise-model calls under the same seeds
(:func:`program_conductances`), they lie on a 2**-12 grid so every MAC is an exact fp32 sum in
any summation order, and the periphery is the same :func:`~imcnoise.imc.periphery.sense` call.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from ..models.metrics import iter_batches
from ..models.vgg import Recording
from .analog_chip import AnalogEvalResult, ErrorStats, program_seed, target_conductances
from .config import AnalogConfig
from .devices import make_noise_model, nominal_off_ratio
from .mapping import LayerMap, map_layer
from .periphery import ReadContext, cells_tensor, draw_periphery, sense, squared_conductance
from .program import ChipProgram, XnorLayer
from .xnor_engine import XnorEngine, folded_neuron


@torch.no_grad()
def program_conductances(noise_model, target: torch.Tensor, seed: int, t_inference: float) -> torch.Tensor:
    """What ``tile.program_weights()`` (+ ``drift_weights``) does to a tile, under the same seed."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        g, drift = noise_model.apply_programming_noise(target)
        if t_inference > 0:
            g = noise_model.apply_drift_noise(g, drift, t_inference)
    return g


class _LayerWeights:
    """Effective weights of one layer for K chips: G_A - G_B per cell and sum_j G_B,j per row."""

    def __init__(self, layer: XnorLayer, m: LayerMap, chips: list[list[torch.Tensor]], read_noise: bool, device):
        # chips[k][c]: programmed normalised conductances [rows, 2*cells] of column tile c
        self.layer, self.map = layer, m
        K, nt, rows = len(chips), m.n_col_tiles, layer.rows
        self.K = K
        k2 = layer.kernel * layer.kernel if layer.kind == "conv" else 1
        self.per = max(b - a for a, b in (m.chan_groups if layer.kind == "conv" else m.col_tiles))
        shape = (K, nt, rows, self.per, layer.kernel, layer.kernel) if layer.kind == "conv" else (K, nt, rows, self.per)
        w = torch.zeros(shape)
        w2 = torch.zeros(shape) if read_noise else None
        const = torch.zeros(K, nt, rows)
        const2 = torch.zeros(K, nt, rows) if read_noise else None
        for k in range(K):
            for c in range(nt):
                g = chips[k][c].float()
                cells = g.shape[1] // 2
                ga, gb = g[:, :cells], g[:, cells:]
                n_in = cells // k2
                w[k, c, :, :n_in] = (ga - gb).view(rows, n_in, *shape[4:])
                const[k, c] = gb.sum(1)
                if read_noise:
                    a2, b2 = squared_conductance(ga), squared_conductance(gb)
                    w2[k, c, :, :n_in] = (a2 - b2).view(rows, n_in, *shape[4:])
                    const2[k, c] = b2.sum(1)
        if layer.kind == "conv":
            self.w = w.reshape(K, nt * rows, self.per, layer.kernel, layer.kernel).to(device)
            self.w2 = None if w2 is None else w2.reshape(K, nt * rows, self.per, layer.kernel, layer.kernel).to(device)
        else:
            self.w = w.transpose(2, 3).contiguous().to(device)  # [K, nt, per, rows]
            self.w2 = None if w2 is None else w2.transpose(2, 3).contiguous().to(device)
        self.const = const.to(device)
        self.const2 = None if const2 is None else const2.to(device)

    def mvm(self, x: torch.Tensor, chips: slice, squared: bool = False, grouped: bool = False) -> torch.Tensor:
        """Row currents ``[N, Kc, L, tiles, rows]`` of the chips ``chips`` for input bits ``x``: conv
        ``[N, Kc or 1, H, W, C]`` (channels innermost), fc ``[N, Kc or 1, F]``."""
        layer, m = self.layer, self.map
        w = (self.w2 if squared else self.w)[chips]
        const = (self.const2 if squared else self.const)[chips]
        nt, rows = m.n_col_tiles, layer.rows
        K = const.shape[0]
        n = x.shape[0]
        if layer.kind == "conv":
            pad_c = nt * self.per - x.shape[-1]
            if pad_c:
                x = F.pad(x, (0, pad_c))
            h, wd = x.shape[2], x.shape[3]
            bias = const.reshape(K, nt * rows)
            if not grouped:
                # CPU: a channels-last convolution per chip (a [N, H, W, C] slice is channels-last
                # already); oneDNN runs these ~2.5x faster than one grouped NCHW convolution
                outs = [F.conv2d(x[:, min(k, x.shape[1] - 1)].permute(0, 3, 1, 2), w[k], bias[k], padding=layer.padding,
                                 groups=nt).permute(0, 2, 3, 1) for k in range(K)]
                out = outs[0].unsqueeze(1) if K == 1 else torch.stack(outs, dim=1)
                return out.reshape(n, K, h * wd, nt, rows)
            # GPU: one grouped convolution over all chips and column tiles
            xg = x.expand(n, K, *x.shape[2:]).permute(0, 1, 4, 2, 3).reshape(n, K * nt * self.per, h, wd)
            out = F.conv2d(xg, w.reshape(K * nt * rows, self.per, layer.kernel, layer.kernel), bias.reshape(-1),
                           padding=layer.padding, groups=K * nt)
            return out.view(n, K, nt, rows, h * wd).permute(0, 1, 4, 2, 3)
        pad_f = nt * self.per - x.shape[-1]
        if pad_f:
            x = F.pad(x, (0, pad_f))
        x = x.expand(n, K, x.shape[-1])
        xt = x.reshape(n, K * nt, self.per).transpose(0, 1)  # [K*nt, N, per]
        out = torch.bmm(xt, w.reshape(K * nt, self.per, rows))  # [K*nt, N, rows]
        out = out.view(K, nt, n, rows).permute(2, 0, 1, 3) + const.view(1, K, nt, rows)
        return out.unsqueeze(2)  # [N, K, 1, nt, rows]


class FastChipBatch:
    """K chip instances (seeds) of one chip program under one analog configuration."""

    engine = "fast"

    def __init__(self, program: ChipProgram, config: AnalogConfig, chip_seeds: list[int], device: str | torch.device = "cpu"):
        self.program, self.config = program, config
        self.chip_seeds = [int(s) for s in chip_seeds]
        self.device = torch.device(device)
        self.off_ratio = nominal_off_ratio(config.device)
        self.noise_model = make_noise_model(config.device)
        self.maps = {l.index: map_layer(l, config.array) for l in program.xnor_layers}
        self._cells = {i: cells_tensor(m, self.device) for i, m in self.maps.items()}
        self.digital = XnorEngine(program, "gemm", self.device)  # first/output layers and the folded neuron
        read = config.device.read_sigma > 0
        self.weights: dict[int, _LayerWeights] = {}
        self.offset, self.gain = {}, {}
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
                    tiles.append(torch.cat(rows, dim=0))
                chips.append(tiles)
            self.weights[layer.index] = _LayerWeights(layer, m, chips, read, self.device)
            per = [draw_periphery(config, s, layer.index, m.n_col_tiles, layer.rows, self.device) for s in self.chip_seeds]
            self.offset[layer.index] = torch.stack([p.offset_lsb for p in per]).unsqueeze(1)  # [K, 1, tiles, rows]
            self.gain[layer.index] = torch.stack([p.buffer_gain for p in per]).unsqueeze(1)
        self.errors: ErrorStats | None = None
        # GPU: all chips through each layer at once (grouped convolutions); CPU: chip by chip
        self.grouped = self.device.type == "cuda"

    @property
    def K(self) -> int:
        return len(self.chip_seeds)

    # ------------------------------------------------------------------ forward
    def _mac(self, layer: XnorLayer, chips: slice, x: torch.Tensor, rx: torch.Tensor | None, index: torch.Tensor,
             T: int) -> torch.Tensor:
        """Digitised dot of every row of the chips ``chips``: ``[N, Kc, L, rows]``."""
        lw = self.weights[layer.index]
        slots = [x] if rx is None else [x, rx]
        raw, std = [], []
        for s in slots:
            raw.append(lw.mvm(s, chips, grouped=self.grouped))
            std.append(lw.mvm(s, chips, squared=True, grouped=self.grouped).sqrt_().mul_(self.config.device.read_sigma)
                       if self.config.device.read_sigma > 0 else None)
        ctx = ReadContext(self.chip_seeds[chips], layer.index, index, T)
        counts = sense(raw, std, self._cells[layer.index], self.off_ratio, self.offset[layer.index][chips],
                       self.gain[layer.index][chips], self.config, ctx)
        total = counts.sum(dim=3) if counts.shape[3] > 1 else counts[:, :, :, 0]
        if self.errors is not None:
            for i in range(total.shape[1]):
                xi = x[:, min(i, x.shape[1] - 1)]
                ri = None if rx is None else rx[:, min(i, rx.shape[1] - 1)]
                ideal = self.digital.mac(layer, _to_nchw(xi), None if ri is None else _to_nchw(ri))
                self.errors.add(layer.index, total[:, i].transpose(1, 2).reshape(ideal.shape).double() - ideal)
        return total

    @torch.no_grad()
    def run(self, images_u8: torch.Tensor, index: torch.Tensor, input_seed: int = 0,
            recordings: list[Recording] | None = None) -> torch.Tensor:
        """Outputs ``[K, B, classes]`` of the K chips; ``recordings[k]`` gets chip k's firing rates.

        The input spikes and the digital first layer are computed once for all chips. On CUDA all
        K chips then go through each layer together (grouped convolutions); on CPU one chip at a
        time, which keeps each chip's activations in cache and avoids stacking copies.
        """
        eng, p, K = self.digital, self.program, self.K
        index = index.to(self.device)
        x = eng.input(images_u8, index, input_seed)
        T = x.shape[0]
        first_bits, _ = eng.first_layer(x)  # [T, B, C, H, W]
        if recordings is not None:
            for r in recordings:
                r.add(p.first.index, first_bits)
        fb = first_bits.flatten(0, 1).permute(0, 2, 3, 1).contiguous().unsqueeze(1)  # [N, 1, H, W, C], shared
        h0 = _pool_nhwc(fb, 2) if p.first.pool_after else fb
        groups = [slice(0, K)] if self.grouped else [slice(k, k + 1) for k in range(K)]
        outs = []
        for chips in groups:
            recs = None if recordings is None else recordings[chips]
            outs.append(self._forward(chips, h0, fb, index, T, recs))
        return torch.cat(outs, dim=0)

    def _forward(self, chips: slice, h: torch.Tensor, first: torch.Tensor, index: torch.Tensor, T: int, recordings):
        eng, p = self.digital, self.program
        Kc = chips.stop - chips.start
        kept = {p.first.index: first}
        sources = {l.residual_from for l in p.xnor_layers if l.residual_from is not None}
        for layer in p.xnor_layers:
            if layer.kind == "fc" and h.dim() == 5:
                h = h.permute(0, 1, 4, 2, 3).flatten(2)  # the model's (C, H, W) flatten order
            rx = _residual_nhwc(kept.pop(layer.residual_from), layer) if layer.residual_from is not None else None
            dot = self._mac(layer, chips, h, rx, index, T)  # [N, Kc, L, rows]
            gain, bias, theta_hat = eng._xnor_params[layer.index]
            out, _ = folded_neuron(dot, T, None if bool((gain == 1).all()) else gain, bias, theta_hat, layer.neuron)
            if recordings is not None:
                for k, r in enumerate(recordings):
                    r.add(layer.index, out[:, :, k])
            out = out.view(-1, *out.shape[2:])  # [N, Kc, L, rows]
            if layer.kind == "conv":
                out = out.view(out.shape[0], Kc, layer.in_size, layer.in_size, layer.rows)
            else:
                out = out[:, :, 0]
            if layer.index in sources:
                kept[layer.index] = out
            h = _pool_nhwc(out, 2) if layer.pool_after else out
        if h.dim() == 5:
            h = h.permute(0, 1, 4, 2, 3).flatten(2)
        n = h.shape[0]
        logits = eng.output_layer(h.reshape(n * Kc, -1), T)  # sums over T the (B*Kc) rows of each time step
        return logits.view(-1, Kc, logits.shape[-1]).transpose(0, 1)


def _pool_nhwc(x: torch.Tensor, k: int) -> torch.Tensor:
    """OR-pool of [..., H, W, C] bits (max-pool on a channels-last view)."""
    if k == 1:
        return x
    lead = x.shape[:-3]
    h, w, c = x.shape[-3:]
    y = F.max_pool2d(x.reshape(-1, h, w, c).permute(0, 3, 1, 2), k)
    return y.permute(0, 2, 3, 1).reshape(*lead, h // k, w // k, c)


def _residual_nhwc(src: torch.Tensor, layer: XnorLayer) -> torch.Tensor:
    """Identity mapping (OR-pool, channel repetition, flatten for fc) on [N, K, H, W, C] bits."""
    x = _pool_nhwc(src, layer.residual_pool) if src.dim() == 5 else src
    if layer.residual_repeat > 1:
        x = x.repeat(*([1] * (x.dim() - 1)), layer.residual_repeat)
    if layer.kind == "fc" and x.dim() == 5:
        x = x.permute(0, 1, 4, 2, 3).flatten(2)
    return x


def _to_nchw(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 3, 1, 2) if x.dim() == 4 else x


def auto_k(program: ChipProgram, batch_size: int, device: torch.device, budget_fraction: float = 0.25, cap: int = 64) -> int:
    """How many chip instances to evaluate per pass.

    On the GPU all K chips are in memory together (grouped convolutions): K is what fits in a
    fraction of the free device memory, from the largest layer's activations per chip (inputs,
    per-tile currents of both slots, noise, the fp64 membrane). On the CPU chips run one after the
    other and share only the input and first layer, so memory does not limit K: the cap applies.
    """
    if device.type != "cuda":
        return cap
    T = program.timesteps
    per_chip = 0
    for l in program.xnor_layers:
        L = l.positions
        tiles = -(-l.cols // 256)
        act = l.in_features * (l.in_size ** 2 if l.kind == "conv" else 1)
        per_chip = max(per_chip, 4 * (act + 3 * tiles * l.rows * L) + 8 * 2 * l.rows * L)
    per_chip *= T * batch_size
    free, _ = torch.cuda.mem_get_info(device)
    return int(max(1, min(cap, budget_fraction * free // max(1, per_chip))))


@torch.no_grad()
def evaluate_chips(batch: FastChipBatch, data, *, batch_size: int = 64, input_seed: int = 0, error_stats: bool = False,
                   progress: bool = False, keep_predictions: bool = False) -> list[AnalogEvalResult]:
    """Evaluate the K chips of ``batch`` on ``data``; one result per chip (same order as the seeds)."""
    from tqdm.auto import tqdm

    t0 = time.time()
    K = batch.K
    recs = [Recording() for _ in range(K)]
    correct = torch.zeros(K, dtype=torch.long)
    preds = []
    errors = [ErrorStats() for _ in range(K)] if error_stats else None
    batch.errors = ErrorStats() if error_stats else None
    try:
        for idx in tqdm(list(iter_batches(len(data), batch_size)), desc=f"{K} chips", disable=not progress, leave=False):
            out = batch.run(data.images[idx], idx, input_seed, recs)
            p = out.argmax(2).cpu()  # [K, B]
            correct += (p == data.labels[idx].view(1, -1)).sum(1)
            if keep_predictions:
                preds.append(p)
        errs = batch.errors.table() if batch.errors is not None else None
    finally:
        batch.errors = None
    dt = time.time() - t0
    n = len(data)
    allp = torch.cat(preds, dim=1) if keep_predictions else None
    return [AnalogEvalResult(int(correct[k]) / n, int(correct[k]), n, recs[k].rates(), errs, dt / K,
                             None if allp is None else allp[k]) for k in range(K)]
