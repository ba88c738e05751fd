"""Mapping of a folded layer's rows onto sub-arrays: the one place that defines array geometry.

A row (output neuron) of M XNOR cells longer than a sub-array is split into column tiles, each a
separate sub-array with its own sense amplifier / ADC per output line; partial counts are added
digitally. For convolutions the split is channel-aligned: a tile holds the k x k cells of
``floor(cols / k^2)`` whole input channels (cells beyond that stay unused; 28 x 9 = 252 of 256),
so each tile's partial sum is a convolution over a channel group. Rows are split into row tiles
of ``rows``. Everything that counts sub-arrays (engines, exported summaries, memory estimates)
uses :func:`map_layer`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..config import ArrayConfig

if TYPE_CHECKING:
    from .chip_program import ChipProgram, XnorLayer


@dataclass(frozen=True)
class LayerMap:
    index: int
    col_tiles: tuple[tuple[int, int], ...]  # [start, end) in the row's cell (column) index
    chan_groups: tuple[tuple[int, int], ...] | None  # conv: input channels of each column tile
    row_tiles: tuple[tuple[int, int], ...]

    @property
    def n_col_tiles(self) -> int:
        return len(self.col_tiles)

    @property
    def n_row_tiles(self) -> int:
        return len(self.row_tiles)

    @property
    def n_subarrays(self) -> int:
        return self.n_col_tiles * self.n_row_tiles

    def cells(self, c: int) -> int:
        a, b = self.col_tiles[c]
        return b - a

    @property
    def max_cells(self) -> int:
        return max(self.cells(c) for c in range(self.n_col_tiles))


def map_layer(layer: "XnorLayer", array: ArrayConfig) -> LayerMap:
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


def geometry(program: "ChipProgram", array: ArrayConfig) -> list[dict]:
    """Per binary layer: shape, sub-arrays (row tiles x column tiles) and array reads per inference."""
    out = []
    for l in program.xnor_layers:
        m = map_layer(l, array)
        reads = program.timesteps * l.positions * l.n_slots * m.n_subarrays
        out.append({
            "layer": l.index, "kind": l.kind, "neuron": l.neuron, "rows": l.rows, "cols": l.cols,
            "subarrays": f"{m.n_row_tiles}x{m.n_col_tiles}", "residual": l.residual_from is not None,
            "residual_from": l.residual_from, "slots": l.n_slots,
            "m1_min": int(l.m1.min()), "m1_max": int(l.m1.max()),
            "theta_hat_min": float(l.theta_hat.min()), "theta_hat_max": float(l.theta_hat.max()),
            "bias_min": float(l.bias.min()), "bias_max": float(l.bias.max()),
            "flipped_rows": int(l.flipped.sum()), "zero_gain_rows": int((l.gain == 0).sum()),
            "positions": l.positions, "array_reads_per_inference": reads,
            "row_macs_per_inference": program.timesteps * l.positions * l.n_slots * l.rows,
        })
    return out
