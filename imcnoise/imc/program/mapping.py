"""Mapping of a folded layer's rows onto sub-arrays and sensings: the one place that defines array geometry.

A row (output neuron) of M XNOR cells longer than a sub-array is split into column tiles, each a
separate sub-array (programmed as one unit; its own reference rows). Within a sub-array row the
cells are split again into **sensings** of at most ``cells_per_sensing`` cells: each sensing is
its own summing line with its own sense path and conversion, and the partial counts of all
sensings of a row are added digitally. For convolutions both splits are channel-aligned: a tile
holds the k x k cells of ``floor(cols / k^2)`` whole input channels (cells beyond stay unused;
14 x 9 = 126 of 128), a sensing ``floor(cells_per_sensing / k^2)`` of them (7 x 9 = 63 of 64), so
each partial sum is a convolution over a channel group. Rows are split into row tiles of
``rows``. Everything that counts sub-arrays or sensings (engines, energy, exported summaries,
memory estimates) uses :func:`map_layer`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..config import ArrayConfig

if TYPE_CHECKING:
    from .chip_program import XnorLayer


@dataclass(frozen=True)
class LayerMap:
    index: int
    col_tiles: tuple[tuple[int, int], ...]  # sub-array columns: [start, end) in the row's cell (column) index
    chan_groups: tuple[tuple[int, int], ...] | None  # conv: input channels of each column tile
    row_tiles: tuple[tuple[int, int], ...]
    sensings: tuple[tuple[int, int], ...]  # [start, end) cells of each sensing (all tiles, in order)
    sensing_tile: tuple[int, ...]  # the column tile of each sensing
    sensing_chans: tuple[tuple[int, int], ...] | None  # conv: input channels of each sensing

    @property
    def n_col_tiles(self) -> int:
        return len(self.col_tiles)

    @property
    def n_row_tiles(self) -> int:
        return len(self.row_tiles)

    @property
    def n_subarrays(self) -> int:
        return self.n_col_tiles * self.n_row_tiles

    @property
    def n_sensings(self) -> int:
        """Sensings (summing lines) per output row: conversions per row and read."""
        return len(self.sensings)

    def cells(self, c: int) -> int:
        """Used cells of column tile ``c``."""
        a, b = self.col_tiles[c]
        return b - a

    def sensing_cells(self, s: int) -> int:
        a, b = self.sensings[s]
        return b - a

    def tile_sensings(self, c: int) -> list[int]:
        """The sensings of column tile ``c``."""
        return [s for s, t in enumerate(self.sensing_tile) if t == c]


def _split(a: int, b: int, step: int) -> list[tuple[int, int]]:
    return [(x, min(x + step, b)) for x in range(a, b, step)]


def map_layer(layer: "XnorLayer", array: ArrayConfig) -> LayerMap:
    rows = tuple(_split(0, layer.rows, array.rows))
    if layer.kind == "conv":
        k2 = layer.kernel * layer.kernel
        per = array.cols // k2
        if per < 1:
            raise ValueError(f"array.cols={array.cols} cannot hold one {layer.kernel}x{layer.kernel} kernel (needs >= {k2})")
        per_sensing = max(1, min(per, array.sensing_cells // k2))
        groups = tuple(_split(0, layer.in_features, per))
        chans = tuple(s for a, b in groups for s in _split(a, b, per_sensing))
        tile_of = tuple(i for i, (a, b) in enumerate(groups) for _ in _split(a, b, per_sensing))
        return LayerMap(layer.index, tuple((a * k2, b * k2) for a, b in groups), groups, rows,
                        tuple((a * k2, b * k2) for a, b in chans), tile_of, chans)
    cols = tuple(_split(0, layer.cols, array.cols))
    sens = tuple(s for a, b in cols for s in _split(a, b, array.sensing_cells))
    tile_of = tuple(i for i, (a, b) in enumerate(cols) for _ in _split(a, b, array.sensing_cells))
    return LayerMap(layer.index, cols, None, rows, sens, tile_of, None)
