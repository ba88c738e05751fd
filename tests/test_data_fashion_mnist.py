"""Fashion-MNIST from the Debian files, and the ``imcnoise data`` commands."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from imcnoise.cli.main import app
from imcnoise.data import DATASETS, fashion_mnist, load_dataset, registry
from imcnoise.data.transforms import NORMALIZATION
from conftest import debian_fmnist_dir
from helpers import assert_clean_error

DEBIAN_FMNIST = fashion_mnist.SYSTEM_DIRS[0]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


@pytest.fixture(autouse=True)
def _no_env_data_dir(monkeypatch):
    monkeypatch.delenv("IMCNOISE_DATA_DIR", raising=False)


@pytest.fixture(scope="module")
def debian_fmnist() -> Path:
    return debian_fmnist_dir()


@pytest.mark.slow
@pytest.mark.parametrize("split,n,per_class", [("train", 60000, 6000), ("test", 10000, 1000)])
def test_debian_fashion_mnist(debian_fmnist, split, n, per_class):
    registry._load_cached.cache_clear()
    ds = load_dataset("fashion-mnist", split)
    assert ds.name == "fashion-mnist" and ds.split == split
    assert len(ds) == n
    assert ds.images.dtype == torch.uint8 and tuple(ds.images.shape) == (n, 1, 28, 28)
    assert ds.shape == (1, 28, 28)
    assert ds.labels.dtype == torch.int64 and tuple(ds.labels.shape) == (n,)
    assert ds.classes == CLASSES and ds.num_classes == 10
    assert ds.class_counts() == [per_class] * 10
    assert ds.checksum == "sha256 ok"
    assert ds.source == f"{debian_fmnist} (system)"
    # the pixels are the IDX payload, image-major and row-major
    raw = gzip.decompress((debian_fmnist / fashion_mnist.SPLITS[split][0]).read_bytes())
    assert bytes(ds.images[0, 0].flatten().tolist()) == raw[16:16 + 784]
    assert bytes(ds.images[-1, 0].flatten().tolist()) == raw[-784:]
    lbl = gzip.decompress((debian_fmnist / fashion_mnist.SPLITS[split][1]).read_bytes())
    assert ds.labels[:20].tolist() == list(lbl[8:28])
    if split == "train":
        # the normalisation constants in transforms are this data set's statistics
        x = ds.images.double() / 255
        (mean,), (std,) = NORMALIZATION["fashion-mnist"]
        assert abs(x.mean().item() - mean) < 5e-4
        assert abs(x.std().item() - std) < 5e-4
        assert ds.labels[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]  # the well-known first labels


def test_debian_files_checked_by_size_and_sha256(debian_fmnist):
    """The Debian .gz differ from upstream (recompressed), the decompressed content does not."""
    origin, d = fashion_mnist.find_dir(None, download_missing=False)
    assert (origin, d) == ("system", debian_fmnist)
    for f, (_, sha, size) in fashion_mnist.FILES.items():
        if "labels" in f:  # the labels are small; the images are covered by the slow test
            data = gzip.decompress((d / f).read_bytes())
            assert len(data) == size
            import hashlib
            assert hashlib.sha256(data).hexdigest() == sha


def test_data_dir_and_subfolder(debian_fmnist, tmp_path):
    """--data-dir may hold the four files or a fashion-mnist/ folder with them."""
    for sub in ("", "fashion-mnist"):
        d = tmp_path / sub / "x" if not sub else tmp_path / "y" / sub
        d.mkdir(parents=True)
        for f in fashion_mnist.FILES:
            (d / f).symlink_to(debian_fmnist / f)
        top = d if not sub else d.parent
        registry._load_cached.cache_clear()
        ds = load_dataset("fashion-mnist", "test", top)
        assert ds.source == f"{d} (--data-dir)" and ds.checksum == "sha256 ok" and len(ds) == 10000
    registry._load_cached.cache_clear()


def test_memo_follows_environment(debian_fmnist, tmp_path, monkeypatch):
    """load_dataset is memoised, but a changed $IMCNOISE_DATA_DIR is not hidden by the memo."""
    registry._load_cached.cache_clear()
    a = load_dataset("fashion-mnist", "test")
    assert load_dataset("fashion-mnist", "test") is a
    d = tmp_path / "env"
    d.mkdir()
    for f in fashion_mnist.FILES:
        (d / f).symlink_to(debian_fmnist / f)
    monkeypatch.setenv("IMCNOISE_DATA_DIR", str(d))
    b = load_dataset("fashion-mnist", "test")
    assert b is not a and b.source == f"{d} ($IMCNOISE_DATA_DIR)"
    assert torch.equal(a.images, b.images)
    registry._load_cached.cache_clear()


def test_subset(debian_fmnist):
    ds = load_dataset("fashion-mnist", "test")
    sub = ds.subset(100)
    assert len(sub) == 100 and torch.equal(sub.images, ds.images[:100]) and sub.checksum == ds.checksum
    assert ds.subset(None) is ds and ds.subset(10**6) is ds
    with pytest.raises(ValueError):
        ds.subset(0)


@pytest.mark.slow
def test_cli_data_info_fashion_mnist(debian_fmnist):
    res = CliRunner().invoke(app, ["data", "info", "fashion-mnist"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0] == (f"fashion-mnist/train: 60000 images 28x28x1, 10 classes, from {debian_fmnist} (system), "
                        "checksum: sha256 ok")
    assert lines[1] == "  per class: " + ", ".join(f"{c} 6000" for c in CLASSES)
    assert lines[2] == (f"fashion-mnist/test: 10000 images 28x28x1, 10 classes, from {debian_fmnist} (system), "
                        "checksum: sha256 ok")
    assert lines[3] == "  per class: " + ", ".join(f"{c} 1000" for c in CLASSES)
    assert len(lines) == 4


def test_cli_data_list(debian_fmnist, tmp_path, monkeypatch):
    monkeypatch.setenv("IMCNOISE_CACHE_DIR", str(tmp_path / "cache"))
    res = CliRunner().invoke(app, ["data", "list"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert len(lines) == 2 * len(DATASETS)
    for i, (name, info) in enumerate(DATASETS.items()):
        assert lines[2 * i] == f"{name:14s} {info.description}"
    assert lines[1].strip() == f"found: {debian_fmnist} (system)"
    assert lines[3].strip().startswith("not found (cifar10 not found: no cifar-10-batches-py/ or cifar-10-python.tar.gz in ")
    assert lines[5].strip().startswith("not found (cifar100 not found: no cifar-100-python/")
    assert lines[7].strip().startswith("not found (cifar10-jpeg not found: looked for cifar10-jpeg.zip or cifar10-jpeg/")


def test_cli_data_list_finds_image_folder(cifar10_jpeg_dir, monkeypatch):
    monkeypatch.setenv("IMCNOISE_DATA_DIR", str(cifar10_jpeg_dir))
    res = CliRunner().invoke(app, ["data", "list"])
    assert res.exit_code == 0, res.output
    assert f"found: {cifar10_jpeg_dir / 'cifar10-jpeg' / 'cifar10-jpeg.zip'} ($IMCNOISE_DATA_DIR)" in res.output


def test_cli_data_info_empty_data_dir_for_cifar10_jpeg(tmp_path, monkeypatch):
    monkeypatch.setenv("IMCNOISE_CACHE_DIR", str(tmp_path / "cache"))
    empty = tmp_path / "empty"
    empty.mkdir()
    res = CliRunner().invoke(app, ["data", "info", "cifar10-jpeg", "--data-dir", str(empty)])
    assert res.exit_code == 2
    assert "error:" in res.output
    assert "cifar10-jpeg not found" in res.output and str(empty) in res.output
    assert_clean_error(res)


def test_cli_data_info_unknown_name():
    res = CliRunner().invoke(app, ["data", "info", "mnist"])
    assert res.exit_code == 2 and "error: unknown data set 'mnist'" in res.output


def test_idx_reader_matches_numpy_on_real_labels(debian_fmnist):
    from imcnoise.data.idx import parse_idx, read_gz_bytes

    p = debian_fmnist / "t10k-labels-idx1-ubyte.gz"
    arr = parse_idx(read_gz_bytes(p), p, 1)
    raw = np.frombuffer(gzip.decompress(p.read_bytes()), dtype=np.uint8)
    assert arr.shape == (10000,) and np.array_equal(arr, raw[8:])
    assert int.from_bytes(raw[:4].tobytes(), "big") == 0x801 and int.from_bytes(raw[4:8].tobytes(), "big") == 10000
