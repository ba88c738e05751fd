"""Tables, statistics and plots of a sweep's results store.

* ``trials.parquet``: tidy, one row per (point, model, trial) with every parameter value;
* ``summary.csv`` / ``summary.md``: per point and model mean, std, 95 % CI (:mod:`.stats`), n; per
  point the paired B-SNN - BNN difference with its 95 % CI, a paired t-test and a Wilcoxon
  signed-rank test (scipy.stats), and why the point stopped adding trials;
* ``accuracy_vs_<axis>.png``: every model with 95 % CI bands and their noise-free accuracy.

:func:`load_results` returns the same DataFrames for notebooks.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from .points import CASE, flatten
from ..files import atomic_write
from .scenario import compare_pairs, model_order
from .stats import ACCURACY_RANGE, DESCRIPTION, DIFFERENCE_RANGE, mean_ci
from .store import ResultsStore

MODEL_LABEL = {"bsnn": "B-SNN", "bnn": "BNN"}


def trials_frame(store: ResultsStore) -> pd.DataFrame:
    q = ("SELECT t.*, p.point_key, p.params, p.config FROM trials t JOIN points p ON p.point = t.point "
         "ORDER BY t.point, t.trial, t.model")
    df = pd.read_sql_query(q, store.db)
    if df.empty:
        return df
    params = [json.loads(s) for s in df.pop("params")]
    # every result-defining value of the point (chip, inference, data), plus its case name
    configs = [{**flatten(json.loads(c)), **({CASE: p[CASE]} if CASE in p else {})} for c, p in zip(df.pop("config"), params)]
    rates = [json.loads(s) for s in df.pop("spike_rates")]
    energy = [json.loads(s) if isinstance(s, str) else {} for s in df.pop("energy")] if "energy" in df else []
    out = pd.concat([df.reset_index(drop=True),
                     pd.DataFrame(configs).add_prefix("param.").reset_index(drop=True),
                     pd.DataFrame([{f"rate.L{k}": v for k, v in r.items()} for r in rates]).reset_index(drop=True),
                     pd.DataFrame([{f"energy_nj.{k}": v for k, v in e.items()} for e in energy]).reset_index(drop=True)], axis=1)
    return out


def read_errors(errors_json: str) -> tuple[float, float]:
    """(mean, rms) sensed-count error per read over all binary layers of one trial, in LSB."""
    e = json.loads(errors_json)
    reads = sum(v["reads"] for v in e.values())
    mean = sum(v["mean_err"] * v["reads"] for v in e.values()) / reads
    rms = math.sqrt(sum(v["rms_err"] ** 2 * v["reads"] for v in e.values()) / reads)
    return mean, rms


def _axes(store: ResultsStore) -> list[str]:
    row = store.db.execute("SELECT params FROM points ORDER BY point LIMIT 1").fetchone()
    return list(json.loads(row[0]).keys()) if row else []


def model_label(name: str) -> str:
    return MODEL_LABEL.get(name, name)


def _color(models: list[str], name: str) -> str:
    fixed = {"bsnn": "tab:blue", "bnn": "tab:orange"}
    if name in fixed:
        return fixed[name]
    others = [m for m in models if m not in fixed]
    palette = ["tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:gray", "tab:olive", "tab:cyan"]
    return palette[others.index(name) % len(palette)]


def models_and_pairs(trials: pd.DataFrame, scenario: dict) -> tuple[list[str], list[tuple[str, str]]]:
    """The models of a sweep's trials in the scenario's order, and the compare pairs reported."""
    doc = scenario if isinstance(scenario, dict) else {}
    sc = doc.get("scenario", {})
    present = set(trials.model) if "model" in trials else set()
    # the sweep's order (stored as a list: the document's mappings are stored with sorted keys);
    # stores written before 2026-12-02 have none: B-SNN, BNN, then the rest by name (scenario.model_order)
    named = list(doc.get("models") or model_order(sorted(k for k in (sc.get("models") or {}) if k != "hint")))
    models = [m for m in named if m in present] + sorted(present - set(named))
    pairs = [p for p in compare_pairs(models, sc.get("compare")) if p[0] in models and p[1] in models]
    return models, pairs


def summarize(trials: pd.DataFrame, axes: list[str], stops: pd.DataFrame | None = None, models: list[str] | None = None,
              pairs: list[tuple[str, str]] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per point x model statistics, per point x compare pair paired statistics a - b; default
    models B-SNN and BNN, pair B-SNN - BNN)."""
    from scipy import stats

    models = ["bsnn", "bnn"] if models is None else models
    pairs = compare_pairs(models, None) if pairs is None else pairs
    per_model, paired = [], []
    for pt, g in trials.groupby("point", sort=True):
        base = {"point": pt, **{a: g[f"param.{a}"].iloc[0] for a in axes}}
        for m in models:
            v = g.loc[g.model == m, "accuracy"].to_numpy()
            mean, sd, lo, hi = mean_ci(v, ACCURACY_RANGE)
            row = {**base, "model": m, "mean": mean, "std": sd, "ci95_low": lo, "ci95_high": hi, "n": len(v)}
            for col in ("energy_nj", "latency_us"):
                if col in g and g.loc[g.model == m, col].notna().any():
                    row[col] = float(g.loc[g.model == m, col].mean())
            errs = [read_errors(e) for e in g.loc[g.model == m, "errors"] if isinstance(e, str)] if "errors" in g else []
            if errs:
                row["err_mean_lsb"] = float(np.mean([e[0] for e in errs]))
                row["err_rms_lsb"] = float(np.mean([e[1] for e in errs]))
            per_model.append(row)
        piv = g.pivot(index="trial", columns="model", values="accuracy")
        for a, b in pairs:
            both = piv[[a, b]].dropna() if {a, b} <= set(piv.columns) else pd.DataFrame(columns=[a, b])
            d = (both[a] - both[b]).to_numpy(dtype=float)
            mean, sd, lo, hi = mean_ci(d, DIFFERENCE_RANGE)
            t_p = w_p = math.nan
            if len(d) > 1 and np.any(d != d[0]):
                t_p = float(stats.ttest_rel(both[a], both[b]).pvalue)
            if len(d) >= 6 and np.any(d != 0):
                w_p = float(stats.wilcoxon(d).pvalue)
            row = {**base, "diff_mean": mean, "diff_std": sd, "diff_ci95_low": lo, "diff_ci95_high": hi,
                   "n_pairs": len(d), "ttest_rel_p": t_p, "wilcoxon_p": w_p}
            if stops is not None and pt in stops.index:
                row["stop_reason"] = stops.loc[pt, "reason"]
            row["pair"] = f"{a}-{b}"
            paired.append(row)
    return pd.DataFrame(per_model), pd.DataFrame(paired)


