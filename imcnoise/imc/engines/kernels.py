"""Exact integer MAC kernels: the machine's int8 units where they are faster, fp32 where not.

Every array MAC of the engines is an exact sum of integers in disguise: binary inputs times weights
on a fixed grid (conductances on 2**-12 G_on, :mod:`..physics.cell`; the ideal array's +-1). Two
ways to compute it give the same bits:

* **fp32**: the weights as fp32 grid values, oneDNN / MKL convolutions and matrix products; exact
  because every partial sum stays below 2**24 grid steps (the engines' invariant);
* **int8**: the inputs as uint8 (0/1), the weights split into int8 digits w = 128 hi + lo
  (hi in [-128, 127], lo in [0, 127]; one digit when they fit), products accumulated in int32 by
  oneDNN's quantised convolution (``onednn::qconv2d_pointwise`` with scales 1, output fp32) or
  ``torch._int_mm``, digits recombined in fp32 (exact: |sum| < 2**24).

Which is faster depends on the machine (AMX / VNNI int8 units) and the shape: on a 2-core Xeon
with AMX (benchmarks/mc_throughput.py, same run) the integer engine's full-width binary layers ran
faster in int8 and the fast engine's per-chip 7-channel grouped convolutions slower; on a 2-core
AMD EPYC (no AMX) int8 ``_int_mm`` reached 0.4 GMAC/s against 30.7 for fp32. So the choice is made
at run time, by measurement: :func:`choose` times both paths once per operation and shape on the
real inputs (``IMCNOISE_MAC=auto``, the default) and keeps the faster; ``IMCNOISE_MAC=fp32`` or
``int8`` overrides it. Machines without oneDNN's int8 ops use fp32.
"""

from __future__ import annotations

import os
import time
from typing import Callable

import torch
import torch.nn.functional as F

def mode() -> str:
    m = os.environ.get("IMCNOISE_MAC", "auto").lower()
    if m not in ("auto", "fp32", "int8"):
        raise ValueError(f"IMCNOISE_MAC={m!r}: must be auto, fp32 or int8")
    return m


#: the measured choice per (operation, shape) key of this process: "int8" or "fp32" (:func:`choose`)
CHOICES: dict[tuple, str] = {}


def _seconds_min(fn: Callable[[], torch.Tensor], reps: int) -> tuple[float, torch.Tensor]:
    """The fastest of ``reps`` timed calls of ``fn`` (after one untimed warm-up that pays for
    packing and first-touch allocation) and its result."""
    out = fn()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def choose(key: tuple, int8: Callable[[], torch.Tensor], fp32: Callable[[], torch.Tensor],
           reps: int = 2) -> tuple[str, torch.Tensor | None]:
    """Which exact path, ``"int8"`` or ``"fp32"``, computes the operation ``key`` (an operation name
    and its shapes) faster on this machine, and -- when it was measured now -- its result.

    ``IMCNOISE_MAC=fp32`` / ``int8`` decide without measuring (``int8`` only where oneDNN's int8
    kernels exist). Under ``auto`` the first call per key runs both callables on the real inputs
    (one warm-up and ``reps`` timed calls each, the minimum kept), checks that they give the same
    numbers (both are exact: a difference is a bug, raised as such), and caches the faster in
    :data:`CHOICES` for the rest of the process. The choice changes only speed, never a bit."""
    m = mode()
    if m == "fp32" or not int8_available():
        return "fp32", None
    if m == "int8":
        return "int8", None
    if key in CHOICES:
        return CHOICES[key], None
    t_int8, y_int8 = _seconds_min(int8, reps)
    t_fp32, y_fp32 = _seconds_min(fp32, reps)
    if not torch.equal(y_int8.to(y_fp32.dtype), y_fp32):
        raise AssertionError(f"int8 and fp32 paths differ for {key}: the exact-MAC invariant is broken")
    CHOICES[key] = "int8" if t_int8 < t_fp32 else "fp32"
    return CHOICES[key], (y_int8 if CHOICES[key] == "int8" else y_fp32)


def run_faster(key: tuple, int8: Callable[[], torch.Tensor], fp32: Callable[[], torch.Tensor],
               int8_as_measured: Callable[[], torch.Tensor] | None = None) -> torch.Tensor:
    """The result of the path :func:`choose` picks for ``key``: the measured result when it was just
    measured, else the chosen callable's. ``int8_as_measured``: what to time for int8 when it costs
    more the first time than ``int8`` does later (the fast engine's per-chip weight packing)."""
    name, y = choose(key, int8_as_measured or int8, fp32)
    if y is not None:
        return y
    return int8() if name == "int8" else fp32()


