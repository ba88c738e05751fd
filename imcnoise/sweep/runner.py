"""Run a scenario: paired Monte Carlo trials over sweep points, resumable, with progress.

Trial k is chip instance k, seeded ``derive_seed(scenario seed, "chip", k)`` at EVERY point:
common random numbers. The chip keeps its underlying standard-normal and uniform draws (devices,
reference columns, comparator offsets, buffer gains, per-read noise) across the sweep, scaled by
each point's sigmas and thresholded by its fault probabilities, so a chip's accuracy moves
smoothly along an axis and differences between points are paired too. Both models run on that
same chip instance (same draws at every sub-array position), so B-SNN - BNN differences are
paired. Results depend only on the seeds, never on the order, the batching of chips or images,
interruptions or the engine.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..data import DataError, load_dataset
from ..imc import (AnalogChip, ChipLimitError, FastChipBatch, adapt, auto_k, check_buildable, evaluate, evaluate_xnor,
                   fold_checkpoint, inference_energy, poisson_rate, with_statistics)
from ..models.checkpoint import CheckpointError, file_sha256, package_versions
from ..seeding import derive_seed
from .points import Point, expand_points, point_scenario
from .scenario import POINT_DEFINING, Scenario, ScenarioError, resolve_checkpoint, scenario_hash
from .stats import t_halfwidth
from .store import ResultsStore

KINDS = ("bsnn", "bnn")  # what a chip runs; the models named bsnn / bnn must be of that kind


def chip_seed(sc: Scenario, trial: int) -> int:
    """Chip instance ``trial`` of the scenario: the same at every point (common random numbers)."""
    return derive_seed(sc.seed, "chip", trial)


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
    cache: dict = dataclasses.field(default_factory=dict, repr=False)  # adaptation images and statistics, per process

    @property
    def models(self) -> list[str]:
        """The scenario's model names, in its order."""
        return list(self.programs)


def prepare(sc: Scenario, base_dir: Path, out: str | Path | None = None) -> Prepared:
    """Resolve checkpoints, fold them and validate everything before anything is written."""
    problems, ckpts = [], {}
    for m in sc.models.names:
        try:
            ckpts[m] = resolve_checkpoint(sc.models.checkpoint(m), base_dir, sc.models.hint)
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
        except (CheckpointError, ValueError) as exc:  # unreadable, or not a model the chip runs
            raise ScenarioError(f"models.{m}: {exc}") from None
        if m in KINDS and prog.kind != m:
            raise ScenarioError(f"models.{m}: {p} holds a {prog.kind!r} model, not a {m!r} one")
        programs[m], hashes[m] = prog, file_sha256(p)
    classes = {m: prog.num_classes for m, prog in programs.items()}
    if len(set(classes.values())) > 1:
        raise ScenarioError(f"models: the checkpoints have different numbers of classes ({classes})")
    for m, prog in programs.items():  # each model's own data set (a BNN of another data set fails later otherwise)
        ds = prog.meta.get("dataset")
        if ds is not None and ds != sc.dataset.name:
            raise ScenarioError(f"dataset.name: {sc.dataset.name!r}, but models.{m} ({ckpts[m]}) was trained on {ds!r}")
    dev = sc.run.device
    if dev == "auto":
        dev = "cuda" if torch.cuda.is_available() else "cpu"
    elif dev == "cuda" and not torch.cuda.is_available():
        raise ScenarioError("run.device: 'cuda' requested but no CUDA device is available (allowed: auto, cpu, cuda)")
    points = expand_points(sc)
    check_points(sc, points)
    out_dir = Path(out or sc.output)
    return Prepared(sc, base_dir, out_dir, programs, ckpts, hashes, scenario_hash(sc, hashes), points,
                    torch.device(dev))


def check_points(sc: Scenario, points: list[Point]) -> None:
    """Every point's chip must be buildable (a combination of axis values can exceed a limit that no
    single value does): one error naming the point, the limit, the value and what sets it."""
    problems = []
    for p in points:
        psc = point_scenario(sc, p)
        try:
            check_buildable(psc.chip)
        except ChipLimitError as exc:
            problems.append(f"sweep point {p.index} ({p.label()}): {exc}")
        if psc.chip.adaptation.mode != "off" and psc.dataset.split == "train" and psc.dataset.limit is None:
            problems.append(f"sweep point {p.index} ({p.label()}): chip.adaptation.mode = {psc.chip.adaptation.mode} runs "
                            "training images the chip never evaluates, but dataset.split = train with no dataset.limit "
                            "evaluates every training image: set dataset.limit, use split test, or adaptation mode off")
    if problems:
        more = f"\n... and {len(problems) - 5} more points" if len(problems) > 5 else ""
        raise ScenarioError("\n".join(problems[:5]) + more)


