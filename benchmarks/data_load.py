"""Data-loading and install benchmark; prints markdown tables.

    .venv/bin/python benchmarks/data_load.py [--install] [--repeat N] [--keep]

* Load time of each data set found here (train + test), every measurement in a fresh Python
  process so the in-process memo (``functools.lru_cache`` in ``imcnoise.data.registry``) cannot
  hide the cost. cifar10-jpeg is measured twice: a first load with a fresh, empty
  ``IMCNOISE_CACHE_DIR`` (JPEG decode + cache write), then a second load reusing that cache.
  "load s" is the time inside ``load_dataset`` for both splits; "process s" the whole child
  process (interpreter start, ``import torch``/``imcnoise``, load).
* ``--install``: wall time of ``bash scripts/setup.sh`` in a fresh ``git clone`` of the committed
  tree in a temporary directory (a new ``.venv`` there; ``/work/main/.venv`` is not touched), and
  the disk size of that venv (``du -sh``).

Data directory for cifar10-jpeg: ``$IMCNOISE_DATA_DIR`` if set, else ``../shared/data`` beside the
repository. The machine (CPU model, cores, load average) is printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import torch
torch.set_num_threads(1)
from imcnoise.data import load_dataset
t1 = time.perf_counter()
name = sys.argv[1]
splits = []
for split in ("train", "test"):
    s0 = time.perf_counter()
    ds = load_dataset(name, split)
    splits.append({"split": split, "n": len(ds), "shape": list(ds.shape), "classes": ds.num_classes,
                   "source": ds.source, "checksum": ds.checksum, "s": time.perf_counter() - s0})
t2 = time.perf_counter()
print("RESULT " + json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "splits": splits}))
"""


