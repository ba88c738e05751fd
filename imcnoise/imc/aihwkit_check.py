"""Check that aihwkit's pure-torch inference tiles run with the installed torch.

aihwkit 1.1.0's compiled C++ tiles (``InferenceRPUConfig``) do not work with torch 2.13 (ABI
mismatch); imcnoise only uses the pure-torch ``TorchInferenceRPUConfig`` path. Run as
``python -m imcnoise.imc.aihwkit_check`` (scripts/setup.sh does).
"""

from __future__ import annotations

import sys


def check() -> str:
    import torch
    from aihwkit.nn import AnalogLinear
    from aihwkit.simulator.configs import TorchInferenceRPUConfig

    torch.manual_seed(0)
    layer = AnalogLinear(8, 4, bias=False, rpu_config=TorchInferenceRPUConfig())
    x = torch.randn(3, 8)
    w = layer.get_weights()[0]
    with torch.no_grad():
        y = layer(x)
    if y.shape != (3, 4) or not torch.isfinite(y).all():
        raise RuntimeError("TorchInferenceRPUConfig tile returned an invalid result")
    # default rpu config has output noise etc.; the result must still track x @ w.T
    err = float((y - x @ w.T).abs().max())
    if err > 1.0:
        raise RuntimeError(f"TorchInferenceRPUConfig tile result deviates from x @ W.T by {err}")
    import aihwkit

    return f"aihwkit {aihwkit.__version__} TorchInferenceRPUConfig tiles OK with torch {torch.__version__}"


if __name__ == "__main__":
    try:
        print(check())
    except Exception as exc:  # report any failure in one line, non-zero exit
        print(f"aihwkit check FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
