"""Shared helpers of the benchmark scripts (machine description, checkpoint defaults, timing)."""

from __future__ import annotations

import argparse
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


def alternating_children(against: str, code: str, argv, rounds: int) -> dict[str, list[dict]]:
    """``code`` run ``rounds`` times with ``imcnoise/`` at git revision ``against`` (the baseline) and from
    this checkout, alternating (baseline, checkout, baseline, ...) so that a change in machine load hits
    both alike: {"baseline": [json, ...], "checkout": [json, ...]}."""
    base = export_revision(against)
    runs = {"baseline": [], "checkout": []}
    for _ in range(rounds):
        for name, src in (("baseline", base), ("checkout", REPO)):
            runs[name].append(json_child(src, code, argv))
    return runs


def best_of(runs: dict[str, list[dict]], name: str, kind: str, key: str) -> float:
    """The smallest ``key`` (seconds) of model ``kind`` over the ``name`` ("baseline" / "checkout") runs."""
    return min(r[kind][key] for r in runs[name])


def identical(runs: dict[str, list[dict]], kind: str) -> bool:
    """Whether every run, baseline and checkout, gave model ``kind`` the same result hash."""
    return len({r[kind]["sha256"] for v in runs.values() for r in v}) == 1


def against_revision_parser(doc: str, against: str, why: str) -> argparse.ArgumentParser:
    """The options every this-checkout-against-a-revision benchmark takes: --rounds, --against, --chip."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=2, help="alternating baseline / checkout rounds")
    ap.add_argument("--against", default=against, help=f"git revision of the baseline (default: {why})")
    ap.add_argument("--chip", default="default", help="default | a chip YAML")
    return ap


# The start of every child a this-checkout-against-a-revision benchmark runs: one torch thread, and
# ``chip_config(name)``: the default chip for "default", else the chip YAML at that path.
CHILD_PRELUDE = r"""
import hashlib, json, sys, time
import torch
torch.set_num_threads(1)
from imcnoise.imc import AnalogConfig, FastChipBatch, evaluate, fold_checkpoint


def chip_config(name):
    if name == "default":
        return AnalogConfig()
    from imcnoise.training.hw_aware import load_chip
    return load_chip(name)
"""
