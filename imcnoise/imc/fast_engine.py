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

import os
import time

import torch
import torch.nn.functional as F

from ..models.metrics import iter_batches
from ..models.neurons import if_multistep
from ..models.vgg import Recording
from .analog_chip import AnalogEvalResult, ErrorStats, program_seed, target_conductances
from .config import AnalogConfig
from .devices import make_noise_model, nominal_off_ratio
from .mapping import LayerMap, map_layer
from .periphery import cells_tensor, draw_periphery, sense, sense_noise, squared_conductance, tile_noise
from .program import ChipProgram, XnorLayer
from .xnor_engine import XnorEngine, or_pool_bits


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
    """Effective weights of one layer for K chips."""

    def __init__(self, layer: XnorLayer, m: LayerMap, chips: list[list[torch.Tensor]], read_noise: bool, device):
        # chips[k][c]: programmed normalised conductances [rows, 2*cells] of column tile c
        self.layer, self.map = layer, m
        K, nt, rows = len(chips), m.n_col_tiles, layer.rows
        self.K = K
        if layer.kind == "conv":
            k2 = layer.kernel * layer.kernel
            self.per = max(b - a for a, b in m.chan_groups)
            w = torch.zeros(K, nt, rows, self.per, layer.kernel, layer.kernel)
            w2 = torch.zeros_like(w) if read_noise else None
        else:
            self.per = max(b - a for a, b in m.col_tiles)
            w = torch.zeros(K, nt, rows, self.per)
            w2 = torch.zeros_like(w) if read_noise else None
        const = torch.zeros(K, nt, rows)
        const2 = torch.zeros(K, nt, rows) if read_noise else None
        for k in range(K):
            for c in range(nt):
                g = chips[k][c].float()
                cells = g.shape[1] // 2
                ga, gb = g[:, :cells], g[:, cells:]
                if layer.kind == "conv":
                    n_ch = cells // k2
                    w[k, c, :, :n_ch] = (ga - gb).view(rows, n_ch, layer.kernel, layer.kernel)
                else:
                    w[k, c, :, :cells] = ga - gb
                const[k, c] = gb.sum(1)
                if read_noise:
                    a2, b2 = squared_conductance(ga), squared_conductance(gb)
                    if layer.kind == "conv":
                        w2[k, c, :, :n_ch] = (a2 - b2).view(rows, n_ch, layer.kernel, layer.kernel)
                    else:
                        w2[k, c, :, :cells] = a2 - b2
                    const2[k, c] = b2.sum(1)
        self.w = w.to(device)
        self.const = const.to(device)
        self.w2 = None if w2 is None else w2.to(device)
        self.const2 = None if const2 is None else const2.to(device)

    def mvm(self, x: torch.Tensor, w: torch.Tensor, const: torch.Tensor) -> torch.Tensor:
        """x: input bits ``[N, K, C, H, W]`` (conv) / ``[N, K, F]`` (fc) -> ``[N, K, tiles, rows, L]``."""
        layer, m, K = self.layer, self.map, self.K
        nt, rows = m.n_col_tiles, layer.rows
        n = x.shape[0]
        if layer.kind == "conv":
            c_in = x.shape[2]
            pad_c = nt * self.per - c_in
            if pad_c:
                x = F.pad(x, (0, 0, 0, 0, 0, pad_c))
            xg = x.reshape(n, K * nt * self.per, *x.shape[3:])
            out = F.conv2d(xg, w.reshape(K * nt * rows, self.per, layer.kernel, layer.kernel), padding=layer.padding,
                           groups=K * nt)
            out = out.view(n, K, nt, rows, -1)
        else:
            pad_f = nt * self.per - x.shape[2]
            if pad_f:
                x = F.pad(x, (0, pad_f))
            xt = x.reshape(n, K * nt, self.per).transpose(0, 1)  # [K*nt, N, per]
            out = torch.bmm(xt, w.reshape(K * nt, rows, self.per).transpose(1, 2))  # [K*nt, N, rows]
            out = out.transpose(0, 1).reshape(n, K, nt, rows, 1)
        return out + const.view(1, K, nt, rows, 1)


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
            self.offset[layer.index] = torch.stack([p.offset_lsb for p in per]).unsqueeze(-1)  # [K, tiles, rows, 1]
            self.gain[layer.index] = torch.stack([p.buffer_gain for p in per]).unsqueeze(-1)
        self.errors: ErrorStats | None = None

    @property
    def K(self) -> int:
        return len(self.chip_seeds)

    def conductances(self, k: int, layer_index: int, col_tile: int) -> torch.Tensor:
        """Effective weights G_A - G_B of chip k (for checks against the aihwkit path)."""
        return self.weights[layer_index].w[k, col_tile]

    # ------------------------------------------------------------------ forward
    def _mac(self, layer: XnorLayer, x: torch.Tensor, rx: torch.Tensor | None, index: torch.Tensor, T: int) -> torch.Tensor:
        lw, m = self.weights[layer.index], self.maps[layer.index]
        slots = [x] if rx is None else [x, rx]
        raw = []
        for si, s in enumerate(slots):
            i = lw.mvm(s, lw.w, lw.const)
            if self.config.device.read_sigma > 0:
                var = lw.mvm(s, lw.w2, lw.const2)
                z = tile_noise(self.chip_seeds, "device-read", layer.index, m.n_col_tiles, si, index, T, layer.rows,
                               i.shape[-1], self.device)
                i = i + z * (var.sqrt() * self.config.device.read_sigma)
            raw.append(i / (1.0 - self.off_ratio))
        noise = sense_noise(self.config, self.chip_seeds, layer.index, m.n_col_tiles, len(slots), index, T, layer.rows,
                            raw[0].shape[-1], self.device)
        counts = sense(raw, self._cells[layer.index], self.off_ratio, self.offset[layer.index], self.gain[layer.index],
                       self.config, noise)
        total = counts.sum(dim=2)  # [N, K, rows, L]
        if self.errors is not None:
            ideal = torch.stack([self.digital.mac(layer, self._unstack(x, k, layer), None if rx is None else self._unstack(rx, k, layer))
                                 for k in range(self.K)], dim=1)
            self.errors.add(layer.index, total.double().reshape(ideal.shape) - ideal)
        return total

    @staticmethod
    def _unstack(x: torch.Tensor, k: int, layer: XnorLayer) -> torch.Tensor:
        return x[:, k]

    @torch.no_grad()
    def run(self, images_u8: torch.Tensor, index: torch.Tensor, input_seed: int = 0,
            recordings: list[Recording] | None = None) -> torch.Tensor:
        """Outputs ``[K, B, classes]`` of the K chips; ``recordings[k]`` gets chip k's firing rates."""
        eng, p, K = self.digital, self.program, self.K
        index = index.to(self.device)
        x = eng.input(images_u8, index, input_seed)
        T = x.shape[0]
        first_bits, _ = eng.first_layer(x)  # shared by all chips
        if recordings is not None:
            for r in recordings:
                r.add(p.first.index, first_bits)
        fb = first_bits.flatten(0, 1)
        h = or_pool_bits(fb, 2) if p.first.pool_after else fb
        h = h.unsqueeze(1).expand(-1, K, *h.shape[1:])  # [N, K, ...]
        kept = {p.first.index: fb.unsqueeze(1).expand(-1, K, *fb.shape[1:])}
        sources = {l.residual_from for l in p.xnor_layers if l.residual_from is not None}
        for layer in p.xnor_layers:
            if layer.kind == "fc" and h.dim() > 3:
                h = h.flatten(2)
            rx = None
            if layer.residual_from is not None:
                src = kept.pop(layer.residual_from)
                n = src.shape[0]
                rx = _residual(src.reshape(n * K, *src.shape[2:]), layer).view(n, K, *_residual_shape(src, layer))
            dot = self._mac(layer, h, rx, index, T)  # [N, K, rows, L]
            gain, bias, theta_hat = eng._xnor_params[layer.index]
            drive = gain.view(1, 1, -1, 1) * dot.double() - bias.view(1, 1, -1, 1)
            drive = drive.view(T, -1, *drive.shape[1:])  # [T, B, K, rows, L]
            th = theta_hat.view(1, -1, 1)
            if layer.neuron == "if":
                out, _ = if_multistep(drive, th)
            else:
                out = (drive > th).double()
            out = out.float()
            if layer.kind == "conv":
                out = out.view(T, -1, K, layer.rows, layer.in_size, layer.in_size)
            else:
                out = out.view(T, -1, K, layer.rows)
            if recordings is not None:
                for k, r in enumerate(recordings):
                    r.add(layer.index, out[:, :, k])
            out = out.flatten(0, 1)  # [N, K, ...]
            if layer.index in sources:
                kept[layer.index] = out
            if layer.pool_after:
                n = out.shape[0]
                out = or_pool_bits(out.reshape(n * K, *out.shape[2:]), 2).view(n, K, layer.rows, layer.in_size // 2, layer.in_size // 2)
            h = out
        h = h.flatten(2) if h.dim() > 3 else h  # [N, K, F]
        n = h.shape[0]
        logits = eng.output_layer(h.reshape(n * K, -1), T)  # output_layer sums over T of (T*B*K) rows
        return logits.view(-1, K, logits.shape[-1]).transpose(0, 1)


def _residual(src: torch.Tensor, layer: XnorLayer) -> torch.Tensor:
    from .xnor_engine import residual_bits

    return residual_bits(src, layer)


def _residual_shape(src: torch.Tensor, layer: XnorLayer) -> tuple:
    c = src.shape[2] * layer.residual_repeat
    if layer.kind == "fc":
        s = src.shape[3] // layer.residual_pool if src.dim() == 5 else 1
        return (c * s * s,)
    return (c, src.shape[3] // layer.residual_pool, src.shape[4] // layer.residual_pool)


def auto_k(program: ChipProgram, batch_size: int, device: torch.device, budget_fraction: float = 0.25, cap: int = 64) -> int:
    """How many chips fit in one pass: activation memory per chip vs. a fraction of free memory."""
    T = program.timesteps
    per_chip = 0
    for l in program.xnor_layers:
        L = l.positions
        per_chip = max(per_chip, (l.in_features * (l.in_size ** 2 if l.kind == "conv" else 1) + 3 * l.rows * L) * 4)
    per_chip *= T * batch_size * 4  # slots, tiles, noise and float64 drive
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
    else:
        free = _mem_available()
    return int(max(1, min(cap, budget_fraction * free // max(1, per_chip))))


def _mem_available() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 << 30


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
