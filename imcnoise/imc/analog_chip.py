"""Analog XNOR chip on aihwkit tiles (the reference analog path).

Each column tile x row tile of a folded layer is one aihwkit ``TorchInferenceTile`` whose
``2 * cells`` inputs are the A lines (driven by the input bit o) and the B lines (driven by
1 - o) and whose weights are the normalised conductances of the complementary device pair:
weight bit 1 -> (G_on, G_off), bit 0 -> (G_off, G_on). The tile's MVM therefore gives the row
current sum_j [o_j G_A,j + (1 - o_j) G_B,j]. The MVM itself is ideal (``forward.is_perfect``);
device effects enter through aihwkit's ``program_weights`` / ``drift_weights`` with our noise
models (:mod:`.devices`), and everything after the bit line -- per-read noise, residual buffer,
sense amplifier, ADC -- is ours (:mod:`.periphery`). Spikes, accumulation and firing are the
integer engine's (:class:`~imcnoise.imc.xnor_engine.XnorEngine`) on the sensed counts.

A chip instance is defined by its seed: every programming draw is made under torch's generator
seeded with ``derive_seed(chip_seed, "program", layer, row_tile, col_tile)``, the sense-amp
offsets and buffer gains from ``derive_seed(chip_seed, "periphery", layer)``, and per-read noise
from counter-based streams keyed by image index, so results do not depend on batching.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..models.metrics import iter_batches
from ..models.vgg import Recording
from ..seeding import derive_seed
from .config import AnalogConfig
from .devices import make_noise_model, nominal_off_ratio
from .mapping import LayerMap, map_layer
from .periphery import PeripheryDraw, ReadContext, cells_tensor, draw_periphery, sense, squared_conductance
from .program import ChipProgram, XnorLayer
from .xnor_engine import XnorEngine

ENGINES = ("aihwkit", "fast")


def target_conductances(bits: torch.Tensor, off_ratio: float) -> torch.Tensor:
    """[rows, cells] weight bits -> [rows, 2*cells] normalised targets: A = (1 | r), B = (r | 1)."""
    b = bits.float()
    ga = b + (1 - b) * off_ratio
    gb = (1 - b) + b * off_ratio
    return torch.cat([ga, gb], dim=1)


def program_seed(chip_seed: int, layer: int, row_tile: int, col_tile: int) -> int:
    return derive_seed(chip_seed, "program", layer, row_tile, col_tile)


@dataclass
class ErrorStats:
    """Sensed count minus ideal popcount, per layer, over all reads of all sense amplifiers."""

    reads: dict[int, int] = field(default_factory=dict)
    sum_err: dict[int, float] = field(default_factory=dict)
    sum_sq: dict[int, float] = field(default_factory=dict)
    nonzero: dict[int, int] = field(default_factory=dict)
    max_abs: dict[int, float] = field(default_factory=dict)

    def add(self, layer: int, err: torch.Tensor) -> None:
        e = err.double()
        self.reads[layer] = self.reads.get(layer, 0) + e.numel()
        self.sum_err[layer] = self.sum_err.get(layer, 0.0) + float(e.sum())
        self.sum_sq[layer] = self.sum_sq.get(layer, 0.0) + float((e * e).sum())
        self.nonzero[layer] = self.nonzero.get(layer, 0) + int((e != 0).sum())
        self.max_abs[layer] = max(self.max_abs.get(layer, 0.0), float(e.abs().max()) if e.numel() else 0.0)

    def table(self) -> dict[int, dict[str, float]]:
        out = {}
        for l, n in self.reads.items():
            mean = self.sum_err[l] / n
            out[l] = {"reads": n, "mean_err": mean, "rms_err": (self.sum_sq[l] / n) ** 0.5,
                      "frac_wrong": self.nonzero[l] / n, "max_abs_err": self.max_abs[l]}
        return out


class AnalogChip(XnorEngine):
    """One chip instance: a folded program on noisy XNOR sub-arrays."""

    engine = "aihwkit"

    def __init__(self, program: ChipProgram, config: AnalogConfig | None = None, chip_seed: int = 0,
                 device: str | torch.device = "cpu", image_chunk: int = 32):
        super().__init__(program, "gemm", device)
        self.config = config or AnalogConfig()
        self.off_ratio = nominal_off_ratio(self.config.device)
        self.noise_model = make_noise_model(self.config.device)
        self.maps: dict[int, LayerMap] = {l.index: map_layer(l, self.config.array) for l in program.xnor_layers}
        self.image_chunk = image_chunk
        self._cells = {i: cells_tensor(m, self.device) for i, m in self.maps.items()}
        self.errors: ErrorStats | None = None
        self.periphery: dict[int, PeripheryDraw] = {}
        self._build_tiles()
        self.program_chip(chip_seed)

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
                    tile.set_weights(target_conductances(bits[r0:r1, c0:c1], self.off_ratio), apply_weight_scaling=False)
                    tile.eval()
                    row.append(tile.to(self.device))
                grid.append(row)
            self.tiles[layer.index] = grid

    @torch.no_grad()
    def program_chip(self, chip_seed: int) -> None:
        """(Re)draw this chip instance: programming noise (aihwkit ``program_weights``), drift to
        ``t_inference_s``, and the static periphery (sense-amp offsets, buffer gains)."""
        self.chip_seed = int(chip_seed)
        t_inf = self.config.t_inference_s
        for layer in self.program.xnor_layers:
            m = self.maps[layer.index]
            for ri, row in enumerate(self.tiles[layer.index]):
                for ci, tile in enumerate(row):
                    with torch.random.fork_rng(devices=[]):
                        torch.manual_seed(program_seed(self.chip_seed, layer.index, ri, ci))
                        tile.program_weights()  # from the stored reference (target) conductances
                        if t_inf > 0:
                            tile.drift_weights(t_inf)
            self.periphery[layer.index] = draw_periphery(self.config, self.chip_seed, layer.index, m.n_col_tiles,
                                                         layer.rows, self.device)

    def conductances(self, layer_index: int, col_tile: int) -> torch.Tensor:
        """Programmed normalised conductances ``[rows, 2*cells]`` of one column tile (all row tiles)."""
        return torch.cat([row[col_tile].get_weights()[0] for row in self.tiles[layer_index]], dim=0)

    # ------------------------------------------------------------------ analog MAC
    def _tile_inputs(self, layer: XnorLayer, m: LayerMap, c: int, bits: torch.Tensor) -> torch.Tensor:
        """Input bits of column tile c for every read: ``[N, L, cells]``."""
        if layer.kind == "conv":
            g0, g1 = m.chan_groups[c]
            p = F.unfold(bits[:, g0:g1].float(), layer.kernel, padding=layer.padding)  # bit-0 padding
            return p.transpose(1, 2)
        c0, c1 = m.col_tiles[c]
        return bits[:, None, c0:c1].float()

    def _raw_current(self, layer: XnorLayer, m: LayerMap, c: int, x: torch.Tensor) -> torch.Tensor:
        """Row currents in normalised units ``[N, L, rows]`` from aihwkit tiles, A/B lines driven."""
        n, L, cells = x.shape
        drive = torch.cat([x, 1 - x], dim=2).reshape(n * L, 2 * cells)
        out = torch.cat([row[c](drive) for row in self.tiles[layer.index]], dim=1)
        return out.view(n, L, -1)

    def _read_sigma_current(self, layer: XnorLayer, m: LayerMap, c: int, x: torch.Tensor) -> torch.Tensor:
        """std of a read's current from independent per-device read noise: s * sqrt(sum_j x_j G_j^2)."""
        g2 = squared_conductance(self.conductances(layer.index, c)).to(self.device)
        n, L, cells = x.shape
        drive = torch.cat([x, 1 - x], dim=2).reshape(n * L, 2 * cells)
        return (drive @ g2.T).sqrt().view(n, L, -1) * self.config.device.read_sigma

    def mac(self, layer: XnorLayer, bits: torch.Tensor, res_bits: torch.Tensor | None) -> torch.Tensor:
        m = self.maps[layer.index]
        index, T = self._batch
        slots = [bits] if res_bits is None else [bits, res_bits]
        raw, std = [], []
        for s in slots:
            per_tile, per_std = [], []
            for c in range(m.n_col_tiles):
                x = self._tile_inputs(layer, m, c, s)
                per_tile.append(self._raw_current(layer, m, c, x))
                if self.config.device.read_sigma > 0:
                    per_std.append(self._read_sigma_current(layer, m, c, x))
            raw.append(torch.stack(per_tile, dim=2).unsqueeze(1))  # [N, K=1, L, tiles, rows]
            std.append(torch.stack(per_std, dim=2).unsqueeze(1) if per_std else None)
        per = self.periphery[layer.index]
        ctx = ReadContext([self.chip_seed], layer.index, index, T)
        counts = sense(raw, std, self._cells[layer.index], self.off_ratio, per.offset_lsb.view(1, 1, *per.offset_lsb.shape),
                       per.buffer_gain.view(1, 1, *per.buffer_gain.shape), self.config, ctx)
        total = counts.sum(dim=3)[:, 0].transpose(1, 2)  # column tiles' partial counts added digitally: [N, rows, L]
        if self.errors is not None:
            ideal = XnorEngine.mac(self, layer, bits, res_bits)
            self.errors.add(layer.index, total.double().reshape(ideal.shape) - ideal)
        if layer.kind == "conv":
            return total.double().view(total.shape[0], layer.rows, layer.in_size, layer.in_size)
        return total.double().view(total.shape[0], layer.rows)


