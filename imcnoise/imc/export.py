"""``imcnoise export``: chip program files plus sample inputs with the engine's predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .config import ArrayConfig
from .engines.integer import XnorEngine
from .program import ChipProgram, fold_checkpoint


def write_samples(program: ChipProgram, out_dir: str | Path, images_u8: torch.Tensor, labels: torch.Tensor,
                  input_seed: int = 0) -> Path:
    """samples.npz: images, their data-set indices, the Poisson seed, labels, and the XNOR
    engine's predictions/outputs -- what examples/rebuild_from_export.py checks against."""
    index = torch.arange(len(images_u8))
    out = XnorEngine(program).run(images_u8, index, input_seed)
    path = Path(out_dir) / "samples.npz"
    np.savez(path, images=images_u8.numpy(), index=index.numpy(), input_seed=np.int64(input_seed),
             labels=labels.numpy(), predictions=out.argmax(1).numpy(), outputs=out.numpy())
    return path


def export_checkpoint(checkpoint: str | Path, out_dir: str | Path, *, array: ArrayConfig | None = None, samples: int = 16,
                      data_dir=None, input_seed: int = 0) -> dict:
    from ..data import DataError, load_dataset

    program = fold_checkpoint(checkpoint)
    out = program.save(out_dir, array)
    written = [out / "program.npz", out / "program.json", out / "summary.md"]
    note = None
    if samples > 0:
        try:
            data = load_dataset(program.meta["dataset"], "test", data_dir).subset(samples)
            written.append(write_samples(program, out, data.images, data.labels, input_seed))
        except DataError as exc:
            note = f"no samples.npz written ({exc})"
    return {"program": program, "files": written, "note": note}
