"""Scenario files: what a Monte Carlo sweep runs (YAML, validated by pydantic).

A bad scenario raises :class:`ScenarioError` with every problem on one line each: the YAML path
of the field, the value found and what is allowed. Nothing is written before a scenario validates.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .. import yamlio
from ..data.registry import DATASETS
from ..imc import AnalogConfig
from ..imc.config import AdaptationConfig, format_validation_error, read_chip_section
from ..models.checkpoint import SHIPPED_DIR, SHIPPED_PREFIX, CheckpointError, locate_checkpoint, shipped_checkpoint  # noqa: F401 (re-exported)

# What determines a sweep point's numbers besides the chip seeds -- the one definition: a point's
# stored configuration (runner.point_config) and, with the seed and the sweep, the scenario hash
# (Scenario.result_defining) are these sections. What can be swept: everything under the roots,
# and the two single fields (the other dataset fields choose the data, not a level of it).
POINT_DEFINING = ("chip", "inference", "dataset", "input_seed")
# Fields added after results were stored, with the value every earlier result had: left out of the
# scenario hash at that value (scenario.result_defining), so the stored results stay this scenario's.
ADDED_AT_DEFAULT = {"chip.mapping": "xnor", "chip.adaptation": AdaptationConfig().model_dump(mode="json")}
SWEEPABLE_ROOTS = ("chip", "inference")
SWEEPABLE_FIELDS = ("dataset.limit", "input_seed")

Scalar = Union[bool, int, float, str, None]


class ScenarioError(ValueError):
    pass


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatasetSpec(_Strict):
    name: str = "fashion-mnist"
    split: Literal["test", "train"] = "test"
    limit: Optional[int] = Field(None, ge=1, description="evaluate the first N images")
    data_dir: Optional[str] = None

    @field_validator("name")
    @classmethod
    def _known(cls, v):
        if v not in DATASETS:
            raise ValueError(f"unknown data set {v!r}; allowed: {sorted(DATASETS)}")
        return v


def compare_pairs(models: list[str], compare) -> list[tuple[str, str]]:
    """The paired differences a - b a sweep reports: ``compare`` as given, else B-SNN - BNN where
    both are models (the one rule, for scenarios and for stored results)."""
    if compare is not None:
        return [(str(a), str(b)) for a, b in compare]
    return [("bsnn", "bnn")] if {"bsnn", "bnn"} <= set(models) else []


def model_order(names: list[str]) -> list[str]:
    """The order of a sweep's models in every table and plot: ``bsnn``, ``bnn``, then the rest as given."""
    return sorted(names, key=lambda m: (m != "bsnn", m != "bnn"))


_MODEL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class ModelsSpec(BaseModel):
    """The models of a sweep, by name: ``{name: checkpoint, ...}`` (a path relative to the scenario
    file, or ``shipped:<name>``), any number of them, all run on the same chip instances. The names
    ``bsnn`` and ``bnn`` must hold a B-SNN and a BNN (the default comparison); ``hint`` is not a
    model: how to obtain missing checkpoints (shown in the error)."""

    model_config = ConfigDict(extra="allow")
    hint: str = Field("", description="how to obtain the checkpoints when they are missing (shown in the error)")

    @model_validator(mode="after")
    def _names(self):
        names = list(self.model_extra or {})
        if not names:
            raise ValueError("name at least one model: models: {name: checkpoint, ...}")
        for n in names:
            if not _MODEL_NAME.match(n):
                raise ValueError(f"model name {n!r}: use lower-case letters, digits and _ (at most 32, a letter first)")
            v = self.model_extra[n]
            if not isinstance(v, str) or not v:
                raise ValueError(f"{n}: expected a checkpoint path or shipped:<name>, got {v!r}")
        return self

    @property
    def names(self) -> list[str]:
        """The model names: B-SNN and BNN first, then the others in the order the scenario gives them."""
        return model_order(list(self.model_extra or {}))

    def checkpoint(self, name: str) -> str:
        return self.model_extra[name]


class Axis(_Strict):
    path: Optional[str] = Field(None, description="parameter path, e.g. chip.device.sigma_r_p")
    paths: Optional[list[str]] = Field(None, description="several parameters set to the same value")
    values: list[Scalar] = Field(..., min_length=1)

    @model_validator(mode="after")
    def _one(self):
        if (self.path is None) == (self.paths is None):
            raise ValueError("give exactly one of 'path' or 'paths'")
        return self

    @property
    def targets(self) -> list[str]:
        return [self.path] if self.path is not None else list(self.paths)

    @property
    def label(self) -> str:
        return self.targets[0]


