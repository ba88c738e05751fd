"""The README's design-space table from a shipped design-space sweep (results/design_space/).

One row per architecture (mapping, sensing scheme, ADC bits) and calibration: the B-SNN and the
BNN (mean over chips, 95 % CI), their paired difference, each model's loss against its own
noise-free accuracy on the same images, and the energy per inference. Writes design_space.md into
the results folder and prints it.

    .venv/bin/python scripts/design_space_table.py results/design_space
"""

from __future__ import annotations

import sys
from pathlib import Path

from imcnoise.files import atomic_write
from imcnoise.sweep.points import CASE
from imcnoise.sweep.report import load_results


def table(directory: Path) -> str:
    res = load_results(directory)
    pm, pr, ref = res["per_model"], res["paired"], res["reference"]
    refs = {r.model: float(r.accuracy) for r in ref.itertuples()}
    cal = "chip.calibration.mode"
    fixed_cal = ((res["scenario"].get("scenario") or {}).get("chip") or {}).get("calibration", {}).get("mode", "?")
    chips = res["trials"].trial.nunique()
    images = int(ref.n_images.iloc[0])
    lines = [f"# Design space ({chips} chips x {images} images per point)", "",
             f"Noise-free (integer engine) on these images: B-SNN {100 * refs['bsnn']:.2f} %, BNN {100 * refs['bnn']:.2f} %. "
             "Loss = points below that; difference = B-SNN - BNN on the same chips [95 % CI]; energy per inference.", "",
             "| architecture | calibration | B-SNN | BNN | B-SNN loss | BNN loss | B-SNN - BNN [95% CI] | energy B-SNN / BNN |",
             "|---|---|---|---|---|---|---|---|"]
    for pt, g in pm.groupby("point", sort=True):
        b, n = g[g.model == "bsnn"].iloc[0], g[g.model == "bnn"].iloc[0]
        d = pr[(pr.point == pt) & (pr.pair == "bsnn-bnn")].iloc[0]
        lines.append(f"| {b[CASE]} | {b[cal] if cal in b.index else fixed_cal} | {100 * b['mean']:.2f} | {100 * n['mean']:.2f} | "
                     f"{100 * (refs['bsnn'] - b['mean']):.1f} | {100 * (refs['bnn'] - n['mean']):.1f} | "
                     f"{100 * d.diff_mean:+.2f} [{100 * d.diff_ci95_low:+.2f}, {100 * d.diff_ci95_high:+.2f}] | "
                     f"{b['energy_nj'] / 1e3:.2f} / {n['energy_nj'] / 1e3:.2f} uJ |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    d = Path(argv[0] if argv else "results/design_space")
    md = table(d)
    atomic_write(d / "design_space.md", lambda t: t.write_text(md))
    print(md)


if __name__ == "__main__":
    main(sys.argv[1:])
