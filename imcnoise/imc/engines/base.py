"""What every engine shares: ONE traversal of the folded network, ONE folded neuron, ONE evaluate loop.

An engine is defined by its ``mac``: the digitised dot products of one binary layer for the
chips of a pass (:class:`Pass`), given the layer's input bits of each time slot (slot tau1 from
layer l-1, slot tau2 the residual input from layer l-2; eq. 11). Everything else -- Poisson input,
the digital first and output layers, OR-pooling, residual identity mapping, the neuron of Alg. 2,
recordings, error statistics and the evaluation loop -- is here, once.

The traversal works in the layouts of :mod:`.layouts` (channels innermost, chip axis K). The
input and the digital first layer are computed once per batch and shared by all chips; the
binary layers then run for each group of chips (:meth:`Engine.chip_groups`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ...models.inputs import encode_images
from ...models.metrics import EvalResult, iter_batches
from ...models.neurons import if_multistep, neuronal_charge, neuronal_fire, neuronal_reset
from ...models.vgg import Recording
from ...runtime import compiled
from ..program import ChipProgram, DigitalLayer, XnorLayer
from . import layouts as lay
from .ideal import IdealArray


@dataclass(frozen=True)
class Pass:
    """One pass of the traversal: a batch of images (their data-set indices, T time steps) on the
    chips ``chips`` of the engine. ``stream``: which random streams its reads draw from
    (``inference``, or ``adaptation`` for the per-chip adaptation pass: independent of every
    inference read at the same image index)."""

    index: torch.Tensor
    T: int
    chips: slice
    stream: str = "inference"


def folded_neuron(dot: torch.Tensor, T: int, gain: torch.Tensor | None, bias: torch.Tensor, theta_hat: torch.Tensor,
                  neuron: str) -> torch.Tensor:
    """The folded neuron of Alg. 2 on DOTS ``[T*B, K, L, rows]`` -> float32 outputs ``[T, B, K, L, rows]``
    and each chip's number of 1s (``[K]``, int64).

    "if" (B-SNN): charge v_hat += gain*dot - bias, fire iff v_hat > theta_hat, soft reset by
    theta_hat (the phases of :mod:`imcnoise.models.neurons`, in fp64). "sign" (BNN): out =
    gain*dot - bias > theta_hat. ``gain``/``bias``/``theta_hat`` are per row (last axis);
    ``gain`` None means all ones. Dot products are whole counts (exact in float32). Runs as one
    compiled loop: its products (gain in {0, 1}, spike x theta) are exact, so compiled and eager
    results are identical.
    """
    kernel = _sign_kernel if neuron == "sign" else _if_kernel
    return kernel(dot.float().view(T, -1, *dot.shape[1:]), gain, bias, theta_hat)


@compiled
def _if_kernel(d: torch.Tensor, gain: torch.Tensor | None, bias: torch.Tensor, theta_hat: torch.Tensor):
    v = torch.zeros(d.shape[1:], dtype=torch.float64, device=d.device)
    spikes = []
    for t in range(d.shape[0]):
        neuronal_charge(v, d[t] if gain is None else gain * d[t], bias)
        fired = neuronal_fire(v, theta_hat)
        spikes.append(fired.float())
        neuronal_reset(v, fired, theta_hat)
    out = torch.stack(spikes)
    return out, out.sum(dim=(0, 1, 3, 4), dtype=torch.int64)


@compiled
def _sign_kernel(d: torch.Tensor, gain: torch.Tensor | None, bias: torch.Tensor, theta_hat: torch.Tensor):
    v = d.double() if gain is None else gain * d.double()
    out = (v - bias > theta_hat).float()
    return out, out.sum(dim=(0, 1, 3, 4), dtype=torch.int64)


@dataclass
class ErrorStats:
    """Sensed count minus ideal popcount, per layer, over all reads of one chip's sense amplifiers."""

    reads: dict[int, int] = field(default_factory=dict)
    sum_err: dict[int, float] = field(default_factory=dict)
    sum_sq: dict[int, float] = field(default_factory=dict)
    sum_ideal: dict[int, float] = field(default_factory=dict)
    nonzero: dict[int, int] = field(default_factory=dict)
    max_abs: dict[int, float] = field(default_factory=dict)

    def add(self, layer: int, err: torch.Tensor, ideal: torch.Tensor) -> None:
        e = err.double()
        self.reads[layer] = self.reads.get(layer, 0) + e.numel()
        self.sum_err[layer] = self.sum_err.get(layer, 0.0) + float(e.sum())
        self.sum_sq[layer] = self.sum_sq.get(layer, 0.0) + float((e * e).sum())
        self.sum_ideal[layer] = self.sum_ideal.get(layer, 0.0) + float(ideal.double().sum())
        self.nonzero[layer] = self.nonzero.get(layer, 0) + int((e != 0).sum())
        self.max_abs[layer] = max(self.max_abs.get(layer, 0.0), float(e.abs().max()) if e.numel() else 0.0)

    def table(self) -> dict[int, dict[str, float]]:
        """Per layer: reads, mean and rms error (LSB), mean ideal count, fraction wrong, largest |error|."""
        out = {}
        for l, n in self.reads.items():
            out[l] = {"reads": n, "mean_err": self.sum_err[l] / n, "rms_err": (self.sum_sq[l] / n) ** 0.5,
                      "mean_ideal": self.sum_ideal[l] / n, "frac_wrong": self.nonzero[l] / n, "max_abs_err": self.max_abs[l]}
        return out


