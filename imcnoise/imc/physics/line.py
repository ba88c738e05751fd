"""The summing line of one sensing: wire resistance, IR drop and the position weight of every cell.

A sensing of n cells shares one summing line (source line). Cell j (j = 1..n, j = 1 nearest the
sense end, node 0) drives node j through its two devices: line A_j is at V x_j, line B_j at
V (1 - x_j), the undriven line at 0 V. Segment m (between nodes m-1 and m) has the wire
resistance r per cell pitch. With G_read,j = x_j G_A,j + (1 - x_j) G_B,j and
G_tot,j = G_A,j + G_B,j, the current cell j pushes into node j is

    i_j = G_A,j (V x_j - v_j) + G_B,j (V (1 - x_j) - v_j) = V G_read,j - G_tot,j v_j,

so each cell is a Norton source V G_read,j in parallel with G_tot,j to ground: only the source
depends on the input. KCL and Ohm's law along the chain give v_j = v_0 + r sum_k min(j, k) i_k,
i.e. with K_jk = min(j, k) and D = diag(G_tot):

* **current sensing** (node 0 held at 0 V by the sense stage): the output current is
  ``I = V sum_k w_k G_read,k`` with ``w = (1 + r K D)^-1 1`` -- EXACTLY, for ohmic devices: the
  weights depend on the static conductances only, not on the inputs;
* **voltage sensing** (node 0 floating, no net current): by Thevenin's theorem the open-circuit
  voltage is the short-circuit current over the Norton admittance,
  ``V_SL = V (w . G_read) / (w . G_tot)`` -- exact as well.

First order in r (the Neumann series w = 1 - r K D 1 + ..., with K G_tot = c):

    w_j ~= 1 - r c_j,   c_j = sum_{m<=j} Gamma_m,   Gamma_m = sum_{k>=m} G_tot,k

    current:  I    ~= V sum_j G_read,j (1 - r c_j)
    voltage:  V_SL ~= (V / S) sum_j G_read,j [1 - r (c_j - cbar)],  S = sum_j G_tot,j,
              cbar = sum_j G_tot,j c_j / S = sum_m Gamma_m^2 / S

(so in voltage sensing only the *distribution* of matches along the line matters: a pattern with
G_read proportional to G_tot leaves the whole line at one voltage and no current flows). The
series converges only while r g n^2 < pi^2 / 4 (g = G_on + G_off; the all-on uniform line is
I / I_0 = tanh(theta) / theta, theta^2 = r g n^2), and its remainder is ~ 2.9 n eps^2 match steps
for current sensing (eps = r G_on n^2 / 2) and ~ 0.065 n eps^2 for voltage sensing: the
first-order form is within 0.1 LSB only for eps < 0.18 / sqrt(n) (current) and 1.27 / sqrt(n)
(voltage) -- for current sensing of 64 MTJ cells at 2 Ohm per pitch (eps = 0.55) it is off by
hundreds of LSB. (Derivation and numbers checked independently against exact nodal solves;
tests/test_line.py checks both forms against a dense nodal solve.) The engines therefore use the
exact weights: ``w`` solves the tridiagonal system

    (T + r D) w = e_1,   T = K^-1 = tridiag(-1, [2, ..., 2, 1], -1),

by the Thomas algorithm, per line, once per chip. What the model leaves out is the devices' bias
dependence (an MTJ's TMR falls with the voltage across it): it holds while the line's node
voltages stay close to their nominal values, which :func:`worst_node_deviation` measures and
:mod:`.limits` bounds.
"""

from __future__ import annotations

import torch


_THOMAS_BLOCK = 2048  # lines per block: its [n, block] float64 arrays stay in the L2 cache


def _thomas(diag: torch.Tensor, rhs: torch.Tensor | None) -> torch.Tensor:
    """Solve tridiag(-1, diag, -1) x = rhs along the last axis (float64, batched over the leading
    axes; ``rhs=None``: the unit vector e_1 of :func:`position_weights`). numpy on position-major
    blocks of lines: each step is a contiguous vector operation over the lines of a block, and a block's arrays stay in cache (measured on 150,000 lines of 63 cells:
    0.14 s in blocks of 1024-4096 lines against 1.40 s for all lines at once, identical bits -- each
    line's arithmetic is the same sequence of float64 operations either way)."""
    import numpy as np

    n = diag.shape[-1]
    B = np.asarray(diag.detach().cpu().numpy(), dtype=np.float64).reshape(-1, n)  # no copy when already float64
    R = None if rhs is None else np.asarray(rhs.detach().cpu().numpy(), dtype=np.float64).reshape(-1, n)
    out = np.empty_like(B)
    for s in range(0, B.shape[0], _THOMAS_BLOCK):
        b = np.ascontiguousarray(B[s:s + _THOMAS_BLOCK].T)  # [n, lines of the block]
        cp = np.empty_like(b)
        dp = np.empty_like(b)
        cp[0] = -1.0 / b[0]
        if R is None:  # rhs = e_1: d_j = 0 for j > 0, and 0 + x == x exactly: the same bits, half the work
            dp[0] = 1.0 / b[0]
            for j in range(1, n):
                m = b[j] + cp[j - 1]
                cp[j] = -1.0 / m
                dp[j] = dp[j - 1] / m
        else:
            d = np.ascontiguousarray(R[s:s + _THOMAS_BLOCK].T)
            dp[0] = d[0] / b[0]
            for j in range(1, n):
                m = b[j] + cp[j - 1]  # b_j - a_j c'_{j-1} with a_j = -1
                cp[j] = -1.0 / m
                dp[j] = (d[j] + dp[j - 1]) / m
        x = dp  # back substitution in place: x_j needs dp_j and x_{j+1} only
        for j in range(n - 2, -1, -1):
            x[j] -= cp[j] * x[j + 1]
        out[s:s + _THOMAS_BLOCK] = x.T
    return torch.from_numpy(out).view(diag.shape).to(diag.device)


