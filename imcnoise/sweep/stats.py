"""The one confidence interval of the sweeps: Student t on the mean over chip instances, kept
inside the range the mean can take.

A point's accuracy is a mean over a few chip instances (2 .. 16), each chip's accuracy a number in
[0, 1]; a paired difference (B-SNN - BNN on the same chip) lies in [-1, 1]. The Student-t interval
mean +- t_{0.975, n-1} s / sqrt(n) is the usual one for such means, but on few, spread-out chips it
runs past what a mean can be (2 chips at 50 % and 100 % give 75 +- 449 %). Intersecting it with the
possible range keeps every value it excluded excluded and adds nothing impossible: the reported
interval is [max(lo, mean - h), min(hi, mean + h)]. The adaptive rule (runner.py) stops on the
half-width h itself, before any bound.
"""

from __future__ import annotations

import math

import numpy as np

ACCURACY_RANGE = (0.0, 1.0)
DIFFERENCE_RANGE = (-1.0, 1.0)
DESCRIPTION = ("95 % CI: Student t over chip instances, intersected with the possible range "
               "([0, 100] % for an accuracy, [-100, +100] points for a paired difference)")


def t_halfwidth(values) -> float:
    """95 % half-width of the mean of ``values`` (Student t, n - 1 degrees of freedom); inf for n < 2."""
    from scipy import stats

    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    if n < 2:
        return math.inf
    return float(stats.t.ppf(0.975, n - 1) * v.std(ddof=1) / math.sqrt(n))


def mean_ci(values, bounds: tuple[float, float]) -> tuple[float, float, float, float]:
    """(mean, std, low, high) of ``values``: the 95 % Student-t interval of the mean within
    ``bounds``; NaN where n is too small (mean of none, std and interval of one)."""
    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    if n == 0:
        return math.nan, math.nan, math.nan, math.nan
    mean = float(v.mean())
    if n == 1:
        return mean, math.nan, math.nan, math.nan
    h = t_halfwidth(v)
    return mean, float(v.std(ddof=1)), max(bounds[0], mean - h), min(bounds[1], mean + h)
