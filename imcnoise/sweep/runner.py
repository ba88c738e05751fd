"""Run a scenario: paired Monte Carlo trials over sweep points, resumable, with progress.

Trial k of point p is one chip instance with seed ``derive_seed(scenario seed, "chip", point key, k)``.
Both models run on that same chip instance (same devices, offsets and buffer draws at every
sub-array position), so B-SNN - BNN differences are paired. Results depend only on the seeds,
never on the order, the batching of chips or images, interruptions or the engine.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..data import DataError, load_dataset
from ..imc.analog_chip import AnalogChip, evaluate_chip
from ..imc.fast_engine import FastChipBatch, auto_k, evaluate_chips
from ..imc.fold import fold_checkpoint
from ..imc.xnor_engine import evaluate_xnor
from ..models.checkpoint import CheckpointError, file_sha256, package_versions
from ..seeding import derive_seed
from .points import Point, expand_points, flatten, point_scenario
from .scenario import Scenario, ScenarioError, resolve_checkpoint, scenario_hash
from .store import ResultsStore

MODELS = ("bsnn", "bnn")


def chip_seed(sc: Scenario, point: Point, trial: int) -> int:
    return derive_seed(sc.seed, "chip", point.key, trial)


def ci_halfwidth(values: list[float]) -> float:
    """95 % confidence half-width of the mean (Student t)."""
    from scipy import stats

    n = len(values)
    if n < 2:
        return math.inf
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return float(stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n))


@dataclass
class Prepared:
    scenario: Scenario
    base_dir: Path
    out: Path
    programs: dict
    checkpoints: dict
    hashes: dict
    digest: str
    points: list[Point]
    device: torch.device


def prepare(sc: Scenario, base_dir: Path, out: str | Path | None = None) -> Prepared:
    """Resolve checkpoints, fold them and validate everything before anything is written."""
    problems, ckpts = [], {}
    for m in MODELS:
        try:
            ckpts[m] = resolve_checkpoint(getattr(sc.models, m), base_dir, sc.models.hint)
        except ScenarioError as exc:
            problems.append(str(exc))
    if problems:
        from ..data.registry import locate

        where = locate(sc.dataset.name, sc.dataset.data_dir)
        if where.startswith("not found"):
            problems.append(f"dataset.name: {sc.dataset.name} {where}")
        raise ScenarioError("\n".join(dict.fromkeys(problems)))
    programs, hashes = {}, {}
    for m, p in ckpts.items():
        try:
            prog = fold_checkpoint(p)
        except CheckpointError as exc:
            raise ScenarioError(f"models.{m}: {exc}") from None
        if prog.kind != m:
            raise ScenarioError(f"models.{m}: {p} holds a {prog.kind!r} model, not a {m!r} one")
        programs[m], hashes[m] = prog, file_sha256(p)
    if programs["bsnn"].num_classes != programs["bnn"].num_classes:
        raise ScenarioError("models: the B-SNN and BNN checkpoints have different numbers of classes")
    ds = programs["bsnn"].meta.get("dataset")
    if ds is not None and ds != sc.dataset.name:
        raise ScenarioError(f"dataset.name: {sc.dataset.name!r}, but the checkpoints were trained on {ds!r}")
    dev = sc.run.device
    if dev == "auto":
        dev = "cuda" if torch.cuda.is_available() else "cpu"
    elif dev == "cuda" and not torch.cuda.is_available():
        raise ScenarioError("run.device: 'cuda' requested but no CUDA device is available (allowed: auto, cpu, cuda)")
    out_dir = Path(out or sc.output)
    return Prepared(sc, base_dir, out_dir, programs, ckpts, hashes, scenario_hash(sc, hashes), expand_points(sc),
                    torch.device(dev))


def _load_data(sc: Scenario, limit):
    try:
        return load_dataset(sc.dataset.name, sc.dataset.split, sc.dataset.data_dir).subset(limit)
    except DataError as exc:
        raise ScenarioError(f"dataset: {exc}") from None


def _evaluate(prep: Prepared, model: str, cfg, seeds: list[int], data, input_seed: int, batch_size: int):
    prog = prep.programs[model]
    if prep.scenario.run.engine == "fast":
        batch = FastChipBatch(prog, cfg, seeds, prep.device)
        return evaluate_chips(batch, data, batch_size=batch_size, input_seed=input_seed)
    out = []
    for s in seeds:
        chip = AnalogChip(prog, cfg, s, prep.device)
        out.append(evaluate_chip(chip, data, batch_size=min(batch_size, 32), input_seed=input_seed))
    return out


def run_sweep(prep: Prepared, *, progress: bool = True, log=print) -> ResultsStore:
    from tqdm.auto import tqdm

    sc = prep.scenario
    doc = {"scenario": sc.model_dump(mode="json"), "checkpoints": {m: str(p) for m, p in prep.checkpoints.items()},
           "checkpoint_sha256": prep.hashes}
    base_data = _load_data(sc, sc.dataset.limit)  # fail on data before writing anything
    store = ResultsStore(prep.out, prep.digest, doc)
    point_scs = {p.index: point_scenario(sc, p) for p in prep.points}
    store.add_points([(p.index, p.key, p.params, point_scs[p.index].chip.model_dump(mode="json")) for p in prep.points])
    ref = store.reference()
    for m in MODELS:
        if m not in ref:
            r = evaluate_xnor(prep.programs[m], base_data, input_seed=sc.input_seed)
            store.set_reference(m, r, prep.hashes[m])
    versions = json.dumps(package_versions(), sort_keys=True)
    done = store.finished()
    adaptive = sc.adaptive.ci_target is not None
    per_point = sc.adaptive.max_trials if adaptive else sc.trials
    K = sc.run.chips_per_pass or (auto_k(prep.programs["bsnn"], sc.run.batch_size, prep.device)
                                  if sc.run.engine == "fast" else 1)
    total = len(prep.points) * per_point
    already = sum(1 for p in prep.points for k in range(per_point) if all((p.index, m, k) in done for m in MODELS))
    bar = tqdm(total=total, initial=already, desc=f"{sc.name}: chip pairs", unit="pair", disable=not progress,
               mininterval=1.0, dynamic_ncols=True)
    t_start = time.time()
    for p in prep.points:
        psc = point_scs[p.index]
        data = base_data if psc.dataset.limit == sc.dataset.limit else _load_data(psc, psc.dataset.limit)
        diffs = {}
        acc = {m: {} for m in MODELS}
        for k in range(per_point):  # already stored trials of this point
            if all((p.index, m, k) in done for m in MODELS):
                rows = store.db.execute("SELECT model, accuracy FROM trials WHERE point=? AND trial=?", (p.index, k)).fetchall()
                for m, a in rows:
                    acc[m][k] = a
                diffs[k] = acc["bsnn"][k] - acc["bnn"][k]
        stop = _stop_index(diffs, sc) if adaptive else None
        k = 0
        while stop is None:
            todo = [t for t in range(k, per_point) if t not in diffs][:K]
            if not todo:
                break
            seeds = [chip_seed(sc, p, t) for t in todo]
            res = {m: _evaluate(prep, m, psc.chip, seeds, data, psc.input_seed, sc.run.batch_size) for m in MODELS}
            rows = []
            for i, t in enumerate(todo):
                diffs[t] = res["bsnn"][i].accuracy - res["bnn"][i].accuracy
            keep = todo
            if adaptive:
                stop = _stop_index(diffs, sc)
                if stop is not None:
                    keep = [t for t in todo if t < stop]
                    for t in todo:
                        if t >= stop:
                            diffs.pop(t)
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            for i, t in enumerate(todo):
                if t not in keep:
                    continue
                for m in MODELS:
                    r = res[m][i]
                    rows.append(dict(point=p.index, model=m, trial=t, chip_seed=seeds[i], accuracy=r.accuracy, correct=r.correct,
                                     n_images=r.n, spike_rates=json.dumps(r.spike_rates), errors=None if r.errors is None else json.dumps(r.errors),
                                     wall_s=r.seconds, engine=sc.run.engine, checkpoint_sha256=prep.hashes[m],
                                     scenario_hash=prep.digest, versions=versions, finished_at=now))
            store.add_trials(rows)
            bar.update(len(keep))
            k = max(todo) + 1
        n = len(diffs)
        if adaptive:
            hw = ci_halfwidth([diffs[t] for t in sorted(diffs)])
            reason = (f"ci half-width {hw:.4f} < target {sc.adaptive.ci_target}" if n < sc.adaptive.max_trials
                      else f"max_trials {sc.adaptive.max_trials} reached (half-width {hw:.4f})")
        else:
            reason = f"fixed {sc.trials} trials"
        store.set_stop(p.index, n, reason)
        if adaptive:
            bar.total -= per_point - n
            bar.refresh()
    bar.close()
    log(f"{sc.name}: {len(prep.points)} points done in {time.time() - t_start:.1f} s -> {prep.out}")
    return store


def _stop_index(diffs: dict[int, float], sc: Scenario) -> int | None:
    """Sequential rule: the first n >= min_trials (trials 0..n-1 all present) whose paired CI
    half-width is below the target; max_trials otherwise. Independent of how trials were batched."""
    a = sc.adaptive
    vals = []
    for t in range(a.max_trials):
        if t not in diffs:
            return None
        vals.append(diffs[t])
        n = t + 1
        if n >= a.min_trials and ci_halfwidth(vals) < a.ci_target:
            return n
    return a.max_trials
