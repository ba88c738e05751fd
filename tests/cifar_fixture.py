"""Small CIFAR-10 / CIFAR-100 files in EXACTLY the official "python version" layout.

No real CIFAR is available offline, so the loader tests use these. The files mimic the official
ones (https://www.cs.toronto.edu/~kriz/cifar.html), which were written by Python 2's cPickle:

* protocol 2, every string a Python-2 ``str`` (opcodes SHORT_BINSTRING/BINSTRING), so under
  Python 3 ``pickle.load(f, encoding="bytes")`` gives ``bytes`` keys and values;
* numpy arrays reduced through ``numpy.core.multiarray._reconstruct`` (the pre-numpy-2 module
  name, as in the originals) with the raw pixel buffer as one BINSTRING;
* ``data``: uint8 ``[N, 3072]``; each row is the 1024 red, then 1024 green, then 1024 blue values
  of a 32x32 image, each plane row-major;
* CIFAR-100 ``cifar-100-python/{train,test,meta}`` (keys ``filenames``, ``batch_label``,
  ``fine_labels``, ``coarse_labels``, ``data``; meta ``fine_label_names``, ``coarse_label_names``);
* CIFAR-10 ``cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}`` (keys
  ``batch_label``, ``labels``, ``data``, ``filenames``; meta ``num_cases_per_batch``,
  ``label_names``, ``num_vis``);
* the ``.tar.gz`` archives hold the one top-level folder, as the official ones.

Usage: ``write_cifar100(tmp_path)`` -> :class:`Written` (paths plus the raw arrays written).
Run as a script to write a set: ``python tests/cifar_fixture.py OUT_DIR``.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import struct
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# The 20 CIFAR-100 superclasses and their 5 classes each (official list); the fine label names
# are the 100 classes in alphabetical order and the coarse names the superclasses in order.
CIFAR100_SUPERCLASSES: dict[str, tuple[str, ...]] = {
    "aquatic_mammals": ("beaver", "dolphin", "otter", "seal", "whale"),
    "fish": ("aquarium_fish", "flatfish", "ray", "shark", "trout"),
    "flowers": ("orchid", "poppy", "rose", "sunflower", "tulip"),
    "food_containers": ("bottle", "bowl", "can", "cup", "plate"),
    "fruit_and_vegetables": ("apple", "mushroom", "orange", "pear", "sweet_pepper"),
    "household_electrical_devices": ("clock", "keyboard", "lamp", "telephone", "television"),
    "household_furniture": ("bed", "chair", "couch", "table", "wardrobe"),
    "insects": ("bee", "beetle", "butterfly", "caterpillar", "cockroach"),
    "large_carnivores": ("bear", "leopard", "lion", "tiger", "wolf"),
    "large_man-made_outdoor_things": ("bridge", "castle", "house", "road", "skyscraper"),
    "large_natural_outdoor_scenes": ("cloud", "forest", "mountain", "plain", "sea"),
    "large_omnivores_and_herbivores": ("camel", "cattle", "chimpanzee", "elephant", "kangaroo"),
    "medium_mammals": ("fox", "porcupine", "possum", "raccoon", "skunk"),
    "non-insect_invertebrates": ("crab", "lobster", "snail", "spider", "worm"),
    "people": ("baby", "boy", "girl", "man", "woman"),
    "reptiles": ("crocodile", "dinosaur", "lizard", "snake", "turtle"),
    "small_mammals": ("hamster", "mouse", "rabbit", "shrew", "squirrel"),
    "trees": ("maple_tree", "oak_tree", "palm_tree", "pine_tree", "willow_tree"),
    "vehicles_1": ("bicycle", "bus", "motorcycle", "pickup_truck", "train"),
    "vehicles_2": ("lawn_mower", "rocket", "streetcar", "tank", "tractor"),
}
CIFAR100_COARSE = list(CIFAR100_SUPERCLASSES)
CIFAR100_FINE = sorted(c for cs in CIFAR100_SUPERCLASSES.values() for c in cs)
CIFAR100_FINE_TO_COARSE = {f: CIFAR100_COARSE.index(s) for s, fs in CIFAR100_SUPERCLASSES.items() for f in fs}
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

_NUMPY_MODULES = {"numpy._core.multiarray": "numpy.core.multiarray"}  # names as in the 2009 files


class Py2Pickler(pickle._Pickler):
    """Protocol-2 pickler that writes like Python 2's cPickle did for the CIFAR files.

    ``bytes`` and ASCII ``str`` both become Python-2 ``str`` (SHORT_BINSTRING / BINSTRING), and
    numpy's globals are named by their pre-numpy-2 module. Python 3's own protocol 2 would instead
    write ``bytes`` through ``_codecs.encode`` and ``str`` as BINUNICODE.
    """

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj):
        raw = obj.encode("ascii") if isinstance(obj, str) else bytes(obj)
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_py2_str

    def save_global(self, obj, name=None):
        module = getattr(obj, "__module__", None)
        module = _NUMPY_MODULES.get(module, module)
        name = name or obj.__qualname__
        self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode("ascii"))
        self.memoize(obj)


def py2_pickle_bytes(obj) -> bytes:
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def write_pickle(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(py2_pickle_bytes(obj))
    return path


def rows_from_images(images: np.ndarray) -> np.ndarray:
    """uint8 ``[N, 3, 32, 32]`` -> official rows ``[N, 3072]``, written out pixel by pixel.

    Deliberately not ``reshape``: the layout is spelled out from the official description
    (row ``r``: ``r[c*1024 + y*32 + x]`` is channel ``c`` (R, G, B) at row ``y``, column ``x``).
    """
    n = images.shape[0]
    rows = np.empty((n, 3072), dtype=np.uint8)
    for c in range(3):
        for y in range(32):
            for x in range(32):
                rows[:, c * 1024 + y * 32 + x] = images[:, c, y, x]
    return rows


def _images(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)


@dataclass
class Written:
    """What a writer produced: the folder, the archive, its md5, and the arrays per split."""

    root: Path  # the directory holding the data-set folder (pass as data_dir)
    folder: Path  # e.g. root / "cifar-100-python"
    archive: Path
    archive_md5: str
    rows: dict[str, np.ndarray] = field(default_factory=dict)  # split -> uint8 [N, 3072] as written
    labels: dict[str, np.ndarray] = field(default_factory=dict)  # split -> fine labels / labels
    coarse: dict[str, np.ndarray] = field(default_factory=dict)  # split -> coarse labels (CIFAR-100)
    classes: list[str] = field(default_factory=list)
    coarse_classes: list[str] = field(default_factory=list)


def _tar_gz(folder: Path, archive: Path) -> str:
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return hashlib.md5(archive.read_bytes()).hexdigest()


def write_cifar100(out: Path, n_train: int = 20, n_test: int = 10, *, seed: int = 0,
                   archive_dir: Path | None = None) -> Written:
    """``out/cifar-100-python/{train,test,meta}`` and ``archive_dir/cifar-100-python.tar.gz``
    (``archive_dir`` defaults to ``out/archive``)."""
    rng = np.random.default_rng(seed)
    folder = Path(out) / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    w = Written(Path(out), folder, Path(archive_dir or Path(out) / "archive") / "cifar-100-python.tar.gz", "",
                classes=list(CIFAR100_FINE), coarse_classes=list(CIFAR100_COARSE))
    for split, n, batch in (("train", n_train, "training batch 1 of 1"), ("test", n_test, "testing batch 1 of 1")):
        fine = [int(v) for v in rng.integers(0, 100, size=n)]
        coarse = [CIFAR100_FINE_TO_COARSE[CIFAR100_FINE[f]] for f in fine]
        rows = rows_from_images(_images(rng, n))
        write_pickle(folder / split, {
            b"filenames": [f"{CIFAR100_FINE[f]}_s_{i:06d}.png".encode() for i, f in enumerate(fine)],
            b"batch_label": batch.encode(),
            b"fine_labels": fine,
            b"coarse_labels": coarse,
            b"data": rows,
        })
        w.rows[split], w.labels[split], w.coarse[split] = rows, np.asarray(fine), np.asarray(coarse)
    write_pickle(folder / "meta", {b"fine_label_names": [c.encode() for c in CIFAR100_FINE],
                                   b"coarse_label_names": [c.encode() for c in CIFAR100_COARSE]})
    (folder / "file.txt~").write_bytes(b"")  # the official archive carries this stray file too
    w.archive_md5 = _tar_gz(folder, w.archive)
    return w


def write_cifar10(out: Path, per_batch: int = 4, n_test: int = 10, *, seed: int = 0,
                  archive_dir: Path | None = None) -> Written:
    """``out/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}`` (5 x ``per_batch``
    training images) and ``archive_dir/cifar-10-python.tar.gz``."""
    rng = np.random.default_rng(seed)
    folder = Path(out) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    w = Written(Path(out), folder, Path(archive_dir or Path(out) / "archive") / "cifar-10-python.tar.gz", "",
                classes=list(CIFAR10_CLASSES))
    batches = [(f"data_batch_{i}", "train", per_batch, f"training batch {i} of 5") for i in range(1, 6)]
    batches.append(("test_batch", "test", n_test, "testing batch 1 of 1"))
    for fname, split, n, batch in batches:
        labels = [int(v) for v in rng.integers(0, 10, size=n)]
        rows = rows_from_images(_images(rng, n))
        write_pickle(folder / fname, {
            b"batch_label": batch.encode(),
            b"labels": labels,
            b"data": rows,
            b"filenames": [f"{CIFAR10_CLASSES[c]}_s_{i:06d}.png".encode() for i, c in enumerate(labels)],
        })
        prev_rows, prev_labels = w.rows.get(split), w.labels.get(split)
        w.rows[split] = rows if prev_rows is None else np.concatenate([prev_rows, rows])
        w.labels[split] = np.asarray(labels) if prev_labels is None else np.concatenate([prev_labels, labels])
    write_pickle(folder / "batches.meta", {b"num_cases_per_batch": per_batch,
                                           b"label_names": [c.encode() for c in CIFAR10_CLASSES],
                                           b"num_vis": 3072})
    (folder / "readme.html").write_bytes(b"<meta HTTP-EQUIV=\"REFRESH\" content=\"0; url=http://www.cs.toronto.edu/~kriz/cifar.html\">\n")
    w.archive_md5 = _tar_gz(folder, w.archive)
    return w


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "cifar-fixture")
    for writer in (write_cifar100, write_cifar10):
        res = writer(target)
        print(f"{res.folder}  {res.archive} md5 {res.archive_md5}")
