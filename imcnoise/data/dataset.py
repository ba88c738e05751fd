"""In-memory image data set."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class ImageDataset:
    """One split of a data set, held whole in RAM.

    ``images`` is uint8 ``[N, C, H, W]``; ``labels`` int64 ``[N]``. ``extra`` holds additional
    label sets (e.g. CIFAR-100 ``coarse_labels`` with ``coarse_classes``).
    """

    name: str
    split: str
    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    source: str
    checksum: str = "not checked"
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(f"{self.name}/{self.split}: images must be uint8 [N,C,H,W], got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"{self.name}/{self.split}: {self.labels.shape[0]} labels for {self.images.shape[0]} images")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def shape(self) -> tuple[int, int, int]:
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)

    def class_counts(self) -> list[int]:
        return torch.bincount(self.labels, minlength=self.num_classes).tolist()

    def subset(self, n: int | None) -> "ImageDataset":
        """The first ``n`` images (deterministic); the whole set when ``n`` is None."""
        if n is None or n >= len(self):
            return self
        if n <= 0:
            raise ValueError(f"subset size must be positive, got {n}")
        extra = {k: (v[:n] if isinstance(v, torch.Tensor) and v.shape[:1] == self.labels.shape else v) for k, v in self.extra.items()}
        return ImageDataset(self.name, self.split, self.images[:n], self.labels[:n], self.classes, self.source, self.checksum, extra)
