"""Compact inference checkpoints: binary weights as packed sign bits plus alpha.

A width-0.25 VGG11 has ~1.8 M weights; stored as fp32 latent values that is 7 MB, as sign bits
~0.3 MB. The checkpoint records the architecture, training hyper-parameters, data set, seed,
accuracy and package versions; loading one that does not match what the caller expects raises
:class:`CheckpointError` naming the field.
"""

from __future__ import annotations

import hashlib
import os
import platform
from pathlib import Path

import numpy as np
import torch

from ..files import atomic_write
from .binary import BinaryConv2d, BinaryLinear
from .vgg import BinaryVGG11, ModelConfig

FORMAT = "imcnoise-checkpoint"
FORMAT_VERSION = 1


SHIPPED_PREFIX = "shipped:"
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "checkpoints"  # the checkpoints that come with imcnoise


def shipped_names() -> list[str]:
    """Names of the shipped checkpoints (``shipped:<name>``)."""
    return sorted(d.name for d in SHIPPED_DIR.iterdir() if (d / "model.pt").is_file()) if SHIPPED_DIR.is_dir() else []


def shipped_checkpoint(ref: str) -> Path | None:
    """The file of ``shipped:<name>`` (None when ``ref`` names no shipped checkpoint but a path);
    CheckpointError listing the shipped ones where ``<name>`` is not among them."""
    if not ref.startswith(SHIPPED_PREFIX):
        return None
    name = ref[len(SHIPPED_PREFIX):]
    p = SHIPPED_DIR / name / "model.pt"
    if not p.is_file():
        raise CheckpointError(f"shipped checkpoint {name!r} not found; shipped: {', '.join(shipped_names()) or 'none'}")
    return p


def locate_checkpoint(ref: str, search_dirs: list[Path]) -> Path:
    """The file a checkpoint reference names: ``shipped:<name>``, an absolute path, or a relative one
    looked up in ``search_dirs`` in order (the first that holds the file; the first candidate when
    none does, so the caller can say where it looked). CheckpointError for an unknown shipped name."""
    shipped = shipped_checkpoint(ref)
    if shipped is not None:
        return shipped
    p = Path(ref)
    if p.is_absolute():
        return p
    cand = [d / p for d in search_dirs]
    return next((c for c in cand if c.is_file()), cand[0])


class CheckpointError(ValueError):
    pass


def package_versions() -> dict[str, str]:
    import imcnoise

    out = {"imcnoise": imcnoise.__version__, "torch": str(torch.__version__), "numpy": np.__version__,
           "python": platform.python_version()}
    try:
        import aihwkit

        out["aihwkit"] = aihwkit.__version__
    except Exception:  # missing or broken: record no version (loading a checkpoint does not need it)
        pass
    return out


def machine_description(cpuinfo: str | None = None) -> str:
    """The CPU a run used, as a model card names it: model name (``/proc/cpuinfo``), logical CPUs, and the
    vector / matrix extensions that decide which fp32 kernels oneDNN runs (AVX2, AVX-512, AMX). Training
    is bit-reproducible on one kind of CPU, not across kinds: each picks kernels that sum in another order."""
    cpu, flags = None, None
    try:
        text = Path("/proc/cpuinfo").read_text() if cpuinfo is None else cpuinfo
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and cpu is None:
            cpu = value.strip()
        elif key.strip() == "flags" and flags is None:
            flags = set(value.split())
    cpu, flags = cpu or platform.processor() or "unknown CPU", flags or set()
    isa = [name for flag, name in (("amx_tile", "AMX"), ("avx512_vnni", "AVX-512 VNNI"), ("avx512f", "AVX-512"),
                                   ("avx2", "AVX2")) if flag in flags]
    return f"{cpu}, {os.cpu_count()} logical CPUs" + (f", {isa[0]}" if isa else "")


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _binary_modules(model: BinaryVGG11):
    for name, mod in model.named_modules():
        if isinstance(mod, (BinaryConv2d, BinaryLinear)):
            yield name, mod


