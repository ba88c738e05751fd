"""Monte Carlo sweeps over chip instances and noise levels (scenarios, results store, reports)."""

from .report import load_results, write_report
from .runner import prepare, run_sweep
from .scenario import Scenario, ScenarioError, load_scenario, parse_set

__all__ = ["Scenario", "ScenarioError", "load_scenario", "parse_set", "prepare", "run_sweep", "load_results", "write_report"]
