"""Direct training of the B-SNN (surrogate gradient, Alg. 1) and of the BNN baseline.

Deterministic given the seed: weight init, the epoch permutation, augmentation and the Poisson
spikes all come from seeds derived from (seed, purpose, epoch), so ``--resume`` continues exactly
as an uninterrupted run would.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import shlex
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ..data import load_dataset
from ..data.transforms import NORMALIZATION, random_crop_flip
from ..models.binary import BinaryConv2d, BinaryLinear
from ..files import atomic_write
from ..models.checkpoint import (CheckpointError, atomic_torch_save, load_checkpoint, machine_description, package_versions, save_checkpoint,
                                locate_checkpoint)
from ..models.inputs import model_input
from ..models.vgg import BinaryVGG11, ModelConfig
from ..seeding import derive_seed, generator
from .batchnorm import epoch_reestimate, freeze_batch_norms, frozen_in_training, reestimated_after_epoch
from .config import TrainConfig
from .evaluate import evaluate
from .hw_aware import ChipInTheLoop, load_chip
from .model_card import write_model_card

STATE_FILE = "last.pt"
_RESUME_FIELDS = {"train_config": dict, "model": dict, "optimizer": dict, "scheduler": dict, "epoch": int,
                  "history": list, "wall_time_s": float}


def _read_resume_state(path: Path, device) -> dict:
    """A training state written by :func:`train` (``last.pt``), or one clear error: not readable
    (damaged, truncated by a kill), or not a training state (a model checkpoint, another file)."""
    try:
        st = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # torch's unpickler raises many kinds for a damaged file
        raise ValueError(f"{path}: cannot resume, not a readable training state ({type(exc).__name__}); "
                         "move it away to start over") from None
    missing = [k for k in _RESUME_FIELDS if not isinstance(st, dict) or k not in st]
    if missing:
        what = "an inference checkpoint (model.pt)" if isinstance(st, dict) and st.get("format") else "not a training state"
        raise ValueError(f"{path}: cannot resume, {what}: fields {missing} missing")
    wrong = [k for k, t in _RESUME_FIELDS.items() if not isinstance(st[k], (int, float) if t is float else t)]
    if wrong:
        raise ValueError(f"{path}: cannot resume, fields {wrong} have the wrong type (a hand-edited or foreign file)")
    return st
MODEL_FILE = "model.pt"


def model_config_for(cfg: TrainConfig, data) -> ModelConfig:
    mean, std = NORMALIZATION.get(cfg.dataset, ((0.5,), (0.25,)))
    return ModelConfig(kind=cfg.model, width=cfg.width, timesteps=cfg.timesteps, in_channels=data.shape[0],
                       image_size=32 * math.ceil(max(data.shape[1:]) / 32), num_classes=data.num_classes,
                       residual=cfg.residual, threshold=cfg.threshold, input_mean=mean, input_std=std)


def init_model(model: BinaryVGG11, cfg: TrainConfig) -> BinaryVGG11:
    """Training-time initialisation: pooling-aware batch-norm bias (see TrainConfig.pool_bn_bias_init)."""
    for spec, norm in zip(model.plan, model.norms):
        if spec.pool_after:
            torch.nn.init.constant_(norm.bias, cfg.pool_bn_bias_init)
    return model


REPO_ROOT = Path(__file__).resolve().parents[2]


def resolve_model_path(ref: str, field: str) -> Path:
    """``shipped:<name>`` (a shipped checkpoint), or a path relative to the working directory or,
    failing that, to the repository root (where the presets' paths start)."""
    try:
        p = locate_checkpoint(ref, [Path.cwd(), REPO_ROOT])
    except CheckpointError as exc:
        raise ValueError(f"--{field.replace('_', '-')}={ref!r}: {exc}") from None
    if not p.is_file():
        raise ValueError(f"--{field.replace('_', '-')}={ref!r}: file not found ({p})")
    return p


@torch.no_grad()
def init_from_checkpoint(model: BinaryVGG11, path: Path) -> None:
    """Load a trained checkpoint into a fresh model: full-precision layers and batch norm as
    stored, binary layers' latent weights sign(w) * alpha (the magnitude the checkpoint keeps).

    The number of time steps may differ (issue 21: a B-SNN trained at T = 8 fine-tuned at T = 4 or
    16): it shapes no parameter. Every other field of the architecture must match."""
    src, _ = load_checkpoint(path)
    got, want = src.config.to_dict(), model.config.to_dict()
    got.pop("timesteps"), want.pop("timesteps")
    if got != want:
        diff = {k: (got[k], want[k]) for k in want if got.get(k) != want[k]}
        raise ValueError(f"--init={path}: the checkpoint's model differs from the one trained in "
                         f"(field: checkpoint, run) {diff}; only timesteps may differ")
    state = src.state_dict()
    for spec, layer in src.binary_layers():
        state[f"layers.{spec.index - 1}.weight"] = layer.binary_weight() * layer.alpha().view(-1, *[1] * (layer.weight.dim() - 1))
    model.load_state_dict(state)


def _param_groups(model: BinaryVGG11, weight_decay: float):
    binary, fp, no_decay = [], [], []
    for mod in model.modules():
        for name, p in mod.named_parameters(recurse=False):
            if isinstance(mod, (BinaryConv2d, BinaryLinear)):
                binary.append(p)
            elif name == "weight" and isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)):
                fp.append(p)
            else:
                no_decay.append(p)  # batch-norm affine parameters, biases
    return [{"params": binary, "weight_decay": 0.0}, {"params": fp, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def _lr_lambda(cfg: TrainConfig, steps_per_epoch: int):
    total = cfg.epochs * steps_per_epoch
    warm = int(cfg.warmup_epochs * steps_per_epoch)

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        if cfg.schedule == "constant":
            return 1.0
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))

    return f


