"""CIFAR-10 and CIFAR-100 in the official "python version" pickle formats.

(Krizhevsky 2009, https://www.cs.toronto.edu/~kriz/cifar.html). Read from a directory holding
``cifar-10-batches-py/`` or ``cifar-100-python/``, or from the official ``.tar.gz`` (extracted
into the cache after its md5 is verified); downloaded when neither exists and a network does.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tarfile
import tempfile
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


def _names(values, path: Path, key: bytes) -> list[str]:
    if isinstance(values, (bytes, str)) or not hasattr(values, "__iter__"):
        raise DataError(path, f"{key.decode()!r} must be a list of class names; found {type(values).__name__}")
    names = [v.decode() if isinstance(v, bytes) else str(v) for v in values]
    if not names:
        raise DataError(path, f"{key.decode()!r} is empty; expected the class names")
    return names


def _labels(d: dict, key: bytes, path: Path, n: int, num_classes: int) -> np.ndarray:
    """``d[key]`` as int64 ``[n]`` with values in ``0..num_classes-1``."""
    raw = _field(d, key, path)
    try:
        lab = np.asarray(raw, dtype=np.int64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise DataError(path, f"{key.decode()!r} must be a list of integer labels ({exc})") from exc
    if lab.shape != (n,):
        raise DataError(path, f"{key.decode()!r} has shape {lab.shape}; expected one label per image ({n},)")
    if lab.size and (lab.min() < 0 or lab.max() >= num_classes):
        raise DataError(path, f"{key.decode()!r}: label out of range 0..{num_classes - 1} "
                        f"(found {int(lab.min())}..{int(lab.max())})")
    return lab


def find_root(fmt: CifarFormat, data_dir=None, *, download_missing: bool = True) -> tuple[str, Path]:
    """Directory holding ``fmt.folder``; extracts or downloads the archive when needed."""
    origin, root, _ = _find_root(fmt, data_dir, download_missing=download_missing)
    return origin, root


def _find_root(fmt: CifarFormat, data_dir=None, *, download_missing: bool = True) -> tuple[str, Path, bool]:
    """(origin, folder, whether the folder came from an md5-verified archive)."""
    cands = candidate_dirs(data_dir)
    for origin, d in cands:
        if (d / fmt.folder).is_dir():
            return origin, d / fmt.folder, False
        if d.name == fmt.folder and d.is_dir():
            return origin, d, False
    for origin, d in cands:
        if (d / fmt.archive).is_file():
            return f"{origin}, extracted from {d / fmt.archive}", _extract(d / fmt.archive, fmt), True
    if not download_missing:
        raise DataError(None, f"{fmt.name} not found: no {fmt.folder}/ or {fmt.archive} in "
                        + ", ".join(str(d) for _, d in cands))
    archive = download(BASE_URL + fmt.archive, cache_dir() / fmt.archive, md5=fmt.archive_md5)
    return "downloaded", _extract(archive, fmt), True


def _extract(archive: Path, fmt: CifarFormat) -> Path:
    """Verify the archive's md5 and extract it (once, atomically) into the cache."""
    got = file_digest(archive, "md5")
    if got != fmt.archive_md5:
        raise DataError(archive, f"checksum mismatch: md5 {got}, expected {fmt.archive_md5} "
                        f"(the official {fmt.archive}); delete it and load again")
    out = cache_dir() / f"{fmt.name}-{got[:12]}-extracted"
    if not (out / fmt.folder).is_dir():
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(out, ignore_errors=True)  # leftovers without the data folder
        # extract next to the final place, then rename: an interrupted extraction never leaves a
        # half-filled folder that a later run would take for the complete data set
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=out.name + ".part"))
        try:
            try:
                with tarfile.open(archive, "r:gz") as tar:
                    tar.extractall(tmp, filter="data")
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise DataError(archive, f"corrupt archive: {exc}") from exc
            if not (tmp / fmt.folder).is_dir():
                raise DataError(archive, f"archive has no top-level folder {fmt.folder}/ (expected the official {fmt.archive})")
            try:
                os.replace(tmp, out)
            except OSError:
                if not (out / fmt.folder).is_dir():  # not a concurrent extraction that won the race
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out / fmt.folder


def load(fmt: CifarFormat, split: str, data_dir=None, *, download_missing: bool = True) -> ImageDataset:
    if split not in fmt.splits:
        raise DataError(None, f"{fmt.name} has no split {split!r}; choose one of {sorted(fmt.splits)}")
    origin, root, verified = _find_root(fmt, data_dir, download_missing=download_missing)
    meta_path = root / fmt.meta_file
    meta = _unpickle(meta_path)
    classes = _names(_field(meta, fmt.names_key, meta_path), meta_path, fmt.names_key)
    coarse_classes = _names(_field(meta, b"coarse_label_names", meta_path), meta_path, b"coarse_label_names") if fmt.coarse else None
    images, labels, coarse = [], [], []
    for fname in fmt.splits[split]:
        path = root / fname
        d = _unpickle(path)
        raw = _field(d, b"data", path)
        data = raw if isinstance(raw, np.ndarray) else None
        if data is None or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
            found = f"{data.dtype} {data.shape}" if data is not None else type(raw).__name__
            raise DataError(path, f"'data' must be a uint8 array [N, 3072] (32x32 RGB, channel-major); found {found}")
        n = data.shape[0]
        images.append(data.reshape(n, 3, 32, 32))
        labels.append(_labels(d, fmt.label_key, path, n, len(classes)))
        if fmt.coarse:
            coarse.append(_labels(d, b"coarse_labels", path, n, len(coarse_classes)))
    extra = {}
    if fmt.coarse:
        extra = {"coarse_labels": torch.from_numpy(np.concatenate(coarse)), "coarse_classes": coarse_classes}
    return ImageDataset(
        name=fmt.name, split=split,
        images=torch.from_numpy(np.concatenate(images)), labels=torch.from_numpy(np.concatenate(labels)),
        classes=classes, source=f"{root} ({origin})",
        checksum="archive md5 ok" if verified else "not checked (extracted folder)",
        extra=extra,
    )
