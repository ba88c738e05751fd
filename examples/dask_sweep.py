#!/usr/bin/env python3
"""Run a sweep on a Dask cluster from Python: a local one, or the scheduler you give.

    .venv/bin/python examples/dask_sweep.py scenarios/smoke.yaml --workers 2
    .venv/bin/python examples/dask_sweep.py scenarios/stt_mram.yaml --scheduler tcp://10.0.0.5:8786

The same as `imcnoise sweep SCENARIO --workers N` / `--scheduler ADDRESS`, spelled out: load and
validate the scenario, prepare it (fold the checkpoints), connect, run the points' blocks on the
workers while this process stores the rows, then write the tables. On SLURM, start the workers
with dask-jobqueue and pass its scheduler address (README, "Running on a cluster").
"""

from __future__ import annotations

import argparse

from imcnoise.sweep import load_scenario, prepare, write_report
from imcnoise.sweep.distributed import Cluster, run_sweep_distributed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenario")
    ap.add_argument("--workers", type=int, default=None, help="local worker processes (bound to 127.0.0.1)")
    ap.add_argument("--scheduler", default=None, help="address of a running Dask scheduler")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    sc, base = load_scenario(args.scenario)
    prep = prepare(sc, base, args.out)
    workers = args.workers if args.workers or args.scheduler else 2
    with Cluster(workers=None if args.scheduler else workers, address=args.scheduler, threads=args.threads) as client:
        print(f"{sc.name}: {len(prep.points)} points on {len(client.scheduler_info()['workers'])} workers "
              f"(dashboard: {client.dashboard_link})")
        run_sweep_distributed(prep, client).close()
    print(write_report(prep.out)["markdown"])


if __name__ == "__main__":
    main()
