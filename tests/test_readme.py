"""The README's "Using it" commands and Python snippet run as written (on tiny inputs).

"Using it" here is the section's own text, before its sub-sections (data sets, models, chip,
sweeps, cluster: those document options; the cluster commands need other hosts).

Every line of the section's shell block and its Python block is executed, in README order, from a
scratch directory laid out like a fresh clone (the repository's code, scenarios, examples and
checkpoints linked, ``results/`` copied so re-reporting it changes nothing here). Only sizes are
changed, by appending options the command already has (``--epochs 1``, ``--limit``, ``--trials``,
``--images``) and an ``--out`` for sweeps: a command that fails, or a path the README names that a
fresh clone lacks, fails this test. The commands run with eager kernels (``IMCNOISE_COMPILE=0``):
compiling the fused kernels in each of the fifteen processes cost 40 % of this test's time on four
images, and that compiled and eager kernels give the same bits is tests/test_noise_streams.py's job.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO_ROOT

VENV_BIN = Path(sys.executable).parent


def _section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def readme_blocks() -> tuple[list[str], list[str]]:
    """(shell commands, python snippets) of the README's "Using it" section."""
    sec = _section((REPO_ROOT / "README.md").read_text(), "Using it").split("\n### ")[0]  # before its sub-sections
    shell, python = [], []
    for lang, body in re.findall(r"```(\w+)\n(.*?)```", sec, flags=re.S):
        if lang == "bash":
            for line in body.splitlines():
                if shlex.split(line, comments=True):
                    shell.append(line.strip())
        elif lang == "python":
            python.append(body)
    return shell, python


def tiny(cmd: str, i: int, tmp: Path) -> list[str]:
    """The command with sizes a test can afford (options appended: the last value of an option wins)."""
    argv = shlex.split(cmd, comments=True)
    if argv[0].startswith(".venv/bin/"):
        argv[0] = str(VENV_BIN / argv[0].split("/")[-1])
    elif argv[0] == "python":
        argv[0] = sys.executable
    if argv[1:2] == ["train"]:
        argv += ["--epochs", "1", "--train-limit", "64", "--eval-limit", "16", "--batch-size", "32"]
    elif argv[1:2] == ["eval"]:
        argv += ["--limit", "16"]
    elif argv[1:2] == ["sweep"] and "--dry-run" not in argv:
        argv += ["--limit", "4", "--trials", "1", "--out", str(tmp / f"sweep-{i}")]
    elif argv[1:2] == ["energy"]:
        argv += ["--images", "8"]
    elif argv[1:2] == ["examples/stt_mram_chip.py"]:
        argv += ["--images", "4"]
    return argv


@pytest.mark.slow
def test_every_using_it_command_and_snippet_runs_from_a_fresh_layout(tmp_path):
    shell, python = readme_blocks()
    assert len(shell) >= 10 and python, "the README's Using it section lost its examples"
    work = tmp_path / "clone"
    work.mkdir()
    for name in ("imcnoise", "scenarios", "examples", "benchmarks", "scripts"):
        (work / name).symlink_to(REPO_ROOT / name)
    shutil.copytree(REPO_ROOT / "results", work / "results")
    env = {**os.environ, "IMCNOISE_TEST_THREADS": "1", "OMP_NUM_THREADS": "1", "IMCNOISE_COMPILE": "0"}
    for i, cmd in enumerate(shell):
        argv = tiny(cmd, i, tmp_path)
        r = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, f"README command failed: {cmd}\n{' '.join(argv)}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    for snippet in python:
        r = subprocess.run([sys.executable, "-c", snippet], cwd=work, env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"README snippet failed:\n{snippet}\n{r.stderr[-3000:]}"
