"""Binary-weight layers with per-output-channel scale alpha (paper eq. 5, XNOR-Net [13]).

Weights are kept as real "latent" values; the forward pass uses sign(W) in {-1, +1} (sign(0) = +1)
with the straight-through estimator, and alpha_i = mean_j |W_ij| per output channel. The MAC is
computed on the exact +-1 weights first and scaled by alpha afterwards, so the integer dot
product s = sum_j w_ij o_j is exact (|s| < 2**24) in fp32, bf16-input convolutions and fp64.

Residual inputs (eq. 5, 11) enter as a list of binary tensors, each a MAC with the same weights.
``fuse_inputs=True`` (training) sums the binary inputs before one convolution; by linearity this
is exactly the sum of the separate integer MACs of eq. (11) that the chip computes in two slots.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class _SignWeightSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w):
        ctx.save_for_backward(w)
        return torch.where(w >= 0, 1.0, -1.0).to(w.dtype)

    @staticmethod
    def backward(ctx, g):
        (w,) = ctx.saved_tensors
        return g * (w.abs() <= 1).to(g.dtype)


def binarize_weight(w: torch.Tensor) -> torch.Tensor:
    """sign(w) with sign(0) = +1; straight-through gradient for |w| <= 1."""
    return _SignWeightSTE.apply(w)


class _BinaryMixin:
    weight: torch.Tensor

    def binary_weight(self) -> torch.Tensor:
        return binarize_weight(self.weight)

    def alpha(self) -> torch.Tensor:
        """alpha_i = mean_j |W_ij|; a frozen copy once loaded from an inference checkpoint."""
        if self.frozen_alpha is not None:
            return self.frozen_alpha
        return self.weight.abs().flatten(1).mean(1)

    def freeze(self, alpha: torch.Tensor) -> None:
        """Fix alpha to stored values (weights then hold only their signs), so every engine uses
        bit-identical scales."""
        self.frozen_alpha = alpha.to(self.weight.device, self.weight.dtype).clone()

    def clip_latent_(self, bound: float = 1.0) -> None:
        """Keep latent weights in [-1, 1] where the STE passes gradient (BinaryConnect)."""
        with torch.no_grad():
            self.weight.clamp_(-bound, bound)

    # hardware-aware training (imcnoise.training.hw_aware): inputs -> the chip's error on the
    # integer MAC, added without gradient (straight-through); None: the ideal MAC
    chip_error = None

    def forward(self, inputs: list[torch.Tensor], fuse_inputs: bool = True) -> torch.Tensor:
        """alpha * sum over inputs of the integer MAC (eq. 5 with f = len(inputs) - 1)."""
        if fuse_inputs:
            s = self.integer_mac(sum(inputs), n_fused=len(inputs))
        else:
            s = sum(self.integer_mac(x) for x in inputs)
        if self.chip_error is not None:
            s = s + self.chip_error(inputs).to(s.dtype)
        a = self.alpha().to(s.dtype)
        return s * a.view(1, -1, *([1] * (s.dim() - 2)))


class BinaryConv2d(_BinaryMixin, nn.Conv2d):
    """3x3 binary convolution. ``pad_value`` fills the border: 0 for B-SNN spikes (no spike,
    bit 0), -1 for BNN activations (bit 0) -- zero is not a +-1 value, and padding with a valid
    binary value keeps every XNOR array input driven, so the fold has one bias per row (as
    Larq's ``pad_values`` option does for BNNs)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, padding: int = 1, pad_value: float = 0.0):
        super().__init__(in_channels, out_channels, kernel_size, padding=0, bias=False)
        self.register_buffer("frozen_alpha", None, persistent=False)
        self.pad = padding
        self.pad_value = float(pad_value)

    def integer_mac(self, x: torch.Tensor, n_fused: int = 1) -> torch.Tensor:
        """s = sum_j w_ij o_j with w in {-1,+1} (integer valued). ``x`` may be the sum of
        ``n_fused`` binary inputs; its border then holds ``n_fused`` pad values."""
        pad = self.pad
        if pad and self.pad_value != 0.0:
            x, pad = F.pad(x, (pad,) * 4, value=self.pad_value * n_fused), 0
        w = self.binary_weight()
        if x.dtype == torch.float64:
            # Integer MACs are exact in fp32 (|s| < 2**24), and fp32 convolutions are far faster
            # than fp64 ones on CPU: compute in fp32, widen exactly.
            return F.conv2d(x.float(), w.float(), padding=pad).double()
        return F.conv2d(x, w.to(x.dtype), padding=pad)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", pad={self.pad}, pad_value={self.pad_value}"



class BinaryLinear(_BinaryMixin, nn.Linear):
    def __init__(self, in_features: int, out_features: int):
        super().__init__(in_features, out_features, bias=False)
        self.register_buffer("frozen_alpha", None, persistent=False)

    def integer_mac(self, x: torch.Tensor, n_fused: int = 1) -> torch.Tensor:
        w = self.binary_weight()
        if x.dtype == torch.float64:  # exact, see BinaryConv2d.integer_mac
            return F.linear(x.float(), w.float()).double()
        return F.linear(x, w.to(x.dtype))