TRIALS_FILE = "trials.parquet"


def load_results(directory: str | Path) -> dict[str, pd.DataFrame]:
    """DataFrames of a sweep directory: trials, per_model, paired, reference (and axes, scenario).

    Read from the results store (``results.sqlite``, what a sweep writes) where there is one, else
    from the shipped ``trials.parquet``: it carries the store's axes, scenario, noise-free reference
    accuracies and stop reasons in its metadata (pandas ``attrs``; written by :func:`write_report`),
    so shipped results are read and re-reported without their store. (Files written before
    2026-12-02 carry only the axes: their reference and stops read as empty.)"""
    d = Path(directory)
    if not (d / "results.sqlite").is_file() and (d / TRIALS_FILE).is_file():
        return _from_trials_file(d / TRIALS_FILE)
    store = ResultsStore(d, create=False)
    try:
        trials = trials_frame(store)
        axes = _axes(store)
        stops = pd.read_sql_query("SELECT * FROM stops", store.db).set_index("point")
        if not trials.empty and not stops.empty:
            # a point's table is its first `trials` chip instances: rows a resumed run with fewer trials
            # (or a tighter stop) left in the store are kept there, not reported
            kept = trials.point.map(stops["trials"]).fillna(float("inf"))
            trials = trials[trials.trial < kept].reset_index(drop=True)
        reference = pd.read_sql_query("SELECT model, accuracy, n_images, checkpoint_sha256 FROM reference", store.db)
        scenario = json.loads(store.meta("scenario") or "{}")
    finally:
        store.close()
    return results_from_frames(trials, axes, stops, reference, scenario)