def _chain_diag(g_tot: torch.Tensor, r: float) -> torch.Tensor:
    """Diagonal of T + r D: 2 + r G_tot,j, the last 1 + r G_tot,n (T = K^-1)."""
    d = 2.0 + r * g_tot.double()
    d[..., -1] -= 1.0
    return d


def position_weights(g_tot: torch.Tensor, r: float) -> torch.Tensor:
    """Exact weight w_j of every cell of each line (``g_tot`` ``[..., n]``, conductances and ``r`` in
    matching units, e.g. normalised to G_on and r * G_on): I = V sum w G_read. All ones when r = 0."""
    if r == 0:
        return torch.ones_like(g_tot, dtype=torch.float64)
    return _thomas(_chain_diag(g_tot, r), None)  # rhs = e_1


def first_order_weights(g_tot: torch.Tensor, r: float) -> torch.Tensor:
    """The first-order weights 1 - r c_j (c_j = sum_{m<=j} Gamma_m, Gamma_m = sum_{k>=m} G_tot,k)."""
    g = g_tot.double()
    gamma = g.flip(-1).cumsum(-1).flip(-1)
    return 1.0 - r * gamma.cumsum(-1)


def node_voltages(g_read: torch.Tensor, g_tot: torch.Tensor, r: float, scheme: str, v_read: float = 1.0) -> torch.Tensor:
    """Exact node voltages v_1..v_n of each line for the given read conductances.

    current: node 0 at 0 V, (T + r D) v = r V G_read. voltage: node 0 floating at V_SL; the
    deviations u = v - V_SL solve (T + r D) u = r (V G_read - V_SL G_tot)."""
    gr, gt = g_read.double(), g_tot.double()
    diag = _chain_diag(gt, r)
    if scheme == "current":
        return _thomas(diag, r * v_read * gr)
    w = position_weights(gt, r)
    v_sl = v_read * (w * gr).sum(-1, keepdim=True) / (w * gt).sum(-1, keepdim=True)
    return v_sl + _thomas(diag, r * (v_read * gr - v_sl * gt))


def line_output(g_read: torch.Tensor, g_tot: torch.Tensor, r: float, scheme: str, v_read: float = 1.0) -> torch.Tensor:
    """Exact output of each line: the current into the sense stage (current) or V_SL (voltage)."""
    w = position_weights(g_tot, r)
    num = v_read * (w * g_read.double()).sum(-1)
    return num if scheme == "current" else num / (w * g_tot.double()).sum(-1)


def worst_patterns(n: int) -> torch.Tensor:
    """Match patterns ``[P, n]`` (1 = the cell reads its on-state device) that bound a line's IR drop:
    all, none, near half, far half, the far cells beyond (1 - 1/sqrt(3)) n (the worst first-order
    pattern of voltage sensing), alternating."""
    j = torch.arange(n)
    far = int(round((1 - 3 ** -0.5) * n))
    pats = [torch.ones(n), torch.zeros(n), (j < n // 2).double(), (j >= n // 2).double(), (j >= far).double(),
            (j % 2 == 0).double()]
    return torch.stack([p.double() for p in pats])


def worst_node_deviation(n: int, off_ratio: float, r: float, scheme: str) -> float:
    """Largest |node voltage - nominal| / V_read of a nominal line of n cells (conductances
    normalised to G_on, off state ``off_ratio``, ``r`` = wire resistance x G_on) over
    :func:`worst_patterns`. Nominal: 0 V for current sensing (the sense node), V_SL for voltage
    sensing (the line's own output)."""
    if r == 0:
        return 0.0
    pats = worst_patterns(n)
    g_read = pats + (1 - pats) * off_ratio
    g_tot = torch.full_like(g_read, 1.0 + off_ratio)
    v = node_voltages(g_read, g_tot, r, scheme)
    if scheme == "current":
        return float(v.abs().max())
    return float((v - line_output(g_read, g_tot, r, scheme).unsqueeze(-1)).abs().max())
