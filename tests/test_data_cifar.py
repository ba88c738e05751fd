"""CIFAR-10 / CIFAR-100 loaders on small files in the official python-version layout."""

from __future__ import annotations

import dataclasses
import pickle
import pickletools

import numpy as np
import pytest
import torch

from cifar_fixture import (CIFAR10_CLASSES, CIFAR100_COARSE, CIFAR100_FINE, CIFAR100_FINE_TO_COARSE,
                           write_cifar10, write_cifar100)
from imcnoise.data import DataError, ImageDataset, cifar, load_dataset, registry


@pytest.fixture(autouse=True)
def _own_data_dirs(own_data_dirs):
    """Own cache, no data directories from the environment (conftest.own_data_dirs)."""


@pytest.fixture
def c100(tmp_path):
    return write_cifar100(tmp_path / "data", n_train=20, n_test=10, archive_dir=tmp_path / "archive")


@pytest.fixture
def c10(tmp_path):
    return write_cifar10(tmp_path / "data10", per_batch=4, n_test=10, archive_dir=tmp_path / "archive10")


def _expected_images(rows: np.ndarray) -> torch.Tensor:
    """Official layout, spelled out: row[c*1024 + 32*y + x] is channel c (R,G,B) at (y, x)."""
    n = rows.shape[0]
    out = torch.empty((n, 3, 32, 32), dtype=torch.uint8)
    for c in range(3):
        for y in range(32):
            out[:, c, y, :] = torch.from_numpy(rows[:, c * 1024 + 32 * y: c * 1024 + 32 * y + 32].copy())
    return out


def _check_cifar100(ds: ImageDataset, w, split: str) -> None:
    n = {"train": 20, "test": 10}[split]
    assert ds.name == "cifar100" and ds.split == split
    assert len(ds) == n
    assert ds.images.dtype == torch.uint8 and tuple(ds.images.shape) == (n, 3, 32, 32)
    assert ds.shape == (3, 32, 32)
    rows = w.rows[split]
    # known pixels, by the official description of a row
    assert int(ds.images[0, 0, 0, 0]) == int(rows[0, 0])  # first red value
    assert int(ds.images[0, 1, 0, 0]) == int(rows[0, 1024])  # first green value
    assert int(ds.images[0, 2, 0, 0]) == int(rows[0, 2048])  # first blue value
    assert int(ds.images[3, 2, 5, 7]) == int(rows[3, 2 * 1024 + 5 * 32 + 7])  # blue at row 5, column 7
    assert int(ds.images[n - 1, 0, 31, 31]) == int(rows[n - 1, 1023])  # last red value
    assert torch.equal(ds.images, _expected_images(rows))
    assert ds.labels.dtype == torch.int64
    assert ds.labels.tolist() == w.labels[split].tolist()
    assert ds.classes == CIFAR100_FINE and ds.num_classes == 100
    assert ds.classes[:3] == ["apple", "aquarium_fish", "baby"] and ds.classes[-1] == "worm"
    assert ds.extra["coarse_classes"] == CIFAR100_COARSE and len(CIFAR100_COARSE) == 20
    assert ds.extra["coarse_labels"].dtype == torch.int64
    assert ds.extra["coarse_labels"].tolist() == w.coarse[split].tolist()
    # coarse label = superclass of the fine label, for every image
    assert ds.extra["coarse_labels"].tolist() == [CIFAR100_FINE_TO_COARSE[ds.classes[f]] for f in ds.labels.tolist()]


@pytest.mark.parametrize("split", ["train", "test"])
def test_cifar100_from_directory(c100, split):
    ds = cifar.load(cifar.CIFAR100, split, c100.root, download_missing=False)
    _check_cifar100(ds, c100, split)
    assert ds.source == f"{c100.folder} (--data-dir)"
    assert ds.checksum == "not checked (extracted folder)"


def test_cifar100_directory_itself_as_data_dir(c100):
    ds = cifar.load(cifar.CIFAR100, "test", c100.folder, download_missing=False)
    _check_cifar100(ds, c100, "test")


