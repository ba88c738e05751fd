#!/usr/bin/env python3
"""IR-drop position weights of programming: this checkout's solve against another revision's, same run.

    .venv/bin/python benchmarks/line_solve.py [--lines 300000] [--cells 63] [--against REV]

Every chip's programming solves (T + r D) w = e_1 for each line (``imc/physics/line.py``,
``position_weights``): ~150,000 lines of 63 cells per BNN chip set on the default chip. The script
times ``position_weights`` of this checkout and of ``line.py`` as it was at ``--against`` (read with
``git show``; default: the commit before the unit-vector solve) on the same random lines, at the
default chip's wire resistance (0.49 Ohm per pitch x G_on of a 7.5 kOhm cell) and at a strong one,
and checks that both give the same bits.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import tempfile
from pathlib import Path

import torch

from _common import REPO, machine, timed
from imcnoise.imc.physics import line as current


def module_at(rev: str):
    src = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:imcnoise/imc/physics/line.py"], check=True,
                         capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "line_at_rev.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("line_at_rev", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=300_000)
    ap.add_argument("--cells", type=int, default=63)
    ap.add_argument("--against", default="b48c5d3~1", help="git revision whose line.py is the baseline")
    args = ap.parse_args()
    torch.set_num_threads(1)
    old = module_at(args.against)
    g = torch.Generator().manual_seed(0)
    g_tot = 1.0 + 0.8 * torch.rand(args.lines, args.cells, generator=g, dtype=torch.float64)
    print(f"machine: {machine()}\n{args.lines} lines x {args.cells} cells; baseline line.py at {args.against}\n")
    print("| r G_on | baseline s | this checkout s | speed-up | identical |\n|---|---|---|---|---|")
    for r in (0.49 / 7.5e3, 0.05):
        t_old, w_old = timed(lambda: old.position_weights(g_tot, r), 3)
        t_new, w_new = timed(lambda: current.position_weights(g_tot, r), 3)
        print(f"| {r:.3g} | {t_old:.3f} | {t_new:.3f} | {t_old / t_new:.1f}x | {torch.equal(w_old, w_new)} |")


if __name__ == "__main__":
    main()
