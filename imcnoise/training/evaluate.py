"""Evaluation of the float (trained) model: accuracy and per-layer spike rates."""

from __future__ import annotations

import torch

from ..data import ImageDataset
from ..models.inputs import model_input
from ..models.metrics import EvalResult, iter_batches
from ..models.vgg import BinaryVGG11, Recording

PRECISIONS = {"fp32": torch.float32, "fp64": torch.float64}


@torch.no_grad()
def evaluate(model: BinaryVGG11, data: ImageDataset, *, batch_size: int = 256, input_seed: int = 0,
             precision: str = "fp32", device: str | torch.device | None = None, progress: bool = False,
             keep_predictions: bool = False) -> EvalResult:
    """Accuracy of ``model`` (eval mode, float arithmetic of ``precision``) on ``data``.

    Image i gets the Poisson input spikes of (input_seed, i), identical in every engine.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
    dtype = PRECISIONS[precision]
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    orig_dtype = next(model.parameters()).dtype
    model.to(dtype)
    rec = Recording()
    correct, preds = 0, []
    from tqdm.auto import tqdm

    try:
        for idx in tqdm(list(iter_batches(len(data), batch_size)), desc="eval", disable=not progress, leave=False):
            x = model_input(model.config, data.images[idx].to(device), idx, input_seed, dtype=dtype)
            out = model(x, rec)
            p = out.argmax(1).cpu()
            correct += int((p == data.labels[idx]).sum())
            if keep_predictions:
                preds.append(p)
    finally:
        model.to(orig_dtype)
        model.train(was_training)
    n = len(data)
    return EvalResult(correct / n, correct, n, rec.rates(), torch.cat(preds) if keep_predictions else None)
