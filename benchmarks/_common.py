"""Shared helpers of the benchmark scripts (machine description, checkpoint defaults, timing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import tempfile
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


def export_revision(rev: str) -> Path:
    """``imcnoise/`` as it is at git revision ``rev``, in a temporary folder (importable: put it on PYTHONPATH)."""
    root = Path(tempfile.mkdtemp(prefix="imcnoise-at-"))
    data = subprocess.run(["git", "-C", str(REPO), "archive", rev, "imcnoise"], check=True, capture_output=True).stdout
    tar = root / "src.tar"
    tar.write_bytes(data)
    with tarfile.open(tar) as t:
        t.extractall(root, filter="data")
    return root


def json_child(src: Path, code: str, argv) -> dict:
    """Run ``code`` in a child process that imports imcnoise from ``src``; its last stdout line, as JSON."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    r = subprocess.run([sys.executable, "-c", code, *map(str, argv)], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"child at {src} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])
