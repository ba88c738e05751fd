"""Shared test fixtures.

Tests that need ``../shared/data`` (the cifar10-jpeg zip) fail in CI (CI=true) when it is
missing and skip elsewhere with a visible reason.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# IMCNOISE_TEST_THREADS: torch threads of the test process (default: up to 2; 1 when another job shares the cores)
torch.set_num_threads(int(os.environ.get("IMCNOISE_TEST_THREADS", max(1, min(2, os.cpu_count() or 1)))))


def shared_data_dir() -> Path:
    """``$IMCNOISE_DATA_DIR`` if set, else ``../shared/data`` beside the repository."""
    env = os.environ.get("IMCNOISE_DATA_DIR")
    return Path(env.split(os.pathsep)[0]) if env else SHARED_DATA


@pytest.fixture(scope="session")
def cifar10_jpeg_dir() -> Path:
    d = shared_data_dir()
    if not any((d / p).exists() for p in ("cifar10-jpeg/cifar10-jpeg.zip", "cifar10-jpeg.zip")):
        msg = f"cifar10-jpeg not found under {d} (expected ../shared/data/cifar10-jpeg/cifar10-jpeg.zip)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return d


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep the decode cache out of the user's home, shared across one test session; never download."""
    cache = tmp_path_factory.getbasetemp() / "imcnoise-cache"
    monkeypatch.setenv("IMCNOISE_CACHE_DIR", str(cache))
    monkeypatch.setenv("IMCNOISE_OFFLINE", "1")


@pytest.fixture
def own_data_dirs(tmp_path, monkeypatch):
    """This test's own decode cache; no data directories from the environment (the data-set tests)."""
    from imcnoise.data import registry

    monkeypatch.setenv("IMCNOISE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("IMCNOISE_DATA_DIR", raising=False)
    registry._load_cached.cache_clear()
    yield
    registry._load_cached.cache_clear()


def debian_fmnist_dir() -> Path:
    """The Debian package's Fashion-MNIST directory; a failure in CI (scripts/setup.sh installs it), a skip elsewhere."""
    from imcnoise.data import fashion_mnist

    d = fashion_mnist.SYSTEM_DIRS[0]
    if not all((d / f).is_file() for f in fashion_mnist.FILES):
        msg = f"Fashion-MNIST not installed in {d} (Debian package dataset-fashion-mnist)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return d
