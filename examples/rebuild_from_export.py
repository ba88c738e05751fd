#!/usr/bin/env python3
"""Rebuild the XNOR inference from an exported chip program alone (numpy only, no imcnoise).

    python examples/rebuild_from_export.py EXPORT_DIR            # uses EXPORT_DIR/samples.npz
    python examples/rebuild_from_export.py EXPORT_DIR --images my.npz

``imcnoise export CHECKPOINT --out EXPORT_DIR`` writes program.npz, program.json (geometry and the
conventions below), summary.md and samples.npz (a few test images with their indices, the
Poisson seed, and the predictions of imcnoise's own XNOR engine). This script re-implements the
whole inference from those files with numpy -- Poisson input, digital first layer, XNOR-popcount
layers with folded bias/threshold and two-slot residual MACs, OR-pooling, digital output layer
-- and checks its predictions against the stored ones. It is the reference a hardware designer
can port.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

M32 = np.uint64(0xFFFFFFFF)


def mix32(x: np.ndarray) -> np.ndarray:
    """lowbias32 hash on uint64 arrays holding 32-bit values."""
    x = x ^ (x >> np.uint64(16))
    x = (x * np.uint64(0x7FEB352D)) & M32
    x = x ^ (x >> np.uint64(15))
    x = (x * np.uint64(0x846CA68B)) & M32
    return x ^ (x >> np.uint64(16))


def poisson(images: np.ndarray, index: np.ndarray, T: int, seed: int) -> np.ndarray:
    """Spikes [T, N, C, H, W]: spike iff (h >> 8) * 255 < v << 24."""
    n = images.shape[0]
    e = images[0].size
    s = mix32(np.array([(seed & 0xFFFFFFFF) ^ ((seed >> 32) & 0xFFFFFFFF)], dtype=np.uint64))
    idx = index.astype(np.uint64)
    per_image = mix32(mix32(idx & M32) ^ s ^ (idx >> np.uint64(32)))
    counter = (np.arange(T, dtype=np.uint64)[:, None, None] * np.uint64(e) + np.arange(e, dtype=np.uint64)[None, None, :]) & M32
    h = mix32(mix32(counter ^ per_image[None, :, None]) ^ s) >> np.uint64(8)
    v = images.reshape(1, n, e).astype(np.uint64)
    return ((h * np.uint64(255)) < (v << np.uint64(24))).astype(np.float64).reshape(T, *images.shape)


def pad_to(images: np.ndarray, size: int) -> np.ndarray:
    h, w = images.shape[-2:]
    top, left = (size - h) // 2, (size - w) // 2
    return np.pad(images, ((0, 0), (0, 0), (top, size - h - top), (left, size - w - left)))


def im2col(x: np.ndarray, k: int, pad: int, pad_value: float) -> np.ndarray:
    """[N, C, H, W] -> [N, H*W, C*k*k] (stride 1, 'same' output), column order c*k*k + ky*k + kx."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=pad_value)
    cols = np.empty((n, c, k, k, h, w), dtype=x.dtype)
    for ky in range(k):
        for kx in range(k):
            cols[:, :, ky, kx] = xp[:, :, ky:ky + h, kx:kx + w]
    return cols.reshape(n, c * k * k, h * w).transpose(0, 2, 1)


