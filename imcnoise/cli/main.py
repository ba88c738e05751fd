"""``imcnoise`` command line (typer). Thin: parses, validates, calls the library."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Binarized spiking vs. binarized networks on noisy in-memory XNOR arrays.")
data_app = typer.Typer(no_args_is_help=True, help="Data sets: where they are found, sizes, checksums.")
app.add_typer(data_app, name="data")


def fail(msg: str, code: int = 2):
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(code)


def _command_line(ctx: typer.Context) -> str:
    """The command as the user could retype it: the flags given on the command line."""
    parts = ["imcnoise", ctx.info_name]
    for p in ctx.command.params:
        src = ctx.get_parameter_source(p.name)
        if src is None or src.name != "COMMANDLINE":
            continue
        v = ctx.params[p.name]
        if not p.opts or not p.opts[0].startswith("-"):
            parts.append(shlex.quote(str(v)))
        elif isinstance(v, bool):
            parts.append(p.opts[0] if v else (p.secondary_opts[0] if p.secondary_opts else ""))
        else:
            parts += [p.opts[0], shlex.quote(str(v))]
    return " ".join(x for x in parts if x)


def _set_threads(threads: Optional[int]):
    if threads is not None:
        if not 1 <= threads <= 256:  # the same range as run.threads_per_worker; torch aborts on huge values
            fail(f"--threads={threads}: torch CPU threads, allowed 1 .. 256")
        import torch

        torch.set_num_threads(threads)


@app.command()
def train(
    ctx: typer.Context,
    model: str = typer.Option(None, help="bsnn | bnn | float (the full-precision teacher for --teacher)"),
    dataset: str = typer.Option(None, help="fashion-mnist | cifar10-jpeg | cifar10 | cifar100"),
    preset: Optional[str] = typer.Option(None, help="named settings (see --list-presets); flags override"),
    width: float = typer.Option(None, help="channel width multiplier (1.0 = paper)"),
    timesteps: int = typer.Option(None, help="time steps T (B-SNN)"),
    residual: str = typer.Option(None, help="residual schedule: paper | none | '1-3,2-4'"),
    epochs: int = typer.Option(None), batch_size: int = typer.Option(None), lr: float = typer.Option(None),
    optimizer: str = typer.Option(None, help="adam | sgd"), schedule: str = typer.Option(None, help="cosine | constant"),
    weight_decay: float = typer.Option(None), seed: int = typer.Option(None),
    precision: str = typer.Option(None, help="bf16 (autocast) | fp32"),
    teacher: Optional[str] = typer.Option(None, help="distil from this checkpoint (path or shipped:<name>)"),
    kd_alpha: Optional[float] = typer.Option(None, help="weight of the distillation loss, 0..1"),
    kd_temperature: Optional[float] = typer.Option(None, help="softening temperature of the distillation"),
    init: Optional[str] = typer.Option(None, help="start from this checkpoint (path or shipped:<name>)"),
    hw_aware: Optional[Path] = typer.Option(None, help="train on sampled chips of this chip YAML (a scenario's chip: section)"),
    hw_resample: Optional[int] = typer.Option(None, help="draw a fresh chip every N steps (--hw-aware)"),
    bn_statistics: Optional[str] = typer.Option(None, help="batch-norm statistics kept: running | frozen (--init's) | "
                                                "ideal (re-estimated on ideal training images each epoch) | frozen-ideal (both)"),
    bn_images: Optional[int] = typer.Option(None, help="training images of the ideal re-estimate (--bn-statistics ideal, frozen-ideal)"),
    train_limit: Optional[int] = typer.Option(None, help="use only the first N training images"),
    eval_limit: Optional[int] = typer.Option(None, help="evaluate on the first N test images"),
    out: Optional[Path] = typer.Option(None, help="output directory (checkpoints, model card); required to train"),
    resume: bool = typer.Option(False, help="continue from OUT/last.pt"),
    data_dir: Optional[Path] = typer.Option(None, help="directory holding the data set"),
    threads: Optional[int] = typer.Option(None, help="torch CPU threads"),
    list_presets: bool = typer.Option(False, help="print the presets and exit"),
):
    """Train a B-SNN or BNN (VGG11) and write a compact checkpoint with a model card."""
    from ..data import DataError
    from ..training.config import PRESETS, TrainConfig
    from ..training.loop import train as run_train

    if list_presets:
        for k, v in PRESETS.items():
            typer.echo(f"{k}: {json.dumps(v)}")
        raise typer.Exit()
    if out is None:
        fail("--out: missing; give the output directory for the checkpoint and its model card")
    base = {}
    if preset is not None:
        if preset not in PRESETS:
            fail(f"--preset={preset!r}: unknown; choose one of {sorted(PRESETS)}")
        base = dict(PRESETS[preset])
    flags = dict(model=model, dataset=dataset, width=width, timesteps=timesteps, residual=residual, epochs=epochs,
                 batch_size=batch_size, lr=lr, optimizer=optimizer, schedule=schedule, weight_decay=weight_decay,
                 seed=seed, precision=precision, train_limit=train_limit, eval_limit=eval_limit, teacher=teacher,
                 kd_alpha=kd_alpha, kd_temperature=kd_temperature, init=init,
                 hw_aware=None if hw_aware is None else str(hw_aware), hw_resample=hw_resample,
                 bn_statistics=bn_statistics, bn_images=bn_images)
    base.update({k: v for k, v in flags.items() if v is not None})
    _set_threads(threads)
    try:
        cfg = TrainConfig(**base)
        from ..models.topology import parse_schedule

        parse_schedule(cfg.residual)
        run_train(cfg, out, resume=resume, data_dir=data_dir, command=_command_line(ctx))
    except (ValueError, DataError) as exc:
        fail(str(exc))


@app.command("eval")
def eval_cmd(
    checkpoint: Path = typer.Argument(..., help="model.pt written by 'imcnoise train'"),
    dataset: Optional[str] = typer.Option(None, help="data set (default: the checkpoint's)"),
    split: str = typer.Option("test"),
    engine: str = typer.Option("float", help="float (trained model) | xnor (folded integer XNOR engine)"),
    limit: Optional[int] = typer.Option(None, help="first N images only"),
    batch_size: int = typer.Option(256),
    input_seed: int = typer.Option(0, help="Poisson seed of the input spikes"),
    precision: str = typer.Option("fp32", help="float engine arithmetic: fp32 | fp64"),
    data_dir: Optional[Path] = typer.Option(None),
    threads: Optional[int] = typer.Option(None),
    json_out: Optional[Path] = typer.Option(None, "--json", help="also write the result as JSON"),
):
    """Accuracy and per-layer spike rates of a checkpoint (float model or XNOR engine)."""
    from ..data import DataError, load_dataset
    from ..models.checkpoint import CheckpointError, read_checkpoint

    _set_threads(threads)
    if engine not in ("float", "xnor"):
        fail(f"--engine={engine!r}: must be float or xnor")
    if batch_size < 1:
        fail(f"--batch-size={batch_size}: must be >= 1")
    try:
        meta = read_checkpoint(checkpoint)
        name = dataset or meta["data"]["dataset"]
        data = load_dataset(name, split, data_dir).subset(limit)
        if engine == "float":
            from ..models.checkpoint import load_checkpoint
            from ..training.evaluate import evaluate

            model, _ = load_checkpoint(checkpoint, expect={"num_classes": data.num_classes, "in_channels": data.shape[0]})
            res = evaluate(model, data, batch_size=batch_size, input_seed=input_seed, precision=precision, progress=True)
        else:
            from ..imc import evaluate_xnor, fold_checkpoint

            program = fold_checkpoint(checkpoint)
            if program.num_classes != data.num_classes or program.in_channels != data.shape[0]:
                fail(f"checkpoint is for {program.in_channels}-channel images with {program.num_classes} classes; "
                     f"{name} has {data.shape[0]} channels and {data.num_classes} classes")
            res = evaluate_xnor(program, data, batch_size=batch_size, input_seed=input_seed, progress=True)
    except (ValueError, DataError, CheckpointError) as exc:
        fail(str(exc))
    typer.echo(f"{engine} engine on {name}/{split} ({res.n} images): accuracy {100 * res.accuracy:.2f} % ({res.correct}/{res.n})")
    typer.echo("firing rates per layer: " + ", ".join(f"L{k} {v:.4f}" for k, v in res.spike_rates.items()))
    if json_out:
        json_out.write_text(json.dumps({"engine": engine, "dataset": name, "split": split, **res.to_dict()}, indent=1))


@app.command()
def export(
    checkpoint: Path = typer.Argument(..., help="model.pt written by 'imcnoise train'"),
    out: Path = typer.Option(..., help="output directory for the chip program"),
    array_rows: int = typer.Option(256, help="sub-array rows (for the geometry summary)"),
    array_cols: int = typer.Option(256, help="sub-array cells per row"),
    samples: int = typer.Option(16, help="test images to store with the engine's predictions (0: none)"),
    input_seed: int = typer.Option(0, help="Poisson seed of the sample inputs"),
    data_dir: Optional[Path] = typer.Option(None),
):
    """Fold a checkpoint into an XNOR chip program: program.npz/.json, summary.md, samples.npz."""
    from pydantic import ValidationError

    from ..imc import ArrayConfig, export_checkpoint
    from ..imc.config import format_validation_error
    from ..models.checkpoint import CheckpointError

    try:
        array = ArrayConfig(rows=array_rows, cols=array_cols)
    except ValidationError as exc:
        fail(format_validation_error(exc, "export", prefix="--array", root=ArrayConfig).replace("--array.", "--array-"))
    if samples < 0:
        fail(f"--samples={samples}: must be >= 0")
    try:
        res = export_checkpoint(checkpoint, out, array=array, samples=samples, data_dir=data_dir, input_seed=input_seed)
    except (ValueError, CheckpointError) as exc:
        fail(str(exc))
    typer.echo(res["program"].summary_markdown(array))
    typer.echo("wrote " + ", ".join(str(f) for f in res["files"]))
    if res["note"]:
        typer.echo(res["note"])
    typer.echo(f"rebuild from these files alone: python examples/rebuild_from_export.py {out}")


@app.command()
def sweep(
    scenario: Path = typer.Argument(..., help="scenario YAML, e.g. scenarios/stt_mram.yaml"),
    trials: Optional[int] = typer.Option(None, help="chip instances per sweep point (scenario: trials)"),
    limit: Optional[int] = typer.Option(None, help="evaluate the first N images (scenario: dataset.limit)"),
    out: Optional[Path] = typer.Option(None, help="output directory (scenario: output)"),
    set_: list[str] = typer.Option([], "--set", help="override any scenario field: path=value (repeatable)"),
    engine: Optional[str] = typer.Option(None, help="fast (default) | aihwkit (reference path)"),
    ci_target: Optional[float] = typer.Option(None, help="adaptive trials: stop a point at this 95% CI half-width of the paired difference"),
    min_trials: Optional[int] = typer.Option(None), max_trials: Optional[int] = typer.Option(None),
    chips: Optional[int] = typer.Option(None, "--chips-per-pass",
                                        help="chip instances stacked per pass of the fast engine (default: from memory; "
                                             "not the number of chips: that is --trials)"),
    batch_size: Optional[int] = typer.Option(None, help="images per pass"),
    device: Optional[str] = typer.Option(None, help="auto | cpu | cuda"),
    threads: Optional[int] = typer.Option(None, help="torch CPU threads (of each Dask worker with --workers / --scheduler)"),
    workers: Optional[int] = typer.Option(None, help="run on a local Dask cluster of N worker processes"),
    scheduler: Optional[str] = typer.Option(None, help="run on an existing Dask cluster: its scheduler address"),
    dry_run: bool = typer.Option(False, "--dry-run", help="print the points, chips and images and an estimated time; run nothing"),
    progress: bool = typer.Option(True, help="show a progress bar"),
):
    """Monte Carlo sweep: B-SNN vs BNN accuracy over chip instances and noise levels."""
    from ..sweep import ScenarioError, load_scenario, parse_set, prepare, run_sweep, write_report
    from ..sweep.store import StoreMismatch

    flags = {"trials": trials, "dataset.limit": limit, "run.engine": engine, "adaptive.ci_target": ci_target,
             "adaptive.min_trials": min_trials, "adaptive.max_trials": max_trials, "run.chips_per_pass": chips,
             "run.batch_size": batch_size, "run.device": device, "run.workers": workers, "run.scheduler": scheduler}
    try:
        overrides = parse_set(set_) + [(k, v) for k, v in flags.items() if v is not None]
        if (workers is not None or scheduler is not None) and threads is not None:
            overrides.append(("run.threads_per_worker", threads))
        sc, base = load_scenario(scenario, overrides)
        cluster = sc.run.workers is not None or sc.run.scheduler is not None
        if not cluster:
            _set_threads(threads)
        prep = prepare(sc, base, out)
        if dry_run:
            from ..sweep.plan import dry_run as plan

            typer.echo(plan(prep))
            raise typer.Exit()
        typer.echo(f"{sc.name}: {len(prep.points)} sweep points x {sc.trials if sc.adaptive.ci_target is None else 'adaptive'} "
                   f"chip instances x {len(prep.models)} models, {sc.run.engine} engine on {prep.device}, output {prep.out}"
                   + (f", Dask: {sc.run.workers} local workers" if sc.run.workers else "")
                   + (f", Dask scheduler {sc.run.scheduler}" if sc.run.scheduler else ""))
        if cluster:
            from ..sweep.distributed import Cluster, run_sweep_distributed

            with Cluster(sc.run.workers, sc.run.scheduler, sc.run.threads_per_worker) as client:
                store = run_sweep_distributed(prep, client, progress=progress, log=typer.echo)
        else:
            store = run_sweep(prep, progress=progress, log=typer.echo)
        store.close()
        res = write_report(prep.out)
    except (ScenarioError, StoreMismatch) as exc:
        fail(str(exc))
    typer.echo("")
    typer.echo(res.get("markdown", "no results"))
    typer.echo("files: " + ", ".join(str(prep.out / f) for f in ("results.sqlite", "trials.parquet", "summary.csv", "summary.md"))
               + "".join(f", {p}" for p in res.get("plots", [])))


@app.command()
def energy(
    checkpoint: Path = typer.Argument(..., help="model.pt of a B-SNN or BNN"),
    chip: Optional[Path] = typer.Option(None, help="chip YAML (a scenario's chip: section, or a scenario); default: the default chip"),
    images: int = typer.Option(100, help="test images whose activity (spikes, array currents) the estimate uses"),
    chip_seed: int = typer.Option(0, help="the chip instance"),
    data_dir: Optional[Path] = typer.Option(None),
    threads: Optional[int] = typer.Option(None),
):
    """Energy and latency per inference on a chip, per layer and component (from a measured run)."""
    from ..data import DataError, load_dataset
    from ..imc import AnalogConfig, FastChipBatch, evaluate, fold_checkpoint, inference_energy, poisson_rate
    from ..imc.physics.energy import COMPONENTS
    from ..models.checkpoint import CheckpointError
    from ..training.hw_aware import load_chip

    _set_threads(threads)
    if images < 1:
        fail(f"--images={images}: must be >= 1")
    try:
        program = fold_checkpoint(checkpoint)
        if program.kind not in ("bsnn", "bnn"):
            fail(f"{checkpoint}: a {program.kind!r} model does not run on the chip (bsnn or bnn)")
        cfg = load_chip(chip, "--chip") if chip is not None else AnalogConfig()
        data = load_dataset(program.meta["dataset"], "test", data_dir).subset(images)
        engine = FastChipBatch(program, cfg, [chip_seed])  # refuses a chip beyond its limits (ChipLimitError)
    except (ValueError, DataError, CheckpointError) as exc:
        fail(str(exc))
    res = evaluate(engine, data, activity=True, batch_size=50)[0]
    rep = inference_energy(program, cfg, res.activity, res.spike_rates, poisson_rate(data.images, program.image_size))
    used = [c for c in COMPONENTS if rep.by_component()[c] > 0]
    typer.echo(f"{program.kind.upper()} ({checkpoint}) on {cfg.device.model}, chip instance {chip_seed}, "
               f"{len(data)} test images (accuracy {100 * res.accuracy:.1f} %)\n")
    typer.echo("| layer | " + " | ".join(f"{c} nJ" for c in used) + " | total nJ |")
    typer.echo("|---|" + "---|" * (len(used) + 1))
    for layer, comps in rep.joules.items():
        typer.echo(f"| {layer} | " + " | ".join(f"{1e9 * comps.get(c, 0.0):.3g}" for c in used)
                   + f" | {1e9 * sum(comps.values()):.4g} |")
    tot = rep.by_component()
    typer.echo("| **total** | " + " | ".join(f"**{1e9 * tot[c]:.4g}**" for c in used) + f" | **{1e9 * rep.total_j:.4g}** |")
    typer.echo(f"\nenergy per inference {1e9 * rep.total_j:.4g} nJ, latency {1e6 * rep.latency_s:.4g} us, "
               f"array {rep.array_ops / 1e6:.4g} M ops at {rep.array_tops_per_w:.3g} TOPS/W (array, drivers, ADC, buffer)")


@app.command()
def schema():
    """Every field of a scenario: type, default, unit, allowed range and meaning (markdown)."""
    from ..imc.config import iter_fields
    from ..sweep import Scenario
    from ..sweep.scenario import ModelsSpec

    def walk(model, prefix):
        for path, f in iter_fields(model, prefix):
            if path == "models.hint":  # the models mapping: any number of names beside its one field
                yield "models.<name>", "str", "(at least one)", "", " ".join((ModelsSpec.__doc__ or "").split("\n\n")[0].split())
            default = "(required)" if f.is_required() else ("factory" if f.default_factory else repr(f.default))
            extra = f.json_schema_extra if isinstance(f.json_schema_extra, dict) else {}
            yield path, getattr(f.annotation, "__name__", str(f.annotation)).replace("typing.", ""), default, \
                extra.get("unit", ""), (f.description or "").replace("|", "/")

    typer.echo("| field | type | default | unit | meaning (allowed values) |\n|---|---|---|---|---|")
    for row in walk(Scenario, ""):
        typer.echo("| " + " | ".join(str(x) for x in row) + " |")


@app.command()
def report(directory: Path = typer.Argument(..., help="a sweep output directory")):
    """(Re)write trials.parquet, summary.csv/.md and plots of a sweep directory and print the summary."""
    from ..sweep import write_report

    from ..sweep.store import StoreMismatch

    try:
        res = write_report(directory)
    except (FileNotFoundError, StoreMismatch) as exc:
        fail(str(exc))
    if res["trials"].empty:
        fail(f"{directory}: no finished trials yet")
    typer.echo(res["markdown"])


@data_app.command("list")
def data_list():
    """Known data sets and whether each is found here."""
    from ..data import DATASETS
    from ..data.registry import locate

    for name, info in DATASETS.items():
        where = locate(name)
        typer.echo(f"{name:14s} {info.description}\n{'':14s} {where}")


@data_app.command("info")
def data_info(name: str, data_dir: Optional[Path] = typer.Option(None)):
    """Load a data set and print where it was found, sizes, classes and checksum status."""
    from ..data import DataError, load_dataset

    try:
        for split in ("train", "test"):
            d = load_dataset(name, split, data_dir)
            c, h, w = d.shape
            typer.echo(f"{name}/{split}: {len(d)} images {h}x{w}x{c}, {d.num_classes} classes, from {d.source}, checksum: {d.checksum}")
            typer.echo("  per class: " + ", ".join(f"{cls} {n}" for cls, n in zip(d.classes, d.class_counts())))
    except DataError as exc:
        fail(str(exc))


def _clean_errors(command):
    """One clear error instead of a traceback for what the file system or a store refuses: a path
    that cannot be created or written (``--out`` under a file, a read-only folder, a full disk), a
    damaged results store. Every command goes through it (below)."""
    import functools
    import sqlite3

    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except OSError as exc:
            where = exc.filename if exc.filename is not None else ""
            fail(f"{where}: {exc.strerror or exc}" if where else f"{exc.strerror or exc}")
        except sqlite3.DatabaseError as exc:
            fail(f"results store: {exc}")
    return run


for _info in app.registered_commands + data_app.registered_commands:
    _info.callback = _clean_errors(_info.callback)


def main():
    from ..runtime import tune_allocator

    tune_allocator()
    app()


if __name__ == "__main__":
    main()