def compact_state(model: BinaryVGG11) -> dict[str, torch.Tensor]:
    state = {k: v.detach().cpu().float().clone() if v.is_floating_point() else v.detach().cpu().clone()
             for k, v in model.state_dict().items()}
    for name, mod in _binary_modules(model):
        w = state.pop(f"{name}.weight")
        bits = np.packbits((w >= 0).numpy().reshape(-1).astype(np.uint8))
        state[f"{name}.weight_bits"] = torch.from_numpy(bits)
        state[f"{name}.weight_shape"] = torch.tensor(list(w.shape), dtype=torch.int64)
        state[f"{name}.alpha"] = mod.alpha().detach().cpu().float().clone()
    return state


def atomic_torch_save(obj, path: str | Path) -> None:
    """``torch.save`` via a temporary file and rename (:func:`imcnoise.files.atomic_write`)."""
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def save_checkpoint(path: str | Path, model: BinaryVGG11, *, training: dict, metrics: dict, data: dict) -> Path:
    obj = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "model_config": model.config.to_dict(),
        "state": compact_state(model),
        "training": training, "metrics": metrics, "data": data,
        "versions": package_versions(),
    }
    atomic_torch_save(obj, path)
    return Path(path)


def read_checkpoint(path: str | Path) -> dict:
    """The raw checkpoint dict, validated for format (no model built)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an imcnoise inference checkpoint (field 'format' must be {FORMAT!r}; "
                              "training-state files such as last.pt are for --resume only)")
    if obj.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format_version {obj.get('format_version')} is not supported (expected {FORMAT_VERSION})")
    for field, kind in (("model_config", dict), ("state", dict)):
        if field not in obj:
            raise CheckpointError(f"{path}: field '{field}' missing (a damaged or hand-edited checkpoint)")
        if not isinstance(obj[field], kind):
            raise CheckpointError(f"{path}: field '{field}' must be a {kind.__name__}, found {type(obj[field]).__name__}")
    for field in ("training", "metrics", "data"):
        if obj.get(field) is not None and not isinstance(obj[field], dict):
            raise CheckpointError(f"{path}: field '{field}' must be a dict, found {type(obj[field]).__name__}")
    bad = [k for k, v in obj["state"].items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{path}: state entries {bad[:3]} are not tensors (a damaged or hand-edited checkpoint)")
    return obj


def load_checkpoint(path: str | Path, *, expect: dict | None = None, device: str | torch.device = "cpu"):
    """Build the model stored in ``path``; returns ``(model, checkpoint_dict)`` in eval mode.

    ``expect`` maps model-config fields (e.g. ``kind``, ``num_classes``, ``in_channels``) or
    ``dataset`` to required values; any difference raises :class:`CheckpointError`.
    """
    obj = read_checkpoint(path)
    try:
        config = ModelConfig.from_dict(dict(obj["model_config"]))
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: invalid model_config: {exc}") from None
    for key, want in (expect or {}).items():
        have = obj.get("data", {}).get("dataset") if key == "dataset" else getattr(config, key, None)
        if want is not None and have != want:
            raise CheckpointError(f"{path}: checkpoint has {key}={have!r} but {key}={want!r} was requested")
    model = BinaryVGG11(config)
    state = dict(obj["state"])
    alphas = {}
    for name, mod in _binary_modules(model):
        try:
            bits = state.pop(f"{name}.weight_bits")
            shape = tuple(state.pop(f"{name}.weight_shape").tolist())
            alphas[name] = state.pop(f"{name}.alpha")
        except KeyError as exc:
            raise CheckpointError(f"{path}: missing {exc.args[0]} for binary layer {name}") from None
        if shape != tuple(mod.weight.shape):
            raise CheckpointError(f"{path}: layer {name} has weight shape {shape}, the model config builds {tuple(mod.weight.shape)}")
        n = int(np.prod(shape))
        signs = np.unpackbits(bits.numpy())[:n].astype(np.float32) * 2 - 1
        state[f"{name}.weight"] = torch.from_numpy(signs.reshape(shape))
    for key, value in {**state, **{f"{n}.alpha": a for n, a in alphas.items()}}.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise CheckpointError(f"{path}: {key} holds NaN or infinite values (a damaged or diverged checkpoint)")
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(f"{path}: state does not match the model config (missing {missing}, unexpected {unexpected})")
    for name, mod in _binary_modules(model):
        mod.freeze(alphas[name])
    model.to(device).eval()
    return model, obj
