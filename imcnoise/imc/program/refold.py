"""Re-folding a binary layer's neuron registers from re-estimated statistics (per-chip adaptation).

Batch-norm re-estimation (AdaBN, Li et al., Pattern Recognition 80:109, 2018) on a folded network.
The folded neuron of Alg. 2 compares ``u * dot - bias`` with ``theta_hat`` (``u`` = the row's
``input_dependent`` flag), where ``dot`` = popcount(XNOR) = s + M1 and s = sum_j w_j o_j is the
binary product batch norm normalises: BN(alpha s) = gamma (alpha s - mu) / sigma + beta. Statistics
of ``dot`` are therefore statistics of s shifted by the row's constant M1, and re-estimating mu and
sigma on the chip is re-estimating the mean and the spread of the row's sensed counts.

Let m_s, s_s be the mean and standard deviation of a row's ``dot`` in the software model on a set of
images, and m_c, s_c those of the same row's sensed counts on the chip, on the same images (with the
chip's own upstream activations, as batch-norm re-estimation sees them). With rho = s_c / s_s:

* ``bias``: the chip's counts are the software counts shifted by e = m_c - m_s on average, so
  ``u * (dot + e) - bias'`` equals ``u * dot - bias`` for bias' = bias + u (m_c - m_s).
* ``bias_threshold``: the chip's counts are in addition scaled by rho about their mean. Normalising
  them back, (dot_c - m_c) / rho + m_s, and multiplying the neuron's inequality (and, for an IF
  neuron, its membrane) by rho > 0 -- which changes no comparison and no soft reset -- gives
  bias' = m_c + rho (bias - m_s) and theta_hat' = rho theta_hat (rows with u = 1; rho = 1 where either
  spread is 0, which carries no scale). With rho = 1 this is the ``bias`` rule.

A chip keeps the folded registers and holds the adjustment in registers of step ``register_lsb``
counts: bias' = bias + round((bias' - bias) / lsb) lsb, and the same for theta_hat. On a chip whose
counts equal the software model's, every adjustment is exactly 0 and no register changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class RowStatistics:
    """Per-row sums of a layer's counts over ``n`` samples (time steps x images x output positions),
    float64 (exact: integer counts, sums far below 2**53 for the image counts allowed)."""

    n: int
    total: torch.Tensor  # [..., rows] sum of counts
    squares: torch.Tensor  # [..., rows] sum of squared counts

    @classmethod
    def of(cls, dots: torch.Tensor) -> "RowStatistics":
        """Statistics of DOTS ``[N, L, rows]`` (samples, positions, rows) of one chip, over N and L."""
        d = dots.double()
        return cls(d.shape[0] * d.shape[1], d.sum(dim=(0, 1)), (d * d).sum(dim=(0, 1)))

    @property
    def mean(self) -> torch.Tensor:
        return self.total / self.n

    @property
    def std(self) -> torch.Tensor:
        """Population standard deviation (0 where the count never varies)."""
        return (self.squares / self.n - self.mean ** 2).clamp_min(0.0).sqrt()


def quantized_step(delta: torch.Tensor, lsb: float) -> torch.Tensor:
    """An adjustment held in a register of step ``lsb`` counts (round half to even; ``lsb`` 0: exact)."""
    return delta if lsb == 0 else torch.round(delta / lsb) * lsb


def refold_registers(bias: torch.Tensor, theta_hat: torch.Tensor, input_dependent: torch.Tensor,
                     software: RowStatistics, chip: RowStatistics, mode: str, lsb: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Re-folded (bias, theta_hat) of one layer's rows (module doc): ``bias`` / ``theta_hat`` /
    ``input_dependent`` per row ``[rows]`` (float64), the statistics ``[..., rows]`` (the chip's may
    carry a leading chip axis); ``mode`` ``bias`` or ``bias_threshold``."""
    if mode not in ("bias", "bias_threshold"):
        raise ValueError(f"adaptation mode must be 'bias' or 'bias_threshold', got {mode!r}")
    u = input_dependent.double()
    m_s, m_c = software.mean, chip.mean
    if mode == "bias":
        new_bias, new_theta = bias + u * (m_c - m_s), theta_hat.expand_as(m_c)
    else:
        s_s, s_c = software.std, chip.std
        rho = torch.where((s_s > 0) & (s_c > 0), s_c / torch.where(s_s > 0, s_s, 1.0), torch.ones_like(s_c))
        rho = torch.where(u > 0, rho, torch.ones_like(rho))
        new_bias = torch.where(u > 0, m_c + rho * (bias - m_s), bias.expand_as(m_c))
        new_theta = rho * theta_hat
    return bias + quantized_step(new_bias - bias, lsb), theta_hat + quantized_step(new_theta - theta_hat, lsb)
