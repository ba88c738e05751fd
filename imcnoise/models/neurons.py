"""Integrate-and-fire neuron with soft reset (paper eq. 1, 6; Alg. 1 ``IF``; Alg. 2 lines 9-20).

The neuron is split into three phases, as in SpikingJelly's ``BaseNode``
(``neuronal_charge`` / ``neuronal_fire`` / ``neuronal_reset``), which are also the three phases of
the paper's Algorithm 2. The float model (:func:`if_multistep`, the training surrogate) and every
IMC engine (``imcnoise.imc.engines.base.folded_neuron``, on the folded potential u_hat) run these
same phase functions. They update the membrane in place: the recurrences run over [T, ...]
tensors and allocate nothing per step.

Multi-step evaluation: the layer's input for all T time steps is computed in one call
(batch T x B) and the recurrence below runs over T only.
"""

from __future__ import annotations

import torch

from .surrogate import DEFAULT_DELTA


def neuronal_charge(v: torch.Tensor, x: torch.Tensor, bias=None) -> torch.Tensor:
    """Integration, in place: u^t = u^{t-1} + x^t (eq. 1, 6); the folded neuron also subtracts its
    bias M1 + mu/alpha (eq. 7, Alg. 2 line 10) as a second, separately rounded step."""
    v.add_(x)
    return v if bias is None else v.sub_(bias)


def neuronal_fire(v: torch.Tensor, threshold) -> torch.Tensor:
    """Firing: o = 1 iff u > theta (strict, eq. 6 and Alg. 2 line 13)."""
    return v > threshold


def neuronal_reset(v: torch.Tensor, spike: torch.Tensor, threshold) -> torch.Tensor:
    """Soft reset, in place: subtract theta where a spike was emitted, keeping the residual charge."""
    return v.sub_(spike.to(v.dtype) * threshold)


def if_multistep(x: torch.Tensor, threshold, record_membrane: bool = False):
    """Run the IF recurrence over the leading time axis of ``x`` ([T, ...]); no gradient.

    ``threshold`` is a scalar or a tensor broadcastable to ``x[0]``. Returns spikes ``[T, ...]``
    (dtype of ``x``) and, when ``record_membrane``, the membrane just before each firing decision
    (for tie analysis).
    """
    v = torch.zeros_like(x[0])
    spikes = torch.empty_like(x)
    mem = torch.empty_like(x) if record_membrane else None
    for t in range(x.shape[0]):
        neuronal_charge(v, x[t])
        if mem is not None:
            mem[t] = v
        s = neuronal_fire(v, threshold)
        spikes[t] = s
        neuronal_reset(v, s, threshold)
    return spikes, mem


class _IFSurrogate(torch.autograd.Function):
    """IF over T with the surrogate gradient of eq. (4) and a detached reset.

    Backward (eq. 3): dL/du^t = dL/do^t * do^t/du^t + dL/du^{t+1} * du^{t+1}/du^t. With the reset
    detached, du^{t+1}/du^t = 1, so dL/dx^t = sum_{tau >= t} dL/do^tau * sg(u^tau): one reversed
    cumulative sum over T instead of a Python loop.
    """

    @staticmethod
    def forward(ctx, x, threshold: float, delta: float):
        # The membrane is integrated in fp32 even under bf16 autocast: spikes and the surrogate
        # (both stored in x's dtype) tolerate bf16, an accumulating potential does not.
        spikes = torch.empty_like(x)
        sg = torch.empty_like(x)
        v = x[0].to(torch.float32, copy=True)  # never alias (and modify) the input
        tmp = torch.empty_like(v)
        for t in range(x.shape[0]):
            if t:
                neuronal_charge(v, x[t])
            fired = neuronal_fire(v, threshold)
            spikes[t].copy_(fired)
            # sg = delta * max(0, 1 - |v - theta| / theta)  (eq. 4)
            torch.sub(v, threshold, out=tmp)
            tmp.abs_().mul_(-delta / threshold).add_(delta).clamp_(min=0.0)
            sg[t].copy_(tmp)
            neuronal_reset(v, fired, threshold)
        ctx.save_for_backward(sg)
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes):
        (sg,) = ctx.saved_tensors
        g = grad_spikes * sg
        for t in range(g.shape[0] - 2, -1, -1):  # reversed cumulative sum over T, in place
            g[t].add_(g[t + 1])
        return g, None, None


class IFNeuron(torch.nn.Module):
    """Multi-step integrate-and-fire layer: input ``[T, ...]`` -> spikes ``[T, ...]`` in {0, 1}."""

    def __init__(self, threshold: float = 1.0, delta: float = DEFAULT_DELTA):
        super().__init__()
        if threshold <= 0:
            raise ValueError(f"threshold must be > 0, got {threshold}")
        self.threshold = float(threshold)
        self.delta = float(delta)

    def forward(self, x: torch.Tensor, record_membrane: bool = False):
        if torch.is_grad_enabled() and x.requires_grad:
            return _IFSurrogate.apply(x, self.threshold, self.delta), None
        return if_multistep(x, self.threshold, record_membrane)

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, delta={self.delta}"


class _SignSTE(torch.autograd.Function):
    """sign with the straight-through estimator, gradient passed where |x| <= 1 (BNN, Courbariaux 2016)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.where(x > 0, 1.0, -1.0).to(x.dtype)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x.abs() <= 1).to(g.dtype)


class SignActivation(torch.nn.Module):
    """BNN activation: +1 if BN output > 0 else -1 (the sense amplifier's comparison)."""

    def forward(self, x: torch.Tensor, record_membrane: bool = False):
        if torch.is_grad_enabled() and x.requires_grad:
            return _SignSTE.apply(x), None
        return torch.where(x > 0, 1.0, -1.0).to(x.dtype), (x if record_membrane else None)


class ReLUActivation(torch.nn.Module):
    """Full-precision teacher activation (``kind="float"``); same interface as the others."""

    def forward(self, x: torch.Tensor, record_membrane: bool = False):
        return torch.relu(x), (x if record_membrane else None)
