"""Image-folder data sets: ``train/<class>/*`` and ``test/<class>/*`` (PNG/JPEG).

Read from a directory or a zip. Decoding tens of thousands of JPEGs takes tens of seconds, so
the decoded arrays are cached in the user cache directory under a key derived from the archive's
SHA-256 (for a directory: from the file list and sizes), and reused while the key matches.

Order: a folder lists one class after the other, so the first N test images would all be of the
first class (a sweep's ``dataset.limit`` and every "first N images" would measure one class). The
test split is therefore interleaved by class -- image 0 of every class, then image 1 of every
class, ... -- so that any first N test images are class-balanced. The training split keeps folder
order (training draws its own permutation every epoch; changing the order would change the runs
that produced the shipped checkpoints).
"""

from __future__ import annotations

import io
import os
import tempfile
import warnings
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .checksums import file_digest, bytes_digest
from .dataset import ImageDataset
from .errors import DataError
from .locate import cache_dir

SPLITS = ("train", "test")
EXTENSIONS = {".png", ".jpg", ".jpeg"}
CACHE_VERSION = 2  # 2: test split interleaved by class


def _list_entries(source: Path) -> dict[str, dict[str, list[str]]]:
    """{split: {class: [entry names sorted]}} for a zip or a directory."""
    if source.is_file():
        try:
            with zipfile.ZipFile(source) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError) as exc:
            raise DataError(source, f"not a readable zip archive ({exc})") from exc
    elif source.is_dir():
        names = [p.relative_to(source).as_posix() + ("/" if p.is_dir() else "") for p in source.rglob("*")]
    else:
        raise DataError(source, "no such file or directory")
    tree: dict[str, dict[str, list[str]]] = {s: {} for s in SPLITS}
    for n in names:
        parts = PurePosixPath(n).parts
        if any(p == "__MACOSX" or p.startswith(".") for p in parts):
            continue  # macOS resource forks (__MACOSX/, ._x.jpg) and hidden files are not images
        # tolerate one top-level folder in the archive (e.g. cifar10/train/...)
        if parts and parts[0] not in SPLITS and len(parts) >= 3 and parts[1] in SPLITS:
            parts = parts[1:]
        if len(parts) < 2 or parts[0] not in SPLITS:
            continue
        split, cls = parts[0], parts[1]
        bucket = tree[split].setdefault(cls, [])
        if len(parts) == 3 and not n.endswith("/") and PurePosixPath(parts[2]).suffix.lower() in EXTENSIONS:
            bucket.append(n)
    for split in SPLITS:
        if not tree[split]:
            raise DataError(source, f"missing split '{split}/' (expected {'/'.join(SPLITS)} folders with one sub-folder per class)")
    classes = sorted(set(tree["train"]) | set(tree["test"]))
    empty = [f"'{split}/{cls}/'" for split in SPLITS for cls in classes if not tree[split].get(cls)]
    if empty:
        many = len(empty) > 1
        raise DataError(source, f"empty class folder{'s' if many else ''}: {', '.join(empty[:10])}{' ...' if len(empty) > 10 else ''} "
                        f"ha{'ve' if many else 's'} no PNG/JPEG images (every class needs images in both train/ and test/)")
    for split in SPLITS:
        for files in tree[split].values():
            files.sort()
    return tree


def _decode(blob: bytes, name: str, source: Path) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(blob)) as im:
            im = im.convert("RGB") if im.mode not in ("L", "RGB") else im
            arr = np.asarray(im, dtype=np.uint8)
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, struct.error, ... on bad data
        kind = "not a PNG/JPEG image" if isinstance(exc, UnidentifiedImageError) else f"{type(exc).__name__}: {exc}"
        raise DataError(source, f"cannot decode image '{name}' ({kind}); expected a readable PNG/JPEG file") from exc
    return arr[:, :, None] if arr.ndim == 2 else arr


_DIGESTS: dict[tuple, str] = {}  # in-process: (path, size, mtime, inode) -> sha256 of an archive


