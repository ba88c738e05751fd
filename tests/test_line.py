"""The summing line (imcnoise/imc/physics/line.py): exact position weights and the first-order
solution against a dense nodal solve written here from Kirchhoff's laws, where the first order
stops holding, and the engines' use of the exact weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from imcnoise.imc.physics.line import (first_order_weights, line_output, node_voltages, position_weights,
                                       worst_node_deviation)


def nodal(g_a, g_b, x, r, v, scheme):
    """Dense nodal analysis of one line, independent of the module: unknown node voltages v_1..v_n
    (current sensing: node 0 is the sense stage at 0 V; voltage sensing: node 0 is the floating sense
    node, an extra unknown with no load). KCL at node j: (v_j - v_{j-1})/r + (v_j - v_{j+1})/r +
    G_A,j (v_j - V x_j) + G_B,j (v_j - V (1 - x_j)) = 0. Returns the sense-stage current, or V_SL."""
    n = len(g_a)
    m = n + 1  # nodes 0..n
    A = np.zeros((m, m))
    b = np.zeros(m)
    gw = 1.0 / r
    for k in range(1, m):  # segment k joins nodes k-1 and k
        A[k, k] += gw
        A[k - 1, k - 1] += gw
        A[k, k - 1] -= gw
        A[k - 1, k] -= gw
    for j in range(1, m):
        A[j, j] += g_a[j - 1] + g_b[j - 1]
        b[j] += g_a[j - 1] * v * x[j - 1] + g_b[j - 1] * v * (1 - x[j - 1])
    if scheme == "current":  # node 0 fixed at 0 V: drop its row and column; the output is the current into it
        sol = np.linalg.solve(A[1:, 1:], b[1:])
        return sol[0] * gw, np.concatenate([[0.0], sol])
    sol = np.linalg.solve(A, b)  # node 0 has no load: its KCL row says v_0 = v_1
    return sol[0], sol


def _line(n, seed, sigma=0.05):
    rng = np.random.default_rng(seed)
    g_on, g_off = 1 / 7.5e3, 1 / 13.5e3  # 6 kOhm / 12 kOhm MTJs with 1.5 kOhm access transistors
    bits = rng.integers(0, 2, n)
    g_a = np.where(bits == 1, g_on, g_off) * np.exp(sigma * rng.standard_normal(n))
    g_b = np.where(bits == 1, g_off, g_on) * np.exp(sigma * rng.standard_normal(n))
    return g_a, g_b, rng.integers(0, 2, n).astype(float), g_on, g_off


@pytest.mark.parametrize("scheme", ["current", "voltage"])
@pytest.mark.parametrize("n,r", [(8, 2.0), (16, 5.0), (64, 2.0), (64, 20.0)])
def test_exact_position_weights_equal_a_dense_nodal_solve(scheme, n, r):
    """The line is linear in its sources V G_read,j (Norton), so the weights are exact at any r:
    the module's output equals the nodal solve to rounding, even where the first order fails."""
    v = 0.2
    for seed in range(3):
        g_a, g_b, x, *_ = _line(n, seed)
        ref, _ = nodal(g_a, g_b, x, r, v, scheme)
        g_read = torch.tensor(x * g_a + (1 - x) * g_b)
        g_tot = torch.tensor(g_a + g_b)
        got = float(line_output(g_read.unsqueeze(0), g_tot.unsqueeze(0), r, scheme, v)[0])
        assert got == pytest.approx(ref, rel=1e-10)
    # and the node voltages (current sensing: v_j = r sum_m min(j, m) i_m)
    _, sol = nodal(g_a, g_b, x, r, v, scheme)
    nv = node_voltages(g_read.unsqueeze(0), g_tot.unsqueeze(0), r, scheme, v)[0].numpy()
    assert np.allclose(nv, sol[1:], rtol=1e-9, atol=1e-12)


