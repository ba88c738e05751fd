"""Crash-safe results store: one SQLite file per output directory.

One row per (point, model, trial), written in a transaction as each chip instance finishes
(every model of a trial together, so pairs are never half-written). SQLite in WAL mode with
synchronous=FULL: a ``kill -9`` at any moment loses at most the trials in flight. A directory
belongs to one scenario (its hash of everything that determines the numbers); opening it with
another scenario is refused.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

DB_NAME = "results.sqlite"
LOCK_NAME = ".sweep.lock"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS points (point INTEGER PRIMARY KEY, point_key TEXT NOT NULL UNIQUE, params TEXT NOT NULL,
                                   config TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reference (model TEXT PRIMARY KEY, accuracy REAL NOT NULL, correct INTEGER NOT NULL,
                                      n_images INTEGER NOT NULL, spike_rates TEXT NOT NULL, checkpoint_sha256 TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    point INTEGER NOT NULL, model TEXT NOT NULL, trial INTEGER NOT NULL, chip_seed INTEGER NOT NULL,
    accuracy REAL NOT NULL, correct INTEGER NOT NULL, n_images INTEGER NOT NULL, spike_rates TEXT NOT NULL,
    errors TEXT, energy_nj REAL, latency_us REAL, energy TEXT,
    wall_s REAL NOT NULL, engine TEXT NOT NULL, checkpoint_sha256 TEXT NOT NULL,
    scenario_hash TEXT NOT NULL, versions TEXT NOT NULL, finished_at TEXT NOT NULL,
    PRIMARY KEY (point, model, trial));
CREATE TABLE IF NOT EXISTS stops (point INTEGER PRIMARY KEY, trials INTEGER NOT NULL, reason TEXT NOT NULL);
"""


class StoreMismatch(ValueError):
    pass


class StoreBusy(StoreMismatch):
    """Another sweep is writing to the same results directory."""


class StoreUnusable(StoreMismatch):
    """The results store cannot be opened: not a database, damaged, or its directory not writable."""


def _connect(path: Path, read_only: bool) -> sqlite3.Connection:
    """The store's database. Read-only (reports, notebooks): opened with ``mode=ro``, nothing is
    written, so a read-only results folder can be read. Otherwise WAL journal, full sync, schema."""
    try:
        if read_only:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60, isolation_level=None,
                                 check_same_thread=False)
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()  # fails here on a file that is not a store
            return db
        db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(SCHEMA)
        return db
    except sqlite3.DatabaseError as exc:
        raise StoreUnusable(f"{path}: cannot use this results store ({exc}); move it away to start a new sweep, "
                            "or restore it from a copy") from None


def _lock(directory: Path):
    """An exclusive lock on ``directory/.sweep.lock`` held while this process writes results there
    (released when the store closes or the process dies); a second writer is refused at once."""
    import fcntl

    f = open(directory / LOCK_NAME, "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.seek(0)
        holder = f.read().strip() or "another process"
        f.close()
        raise StoreBusy(f"{directory}: another sweep ({holder}) is writing results here; wait for it to finish, "
                        "or use another --out directory") from None
    f.seek(0)
    f.truncate()
    f.write(f"pid {os.getpid()}")
    f.flush()
    return f


class ResultsStore:
    def __init__(self, directory: str | Path, scenario_hash: str | None = None, scenario_doc: dict | None = None,
                 create: bool = True):
        self.dir = Path(directory)
        self.path = self.dir / DB_NAME
        if not create and not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no sweep results here")
        if create:
            try:
                self.dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreUnusable(f"{self.dir}: cannot create the results directory ({exc.strerror or exc})") from None
        self.db = _connect(self.path, read_only=not create)
        self._lock = None
        try:
            self._check(scenario_hash, scenario_doc)
            self._lock = _lock(self.dir) if create else None
        except BaseException:
            self.db.close()
            raise

    def _check(self, scenario_hash: str | None, scenario_doc: dict | None) -> None:
        """Record the scenario of a new store; refuse one that holds another scenario's results."""
        if scenario_hash is not None:
            have = self.meta("scenario_hash")
            if have is None:
                with self.tx():
                    self._set_meta("scenario_hash", scenario_hash)
                    self._set_meta("scenario", json.dumps(scenario_doc or {}, sort_keys=True))
                    self._set_meta("created_at", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
            elif have != scenario_hash:
                raise StoreMismatch(
                    f"{self.path} holds results of a different scenario (hash {have[:12]}..., this one {scenario_hash[:12]}...): "
                    "data set, chip parameters, sweep axes, seeds or checkpoints changed. Results are never mixed: "
                    "use another --out directory, or delete this one to start over.")

    def tx(self):
        return _Tx(self.db)

    def meta(self, key: str):
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def _set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def add_points(self, rows: list[tuple[int, str, dict, dict]]) -> None:
        with self.tx():
            self.db.executemany("INSERT OR IGNORE INTO points(point, point_key, params, config) VALUES (?, ?, ?, ?)",
                                [(i, k, json.dumps(p), json.dumps(c)) for i, k, p, c in rows])

    def set_reference(self, model: str, res, sha: str) -> None:
        with self.tx():
            self.db.execute("INSERT OR REPLACE INTO reference VALUES (?, ?, ?, ?, ?, ?)",
                            (model, res.accuracy, res.correct, res.n, json.dumps(res.spike_rates), sha))

    def reference(self) -> dict[str, float]:
        return {m: a for m, a in self.db.execute("SELECT model, accuracy FROM reference")}


    def point_accuracies(self, point: int) -> dict[int, dict[str, float]]:
        """Stored accuracies of one point: trial -> model -> accuracy."""
        out: dict[int, dict[str, float]] = {}
        for trial, model, acc in self.db.execute("SELECT trial, model, accuracy FROM trials WHERE point = ?", (point,)):
            out.setdefault(trial, {})[model] = acc
        return out

    def add_trials(self, rows: list[dict]) -> None:
        """Rows of one or more complete trials, in ONE transaction."""
        cols = ["point", "model", "trial", "chip_seed", "accuracy", "correct", "n_images", "spike_rates", "errors",
                "energy_nj", "latency_us", "energy", "wall_s", "engine", "checkpoint_sha256", "scenario_hash", "versions",
                "finished_at"]
        with self.tx():
            self.db.executemany(f"INSERT INTO trials({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                                [tuple(r[c] for c in cols) for r in rows])

    def set_stop(self, point: int, trials: int, reason: str) -> None:
        with self.tx():
            self.db.execute("INSERT OR REPLACE INTO stops VALUES (?, ?, ?)", (point, trials, reason))

    def close(self) -> None:
        self.db.close()
        if self._lock is not None:
            self._lock.close()  # releases the lock
            self._lock = None


class _Tx:
    def __init__(self, db):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, tb):
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
        return False
