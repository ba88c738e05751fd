"""Reader for the IDX format of (Fashion-)MNIST (http://yann.lecun.com/exdb/mnist/)."""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from .errors import DataError

_UBYTE = 0x08


def read_gz_bytes(path: Path) -> bytes:
    """Whole decompressed content of a ``.gz`` file (or of a plain file)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(path, f"cannot read file: {exc.strerror}") from exc
    if path.suffix != ".gz":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise DataError(path, f"truncated or corrupt gzip file ({exc}); expected a complete gzip-compressed "
                        "IDX file: delete it and load again") from exc


def parse_idx(data: bytes, path: Path, expect_dims: int) -> np.ndarray:
    """Parse IDX bytes into a uint8 array with ``expect_dims`` dimensions."""
    if len(data) < 4:
        raise DataError(path, f"too short for an IDX file ({len(data)} bytes)")
    zero, dtype, ndim = data[0] << 8 | data[1], data[2], data[3]
    magic = int.from_bytes(data[:4], "big")
    if zero != 0 or dtype != _UBYTE or ndim != expect_dims:
        want = (_UBYTE << 8) | expect_dims
        raise DataError(path, f"wrong magic number 0x{magic:08x}; expected 0x{want:08x} (unsigned byte IDX with {expect_dims} dimension(s))")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(path, f"IDX header truncated ({len(data)} bytes; a {ndim}-dimensional header needs {header})")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    n = math.prod(dims)  # exact: np.prod would wrap around for absurd header values
    if len(data) - header != n:
        raise DataError(path, f"IDX payload has {len(data) - header} bytes; header dimensions {dims} need {n}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)
