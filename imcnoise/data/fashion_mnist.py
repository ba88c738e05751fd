"""Fashion-MNIST (Xiao, Rasul & Vollgraf 2017), the embedded default data set.

Read from the official IDX ``.gz`` files. The Debian package ``dataset-fashion-mnist`` ships them
under ``/usr/share/datasets/fashion-mnist``; Debian recompressed the files, so the ``.gz`` md5
differs from upstream and the content is verified by the SHA-256 of the *decompressed* bytes.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .checksums import bytes_digest, download
from .dataset import ImageDataset
from .errors import DataError
from .idx import parse_idx, read_gz_bytes
from .locate import candidate_dirs

NAME = "fashion-mnist"
URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
SYSTEM_DIRS = (Path("/usr/share/datasets/fashion-mnist"),)
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

# file -> (md5 of upstream .gz [github.com/zalandoresearch/fashion-mnist README],
#          sha256 of decompressed content, decompressed size in bytes)
FILES = {
    "train-images-idx3-ubyte.gz": ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888", 47040016),
    "train-labels-idx1-ubyte.gz": ("25c81989df183df01b3e8a0aad5dffbe", "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9", 60008),
    "t10k-images-idx3-ubyte.gz": ("bef4ecab320f06d8554ea6380940ec79", "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b", 7840016),
    "t10k-labels-idx1-ubyte.gz": ("bb300cfdad3c16e7a12a480ee83cd310", "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34", 10008),
}
SPLITS = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
          "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


def find_dir(data_dir=None, *, download_missing: bool = True) -> tuple[str, Path]:
    """The first candidate directory holding all four files; download into the cache if none.

    A directory outside the cache that holds only some of the four files is an error (rather
    than silently reading another copy further down the search order): it is most likely an
    interrupted copy, and the user would otherwise train on data from somewhere else.
    """
    cands = candidate_dirs(data_dir, SYSTEM_DIRS)
    for origin, d in cands:
        for sub in (d, d / NAME):
            present = [f for f in FILES if (sub / f).is_file()]
            if len(present) == len(FILES):
                return origin, sub
            if present and origin != "cache":  # a partial download in the cache is resumed below
                missing = [f for f in FILES if f not in present]
                raise DataError(sub, f"incomplete Fashion-MNIST directory: missing {', '.join(missing)} "
                                f"(expected all four official IDX files: {', '.join(FILES)})")
    if not download_missing:
        raise DataError(None, "Fashion-MNIST not found in " + ", ".join(str(d) for _, d in cands)
                        + " (install the Debian package dataset-fashion-mnist or pass --data-dir)")
    target = cands[-1][1] / NAME
    for f, (md5, _, _) in FILES.items():
        if not (target / f).is_file():
            download(URL + f, target / f, md5=md5)
    return "downloaded", target


def _verify(path: Path, data: bytes) -> None:
    """Check the decompressed content against the official size and SHA-256."""
    _, sha, size = FILES[path.name]
    if len(data) != size:
        raise DataError(path, f"decompressed size {len(data)} bytes, expected {size} (truncated or wrong file)")
    got = bytes_digest(data)
    if got != sha:
        raise DataError(path, f"checksum mismatch: sha256 of decompressed content {got}, expected {sha}")


def load(split: str, data_dir=None, *, verify: bool = True, download_missing: bool = True) -> ImageDataset:
    if split not in SPLITS:
        raise DataError(None, f"Fashion-MNIST has no split {split!r}; choose one of {sorted(SPLITS)}")
    origin, d = find_dir(data_dir, download_missing=download_missing)
    img_file, lbl_file = (d / f for f in SPLITS[split])
    # Structure first (gzip, IDX magic, shape), checksum last: a wrong or damaged file then gets
    # the most specific message ("wrong magic number" rather than just "checksum mismatch").
    img_bytes = read_gz_bytes(img_file)
    images = parse_idx(img_bytes, img_file, 3)
    if images.shape[1:] != (28, 28):
        h, w = images.shape[1:]
        raise DataError(img_file, f"wrong image shape {h}x{w}; expected 28x28 (Fashion-MNIST)")
    lbl_bytes = read_gz_bytes(lbl_file)
    labels = parse_idx(lbl_bytes, lbl_file, 1)
    if images.shape[0] != labels.shape[0]:
        raise DataError(lbl_file, f"{labels.shape[0]} labels for {images.shape[0]} images in {img_file.name}; expected one label per image")
    if verify:
        _verify(img_file, img_bytes)
        _verify(lbl_file, lbl_bytes)
    if labels.size and labels.max() >= len(CLASSES):
        raise DataError(lbl_file, f"label {int(labels.max())} out of range 0..{len(CLASSES) - 1}")
    return ImageDataset(
        name=NAME, split=split,
        images=torch.from_numpy(images.copy()).unsqueeze(1),
        labels=torch.from_numpy(labels.astype("int64")),
        classes=list(CLASSES), source=f"{d} ({origin})",
        checksum="sha256 ok" if verify else "not checked",
    )