class Case(_Strict):
    """A named setting of several parameters (e.g. one noise source at one level)."""

    name: str = Field(..., min_length=1)
    set: dict[str, Scalar] = Field(default_factory=dict, description="parameter path -> value")


class SweepSpec(_Strict):
    mode: Literal["grid", "zip"] = Field("grid", description="grid: every combination of the axes; zip: the i-th values together")
    axes: list[Axis] = Field(default_factory=list)
    cases: list[Case] = Field(default_factory=list, description="named cases, each crossed with the axes")

    @model_validator(mode="after")
    def _zip_lengths(self):
        if self.mode == "zip" and len({len(a.values) for a in self.axes}) > 1:
            raise ValueError("mode 'zip' needs axes with equal numbers of values")
        names = [c.name for c in self.cases]
        if len(set(names)) != len(names):
            raise ValueError(f"case names must be unique, got {names}")
        return self

    def targets(self) -> list[tuple[str, str, list]]:
        """(where in the scenario, parameter path, values) of everything the sweep sets."""
        out = [(f"sweep.axes[{i}].{'path' if a.path else 'paths'}", t, list(a.values))
               for i, a in enumerate(self.axes) for t in a.targets]
        out += [(f"sweep.cases[{i}].set", t, [v]) for i, c in enumerate(self.cases) for t, v in c.set.items()]
        return out


class AdaptiveSpec(_Strict):
    ci_target: Optional[float] = Field(None, gt=0, le=1, description="stop a point once the 95% CI half-width of the "
                                                                    "paired accuracy difference of the first compare pair (default B-SNN - BNN) is below this")
    min_trials: int = Field(4, ge=2, le=100000)
    max_trials: int = Field(64, ge=2, le=100000)

    @model_validator(mode="after")
    def _order(self):
        if self.max_trials < self.min_trials:
            raise ValueError(f"max_trials ({self.max_trials}) must be >= min_trials ({self.min_trials})")
        return self


class RunSpec(_Strict):
    engine: Literal["fast", "aihwkit"] = "fast"
    batch_size: int = Field(100, ge=1, le=100000)
    chips_per_pass: Optional[int] = Field(None, ge=1, le=1024, description="chips stacked per pass (fast engine); None = from memory")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    error_stats: bool = Field(False, description="store per-layer sensed-count errors of every trial (slower)")
    workers: Optional[int] = Field(None, ge=1, le=4096, description="run on a local Dask cluster of this many worker processes")
    scheduler: Optional[str] = Field(None, min_length=1, description="run on the Dask cluster of this scheduler address "
                                     "(e.g. tcp://10.0.0.5:8786 or tls://...)")
    threads_per_worker: int = Field(1, ge=1, le=256, description="torch threads of each Dask worker")

    @model_validator(mode="after")
    def _one_cluster(self):
        if self.workers is not None and self.scheduler is not None:
            raise ValueError("give either workers (a local cluster) or scheduler (an existing one), not both")
        return self


class InferenceSpec(_Strict):
    timesteps: Optional[int] = Field(None, ge=1, le=1024, description="B-SNN inference time steps; null = as trained "
                                     "(the BNN has one pass)")