def _autocast(device: torch.device, precision: str):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def train_step(model: BinaryVGG11, opt, sched, x: torch.Tensor, y: torch.Tensor, dev: torch.device,
               precision: str, teacher_logits: torch.Tensor | None = None, kd_alpha: float = 0.0,
               kd_temperature: float = 4.0) -> tuple[float, int]:
    """One optimisation step (Alg. 1): forward over all T, cross-entropy on the output membrane
    (eq. 2), surrogate-gradient backward, update, latent-weight clipping. Returns (loss, correct).

    With ``teacher_logits``, knowledge distillation (Hinton, Vinyals & Dean 2015): the loss is
    (1 - kd_alpha) CE + kd_alpha T^2 KL(softmax(teacher / T) || softmax(output / T))."""
    with _autocast(dev, precision):
        outp = model(x)
    loss = F.cross_entropy(outp.float(), y)
    if teacher_logits is not None and kd_alpha > 0:
        t = kd_temperature
        kd = F.kl_div(F.log_softmax(outp.float() / t, 1), F.log_softmax(teacher_logits.float() / t, 1), log_target=True,
                      reduction="batchmean") * t * t
        loss = (1 - kd_alpha) * loss + kd_alpha * kd
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    model.clip_latent_()
    sched.step()
    return float(loss.detach()), int((outp.argmax(1) == y).sum())


@dataclasses.dataclass
class _Run:
    """What a training run works with: the model and what shapes its steps."""

    model: BinaryVGG11
    mcfg: ModelConfig
    teacher: BinaryVGG11 | None
    chip: ChipInTheLoop | None
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    steps_per_epoch: int


