"""Where data sets are looked for.

Search order (first hit wins): an explicit ``data_dir`` argument (CLI ``--data-dir``),
the directories in ``$IMCNOISE_DATA_DIR`` (``os.pathsep``-separated), data-set specific system
locations (e.g. the Debian package ``dataset-fashion-mnist``), then the user cache directory
(``$IMCNOISE_CACHE_DIR`` or ``~/.cache/imcnoise``), into which downloads go.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    env = os.environ.get("IMCNOISE_CACHE_DIR")
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "imcnoise"
    return base


def env_data_dirs() -> list[Path]:
    env = os.environ.get("IMCNOISE_DATA_DIR", "")
    return [Path(p) for p in env.split(os.pathsep) if p]


def candidate_dirs(data_dir: str | Path | None, system: list[Path] | tuple[Path, ...] = ()) -> list[tuple[str, Path]]:
    """Directories to search, each tagged with where it came from (for ``data info``)."""
    out: list[tuple[str, Path]] = []
    if data_dir is not None:
        out.append(("--data-dir", Path(data_dir)))
    out += [("$IMCNOISE_DATA_DIR", d) for d in env_data_dirs()]
    out += [("system", d) for d in system]
    out.append(("cache", cache_dir()))
    return out
