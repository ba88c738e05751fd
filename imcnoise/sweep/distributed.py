"""Sweeps on a Dask distributed cluster: a local one (``--workers N``) or an existing one (``--scheduler``).

The unit of work is one sweep point x a block of chip seeds, every model (:func:`run_block`). A
worker prepares a scenario once -- resolves and folds the checkpoints (checked against their
SHA-256), loads the data set -- and keeps it for every later block (keyed by the scenario's hash).
The client process is the only writer of ``results.sqlite``: it stores rows as blocks finish, so a
killed client loses at most the blocks in flight and a rerun resumes. Points go through the same
:class:`~.runner.PointState` as in process -- adaptive points run blocks ahead and keep exactly the
trials the sequential stop rule keeps -- so the tables are identical to an in-process run. A
worker that dies mid-block has its block rerun elsewhere by the scheduler (the result does not
depend on where or how often a block runs).

Security: a cluster this module starts listens on 127.0.0.1 only. For several machines start
``dask scheduler`` / ``dask worker`` yourself, with TLS (README, "Running on a cluster").
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..models.checkpoint import file_sha256, package_versions
from .points import point_scenario
from .runner import Prepared, finish_point, point_data, prepare, start_sweep, trial_rows
from .scenario import Scenario, ScenarioError
from .store import ResultsStore

_WORKER: dict[str, tuple] = {}  # scenario hash -> (Prepared, base data, versions), per worker process


def _spec(prep: Prepared) -> dict:
    """What a worker needs to prepare the scenario itself (plain JSON)."""
    return {"scenario": prep.scenario.model_dump(mode="json"), "base_dir": str(prep.base_dir),
            "checkpoints": {m: str(p) for m, p in prep.checkpoints.items()}, "hashes": prep.hashes, "digest": prep.digest,
            "device": str(prep.device), "threads": prep.scenario.run.threads_per_worker}


def _worker_state(spec: dict):
    key = spec["digest"]
    if key not in _WORKER:
        import torch

        from ..runtime import tune_allocator

        tune_allocator()
        torch.set_num_threads(spec["threads"])
        for m, path in spec["checkpoints"].items():
            if not Path(path).is_file() or file_sha256(path) != spec["hashes"][m]:
                raise ScenarioError(f"worker: checkpoint {path} is missing here or differs from the client's "
                                    f"(sha256 {spec['hashes'][m][:12]}...); give every worker the same files")
        doc = dict(spec["scenario"])
        doc["models"] = {**doc["models"], **spec["checkpoints"]}  # the client's resolved paths
        sc = Scenario.model_validate(doc)
        prep = prepare(sc, Path(spec["base_dir"]))
        if prep.digest != key:
            raise ScenarioError("worker: the scenario prepares differently here than on the client")
        from .runner import load_data

        _WORKER[key] = (prep, load_data(sc, sc.dataset.limit), json.dumps(package_versions(), sort_keys=True))
    return _WORKER[key]


def run_block(spec: dict, point_index: int, trials: list[int]) -> list[dict]:
    """On a worker: chip instances ``trials`` of point ``point_index``, every model; the rows to store."""
    prep, base_data, versions = _worker_state(spec)
    point = prep.points[point_index]
    psc = point_scenario(prep.scenario, point)
    return trial_rows(prep, point, psc, trials, point_data(prep, psc, base_data), versions)


def worker_versions() -> dict:
    """On a worker: the versions of what a block runs with."""
    return package_versions()


class Cluster:
    """A Dask client on a local cluster of ``workers`` processes (bound to 127.0.0.1) or on the
    scheduler at ``address``; checks that every worker runs the client's versions."""

    def __init__(self, workers: int | None = None, address: str | None = None, threads: int = 1, timeout: float = 10.0):
        if (workers is None) == (address is None):
            raise ValueError("give either a number of local workers or a scheduler address")
        self.workers, self.address, self.threads, self.timeout = workers, address, threads, timeout
        self.cluster = self.client = None

    def __enter__(self):
        import dask
        from distributed import Client, LocalCluster

        # one torch thread per worker process unless told otherwise; no memory-based pausing of
        # the workers (a sweep's memory is bounded by its blocks)
        dask.config.set({"distributed.worker.memory.pause": False, "distributed.worker.memory.terminate": False})
        try:
            if self.address is None:
                self.cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                            host="127.0.0.1", dashboard_address=None,
                                            env={"OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads)})
                self.client = Client(self.cluster)
            else:
                self.client = Client(self.address, timeout=self.timeout)
        except ValueError as exc:  # distributed's address parser: no port, unknown protocol
            self.close()
            raise ScenarioError(f"run.scheduler: {self.address!r} is not a Dask scheduler address ({exc}); expected "
                                "e.g. tcp://HOST:8786") from None
        except (OSError, TimeoutError) as exc:
            self.close()
            raise ScenarioError(f"run.scheduler: cannot reach the Dask scheduler at {self.address!r} within "
                                f"{self.timeout:g} s ({type(exc).__name__}: {exc}); start one with `dask scheduler` "
                                "and workers with `dask worker ADDRESS`") from None
        try:
            self.check_workers()
        except Exception:
            self.close()
            raise
        return self.client

    def check_workers(self) -> None:
        if self.address is not None:
            try:
                self.client.wait_for_workers(1, timeout=self.timeout)
            except (TimeoutError, OSError):
                raise ScenarioError(f"run.scheduler: no worker joined the scheduler at {self.address} within "
                                    f"{self.timeout:g} s") from None
        mine = package_versions()
        try:
            theirs = self.client.run(worker_versions)
        except Exception as exc:  # e.g. imcnoise not importable on a worker
            raise ScenarioError(f"workers cannot run imcnoise ({type(exc).__name__}: {exc}); install the same "
                                f"imcnoise {mine.get('imcnoise')} with torch {mine.get('torch')} on every worker") from None
        bad = {w: {k: v for k, v in vs.items() if k in ("imcnoise", "torch", "aihwkit") and v != mine.get(k)}
               for w, vs in theirs.items()}
        bad = {w: d for w, d in bad.items() if d}
        if bad:
            lines = "; ".join(f"{w}: {', '.join(f'{k} {v} (client {mine.get(k)})' for k, v in d.items())}" for w, d in bad.items())
            raise ScenarioError(f"workers run other versions than the client: {lines}")

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self) -> None:
        for x in (self.client, self.cluster):
            try:
                if x is not None:
                    x.close()
            except Exception:  # closing a half-started cluster
                pass


