#!/usr/bin/env python3
"""Do the tests fail on a wrong implementation? Each mutation below breaks one behaviour on purpose.

For every entry: the code (or README) is changed in a private copy of the repository by one exact
text replacement, the tests named for it run there (``pytest -x``), and the mutation counts as
**caught** when they fail and **missed** when they pass. A missed mutation is a test that cannot
fail on that defect. The list covers what issue 22 names (tests that could not fail, behaviour
without a test, bad input that must be refused) and the engines' core arithmetic.

    .venv/bin/python scripts/mutation_check.py [--only NAME ...] [--out results/mutation_check.md]

Runs in a temporary copy of the tracked (and untracked, not ignored) files, imported first through
PYTHONPATH, so the working tree is never modified. Exit status 1 when any mutation is missed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    what: str  # the defect, in words
    path: str  # file, relative to the repository root
    old: str  # exact text, occurring once
    new: str
    tests: tuple[str, ...]  # pytest node ids that must fail


M = Mutation
MUTATIONS = [
    # ---- tests that could not fail (issue 22, first list)
    M("compiled-never-runs", "the fused kernels silently run eagerly (compilation off)",
      "imcnoise/runtime.py", 'return os.environ.get("IMCNOISE_COMPILE", "1") != "0"', "return False",
      ("tests/test_noise_streams.py::test_compiled_kernels_equal_eager_ones_bit_for_bit",)),
    M("offsets-drawn-per-sigma", "comparator offsets drawn from a stream keyed by their sigma (no common random numbers)",
      "imcnoise/imc/physics/sense.py", 'g = generator(chip_seed, "periphery", layer_index)',
      'g = generator(chip_seed, "periphery", layer_index, offset_sigma_v(cfg))',
      ("tests/test_calibration.py::test_common_random_numbers_a_chip_keeps_its_draws_across_sigmas_and_fault_rates",)),
    M("errors-name-no-field", "validation errors without the field's path",
      "imcnoise/imc/config.py", 'lines.append(f"{source}: {where}: {msg} (got {shown})")', 'lines.append(f"{source}: {msg}")',
      ("tests/test_reliability.py::test_any_scenario_document_validates_or_names_the_field",)),
    M("cli-traceback", "a bad scenario crashes the sweep command with a ScenarioError instead of one error line",
      "imcnoise/cli/main.py", "except (ScenarioError, StoreMismatch) as exc:", "except (StoreMismatch,) as exc:",
      ("tests/test_sweep.py::test_a_bnn_trained_on_another_data_set_is_refused_naming_it",)),
    M("poisson-energy-x2", "the Poisson input generator's energy doubled",
      "imcnoise/imc/physics/energy.py", "program.in_channels * D.E_POISSON_J}", "program.in_channels * D.E_POISSON_J * 2}",
      ("tests/test_energy.py::test_first_layer_poisson_and_output_layer_by_hand",)),
    M("bnn-neuron-ops", "the BNN neuron counted with the B-SNN's three operations",
      "imcnoise/imc/physics/energy.py", "per_step = (S - 1) + (3 if bsnn else 2)", "per_step = (S - 1) + 3",
      ("tests/test_energy.py::test_first_layer_poisson_and_output_layer_by_hand",)),
    M("first-layer-energy", "the B-SNN's first layer charged a multiply per input spike",
      "imcnoise/imc/physics/energy.py", "e_first = adds * D.E_FP32_ADD_J +", "e_first = adds * (D.E_FP32_ADD_J + D.E_FP32_MULT_J) +",
      ("tests/test_energy.py::test_first_layer_poisson_and_output_layer_by_hand",)),
    M("adc-latency-x9", "every conversion step nine times slower",
      "imcnoise/imc/physics/energy.py", "(bits + 1) * sa.adc_bit_time_s", "(bits + 1) * 9 * sa.adc_bit_time_s",
      ("tests/test_energy.py::test_adc_sharing_and_row_reads_set_the_latency",)),
    M("hw-aware-row-sign", "hardware-aware training ignores the stored rows' inversion",
      "imcnoise/training/hw_aware.py", "return ((1.0 if bsnn else 2.0) * p * err)", "return ((1.0 if bsnn else 2.0) * err)",
      ("tests/test_hw_aware.py::test_the_training_errors_are_the_chips_errors",)),
    M("hw-aware-bnn-factor", "the BNN's chip error not doubled (its +-1 MAC is 2 x count - n)",
      "imcnoise/training/hw_aware.py", "return ((1.0 if bsnn else 2.0) * p * err)", "return (p * err)",
      ("tests/test_hw_aware.py::test_the_training_errors_are_the_chips_errors",)),
    M("drift-ignored", "the devices keep their programmed conductance however long after programming they are read",
      "imcnoise/imc/physics/devices.py", "return self.drift(g_prog, t_inference, relax)", "return g_prog",
      ("tests/test_analog.py::test_rram_conductances_and_drift",)),
    M("fold-bias-shift", "the folded bias off by a quarter count",
      "imcnoise/imc/program/fold.py", "input_dependent=_np(gain), bias=_np(bias),",
      "input_dependent=_np(gain), bias=_np(bias + 0.25),",
      ("tests/test_shipped.py::test_xnor_engine_equals_trained_model_spike_for_spike",)),
    # ---- behaviour with no test before (issue 22, second list)
    M("float-checkpoint-folds", "a float teacher checkpoint reaches the chip commands",
      "imcnoise/imc/program/fold.py", 'if cfg.kind not in ("bsnn", "bnn"):', "if False:",
      ("tests/test_training.py::test_a_float_teacher_checkpoint_is_refused_by_every_chip_command",)),
    M("inference-timesteps-ignored", "inference.timesteps has no effect",
      "imcnoise/sweep/runner.py", "return dataclasses.replace(prog, timesteps=T) if", "return prog if",
      ("tests/test_sweep.py::test_inference_timesteps_runs_the_bsnn_for_that_many_steps",)),
    M("case-settings-ignored", "a sweep case's settings are not applied",
      "imcnoise/sweep/points.py", "settings = dict(next(c.set for c in sc.sweep.cases if c.name == point.params[CASE])) "
      "if CASE in point.params else {}", "settings = {}",
      ("tests/test_sweep.py::test_sweep_cases_set_their_fields_together_and_are_plotted",)),
    M("residue-shift-sign", "the common-mode calibration residue applied with the wrong sign",
      "imcnoise/imc/physics/calibration.py", "(c.correction_lsb - self.cal.baseline_shift_lsb)",
      "(c.correction_lsb + self.cal.baseline_shift_lsb)",
      ("tests/test_calibration.py::test_common_mode_calibration_residue_shifts_and_scales_every_count",)),
    M("trim-without-buffer", "trim reads the held slot without the buffer's gain",
      "imcnoise/imc/physics/sense.py", 'args = {"lsb": lsb, "gain": (static.gain * buffer_droop(cfg.buffer)).to(dtype),',
      'args = {"lsb": lsb, "gain": (static.gain * 0 + buffer_droop(cfg.buffer)).to(dtype),',
      ("tests/test_calibration.py::test_trim_reads_the_held_slot_through_the_buffer",)),
    M("chip-option-prefix", "chip-file errors always name --hw-aware",
      "imcnoise/imc/config.py", 'raise ValueError(format_validation_error(exc, f"{where} {path}", prefix="chip")) from None',
      'raise ValueError(format_validation_error(exc, f"--hw-aware {path}", prefix="chip")) from None',
      ("tests/test_limits.py::test_a_bad_chip_file_is_named_by_the_option_it_was_given_as",)),
    # ---- bad input (issue 22, third list)
    M("nan-alpha-accepted", "a checkpoint with a NaN alpha loads",
      "imcnoise/models/checkpoint.py", "value.is_floating_point() and not bool(torch.isfinite(value).all())",
      "value.is_floating_point() and False",
      ("tests/test_training.py::test_mismatched_checkpoint_gives_clear_error",)),
    M("duplicate-keys-accepted", "duplicate YAML keys: the last one wins",
      "imcnoise/yamlio.py", "raise yaml.constructor.ConstructorError(", "(lambda *a: None)(",
      ("tests/test_sweep.py::test_duplicate_keys_and_deep_nesting_are_refused_naming_the_problem",)),
    M("report-in-place", "report files written in place (a killed write leaves them half-written)",
      "imcnoise/files.py", "os.replace(tmp, path)", "os.replace(tmp, path) if False else None",
      ("tests/test_sweep.py::test_a_report_killed_mid_write_leaves_the_previous_files",)),
    M("no-sweep-lock", "two sweeps may write one result folder at once",
      "imcnoise/sweep/store.py", "fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)", "pass",
      ("tests/test_sweep.py::test_a_second_sweep_into_a_directory_being_written_is_refused",)),
    M("bnn-dataset-unchecked", "a model trained on another data set is accepted",
      "imcnoise/sweep/runner.py", "raise ScenarioError(f\"dataset.name: {sc.dataset.name!r}, but models.{m}",
      "(lambda *a: None)(f\"dataset.name: {sc.dataset.name!r}, but models.{m}",
      ("tests/test_sweep.py::test_a_bnn_trained_on_another_data_set_is_refused_naming_it",)),
    M("zero-step-training", "a batch larger than the training set trains 0 steps and reports success",
      "imcnoise/training/loop.py", "if steps_per_epoch == 0:", "if False:",
      ("tests/test_training.py::test_a_batch_larger_than_the_training_subset_is_refused",)),
    M("ci-unbounded", "confidence intervals run past 0 and 100 %",
      "imcnoise/sweep/stats.py", "max(bounds[0], mean - h), min(bounds[1], mean + h)", "mean - h, mean + h",
      ("tests/test_sweep.py::test_confidence_intervals_stay_within_what_a_mean_can_be",)),
    M("readme-command-broken", "a README 'Using it' command that does not run",
      "README.md", "imcnoise report ", "imcnoise reprot ",
      ("tests/test_readme.py::test_every_using_it_command_and_snippet_runs_from_a_fresh_layout",)),
    M("reuse-any-point", "trials reused from a source point whose configuration differs",
      "scripts/reuse_trials.py", "if set(config) != set(want) or not all(_same(config[k], want[k]) for k in want):",
      "if False:", ("tests/test_sweep.py::test_reused_trials_give_the_tables_of_a_full_run",)),
    M("reuse-ignores-trials", "reuse_trials reads the scenario's own chip count, not --trials",
      "scripts/reuse_trials.py", 'for k, v in (("trials", args.trials), ("dataset.limit", args.limit)) if v is not None]',
      'for k, v in (("dataset.limit", args.limit),) if v is not None]', ("tests/test_sweep.py::test_reused_trials_give_the_tables_of_a_full_run",)),
    # ---- the engines' arithmetic
    M("normal-table-scale", "the per-read normals 1 % too wide",
      "imcnoise/imc/physics/noise.py", "t = torch.special.ndtri(q).to(dtype)", "t = (torch.special.ndtri(q) * 1.01).to(dtype)",
      ("tests/test_noise_streams.py::test_normals_have_the_moments_and_tails_of_a_standard_normal",)),
    M("adc-floor", "the ADC truncates instead of rounding to the nearest code",
      "imcnoise/imc/physics/sense.py", "return torch.round(v / step) * step", "return torch.floor(v / step) * step",
      ("tests/test_calibration.py::test_every_calibration_of_an_ideal_chip_reproduces_the_integer_engine",)),
    M("soft-reset-hard", "the IF neuron resets to zero instead of subtracting the threshold",
      "imcnoise/models/neurons.py", "return v.sub_(spike.to(v.dtype) * threshold)", "return v.mul_(1 - spike.to(v.dtype))",
      ("tests/test_models.py::test_soft_reset_keeps_residual_charge",)),
]


def copy_repo(dst: Path) -> None:
    """Tracked and untracked-but-not-ignored files of the working tree (as they are now)."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for f in filter(None, files):
        src = REPO / f
        if src.is_file():
            (dst / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / f)


