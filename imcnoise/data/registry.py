"""Named data sets: where each is found and how it is loaded."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

from . import cifar, fashion_mnist, image_folder
from .dataset import ImageDataset
from .errors import DataError
from .locate import cache_dir, candidate_dirs


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    channels: int
    image_size: int  # native size; models pad to 32
    num_classes: int
    loader: Callable[..., ImageDataset]


def _find_image_folder(stem: str, data_dir) -> Path:
    """``<dir>/<stem>.zip``, ``<dir>/<stem>/<stem>.zip`` or an extracted ``<dir>/<stem>/`` tree."""
    return _find_image_folder_origin(stem, data_dir)[1]


def _find_image_folder_origin(stem: str, data_dir) -> tuple[str, Path]:
    cands = candidate_dirs(data_dir)
    for origin, d in cands:
        for p in (d / f"{stem}.zip", d / stem / f"{stem}.zip"):
            if p.is_file():
                return origin, p
        if (d / stem / "train").is_dir():
            return origin, d / stem
        if d.name == stem and (d / "train").is_dir():
            return origin, d
    raise DataError(None, f"{stem} not found: looked for {stem}.zip or {stem}/ in "
                    + ", ".join(str(d) for _, d in cands)
                    + " (set IMCNOISE_DATA_DIR or pass --data-dir; there is no official download)")


def _load_cifar10_jpeg(split, data_dir=None, **kw):
    return image_folder.load("cifar10-jpeg", _find_image_folder("cifar10-jpeg", data_dir), split)


DATASETS: dict[str, DatasetInfo] = {
    "fashion-mnist": DatasetInfo("fashion-mnist", "Fashion-MNIST, official IDX files (embedded default)", 1, 28, 10,
                                 lambda split, data_dir=None, **kw: fashion_mnist.load(split, data_dir, **kw)),
    "cifar10": DatasetInfo("cifar10", "CIFAR-10, official python format", 3, 32, 10,
                           lambda split, data_dir=None, **kw: cifar.load(cifar.CIFAR10, split, data_dir, **kw)),
    "cifar100": DatasetInfo("cifar100", "CIFAR-100, official python format (the paper's data set)", 3, 32, 100,
                            lambda split, data_dir=None, **kw: cifar.load(cifar.CIFAR100, split, data_dir, **kw)),
    "cifar10-jpeg": DatasetInfo("cifar10-jpeg", "CIFAR-10 re-encoded as JPEG (q~75), image-folder zip; RGB stand-in for CIFAR-100", 3, 32, 10,
                                _load_cifar10_jpeg),
}


def get_info(name: str) -> DatasetInfo:
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(None, f"unknown data set {name!r}; choose one of {sorted(DATASETS)}") from None


@lru_cache(maxsize=8)
def _load_cached(name: str, split: str, data_dir: str | None, download: bool, env: tuple[str, ...] = ()) -> ImageDataset:
    # ``env`` only keys the memo: the search path read from the environment by the loaders
    kw = {} if name == "cifar10-jpeg" else {"download_missing": download}
    return get_info(name).loader(split, data_dir, **kw)


def load_dataset(name: str, split: str, data_dir: str | Path | None = None, *, download: bool = True) -> ImageDataset:
    """Load one split of a named data set (memoised per process: the whole set stays in RAM).

    The memo is keyed by the arguments and by ``$IMCNOISE_DATA_DIR`` and the cache directory, so
    changing where data are looked for in-process loads afresh. ``_load_cached.cache_clear()``
    forces a reload.
    """
    get_info(name)
    env = (os.environ.get("IMCNOISE_DATA_DIR", ""), str(cache_dir()))
    return _load_cached(name, split, None if data_dir is None else str(data_dir), download, env)


def locate(name: str, data_dir=None) -> str:
    """Where ``name`` would be loaded from, without loading or downloading it."""
    get_info(name)
    try:
        if name == "fashion-mnist":
            origin, d = fashion_mnist.find_dir(data_dir, download_missing=False)
        elif name in ("cifar10", "cifar100"):
            fmt = cifar.CIFAR10 if name == "cifar10" else cifar.CIFAR100
            origin, d = cifar.find_root(fmt, data_dir, download_missing=False)
        else:
            origin, d = _find_image_folder_origin(name, data_dir)
        return f"found: {d} ({origin})"
    except DataError as exc:
        return f"not found ({exc.problem})"
