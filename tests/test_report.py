"""Report helpers that need no sweep: the accuracy-vs-energy Pareto front."""

from __future__ import annotations

import numpy as np

from imcnoise.sweep.report import pareto_front


def test_pareto_front_keeps_only_undominated_points_in_energy_order():
    """Points (energy, accuracy): A (1, 0.80), B (2, 0.85), C (2, 0.84), D (3, 0.83), E (4, 0.90),
    F (0.5, 0.70), G (4, 0.90) (a tie with E). By hand: C is dominated by B (same energy, lower
    accuracy), D by B (less energy, higher accuracy); E and G dominate nobody and are dominated by
    nobody (equal), so the front is F, A, B, E, G (indices 5, 0, 1, 4, 6)."""
    e = np.array([1, 2, 2, 3, 4, 0.5, 4])
    a = np.array([0.80, 0.85, 0.84, 0.83, 0.90, 0.70, 0.90])
    assert pareto_front(e, a).tolist() == [5, 0, 1, 4, 6]
    assert pareto_front(np.array([1.0]), np.array([0.5])).tolist() == [0]


def test_first_crossing_interpolates_between_the_points_around_the_threshold():
    """y = 0.90, 0.89, 0.85, 0.80 at x = 0, 1, 2, 3 and threshold 0.88: the curve crosses between
    x = 1 (0.89) and x = 2 (0.85) at 1 + (0.89 - 0.88) / (0.89 - 0.85) = 1.25. Already below at the
    first point: -inf; never below: +inf."""
    from imcnoise.sweep.report import first_crossing

    x = np.array([0.0, 1.0, 2.0, 3.0])
    assert first_crossing(x, np.array([0.90, 0.89, 0.85, 0.80]), 0.88) == 1.25
    assert first_crossing(x, np.array([0.87, 0.89, 0.85, 0.80]), 0.88) == -np.inf
    assert first_crossing(x, np.array([0.90, 0.90, 0.89, 0.885]), 0.88) == np.inf


def test_tolerance_table_uses_each_models_own_ideal_accuracy():
    """Two models on one axis: A ideal 0.90 (threshold 0.89) with means 0.90, 0.88 at x = 0, 0.1
    crosses at 0.05; B ideal 0.80 (threshold 0.79) with means 0.80, 0.795, 0.70 at 0, 0.1, 0.2
    crosses at 0.1 + 0.005 / 0.095 * 0.1 = 0.10526. CI bounds of A: the upper one (0.91, 0.90)
    never falls below 0.89 (inf); the lower one starts at the threshold, 0.89, so it crosses at 0."""
    import pandas as pd

    from imcnoise.sweep.report import tolerance_table

    pm = pd.DataFrame([
        {"model": "a", "x": 0.0, "mean": 0.90, "ci95_low": 0.89, "ci95_high": 0.91},
        {"model": "a", "x": 0.1, "mean": 0.88, "ci95_low": 0.86, "ci95_high": 0.90},
        {"model": "b", "x": 0.0, "mean": 0.80, "ci95_low": 0.80, "ci95_high": 0.80},
        {"model": "b", "x": 0.1, "mean": 0.795, "ci95_low": 0.795, "ci95_high": 0.795},
        {"model": "b", "x": 0.2, "mean": 0.70, "ci95_low": 0.70, "ci95_high": 0.70}])
    ref = pd.DataFrame([{"model": "a", "accuracy": 0.90}, {"model": "b", "accuracy": 0.80}])
    t = tolerance_table({"per_model": pm, "reference": ref, "models": ["a", "b"]}, "x").set_index("model")
    assert abs(t.loc["a", "tolerance"] - 0.05) < 1e-12 and t.loc["a", "ci95_high"] == np.inf
    assert abs(t.loc["a", "ci95_low"] - 0.0) < 1e-12
    assert abs(t.loc["b", "tolerance"] - (0.1 + 0.005 / 0.095 * 0.1)) < 1e-12
