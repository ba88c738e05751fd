"""Sweep points: the grid (or zip) of axis values, each with a stable key for seeding."""

from __future__ import annotations

import copy
import itertools
import json
from dataclasses import dataclass
from typing import Any

from .scenario import Scenario, _set_path


@dataclass(frozen=True)
class Point:
    index: int
    params: dict[str, Any]  # parameter path -> value

    @property
    def key(self) -> str:
        """Canonical text of the parameter values: seeds derive from it, not from the point's position."""
        return json.dumps(self.params, sort_keys=True)

    def label(self) -> str:
        return ", ".join(f"{k.split('.')[-1]}={v}" for k, v in self.params.items()) or "base"


def expand_points(sc: Scenario) -> list[Point]:
    axes = sc.sweep.axes
    if not axes:
        return [Point(0, {})]
    combos = itertools.product(*[a.values for a in axes]) if sc.sweep.mode == "grid" else zip(*[a.values for a in axes])
    points = []
    for i, values in enumerate(combos):
        params = {}
        for ax, v in zip(axes, values):
            for t in ax.targets:
                params[t] = v
        points.append(Point(i, params))
    return points


def point_scenario(sc: Scenario, point: Point) -> Scenario:
    """The scenario with the point's values applied (validated when the scenario was loaded)."""
    d = copy.deepcopy(sc.model_dump(mode="json"))
    for k, v in point.params.items():
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