def load_data(sc: Scenario, limit):
    """The scenario's data set, its first ``limit`` images (ScenarioError naming ``dataset`` when it cannot be read)."""
    try:
        return load_dataset(sc.dataset.name, sc.dataset.split, sc.dataset.data_dir).subset(limit)
    except DataError as exc:
        raise ScenarioError(f"dataset: {exc}") from None


def point_program(prep: Prepared, model: str, psc: Scenario):
    """The model's chip program at a point: the B-SNN at the point's inference time steps."""
    prog = prep.programs[model]
    T = psc.inference.timesteps
    return dataclasses.replace(prog, timesteps=T) if prog.kind == "bsnn" and T is not None and T != prog.timesteps else prog


def adaptation_indices(sc: Scenario, n: int, size: int) -> torch.Tensor:
    """Training-set indices of the ``n`` adaptation images of a scenario (sorted): a sample drawn
    with the scenario's seed from the training split (of ``size`` images), leaving out the images
    the sweep evaluates when it evaluates the training split (its first ``dataset.limit``) -- so
    adaptation never sees an evaluation image."""
    first = sc.dataset.limit if sc.dataset.split == "train" else 0
    if first is None or size - first < n:
        raise ScenarioError(f"chip.adaptation.images: {n} training images needed, {max(0, size - (first or size))} "
                            f"are not evaluated (training split of {size} images)")
    g = torch.Generator().manual_seed(derive_seed(sc.seed, "adaptation-images") & ((1 << 63) - 1))
    return torch.sort(first + torch.randperm(size - first, generator=g)[:n]).values


def adaptation_data(prep: Prepared, psc: Scenario):
    """(images, training-set indices) of the point's adaptation images (cached per process)."""
    n = psc.chip.adaptation.images
    key = ("adaptation-data", psc.dataset.name, psc.dataset.data_dir, psc.dataset.split, psc.dataset.limit, n)
    if key not in prep.cache:
        try:
            train = load_dataset(psc.dataset.name, "train", psc.dataset.data_dir)
        except DataError as exc:
            raise ScenarioError(f"chip.adaptation: its training images: {exc}") from None
        idx = adaptation_indices(psc, n, len(train))
        prep.cache[key] = (train.images[idx], idx)
    return prep.cache[key]


def adapted_program(prep: Prepared, model: str, psc: Scenario):
    """The model's program at the point with the software statistics of the adaptation images
    stored in it (computed once per process, program and images)."""
    prog = point_program(prep, model, psc)
    images, idx = adaptation_data(prep, psc)
    key = ("statistics", model, prog.timesteps, psc.input_seed, tuple(idx.tolist()))
    if key not in prep.cache:
        prep.cache[key] = with_statistics(prog, images, idx, psc.input_seed,
                                          f"{psc.dataset.name} train, {len(idx)} images (seed-drawn)")
    return prep.cache[key]


def _evaluate(prep: Prepared, model: str, psc: Scenario, seeds: list[int], data):
    run, adaptation = prep.scenario.run, psc.chip.adaptation
    prog = point_program(prep, model, psc) if adaptation.mode == "off" else adapted_program(prep, model, psc)
    kw = dict(input_seed=psc.input_seed, error_stats=run.error_stats, activity=True)

    def adapted(engine):
        if adaptation.mode != "off":
            adapt(engine, *adaptation_data(prep, psc), psc.input_seed, prog.statistics, adaptation)
        return engine

    if run.engine == "fast":
        return evaluate(adapted(FastChipBatch(prog, psc.chip, seeds, prep.device)), data, batch_size=run.batch_size, **kw)
    return [evaluate(adapted(AnalogChip(prog, psc.chip, s, prep.device)), data, batch_size=min(run.batch_size, 32), **kw)[0]
            for s in seeds]


