"""Process-level performance settings for long CPU runs (sweeps, benchmarks)."""

from __future__ import annotations

import ctypes
import sys

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
