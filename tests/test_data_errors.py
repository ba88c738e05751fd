"""Every bad input gives ONE clear DataError naming the file and what was expected.

Bad files are built in tmp_path: tiny synthetic IDX files, modified copies of the Debian
Fashion-MNIST files, CIFAR pickles from tests/cifar_fixture.py and tiny PNG image folders.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cifar_fixture import write_cifar100, write_cifar10, write_pickle
from conftest import debian_fmnist_dir
from helpers import assert_clean_error
from imcnoise.data import DataError, cifar, fashion_mnist, image_folder, load_dataset
from imcnoise.data.idx import parse_idx, read_gz_bytes


IMG_TEST, LBL_TEST = fashion_mnist.SPLITS["test"]
IMG_TRAIN, LBL_TRAIN = fashion_mnist.SPLITS["train"]


@pytest.fixture(autouse=True)
def _own_data_dirs(own_data_dirs):
    """Own cache, no data directories from the environment (conftest.own_data_dirs)."""


@pytest.fixture
def debian_fmnist() -> Path:
    return debian_fmnist_dir()


def expect_data_error(fn, where: Path | str, *phrases: str) -> DataError:
    """``fn()`` raises exactly a DataError (a ValueError) whose message names ``where`` and holds ``phrases``."""
    with pytest.raises(DataError) as ei:
        fn()
    exc = ei.value
    assert isinstance(exc, ValueError)
    msg = str(exc)
    assert str(where) in msg, f"{where} not named in: {msg}"
    for p in phrases:
        assert p in msg, f"{p!r} not in: {msg}"
    return exc


# --------------------------------------------------------------------------- Fashion-MNIST / IDX

def idx_bytes(arr: np.ndarray, dtype_code: int = 0x08) -> bytes:
    """An IDX file (big-endian header: 0, 0, type code, ndim, then the dimensions)."""
    head = bytes([0, 0, dtype_code, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    return head + np.ascontiguousarray(arr, dtype=np.uint8).tobytes()


_STEMS = {"train_images": IMG_TRAIN, "train_labels": LBL_TRAIN, "t10k_images": IMG_TEST, "t10k_labels": LBL_TEST}


def synthetic_fmnist(d: Path, n: int = 3, **override: bytes) -> Path:
    """All four Fashion-MNIST file names, tiny synthetic IDX content; ``override`` maps a file
    stem (``t10k_images`` ...) to the raw bytes to write instead."""
    rng = np.random.default_rng(0)
    content = {
        IMG_TRAIN: gzip.compress(idx_bytes(rng.integers(0, 256, (n, 28, 28)))),
        LBL_TRAIN: gzip.compress(idx_bytes(rng.integers(0, 10, n))),
        IMG_TEST: gzip.compress(idx_bytes(rng.integers(0, 256, (n, 28, 28)))),
        LBL_TEST: gzip.compress(idx_bytes(rng.integers(0, 10, n))),
    }
    for stem, raw in override.items():
        content[_STEMS[stem]] = raw
    d.mkdir(parents=True, exist_ok=True)
    assert set(content) == set(fashion_mnist.FILES), sorted(content)
    for name, raw in content.items():
        (d / name).write_bytes(raw)
    return d


def test_synthetic_structure_is_valid_without_checksum(tmp_path):
    """Sanity of the helpers: well-formed synthetic files load with verify=False."""
    d = synthetic_fmnist(tmp_path / "fm", n=3)
    ds = fashion_mnist.load("test", d, verify=False, download_missing=False)
    assert tuple(ds.images.shape) == (3, 1, 28, 28) and ds.checksum == "not checked"


def test_truncated_gz(tmp_path):
    good = gzip.compress(idx_bytes(np.zeros((3, 28, 28))))
    d = synthetic_fmnist(tmp_path / "fm", t10k_images=good[: len(good) // 2])
    expect_data_error(lambda: load_dataset("fashion-mnist", "test", d), d / IMG_TEST, "truncated or corrupt gzip file")


def test_corrupt_gz(tmp_path):
    raw = bytearray(gzip.compress(idx_bytes(np.random.default_rng(1).integers(0, 256, (3, 28, 28)))))
    for i in range(20, len(raw) - 8, 7):  # damage the deflate stream, keep the gzip header
        raw[i] ^= 0x5A
    d = synthetic_fmnist(tmp_path / "fm", t10k_images=bytes(raw))
    expect_data_error(lambda: fashion_mnist.load("test", d), d / IMG_TEST, "truncated or corrupt gzip file")


def test_not_gzip_at_all(tmp_path):
    d = synthetic_fmnist(tmp_path / "fm", t10k_labels=b"<html>404 not found</html>")
    expect_data_error(lambda: fashion_mnist.load("test", d), d / LBL_TEST, "corrupt gzip file")


def test_truncated_real_gz(tmp_path, debian_fmnist):
    d = tmp_path / "fm"
    shutil.copytree(debian_fmnist, d)
    raw = (d / LBL_TEST).read_bytes()
    (d / LBL_TEST).write_bytes(raw[:2000])
    expect_data_error(lambda: load_dataset("fashion-mnist", "test", d), d / LBL_TEST, "truncated or corrupt gzip file")


def test_wrong_idx_magic_labels_file_in_place_of_images(tmp_path):
    labels = gzip.compress(idx_bytes(np.zeros(3)))
    d = synthetic_fmnist(tmp_path / "fm", t10k_images=labels)
    expect_data_error(lambda: load_dataset("fashion-mnist", "test", d), d / IMG_TEST,
                      "wrong magic number 0x00000801", "expected 0x00000803")


def test_wrong_idx_magic_type_code(tmp_path):
    d = synthetic_fmnist(tmp_path / "fm", t10k_labels=gzip.compress(idx_bytes(np.zeros(3), dtype_code=0x0D)))
    expect_data_error(lambda: fashion_mnist.load("test", d), d / LBL_TEST,
                      "wrong magic number 0x00000d01", "expected 0x00000801", "unsigned byte")


def test_wrong_idx_magic_nonzero_leading_bytes(tmp_path):
    raw = bytearray(idx_bytes(np.zeros((3, 28, 28))))
    raw[0] = 0x1F
    d = synthetic_fmnist(tmp_path / "fm", t10k_images=gzip.compress(bytes(raw)))
    expect_data_error(lambda: fashion_mnist.load("test", d), d / IMG_TEST, "wrong magic number 0x1f000803")


def test_wrong_image_shape(tmp_path):
    d = synthetic_fmnist(tmp_path / "fm", t10k_images=gzip.compress(idx_bytes(np.zeros((3, 27, 28)))))
    expect_data_error(lambda: load_dataset("fashion-mnist", "test", d), d / IMG_TEST,
                      "wrong image shape 27x28", "expected 28x28")


def test_idx_payload_size_mismatch(tmp_path):
    raw = idx_bytes(np.zeros((3, 28, 28)))[:-784]  # header says 3 images, 2 present
    d = synthetic_fmnist(tmp_path / "fm", t10k_images=gzip.compress(raw))
    expect_data_error(lambda: fashion_mnist.load("test", d), d / IMG_TEST,
                      "IDX payload has 1568 bytes", "[3, 28, 28] need 2352")


def test_idx_too_short_and_truncated_header(tmp_path):
    p = tmp_path / "x.idx"
    expect_data_error(lambda: parse_idx(b"\x00\x00", p, 1), p, "too short for an IDX file")
    expect_data_error(lambda: parse_idx(bytes([0, 0, 8, 3, 0, 0]), p, 3), p, "IDX header truncated")
    # absurd dimensions must not wrap around to a "valid" size
    expect_data_error(lambda: parse_idx(bytes([0, 0, 8, 3]) + b"\xff" * 12, p, 3), p, "IDX payload has 0 bytes")


def test_read_missing_file(tmp_path):
    p = tmp_path / "nothing.gz"
    expect_data_error(lambda: read_gz_bytes(p), p, "cannot read file")


def test_label_count_mismatch(tmp_path):
    d = synthetic_fmnist(tmp_path / "fm", t10k_labels=gzip.compress(idx_bytes(np.zeros(2))))
    expect_data_error(lambda: fashion_mnist.load("test", d), d / LBL_TEST, "2 labels for 3 images", IMG_TEST)


def test_label_out_of_range(tmp_path):
    d = synthetic_fmnist(tmp_path / "fm", t10k_labels=gzip.compress(idx_bytes(np.array([0, 10, 3]))))
    expect_data_error(lambda: fashion_mnist.load("test", d, verify=False), d / LBL_TEST, "label 10 out of range 0..9")


def test_well_formed_but_wrong_size_file(tmp_path):
    d = synthetic_fmnist(tmp_path / "fm")
    expect_data_error(lambda: load_dataset("fashion-mnist", "test", d), d / IMG_TEST,
                      "decompressed size 2368 bytes, expected 7840016")


def test_checksum_mismatch_decompressed_sha256(tmp_path, debian_fmnist):
    """Same size, one label changed: only the SHA-256 of the decompressed content can tell."""
    d = tmp_path / "fm"
    d.mkdir()
    for f in fashion_mnist.FILES:
        (d / f).symlink_to(debian_fmnist / f)
    raw = bytearray(gzip.decompress((debian_fmnist / LBL_TEST).read_bytes()))
    raw[8 + 123] = (raw[8 + 123] + 1) % 10  # label of image 123, still a valid class
    (d / LBL_TEST).unlink()
    (d / LBL_TEST).write_bytes(gzip.compress(bytes(raw), compresslevel=1))
    exc = expect_data_error(lambda: load_dataset("fashion-mnist", "test", d), d / LBL_TEST,
                            "checksum mismatch: sha256 of decompressed content",
                            f"expected {fashion_mnist.FILES[LBL_TEST][1]}")
    assert exc.path == d / LBL_TEST
    # with verification off the same file loads (it is well-formed)
    ds = fashion_mnist.load("test", d, verify=False)
    assert len(ds) == 10000 and ds.checksum == "not checked"


@pytest.mark.parametrize("sub", ["", "fashion-mnist"])
def test_incomplete_fashion_mnist_dir(tmp_path, sub):
    """A --data-dir with only some of the four files is an error, not a silent fall-back to
    another copy further down the search order (e.g. the Debian one)."""
    d = synthetic_fmnist(tmp_path / "fm" / sub)
    (d / IMG_TEST).unlink()
    (d / LBL_TRAIN).unlink()
    exc = expect_data_error(lambda: load_dataset("fashion-mnist", "test", tmp_path / "fm"), d,
                            "incomplete Fashion-MNIST directory", f"missing {LBL_TRAIN}, {IMG_TEST}")
    assert exc.path == d


def test_incomplete_dir_from_environment(tmp_path, monkeypatch):
    d = synthetic_fmnist(tmp_path / "fm")
    (d / LBL_TEST).unlink()
    monkeypatch.setenv("IMCNOISE_DATA_DIR", str(d))
    expect_data_error(lambda: load_dataset("fashion-mnist", "train"), d, "incomplete Fashion-MNIST directory", LBL_TEST)


def test_unknown_dataset_and_split():
    with pytest.raises(DataError, match="unknown data set 'mnist'"):
        load_dataset("mnist", "train")
    with pytest.raises(DataError, match="no split 'val'"):
        load_dataset("fashion-mnist", "val")


def test_cli_data_info_bad_file_is_clean_error(tmp_path):
    from typer.testing import CliRunner

    from imcnoise.cli.main import app

    d = synthetic_fmnist(tmp_path / "fm")
    (d / IMG_TEST).unlink()
    res = CliRunner().invoke(app, ["data", "info", "fashion-mnist", "--data-dir", str(d)])
    assert res.exit_code == 2
    assert "error:" in res.output and "incomplete Fashion-MNIST directory" in res.output
    assert_clean_error(res)


# --------------------------------------------------------------------------- CIFAR

@pytest.fixture
def c100(tmp_path):
    return write_cifar100(tmp_path / "c100", n_train=6, n_test=4)


def _load100(w, split="train"):
    return lambda: cifar.load(cifar.CIFAR100, split, w.root, download_missing=False)


def test_cifar_missing_test_file(c100):
    (c100.folder / "test").unlink()
    _load100(c100, "train")()  # the other split is fine
    expect_data_error(_load100(c100, "test"), c100.folder / "test", "missing file", "official CIFAR python-format layout")


def test_cifar10_missing_batch(tmp_path):
    w = write_cifar10(tmp_path / "c10", per_batch=2, n_test=2)
    (w.folder / "data_batch_4").unlink()
    expect_data_error(lambda: load_dataset("cifar10", "train", w.root, download=False), w.folder / "data_batch_4", "missing file")


def test_cifar_missing_meta(c100):
    (c100.folder / "meta").unlink()
    expect_data_error(_load100(c100), c100.folder / "meta", "missing file")


@pytest.mark.parametrize("content", [
    os.urandom(0) + bytes(range(256)) * 4,  # garbage
    b"",  # empty
    b"\x80\x02}q\x00(U\x04dataq\x01",  # truncated pickle
    b"PK\x03\x04 not a pickle",
], ids=["garbage", "empty", "truncated", "zip-magic"])
def test_cifar_garbage_pickle(c100, content):
    (c100.folder / "train").write_bytes(content)
    expect_data_error(_load100(c100), c100.folder / "train", "not a readable CIFAR pickle file")


def test_cifar_truncated_real_pickle(c100):
    raw = (c100.folder / "test").read_bytes()
    (c100.folder / "test").write_bytes(raw[: len(raw) // 2])
    expect_data_error(_load100(c100, "test"), c100.folder / "test", "not a readable CIFAR pickle file")


def test_cifar_pickle_with_disallowed_global_is_not_executed(c100, tmp_path):
    marker = tmp_path / "pwned"
    evil = f"cos\nsystem\n(S'touch {marker}'\ntR.".encode()
    (c100.folder / "train").write_bytes(evil)
    expect_data_error(_load100(c100), c100.folder / "train", "not a readable CIFAR pickle file", "disallowed global os.system")
    assert not marker.exists()


def test_cifar_pickle_not_a_dict(c100):
    write_pickle(c100.folder / "train", [1, 2, 3])
    expect_data_error(_load100(c100), c100.folder / "train", "expected a pickled dict, found list")


def test_cifar_missing_key(c100):
    write_pickle(c100.folder / "train", {b"fine_labels": [1], b"coarse_labels": [1]})
    expect_data_error(_load100(c100), c100.folder / "train", "missing key 'data'")


@pytest.mark.parametrize("data,found", [
    (np.zeros((6, 1024), np.uint8), "uint8 (6, 1024)"),
    (np.zeros((6, 3072), np.float32), "float32 (6, 3072)"),
    (np.zeros((6, 3, 32, 32), np.uint8), "uint8 (6, 3, 32, 32)"),
    ([[0] * 3072] * 6, "found list"),
    (b"\x00" * 3072, "found bytes"),
], ids=["1024-wide", "float", "4d", "list", "bytes"])
def test_cifar_wrong_data_shape(c100, data, found):
    write_pickle(c100.folder / "train", {b"data": data, b"fine_labels": [0] * 6, b"coarse_labels": [0] * 6})
    expect_data_error(_load100(c100), c100.folder / "train", "'data' must be a uint8 array [N, 3072]", found)


@pytest.mark.parametrize("labels,phrase", [
    ([0] * 5, "'fine_labels' has shape (5,); expected one label per image (6,)"),
    (7, "'fine_labels' has shape (); expected one label per image (6,)"),
    ([b"cat"] * 6, "'fine_labels' must be a list of integer labels"),
    ([0, 1, 2, 3, 4, 100], "'fine_labels': label out of range 0..99"),
    ([0, 1, 2, 3, 4, -1], "'fine_labels': label out of range 0..99"),
], ids=["short", "scalar", "strings", "too-big", "negative"])
def test_cifar_bad_fine_labels(c100, labels, phrase):
    write_pickle(c100.folder / "train", {b"data": np.zeros((6, 3072), np.uint8), b"fine_labels": labels, b"coarse_labels": [0] * 6})
    expect_data_error(_load100(c100), c100.folder / "train", phrase)


def test_cifar_coarse_label_out_of_range(c100):
    write_pickle(c100.folder / "train", {b"data": np.zeros((6, 3072), np.uint8), b"fine_labels": [0] * 6, b"coarse_labels": [20] * 6})
    expect_data_error(_load100(c100), c100.folder / "train", "'coarse_labels': label out of range 0..19")


@pytest.mark.parametrize("names,phrase", [
    (5, "must be a list of class names; found int"),
    (b"apple", "must be a list of class names; found bytes"),
    ([], "'fine_label_names' is empty"),
], ids=["int", "bytes", "empty"])
def test_cifar_bad_meta(c100, names, phrase):
    write_pickle(c100.folder / "meta", {b"fine_label_names": names, b"coarse_label_names": [b"x"] * 20})
    expect_data_error(_load100(c100), c100.folder / "meta", phrase)


def test_cifar_corrupt_archive_is_checksum_error(c100, tmp_path):
    raw = c100.archive.read_bytes()
    c100.archive.write_bytes(raw[: len(raw) // 2])
    shutil.rmtree(c100.folder)
    expect_data_error(lambda: cifar.load(cifar.CIFAR100, "train", c100.archive.parent, download_missing=False),
                      c100.archive, "checksum mismatch")


# --------------------------------------------------------------------------- image folders

def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def image_tree(root: Path, splits=("train", "test"), classes=("cat", "dog"), n=2, size=(8, 8)) -> Path:
    rng = np.random.default_rng(0)
    for s in splits:
        for c in classes:
            (root / s / c).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                (root / s / c / f"{i}.png").write_bytes(png_bytes(rng.integers(0, 256, (*size, 3), dtype=np.uint8)))
    return root


def _load_folder(src: Path, split="train"):
    return lambda: image_folder.load("t", src, split)


def test_image_folder_missing_test_split(tmp_path):
    src = image_tree(tmp_path / "f", splits=("train",))
    expect_data_error(_load_folder(src), src, "missing split 'test/'", "one sub-folder per class")


def test_image_folder_missing_split_via_registry(tmp_path):
    src = image_tree(tmp_path / "d" / "cifar10-jpeg", splits=("train",))
    expect_data_error(lambda: load_dataset("cifar10-jpeg", "train", tmp_path / "d"), src, "missing split 'test/'")


def test_image_folder_empty_class_folder(tmp_path):
    src = image_tree(tmp_path / "f")
    (src / "test" / "bird").mkdir()
    expect_data_error(_load_folder(src), src, "empty class folders: 'train/bird/', 'test/bird/' have no PNG/JPEG images")


def test_image_folder_class_only_in_test(tmp_path):
    src = image_tree(tmp_path / "f")
    (src / "test" / "emu").mkdir()
    (src / "test" / "emu" / "0.png").write_bytes(png_bytes(np.zeros((8, 8, 3), np.uint8)))
    expect_data_error(_load_folder(src), src, "empty class folder: 'train/emu/' has no PNG/JPEG images")


def test_image_folder_class_with_only_non_images(tmp_path):
    src = image_tree(tmp_path / "f")
    (src / "train" / "emu").mkdir()
    (src / "train" / "emu" / "notes.txt").write_text("no images here")
    expect_data_error(_load_folder(src), src, "empty class folders: 'train/emu/', 'test/emu/' have no PNG/JPEG images")


@pytest.mark.parametrize("content", [b"this is not a png", b"", "truncated"], ids=["garbage", "empty", "truncated"])
def test_image_folder_corrupt_image(tmp_path, content):
    src = image_tree(tmp_path / "f")
    bad = src / "train" / "dog" / "1.png"
    if content == "truncated":
        content = png_bytes(np.random.default_rng(2).integers(0, 256, (8, 8, 3), dtype=np.uint8))[:60]
    bad.write_bytes(content)
    expect_data_error(_load_folder(src, "test"), src, "cannot decode image 'train/dog/1.png'", "expected a readable PNG/JPEG file")


def test_image_folder_mixed_sizes(tmp_path):
    src = image_tree(tmp_path / "f")
    (src / "test" / "dog" / "1.png").write_bytes(png_bytes(np.zeros((9, 8, 3), np.uint8)))
    expect_data_error(_load_folder(src), src, "image 'test/dog/1.png' has shape (9, 8, 3); the first image has (8, 8, 3)")


def test_image_folder_not_a_zip(tmp_path):
    z = tmp_path / "cifar10-jpeg.zip"
    z.write_bytes(b"not a zip archive at all")
    expect_data_error(lambda: load_dataset("cifar10-jpeg", "train", tmp_path), z, "not a readable zip archive")


def test_image_folder_zip_with_damaged_entry(tmp_path):
    src = image_tree(tmp_path / "f")
    z = tmp_path / "z" / "cifar10-jpeg.zip"
    z.parent.mkdir()
    with zipfile.ZipFile(z, "w", zipfile.ZIP_STORED) as zf:
        for p in sorted(src.rglob("*.png")):
            zf.write(p, p.relative_to(src).as_posix())
    raw = bytearray(z.read_bytes())
    off = raw.index(b"IDAT") + 8  # inside the first stored PNG's pixel data
    raw[off] ^= 0xFF
    z.write_bytes(bytes(raw))
    expect_data_error(lambda: load_dataset("cifar10-jpeg", "train", z.parent), z, "cannot read 'test/cat/0.png'", "damaged")


def test_image_folder_sha256sums_mismatch(tmp_path):
    src = image_tree(tmp_path / "f")
    z = tmp_path / "z" / "cifar10-jpeg.zip"
    z.parent.mkdir()
    with zipfile.ZipFile(z, "w") as zf:
        for p in sorted(src.rglob("*.png")):
            zf.write(p, p.relative_to(src).as_posix())
    (z.parent / "SHA256SUMS").write_text("0" * 64 + "  cifar10-jpeg.zip\n")
    expect_data_error(lambda: load_dataset("cifar10-jpeg", "train", z.parent), z,
                      "checksum mismatch", "SHA256SUMS lists " + "0" * 64)


def test_image_folder_not_found(tmp_path):
    with pytest.raises(DataError, match="cifar10-jpeg not found: looked for cifar10-jpeg.zip or cifar10-jpeg/") as ei:
        load_dataset("cifar10-jpeg", "train", tmp_path)
    assert str(tmp_path) in str(ei.value)
