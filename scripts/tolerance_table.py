"""Tolerance table of a design-space tolerance sweep (scenarios/design_tolerance_*.yaml).

For each architecture (case) and model: the largest value of the swept quantity at which the
model's mean accuracy stays within 1 point of its own noise-free accuracy, with a 95 % CI from the
per-point CIs (imcnoise.sweep.report.tolerance_table). Writes tolerance.md into each results folder
and prints it.

    .venv/bin/python scripts/tolerance_table.py results/design_tolerance_spread results/design_tolerance_offset
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from imcnoise.files import atomic_write
from imcnoise.sweep.points import CASE
from imcnoise.sweep.report import load_results, model_label, tolerance_table

UNITS = {"chip.sense_amp.offset_sigma_v": (1e3, "mV"), "chip.device.sigma_r_p": (1.0, "std of ln R")}


def _fmt(v: float, scale: float, lo: float) -> str:
    if v == math.inf:
        return f"> {lo:g}"
    if v == -math.inf:
        return "< first"
    return f"{v * scale:.3g}"


def table(directory: Path, within: float = 0.01) -> str:
    res = load_results(directory)
    axis = next(a for a in res["axes"] if a != CASE)  # the swept quantity (its first path; the case is the other axis)
    scale, unit = UNITS.get(axis, (1.0, ""))
    t = tolerance_table(res, axis, within)
    top = t["swept"].iloc[0].split(" .. ")[-1] if len(t) else "?"
    top_v = float(top) * scale if top != "?" else math.nan
    lines = [f"# Tolerance: `{axis}` ({unit})", "",
             f"Largest {axis.split('.')[-1]} at which each model stays within {100 * within:g} point of its own "
             f"noise-free accuracy (linear between the swept values {t['swept'].iloc[0] if len(t) else ''}; "
             f"95 % CI from the per-point CIs; '> {top_v:g}': never left it, '< first': already outside at the first value). "
             f"From `{directory}` ({res['trials'].trial.nunique()} chips per point).", "",
             "| architecture | " + " | ".join(f"{model_label(m)} ideal | {model_label(m)} tolerance [95% CI]"
                                            for m in res["models"]) + " |",
             "|---|" + "---|---|" * len(res["models"])]
    for case, g in t.groupby("case", sort=False):
        cells = []
        for m in res["models"]:
            r = g[g.model == m].iloc[0]
            cells += [f"{100 * r.ideal:.2f} %", f"{_fmt(r.tolerance, scale, top_v)} [{_fmt(r.ci95_low, scale, top_v)}, "
                                                  f"{_fmt(r.ci95_high, scale, top_v)}]"]
        lines.append(f"| {case} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit("usage: tolerance_table.py RESULTS_DIR [RESULTS_DIR ...]")
    for d in argv:
        md = table(Path(d))
        atomic_write(Path(d) / "tolerance.md", lambda t: t.write_text(md))
        print(md)


if __name__ == "__main__":
    main(sys.argv[1:])