class Scenario(_Strict):
    name: str
    description: str = ""
    chip_file: Optional[str] = Field(None, description="a chip YAML (a chip section, or a scenario) the chip: section "
                                     "starts from, relative to the scenario file; chip: overrides it key by key")
    seed: int = Field(0, ge=0, le=2 ** 62)
    input_seed: int = Field(0, ge=0, le=2 ** 62, description="Poisson seed of the input spikes (same for every chip)")
    dataset: DatasetSpec = Field(default_factory=DatasetSpec)
    models: ModelsSpec
    chip: AnalogConfig = Field(default_factory=AnalogConfig)
    inference: InferenceSpec = Field(default_factory=InferenceSpec)
    sweep: SweepSpec = Field(default_factory=SweepSpec)
    trials: int = Field(8, ge=1, le=100000, description="chip instances per sweep point")
    adaptive: AdaptiveSpec = Field(default_factory=AdaptiveSpec)
    compare: Optional[list[tuple[str, str]]] = Field(
        None, description="paired differences to report, [[a, b], ...] = a - b on the same chips; the first one is what "
        "adaptive.ci_target stops on; default [[bsnn, bnn]] where both are models, else none")
    run: RunSpec = Field(default_factory=RunSpec)
    output: str = Field("results/sweep", description="output directory (relative to the working directory)")

    @model_validator(mode="after")
    def _compare(self):
        names = self.models.names
        for i, (a, b) in enumerate(self.compare or []):
            for n in (a, b):
                if n not in names:
                    raise ValueError(f"compare[{i}]: {n!r} is not a model of this scenario (models: {', '.join(names)})")
            if a == b:
                raise ValueError(f"compare[{i}]: a model compared with itself ({a!r})")
        if self.adaptive.ci_target is not None and not self.pairs:
            raise ValueError("adaptive.ci_target stops on the first compare pair: give compare: [[a, b]]")
        return self

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """The paired differences reported (a - b), in order."""
        return compare_pairs(self.models.names, self.compare)

    def result_defining(self) -> dict:
        """The parts that determine the numbers (not trials, run settings, output or names; the
        comparison only where it decides how many trials an adaptive point runs)."""
        d = self.model_dump(mode="json")
        for path, default in ADDED_AT_DEFAULT.items():  # results stored before the field existed keep their hash
            parent, _, name = path.rpartition(".")
            section = _get_path(d, parent)
            if section.get(name, default) == default:
                section.pop(name, None)
        out = {k: d[k] for k in ("seed", *POINT_DEFINING, "sweep")}
        if self.adaptive.ci_target is not None and self.pairs[:1] != [("bsnn", "bnn")]:
            out["stop_pair"] = list(self.pairs[0])
        return out


# ------------------------------------------------------------------------------- errors
# ------------------------------------------------------------------------------- loading
def _set_path(d: dict, path: str, value) -> None:
    parts = path.split(".")
    if not all(parts):
        raise ScenarioError(f"{path!r}: not a parameter path (expected e.g. chip.device.sigma_r_p)")
    cur = d
    for i, p in enumerate(parts[:-1]):
        if cur.get(p) is None:
            cur[p] = {}
        elif not isinstance(cur[p], dict):
            raise ScenarioError(f"{path}: {'.'.join(parts[:i + 1])} is a value ({cur[p]!r}), not a section with keys")
        cur = cur[p]
    cur[parts[-1]] = value


def _get_path(d: dict, path: str):
    cur = d
    for p in path.split("."):
        if not isinstance(cur, dict) or p not in cur:
            raise KeyError(p)
        cur = cur[p]
    return cur


def parse_set(items: list[str]) -> list[tuple[str, Any]]:
    """``--set path=value`` (value parsed as YAML: numbers, booleans, null, lists)."""
    out = []
    for item in items:
        if "=" not in item:
            raise ScenarioError(f"--set {item!r}: expected path=value, e.g. chip.device.sigma_r_p=0.05")
        k, v = item.split("=", 1)
        try:
            out.append((k.strip(), yamlio.load(v)))
        except yaml.YAMLError as exc:
            raise ScenarioError(f"--set {item!r}: value is not valid YAML ({exc})") from None
    return out


def load_scenario(path: str | Path, overrides: list[tuple[str, Any]] = ()) -> tuple[Scenario, Path]:
    """Read, override and validate a scenario; returns it and the directory it was read from."""
    path = Path(path)
    if not path.is_file():
        raise ScenarioError(f"{path}: scenario file not found")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{path}: not a text file (not UTF-8 at byte {exc.start}); a scenario is YAML text") from None
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read the scenario ({exc.strerror or exc})") from None
    try:
        raw = yamlio.load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ScenarioError(f"{path}: a scenario must be a YAML mapping, found {type(raw).__name__}")
    raw = copy.deepcopy(raw)
    for k, v in overrides:
        try:
            _set_path(raw, k, v)
        except ScenarioError as exc:
            raise ScenarioError(f"--set {exc}") from None
    if raw.get("chip_file") is not None:
        raw["chip"] = merge_chip_file(raw, path)
    return validate_scenario(raw, str(path)), path.parent


def read_chip_file(path: Path, where: str) -> dict:
    """The chip section of a chip YAML (:func:`~imcnoise.imc.config.read_chip_section`), errors prefixed by ``where``."""
    try:
        return read_chip_section(path)
    except ValueError as exc:
        raise ScenarioError(f"{where}: {exc}") from None


