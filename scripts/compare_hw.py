#!/usr/bin/env python3
"""The four Fashion-MNIST checkpoints on the same chip instances: standard vs hardware-aware.

    .venv/bin/python scripts/compare_hw.py [--standard results/stt_mram_reference] [--hw results/fmnist_hw]

Both sweeps use the same seed, chip, points and images (scenarios/stt_mram_reference.yaml and
scenarios/fmnist_hw.yaml), so chip instance k of a point is the same chip in both: every
comparison is paired over the chip instances both hold. Writes <hw>/comparison.md and .csv:
per point the four accuracies, the B-SNN - BNN gap of each pair, how much of the standard gap the
hardware-aware pair closes, and what hardware-aware training costs on the ideal chip.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pandas as pd
from scipy import stats

from imcnoise.sweep import load_results


def ci(d) -> tuple[float, float, float]:
    d = pd.Series(d).dropna()
    m = float(d.mean())
    h = float(stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else math.nan
    return m, m - h, m + h


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--standard", type=Path, default=Path("results/stt_mram_reference"))
    ap.add_argument("--hw", type=Path, default=Path("results/fmnist_hw"))
    args = ap.parse_args(argv)
    std, hw = load_results(args.standard), load_results(args.hw)
    axes = std["axes"]
    if axes != hw["axes"]:
        raise SystemExit(f"the sweeps have different axes: {axes} vs {hw['axes']}")
    key = [f"param.{a}" for a in axes] + ["trial"]
    a = std["trials"].pivot_table(index=key, columns="model", values="accuracy")
    b = hw["trials"].pivot_table(index=key, columns="model", values="accuracy")
    seeds_a = std["trials"].drop_duplicates(key).set_index(key).chip_seed
    seeds_b = hw["trials"].drop_duplicates(key).set_index(key).chip_seed
    both = a.index.intersection(b.index)
    assert (seeds_a.loc[both] == seeds_b.loc[both]).all(), "the two sweeps do not share chip instances"
    j = pd.concat([a.loc[both].add_suffix("_std"), b.loc[both].add_suffix("_hw")], axis=1).reset_index()
    rows = []
    for vals, g in j.groupby([f"param.{x}" for x in axes], sort=True):
        r = dict(zip(axes, vals if isinstance(vals, tuple) else (vals,)))
        for col in ("bsnn_std", "bnn_std", "bsnn_hw", "bnn_hw"):
            r[col] = 100 * g[col].mean()
        r["gap_std"], r["gap_std_lo"], r["gap_std_hi"] = (100 * x for x in ci(g.bsnn_std - g.bnn_std))
        r["gap_hw"], r["gap_hw_lo"], r["gap_hw_hi"] = (100 * x for x in ci(g.bsnn_hw - g.bnn_hw))
        r["bsnn_gain"], r["bsnn_gain_lo"], r["bsnn_gain_hi"] = (100 * x for x in ci(g.bsnn_hw - g.bsnn_std))
        r["bnn_gain"], r["bnn_gain_lo"], r["bnn_gain_hi"] = (100 * x for x in ci(g.bnn_hw - g.bnn_std))
        r["chips"] = len(g)
        rows.append(r)
    out = pd.DataFrame(rows)
    args.hw.mkdir(parents=True, exist_ok=True)
    out.to_csv(args.hw / "comparison.csv", index=False)
    ref_s = std["reference"].set_index("model").accuracy
    ref_h = hw["reference"].set_index("model").accuracy
    f = lambda m, lo, hi: f"{m:+.2f} [{lo:+.2f}, {hi:+.2f}]"
    lines = ["# Standard vs hardware-aware checkpoints on the same chips", "",
             f"Standard pair: `{args.standard}`; hardware-aware pair: `{args.hw}` (same seed, chips, points and "
             f"{int(std['reference'].n_images.iloc[0])} test images). Accuracy in %, mean over the chip instances both "
             "sweeps hold; differences with 95 % CI (paired over chips).", "",
             f"Ideal chip (noise-free): B-SNN {100 * ref_s['bsnn']:.2f} -> {100 * ref_h['bsnn']:.2f} %, "
             f"BNN {100 * ref_s['bnn']:.2f} -> {100 * ref_h['bnn']:.2f} % (standard -> hardware-aware).", "",
             "| " + " | ".join(a.split(".")[-1] for a in axes) + " | B-SNN std | BNN std | B-SNN hw | BNN hw | "
             "gap std (B-SNN - BNN) | gap hw | B-SNN hw - std | BNN hw - std | chips |",
             "|" + "---|" * (len(axes) + 9)]
    for r in rows:
        lines.append("| " + " | ".join(str(r[a]) for a in axes) + f" | {r['bsnn_std']:.2f} | {r['bnn_std']:.2f} | "
                     f"{r['bsnn_hw']:.2f} | {r['bnn_hw']:.2f} | {f(r['gap_std'], r['gap_std_lo'], r['gap_std_hi'])} | "
                     f"{f(r['gap_hw'], r['gap_hw_lo'], r['gap_hw_hi'])} | {f(r['bsnn_gain'], r['bsnn_gain_lo'], r['bsnn_gain_hi'])} | "
                     f"{f(r['bnn_gain'], r['bnn_gain_lo'], r['bnn_gain_hi'])} | {r['chips']} |")
    text = "\n".join(lines) + "\n"
    (args.hw / "comparison.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