def _build(cfg: TrainConfig, train_ds, dev: torch.device) -> _Run:
    """Model (seeded init, optional --init), teacher, chip in the loop, optimiser and schedule."""
    torch.manual_seed(derive_seed(cfg.seed, "init"))
    mcfg = model_config_for(cfg, train_ds)
    model = init_model(BinaryVGG11(mcfg), cfg)
    if cfg.init is not None:
        init_from_checkpoint(model, resolve_model_path(cfg.init, "init"))
    model = model.to(dev)
    if dev.type == "cpu":
        model = model.to(memory_format=torch.channels_last)  # faster oneDNN convolutions
    teacher = None
    if cfg.teacher is not None:
        teacher, _ = load_checkpoint(resolve_model_path(cfg.teacher, "teacher"), expect={"num_classes": mcfg.num_classes,
                                     "in_channels": mcfg.in_channels}, device=dev)
    chip = ChipInTheLoop(model, load_chip(resolve_model_path(cfg.hw_aware, "hw_aware")), cfg.seed, cfg.hw_resample) \
        if cfg.hw_aware is not None else None
    opt_cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.SGD
    kw = {} if cfg.optimizer == "adam" else {"momentum": cfg.momentum, "nesterov": True}
    opt = opt_cls(_param_groups(model, cfg.weight_decay), lr=cfg.lr, **kw)
    steps_per_epoch = len(train_ds) // cfg.batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"--batch-size={cfg.batch_size}: larger than the {len(train_ds)} training images "
                         f"(no full batch, no training step); allowed 2 .. {len(train_ds)}")
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg, steps_per_epoch))
    return _Run(model, mcfg, teacher, chip, opt, sched, steps_per_epoch)


def _resume(state_path: Path, cfg: TrainConfig, run: _Run, dev) -> tuple[int, list[dict], float]:
    """(first epoch, history, wall time) from a training state written by an earlier run of ``cfg``."""
    st = _read_resume_state(state_path, dev)
    saved = TrainConfig.from_dict(st["train_config"])
    if saved.to_dict() != cfg.to_dict():
        diff = {k: (v, cfg.to_dict()[k]) for k, v in saved.to_dict().items() if cfg.to_dict()[k] != v}
        raise ValueError(f"{state_path}: cannot resume, the training settings differ (saved, requested): {diff}")
    try:
        run.model.load_state_dict(st["model"])
        run.opt.load_state_dict(st["optimizer"])
        run.sched.load_state_dict(st["scheduler"])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise ValueError(f"{state_path}: cannot resume, the saved state does not fit this model "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0]}); move it away to start over") from None
    return st["epoch"] + 1, st["history"], st["wall_time_s"]


def _train_epoch(run: _Run, cfg: TrainConfig, train_ds, epoch: int, dev, progress: bool) -> tuple[float, int, int]:
    """One epoch of steps: (summed loss, correct, images seen)."""
    from tqdm.auto import tqdm

    model, chip = run.model, run.chip
    model.train()
    if frozen_in_training(cfg.bn_statistics):
        freeze_batch_norms(model)
    gen = generator(cfg.seed, "epoch", epoch)
    perm = torch.randperm(len(train_ds), generator=gen)
    poisson_seed = derive_seed(cfg.seed, "poisson", epoch)
    loss_sum, correct, seen = 0.0, 0, 0
    bar = tqdm(range(run.steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", disable=not progress,
               mininterval=1.0 if sys.stderr.isatty() else 30.0, file=sys.stderr)
    for b in bar:
        idx = perm[b * cfg.batch_size:(b + 1) * cfg.batch_size]
        imgs = train_ds.images[idx]
        if cfg.crop_padding or cfg.flip:
            imgs = random_crop_flip(imgs, gen, padding=cfg.crop_padding, flip=cfg.flip)
        x = model_input(run.mcfg, imgs.to(dev), idx, poisson_seed)
        y = train_ds.labels[idx].to(dev)
        t_logits = None
        if run.teacher is not None:
            with torch.no_grad():
                t_logits = run.teacher(model_input(run.teacher.config, imgs.to(dev), idx, poisson_seed))
        if chip is not None:
            chip.step(epoch * run.steps_per_epoch + b, idx)
        with chip if chip is not None else contextlib.nullcontext():
            loss, n_right = train_step(model, run.opt, run.sched, x, y, dev, cfg.precision, t_logits, cfg.kd_alpha,
                                       cfg.kd_temperature)
        loss_sum += loss * len(idx)
        correct += n_right
        seen += len(idx)
        bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}", lr=f"{run.sched.get_last_lr()[0]:.2e}",
                        refresh=False)
    bar.close()
    return loss_sum, correct, seen