class Engine:
    """A chip program run on ``n_chips`` chip instances (1 for the integer engine); see the module doc."""

    def __init__(self, program: ChipProgram, device: str | torch.device = "cpu"):
        self.program = program
        self.device = torch.device(device)
        self._digital = {l.index: self._digital_tensors(l) for l in program.layers if isinstance(l, DigitalLayer)}
        self._neuron = {}
        for l in program.xnor_layers:
            gain = torch.from_numpy(l.input_dependent).double().to(self.device)
            self._neuron[l.index] = (None if bool((gain == 1).all()) else gain, torch.from_numpy(l.bias).double().to(self.device),
                                     torch.from_numpy(l.theta_hat).double().to(self.device))
        self._sources = {l.residual_from for l in program.xnor_layers if l.residual_from is not None}
        self.errors: list[ErrorStats] | None = None  # per chip, while error statistics are on
        self._ideal: IdealArray | None = None
        # per-chip neuron registers where adaptation re-folded them: layer -> (bias, theta_hat), [n_chips, 1, rows]
        self.registers: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        # called with (layer, dots, pass) after each binary layer's MAC, before its neurons (adaptation)
        self.observer = None
        self.stream = "inference"  # random streams of the reads of run_chips (Pass.stream)

    # ------------------------------------------------------------------ what an engine supplies
    @property
    def n_chips(self) -> int:
        return 1

    def chip_groups(self) -> list[slice]:
        """Chips that go through the binary layers together."""
        return [slice(0, self.n_chips)]

    def mac(self, layer: XnorLayer, slots: list[torch.Tensor], p: Pass) -> torch.Tensor:
        """Digitised dot of eq. (11), DOTS ``[N, Kc, L, rows]``, of the chips ``p.chips`` for the
        input bits of each slot (BITS / BITS_FC with a chip axis of Kc, or 1 when shared)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ digital layers
    def _digital_tensors(self, l: DigitalLayer) -> dict:
        t = lambda a: None if a is None else torch.from_numpy(np.asarray(a)).double().to(self.device)
        return {"weight": t(l.weight), "bias": t(l.bias), "bn_mean": t(l.bn_mean), "bn_var": t(l.bn_var),
                "bn_weight": t(l.bn_weight), "bn_bias": t(l.bn_bias)}

    def input(self, images_u8: torch.Tensor, index: torch.Tensor, input_seed: int) -> torch.Tensor:
        """``[T, B, C, H, W]``: Poisson spikes (B-SNN, keyed by image index) or the normalised image (BNN)."""
        p = self.program
        return encode_images(p.kind, p.timesteps, p.image_size, p.input_mean, p.input_std, images_u8.to(self.device),
                             index, input_seed, dtype=torch.float64)

    def first_layer(self, x: torch.Tensor) -> torch.Tensor:
        """Digital FP conv + batch norm + neuron (the float model's torch ops, in fp64): bits ``[T, B, C, H, W]``."""
        T, B = x.shape[:2]
        d = self._digital[self.program.first.index]
        z = F.conv2d(x.flatten(0, 1), d["weight"], None, 1, 1)
        z = F.batch_norm(z, d["bn_mean"], d["bn_var"], d["bn_weight"], d["bn_bias"], False, 0.0, self.program.first.bn_eps)
        z = z.view(T, B, *z.shape[1:])
        if self.program.kind == "bsnn":
            return if_multistep(z, self.program.threshold)[0].float()
        return (z > 0).float()

    def output_layer(self, bits: torch.Tensor, T: int) -> torch.Tensor:
        """Digital output layer on ``[T*B', F]`` bits, summed over T: ``[B', classes]``."""
        d = self._digital[self.program.output.index]
        h = bits.double() if self.program.kind == "bsnn" else bits.double() * 2 - 1
        return F.linear(h, d["weight"], d["bias"]).view(T, -1, d["weight"].shape[0]).sum(0)

    # ------------------------------------------------------------------ the traversal
    @torch.no_grad()
    def run_chips(self, images_u8: torch.Tensor, index: torch.Tensor, input_seed: int = 0,
                  recordings: list[Recording] | None = None) -> torch.Tensor:
        """Outputs ``[K, B, classes]`` of every chip; ``recordings[k]`` gets chip k's activations
        (MODEL layout when it keeps them, otherwise only firing-rate counts)."""
        p = self.program
        index = index.to(self.device)
        x = self.input(images_u8, index, input_seed)
        T = x.shape[0]
        first = self.first_layer(x)
        if recordings is not None:
            ones = int(torch.count_nonzero(first))  # shared by every chip: counted once
            for r in recordings:
                r.add(p.first.index, first, ones=ones)
        fb = lay.bits_from_nchw(first.flatten(0, 1))
        h0 = lay.or_pool(fb, 2) if p.first.pool_after else fb
        # residual inputs from the first layer are the same for every chip: mapped once
        shared = {l.index: lay.residual_input(fb, l) for l in p.xnor_layers if l.residual_from == p.first.index}
        outs = []
        for chips in self.chip_groups():
            recs = None if recordings is None else recordings[chips]
            outs.append(self._forward(Pass(index, T, chips, self.stream), h0, shared, recs))
        return torch.cat(outs, dim=0)

    def run(self, images_u8: torch.Tensor, index: torch.Tensor, input_seed: int = 0, recording: Recording | None = None):
        """Output membrane / logits ``[B, classes]`` of a single-chip engine."""
        if self.n_chips != 1:
            raise ValueError(f"run() is for one chip; this engine holds {self.n_chips} (use run_chips)")
        return self.run_chips(images_u8, index, input_seed, None if recording is None else [recording])[0]

    def _forward(self, ps: Pass, h: torch.Tensor, shared: dict[int, torch.Tensor], recordings) -> torch.Tensor:
        p = self.program
        kept = {}
        for layer in p.xnor_layers:
            if layer.kind == "fc" and h.dim() == 5:
                h = lay.flatten_fc(h)
            if layer.residual_from is None:
                slots = [h]
            else:
                res = shared.get(layer.index)
                slots = [h, lay.residual_input(kept.pop(layer.residual_from), layer) if res is None else res]
            dot = self.mac(layer, slots, ps)
            if self.errors is not None:
                self._add_errors(layer, slots, dot, ps)
            if self.observer is not None:
                self.observer(layer, dot, ps)
            out, ones = folded_neuron(dot, ps.T, *self.neuron_registers(layer, ps.chips), layer.neuron)
            if recordings is not None:
                for k, r in enumerate(recordings):
                    a = out[:, :, k]
                    r.add(layer.index, lay.to_model_layout(a, layer) if r.keep else a, ones=int(ones[k]))
            out = lay.neuron_out_to_bits(out, layer)
            if layer.index in self._sources:
                kept[layer.index] = out
            h = lay.or_pool(out, 2) if layer.pool_after else out
        if h.dim() == 5:
            h = lay.flatten_fc(h)
        n, kc = h.shape[:2]
        logits = self.output_layer(h.reshape(n * kc, -1), ps.T)  # rows ordered (t, b, k): sums over T
        return logits.view(-1, kc, logits.shape[-1]).transpose(0, 1)

    def neuron_registers(self, layer: XnorLayer, chips: slice):
        """(gain, bias, theta_hat) of the layer's neurons on the chips ``chips``: the program's (per
        row), or the chips' own where adaptation re-folded them (``[Kc, 1, rows]``)."""
        gain, bias, theta = self._neuron[layer.index]
        if layer.index in self.registers:
            b, t = self.registers[layer.index]
            return gain, b[chips], t[chips]
        return gain, bias, theta

    # ------------------------------------------------------------------ error statistics
    def ideal_dot(self, layer: XnorLayer, bits: torch.Tensor) -> torch.Tensor:
        """Exact match counts for one chip's input bits ``[N, C, H, W]`` / ``[N, F]``:
        ``[N, rows, H, W]`` / ``[N, rows]`` (:meth:`.ideal.IdealArray.dot`)."""
        if self._ideal is None:
            self._ideal = IdealArray(self.program, self.device)
        return self._ideal.dot(layer, bits)

    def _add_errors(self, layer: XnorLayer, slots: list[torch.Tensor], dot: torch.Tensor, ps: Pass) -> None:
        for i in range(dot.shape[1]):
            ideal = lay.dots_from_nchw(sum(self.ideal_dot(layer, lay.nchw(s[:, min(i, s.shape[1] - 1)])) for s in slots))[:, 0]
            self.errors[ps.chips.start + i].add(layer.index, dot[:, i].double() - ideal, ideal)


@torch.no_grad()
def evaluate(engine: Engine, data, *, batch_size: int = 64, input_seed: int = 0, error_stats: bool = False,
             activity: bool = False, progress: bool = False, keep_predictions: bool = False) -> list[EvalResult]:
    """Accuracy, per-layer firing rates and (optionally) per-layer sensed-count errors and the array
    activity per inference (analog engines; for the energy model) of every chip of ``engine`` on
    ``data``: one :class:`EvalResult` per chip, in the engine's chip order."""
    from tqdm.auto import tqdm

    t0 = time.time()
    K = engine.n_chips
    recs = [Recording() for _ in range(K)]
    correct = torch.zeros(K, dtype=torch.long)
    preds = []
    engine.errors = [ErrorStats() for _ in range(K)] if error_stats else None
    if activity:
        if not hasattr(engine, "activity"):
            raise ValueError(f"{type(engine).__name__} has no array activity to record (an analog engine has)")
        engine.activity = [{} for _ in range(K)]
    try:
        for idx in tqdm(list(iter_batches(len(data), batch_size)), desc=f"{K} chip(s)", disable=not progress, leave=False):
            out = engine.run_chips(data.images[idx], idx, input_seed, recs)
            p = out.argmax(2).cpu()  # [K, B]
            correct += (p == data.labels[idx].view(1, -1)).sum(1)
            if keep_predictions:
                preds.append(p)
        errs = [e.table() for e in engine.errors] if error_stats else [None] * K
        acts = engine.activity if activity else [None] * K
    finally:
        engine.errors = None
        if activity:
            engine.activity = None
    dt = time.time() - t0
    n = len(data)
    allp = torch.cat(preds, dim=1) if keep_predictions else None
    acts = [None if a is None else engine.activity_per_inference(a, n, k) for k, a in enumerate(acts)]
    return [EvalResult(int(correct[k]) / n, int(correct[k]), n, recs[k].rates(), None if allp is None else allp[k],
                       errors=errs[k], seconds=dt / K, activity=acts[k]) for k in range(K)]
