"""B-SNN and BNN: one VGG11 network class, two activations (paper Sec. II, Alg. 1).

* ``kind="bsnn"``: Poisson spikes in, integrate-and-fire neurons (soft reset, threshold theta,
  surrogate gradient eq. 4), T time steps; the output layer accumulates its membrane over T
  without firing and the loss is cross-entropy on u^{T,L} (eq. 2).
* ``kind="bnn"``: the plain binarized baseline of the same topology: normalised image in, one
  pass (T = 1), sign activations with a straight-through estimator, ±1 activations.
* ``kind="float"``: a full-precision network of the same plan (ReLU, max-pooling, no residuals),
  only the teacher for knowledge distillation; it does not map onto the XNOR chip.

Both: full-precision first and last layers, binary weights with alpha elsewhere (eq. 5), batch
norm after every hidden layer with statistics *shared across time steps* (one mu, sigma per
channel: the layer runs on the T*B batch), OR-pooling (max-pool of binary values), residual
inputs as extra binary MACs (see :mod:`.topology`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .binary import BinaryConv2d, BinaryLinear
from .neurons import IFNeuron, ReLUActivation, SignActivation
from .surrogate import DEFAULT_DELTA
from .topology import LayerSpec, parse_schedule, residual_sources, schedule_text, vgg11_plan

MODEL_KINDS = ("bsnn", "bnn", "float")  # float: the full-precision teacher of knowledge distillation


@dataclass
class ModelConfig:
    """Architecture; stored in every checkpoint and compared on load."""

    kind: str = "bsnn"
    width: float = 0.25
    timesteps: int = 8
    in_channels: int = 3
    image_size: int = 32
    num_classes: int = 10
    residual: str = "paper"
    threshold: float = 1.0
    delta: float = DEFAULT_DELTA
    # Input preparation is part of the model, so every engine feeds it identically:
    # native images are zero-padded to image_size; the BNN normalises with input_mean/std.
    input_mean: tuple[float, ...] = (0.5,)
    input_std: tuple[float, ...] = (0.25,)

    def __post_init__(self):
        if self.kind not in MODEL_KINDS:
            raise ValueError(f"model kind must be one of {MODEL_KINDS}, got {self.kind!r}")
        if self.kind != "bsnn":
            self.timesteps = 1
        if self.kind == "float":
            self.residual = "none"
        if not 1 <= self.timesteps <= 1024:
            raise ValueError(f"timesteps must be in 1..1024, got {self.timesteps}")
        if not 0 < self.width <= 8:
            raise ValueError(f"width must be in (0, 8], got {self.width}")
        if self.threshold <= 0:
            raise ValueError(f"threshold must be > 0, got {self.threshold}")
        self.residual = schedule_text(parse_schedule(self.residual))
        self.input_mean = tuple(float(v) for v in self.input_mean)
        self.input_std = tuple(float(v) for v in self.input_std)
        if len(self.input_mean) not in (1, self.in_channels) or len(self.input_std) != len(self.input_mean):
            raise ValueError(f"input_mean/input_std must have 1 or {self.in_channels} entries")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["input_mean"], d["input_std"] = list(self.input_mean), list(self.input_std)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config fields: {sorted(unknown)}")
        for name, value in d.items():  # a hand-edited field of the wrong type, named
            want = cls.__dataclass_fields__[name].type
            want = want if isinstance(want, str) else getattr(want, "__name__", str(want))
            ok = {"int": lambda v: isinstance(v, int) and not isinstance(v, bool),
                  "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
                  "str": lambda v: isinstance(v, str),
                  "tuple[float, ...]": lambda v: isinstance(v, (list, tuple)) and all(
                      isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)}.get(want)
            if ok is not None and not ok(value):
                raise ValueError(f"model_config.{name}: expected {want}, got {value!r}")
        return cls(**d)

    def plan(self) -> list[LayerSpec]:
        return vgg11_plan(self.width, self.in_channels, self.image_size, self.num_classes, parse_schedule(self.residual))


def or_pool(x: torch.Tensor, k: int) -> torch.Tensor:
    """Max-pool of binary values = OR of spikes (B-SNN) / of +1 activations (BNN)."""
    if k == 1:
        return x
    return F.max_pool2d(x, k) if x.dim() == 4 else x


def identity_map(src: torch.Tensor, spec: LayerSpec) -> torch.Tensor:
    """Residual identity mapping (topology docstring): OR-pool, repeat channels, flatten for fc."""
    x = or_pool(src, spec.residual_pool)
    if spec.residual_repeat > 1:
        x = x.repeat(1, spec.residual_repeat, *([1] * (x.dim() - 2)))
    if spec.kind == "fc" and x.dim() > 2:
        x = x.flatten(1)
    return x


class Recording:
    """Collects per-layer activations during a forward pass.

    ``keep=True`` stores every layer's activations ``[T, B, ...]`` (and, with
    ``record_membrane``, the membrane just before each firing decision, for tie analysis);
    otherwise only running sums for firing rates are kept (cheap, for evaluation).
    """

    def __init__(self, keep: bool = False, record_membrane: bool = False):
        self.keep = keep
        self.record_membrane = record_membrane
        self.spikes: dict[int, torch.Tensor] = {}
        self.membranes: dict[int, torch.Tensor] = {}
        self.ones: dict[int, float] = {}
        self.count: dict[int, int] = {}

    def add(self, index: int, a: torch.Tensor, membrane: torch.Tensor | None = None, ones: int | None = None) -> None:
        """Record layer ``index``'s activations ``a``; ``ones``: their count of 1s / +1s when already known."""
        ones = int(torch.count_nonzero(a > 0)) if ones is None else ones
        self.ones[index] = self.ones.get(index, 0.0) + ones
        self.count[index] = self.count.get(index, 0) + a.numel()
        if self.keep:
            self.spikes[index] = a
            if membrane is not None:
                self.membranes[index] = membrane

    def rates(self) -> dict[int, float]:
        """Fraction of 1-spikes (B-SNN) or of +1 activations (BNN) per layer."""
        return {i: self.ones[i] / max(1, self.count[i]) for i in sorted(self.ones)}