def results_from_frames(trials, axes, stops, reference, scenario) -> dict:
    """The report's dict (trials, per_model, paired, reference, stops, axes, scenario, models, pairs)
    from the trials, stops and reference tables of a sweep and its scenario document."""
    models, pairs = models_and_pairs(trials, scenario)
    per_model, paired = summarize(trials, axes, stops, models, pairs) if not trials.empty else (pd.DataFrame(), pd.DataFrame())
    trials.attrs = {"axes": axes, "scenario": scenario, "reference": reference.to_dict("records"),
                    "stops": stops.reset_index().to_dict("records")}
    return {"trials": trials, "per_model": per_model, "paired": paired, "reference": reference, "axes": axes,
            "scenario": scenario, "stops": stops, "models": models, "pairs": pairs}


def _from_trials_file(path: Path) -> dict:
    try:
        trials = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises its own error types for damaged files
        raise FileNotFoundError(f"{path}: not a readable trials table ({type(exc).__name__}: {exc})") from None
    a = dict(trials.attrs)
    if "axes" not in a:
        raise FileNotFoundError(f"{path}: a trials table without its sweep metadata (axes); re-run the sweep to rebuild it")
    stops = pd.DataFrame(a.get("stops") or [], columns=None)
    stops = stops.set_index("point") if "point" in stops else pd.DataFrame(columns=["trials", "reason"])
    reference = pd.DataFrame(a.get("reference") or [], columns=["model", "accuracy", "n_images", "checkpoint_sha256"])
    return results_from_frames(trials, list(a["axes"]), stops, reference, a.get("scenario") or {})


def _fmt_pct(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.2f}"


