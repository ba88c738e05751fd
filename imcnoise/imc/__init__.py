"""The XNOR in-memory chip: program, physics and the engines that run it.

Layout (dependencies point down only)::

    config            the chip schema (pydantic), physical units, defaults from imcnoise.defaults
    program/          the chip program: fold (Alg. 2), save / load, mapping onto sub-arrays
    physics/          devices, the complementary cell, the sense path, per-read noise
    engines/          one traversal; integer, aihwkit and fast engines
    verify, export    above the engines: spike-exact comparisons, chip-program export

This module is the public API (what ``imcnoise.sweep``, the CLI and the examples import); names
load on first use, so importing the schema does not import aihwkit.
"""

from __future__ import annotations

import importlib

_API = {
    # schema
    "AnalogConfig": "config", "ArrayConfig": "config", "SenseAmpConfig": "config", "ResidualBufferConfig": "config",
    "SttMramDevice": "config", "RramDevice": "config", "AihwkitPcmDevice": "config", "AihwkitReRamDevice": "config",
    "device_tags": "config", "CellConfig": "config", "CalibrationConfig": "config", "AdaptationConfig": "config", "LimitsConfig": "config",
    "ChipConfig": "config", "TwoStateDevice": "config",
    # program
    "ChipProgram": "program", "XnorLayer": "program", "DigitalLayer": "program", "fold_model": "program",
    "fold_checkpoint": "program", "map_layer": "program", "LayerMap": "program",
    # physics
    "make_noise_model": "physics.devices", "target_conductances": "physics.cell", "nominal_off_ratio": "physics.cell",
    "GRID": "physics.cell", "PeripheryDraw": "physics.sense", "ReadNoise": "physics.noise", "sense": "physics.sense",
    "inference_energy": "physics.energy", "poisson_rate": "physics.energy", "EnergyReport": "physics.energy",
    "check_buildable": "physics.limits", "ChipLimitError": "physics.limits", "make_scheme": "physics.schemes",
    # engines
    "Engine": "engines.base", "evaluate": "engines.base", "ErrorStats": "engines.base",
    "XnorEngine": "engines.integer", "evaluate_xnor": "engines.integer",
    "adapt": "engines.adaptation", "with_statistics": "engines.adaptation", "software_statistics": "engines.adaptation",
    "AnalogChip": "engines.aihwkit", "FastChipBatch": "engines.fast", "auto_k": "engines.fast",
    # above the engines
    "compare_engines": "verify", "compare_runs": "verify", "export_checkpoint": "export",
}

__all__ = sorted(_API)


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_API[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
