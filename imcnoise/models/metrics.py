"""Evaluation result shared by the float model (``imcnoise.training.evaluate``) and every IMC
engine (``imcnoise.imc.engines.base.evaluate``), and the batching both use."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class EvalResult:
    accuracy: float
    correct: int
    n: int
    spike_rates: dict[int, float] = field(default_factory=dict)
    predictions: torch.Tensor | None = None
    errors: dict[int, dict[str, float]] | None = None  # engines with error statistics: per layer
    seconds: float | None = None
    activity: dict | None = None  # analog engines, on request: per binary layer, what the array did per inference

    def to_dict(self) -> dict:
        d = {"accuracy": self.accuracy, "correct": self.correct, "n": self.n,
             "spike_rates": {str(k): v for k, v in self.spike_rates.items()}}
        if self.seconds is not None:
            d["seconds"] = self.seconds
        if self.errors is not None:
            d["errors"] = {str(k): v for k, v in self.errors.items()}
        return d


def iter_batches(n: int, batch_size: int):
    for start in range(0, n, batch_size):
        yield torch.arange(start, min(n, start + batch_size))