def test_cifar100_through_registry_and_subset(c100):
    ds = load_dataset("cifar100", "train", c100.root, download=False)
    _check_cifar100(ds, c100, "train")
    assert load_dataset("cifar100", "train", c100.root, download=False) is ds  # memoised
    sub = ds.subset(5)
    assert len(sub) == 5 and sub.extra["coarse_labels"].tolist() == c100.coarse["train"][:5].tolist()
    assert sub.extra["coarse_classes"] == CIFAR100_COARSE
    assert registry.locate("cifar100", c100.root) == f"found: {c100.folder} (--data-dir)"


def test_cifar100_from_archive(c100, tmp_path):
    fmt = dataclasses.replace(cifar.CIFAR100, archive_md5=c100.archive_md5)
    for split in ("train", "test"):
        ds = cifar.load(fmt, split, c100.archive.parent, download_missing=False)
        _check_cifar100(ds, c100, split)
        assert ds.checksum == "archive md5 ok"
        assert f"extracted from {c100.archive}" in ds.source
    extracted = list((tmp_path / "cache").glob("cifar100-*-extracted/cifar-100-python/train"))
    assert len(extracted) == 1  # extracted once into the cache, no partial folders left over
    assert not list((tmp_path / "cache").glob("*.part*"))


def test_cifar100_archive_wrong_md5(c100):
    # the real format expects the official archive's md5; the fixture archive has another one
    with pytest.raises(DataError) as ei:
        cifar.load(cifar.CIFAR100, "train", c100.archive.parent, download_missing=False)
    msg = str(ei.value)
    assert str(c100.archive) in msg and "checksum mismatch" in msg
    assert cifar.CIFAR100.archive_md5 in msg and c100.archive_md5 in msg
    assert ei.value.path == c100.archive


def test_cifar100_archive_without_data_folder(tmp_path):
    import hashlib
    import tarfile

    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("x")
    arch = tmp_path / "a" / "cifar-100-python.tar.gz"
    arch.parent.mkdir()
    with tarfile.open(arch, "w:gz") as tar:
        tar.add(tmp_path / "other", arcname="other")
    fmt = dataclasses.replace(cifar.CIFAR100, archive_md5=hashlib.md5(arch.read_bytes()).hexdigest())
    with pytest.raises(DataError, match="no top-level folder cifar-100-python/") as ei:
        cifar.load(fmt, "train", arch.parent, download_missing=False)
    assert str(arch) in str(ei.value)


@pytest.mark.parametrize("split,n", [("train", 20), ("test", 10)])
def test_cifar10_from_directory(c10, split, n):
    ds = load_dataset("cifar10", split, c10.root, download=False)
    assert ds.name == "cifar10" and len(ds) == n
    assert ds.images.dtype == torch.uint8 and tuple(ds.images.shape) == (n, 3, 32, 32)
    assert torch.equal(ds.images, _expected_images(c10.rows[split]))
    assert ds.labels.tolist() == c10.labels[split].tolist()
    assert ds.classes == CIFAR10_CLASSES
    assert ds.extra == {}


def test_cifar10_train_batches_in_order(c10):
    """data_batch_1..5 are concatenated in order."""
    ds = cifar.load(cifar.CIFAR10, "train", c10.root, download_missing=False)
    for b in range(5):
        d = pickle.loads((c10.folder / f"data_batch_{b + 1}").read_bytes(), encoding="bytes")
        assert torch.equal(ds.images[4 * b: 4 * b + 4], _expected_images(d[b"data"]))
        assert ds.labels[4 * b: 4 * b + 4].tolist() == d[b"labels"]


def test_cifar10_from_archive(c10):
    fmt = dataclasses.replace(cifar.CIFAR10, archive_md5=c10.archive_md5)
    ds = cifar.load(fmt, "test", c10.archive.parent, download_missing=False)
    assert torch.equal(ds.images, _expected_images(c10.rows["test"]))
    assert ds.checksum == "archive md5 ok"
    with pytest.raises(DataError, match="checksum mismatch"):
        cifar.load(cifar.CIFAR10, "test", c10.archive.parent, download_missing=False)


