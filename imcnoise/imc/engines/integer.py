"""Integer XNOR inference engine for a chip program (paper Alg. 2, eq. 11): bits only, no physics.

dot = popcount(XNOR(weight bits, input bits)) per row, either as the exact 0/1 product of an
ideal complementary-pair array (``backend="gemm"``, :class:`.ideal.IdealArray`; exact in fp32 for
M < 2**24), on bit-packed 64-bit words (``backend="popcount"``: XOR + hardware popcount via
``numpy.bitwise_count``), or on the machine's int8 units (``backend="int8"``: dot = sum_j x_j
(2 w_j - 1) + M1 with 0/1 inputs as uint8 and +-1 weights as int8, accumulated exactly in int32 by
oneDNN's int8 convolution or ``torch._int_mm``; :mod:`.kernels`). All give identical integers;
``backend="auto"`` times int8 against gemm once per layer and input shape on the real inputs and
keeps the faster (:func:`.kernels.choose`; ``IMCNOISE_MAC=fp32|int8`` overrides), gemm where
oneDNN's int8 kernels are missing or off the CPU. Everything else (digital first and last
layers, the folded neuron in fp64, pooling, residuals) is the shared traversal of :mod:`.base`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ...models.metrics import EvalResult
from ..program import ChipProgram, XnorLayer
from . import layouts as lay
from .base import Engine, Pass, evaluate
from .kernels import run_faster

BACKENDS = ("gemm", "popcount", "int8", "auto")


def input_patches(bits: torch.Tensor, layer: XnorLayer) -> torch.Tensor:
    """The input vector of every array read: ``[N, positions, M]`` (conv: im2col with bit-0 padding)."""
    if layer.kind == "fc":
        return bits.reshape(bits.shape[0], 1, -1)
    p = F.unfold(bits.float(), layer.kernel, padding=layer.padding)  # [N, M, L]
    return p.transpose(1, 2)


def _pack_words(bits01: np.ndarray, pad_value: int) -> np.ndarray:
    """[..., M] 0/1 -> [..., ceil(M/64)] uint64, tail bits filled with ``pad_value``."""
    m = bits01.shape[-1]
    words = -(-m // 64)
    if words * 64 != m:
        fill = np.full(bits01.shape[:-1] + (words * 64 - m,), pad_value, dtype=np.uint8)
        bits01 = np.concatenate([bits01, fill], axis=-1)
    packed = np.packbits(bits01, axis=-1, bitorder="little")
    return np.ascontiguousarray(packed).view(np.uint64)


class XnorEngine(Engine):
    """The chip program on bits: exact XNOR match counts, one (ideal) chip."""

    def __init__(self, program: ChipProgram, backend: str = "gemm", device: str | torch.device = "cpu", chunk: int = 4096):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        super().__init__(program, device)
        from .kernels import int8_available

        if backend == "auto" and (self.device.type != "cpu" or not int8_available()):
            backend = "gemm"
        if backend == "int8" and not int8_available():
            raise ValueError("backend 'int8' needs oneDNN's int8 kernels (torch.ops.onednn), not available here")
        self.backend = backend
        self.chunk = chunk
        self._int8, self._m1s = {}, {}
        # weight tail bits 0, input tail bits 1: XOR = 1 there, so tails never count as matches
        self._words = {l.index: _pack_words(l.bits, 0) for l in program.xnor_layers} if backend == "popcount" else {}

    def dot(self, layer: XnorLayer, bits: torch.Tensor) -> torch.Tensor:
        """popcount(XNOR) of every row with every input vector of ``[N, C, H, W]`` / ``[N, F]`` bits:
        ``[N, rows, H, W]`` or ``[N, rows]``, float64 holding exact integers."""
        if self.backend == "popcount":
            return self._dot_popcount(layer, bits)
        if self.backend == "int8":
            return self._dot_int8(layer, bits)
        if self.backend == "auto":
            return run_faster(("xnor-dot",) + self._shape_key(layer, [bits]), lambda: self._dot_int8(layer, bits),
                                  lambda: self.ideal_dot(layer, bits))
        return self.ideal_dot(layer, bits)

    @staticmethod
    def _shape_key(layer: XnorLayer, tensors: list[torch.Tensor]) -> tuple:
        """What decides a MAC's speed: the layer's geometry and the inputs' shapes."""
        return (layer.kind, layer.rows, layer.in_features, layer.kernel, layer.padding) + tuple(tuple(t.shape) for t in tensors)

    def _dots_int8(self, layer: XnorLayer, bits: torch.Tensor) -> torch.Tensor:
        """Match counts of one chip's BITS ``[N, H, W, C]`` / ``[N, F]``: ``[N, H*W or 1, rows]`` (float64)."""
        if layer.kind == "conv":
            y = self._int8_conv(layer, lay.nchw(bits).to(torch.uint8))  # [N, H, W, rows]
            return y.reshape(y.shape[0], -1, layer.rows).double() + self._m1(layer)
        return self._int8_fc(layer, bits).unsqueeze(1)

    def _m1(self, layer: XnorLayer) -> torch.Tensor:
        if layer.index not in self._m1s:
            self._m1s[layer.index] = torch.from_numpy(layer.m1).to(torch.float64)
        return self._m1s[layer.index]

    def _int8_conv(self, layer: XnorLayer, x_u8: torch.Tensor) -> torch.Tensor:
        from .kernels import Int8Conv

        k = self._int8.get(layer.index)
        if k is None:
            w = (2 * torch.from_numpy(layer.bits).to(torch.int64) - 1).view(layer.rows, layer.in_features, layer.kernel,
                                                                            layer.kernel)
            k = self._int8[layer.index] = Int8Conv(w, 1, layer.padding, tuple(x_u8.shape))
        return k(x_u8.contiguous(memory_format=torch.channels_last))

    def _int8_fc(self, layer: XnorLayer, bits: torch.Tensor) -> torch.Tensor:
        w = self._int8.get(layer.index)
        if w is None:
            w = self._int8[layer.index] = (2 * torch.from_numpy(layer.bits).to(torch.int64) - 1).to(torch.int8).T.contiguous()
        x = bits.to(torch.int8)
        n = x.shape[0]
        pad = max(0, 17 - n)  # torch._int_mm needs more than 16 rows
        if pad:
            x = torch.cat([x, torch.zeros(pad, x.shape[1], dtype=torch.int8)])
        return torch._int_mm(x, w)[:n].double() + self._m1(layer)

    def _dot_int8(self, layer: XnorLayer, bits: torch.Tensor) -> torch.Tensor:
        """:meth:`dot` on int8 units: sum_j x_j (2 w_j - 1) + M1 (the ideal array's match count:
        padding is bit 0, whose B device matches where w = 0, counted in M1)."""
        if layer.kind == "conv":
            y = self._int8_conv(layer, bits.to(torch.uint8))  # [N, H, W, rows]
            return y.permute(0, 3, 1, 2).double() + self._m1(layer).view(1, -1, 1, 1)
        return self._int8_fc(layer, bits)

    def _dot_popcount(self, layer: XnorLayer, bits: torch.Tensor) -> torch.Tensor:
        patches = input_patches(bits, layer)  # [N, L, M]
        n, L, m = patches.shape
        flat = patches.reshape(n * L, m).to(torch.uint8).cpu().numpy()
        xw = _pack_words(flat, 1)
        ww = self._words[layer.index]
        res = np.empty((n * L, layer.rows), dtype=np.int64)
        step = max(1, self.chunk * 64 // max(1, layer.rows * ww.shape[1]))
        for i in range(0, n * L, step):
            mism = np.bitwise_count(xw[i:i + step, None, :] ^ ww[None, :, :]).sum(axis=2, dtype=np.int64)
            res[i:i + step] = ww.shape[1] * 64 - mism
        out = torch.from_numpy(res).to(self.device).double().view(n, L, layer.rows).transpose(1, 2)
        if layer.kind == "conv":
            return out.reshape(n, layer.rows, layer.in_size, layer.in_size)
        return out.squeeze(2)

    def mac(self, layer: XnorLayer, slots: list[torch.Tensor], p: Pass) -> torch.Tensor:
        """dot of eq. (11): slot tau1 (layer l-1 input) plus, for residual layers, slot tau2 (layer l-2)."""
        if self.backend == "int8":
            return self._mac_int8(layer, slots)
        if self.backend == "auto":
            return run_faster(("xnor-mac",) + self._shape_key(layer, slots), lambda: self._mac_int8(layer, slots),
                                  lambda: self._mac_gemm(layer, slots))
        return self._mac_gemm(layer, slots)

    def _mac_int8(self, layer: XnorLayer, slots: list[torch.Tensor]) -> torch.Tensor:
        """:meth:`mac` on the int8 units, in the engines' channels-innermost layout throughout: no layout copies."""
        d = self._dots_int8(layer, slots[0][:, 0])
        for s in slots[1:]:
            d = d + self._dots_int8(layer, s[:, 0])
        return d.view(d.shape[0], 1, -1, layer.rows)

    def _mac_gemm(self, layer: XnorLayer, slots: list[torch.Tensor]) -> torch.Tensor:
        """:meth:`mac` as fp32 products of the ideal array (:meth:`.base.Engine.ideal_dot`)."""
        d = self.ideal_dot(layer, lay.nchw(slots[0][:, 0]))
        if len(slots) > 1:
            d = d + self.ideal_dot(layer, lay.nchw(slots[1][:, 0]))
        return lay.dots_from_nchw(d)


def evaluate_xnor(program: ChipProgram, data, *, batch_size: int = 256, input_seed: int = 0, backend: str = "gemm",
                  progress: bool = False, keep_predictions: bool = False, device: str | torch.device = "cpu") -> EvalResult:
    """Accuracy and per-layer firing rates of the integer XNOR engine on a data set."""
    return evaluate(XnorEngine(program, backend, device), data, batch_size=batch_size, input_seed=input_seed,
                    progress=progress, keep_predictions=keep_predictions)[0]
