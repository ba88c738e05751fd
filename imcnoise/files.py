"""Writing files so that a crash or a kill never leaves a half-written one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write(path: str | Path, write) -> Path:
    """``write(tmp)`` to a temporary file beside ``path``, then rename it over ``path`` (atomic on
    POSIX): a process killed mid-write leaves the previous file (or none), never an empty or partial
    one. The temporary file is removed when ``write`` fails. The file gets the permissions a plain
    ``open(path, "w")`` would give it (0666 less the umask), not mkstemp's owner-only 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _umask() -> int:
    """The process's umask (read by setting it and restoring it at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