def summary_markdown(res: dict) -> str:
    axes, per_model, paired, ref = res["axes"], res["per_model"], res["paired"], res["reference"]
    models, pairs = res["models"], res["pairs"]
    sc = res["scenario"].get("scenario", {})
    refs = {r.model: r.accuracy for r in ref.itertuples()}
    errs = "err_rms_lsb" in per_model.columns
    energy = "energy_nj" in per_model.columns
    labels = [model_label(m) for m in models]
    pair_label = lambda p: f"{model_label(p[0])} - {model_label(p[1])}"
    which = " | ".join(labels)
    diff_text = ("; difference = " + ", ".join(pair_label(p) for p in pairs) + " on the same chip instances (paired), "
                 "with a paired t-test p-value") if pairs else ""
    head = [f"# Sweep `{sc.get('name', '?')}`", "", sc.get("description", "").strip(), "",
            f"Data: {sc.get('dataset', {}).get('name')} / {sc.get('dataset', {}).get('split')}, "
            f"{int(ref.n_images.iloc[0]) if len(ref) else '?'} images. Engine: {sc.get('run', {}).get('engine')}. "
            "Noise-free (ideal chip) accuracy: " + ", ".join(f"{model_label(m)} {_fmt_pct(refs.get(m))} %" for m in models) + ".",
            "", "Accuracy in % (mean over chip instances, " + DESCRIPTION + ")" + diff_text + "."
            + (" err: mean / rms error of a neuron's sensed dot product (one output neuron at one time step, its sensings, "
               f"column tiles and slots added; LSB, all binary layers), {which}." if errs else "")
            + (f" nJ: energy per inference on the chip (imcnoise/imc/physics/energy.py), {which}." if energy else ""),
            ""]
    cols = [a.split(".")[-1] for a in axes]
    pcols = []
    for p in pairs:
        pcols += [f"{pair_label(p)} [95% CI]", "p (t)" if len(pairs) == 1 else f"p (t) {pair_label(p)}"]
    extra = ([f"err {l}" for l in labels] if errs else []) + ([f"nJ {l}" for l in labels] if energy else [])
    header = cols + labels + pcols + ["n"] + extra + ["stop"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    pm = per_model.set_index(["point", "model"])
    pr = paired.set_index(["point", "pair"]) if len(paired) else None
    stops = res.get("stops")
    cell = lambda s: f"{_fmt_pct(s['mean'])} [{_fmt_pct(s['ci95_low'])}, {_fmt_pct(s['ci95_high'])}]"
    err = lambda s: f"{s['err_mean_lsb']:+.2f} / {s['err_rms_lsb']:.2f}" if not pd.isna(s.get("err_rms_lsb")) else "n/a"
    for pt, first in per_model.groupby("point", sort=True):
        vals = [f"{first[a].iloc[0]}" for a in axes]
        rows = [pm.loc[(pt, m)] for m in models]
        pcells = []
        for a, b in pairs:
            r = pr.loc[(pt, f"{a}-{b}")]
            diff = (f"{100 * r.diff_mean:+.2f} [{100 * r.diff_ci95_low:+.2f}, {100 * r.diff_ci95_high:+.2f}]" if r.n_pairs > 1
                    else (f"{100 * r.diff_mean:+.2f}" if r.n_pairs else "n/a"))
            pcells += [diff, "n/a" if math.isnan(r.ttest_rel_p) else f"{r.ttest_rel_p:.2g}"]
        n = int(pr.loc[(pt, f"{pairs[0][0]}-{pairs[0][1]}")].n_pairs) if pairs else int(min(r["n"] for r in rows))
        stop = stops.loc[pt, "reason"] if stops is not None and len(stops) and pt in stops.index else ""
        ecells = ([err(r) for r in rows] if errs else []) + ([f"{r['energy_nj']:.0f}" for r in rows] if energy else [])
        lines.append("| " + " | ".join(vals + [cell(r) for r in rows] + pcells + [str(n)] + ecells + [str(stop)]) + " |")
    return "\n".join(head + lines) + "\n"


def plot_axes(res: dict, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes, pm, ref = res["axes"], res["per_model"], res["reference"]
    refs = {r.model: r.accuracy for r in ref.itertuples()}
    files = []
    if pm.empty:
        return files
    groups = _axis_groups(res)
    for label, paths in groups.items():
        others = [a for a in axes if a not in paths]
        combos = pm[others].drop_duplicates().to_dict("records") if others else [{}]
        combos = combos[:6]
        fig, subs = plt.subplots(1, len(combos), figsize=(5.2 * len(combos), 4.0), squeeze=False, sharey=True)
        numeric = pd.api.types.is_numeric_dtype(pm[paths[0]])
        categories = [] if numeric else list(dict.fromkeys(pm.sort_values("point")[paths[0]]))
        for ax, combo in zip(subs[0], combos):
            sel = pm
            for k, v in combo.items():
                sel = sel[sel[k] == v]
            for m in res["models"]:
                color = _color(res["models"], m)
                s = sel[sel.model == m]
                if numeric:
                    s = s.sort_values(paths[0])
                    x = s[paths[0]].astype(float)
                else:  # e.g. chip.calibration.mode: categories in the scenario's order
                    s = s.assign(_x=s[paths[0]].map(categories.index)).sort_values("_x")
                    x = s["_x"]
                ax.plot(x, 100 * s["mean"], "o-", color=color, label=f"{model_label(m)} (mean, 95% CI)")
                ax.fill_between(x, 100 * s["ci95_low"].fillna(s["mean"]), 100 * s["ci95_high"].fillna(s["mean"]),
                                color=color, alpha=0.2)
                if m in refs:
                    ax.axhline(100 * refs[m], color=color, ls="--", lw=1, label=f"{model_label(m)} noise-free")
            ax.set_xlabel(label)
            if not numeric:
                ax.set_xticks(range(len(categories)), [str(c) for c in categories])
            ax.set_title(", ".join(f"{k.split('.')[-1]}={v}" for k, v in combo.items()) or "", fontsize=9)
            ax.grid(alpha=0.3)
        subs[0][0].set_ylabel("test accuracy (%)")
        subs[0][-1].legend(fontsize=8, loc="lower left")
        sc = res["scenario"].get("scenario", {})
        fig.suptitle(f"{sc.get('name', '')}: accuracy vs {label.split('.')[-1]} "
                     f"({int(pm['n'].max())} chip instances per point)", fontsize=10)
        fig.tight_layout()
        f = out / f"accuracy_vs_{label.split('.')[-1]}.png"
        atomic_write(f, lambda t: fig.savefig(t, dpi=120, format="png"))
        plt.close(fig)
        files.append(f)
    return files


def plot_cases(res: dict, out: Path) -> list[Path]:
    """Bars per case (every model, 95 % CI), one panel per combination of the other axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pm = res["per_model"]
    if pm.empty or CASE not in res["axes"]:
        return []
    others = [a for a in res["axes"] if a != CASE]
    combos = (pm[others].drop_duplicates().to_dict("records") if others else [{}])[:4]
    cases = list(dict.fromkeys(pm[CASE]))
    fig, subs = plt.subplots(len(combos), 1, figsize=(max(6.0, 0.9 * len(cases) + 2), 3.6 * len(combos)), squeeze=False)
    x = np.arange(len(cases))
    for ax, combo in zip(subs[:, 0], combos):
        sel = pm
        for k, v in combo.items():
            sel = sel[sel[k] == v]
        k = len(res["models"])
        width = 0.8 / k
        for i, m in enumerate(res["models"]):
            s = sel[sel.model == m].set_index(CASE).reindex(cases)
            err = np.vstack([s["mean"] - s["ci95_low"].fillna(s["mean"]), s["ci95_high"].fillna(s["mean"]) - s["mean"]])
            ax.bar(x + (i - (k - 1) / 2) * width, 100 * s["mean"], width, yerr=100 * err, color=_color(res["models"], m),
                   capsize=2, label=model_label(m))
        ax.set_xticks(x, cases, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(", ".join(f"{k.split('.')[-1]}={v}" for k, v in combo.items()), fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    subs[0][0].legend(fontsize=8)
    fig.tight_layout()
    f = out / "accuracy_by_case.png"
    atomic_write(f, lambda t: fig.savefig(t, dpi=120, format="png"))
    plt.close(fig)
    return [f]


def first_crossing(x: np.ndarray, y: np.ndarray, threshold: float) -> float:
    """The smallest x at which the piecewise-linear curve y(x) (x ascending) falls below
    ``threshold``: linear interpolation between the last point at or above it and the first below;
    -inf when the first point is already below, +inf when no point is (the tolerance lies beyond
    the swept range)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    below = np.nonzero(y < threshold)[0]
    if len(below) == 0:
        return math.inf
    i = int(below[0])
    if i == 0:
        return -math.inf
    return float(x[i - 1] + (y[i - 1] - threshold) / (y[i - 1] - y[i]) * (x[i] - x[i - 1]))


def tolerance_table(res: dict, axis: str, within: float = 0.01) -> pd.DataFrame:
    """Per case (or the whole sweep) and model: the largest value of ``axis`` at which the mean
    accuracy stays within ``within`` of the model's own noise-free accuracy (the reference table),
    by :func:`first_crossing`; its 95 % CI from the crossings of the per-point CI bounds (lower
    bound: the pessimistic value, upper bound: the optimistic one)."""
    pm, ref = res["per_model"], res["reference"]
    refs = {r.model: float(r.accuracy) for r in ref.itertuples()}
    groups = [CASE] if CASE in pm.columns else []
    rows = []
    for key, g in (pm.groupby(groups, sort=False) if groups else [((), pm)]):
        for m in res["models"]:
            s = g[g.model == m].sort_values(axis)
            if s.empty or m not in refs:
                continue
            thr = refs[m] - within
            x = s[axis].to_numpy(dtype=float)
            row = {"model": m, "ideal": refs[m], "tolerance": first_crossing(x, s["mean"].to_numpy(), thr),
                   "ci95_low": first_crossing(x, s["ci95_low"].fillna(s["mean"]).to_numpy(), thr),
                   "ci95_high": first_crossing(x, s["ci95_high"].fillna(s["mean"]).to_numpy(), thr),
                   "swept": f"{x.min():g} .. {x.max():g}"}
            if groups:
                row = {CASE: key[0] if isinstance(key, tuple) else key, **row}
            rows.append(row)
    return pd.DataFrame(rows)


def pareto_front(energy: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
    """Indices of the points no other point dominates (at most the energy and at least the accuracy,
    better in one), ordered by energy: the accuracy-vs-energy trade a designer can choose from."""
    e, a = np.asarray(energy, dtype=float), np.asarray(accuracy, dtype=float)
    keep = [i for i in range(len(e)) if not np.any((e <= e[i]) & (a >= a[i]) & ((e < e[i]) | (a > a[i])))]
    return np.array(sorted(keep, key=lambda i: (e[i], -a[i])), dtype=int)


def plot_energy(res: dict, out: Path) -> list[Path]:
    """Accuracy vs energy per inference: one marker per sweep point and model (mean over chips,
    95 % CI), each model's Pareto front (:func:`pareto_front`) joined by a line and its points
    labelled with their case / axis values."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pm = res["per_model"]
    if pm.empty or "energy_nj" not in pm:
        return []
    fig, (ax, zoom) = plt.subplots(1, 2, figsize=(12.0, 4.6))
    top = 100 * float(pm["mean"].max())
    for m in res["models"]:
        color = _color(res["models"], m)
        s = pm[pm.model == m]
        for a in (ax, zoom):
            a.errorbar(s["energy_nj"] / 1e3, 100 * s["mean"], yerr=[100 * (s["mean"] - s["ci95_low"].fillna(s["mean"])),
                       100 * (s["ci95_high"].fillna(s["mean"]) - s["mean"])], fmt="o", color=color, alpha=0.8, capsize=2,
                       label=f"{model_label(m)} (each sweep point)")
        s = s.dropna(subset=["energy_nj", "mean"])
        front = s.iloc[pareto_front(s["energy_nj"].to_numpy(), s["mean"].to_numpy())]
        for a in (ax, zoom):
            a.plot(front["energy_nj"] / 1e3, 100 * front["mean"], "-", color=color, lw=1.2, alpha=0.9,
                   label=f"{model_label(m)} Pareto front")
        for i, (_, r) in enumerate(front.iterrows()):  # labelled in the zoom, alternately above and below
            tag = ", ".join(str(r[a]) for a in res["axes"] if a in r.index)
            zoom.annotate(tag, (r["energy_nj"] / 1e3, 100 * r["mean"]), fontsize=6, color=color,
                          xytext=(3, 6 if i % 2 else -10), textcoords="offset points")
    sc = res["scenario"].get("scenario", {})
    for a in (ax, zoom):
        a.set_xscale("log")
        a.set_xlabel("energy per inference on the chip (uJ)")
        a.set_ylabel("test accuracy (%)")
        a.grid(alpha=0.3, which="both")
    zoom.set_ylim(top - 6.0, top + 1.5)
    ax.legend(fontsize=8)
    ax.set_title(f"{sc.get('name', '')}: accuracy vs energy", fontsize=10)
    zoom.set_title("within 6 points of the best, Pareto fronts labelled", fontsize=10)
    fig.tight_layout()
    f = out / "accuracy_vs_energy.png"
    atomic_write(f, lambda t: fig.savefig(t, dpi=120, format="png"))
    plt.close(fig)
    return [f]


def _axis_groups(res: dict) -> dict[str, list[str]]:
    """Axes of the scenario (several paths of one axis move together: plot against the first)."""
    sc = res["scenario"].get("scenario", {})
    groups = {}
    for ax in sc.get("sweep", {}).get("axes", []):
        paths = [ax["path"]] if ax.get("path") else list(ax.get("paths") or [])
        groups[paths[0]] = paths
    return groups


def write_report(directory: str | Path) -> dict:
    out = Path(directory)
    res = load_results(out)
    if res["trials"].empty:
        return res
    atomic_write(out / TRIALS_FILE, lambda t: res["trials"].to_parquet(t, index=False))
    pm = res["per_model"].copy()
    pr = res["paired"].copy()
    if len(pr):
        pr["model"] = pr.pop("pair")  # a - b
    summary = pd.concat([pm, pr.rename(columns={"diff_mean": "mean", "diff_std": "std", "diff_ci95_low": "ci95_low",
                                                "diff_ci95_high": "ci95_high", "n_pairs": "n"})], ignore_index=True)
    atomic_write(out / "summary.csv", lambda t: summary.sort_values(["point", "model"]).to_csv(t, index=False))
    md = summary_markdown(res)
    atomic_write(out / "summary.md", lambda t: t.write_text(md))
    res["markdown"] = md
    res["plots"] = plot_axes(res, out) + plot_cases(res, out) + plot_energy(res, out)
    return res
