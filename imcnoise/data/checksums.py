"""Checksums and verified downloads."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from .errors import DataError

_CHUNK = 1 << 20


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def bytes_digest(data: bytes, algorithm: str = "sha256") -> str:
    return hashlib.new(algorithm, data).hexdigest()


def download(url: str, dest: Path, *, md5: str | None = None, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` atomically and verify its md5 when given.

    The file is written to a temporary name first, so an interrupted or failed download
    never leaves a partial file where a later run would pick it up. ``IMCNOISE_OFFLINE=1``
    forbids downloads (the test suite sets it: no test reaches the network).
    """
    if os.environ.get("IMCNOISE_OFFLINE", "") not in ("", "0"):
        raise DataError(dest, f"not downloading {url}: downloads are off (IMCNOISE_OFFLINE is set)")
    import requests  # imported lazily: only needed where a network exists

    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with requests.get(url, stream=True, timeout=timeout) as r:
            r.raise_for_status()
            fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".part")
            with os.fdopen(fd, "wb") as f:
                shutil.copyfileobj(r.raw, f, _CHUNK)
    except Exception as exc:  # requests raises many types; all mean "no file"
        raise DataError(dest, f"could not download {url}: {exc}") from exc
    if md5 is not None:
        got = file_digest(tmp, "md5")
        if got != md5:
            os.unlink(tmp)
            raise DataError(dest, f"checksum mismatch for download of {url}: md5 {got}, expected {md5}")
    os.replace(tmp, dest)
    return dest
