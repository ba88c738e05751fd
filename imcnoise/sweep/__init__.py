"""Monte Carlo sweeps over chip instances and noise levels.

Holds scenario files and their validation (:mod:`.scenario`, :mod:`.points`), the runner
(:mod:`.runner`: paired trials, adaptive stopping, resume), the crash-safe results store
(:mod:`.store`) and the tables and plots (:mod:`.report`). Imports the public API of
:mod:`imcnoise.imc` (never its private names), :mod:`imcnoise.models` and :mod:`imcnoise.data`.
"""

from .report import load_results, write_report
from .runner import prepare, run_sweep
from .scenario import Scenario, ScenarioError, load_scenario, parse_set

__all__ = ["Scenario", "ScenarioError", "load_scenario", "parse_set", "prepare", "run_sweep", "load_results", "write_report"]
