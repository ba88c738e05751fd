"""Batch-norm running statistics in hardware-aware training (issue 21).

A hardware-aware fine-tune (``--hw-aware``) runs every binary MAC through a sampled chip, so in
train mode batch norm's running mean / variance follow activations that carry that chip's errors;
with momentum 0.1 and a fresh chip every few steps they end up describing the last chips drawn,
not the network. ``TrainConfig.bn_statistics`` chooses what the checkpoint keeps:

- ``running``: the running statistics as training leaves them (PyTorch's default);
- ``frozen``: batch norm in eval mode during training -- it normalises with, and keeps, the
  statistics of the ``--init`` checkpoint (the standard model's); only its affine weights learn;
- ``ideal``: after every epoch, re-estimated as a cumulative average (momentum None) over
  ``bn_images`` training images on the ideal chip (no chip errors, no augmentation): the
  statistics of the network the weights now describe (Ioffe & Szegedy 2015, section 3.1:
  population statistics for inference);
- ``frozen-ideal``: both -- batch norm frozen at the ``--init`` checkpoint's statistics while the
  weights learn, then re-estimated on ideal images after every epoch. Measured (README, "Frozen in
  training, re-estimated after it"): it recovers the ideal-chip accuracy of ``frozen`` but loses its
  gain on noisy chips -- that gain lives in the frozen statistics, not in the weights alone.
"""

from __future__ import annotations

import torch

from ..models.inputs import model_input
from ..seeding import derive_seed, generator

BN_STATISTICS = ("running", "frozen", "ideal", "frozen-ideal")


def frozen_in_training(mode: str) -> bool:
    """Whether batch norm runs in eval mode (its stored statistics) during the training steps."""
    return mode in ("frozen", "frozen-ideal")


def reestimated_after_epoch(mode: str) -> bool:
    """Whether the running statistics are re-estimated on ideal training images after every epoch."""
    return mode in ("ideal", "frozen-ideal")


def batch_norms(model: torch.nn.Module) -> list[torch.nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


def freeze_batch_norms(model: torch.nn.Module) -> None:
    """Batch norm in eval mode (call after ``model.train()``): normalise with the stored statistics
    and leave them unchanged."""
    for m in batch_norms(model):
        m.eval()


@torch.no_grad()
def reestimate_batch_norms(model, images_u8: torch.Tensor, index: torch.Tensor, input_seed: int,
                           batch_size: int = 64) -> None:
    """Running statistics of every batch norm = the cumulative average of its batch statistics over
    ``images_u8`` (uint8 training images, ``index`` their data-set indices for the Poisson input),
    in batches of ``batch_size`` (the training batch: the variance is each batch's unbiased one, as
    in training). The model's mode and momenta are restored afterwards."""
    norms = batch_norms(model)
    momenta = [m.momentum for m in norms]
    was_training = model.training
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    model.train()
    dev = next(model.parameters()).device
    for s in range(0, len(index), batch_size):
        idx = index[s:s + batch_size]
        model(model_input(model.config, images_u8[s:s + batch_size].to(dev), idx, input_seed))
    for m, mom in zip(norms, momenta):
        m.momentum = mom
    model.train(was_training)


def epoch_reestimate(model, train_ds, seed: int, epoch: int, images: int, batch_size: int) -> None:
    """The ``ideal`` / ``frozen-ideal`` re-estimate after ``epoch`` of a run seeded ``seed``: on
    ``images`` training images drawn for this epoch (permutation seeded by (seed, "bn", epoch), Poisson
    input seeded by (seed, "bn-poisson", epoch)) in batches of the training batch size."""
    idx = torch.randperm(len(train_ds), generator=generator(seed, "bn", epoch))[:images]
    reestimate_batch_norms(model, train_ds.images[idx], idx, derive_seed(seed, "bn-poisson", epoch), batch_size)
