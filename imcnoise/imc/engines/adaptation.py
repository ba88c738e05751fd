"""Per-chip adaptation after programming and calibration (``chip.adaptation``): batch-norm
re-estimation on the chip, as the folded network's registers see it (:mod:`..program.refold`).

At programming time the software model (the exact integer engine) runs the adaptation images and
its per-row statistics of every binary layer's counts are stored with the program
(:func:`with_statistics`). After programming and calibration the chip runs the same unlabelled
images layer by layer: all images through binary layer l, per-row statistics of the counts its own
sense path produced, the re-folded bias (and threshold) written into that layer's adjustment
registers, then layer l + 1 on the outputs of the adjusted layer -- so every layer adapts to the
chip's own upstream activations, as batch-norm re-estimation does. The chip needs the layer's
outputs of the N images buffered between layers (off-array), and the N images' reads once.

Draws: the adaptation images' Poisson input uses the seed :func:`adaptation_input_seed` and their
reads draw from the ``adaptation`` run of every read-noise stream (:class:`..physics.noise.ReadNoise`),
so nothing of the adaptation pass repeats a draw of the evaluation, whatever image indices coincide.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from ...seeding import derive_seed
from ..config import AdaptationConfig
from ..program import ChipProgram, XnorLayer
from ..program.refold import RowStatistics, refold_registers
from .base import Engine, Pass


def adaptation_input_seed(input_seed: int) -> int:
    """Seed of the adaptation images' Poisson input: derived from the evaluation's, never equal to it."""
    return derive_seed(input_seed, "adaptation-input")


class _Recorder:
    """Observer of the integer engine: per binary layer, the statistics of its exact counts."""

    def __init__(self):
        self.stats: dict[int, RowStatistics] = {}

    def __call__(self, layer: XnorLayer, dots: torch.Tensor, p: Pass) -> None:
        s = RowStatistics.of(dots[:, 0])
        old = self.stats.get(layer.index)
        self.stats[layer.index] = s if old is None else RowStatistics(old.n + s.n, old.total + s.total, old.squares + s.squares)


@torch.no_grad()
def software_statistics(program: ChipProgram, images_u8: torch.Tensor, index: torch.Tensor, input_seed: int,
                        batch_size: int = 256) -> dict[int, RowStatistics]:
    """Per binary layer, the software model's per-row statistics of its counts (exact integer
    engine) on the adaptation images (data-set ``index``), with the adaptation input seed."""
    from .integer import XnorEngine

    eng = XnorEngine(program, "gemm")
    rec = _Recorder()
    eng.observer = rec
    seed = adaptation_input_seed(input_seed)
    for a in range(0, len(index), batch_size):
        eng.run_chips(images_u8[a:a + batch_size], index[a:a + batch_size], seed)
    return rec.stats


def with_statistics(program: ChipProgram, images_u8: torch.Tensor, index: torch.Tensor, input_seed: int,
                    source: str) -> ChipProgram:
    """The program with the software statistics of the adaptation images stored in it (``source``:
    which images, for the record)."""
    stats = software_statistics(program, images_u8, index, input_seed)
    return dataclasses.replace(program, statistics=stats,
                               meta={**program.meta, "statistics": {"images": int(len(index)), "source": source,
                                                                    "input_seed": int(input_seed),
                                                                    "timesteps": int(program.timesteps)}})


@dataclass
class AdaptationReport:
    """What adaptation did on each chip: images run, counts read and how far the registers moved."""

    images: int
    count_reads: int  # sensed counts (row MACs) per chip
    bias_shift: dict[int, list[float]]  # per layer, per chip: mean |adjustment| of the bias registers (counts)
    threshold_scale: dict[int, list[float]]  # per layer, per chip: mean |theta_hat' / theta_hat - 1|


class _Adapter:
    """Observer of a chip engine: after each binary layer's counts, re-fold its registers (all chips
    of the pass) from the counts' statistics, before its neurons run."""

    def __init__(self, engine: Engine, software: dict[int, RowStatistics], cfg: AdaptationConfig):
        self.engine, self.software, self.cfg = engine, software, cfg
        self.reads = 0
        self.bias_shift: dict[int, list[float]] = {}
        self.threshold_scale: dict[int, list[float]] = {}

    def __call__(self, layer: XnorLayer, dots: torch.Tensor, p: Pass) -> None:
        eng = self.engine
        if layer.index not in self.software:
            raise ValueError(f"adaptation: the program has no software statistics of layer {layer.index}")
        gain, bias, theta = eng._neuron[layer.index]
        u = torch.ones_like(bias) if gain is None else gain
        K = eng.n_chips
        if layer.index not in eng.registers:
            eng.registers[layer.index] = (bias.expand(K, 1, -1).clone(), theta.expand(K, 1, -1).clone())
        b_all, t_all = eng.registers[layer.index]
        sw = self.software[layer.index]
        for i in range(dots.shape[1]):
            k = p.chips.start + i
            chip = RowStatistics.of(dots[:, i])
            nb, nt = refold_registers(bias, theta, u, sw, chip, self.cfg.mode, self.cfg.register_lsb)
            b_all[k, 0], t_all[k, 0] = nb, nt
            self.reads += dots[:, i].numel()
            self.bias_shift.setdefault(layer.index, [0.0] * K)[k] = float((nb - bias).abs().mean())
            ratio = torch.where(theta != 0, nt / torch.where(theta != 0, theta, 1.0) - 1, torch.zeros_like(nt))
            self.threshold_scale.setdefault(layer.index, [0.0] * K)[k] = float(ratio.abs().mean())


@torch.no_grad()
def adapt(engine: Engine, images_u8: torch.Tensor, index: torch.Tensor, input_seed: int, software: dict[int, RowStatistics],
          cfg: AdaptationConfig) -> AdaptationReport:
    """Adapt every chip of ``engine`` on the adaptation images (one pass of all of them, layer by
    layer: module doc); the re-folded registers stay in ``engine.registers`` for what it runs next."""
    if cfg.mode == "off":
        raise ValueError("adapt() called with chip.adaptation.mode = off")
    engine.registers = {}
    adapter = _Adapter(engine, software, cfg)
    engine.observer, engine.stream = adapter, "adaptation"
    try:
        engine.run_chips(images_u8, index, adaptation_input_seed(input_seed))
    finally:
        engine.observer, engine.stream = None, "inference"
    return AdaptationReport(int(len(index)), adapter.reads // max(1, engine.n_chips), adapter.bias_shift,
                            adapter.threshold_scale)