def or_pool(x: np.ndarray, k: int) -> np.ndarray:
    if k == 1 or x.ndim != 4:
        return x
    n, c, h, w = x.shape
    return x.reshape(n, c, h // k, k, w // k, k).max(axis=(3, 5))


def if_neuron(drive: np.ndarray, threshold) -> np.ndarray:
    """Integrate-and-fire, soft reset, over the leading time axis."""
    v = np.zeros_like(drive[0])
    out = np.zeros_like(drive)
    for t in range(drive.shape[0]):
        v = v + drive[t]
        s = v > threshold
        out[t] = s
        v = v - s * threshold
    return out


def pack(bits01: np.ndarray, pad_value: int) -> np.ndarray:
    m = bits01.shape[-1]
    words = -(-m // 64)
    if words * 64 != m:
        bits01 = np.concatenate([bits01, np.full(bits01.shape[:-1] + (words * 64 - m,), pad_value, np.uint8)], axis=-1)
    return np.ascontiguousarray(np.packbits(bits01, axis=-1, bitorder="little")).view(np.uint64)


def xnor_dot(inp: np.ndarray, wbits: np.ndarray, lay: dict) -> np.ndarray:
    """popcount(XNOR(weight row, input vector)) for every row and array read."""
    if lay["kind"] == "conv":
        patches = im2col(inp, lay["kernel"], lay["padding"], 0.0)  # bit 0 padding
    else:
        patches = inp.reshape(inp.shape[0], 1, -1)
    n, L, m = patches.shape
    xw = pack(patches.reshape(n * L, m).astype(np.uint8), 1)  # input tail bits 1 ...
    ww = pack(wbits, 0)  # ... weight tail bits 0: tails never match
    dot = np.empty((n * L, wbits.shape[0]))
    for i in range(0, n * L, 512):
        dot[i:i + 512] = ww.shape[1] * 64 - np.bitwise_count(xw[i:i + 512, None, :] ^ ww[None]).sum(axis=2)
    dot = dot.reshape(n, L, -1).transpose(0, 2, 1)
    return dot.reshape(n, -1, lay["in_size"], lay["in_size"]) if lay["kind"] == "conv" else dot[:, :, 0]


def run(prog: dict, z: dict, images: np.ndarray, index: np.ndarray, seed: int) -> np.ndarray:
    T = prog["timesteps"]
    x = pad_to(images, prog["image_size"])
    if prog["kind"] == "bsnn":
        x = poisson(x, index, T, seed)
    else:
        c = x.shape[1]
        mean = np.broadcast_to(np.array(prog["input_mean"]), (c,)).reshape(1, c, 1, 1)
        std = np.broadcast_to(np.array(prog["input_std"]), (c,)).reshape(1, c, 1, 1)
        x = ((x / 255.0 - mean) / std)[None]
    B = images.shape[0]
    h = x.reshape(T * B, *x.shape[2:])
    kept, layers = {}, prog["layers"]
    sources = {l["residual_from"] for l in layers if l.get("residual_from")}
    for lay in layers:
        p = f"L{lay['index']}."
        if lay["type"] == "digital" and lay["output"]:
            act = h if prog["kind"] == "bsnn" else 2 * h - 1
            out = act.reshape(act.shape[0], -1) @ z[p + "weight"].astype(np.float64).T + z[p + "bias"].astype(np.float64)
            return out.reshape(T, B, -1).sum(0)
        if lay["type"] == "digital":  # first layer: conv, batch norm, neuron
            w = z[p + "weight"].astype(np.float64)
            y = (im2col(h, w.shape[2], 1, 0.0) @ w.reshape(w.shape[0], -1).T).transpose(0, 2, 1).reshape(h.shape[0], w.shape[0], *h.shape[2:])
            invstd = 1.0 / np.sqrt(z[p + "bn_var"].astype(np.float64) + lay["bn_eps"])
            alpha = invstd * z[p + "bn_weight"].astype(np.float64)
            beta = z[p + "bn_bias"].astype(np.float64) - z[p + "bn_mean"].astype(np.float64) * alpha
            y = y * alpha[None, :, None, None] + beta[None, :, None, None]
            y = y.reshape(T, B, *y.shape[1:])
            bits = if_neuron(y, prog["threshold"]) if prog["kind"] == "bsnn" else (y > 0).astype(np.float64)
        else:
            if lay["kind"] == "fc" and h.ndim > 2:
                h = h.reshape(h.shape[0], -1)
            wbits = np.unpackbits(z[p + "bits_packed"], axis=1, count=lay["cols"], bitorder="little")
            dot = xnor_dot(h, wbits, lay)
            if lay["residual_from"]:
                r = or_pool(kept.pop(lay["residual_from"]), lay["residual_pool"])
                r = np.concatenate([r] * lay["residual_repeat"], axis=1)
                dot = dot + xnor_dot(r.reshape(r.shape[0], -1) if lay["kind"] == "fc" else r, wbits, lay)  # slot tau2
            shape = (-1, 1, 1) if lay["kind"] == "conv" else (-1,)
            drive = z[p + "input_dependent"].reshape(shape) * dot - z[p + "bias"].reshape(shape)
            drive = drive.reshape(T, B, *drive.shape[1:])
            th = z[p + "theta_hat"].reshape(shape)
            bits = if_neuron(drive, th) if lay["neuron"] == "if" else (drive > th).astype(np.float64)
        bits = bits.reshape(T * B, *bits.shape[2:])
        if lay["index"] in sources:
            kept[lay["index"]] = bits
        h = or_pool(bits, 2) if lay["pool_after"] else bits
    raise ValueError("program has no output layer")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("export_dir", type=Path)
    ap.add_argument("--images", type=Path, help="npz with images (uint8 [N,C,H,W]), index, input_seed[, predictions]")
    args = ap.parse_args(argv)
    prog = json.loads((args.export_dir / "program.json").read_text())
    with np.load(args.export_dir / "program.npz") as f:
        z = {k: f[k] for k in f.files}
    with np.load(args.images or args.export_dir / "samples.npz") as f:
        s = {k: f[k] for k in f.files}
    out = run(prog, z, s["images"], s["index"], int(s["input_seed"]))
    pred = out.argmax(1)
    print(f"rebuilt {prog['kind']} inference on {len(pred)} images: predictions {pred.tolist()}")
    if "labels" in s:
        print(f"accuracy on these images: {(pred == s['labels']).mean() * 100:.1f} %")
    if "predictions" in s:
        same = int((pred == s["predictions"]).sum())
        print(f"{same}/{len(pred)} predictions equal imcnoise's XNOR engine")
        return 0 if same == len(pred) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