def _write_epoch(out: Path, run: _Run, cfg: TrainConfig, epoch: int, res, history: list[dict], wall: float, command: str,
                 dev, train_ds, test_ds) -> None:
    """The epoch's inference checkpoint, training state, history and model card (each written atomically)."""
    meta = dict(training={**cfg.to_dict(), "command": command, "epochs_done": epoch + 1, "wall_time_s": round(wall, 1),
                          "device": str(dev), "machine": machine_description(), "threads": torch.get_num_threads(),
                          "history": history},
                metrics={"test_accuracy": res.accuracy, "test_images": res.n, "eval_seed": cfg.eval_seed,
                         "spike_rates": {str(k): v for k, v in res.spike_rates.items()}},
                data={"dataset": cfg.dataset, "train_images": len(train_ds), "test_images": len(test_ds),
                      "source": train_ds.source, "checksum": train_ds.checksum})
    save_checkpoint(out / MODEL_FILE, run.model, **meta)
    atomic_torch_save({"train_config": cfg.to_dict(), "model": run.model.state_dict(), "optimizer": run.opt.state_dict(),
                       "scheduler": run.sched.state_dict(), "epoch": epoch, "history": history, "wall_time_s": wall,
                       "versions": package_versions()}, out / STATE_FILE)
    atomic_write(out / "history.json", lambda t: t.write_text(json.dumps(history, indent=1)))
    write_model_card(out, cfg, {**meta, "versions": package_versions()}, run.mcfg)


def train(cfg: TrainConfig, out_dir: str | Path, *, resume: bool = False, data_dir=None, progress: bool = True,
          command: str | None = None, device: str | None = None) -> dict:
    """Train, evaluating after each epoch; writes ``last.pt`` (resume state), ``model.pt``
    (compact inference checkpoint), ``history.json`` and ``MODEL_CARD.md`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    command = command or " ".join(shlex.quote(a) for a in sys.argv)
    train_ds = load_dataset(cfg.dataset, "train", data_dir).subset(cfg.train_limit)
    test_ds = load_dataset(cfg.dataset, "test", data_dir).subset(cfg.eval_limit)
    run = _build(cfg, train_ds, dev)
    history: list[dict] = []
    start_epoch, wall = 0, 0.0
    state_path = out / STATE_FILE
    if resume and state_path.is_file():
        start_epoch, history, wall = _resume(state_path, cfg, run, dev)
    elif resume:
        print(f"no {state_path} yet: starting from scratch", file=sys.stderr)
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.time()
        loss_sum, correct, seen = _train_epoch(run, cfg, train_ds, epoch, dev, progress)
        if reestimated_after_epoch(cfg.bn_statistics):  # on the ideal chip: outside ChipInTheLoop
            epoch_reestimate(run.model, train_ds, cfg.seed, epoch, cfg.bn_images, cfg.batch_size)
        res = evaluate(run.model, test_ds, input_seed=cfg.eval_seed, device=dev)
        wall += time.time() - t0
        history.append({"epoch": epoch + 1, "train_loss": loss_sum / max(1, seen), "train_acc": correct / max(1, seen),
                        "test_acc": res.accuracy, "wall_time_s": round(wall, 1)})
        print(f"epoch {epoch + 1}/{cfg.epochs}: train loss {loss_sum / max(1, seen):.4f} acc {correct / max(1, seen):.4f} | "
              f"test acc {res.accuracy:.4f} | {wall / 60:.1f} min", file=sys.stderr, flush=True)
        _write_epoch(out, run, cfg, epoch, res, history, wall, command, dev, train_ds, test_ds)
    return {"history": history, "out": str(out)}