class StopRule:
    """How many chip instances a point gets: ``trials``, or (adaptive) trials 0, 1, ... until the
    paired CI half-width is below ``ci_target``. Sequential: the decision after n trials depends
    only on trials 0..n-1, never on how trials were batched or resumed."""

    def __init__(self, sc: Scenario):
        self.adaptive = sc.adaptive if sc.adaptive.ci_target is not None else None
        self.planned = self.adaptive.max_trials if self.adaptive else sc.trials
        self.models = sc.models.names
        self.pair = sc.pairs[0] if sc.pairs else None  # the difference the adaptive rule stops on

    def difference(self, accuracy: dict[str, float]) -> float:
        """One trial's paired difference a - b of the first compare pair (0 when nothing is compared)."""
        return accuracy[self.pair[0]] - accuracy[self.pair[1]] if self.pair else 0.0

    def stop_index(self, diffs: dict[int, float]) -> int | None:
        """Number of trials the point keeps, once known (None: more trials needed)."""
        if self.adaptive is None:
            return self.planned if all(t in diffs for t in range(self.planned)) else None
        a, vals = self.adaptive, []
        for t in range(a.max_trials):
            if t not in diffs:
                return None
            vals.append(diffs[t])
            n = t + 1
            if n >= a.min_trials and t_halfwidth(vals) < a.ci_target:
                return n
        return a.max_trials

    def reason(self, diffs: dict[int, float]) -> str:
        if self.adaptive is None:
            return f"fixed {self.planned} trials"
        hw = t_halfwidth([diffs[t] for t in sorted(diffs)])
        return (f"ci half-width {hw:.4f} < target {self.adaptive.ci_target}" if len(diffs) < self.adaptive.max_trials
                else f"max_trials {self.adaptive.max_trials} reached (half-width {hw:.4f})")


def trial_rows(prep: Prepared, point: Point, psc: Scenario, trials: list[int], data, versions: str) -> list[dict]:
    """The unit of work: chip instances ``trials`` of one point, every model on the same chips."""
    seeds = [chip_seed(prep.scenario, t) for t in trials]
    res = {m: _evaluate(prep, m, psc, seeds, data) for m in prep.models}
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    rows = []
    for i, t in enumerate(trials):
        for m in prep.models:
            r = res[m][i]
            energy = inference_energy(point_program(prep, m, psc), psc.chip, r.activity, r.spike_rates,
                                      poisson_rate(data.images, prep.programs[m].image_size)).to_dict()
            if psc.chip.adaptation.mode != "off":  # once per chip, not per inference: N inferences of the chip
                energy["components_nj"]["adaptation_once"] = psc.chip.adaptation.images * energy["total_nj"]
            rows.append(dict(point=point.index, model=m, trial=t, chip_seed=seeds[i], accuracy=r.accuracy, correct=r.correct,
                             n_images=r.n, spike_rates=json.dumps(r.spike_rates),
                             errors=None if r.errors is None else json.dumps(r.errors), energy_nj=energy["total_nj"],
                             latency_us=energy["latency_us"], energy=json.dumps(energy["components_nj"]), wall_s=r.seconds,
                             engine=prep.scenario.run.engine, checkpoint_sha256=prep.hashes[m], scenario_hash=prep.digest,
                             versions=versions, finished_at=now))
    return rows


def _diffs(stored: dict[int, dict[str, float]], rule: "StopRule") -> dict[int, float]:
    """The first compare pair's differences (0 where nothing is compared) of the trials whose models
    are all stored."""
    return {t: rule.difference(a) for t, a in stored.items() if all(m in a for m in rule.models)}


def point_config(psc: Scenario) -> dict:
    """What defines a point's numbers besides the seeds: the chip, the inference settings and the data."""
    d = psc.model_dump(mode="json")
    return {k: d[k] for k in POINT_DEFINING}


def open_store(prep: Prepared, base_data) -> ResultsStore:
    """The results store of the sweep, with its points and the noise-free reference accuracies."""
    sc = prep.scenario
    doc = {"scenario": sc.model_dump(mode="json"), "checkpoints": {m: str(p) for m, p in prep.checkpoints.items()},
           "checkpoint_sha256": prep.hashes, "models": prep.models}
    store = ResultsStore(prep.out, prep.digest, doc)
    try:
        store.add_points([(p.index, p.key, p.params, point_config(point_scenario(sc, p))) for p in prep.points])
        ref = store.reference()
        for m in prep.models:
            if m not in ref:
                store.set_reference(m, evaluate_xnor(prep.programs[m], base_data, input_seed=sc.input_seed), prep.hashes[m])
    except BaseException:
        store.close()
        raise
    return store


