"""Mapping of a folded layer's rows onto sub-arrays.

A row (output neuron) of M XNOR cells longer than a sub-array is split into column tiles, each a
separate sub-array with its own sense amplifier / ADC per output line; partial counts are added
digitally. For convolutions the split is channel-aligned: a tile holds the k x k cells of
``floor(cols / k^2)`` whole input channels (cells beyond that stay unused), so each tile's partial
sum is a convolution over a channel group. Rows are split into row tiles of ``rows``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import ArrayConfig
from .program import XnorLayer


@dataclass(frozen=True)
class LayerMap:
    index: int
    col_tiles: tuple[tuple[int, int], ...]  # [start, end) in the row's cell (column) index
    chan_groups: tuple[tuple[int, int], ...] | None  # conv: input channels of each column tile
    row_tiles: tuple[tuple[int, int], ...]

    @property
    def n_col_tiles(self) -> int:
        return len(self.col_tiles)

    def cells(self, c: int) -> int:
        a, b = self.col_tiles[c]
        return b - a


def map_layer(layer: XnorLayer, array: ArrayConfig) -> LayerMap:
    rows = tuple((a, min(a + array.rows, layer.rows)) for a in range(0, layer.rows, array.rows))
    if layer.kind == "conv":
        k2 = layer.kernel * layer.kernel
        per = array.cols // k2
        if per < 1:
            raise ValueError(f"array.cols={array.cols} cannot hold one {layer.kernel}x{layer.kernel} kernel (needs >= {k2})")
        groups = tuple((c, min(c + per, layer.in_features)) for c in range(0, layer.in_features, per))
        cols = tuple((a * k2, b * k2) for a, b in groups)
        return LayerMap(layer.index, cols, groups, rows)
    cols = tuple((a, min(a + array.cols, layer.cols)) for a in range(0, layer.cols, array.cols))
    return LayerMap(layer.index, cols, None, rows)