def _deep_merge(base: dict, top: dict) -> dict:
    """``top`` over ``base``, key by key; a section naming another ``model`` (a device) replaces it."""
    if "model" in base and "model" in top and base["model"] != top["model"]:
        return copy.deepcopy(top)
    out = copy.deepcopy(base)
    for k, v in top.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def merge_chip_file(raw: dict, path: Path) -> dict:
    """The scenario's chip: section laid over its chip_file (relative to the scenario file)."""
    ref = raw["chip_file"]
    if not isinstance(ref, str) or not ref:
        raise ScenarioError(f"{path}: chip_file: expected a path to a chip YAML (got {ref!r})")
    f = Path(ref) if Path(ref).is_absolute() else path.parent / ref
    if not f.is_file():
        raise ScenarioError(f"{path}: chip_file: {ref!r} not found (looked for {f})")
    top = raw.get("chip") or {}
    if not isinstance(top, dict):
        raise ScenarioError(f"{path}: chip: expected a mapping of chip fields, found {type(top).__name__}")
    return _deep_merge(read_chip_file(f, f"{path}: chip_file"), top)


def validate_scenario(raw: dict, source: str = "scenario") -> Scenario:
    try:
        sc = Scenario.model_validate(raw)
    except ValidationError as exc:
        raise ScenarioError(format_validation_error(exc, source, root=Scenario)) from None
    # every swept parameter must exist and every value must validate there
    base = sc.model_dump(mode="json")
    problems = []
    for where, t, values in sc.sweep.targets():
        if t.split(".")[0] not in SWEEPABLE_ROOTS and t not in SWEEPABLE_FIELDS:
            problems.append(f"{source}: {where}: {t!r} cannot be swept; sweep parameters under "
                            f"{', '.join(r + '.*' for r in SWEEPABLE_ROOTS)} or {', '.join(SWEEPABLE_FIELDS)}")
            continue
        try:
            _get_path(base, t)
        except KeyError:
            parent = t.rsplit(".", 1)[0]
            try:
                keys = sorted(_get_path(base, parent).keys()) if "." in t else sorted(base.keys())
            except (KeyError, AttributeError):
                keys = []
            problems.append(f"{source}: {where}: {t!r} is not a parameter of this scenario"
                            + (f" ({parent} has: {', '.join(keys)})" if keys else ""))
            continue
        if where.startswith("sweep.cases"):
            continue  # a case's settings are validated together, below
        for j, v in enumerate(values):
            problems += _invalid_with(base, {t: v}, source, f"{where.rsplit('.', 1)[0]}.values[{j}] -> ")
    if not problems:  # each case as a whole (its settings may only make sense together, e.g. mapping + scheme)
        for i, case in enumerate(sc.sweep.cases):
            problems += _invalid_with(base, case.set, source, f"sweep.cases[{i}] ({case.name}) -> ")
    if problems:
        raise ScenarioError("\n".join(problems))
    return sc


def _invalid_with(base: dict, settings: dict, source: str, label: str) -> list[str]:
    """The errors of the scenario document ``base`` with ``settings`` (path -> value) applied, each
    prefixed with ``label`` (which axis value or case set them); none when it validates."""
    trial = copy.deepcopy(base)
    for t, v in settings.items():
        _set_path(trial, t, v)
    try:
        Scenario.model_validate(trial)
    except ValidationError as exc:
        msgs = format_validation_error(exc, source, root=Scenario).splitlines()
        return [m.replace(f"{source}: ", f"{source}: {label}", 1) for m in msgs]
    return []


def resolve_checkpoint(ref: str, base_dir: Path, hint: str = "") -> Path:
    """A scenario's model reference: ``shipped:<name>``, or a path relative to the scenario file's
    folder or, failing that, the working directory."""
    try:
        p = locate_checkpoint(ref, [base_dir, Path.cwd()])
    except CheckpointError as exc:
        raise ScenarioError(f"models: {exc}") from None
    if not p.is_file():
        raise ScenarioError(f"models: checkpoint {ref!r} not found (looked in {base_dir} and {Path.cwd()}); "
                            + (hint or "train one with 'imcnoise train' or use shipped:<name>"))
    return p


def scenario_hash(sc: Scenario, checkpoint_hashes: dict[str, str]) -> str:
    doc = {"scenario": sc.result_defining(), "checkpoints": checkpoint_hashes}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