class PointState:
    """What a point has and still needs: its trials' paired differences, the stop rule, the next
    block of trials to run, and which finished trials may be stored. Every executor (in process,
    Dask) drives its points through this, so they store exactly the same trials."""

    def __init__(self, point: Point, rule: StopRule, stored: dict[int, float]):
        self.point, self.rule = point, rule
        self.diffs = {t: d for t, d in stored.items() if t < rule.planned}
        self.submitted = set(self.diffs)
        self.waiting: dict[int, list[dict]] = {}  # adaptive: finished, not yet known to be kept
        self.stop = rule.stop_index(self.diffs)
        self.in_flight = 0

    @property
    def done(self) -> bool:
        return self.stop is not None or (not self.rule.adaptive and len(self.submitted) == self.rule.planned
                                          and self.in_flight == 0)

    def next_block(self, size: int) -> list[int]:
        """Up to ``size`` trials not yet run, lowest first (empty once the point needs no more)."""
        if self.stop is not None:
            return []
        block = [t for t in range(self.rule.planned) if t not in self.submitted][:size]
        self.submitted.update(block)
        self.in_flight += bool(block)
        return block

    def finish(self, rows: list[dict]) -> list[dict]:
        """A block's rows arrived: the rows that can be stored now. Adaptive: a trial is kept iff the
        sequential rule has not stopped before it, known once every earlier trial is in."""
        self.in_flight -= 1
        if self.stop is not None:  # run ahead of a stop already decided
            return []
        acc: dict[int, dict[str, float]] = {}
        for r in rows:
            acc.setdefault(r["trial"], {})[r["model"]] = r["accuracy"]
        for t, a in acc.items():
            self.diffs[t] = self.rule.difference(a)
        if not self.rule.adaptive:
            return rows
        for r in rows:
            self.waiting.setdefault(r["trial"], []).append(r)
        self.stop = self.rule.stop_index(self.diffs)
        if self.stop is not None:
            self.diffs = {t: d for t, d in self.diffs.items() if t < self.stop}
        prefix = self.stop if self.stop is not None else next(t for t in range(self.rule.planned + 1) if t not in self.diffs)
        ready = [t for t in self.waiting if t < prefix]
        out = [r for t in sorted(ready) for r in self.waiting.pop(t)]
        if self.stop is not None:
            self.waiting.clear()
        return out

    def reason(self) -> str:
        return self.rule.reason(self.diffs)


def chips_per_block(prep: Prepared) -> int:
    sc = prep.scenario
    return sc.run.chips_per_pass or (min(auto_k(p, sc.run.batch_size, prep.device, sc.chip.array) for p in prep.programs.values())
                                     if sc.run.engine == "fast" else 1)


def start_sweep(prep: Prepared, progress: bool):
    """Open the store (reference accuracies first), the points' states and the progress bar."""
    from tqdm.auto import tqdm

    sc = prep.scenario
    base_data = load_data(sc, sc.dataset.limit)  # fail on data before writing anything
    store = open_store(prep, base_data)
    rule = StopRule(sc)
    states = [PointState(p, rule, _diffs(store.point_accuracies(p.index), rule)) for p in prep.points]
    already = sum(len(s.diffs) for s in states)
    bar = tqdm(total=len(prep.points) * rule.planned, initial=already, desc=f"{sc.name}: chips", unit="chip",
               disable=not progress, mininterval=1.0, dynamic_ncols=True)
    return store, base_data, states, bar


def finish_point(store: ResultsStore, state: PointState, bar) -> None:
    store.set_stop(state.point.index, len(state.diffs), state.reason())
    if state.rule.adaptive:
        bar.total -= state.rule.planned - len(state.diffs)
        bar.refresh()


def point_data(prep: Prepared, psc: Scenario, base_data):
    return base_data if psc.dataset.limit == prep.scenario.dataset.limit else load_data(psc, psc.dataset.limit)


def run_sweep(prep: Prepared, *, progress: bool = True, log=print) -> ResultsStore:
    """Run every point's missing trials in this process, a block of chips per pass."""
    sc = prep.scenario
    store, base_data, states, bar = start_sweep(prep, progress)
    versions = json.dumps(package_versions(), sort_keys=True)
    K = chips_per_block(prep)
    t_start = time.time()
    try:
        for st in states:
            psc = point_scenario(sc, st.point)
            data = point_data(prep, psc, base_data)
            while block := st.next_block(K):
                rows = st.finish(trial_rows(prep, st.point, psc, block, data, versions))
                store.add_trials(rows)
                bar.update(len(rows) // len(prep.models))
            finish_point(store, st, bar)
    except BaseException:
        store.close()  # what is stored stays; the directory's lock is released
        raise
    finally:
        bar.close()
    log(f"{sc.name}: {len(prep.points)} points done in {time.time() - t_start:.1f} s -> {prep.out}")
    return store
