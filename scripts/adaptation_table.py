"""The README's adaptation table: per-chip adaptation against trim, and both together.

Joins the adapted points of results/design_adaptation/ with the same architectures' 6-bit points of
results/design_space/ (same seed: the same chips and images, without adaptation). One row per
architecture: B-SNN and BNN accuracy (mean over chips) with reference-row calibration alone, with
adaptation on top of it, with trim, and with trim + adaptation; the paired B-SNN - BNN difference
of the adapted points [95 % CI]; and the one-off cost of adaptation per chip (energy of its N
inferences, and their time at the chip's latency per inference). Writes adaptation.md into
results/design_adaptation/ and prints it.

    .venv/bin/python scripts/adaptation_table.py results/design_adaptation results/design_space
"""

from __future__ import annotations

import sys
from pathlib import Path

from imcnoise.files import atomic_write
from imcnoise.sweep.points import CASE
from imcnoise.sweep.report import load_results

CAL = "chip.calibration.mode"


def _by_case(res: dict) -> dict:
    """(case, calibration, model) -> per-model row; (case, calibration) -> paired B-SNN - BNN row."""
    pm, pr = res["per_model"], res["paired"]
    rows, pairs = {}, {}
    for d in pm.to_dict("records"):
        rows[(d[CASE], d[CAL], d["model"])] = d
    for d in pr[pr.pair == "bsnn-bnn"].to_dict("records"):
        pairs[(d[CASE], d[CAL])] = d
    return rows, pairs


def _cases(pm) -> list[str]:
    return list(dict.fromkeys(pm[CASE]))


def table(adapted_dir: Path, plain_dir: Path) -> str:
    ad, pl = load_results(adapted_dir), load_results(plain_dir)
    a_rows, a_pairs = _by_case(ad)
    p_rows, p_pairs = _by_case(pl)
    trials = ad["trials"]
    n_adapt = int(((ad["scenario"].get("scenario") or {}).get("chip") or {}).get("adaptation", {}).get("images", 256))
    chips, images = trials.trial.nunique(), int(ad["reference"].n_images.iloc[0])
    refs = {r.model: float(r.accuracy) for r in ad["reference"].itertuples()}
    cost = trials.groupby(["point", "model"])[["energy_nj.adaptation_once", "latency_us"]].mean()
    point_of = {(r[CASE], r[CAL]): r["point"] for r in a_rows.values()}
    pct = lambda r: f"{100 * r['mean']:.2f}" if r is not None else "n/a"
    lines = [f"# Per-chip adaptation ({chips} chips x {images} images per point; {n_adapt} training images per chip)", "",
             f"Noise-free (integer engine) on these images: B-SNN {100 * refs['bsnn']:.2f} %, BNN {100 * refs['bnn']:.2f} %. "
             "Accuracy in %, mean over the same chips: reference rows only (ref), + adaptation (ref+ad), trim, trim + "
             "adaptation (trim+ad); B-SNN - BNN of the adapted points [95 % CI]; one-off cost of adaptation per chip "
             f"({n_adapt} inferences: energy, and time at the chip's latency per inference).", "",
             "| architecture | B-SNN ref / ref+ad / trim / trim+ad | BNN ref / ref+ad / trim / trim+ad | "
             "B-SNN - BNN, ref+ad | B-SNN - BNN, trim+ad | adaptation cost B-SNN / BNN |",
             "|---|---|---|---|---|---|"]
    ci = lambda d: f"{100 * d['diff_mean']:+.2f} [{100 * d['diff_ci95_low']:+.2f}, {100 * d['diff_ci95_high']:+.2f}]"
    for case in _cases(ad["per_model"]):
        cells = []
        for m in ("bsnn", "bnn"):
            vals = [p_rows.get((case, "reference", m)), a_rows.get((case, "reference", m)), p_rows.get((case, "trim", m)),
                    a_rows.get((case, "trim", m))]
            cells.append(" / ".join(pct(v) for v in vals))
        costs = []
        for m in ("bsnn", "bnn"):
            c = cost.loc[(point_of[(case, "trim")], m)]
            costs.append(f"{c['energy_nj.adaptation_once'] / 1e3:.0f} uJ, {n_adapt * c['latency_us'] / 1e3:.2f} ms")
        lines.append(f"| {case} | {cells[0]} | {cells[1]} | {ci(a_pairs[(case, 'reference')])} | "
                     f"{ci(a_pairs[(case, 'trim')])} | {costs[0]} / {costs[1]} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    adapted = Path(argv[0] if argv else "results/design_adaptation")
    plain = Path(argv[1] if len(argv) > 1 else "results/design_space")
    md = table(adapted, plain)
    atomic_write(adapted / "adaptation.md", lambda t: t.write_text(md))
    print(md)


if __name__ == "__main__":
    main(sys.argv[1:])