class BinaryVGG11(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.plan = config.plan()
        self.layers = nn.ModuleList()
        self.norms = nn.ModuleList()
        for s in self.plan:
            binary = s.binary and config.kind != "float"
            if s.kind == "conv":
                pad_value = 0.0 if config.kind == "bsnn" else -1.0  # bit 0 in both encodings
                layer = BinaryConv2d(s.in_features, s.out_features, pad_value=pad_value) if binary else nn.Conv2d(s.in_features, s.out_features, 3, padding=1, bias=False)
                norm = nn.BatchNorm2d(s.out_features)
            else:
                layer = BinaryLinear(s.in_features, s.out_features) if binary else nn.Linear(s.in_features, s.out_features, bias=s.output)
                norm = nn.Identity() if s.output else nn.BatchNorm1d(s.out_features)
            self.layers.append(layer)
            self.norms.append(norm)
        self.activation = {"bsnn": lambda: IFNeuron(config.threshold, config.delta), "bnn": SignActivation,
                           "float": ReLUActivation}[config.kind]()
        self._sources = residual_sources(self.plan)
        self.fuse_residual = True

    @property
    def timesteps(self) -> int:
        return self.config.timesteps

    def binary_layers(self):
        return [(s, l) for s, l in zip(self.plan, self.layers) if isinstance(l, (BinaryConv2d, BinaryLinear))]

    def clip_latent_(self) -> None:
        for _, layer in self.binary_layers():
            layer.clip_latent_()

    def forward(self, x: torch.Tensor, recording: Recording | None = None) -> torch.Tensor:
        """``x``: B-SNN input spikes ``[T, B, C, H, W]`` or BNN input ``[B, C, H, W]`` (or ``[1, B, ...]``).

        Returns the output membrane u^{T,L} (B-SNN, summed over T) or logits (BNN), ``[B, classes]``.
        """
        if x.dim() == 4:
            x = x.unsqueeze(0)
        T, B = x.shape[:2]
        h = x.flatten(0, 1)
        kept: dict[int, torch.Tensor] = {}
        for spec, layer, norm in zip(self.plan, self.layers, self.norms):
            if spec.kind == "fc" and h.dim() > 2:
                h = h.flatten(1)
            if isinstance(layer, (BinaryConv2d, BinaryLinear)):
                inputs = [h]
                if spec.residual_from is not None:
                    inputs.append(identity_map(kept.pop(spec.residual_from), spec))
                z = layer(inputs, fuse_inputs=self.fuse_residual)
            else:
                z = layer(h)
            if spec.output:
                return z.view(T, B, -1).sum(0)
            z = norm(z)
            mem = recording is not None and recording.record_membrane
            a, m = self.activation(z.view(T, B, *z.shape[1:]), record_membrane=mem)
            if recording is not None:
                recording.add(spec.index, a, m)
            a = a.flatten(0, 1)
            if spec.index in self._sources:
                kept[spec.index] = a
            h = or_pool(a, 2) if spec.pool_after else a
        raise AssertionError("plan has no output layer")
