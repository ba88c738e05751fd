"""MODEL_CARD.md next to every trained checkpoint."""

from __future__ import annotations

from pathlib import Path


def card_for_checkpoint(path: str | Path) -> Path:
    """(Re)write MODEL_CARD.md beside a checkpoint from the metadata stored in it."""
    from ..models.checkpoint import read_checkpoint
    from ..models.vgg import ModelConfig

    obj = read_checkpoint(path)
    meta = {k: obj[k] for k in ("training", "metrics", "data", "versions")}
    return write_model_card(Path(path).parent, None, meta, ModelConfig.from_dict(dict(obj["model_config"])))


def write_model_card(out: Path, cfg, meta: dict, mcfg) -> Path:
    tr, m, d = meta["training"], meta["metrics"], meta["data"]
    hist = tr["history"]
    rows = "\n".join(f"| {h['epoch']} | {h['train_loss']:.4f} | {100 * h['train_acc']:.2f} | {100 * h['test_acc']:.2f} | {h['wall_time_s'] / 60:.1f} |"
                     for h in hist)
    spiking = mcfg.kind == "bsnn"
    activation = {"bsnn": f"integrate-and-fire, surrogate delta {mcfg.delta}",
                  "bnn": "sign activations, straight-through gradient for x in [-1, 1]",
                  "float": "ReLU, full-precision weights (distillation teacher; not for the chip)"}[mcfg.kind]
    extra = ""
    if tr.get("teacher"):
        extra += (f"; knowledge distillation from `{tr['teacher']}` (weight {tr.get('kd_alpha')}, "
                  f"temperature {tr.get('kd_temperature')})")
    if tr.get("init"):
        extra += f"; initialised from `{tr['init']}` (latent binary weights sign(w) * alpha)"
    if tr.get("hw_aware"):
        extra += (f"; **hardware-aware**: every binary MAC ran through a sampled chip instance of `{tr['hw_aware']}` "
                  f"(a fresh chip every {tr.get('hw_resample')} step(s); straight-through gradient)")
    bn = tr.get("bn_statistics", "running")
    if bn == "frozen":
        extra += "; batch-norm statistics frozen at the `--init` checkpoint's (batch norm in eval mode)"
    elif bn == "ideal":
        extra += (f"; batch-norm statistics re-estimated after every epoch on {tr.get('bn_images')} ideal training "
                  "images (cumulative average)")
    elif bn == "frozen-ideal":
        extra += (f"; batch-norm statistics frozen at the `--init` checkpoint's during the steps, re-estimated after "
                  f"every epoch on {tr.get('bn_images')} ideal training images (cumulative average)")
    poisson = f", Poisson seed {m['eval_seed']}" if spiking else ""
    rates = ", ".join(f"L{k}: {v:.3f}" for k, v in m["spike_rates"].items())
    text = f"""# Model card: {mcfg.kind.upper()} VGG11 on {d['dataset']}

| field | value |
|---|---|
| model | {mcfg.kind} (VGG11, width {mcfg.width}, T={mcfg.timesteps}, residual schedule `{mcfg.residual}`, theta={mcfg.threshold}) |
| data | {d['dataset']}: {d['train_images']} training / {d['test_images']} test images ({d['checksum']}) |
| command | `{tr['command']}` |
| seed | {tr['seed']} |
| epochs | {tr['epochs_done']} of {tr['epochs']} |
| optimiser | {tr['optimizer']}, lr {tr['lr']}, {tr['schedule']} schedule (warm-up {tr.get('warmup_epochs')} epochs), batch {tr['batch_size']}, weight decay {tr.get('weight_decay')} on full-precision weights only, precision {tr['precision']} |
| recipe | augmentation: random crop (padding {tr.get('crop_padding')}){' + horizontal flip' if tr.get('flip') else ''}; {activation}; latent binary weights clipped to [-1, 1]; batch-norm bias of layers before OR-pooling initialised to {tr.get('pool_bn_bias_init')}{extra} |
| wall time | {tr['wall_time_s'] / 60:.1f} min on {tr['device']} (torch threads at the end: {tr['threads']}) |
| machine | {tr.get('machine') or 'not recorded (trained before 2026-12-04)'} |
| **test accuracy** | **{100 * m['test_accuracy']:.2f} %** ({m['test_images']} images{poisson}) |
| firing rates | {rates} |

Reproduce with the command above: the same seed on the same kind of CPU gives the same run, bit for bit
(`--resume` continues an interrupted one); another kind of CPU runs other floating-point kernels (oneDNN picks them
by instruction set), so its run drifts apart and ends in a different network of similar accuracy.
Binary weights are stored as packed sign bits with their per-channel scale alpha; the
full-precision first and last layers and batch-norm statistics as fp32. Package versions:
{", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items()) or "see the checkpoint"}.

## Training curve

| epoch | train loss | train acc % | test acc % | wall min |
|---|---|---|---|---|
{rows}
"""
    path = out / "MODEL_CARD.md"
    path.write_text(text)
    return path
