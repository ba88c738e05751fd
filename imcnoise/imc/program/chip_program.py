"""The chip program: what an XNOR in-memory chip holds for one trained network.

Per binary layer (Alg. 2): unipolar weight bits of every row (output neuron), the count M1 of
0-bits (-1 weights) per row, the integer-domain bias and the folded threshold theta_hat. The
first and last layers stay digital and full precision (paper Sec. II). Saved as ``program.npz``
(arrays) + ``program.json`` (geometry, metadata) + ``summary.md`` (human-readable).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..config import ArrayConfig
from .mapping import map_layer
from .refold import RowStatistics

PROGRAM_FORMAT = "imcnoise-chip-program"
PROGRAM_VERSION = 1


@dataclass
class DigitalLayer:
    """Full-precision layer computed off-array: the first conv (+BN+neuron) or the output fc."""

    index: int
    kind: str  # "conv" | "fc"
    weight: np.ndarray  # float32
    bias: np.ndarray | None = None  # output layer only
    bn_mean: np.ndarray | None = None
    bn_var: np.ndarray | None = None
    bn_weight: np.ndarray | None = None
    bn_bias: np.ndarray | None = None
    bn_eps: float = 1e-5
    pool_after: bool = False
    output: bool = False

    @property
    def out_features(self) -> int:
        return int(self.weight.shape[0])


@dataclass
class XnorLayer:
    """One binary layer mapped onto XNOR arrays.

    Neuron update per time step (Alg. 2 with eq. 11 for residual layers, n_slots MACs):

        dot   = sum over slots of popcount(XNOR(bits_row, input_bits))
        v_hat = v_hat + u * dot - bias      ("if": B-SNN)   fire iff v_hat > theta_hat, then v_hat -= theta_hat
        out   = u * dot - bias > theta_hat  ("sign": BNN, no state, theta_hat = 0)

    with u = ``input_dependent`` (1 for every row but those below).

    Rows whose BN scale gamma*alpha is negative are stored with inverted bits (``flipped``):
    -sum_j w_j o_j = sum_j (-w_j) o_j, so the comparison keeps its direction. Rows with
    gamma*alpha = 0 have ``input_dependent`` 0: their drive does not depend on the input.
    """

    index: int
    kind: str  # "conv" | "fc"
    neuron: str  # "if" | "sign"
    in_features: int
    out_features: int
    in_size: int
    pool_after: bool
    bits: np.ndarray  # uint8 0/1 [rows, M]
    flipped: np.ndarray  # bool [rows]
    m1: np.ndarray  # int64 [rows]
    input_dependent: np.ndarray  # uint8 [rows]: 1, or 0 when gamma*alpha == 0 (the drive is -bias alone)
    bias: np.ndarray  # float64 [rows]
    theta_hat: np.ndarray  # float64 [rows]
    residual_from: int | None = None
    residual_pool: int = 1
    residual_repeat: int = 1
    kernel: int = 3
    padding: int = 1

    @property
    def rows(self) -> int:
        return int(self.bits.shape[0])

    @property
    def cols(self) -> int:
        """M: cells per row (inputs of one MAC)."""
        return int(self.bits.shape[1])

    @property
    def n_slots(self) -> int:
        return 2 if self.residual_from is not None else 1

    @property
    def positions(self) -> int:
        """Output positions per time step (array reads per slot per sub-array)."""
        return self.in_size * self.in_size if self.kind == "conv" else 1


@dataclass
class ChipProgram:
    kind: str  # "bsnn" | "bnn"
    timesteps: int
    threshold: float
    in_channels: int
    image_size: int
    num_classes: int
    input_mean: tuple[float, ...]
    input_std: tuple[float, ...]
    layers: list  # DigitalLayer first, XnorLayers, DigitalLayer output
    meta: dict = field(default_factory=dict)
    # per binary layer: the software model's per-row statistics of its counts on the adaptation
    # images (:mod:`..engines.adaptation`; which images in meta["statistics"]); empty when none
    statistics: dict = field(default_factory=dict)

    @property
    def first(self) -> DigitalLayer:
        return self.layers[0]

    @property
    def output(self) -> DigitalLayer:
        return self.layers[-1]

    @property
    def xnor_layers(self) -> list[XnorLayer]:
        return [l for l in self.layers if isinstance(l, XnorLayer)]

    # ----------------------------------------------------------------- geometry / summary
    def geometry(self, array: ArrayConfig | None = None) -> list[dict]:
        """Per binary layer: shape, sub-arrays (row tiles x column tiles), sensings per row, the
        fold's ranges, and array reads per inference on sub-arrays of ``array`` (default: the
        default chip's)."""
        array = array or ArrayConfig()
        out = []
        for l in self.xnor_layers:
            m = map_layer(l, array)
            vectors = self.timesteps * l.positions * l.n_slots  # input vectors applied to each sub-array
            out.append({
                "layer": l.index, "kind": l.kind, "neuron": l.neuron, "rows": l.rows, "cols": l.cols,
                "subarrays": f"{m.n_row_tiles}x{m.n_col_tiles}", "sensings_per_row": m.n_sensings,
                "residual": l.residual_from is not None, "residual_from": l.residual_from, "slots": l.n_slots,
                "m1_min": int(l.m1.min()), "m1_max": int(l.m1.max()),
                "theta_hat_min": float(l.theta_hat.min()), "theta_hat_max": float(l.theta_hat.max()),
                "bias_min": float(l.bias.min()), "bias_max": float(l.bias.max()),
                "flipped_rows": int(l.flipped.sum()), "input_independent_rows": int((l.input_dependent == 0).sum()),
                "positions": l.positions, "array_reads_per_inference": vectors * m.n_subarrays,
                "row_macs_per_inference": vectors * l.rows,
            })
        return out

    def summary_markdown(self, array: ArrayConfig | None = None) -> str:
        array = array or ArrayConfig()
        g = self.geometry(array)
        head = ("| layer | kind | rows | cols (M) | sub-arrays (row x col tiles) | residual | M1 range | theta_hat range | "
                "bias range | flipped rows | sensings / row | array reads / inference |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
        rows = "".join(
            f"| {r['layer']} | {r['kind']}/{r['neuron']} | {r['rows']} | {r['cols']} | {r['subarrays']} | "
            f"{'from ' + str(r['residual_from']) if r['residual'] else 'no'} | {r['m1_min']}..{r['m1_max']} | "
            f"{r['theta_hat_min']:.3f}..{r['theta_hat_max']:.3f} | {r['bias_min']:.2f}..{r['bias_max']:.2f} | "
            f"{r['flipped_rows']} | {r['sensings_per_row']} | {r['array_reads_per_inference']:,} |\n" for r in g)
        total = sum(r["array_reads_per_inference"] for r in g)
        return (f"# XNOR chip program: {self.kind.upper()} VGG11, T={self.timesteps}, theta={self.threshold}\n\n"
                f"Source: {self.meta.get('checkpoint', '?')} (sha256 {self.meta.get('checkpoint_sha256', '?')[:16]}...)\n\n"
                f"Sub-array size {array.rows} rows x {array.cols} cells (a convolution's column tile holds whole input "
                f"channels: floor({array.cols} / 9) x 9 cells), sensings of {array.sensing_cells} cells (whole channels "
                f"for a convolution); a read applies one input vector to one "
                f"sub-array. Residual layers use two slots (tau1, tau2) per time step (eq. 11).\n"
                f"Layer 1 ({self.first.kind}, {self.first.out_features} channels) and layer {self.output.index} "
                f"(output, {self.output.out_features} classes) are digital, full precision.\n\n"
                + head + rows + f"\nTotal XNOR array reads per inference: {total:,}\n")

    # ----------------------------------------------------------------- persistence
    def save(self, out_dir: str | Path, array: ArrayConfig | None = None) -> Path:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {}
        layers_json = []
        for l in self.layers:
            p = f"L{l.index}."
            if isinstance(l, DigitalLayer):
                d = {"type": "digital", "index": l.index, "kind": l.kind, "pool_after": l.pool_after, "output": l.output,
                     "bn_eps": l.bn_eps, "weight_shape": list(l.weight.shape)}
                arrays[p + "weight"] = l.weight
                for name in ("bias", "bn_mean", "bn_var", "bn_weight", "bn_bias"):
                    v = getattr(l, name)
                    if v is not None:
                        arrays[p + name] = v
            else:
                d = {"type": "xnor", "index": l.index, "kind": l.kind, "neuron": l.neuron, "in_features": l.in_features,
                     "out_features": l.out_features, "in_size": l.in_size, "pool_after": l.pool_after,
                     "rows": l.rows, "cols": l.cols, "kernel": l.kernel, "padding": l.padding,
                     "residual_from": l.residual_from, "residual_pool": l.residual_pool, "residual_repeat": l.residual_repeat}
                arrays[p + "bits_packed"] = np.packbits(l.bits, axis=1, bitorder="little")
                arrays[p + "flipped"] = l.flipped
                arrays[p + "m1"] = l.m1
                arrays[p + "input_dependent"] = l.input_dependent
                arrays[p + "bias"] = l.bias
                arrays[p + "theta_hat"] = l.theta_hat
                if l.index in self.statistics:
                    st = self.statistics[l.index]
                    d["statistics_n"] = st.n
                    arrays[p + "stat_total"] = st.total.numpy()
                    arrays[p + "stat_squares"] = st.squares.numpy()
            layers_json.append(d)
        np.savez_compressed(out / "program.npz", **arrays)
        doc = {
            "format": PROGRAM_FORMAT, "format_version": PROGRAM_VERSION, "kind": self.kind, "timesteps": self.timesteps,
            "threshold": self.threshold, "in_channels": self.in_channels, "image_size": self.image_size,
            "num_classes": self.num_classes, "input_mean": list(self.input_mean), "input_std": list(self.input_std),
            "layers": layers_json, "meta": self.meta, "geometry": self.geometry(array),
            "conventions": CONVENTIONS,
        }
        (out / "program.json").write_text(json.dumps(doc, indent=1))
        (out / "summary.md").write_text(self.summary_markdown(array))
        return out

    @classmethod
    def load(cls, directory: str | Path) -> "ChipProgram":
        d = Path(directory)
        doc = json.loads((d / "program.json").read_text())
        if doc.get("format") != PROGRAM_FORMAT or doc.get("format_version") != PROGRAM_VERSION:
            raise ValueError(f"{d / 'program.json'}: not a chip program of format {PROGRAM_FORMAT} v{PROGRAM_VERSION}")
        with np.load(d / "program.npz") as z:
            arrays = {k: z[k] for k in z.files}
        layers, statistics = [], {}
        for lj in doc["layers"]:
            p = f"L{lj['index']}."
            if "statistics_n" in lj:
                statistics[lj["index"]] = RowStatistics(lj["statistics_n"], torch.from_numpy(arrays[p + "stat_total"]),
                                                        torch.from_numpy(arrays[p + "stat_squares"]))
            if lj["type"] == "digital":
                layers.append(DigitalLayer(index=lj["index"], kind=lj["kind"], weight=arrays[p + "weight"],
                                           bias=arrays.get(p + "bias"), bn_mean=arrays.get(p + "bn_mean"),
                                           bn_var=arrays.get(p + "bn_var"), bn_weight=arrays.get(p + "bn_weight"),
                                           bn_bias=arrays.get(p + "bn_bias"), bn_eps=lj["bn_eps"],
                                           pool_after=lj["pool_after"], output=lj["output"]))
            else:
                bits = np.unpackbits(arrays[p + "bits_packed"], axis=1, count=lj["cols"], bitorder="little")
                layers.append(XnorLayer(index=lj["index"], kind=lj["kind"], neuron=lj["neuron"], in_features=lj["in_features"],
                                        out_features=lj["out_features"], in_size=lj["in_size"], pool_after=lj["pool_after"],
                                        bits=bits, flipped=arrays[p + "flipped"], m1=arrays[p + "m1"], input_dependent=arrays[p + "input_dependent" if p + "input_dependent" in arrays else p + "gain"],
                                        bias=arrays[p + "bias"], theta_hat=arrays[p + "theta_hat"],
                                        residual_from=lj["residual_from"], residual_pool=lj["residual_pool"],
                                        residual_repeat=lj["residual_repeat"], kernel=lj["kernel"], padding=lj["padding"]))
        return cls(kind=doc["kind"], timesteps=doc["timesteps"], threshold=doc["threshold"], in_channels=doc["in_channels"],
                   image_size=doc["image_size"], num_classes=doc["num_classes"], input_mean=tuple(doc["input_mean"]),
                   input_std=tuple(doc["input_std"]), layers=layers, meta=doc.get("meta", {}), statistics=statistics)


CONVENTIONS = {
    "input": "B-SNN: Poisson spikes, spike iff (h>>8)*255 < v<<24 with h the lowbias32 hash chain of (seed, image index, "
             "t*C*H*W + c*H*W + y*W + x), see imcnoise/models/encoding.py; BNN: (v/255 - mean)/std, one pass.",
    "padding": "images zero-padded to image_size; binary convs pad with bit 0 (no spike / -1 activation)",
    "column_order": "conv row j = c*k*k + ky*k + kx (PyTorch weight layout), fc row j = input feature",
    "bits": "weight bit 1 = +1, 0 = -1 (inverted where flipped); BNN activation bit 1 = +1",
    "xnor_layer": "dot = sum_slots popcount(XNOR(bits, in)); if: v += input_dependent*dot - bias, spike iff v > theta_hat, "
                  "v -= theta_hat on spike; sign: out = input_dependent*dot - bias > theta_hat",
    "pooling": "OR over 2x2 after layers with pool_after",
    "residual": "source layer's pre-pool output, OR-pooled by residual_pool, channels repeated residual_repeat times "
                "(channel c -> c mod C_src), flattened for fc",
    "digital_first": "conv (pad 0), batch norm (running stats), then the model's neuron (IF with threshold, or sign)",
    "digital_output": "linear with bias on the last hidden layer's outputs (+-1 for BNN), summed over T; argmax",
}
