"""The ideal complementary-pair array: exact XNOR match counts of a layer's rows.

dot = sum_j [o_j w_j + (1 - o_j)(1 - w_j)] = popcount(XNOR(w, o)): the match count of an array
whose devices are ideal (G_A = w, G_B = 1 - w in units of G_on - G_off), computed as two 0/1
convolutions (or matrix products) that are exact in fp32 for M < 2**24. The integer engine runs
on it; the analog engines compare their sensed counts with it (error statistics).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..program import ChipProgram, XnorLayer


class IdealArray:
    def __init__(self, program: ChipProgram, device: torch.device):
        self._ga, self._gb = {}, {}
        for l in program.xnor_layers:
            b = torch.from_numpy(l.bits).float().to(device)
            shape = (l.rows, l.in_features, l.kernel, l.kernel) if l.kind == "conv" else (l.rows, l.in_features)
            # ideal complementary pair: G_A = w (line A driven by o), G_B = 1 - w (line B by 1 - o)
            self._ga[l.index] = b.reshape(shape)
            self._gb[l.index] = (1 - b).reshape(shape)

    def dot(self, layer: XnorLayer, bits: torch.Tensor) -> torch.Tensor:
        """Match counts of every row with every input vector of one chip's bits (``[N, C, H, W]``
        or ``[N, F]``): ``[N, rows, H, W]`` or ``[N, rows]``, float64 holding exact integers."""
        o = bits.float()
        ga, gb = self._ga[layer.index], self._gb[layer.index]
        if layer.kind == "conv":
            # padded inputs are bit 0, i.e. 1 on the complement line
            p = layer.padding
            d = F.conv2d(o, ga, padding=p) + F.conv2d(F.pad(1 - o, (p,) * 4, value=1.0), gb)
        else:
            d = o @ ga.T + (1 - o) @ gb.T
        return d.double()
