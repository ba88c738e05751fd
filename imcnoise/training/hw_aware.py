"""Hardware-aware training: the binary layers' MACs run through sampled chip instances.

Every ``resample`` steps a fresh chip instance of the configured chip is drawn for the network as
it is now: the current weights are folded (:func:`imcnoise.imc.fold_model`: unipolar bits, rows
stored inverted where gamma * alpha < 0) and programmed onto the chip's complementary device
pairs, with its calibration, comparator offsets and buffer gains
(:class:`imcnoise.imc.FastChipBatch`, seeded by (training seed, "hw-chip", step)). In the forward
pass each binary layer then adds to its ideal integer MAC s = sum_j w_j o_j the error the chip
makes on the same input bits: e = sensed count - exact count, per slot sum, per row and position,
with the chip's device variation on both devices of every cell (the o = 0 complement path
included), its calibration, offsets and per-read noise (keyed by the batch's image indices) and
its ADC, in the integer units of the fold (s gains p * e for the B-SNN, 2 p * e for the BNN's
+-1 activations, p = sign(gamma * alpha)). The error is added without gradient: the backward
pass is the standard one (straight-through). With every non-ideality off the error is exactly 0
and a step is the standard step.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..imc import AnalogConfig, FastChipBatch, fold_model
from ..imc.config import chip_from_file
from ..imc.engines import layouts as lay
from ..imc.engines.base import Pass
from ..models.binary import BinaryConv2d, BinaryLinear
from ..models.vgg import BinaryVGG11
from ..seeding import derive_seed


def load_chip(path: str | Path, where: str = "--hw-aware") -> AnalogConfig:
    """A chip configuration from YAML: a scenario file (its ``chip:`` section) or the section alone.
    ``where``: what the user gave it as (an option name), the prefix of every error."""
    return chip_from_file(path, where)


class ChipInTheLoop:
    """Installs the chip's MAC errors into the binary layers of ``model`` (a context manager)."""

    def __init__(self, model: BinaryVGG11, chip: AnalogConfig, seed: int, resample: int = 1):
        if chip.adaptation.mode != "off":
            raise ValueError(f"--hw-aware: chip.adaptation.mode = {chip.adaptation.mode}: hardware-aware training samples "
                             "freshly programmed chips and does not adapt them; set chip.adaptation.mode: off")
        self.model, self.chip, self.seed, self.resample = model, chip, int(seed), int(resample)
        self.engine: FastChipBatch | None = None
        self._index: torch.Tensor | None = None
        self._layers = {spec.index: layer for spec, layer in zip(model.plan, model.layers)
                        if isinstance(layer, (BinaryConv2d, BinaryLinear))}

    def __enter__(self):
        for index, layer in self._layers.items():
            layer.chip_error = lambda inputs, index=index: self.error(index, inputs)
        return self

    def __exit__(self, *exc):
        for layer in self._layers.values():
            layer.chip_error = None
        return False

    def step(self, step: int, index: torch.Tensor) -> None:
        """Before training step ``step`` on the images ``index``: a fresh chip when due."""
        if self.engine is None or step % self.resample == 0:
            with torch.no_grad():
                program = fold_model(self.model)
            self.engine = FastChipBatch(program, self.chip, [derive_seed(self.seed, "hw-chip", step)], "cpu")
        self._index = index.cpu()

    @torch.no_grad()
    def error(self, index: int, inputs: list[torch.Tensor]) -> torch.Tensor:
        """The chip's error on the integer MAC of layer ``index`` for the layer's input(s) (one per
        slot), shaped like the MAC (``[N, rows, H, W]`` or ``[N, rows]``). Computed outside the
        training step's bf16 autocast: the engines' MACs are exact only in fp32 / int8 (bf16 holds
        8 significant bits; a 144-cell sum of 2**-12 grid conductances needs ~19)."""
        with torch.autocast("cpu", enabled=False), torch.autocast("cuda", enabled=False):
            return self._error(index, inputs)

    def _error(self, index: int, inputs: list[torch.Tensor]) -> torch.Tensor:
        eng = self.engine
        layer = next(l for l in eng.program.xnor_layers if l.index == index)
        bsnn = eng.program.kind == "bsnn"
        bits = [(x.detach().float() > 0).float().cpu() for x in inputs]  # spikes, or +1 activations
        slots = [lay.bits_from_nchw(b) if b.dim() == 4 else b.unsqueeze(1) for b in bits]
        sensed = eng.mac(layer, slots, Pass(self._index, eng.program.timesteps if bsnn else 1, slice(0, 1)))[:, 0]
        exact = sum(eng.ideal_dot(layer, b) for b in bits)  # the exact counts (ideal array), per slot
        err = lay.dots_to_nchw(sensed, layer).double() - exact
        p = 1.0 - 2.0 * torch.from_numpy(layer.flipped).double()  # stored rows: inverted where gamma * alpha < 0
        p = p.view(-1, 1, 1) if layer.kind == "conv" else p
        return ((1.0 if bsnn else 2.0) * p * err).to(inputs[0].device)
