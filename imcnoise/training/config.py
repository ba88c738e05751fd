"""Training hyper-parameters and presets."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ..models.vgg import MODEL_KINDS


@dataclass
class TrainConfig:
    model: str = "bsnn"
    dataset: str = "fashion-mnist"
    width: float = 0.25
    timesteps: int = 8
    residual: str = "paper"
    threshold: float = 1.0
    epochs: int = 10
    batch_size: int = 64
    lr: float = 2e-3
    optimizer: str = "adam"  # adam | sgd
    schedule: str = "cosine"  # cosine | constant
    warmup_epochs: float = 0.5
    weight_decay: float = 5e-4  # full-precision layers only; latent binary weights get none
    momentum: float = 0.9
    crop_padding: int = 4
    flip: bool = True
    seed: int = 0
    precision: str = "bf16"  # bf16 autocast (matmuls/convs) | fp32
    train_limit: int | None = None
    eval_limit: int | None = None
    eval_seed: int = 0  # Poisson seed of the evaluation input spikes
    # Pooling-aware batch-norm init: layers followed by OR-pooling start with BN bias beta < 0, so
    # each position fires rarely enough that the OR of a 2x2 window starts near balanced instead
    # of almost always 1 (measured on Fashion-MNIST, 25.6k images: BNN test acc 54 % -> 75 %).
    # None = -0.5 for the B-SNN, -1.0 for the BNN.
    pool_bn_bias_init: float | None = None

    def __post_init__(self):
        checks = [
            (self.model in MODEL_KINDS, "model", f"one of {MODEL_KINDS}"),
            (self.epochs >= 1, "epochs", ">= 1"),
            (self.batch_size >= 2, "batch_size", ">= 2"),
            (0 < self.lr <= 10, "lr", "in (0, 10]"),
            (self.optimizer in ("adam", "sgd"), "optimizer", "adam or sgd"),
            (self.schedule in ("cosine", "constant"), "schedule", "cosine or constant"),
            (self.precision in ("bf16", "fp32"), "precision", "bf16 or fp32"),
            (self.warmup_epochs >= 0, "warmup_epochs", ">= 0"),
            (self.weight_decay >= 0, "weight_decay", ">= 0"),
            (self.crop_padding >= 0, "crop_padding", ">= 0"),
            (1 <= self.timesteps <= 1024, "timesteps", "in 1..1024"),
            (self.train_limit is None or self.train_limit >= 2, "train_limit", ">= 2"),
            (self.eval_limit is None or self.eval_limit >= 1, "eval_limit", ">= 1"),
        ]
        for ok, name, allowed in checks:
            if not ok:
                raise ValueError(f"--{name.replace('_', '-')}={getattr(self, name)!r}: must be {allowed}")
        if self.model == "bnn":
            self.timesteps = 1
        if self.pool_bn_bias_init is None:
            self.pool_bn_bias_init = -0.5 if self.model == "bsnn" else -1.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# Presets: the paper's setting and the CPU settings of the shipped checkpoints.
PRESETS: dict[str, dict] = {
    "vgg11-cifar100": dict(dataset="cifar100", width=1.0, timesteps=8, epochs=200, batch_size=64, lr=1e-3,
                           crop_padding=4, flip=True),
    "fmnist-bsnn": dict(model="bsnn", dataset="fashion-mnist", width=0.25, timesteps=8, epochs=12, batch_size=64,
                        lr=2e-3, crop_padding=2, flip=True),
    "fmnist-bnn": dict(model="bnn", dataset="fashion-mnist", width=0.25, epochs=30, batch_size=64, lr=2e-3,
                       crop_padding=2, flip=True),
    "cifar10jpeg-bsnn": dict(model="bsnn", dataset="cifar10-jpeg", width=0.25, timesteps=8, epochs=12, batch_size=64,
                             lr=2e-3, crop_padding=4, flip=True),
    "cifar10jpeg-bnn": dict(model="bnn", dataset="cifar10-jpeg", width=0.25, epochs=20, batch_size=64, lr=2e-3,
                            crop_padding=4, flip=True),
}
