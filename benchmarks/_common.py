"""Shared helpers of the benchmark scripts (machine description, checkpoint defaults, timing)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from imcnoise.runtime import tune_allocator

REPO = Path(__file__).resolve().parents[1]
tune_allocator()
SHIPPED = REPO / "imcnoise" / "checkpoints"


def machine() -> str:
    from imcnoise.models.checkpoint import machine_description

    cpu = machine_description()  # model name, logical CPUs, widest vector unit
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return (f"{cpu}, torch {torch.__version__} with {torch.get_num_threads()} threads{gpu}; "
            f"load average {', '.join(f'{x:.2f}' for x in load)}")


def shipped(name: str) -> Path:
    p = SHIPPED / name / "model.pt"
    if not p.is_file():
        raise SystemExit(f"shipped checkpoint {p} missing; pass --bsnn/--bnn paths")
    return p


def timed(fn, repeat: int = 1):
    """(best seconds over ``repeat`` runs, last result)."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out
