"""Evaluation result shared by the float model and every IMC engine."""

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

    def to_dict(self) -> dict:
        return {"accuracy": self.accuracy, "correct": self.correct, "n": self.n,
                "spike_rates": {str(k): v for k, v in self.spike_rates.items()}}


def iter_batches(n: int, batch_size: int):
    for start in range(0, n, batch_size):
        yield torch.arange(start, min(n, start + batch_size))
