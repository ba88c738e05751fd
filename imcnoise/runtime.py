"""Process-level performance settings for long CPU runs (sweeps, benchmarks)."""

from __future__ import annotations

import ctypes
import functools
import os
import sys
import warnings

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def tune_allocator() -> bool:
    """Keep freed tensor memory in glibc's heap instead of returning it to the OS.

    The engines allocate and free tens of MB per layer and batch; by default glibc serves those
    with fresh mmap()s whose pages fault in on every use (measured: sys time 0.9 s -> 0.3 s and
    half the page faults on 200 images of a Fashion-MNIST B-SNN chip). No effect elsewhere.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, 32 * 1024 * 1024) and libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30))
    except (OSError, AttributeError):
        return False


class compiled:
    """``fn`` compiled by ``torch.compile`` (one fused loop instead of many tensor passes), or run
    eagerly where compilation is off (``IMCNOISE_COMPILE=0``) or fails (no C++ compiler).

    Only for functions whose result is the same either way: integer arithmetic, table lookups,
    comparisons and float operations whose products are exact (inductor's CPU code is built with
    -ffp-contract=off and without unsafe math, so every remaining float operation is the same
    correctly rounded IEEE operation as eager torch's). tests/test_runtime.py checks it.
    """

    def __init__(self, fn):
        self.fn = fn
        self._compiled = None
        self._failed = os.environ.get("IMCNOISE_COMPILE", "1") == "0"
        functools.update_wrapper(self, fn)

    def __call__(self, *args, **kwargs):
        if self._failed:
            return self.fn(*args, **kwargs)
        try:
            if self._compiled is None:
                import torch
                import torch._dynamo.config as dynamo

                # one graph per layer shape class, time-step count and dtype: more than dynamo's default 8
                dynamo.recompile_limit = max(dynamo.recompile_limit, 64)
                self._compiled = torch.compile(self.fn, dynamic=True)
            return self._compiled(*args, **kwargs)
        except Exception as exc:  # pragma: no cover - depends on the installation
            self._failed = True
            warnings.warn(f"torch.compile of {self.fn.__name__} failed ({type(exc).__name__}: {exc}); running it eagerly "
                          "(same results, slower)")
            return self.fn(*args, **kwargs)