def _archive_sha256(source: Path) -> str:
    """SHA-256 of the archive, hashed once per process while the file is unchanged (each split's
    load needs it; hashing the 62 MB cifar10-jpeg zip costs a noticeable part of a cached load)."""
    st = source.stat()
    key = (str(source.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)
    if key not in _DIGESTS:
        _DIGESTS[key] = file_digest(source)
    return _DIGESTS[key]


def _cache_key(source: Path) -> tuple[str, str]:
    """(cache key, checksum text)."""
    if source.is_file():
        sha = _archive_sha256(source)
        sums = source.parent / "SHA256SUMS"
        status = "sha256 " + sha[:16] + "..."
        if sums.is_file():
            lines = [line.split(maxsplit=1) for line in sums.read_text(errors="replace").splitlines()]
            listed = {f[1].strip().lstrip("*"): f[0].lower() for f in lines if len(f) == 2 and not f[0].startswith("#")}
            if source.name in listed:
                if listed[source.name] != sha:
                    raise DataError(source, f"checksum mismatch: sha256 {sha}, SHA256SUMS lists {listed[source.name]}")
                status = "sha256 ok (SHA256SUMS)"
        return sha, status
    stats = sorted((p.relative_to(source).as_posix(), p.stat().st_size, p.stat().st_mtime_ns) for p in source.rglob("*") if p.is_file())
    return bytes_digest(repr(stats).encode()), "directory (file list, sizes and times)"


def _decode_all(source: Path, tree) -> dict[str, np.ndarray]:
    from tqdm.auto import tqdm

    classes = sorted(tree["train"])
    out: dict[str, np.ndarray] = {}
    shape = None
    try:
        zf = zipfile.ZipFile(source) if source.is_file() else None
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(source, f"not a readable zip archive ({exc})") from exc
    try:
        total = sum(len(v) for s in SPLITS for v in tree[s].values())
        with tqdm(total=total, desc=f"decoding {source.name}", unit="img", disable=total < 2000) as bar:
            for split in SPLITS:
                imgs, labels = [], []
                for ci, cls in enumerate(classes):
                    for name in tree[split][cls]:
                        try:
                            blob = zf.read(name) if zf is not None else (source / name).read_bytes()
                        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
                            raise DataError(source, f"cannot read '{name}' ({exc}); the archive or folder is damaged") from exc
                        arr = _decode(blob, name, source)
                        if shape is None:
                            shape = arr.shape
                        elif arr.shape != shape:
                            raise DataError(source, f"image '{name}' has shape {arr.shape}; the first image has {shape} (all images must have one size)")
                        imgs.append(arr)
                        labels.append(ci)
                        bar.update()
                order = interleaved(labels) if split == "test" else np.arange(len(labels))
                out[f"{split}_images"] = np.stack(imgs)[order].transpose(0, 3, 1, 2).copy()
                out[f"{split}_labels"] = np.asarray(labels, dtype=np.int64)[order]
    finally:
        if zf is not None:
            zf.close()
    out["classes"] = np.asarray(classes)
    return out


def interleaved(labels: list[int]) -> np.ndarray:
    """Positions of class-sorted ``labels`` taken round-robin: the j-th image of every class, then the
    (j+1)-th, ... (classes with fewer images drop out when exhausted)."""
    labels = np.asarray(labels)
    rank = np.zeros(len(labels), dtype=np.int64)  # index of each image within its class
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rank[idx] = np.arange(len(idx))
    return np.lexsort((labels, rank))


_CACHE_KEYS = [f"{s}_{k}" for s in SPLITS for k in ("images", "labels")] + ["classes"]


def _read_cache(cache: Path, split: str) -> dict[str, np.ndarray] | None:
    """The arrays of one split (and the class names) from the decode cache; None when the cache
    is missing pieces or damaged (it is then rebuilt, never trusted)."""
    try:
        with np.load(cache, allow_pickle=False) as z:
            if any(k not in z.files for k in _CACHE_KEYS):
                return None
            arrays = {k: z[k] for k in (f"{split}_images", f"{split}_labels", "classes")}
    except Exception:  # noqa: BLE001 - zipfile, zlib, numpy format errors, OSError, ...
        return None
    images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
    if images.dtype != np.uint8 or images.ndim != 4 or labels.shape != images.shape[:1] or labels.dtype != np.int64:
        return None
    return arrays


def _write_cache(cache: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write the decode cache atomically; a cache that cannot be written only costs time."""
    tmp = None
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache.parent, prefix=cache.name + ".", suffix=".part.npz")
        os.close(fd)
        np.savez(tmp, **arrays)
        os.replace(tmp, cache)
    except OSError as exc:
        warnings.warn(f"could not write the decode cache {cache}: {exc}", stacklevel=3)
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def load(name: str, source: Path, split: str, *, use_cache: bool = True) -> ImageDataset:
    if split not in SPLITS:
        raise DataError(source, f"no split {split!r}; choose one of {list(SPLITS)}")
    key, status = _cache_key(source)
    cache = cache_dir() / f"imagefolder-{name}-{key[:24]}-v{CACHE_VERSION}.npz"
    arrays = None
    if use_cache and cache.is_file():
        arrays = _read_cache(cache, split)
    origin = "cached decode" if arrays is not None else "decoded"
    if arrays is None:
        arrays = _decode_all(source, _list_entries(source))
        if use_cache:
            _write_cache(cache, arrays)
    return ImageDataset(
        name=name, split=split,
        images=torch.from_numpy(arrays[f"{split}_images"]), labels=torch.from_numpy(arrays[f"{split}_labels"]),
        classes=[str(c) for c in arrays["classes"]], source=f"{source} ({origin})", checksum=status,
    )
