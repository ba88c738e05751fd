"""Errors raised for bad or missing data files."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """A data file is missing, corrupt or not what the loader expects.

    The message always names the file and what was expected, so a user can fix the input
    without reading a traceback from deep inside numpy, gzip or pickle.
    """

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else Path(path)
        self.problem = problem
        where = f"{self.path}: " if self.path is not None else ""
        super().__init__(f"{where}{problem}")
