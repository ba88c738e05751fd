"""``imcnoise sweep --dry-run``: what a sweep would run, and how long, to size a cluster job."""

from __future__ import annotations

import time

from ..imc import AnalogChip, FastChipBatch, evaluate
from .points import point_scenario
from .runner import Prepared, StopRule, load_data, chip_seed, point_program


def time_one_chip(prep: Prepared, images: int = 64) -> dict[str, tuple[float, float]]:
    """(seconds to program one chip, seconds per image) of each model at the first point, here."""
    sc = prep.scenario
    psc = point_scenario(sc, prep.points[0])
    data = load_data(psc, min(images, psc.dataset.limit or images))
    out = {}
    for m in prep.models:
        prog = point_program(prep, m, psc)
        # warm-up on the same images and batch shape: compiled kernels are built per shape, and a warm-up
        # on fewer images left their compilation inside the timing (a 5x over-estimate, measured 2026-12-02)
        evaluate(FastChipBatch(prog, psc.chip, [chip_seed(sc, 0)], prep.device), data, batch_size=sc.run.batch_size)
        t0 = time.perf_counter()
        eng = (FastChipBatch(prog, psc.chip, [chip_seed(sc, 0)], prep.device) if sc.run.engine == "fast"
               else AnalogChip(prog, psc.chip, chip_seed(sc, 0), prep.device))
        t1 = time.perf_counter()
        evaluate(eng, data, batch_size=sc.run.batch_size)
        out[m] = (t1 - t0, (time.perf_counter() - t1) / len(data))
    return out


def dry_run(prep: Prepared) -> str:
    sc = prep.scenario
    rule = StopRule(sc)
    images = sc.dataset.limit or len(load_data(sc, None))
    lines = [f"# Dry run of `{sc.name}` -> {prep.out}", "",
             f"{len(prep.points)} points x {'adaptive ' + str(sc.adaptive.min_trials) + '..' + str(rule.planned) if rule.adaptive else rule.planned} "
             f"chip instances x {len(prep.models)} models x {images} images ({sc.dataset.name}/{sc.dataset.split}), {sc.run.engine} engine on "
             f"{prep.device}", "", "| point | " + " | ".join(["parameters"]) + " |", "|---|---|"]
    lines += [f"| {p.index} | {p.label()} |" for p in prep.points]
    pairs_min = len(prep.points) * (sc.adaptive.min_trials if rule.adaptive else rule.planned)
    pairs_max = len(prep.points) * rule.planned
    timing = time_one_chip(prep)
    # per-chip adaptation runs its images once per chip (at about the cost of as many inferences)
    adapt = max((point_scenario(sc, p).chip.adaptation.images if point_scenario(sc, p).chip.adaptation.mode != "off" else 0)
                for p in prep.points)
    per_pair = sum(build + per_image * (images + adapt) for build, per_image in timing.values())
    est = lambda pairs: f"{pairs * per_pair / 60:.1f} min" if pairs * per_pair < 7200 else f"{pairs * per_pair / 3600:.1f} h"
    lines += ["", "Measured here on the first point (one chip, a few images): "
              + "; ".join(f"{m}: program {b:.2f} s + {1000 * t:.2f} ms per image" for m, (b, t) in timing.items())
              + f" -> {per_pair:.1f} s per chip instance (all {len(prep.models)} models) at {images} images"
              + (f" (+ {adapt} adaptation images)" if adapt else "") + ".",
              f"Chip instances: {pairs_min}" + (f" to {pairs_max} (adaptive)" if pairs_max != pairs_min else "")
              + f"; estimated time in this process: {est(pairs_min)}" + (f" to {est(pairs_max)}" if pairs_max != pairs_min else "")
              + ". With N Dask workers of the same speed: divide by N."]
    return "\n".join(lines) + "\n"
