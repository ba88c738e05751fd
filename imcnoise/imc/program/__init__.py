"""The chip program: what an XNOR in-memory chip holds for one trained network.

Holds the folded network (:mod:`.fold`: checkpoint -> per-row weight bits, M1, bias, folded
threshold; paper Alg. 2), its files (:mod:`.chip_program`: save / load / summary) and how its rows
are laid out on sub-arrays (:mod:`.mapping`, the only definition of array geometry), and how a
layer's neuron registers are re-folded from re-estimated statistics (:mod:`.refold`, per-chip
adaptation). Pure data and
arithmetic on bits: imports the models package and the chip schema (:mod:`..config`), nothing of
the physics or the engines.
"""

from .chip_program import PROGRAM_FORMAT, PROGRAM_VERSION, ChipProgram, DigitalLayer, XnorLayer
from .fold import fold_checkpoint, fold_model
from .mapping import LayerMap, map_layer
from .refold import RowStatistics, refold_registers

__all__ = ["ChipProgram", "DigitalLayer", "XnorLayer", "PROGRAM_FORMAT", "PROGRAM_VERSION", "fold_checkpoint", "fold_model",
           "LayerMap", "map_layer", "RowStatistics", "refold_registers"]