def machine() -> dict:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    try:
        load = os.getloadavg()
    except OSError:
        load = (float("nan"),) * 3
    try:
        mem_kb = int(next(l for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal")).split()[1])
        mem = f"{mem_kb / 2**20:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        mem = "unknown"
    return {"cpu": model, "logical_cpus": os.cpu_count(), "usable_cpus": usable, "load": load, "mem": mem,
            "python": platform.python_version(), "kernel": platform.release()}


def child_env(data_dir: Path | None, cache: Path) -> dict:
    env = dict(os.environ)
    env["IMCNOISE_CACHE_DIR"] = str(cache)
    if data_dir is not None:
        env["IMCNOISE_DATA_DIR"] = str(data_dir)
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def run_child(name: str, env: dict) -> dict:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", CHILD, name], cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"loading {name} failed (exit {r.returncode}):\n{r.stderr[-3000:]}")
    line = next(l for l in r.stdout.splitlines() if l.startswith("RESULT "))
    res = json.loads(line[len("RESULT "):])
    res["process_s"] = wall
    return res


def locate(name: str, env: dict) -> str:
    code = "import sys; from imcnoise.data.registry import locate; print(locate(sys.argv[1]))"
    r = subprocess.run([sys.executable, "-c", code, name], cwd=REPO, env=env, capture_output=True, text=True)
    return r.stdout.strip() or r.stderr.strip()


def fmt_s(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.median(values):.2f} (min {min(values):.2f}, max {max(values):.2f})"


def du(path: Path) -> str:
    return subprocess.run(["du", "-sh", str(path)], capture_output=True, text=True).stdout.split()[0]


def bench_loads(data_dir: Path, repeat: int) -> list[str]:
    rows = ["| data set | measurement | images (train / test) | load s | process s | source / checksum |",
            "|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory(prefix="imcnoise-bench-") as tmp:
        tmp = Path(tmp)
        probe_env = child_env(data_dir, tmp / "probe-cache")
        for name in ("fashion-mnist", "cifar10", "cifar100", "cifar10-jpeg"):
            where = locate(name, probe_env)
            if not where.startswith("found"):
                rows.append(f"| {name} | not available here (no files in {data_dir} or the cache; no network) | | | | {where.split(' (')[0]} |")
                continue
            if name != "cifar10-jpeg":
                res = [run_child(name, child_env(data_dir, tmp / f"cache-{name}-{i}")) for i in range(repeat)]
                rows.append(_row(name, "train+test load", res))
                continue
            first, second = [], []
            for i in range(repeat):
                cache = tmp / f"cache-{name}-{i}"  # fresh and empty: the first load decodes
                env = child_env(data_dir, cache)
                first.append(run_child(name, env))
                second.append(run_child(name, env))
                size = du(cache)
            rows.append(_row(name, "first load (JPEG decode, fresh cache)", first))
            rows.append(_row(name, f"second load (decode cache, {size} on disk)", second))
    return rows


def _row(name: str, what: str, res: list[dict]) -> str:
    sp = res[-1]["splits"]
    n = " / ".join(f"{s['n']:,}" for s in sp)
    src = "; ".join(f"{s['split']}: {s['source']}" for s in sp) + f"; {sp[0]['checksum']}"
    return (f"| {name} | {what} | {n} | {fmt_s([r['load_s'] for r in res])} | {fmt_s([r['process_s'] for r in res])} "
            f"| {src} |")


def bench_install(keep: bool) -> list[str]:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    tmp = Path(tempfile.mkdtemp(prefix="imcnoise-install-"))
    clone = tmp / "imcnoise"
    t_clone = time.perf_counter()
    try:
        subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
        t_clone = time.perf_counter() - t_clone
        env = dict(os.environ)
        env.pop("VIRTUAL_ENV", None)
        # never let the repository's own venv stand in for the system python3
        env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                      if not Path(p).resolve().is_relative_to(REPO))
        py = shutil.which("python3", path=env["PATH"]) or "python3"
        t0 = time.perf_counter()
        r = subprocess.run(["bash", "scripts/setup.sh"], cwd=clone, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            raise RuntimeError(f"setup.sh failed (exit {r.returncode}):\n{(r.stdout + r.stderr)[-4000:]}")
        t_du = time.perf_counter()
        human = du(clone / ".venv")
        t_du = time.perf_counter() - t_du
        n_files = sum(len(f) for _, _, f in os.walk(clone / ".venv"))
        own = next((l for l in (r.stdout + r.stderr).splitlines() if l.startswith("setup done in")), "")
        torch_v = subprocess.run([str(clone / ".venv/bin/python"), "-c", "import torch; print(torch.__version__)"],
                                 capture_output=True, text=True).stdout.strip()
        rows = ["| install (fresh clone, `bash scripts/setup.sh`) | value |", "|---|---|",
                f"| commit | {head} (clone in {tmp}{', kept' if keep else ', removed afterwards'}) |",
                f"| base interpreter | {py} |",
                f"| git clone | {t_clone:.1f} s |",
                f"| setup.sh wall time | {wall:.1f} s ({own or 'no summary line'}) |",
                f"| venv size (du -sh .venv) | {human} in {n_files:,} files (du took {t_du:.1f} s) |",
                f"| torch in the new venv | {torch_v} |"]
    finally:
        t_rm = time.perf_counter()
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
        t_rm = time.perf_counter() - t_rm
    if not keep:
        rows.append(f"| removing the clone | {t_rm:.1f} s |")
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--install", action="store_true", help="also time scripts/setup.sh in a fresh clone")
    ap.add_argument("--repeat", type=int, default=1, help="measurements per row (median shown)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary clone of --install")
    args = ap.parse_args(argv)
    env_dir = os.environ.get("IMCNOISE_DATA_DIR")
    data_dir = Path(env_dir.split(os.pathsep)[0]) if env_dir else REPO.parent / "shared" / "data"

    t_start = time.perf_counter()
    m = machine()
    print(f"Machine: {m['cpu']}, {m['logical_cpus']} logical CPUs ({m['usable_cpus']} usable), {m['mem']} RAM, "
          f"load average at start {m['load'][0]:.2f} / {m['load'][1]:.2f} / {m['load'][2]:.2f} (1/5/15 min); "
          f"Python {m['python']}, Linux {m['kernel']}")
    print(f"Data dir for image folders: {data_dir}; child processes use torch.set_num_threads(1)\n")
    for line in bench_loads(data_dir, max(1, args.repeat)):
        print(line)
    if args.install:
        print()
        for line in bench_install(args.keep):
            print(line)
    print(f"\nbenchmark wall time {time.perf_counter() - t_start:.0f} s; load average at end "
          + " / ".join(f"{v:.2f}" for v in os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
