"""CIFAR-10 and CIFAR-100 in the official "python version" pickle formats.

(Krizhevsky 2009, https://www.cs.toronto.edu/~kriz/cifar.html). Read from a directory holding
``cifar-10-batches-py/`` or ``cifar-100-python/``, or from the official ``.tar.gz`` (extracted
into the cache after its md5 is verified); downloaded when neither exists and a network does.
"""

from __future__ import annotations

import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .checksums import download, file_digest
from .dataset import ImageDataset
from .errors import DataError
from .locate import cache_dir, candidate_dirs

BASE_URL = "https://www.cs.toronto.edu/~kriz/"


@dataclass(frozen=True)
class CifarFormat:
    name: str
    folder: str
    archive: str
    archive_md5: str
    splits: dict[str, tuple[str, ...]]
    meta_file: str
    label_key: bytes
    names_key: bytes
    coarse: bool


CIFAR10 = CifarFormat(
    name="cifar10", folder="cifar-10-batches-py", archive="cifar-10-python.tar.gz",
    archive_md5="c58f30108f718f92721af3b95e74349a",
    splits={"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)},
    meta_file="batches.meta", label_key=b"labels", names_key=b"label_names", coarse=False,
)
CIFAR100 = CifarFormat(
    name="cifar100", folder="cifar-100-python", archive="cifar-100-python.tar.gz",
    archive_md5="eb9058c3a382ffc7106e4002c42a8d85",
    splits={"train": ("train",), "test": ("test",)},
    meta_file="meta", label_key=b"fine_labels", names_key=b"fine_label_names", coarse=True,
)


class _SafeUnpickler(pickle.Unpickler):
    """Only the classes the official files use: numpy arrays inside plain containers."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
                ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"disallowed global {module}.{name}")


def _unpickle(path: Path) -> dict:
    if not path.is_file():
        raise DataError(path, "missing file (expected the official CIFAR python-format layout)")
    try:
        with open(path, "rb") as f:
            obj = _SafeUnpickler(f, encoding="bytes").load()
    except Exception as exc:  # pickle raises many exception types for corrupt data
        raise DataError(path, f"not a readable CIFAR pickle file ({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, dict):
        raise DataError(path, f"expected a pickled dict, found {type(obj).__name__}")
    return obj


def _field(d: dict, key: bytes, path: Path):
    if key in d:
        return d[key]
    if key.decode() in d:  # files re-pickled under Python 3 have str keys
        return d[key.decode()]
    raise DataError(path, f"missing key {key.decode()!r}; present: {sorted(str(k) for k in d)}")


def _names(values, path: Path) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def find_root(fmt: CifarFormat, data_dir=None, *, download_missing: bool = True) -> tuple[str, Path]:
    """Directory holding ``fmt.folder``; extracts or downloads the archive when needed."""
    cands = candidate_dirs(data_dir)
    for origin, d in cands:
        if (d / fmt.folder).is_dir():
            return origin, d / fmt.folder
        if d.name == fmt.folder and d.is_dir():
            return origin, d
    for origin, d in cands:
        if (d / fmt.archive).is_file():
            return origin, _extract(d / fmt.archive, fmt)
    if not download_missing:
        raise DataError(None, f"{fmt.name} not found: no {fmt.folder}/ or {fmt.archive} in "
                        + ", ".join(str(d) for _, d in cands))
    archive = download(BASE_URL + fmt.archive, cache_dir() / fmt.archive, md5=fmt.archive_md5)
    return "downloaded", _extract(archive, fmt)


def _extract(archive: Path, fmt: CifarFormat) -> Path:
    got = file_digest(archive, "md5")
    if got != fmt.archive_md5:
        raise DataError(archive, f"checksum mismatch: md5 {got}, expected {fmt.archive_md5}")
    out = cache_dir() / f"{fmt.name}-extracted"
    if not (out / fmt.folder).is_dir():
        out.mkdir(parents=True, exist_ok=True)
        try:
            with tarfile.open(archive, "r:gz") as tar:
                tar.extractall(out, filter="data")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise DataError(archive, f"corrupt archive: {exc}") from exc
    return out / fmt.folder


def load(fmt: CifarFormat, split: str, data_dir=None, *, download_missing: bool = True) -> ImageDataset:
    if split not in fmt.splits:
        raise DataError(None, f"{fmt.name} has no split {split!r}; choose one of {sorted(fmt.splits)}")
    origin, root = find_root(fmt, data_dir, download_missing=download_missing)
    meta_path = root / fmt.meta_file
    meta = _unpickle(meta_path)
    classes = _names(_field(meta, fmt.names_key, meta_path), meta_path)
    coarse_classes = _names(_field(meta, b"coarse_label_names", meta_path), meta_path) if fmt.coarse else None
    images, labels, coarse = [], [], []
    for fname in fmt.splits[split]:
        path = root / fname
        d = _unpickle(path)
        data = np.asarray(_field(d, b"data", path))
        lab = np.asarray(_field(d, fmt.label_key, path), dtype=np.int64)
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
            raise DataError(path, f"'data' must be uint8 [N, 3072] (32x32 RGB, channel-major); found {data.dtype} {data.shape}")
        if lab.shape != (data.shape[0],):
            raise DataError(path, f"{lab.shape[0]} labels for {data.shape[0]} images")
        if lab.size and (lab.min() < 0 or lab.max() >= len(classes)):
            raise DataError(path, f"label out of range 0..{len(classes) - 1}")
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(lab)
        if fmt.coarse:
            cl = np.asarray(_field(d, b"coarse_labels", path), dtype=np.int64)
            if cl.shape != lab.shape:
                raise DataError(path, f"{cl.shape[0]} coarse labels for {lab.shape[0]} images")
            coarse.append(cl)
    extra = {}
    if fmt.coarse:
        extra = {"coarse_labels": torch.from_numpy(np.concatenate(coarse)), "coarse_classes": coarse_classes}
    return ImageDataset(
        name=fmt.name, split=split,
        images=torch.from_numpy(np.concatenate(images)), labels=torch.from_numpy(np.concatenate(labels)),
        classes=classes, source=f"{root} ({origin})", checksum="archive md5 ok" if origin == "downloaded" else "not checked (extracted folder)",
        extra=extra,
    )