def test_fixture_files_are_python2_style_pickles(c100, c10):
    """The generator writes what the 2009 files hold: protocol 2, Python-2 str, numpy.core names."""
    for path in (c100.folder / "train", c100.folder / "meta", c10.folder / "data_batch_1", c10.folder / "batches.meta"):
        raw = path.read_bytes()
        assert raw[:2] == b"\x80\x02"  # PROTO 2
        ops = [(op.name, arg) for op, arg, _ in pickletools.genops(raw)]
        names = {name for name, _ in ops}
        assert "SHORT_BINSTRING" in names
        assert not names & {"BINUNICODE", "SHORT_BINUNICODE", "BINBYTES", "SHORT_BINBYTES", "FRAME"}
        globals_ = {arg for name, arg in ops if name == "GLOBAL"}
        assert "_codecs encode" not in globals_
        assert globals_ <= {"numpy.core.multiarray _reconstruct", "numpy ndarray", "numpy dtype"}
        # the official instructions: pickle.load(fo, encoding='bytes') gives bytes keys
        obj = pickle.loads(raw, encoding="bytes")
        assert isinstance(obj, dict) and all(isinstance(k, bytes) for k in obj)
    d = pickle.loads((c100.folder / "train").read_bytes(), encoding="bytes")
    assert set(d) == {b"filenames", b"batch_label", b"fine_labels", b"coarse_labels", b"data"}
    assert d[b"data"].dtype == np.uint8 and d[b"data"].shape == (20, 3072)
    assert d[b"batch_label"] == b"training batch 1 of 1"
    assert all(isinstance(f, bytes) and f.endswith(b".png") for f in d[b"filenames"])
    m = pickle.loads((c100.folder / "meta").read_bytes(), encoding="bytes")
    assert set(m) == {b"fine_label_names", b"coarse_label_names"}
    d10 = pickle.loads((c10.folder / "test_batch").read_bytes(), encoding="bytes")
    assert set(d10) == {b"batch_label", b"labels", b"data", b"filenames"}
    m10 = pickle.loads((c10.folder / "batches.meta").read_bytes(), encoding="bytes")
    assert set(m10) == {b"num_cases_per_batch", b"label_names", b"num_vis"}
    import tarfile

    with tarfile.open(c100.archive) as tar:
        assert {n.split("/")[0] for n in tar.getnames()} == {"cifar-100-python"}
        assert {"cifar-100-python/train", "cifar-100-python/test", "cifar-100-python/meta"} <= set(tar.getnames())
    with tarfile.open(c10.archive) as tar:
        assert {n.split("/")[0] for n in tar.getnames()} == {"cifar-10-batches-py"}


def test_python3_repickled_files_load(tmp_path, c100):
    """Files re-pickled under Python 3 (str keys, protocol 4) load too."""
    d = tmp_path / "py3" / "cifar-100-python"
    d.mkdir(parents=True)
    for name in ("train", "test", "meta"):
        obj = pickle.loads((c100.folder / name).read_bytes(), encoding="bytes")
        (d / name).write_bytes(pickle.dumps({k.decode(): v for k, v in obj.items()}, protocol=4))
    ds = cifar.load(cifar.CIFAR100, "test", d.parent, download_missing=False)
    _check_cifar100(ds, c100, "test")


def test_not_found_without_download(tmp_path):
    with pytest.raises(DataError, match="cifar100 not found: no cifar-100-python/ or cifar-100-python.tar.gz"):
        load_dataset("cifar100", "train", tmp_path, download=False)
    assert registry.locate("cifar10", tmp_path).startswith("not found (")


def test_unknown_split(c100):
    with pytest.raises(DataError, match="no split 'validation'"):
        cifar.load(cifar.CIFAR100, "validation", c100.root, download_missing=False)
