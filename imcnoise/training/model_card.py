"""MODEL_CARD.md next to every trained checkpoint."""

from __future__ import annotations

from pathlib import Path


def write_model_card(out: Path, cfg, meta: dict, mcfg) -> Path:
    tr, m, d = meta["training"], meta["metrics"], meta["data"]
    hist = tr["history"]
    rows = "\n".join(f"| {h['epoch']} | {h['train_loss']:.4f} | {100 * h['train_acc']:.2f} | {100 * h['test_acc']:.2f} | {h['wall_time_s'] / 60:.1f} |"
                     for h in hist)
    rates = ", ".join(f"L{k}: {v:.3f}" for k, v in m["spike_rates"].items())
    text = f"""# Model card: {mcfg.kind.upper()} VGG11 on {d['dataset']}

| field | value |
|---|---|
| model | {mcfg.kind} (VGG11, width {mcfg.width}, T={mcfg.timesteps}, residual schedule `{mcfg.residual}`, theta={mcfg.threshold}) |
| data | {d['dataset']}: {d['train_images']} training / {d['test_images']} test images ({d['checksum']}) |
| command | `{tr['command']}` |
| seed | {tr['seed']} |
| epochs | {tr['epochs_done']} of {tr['epochs']} |
| optimiser | {tr['optimizer']}, lr {tr['lr']}, {tr['schedule']} schedule, batch {tr['batch_size']}, precision {tr['precision']} |
| wall time | {tr['wall_time_s'] / 60:.1f} min on {tr['device']} ({tr['threads']} threads) |
| **test accuracy** | **{100 * m['test_accuracy']:.2f} %** ({m['test_images']} images, Poisson seed {m['eval_seed']}) |
| firing rates | {rates} |

Reproduce with the command above (same seed -> same run); `--resume` continues an interrupted run.

## Training curve

| epoch | train loss | train acc % | test acc % | wall min |
|---|---|---|---|---|
{rows}
"""
    path = out / "MODEL_CARD.md"
    path.write_text(text)
    return path
