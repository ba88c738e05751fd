"""Image-folder data sets: the shared cifar10-jpeg zip, and small PNG folders / zips."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from imcnoise.data import DataError, image_folder, load_dataset, registry

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    monkeypatch.delenv("IMCNOISE_DATA_DIR", raising=False)
    registry._load_cached.cache_clear()
    yield
    registry._load_cached.cache_clear()


# --------------------------------------------------------------------------- the shared zip

@pytest.mark.slow
def test_cifar10_jpeg_decode_then_cache(cifar10_jpeg_dir, tmp_path, monkeypatch):
    """50,000 / 10,000 images, 3x32x32, 5,000 / 1,000 per class, standard class order; the
    second load comes from the decode cache and gives the same tensors."""
    zip_path = cifar10_jpeg_dir / "cifar10-jpeg" / "cifar10-jpeg.zip"
    if not zip_path.is_file():
        zip_path = cifar10_jpeg_dir / "cifar10-jpeg.zip"
    monkeypatch.setenv("IMCNOISE_DATA_DIR", str(cifar10_jpeg_dir))
    monkeypatch.setenv("IMCNOISE_CACHE_DIR", str(tmp_path / "cache"))  # a first load must decode
    first = {}
    for split, n, per_class in (("train", 50000, 5000), ("test", 10000, 1000)):
        ds = load_dataset("cifar10-jpeg", split)
        first[split] = ds
        assert ds.name == "cifar10-jpeg" and ds.split == split
        assert len(ds) == n
        assert ds.images.dtype == torch.uint8 and tuple(ds.images.shape) == (n, 3, 32, 32)
        assert ds.shape == (3, 32, 32)
        assert ds.labels.dtype == torch.int64
        assert ds.classes == CIFAR10_CLASSES and ds.num_classes == 10
        assert ds.class_counts() == [per_class] * 10
        assert ds.checksum == "sha256 ok (SHA256SUMS)"
        assert ds.source.startswith(str(zip_path))
        if split == "train":  # folder order: the first 5000 images are airplanes, and so on
            assert ds.labels.tolist() == [c for c in range(10) for _ in range(per_class)]
        else:  # interleaved: any first N test images are class-balanced
            assert ds.labels.tolist() == [c for _ in range(per_class) for c in range(10)]
            assert torch.bincount(ds.labels[:1000], minlength=10).tolist() == [100] * 10
    # train decodes both splits; test (a separate memo entry) is then read from the decode cache
    assert first["train"].source == f"{zip_path} (decoded)"
    assert first["test"].source == f"{zip_path} (cached decode)"
    assert len(list((tmp_path / "cache").glob("imagefolder-cifar10-jpeg-*.npz"))) == 1
    # pixel-exact against PIL on a few entries (HWC -> CHW)
    with zipfile.ZipFile(zip_path) as zf:
        for split, idx, name in (("train", 0, "train/airplane/0000.jpg"), ("train", 49999, "train/truck/4999.jpg"),
                                 ("test", 17 * 10 + 3, "test/cat/0017.jpg")):
            with Image.open(io.BytesIO(zf.read(name))) as im:
                assert im.size == (32, 32)
                ref = torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1)
            assert torch.equal(first[split].images[idx], ref), name
    # a second load in a fresh process state comes from the decode cache
    registry._load_cached.cache_clear()
    for split in ("train", "test"):
        again = load_dataset("cifar10-jpeg", split)
        assert again is not first[split]
        assert again.source.endswith("(cached decode)")
        assert again.checksum == "sha256 ok (SHA256SUMS)"
        assert torch.equal(again.images, first[split].images) and torch.equal(again.labels, first[split].labels)
        assert again.classes == CIFAR10_CLASSES


def test_cifar10_jpeg_found_by_registry(cifar10_jpeg_dir, monkeypatch):
    monkeypatch.setenv("IMCNOISE_DATA_DIR", str(cifar10_jpeg_dir))
    where = registry.locate("cifar10-jpeg")
    assert where.startswith("found: ") and where.endswith("cifar10-jpeg.zip ($IMCNOISE_DATA_DIR)")
    # --data-dir works the same way
    monkeypatch.delenv("IMCNOISE_DATA_DIR")
    assert registry.locate("cifar10-jpeg", cifar10_jpeg_dir).endswith("cifar10-jpeg.zip (--data-dir)")


# --------------------------------------------------------------------------- small synthetic sets

def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _tree(root: Path, classes=("zebra", "ant", "cat"), n_train=3, n_test=2, size=(6, 5), gray=False, seed=0):
    """PNG tree; returns {split: (images [N,C,H,W] in loader order, labels)}: train in folder order
    (class by class), test interleaved (image i of every class, then image i+1)."""
    rng = np.random.default_rng(seed)
    expect = {}
    for split, n in (("train", n_train), ("test", n_test)):
        items = []  # (rank within class, class, image)
        for ci, cls in enumerate(sorted(classes)):
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                arr = rng.integers(0, 256, size if gray else (*size, 3), dtype=np.uint8)
                (root / split / cls / f"img{i:03d}.png").write_bytes(_png(arr))
                items.append((i, ci, arr[None] if gray else arr.transpose(2, 0, 1)))
        if split == "test":
            items.sort(key=lambda t: (t[0], t[1]))
        expect[split] = (torch.from_numpy(np.stack([t[2] for t in items])), [t[1] for t in items])
    return expect


def _zip(src: Path, dest: Path, prefix: str = "") -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(dest, "w") as zf:
        for p in sorted(src.rglob("*")):
            zf.write(p, prefix + p.relative_to(src).as_posix() + ("/" if p.is_dir() else ""))
    return dest


def test_interleaved_order_balances_any_prefix():
    """Class-sorted labels (unequal class sizes) taken round-robin; every position exactly once."""
    labels = [0] * 3 + [1] * 1 + [2] * 2
    order = image_folder.interleaved(labels)
    assert sorted(order.tolist()) == list(range(6))
    assert [labels[i] for i in order] == [0, 1, 2, 0, 2, 0]
    assert order.tolist() == [0, 3, 4, 1, 5, 2]  # within a class the folder order is kept


def test_directory_roundtrip(tmp_path, monkeypatch):
    monkeypatch.setenv("IMCNOISE_CACHE_DIR", str(tmp_path / "cache"))
    src = tmp_path / "set"
    expect = _tree(src)
    for split in ("train", "test"):
        ds = image_folder.load("tiny", src, split)
        assert ds.classes == ["ant", "cat", "zebra"]  # sorted folder names
        assert ds.images.dtype == torch.uint8 and tuple(ds.images.shape[1:]) == (3, 6, 5)
        assert torch.equal(ds.images, expect[split][0])  # PNG is lossless: exact pixels
        assert ds.labels.tolist() == expect[split][1]
        assert ds.checksum == "directory (file list, sizes and times)"


@pytest.mark.parametrize("prefix", ["", "tiny/"], ids=["flat", "top-folder"])
def test_zip_roundtrip_and_cache(tmp_path, monkeypatch, prefix):
    monkeypatch.setenv("IMCNOISE_CACHE_DIR", str(tmp_path / "cache"))
    src = tmp_path / "set"
    expect = _tree(src, gray=True)
    z = _zip(src, tmp_path / "z" / "tiny.zip", prefix)
    a = image_folder.load("tiny", z, "train")
    assert a.source == f"{z} (decoded)" and a.checksum.startswith("sha256 ")
    assert tuple(a.images.shape) == (9, 1, 6, 5) and torch.equal(a.images, expect["train"][0])
    b = image_folder.load("tiny", z, "test")
    assert b.source == f"{z} (cached decode)" and torch.equal(b.images, expect["test"][0])
    assert b.labels.tolist() == expect["test"][1]


def test_zip_replaced_in_place_is_reloaded(tmp_path, monkeypatch):
    """The in-process archive digest and the decode cache follow a changed archive."""
    monkeypatch.setenv("IMCNOISE_CACHE_DIR", str(tmp_path / "cache"))
    z = tmp_path / "z" / "tiny.zip"
    first = _tree(tmp_path / "a", seed=1)
    _zip(tmp_path / "a", z)
    assert torch.equal(image_folder.load("tiny", z, "test").images, first["test"][0])
    second = _tree(tmp_path / "b", seed=2)
    z.unlink()
    _zip(tmp_path / "b", z)
    ds = image_folder.load("tiny", z, "test")
    assert ds.source.endswith("(decoded)") and torch.equal(ds.images, second["test"][0])


def test_zip_listed_in_sha256sums(tmp_path, monkeypatch):
    import hashlib

    monkeypatch.setenv("IMCNOISE_CACHE_DIR", str(tmp_path / "cache"))
    src = tmp_path / "set"
    _tree(src)
    z = _zip(src, tmp_path / "d" / "cifar10-jpeg" / "cifar10-jpeg.zip")
    (z.parent / "SHA256SUMS").write_text(f"# comment\n{hashlib.sha256(z.read_bytes()).hexdigest()} *cifar10-jpeg.zip\n\n")
    ds = load_dataset("cifar10-jpeg", "test", tmp_path / "d")
    assert ds.checksum == "sha256 ok (SHA256SUMS)" and len(ds) == 6


def test_macos_junk_and_hidden_files_are_ignored(tmp_path, monkeypatch):
    monkeypatch.setenv("IMCNOISE_CACHE_DIR", str(tmp_path / "cache"))
    src = tmp_path / "set"
    expect = _tree(src)
    (src / "train" / "ant" / "._img000.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (src / "train" / ".ipynb_checkpoints").mkdir()
    z = tmp_path / "z" / "tiny.zip"
    _zip(src, z)
    with zipfile.ZipFile(z, "a") as zf:
        zf.writestr("__MACOSX/train/ant/._img001.png", b"\x00\x05\x16\x07")
    for source in (src, z):
        ds = image_folder.load("tiny", source, "train", use_cache=False)
        assert ds.classes == ["ant", "cat", "zebra"] and torch.equal(ds.images, expect["train"][0])


def test_directory_cache_invalidated_by_change(tmp_path, monkeypatch):
    monkeypatch.setenv("IMCNOISE_CACHE_DIR", str(tmp_path / "cache"))
    src = tmp_path / "set"
    _tree(src)
    a = image_folder.load("tiny", src, "train")
    assert a.source.endswith("(decoded)")
    assert image_folder.load("tiny", src, "train").source.endswith("(cached decode)")
    new = np.full((6, 5, 3), 7, np.uint8)
    p = src / "train" / "ant" / "img000.png"
    p.write_bytes(_png(new))
    os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 10**9))
    b = image_folder.load("tiny", src, "train")
    assert b.source.endswith("(decoded)")
    assert torch.equal(b.images[0], torch.from_numpy(new).permute(2, 0, 1))


def test_damaged_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("IMCNOISE_CACHE_DIR", str(tmp_path / "cache"))
    src = tmp_path / "set"
    expect = _tree(src)
    z = _zip(src, tmp_path / "z" / "tiny.zip")
    image_folder.load("tiny", z, "train")
    (cache,) = (tmp_path / "cache").glob("imagefolder-tiny-*.npz")
    for damage in (b"garbage", cache.read_bytes()[:100]):
        cache.write_bytes(damage)
        ds = image_folder.load("tiny", z, "train")
        assert ds.source.endswith("(decoded)") and torch.equal(ds.images, expect["train"][0])
    # a cache that reads but lacks arrays is rebuilt too
    np.savez(cache, classes=np.asarray(["x"]))
    assert image_folder.load("tiny", z, "test").source.endswith("(decoded)")
    assert not list((tmp_path / "cache").glob("*.part*"))


def test_unwritable_cache_only_costs_time(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    monkeypatch.setenv("IMCNOISE_CACHE_DIR", str(blocker))
    src = tmp_path / "set"
    expect = _tree(src)
    with pytest.warns(UserWarning, match="could not write the decode cache"):
        ds = image_folder.load("tiny", src, "test")
    assert torch.equal(ds.images, expect["test"][0])


def test_unknown_split(tmp_path):
    src = tmp_path / "set"
    _tree(src)
    with pytest.raises(DataError, match="no split 'val'"):
        image_folder.load("tiny", src, "val")
