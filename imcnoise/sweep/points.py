"""Sweep points: the grid (or zip) of axis values, each with a stable key for seeding."""

from __future__ import annotations

import copy
import itertools
import json
from dataclasses import dataclass
from typing import Any

from .scenario import Scenario, _set_path


CASE = "case"  # the params key of a point's case name


@dataclass(frozen=True)
class Point:
    index: int
    params: dict[str, Any]  # "case" -> case name (scenarios with cases), parameter path -> axis value

    @property
    def key(self) -> str:
        """Canonical text of the point (case and axis values): what identifies it in the store."""
        return json.dumps(self.params, sort_keys=True)

    def label(self) -> str:
        return ", ".join(f"{k.split('.')[-1]}={v}" for k, v in self.params.items()) or "base"


def expand_points(sc: Scenario) -> list[Point]:
    """Every case (or the base scenario) crossed with every combination (grid) or tuple (zip) of the axes."""
    axes = sc.sweep.axes
    combos = [()] if not axes else list(itertools.product(*[a.values for a in axes]) if sc.sweep.mode == "grid"
                                        else zip(*[a.values for a in axes]))
    cases = [c.name for c in sc.sweep.cases] or [None]
    points = []
    for case in cases:
        for values in combos:
            params = {} if case is None else {CASE: case}
            for ax, v in zip(axes, values):
                for t in ax.targets:
                    params[t] = v
            points.append(Point(len(points), params))
    return points


def point_scenario(sc: Scenario, point: Point) -> Scenario:
    """The scenario with the point's case and axis values applied (validated when the scenario was loaded)."""
    d = copy.deepcopy(sc.model_dump(mode="json"))
    settings = dict(next(c.set for c in sc.sweep.cases if c.name == point.params[CASE])) if CASE in point.params else {}
    settings.update({k: v for k, v in point.params.items() if k != CASE})
    for k, v in settings.items():
        _set_path(d, k, v)
    return Scenario.model_validate(d)


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict):
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out
