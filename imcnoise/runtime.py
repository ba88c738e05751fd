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


RECOMPILE_LIMIT = 64  # graphs per compiled function (torch's default, 8, is per thread)


class compiled:
    """``fn`` compiled by ``torch.compile`` (one fused loop instead of many tensor passes), or run
    eagerly where compilation is off (``IMCNOISE_COMPILE=0``), fails (no C++ compiler), or does not
    pay: calls that process fewer than ``min_numel`` elements (the function's own threshold, else
    2**20; ``IMCNOISE_COMPILE_MIN`` overrides both) run eagerly -- a compilation costs tens of seconds.

    Only for functions whose result is the same either way: integer arithmetic, table lookups,
    comparisons and plain float operations (inductor's CPU code is built with -ffp-contract=off and
    without unsafe math, so every float operation is the same correctly rounded IEEE operation as
    eager torch's; no fused multiply-add: the sense path adds its noise eagerly with addcmul between
    the compiled loops, imcnoise.imc.physics.sense.add_noise_).
    tests/test_noise_streams.py checks compiled against eager results, and that the compiled code ran.

    An exception from the compiled call is retried eagerly: if the eager call raises too, the error is
    the function's own and propagates; otherwise compilation failed, and this function runs eagerly
    from then on (with one warning). ``calls`` counts how many calls ran compiled and eagerly.
    """

    def __init__(self, fn=None, *, work=None, min_numel: int | None = None):
        self.fn = fn
        self.work = work  # elements a call processes, from its arguments (default: its largest tensor)
        self._min = min_numel  # this function's threshold (default: IMCNOISE_COMPILE_MIN)
        self._compiled = None
        self._failed = False
        self.calls = {"compiled": 0, "eager": 0}
        if fn is not None:
            functools.update_wrapper(self, fn)

    @staticmethod
    def enabled() -> bool:
        return os.environ.get("IMCNOISE_COMPILE", "1") != "0"

    @staticmethod
    def min_numel() -> int:
        try:
            return int(os.environ.get("IMCNOISE_COMPILE_MIN", str(1 << 20)))
        except ValueError:
            return 1 << 20

    def _eager(self, *args, **kwargs):
        self.calls["eager"] += 1
        return self.fn(*args, **kwargs)

    def __call__(self, *args, **kwargs):
        import torch

        if self.fn is None:  # used as @compiled(work=...): wrap the function
            self.fn = args[0]
            functools.update_wrapper(self, self.fn)
            return self
        if self._failed or not self.enabled():
            return self._eager(*args, **kwargs)
        big = self.work(*args, **kwargs) if self.work is not None else \
            max((a.numel() for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)), default=0)
        explicit = "IMCNOISE_COMPILE_MIN" in os.environ  # set by the user: applies to every function
        if big < (self._min if self._min is not None and not explicit else self.min_numel()):
            return self._eager(*args, **kwargs)
        try:
            import torch._dynamo.config as dynamo

            # one graph per layer shape class, time-step count and dtype: more than dynamo's default 8.
            # Set on every call: dynamo's configuration is per thread (a Dask worker runs its tasks in
            # threads of its own; set once in another thread, the limit stayed 8 there and every
            # function past its 8th graph ran eagerly -- measured in a --workers 2 sweep)
            if dynamo.recompile_limit < RECOMPILE_LIMIT:
                dynamo.recompile_limit = RECOMPILE_LIMIT
            if self._compiled is None:
                self._compiled = torch.compile(self.fn, dynamic=True)
            out = self._compiled(*args, **kwargs)
            self.calls["compiled"] += 1
            return out
        except Exception as exc:  # pragma: no cover - depends on the installation
            out = self._eager(*args, **kwargs)  # raises if the error is the function's own
            self._failed = True
            warnings.warn(f"torch.compile of {self.fn.__name__} failed ({type(exc).__name__}: {exc}); running it eagerly "
                          "(same results, slower)")
            return out