def test_first_order_solution_is_within_its_stated_error_where_it_holds():
    """First order (docstring): w_j = 1 - r c_j. Its error against the exact solve falls as r^2 (a
    factor ~4 when r halves), and stays below 0.1 LSB for a 16-cell current line at 2 Ohm per pitch
    (eps = r G_on n^2 / 2 = 0.034 < 0.18 / sqrt(16)); for 64 cells (eps = 0.55) it is off by far more
    than an LSB -- why the engines use the exact weights."""
    v = 0.2
    errs = {}
    for n, r in ((16, 2.0), (16, 1.0), (64, 2.0)):
        worst = 0.0
        for seed in range(5):
            g_a, g_b, x, g_on, g_off = _line(n, seed)
            g_tot = torch.tensor(g_a + g_b)
            g_read = x * g_a + (1 - x) * g_b
            w1 = first_order_weights(g_tot.unsqueeze(0), r)[0].numpy()
            approx = v * float((w1 * g_read).sum())
            exact, _ = nodal(g_a, g_b, x, r, v, "current")
            worst = max(worst, abs(approx - exact) / (v * (g_on - g_off)))  # in LSB (one match)
        errs[n, r] = worst
    assert errs[16, 2.0] < 0.1
    assert 3.0 < errs[16, 2.0] / errs[16, 1.0] < 5.0  # O(r^2)
    assert errs[64, 2.0] > 5.0
    # the exact weights reduce to 1 without wire resistance, and fall along the line
    w = position_weights(torch.full((1, 32), 1.5), 2.0 / 7.5e3)[0]
    assert torch.equal(position_weights(torch.full((1, 8), 1.5), 0.0)[0], torch.ones(8, dtype=torch.float64))
    assert bool((w[1:] < w[:-1]).all()) and float(w[0]) < 1.0


def test_worst_node_deviation_of_a_uniform_current_line_matches_the_continuum_solution():
    """All cells matching on a uniform current line: the continuum solution v(x) has its largest
    value at the far end, v(L)/V = 1 - 1/cosh(theta) with theta^2 = r g n^2 (g = G_on, only the
    read devices source current but every cell loads the line with G_on + G_off: theta^2 uses the
    total, the source G_on). Checked against the discrete solve within 2 %."""
    n, r_ohm = 64, 0.5
    g_on, g_off = 1 / 7.5e3, 1 / 13.5e3
    got = worst_node_deviation(n, g_off / g_on, r_ohm * g_on, "current")
    g_tot = g_on + g_off
    theta = np.sqrt(r_ohm * g_tot * n * n)
    far = g_on / g_tot * (1 - 1 / np.cosh(theta))  # source fraction G_on / G_tot of the V the line would reach
    assert got == pytest.approx(far, rel=0.02)


def test_the_unit_vector_solve_of_the_weights_is_the_general_solve_bit_for_bit():
    """position_weights solves (T + r D) w = e_1 with the right-hand side's zeros dropped from the
    forward sweep (0 + x == x in floating point): over 5000 lines (two full blocks of the solver and
    a ragged one) every weight is bit-identical to the general Thomas solve with an explicit e_1,
    and equals numpy's dense solve of a few of the lines to rounding."""
    from imcnoise.imc.physics.line import _THOMAS_BLOCK, _chain_diag, _thomas

    g = torch.Generator().manual_seed(3)
    n, lines = 63, 2 * _THOMAS_BLOCK + 904
    g_tot = 1.0 + 0.8 * torch.rand(lines, n, generator=g, dtype=torch.float64)  # G_A + G_B in units of G_on
    for r in (0.49 / 7.5e3, 0.05):  # the default 0.49 Ohm per pitch x G_on (7.5 kOhm cells), and a strong drop
        w = position_weights(g_tot, r)
        e1 = torch.zeros(lines, n, dtype=torch.float64)
        e1[:, 0] = 1.0
        assert torch.equal(w, _thomas(_chain_diag(g_tot, r), e1))
        diag = _chain_diag(g_tot, r).numpy()
        for i in (0, _THOMAS_BLOCK, lines - 1):
            a = np.diag(diag[i]) - np.eye(n, k=1) - np.eye(n, k=-1)
            ref = np.linalg.solve(a, np.eye(n)[0])
            assert np.allclose(w[i].numpy(), ref, rtol=1e-12, atol=0)