def int8_available() -> bool:
    return hasattr(torch.ops, "onednn") and hasattr(torch.ops.onednn, "qconv2d_pointwise") and \
        torch.backends.mkldnn.is_available()


def split_digits(w_int: torch.Tensor) -> list[torch.Tensor]:
    """Integer weights -> int8 digits, most significant first: [w] when they fit int8, else
    [hi, lo] with w = 128 hi + lo (lo in [0, 127]); None when |w| >= 2**14 (use fp32)."""
    w = w_int.to(torch.int64)
    if int(w.abs().max()) <= 127:
        return [w.to(torch.int8)]
    if int(w.abs().max()) >= (1 << 14):
        return None
    hi = torch.div(w, 128, rounding_mode="floor")
    lo = w - 128 * hi
    return [hi.to(torch.int8), lo.to(torch.int8)]


class Int8Conv:
    """An exact grouped 3x3 (or kxk) convolution of uint8 0/1 inputs with integer weights
    ``[out, in/groups, k, k]`` (int64 values), via oneDNN's int8 convolution: fp32 output equal to
    the fp32 convolution of the same values."""

    def __init__(self, w_int: torch.Tensor, groups: int, padding: int, x_shape: tuple):
        self.digits = split_digits(w_int)
        if self.digits is None:
            raise ValueError("weights do not fit two int8 digits")
        out = w_int.shape[0]
        self.groups, self.padding, self.out = groups, padding, out
        nd = len(self.digits)
        # digits as extra output channels of each group: [g][digit][out/g] -> one convolution
        per = out // groups
        w = torch.stack([d.view(groups, per, *d.shape[1:]) for d in self.digits], dim=1)  # [g, nd, per, c, k, k]
        self.w = w.reshape(groups * nd * per, *w.shape[3:]).contiguous()
        self.scales = torch.ones(groups * nd * per, dtype=torch.float64)
        self.zps = torch.zeros(groups * nd * per, dtype=torch.int64)
        self.packed = torch.ops.onednn.qconv_prepack(self.w, self.scales, 1.0, 0, [1, 1], [padding, padding], [1, 1],
                                                     groups, list(x_shape))
        self.nd, self.per = nd, per

    def __call__(self, x_u8: torch.Tensor) -> torch.Tensor:
        """``x_u8``: uint8 ``[N, C, H, W]`` channels-last; returns fp32 ``[N, H, W, out]`` (channels-last view)."""
        p = self.padding
        y = torch.ops.onednn.qconv2d_pointwise(x_u8, 1.0, 0, self.packed, self.scales, self.zps, None, [1, 1], [p, p], [1, 1],
                                               self.groups, 1.0, 0, torch.float32, "none", [], "")
        y = y.permute(0, 2, 3, 1)  # [N, H, W, g * nd * per]
        if self.nd == 1:
            return y
        n, h, w_ = y.shape[:3]
        y = y.reshape(n, h, w_, self.groups, self.nd, self.per)
        return (y[..., 0, :] * 128.0 + y[..., 1, :]).reshape(n, h, w_, self.out)  # exact: integers < 2**24


def conv_bits(x: torch.Tensor, w_fp32: torch.Tensor, w_int: torch.Tensor, scale: float, groups: int, padding: int,
              cache: dict) -> torch.Tensor:
    """Exact ``conv2d(x, w_fp32)`` of 0/1 inputs ``x`` ([N, C, H, W], channels-last) as
    ``[N, H, W, out]`` (channels-last), where ``w_fp32 = w_int * scale`` (``scale`` a power of two):
    int8 where oneDNN's int8 kernels exist and ``IMCNOISE_MAC`` is not ``fp32``, else fp32.
    ``cache`` holds the packed int8 kernel."""
    if "int8" not in cache:
        cache["int8"] = None
        if int8_available() and x.device.type == "cpu" and mode() != "fp32":
            try:
                cache["int8"] = Int8Conv(w_int, groups, padding, tuple(x.shape))
            except (ValueError, RuntimeError):
                cache["int8"] = None
    k8 = cache["int8"]
    if k8 is None:
        return F.conv2d(x, w_fp32, None, padding=padding, groups=groups).permute(0, 2, 3, 1)
    return k8(x.to(torch.uint8)).mul_(scale)  # scale is a power of two: exact
