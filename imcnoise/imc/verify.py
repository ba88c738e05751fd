"""Spike-for-spike comparison of the trained float model and the XNOR engine.

The reference is the trained model in eval mode computed in fp64 (its binary MACs are exact
integers; batch norm and membranes in fp64), fed the same Poisson spikes (same seed and image
indices). Any spike that differs must be a floating-point tie: the reference membrane within
``tie_tol`` of the threshold (B-SNN) or the batch-norm output within ``tie_tol`` of 0 (BNN).
Differences downstream of a tie are counted separately as propagated, not as ties.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch

from ..models.inputs import model_input
from ..models.metrics import iter_batches
from ..models.vgg import BinaryVGG11, Recording
from .engines.integer import XnorEngine
from .program import ChipProgram


@dataclass
class SpikeComparison:
    images: int = 0
    prediction_mismatches: int = 0
    decisions: dict[int, int] = field(default_factory=dict)  # neuron-time-step decisions per layer
    mismatches: dict[int, int] = field(default_factory=dict)  # first differences (must be ties)
    propagated: dict[int, int] = field(default_factory=dict)  # differences that follow from an earlier one
    ties: int = 0
    non_tie_mismatches: int = 0
    output_max_abs_diff: float = 0.0

    @property
    def total_mismatches(self) -> int:
        return sum(self.mismatches.values()) + sum(self.propagated.values())

    @property
    def exact(self) -> bool:
        return self.prediction_mismatches == 0 and self.total_mismatches == 0

    def summary(self) -> str:
        d = sum(self.decisions.values())
        return (f"{self.images} images, {d:,} spike decisions: {self.total_mismatches} differing spikes "
                f"({self.ties} ties, {self.non_tie_mismatches} non-ties, {sum(self.propagated.values())} propagated), "
                f"{self.prediction_mismatches} differing predictions, max |output diff| {self.output_max_abs_diff:.3g}")


@torch.no_grad()
def compare_engines(model: BinaryVGG11, program: ChipProgram, data, *, batch_size: int = 64, input_seed: int = 0,
                    backend: str = "gemm", tie_tol: float = 1e-9, limit: int | None = None,
                    progress: bool = False) -> SpikeComparison:
    from tqdm.auto import tqdm

    model = copy.deepcopy(model).double().eval()  # the caller's model stays as it was
    eng = XnorEngine(program, backend)
    threshold = model.config.threshold if model.config.kind == "bsnn" else 0.0
    res = SpikeComparison()
    n = len(data) if limit is None else min(limit, len(data))
    for idx in tqdm(list(iter_batches(n, batch_size)), desc="compare", disable=not progress, leave=False):
        imgs = data.images[idx]
        ref = Recording(keep=True, record_membrane=True)
        out_ref = model(model_input(model.config, imgs, idx, input_seed, dtype=torch.float64), ref)
        got = Recording(keep=True)
        out_eng = eng.run(imgs, idx, input_seed, got)
        res.images += len(idx)
        res.prediction_mismatches += int((out_ref.argmax(1) != out_eng.argmax(1)).sum())
        res.output_max_abs_diff = max(res.output_max_abs_diff, float((out_ref - out_eng).abs().max()))
        upstream_differs = False
        for layer in sorted(ref.spikes):
            a = ref.spikes[layer] > 0
            b = got.spikes[layer] > 0
            res.decisions[layer] = res.decisions.get(layer, 0) + a.numel()
            diff = a != b
            k = int(diff.sum())
            if upstream_differs:
                res.propagated[layer] = res.propagated.get(layer, 0) + k
                continue
            # within a neuron only the first differing time step must be a tie: after it the two
            # membranes differ by a reset and later differences follow from it
            first = diff & (diff.cumsum(0) == 1)
            k1 = int(first.sum())
            res.mismatches[layer] = res.mismatches.get(layer, 0) + k1
            res.propagated[layer] = res.propagated.get(layer, 0) + (k - k1)
            if k:
                margin = (ref.membranes[layer][first] - threshold).abs()
                scale = max(1.0, abs(threshold))
                is_tie = margin <= tie_tol * scale
                res.ties += int(is_tie.sum())
                res.non_tie_mismatches += int((~is_tie).sum())
                upstream_differs = True
    return res


@dataclass
class EngineComparison:
    """Spike and prediction agreement of two engines that both run a chip program."""

    images: int = 0
    prediction_mismatches: int = 0
    decisions: int = 0
    spike_mismatches: int = 0
    output_max_abs_diff: float = 0.0

    @property
    def exact(self) -> bool:
        return self.prediction_mismatches == 0 and self.spike_mismatches == 0

    def summary(self) -> str:
        return (f"{self.images} images, {self.decisions:,} spike decisions: {self.spike_mismatches} differing spikes, "
                f"{self.prediction_mismatches} differing predictions, max |output diff| {self.output_max_abs_diff:.3g}")


@torch.no_grad()
def compare_runs(run_a, run_b, data, *, batch_size: int = 64, input_seed: int = 0, limit: int | None = None,
                 progress: bool = False) -> EngineComparison:
    """Compare two ``run(images, index, input_seed, recording)`` callables spike for spike."""
    from tqdm.auto import tqdm

    res = EngineComparison()
    n = len(data) if limit is None else min(limit, len(data))
    for idx in tqdm(list(iter_batches(n, batch_size)), desc="compare", disable=not progress, leave=False):
        ra, rb = Recording(keep=True), Recording(keep=True)
        oa = run_a(data.images[idx], idx, input_seed, ra)
        ob = run_b(data.images[idx], idx, input_seed, rb)
        res.images += len(idx)
        res.prediction_mismatches += int((oa.argmax(1) != ob.argmax(1)).sum())
        res.output_max_abs_diff = max(res.output_max_abs_diff, float((oa.double() - ob.double()).abs().max()))
        for layer in ra.spikes:
            a, b = ra.spikes[layer] > 0, rb.spikes[layer] > 0
            res.decisions += a.numel()
            res.spike_mismatches += int((a != b).sum())
    return res