def pytest(root: Path, tests, timeout: float) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(root), IMCNOISE_TEST_THREADS="1")
    return subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests], cwd=root,
                          env=env, capture_output=True, text=True, timeout=timeout)


def run_one(m: Mutation, root: Path, timeout: float) -> tuple[str, float, str]:
    path = root / m.path
    original = path.read_text()
    if original.count(m.old) != 1:
        return "not applied", 0.0, f"{m.path}: the text to replace occurs {original.count(m.old)} times"
    path.write_text(original.replace(m.old, m.new))
    t = time.time()
    try:
        r = pytest(root, m.tests, timeout)
        verdict = "caught" if r.returncode == 1 else ("missed" if r.returncode == 0 else f"pytest exit {r.returncode}")
        tail = (r.stdout + r.stderr).strip().splitlines()[-1:] or [""]
        detail = tail[0]
    except subprocess.TimeoutExpired:
        verdict, detail = "timeout", f"over {timeout:.0f} s"
    finally:
        path.write_text(original)
    return verdict, time.time() - t, detail


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", default=None, help="mutation names (default: all)")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per mutation")
    ap.add_argument("--out", type=Path, default=None, help="write the table here too")
    args = ap.parse_args()
    chosen = [m for m in MUTATIONS if args.only is None or m.name in args.only]
    unknown = set(args.only or ()) - {m.name for m in MUTATIONS}
    if unknown:
        raise SystemExit(f"--only: unknown mutation(s) {', '.join(sorted(unknown))}; known: {', '.join(m.name for m in MUTATIONS)}")
    rows = ["| mutation | defect | tests | verdict | seconds |", "|---|---|---|---|---|"]
    missed = 0
    with tempfile.TemporaryDirectory(prefix="imcnoise-mutation-") as tmp:
        root = Path(tmp) / "repo"
        copy_repo(root)
        # the tests must pass on the unchanged copy, or a failure below would prove nothing
        base = pytest(root, sorted({t for m in chosen for t in m.tests}), args.timeout * 4)
        if base.returncode != 0:
            raise SystemExit("the tests fail on the unchanged copy:\n" + (base.stdout + base.stderr)[-3000:])
        print(f"baseline: the {len({t for m in chosen for t in m.tests})} tests pass on the unchanged copy", flush=True)
        for m in chosen:
            verdict, secs, detail = run_one(m, root, args.timeout)
            missed += verdict != "caught"
            tests = ", ".join(f"`{t.split('/')[-1]}`" for t in m.tests)
            rows.append(f"| {m.name} | {m.what} | {tests} | {verdict} ({detail}) | {secs:.0f} |")
            print(rows[-1], flush=True)
    text = "\n".join(rows)
    if args.out:
        args.out.write_text(f"# Mutation check (`scripts/mutation_check.py`)\n\nEach row: one deliberate defect in a copy of the "
                            f"repository and the tests that must fail on it.\n\n{text}\n\n{len(chosen) - missed} of {len(chosen)} "
                            "caught.\n")
    print(f"{len(chosen) - missed} of {len(chosen)} mutations caught")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