@dataclass
class AnalogEvalResult:
    accuracy: float
    correct: int
    n: int
    spike_rates: dict[int, float]
    errors: dict[int, dict[str, float]] | None
    seconds: float
    predictions: torch.Tensor | None = None

    def to_dict(self) -> dict:
        return {"accuracy": self.accuracy, "correct": self.correct, "n": self.n, "seconds": self.seconds,
                "spike_rates": {str(k): v for k, v in self.spike_rates.items()},
                "errors": None if self.errors is None else {str(k): v for k, v in self.errors.items()}}


@torch.no_grad()
def evaluate_chip(chip: XnorEngine, data, *, batch_size: int = 32, input_seed: int = 0, error_stats: bool = False,
                  progress: bool = False, keep_predictions: bool = False) -> AnalogEvalResult:
    """Accuracy, per-layer firing rates and (optionally) partial-sum error statistics of a chip."""
    from tqdm.auto import tqdm

    t0 = time.time()
    chip.errors = ErrorStats() if error_stats else None
    rec = Recording()
    correct, preds = 0, []
    try:
        for idx in tqdm(list(iter_batches(len(data), batch_size)), desc="chip eval", disable=not progress, leave=False):
            out = chip.run(data.images[idx], idx, input_seed, rec)
            p = out.argmax(1).cpu()
            correct += int((p == data.labels[idx]).sum())
            if keep_predictions:
                preds.append(p)
        errs = chip.errors.table() if chip.errors is not None else None
    finally:
        chip.errors = None
    return AnalogEvalResult(correct / len(data), correct, len(data), rec.rates(), errs, time.time() - t0,
                            torch.cat(preds) if keep_predictions else None)