def run_sweep_distributed(prep: Prepared, client, *, progress: bool = True, log=print, ahead: int = 2) -> ResultsStore:
    """Run every point's missing trials as blocks on the cluster of ``client``; store rows as they come."""
    from distributed import as_completed

    sc = prep.scenario
    store, _, states, bar = start_sweep(prep, progress)
    spec = _spec(prep)
    size = sc.run.chips_per_pass or 4
    t_start = time.time()
    futures = as_completed()
    owner = {}

    def submit(st):
        block = st.next_block(size)
        if block:
            fut = client.submit(run_block, spec, st.point.index, block, pure=False)
            owner[fut.key] = st
            futures.add(fut)

    try:
        for st in states:  # every block of fixed points; adaptive points start at min_trials plus `ahead` blocks
            n = st.rule.planned if not st.rule.adaptive else sc.adaptive.min_trials + ahead * size
            for _ in range(-(-n // size)):
                submit(st)
            if st.done:
                finish_point(store, st, bar)
        for fut in futures:
            st = owner.pop(fut.key)
            rows = st.finish(fut.result())
            store.add_trials(rows)
            bar.update(len(rows) // len(prep.models))
            if st.done and st.in_flight == 0:
                finish_point(store, st, bar)
            elif not st.done:
                submit(st)
    except BaseException:
        store.close()  # what is stored stays; the directory's lock is released
        raise
    finally:
        bar.close()
    log(f"{sc.name}: {len(prep.points)} points done in {time.time() - t_start:.1f} s on {len(client.scheduler_info()['workers'])} "
        f"Dask workers -> {prep.out}")
    return store
