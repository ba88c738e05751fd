"""Integer XNOR inference engine for a chip program (paper Alg. 2, eq. 11).

Binary layers are computed on bits only: dot = popcount(XNOR(weight bits, input bits)) per row,
either on bit-packed 64-bit words (``backend="popcount"``: XOR + hardware popcount via
``numpy.bitwise_count``) or as an exact 0/1 matrix product ``[o, 1-o] . [w, 1-w]^T``
(``backend="gemm"``: the match count of a complementary-pair array with ideal devices; exact in
fp32 for M < 2**24). Both give identical integers. The neuron then runs the same
charge/fire/reset phases as the float model (:mod:`imcnoise.models.neurons`) on the folded
potential v_hat in fp64. The first and last layers are digital, full precision.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..models.encoding import poisson_spikes
from ..models.inputs import pad_images
from ..models.neurons import if_multistep
from ..models.vgg import identity_map, or_pool
from .program import ChipProgram, DigitalLayer, XnorLayer

BACKENDS = ("gemm", "popcount")


def folded_neuron(dot: torch.Tensor, T: int, gain: torch.Tensor | None, bias: torch.Tensor, theta_hat: torch.Tensor,
                  neuron: str, record_membrane: bool = False):
    """The folded neuron of Alg. 2 on counts ``dot`` ``[T*B, ...]`` -> float32 spikes ``[T, B, ...]``.

    "if" (B-SNN): v_hat += gain*dot - bias; fire iff v_hat > theta_hat; v_hat -= theta_hat on firing
    (the charge / fire / reset phases, in fp64). "sign" (BNN): out = gain*dot - bias > theta_hat.
    ``gain``/``bias``/``theta_hat`` broadcast against one time step; ``gain`` None means all ones.
    Every engine (integer, aihwkit, fast) calls this one function.
    """
    d = dot.view(T, -1, *dot.shape[1:])
    if neuron == "sign":
        v = d.double() if gain is None else gain * d.double()
        v = v - bias
        return (v > theta_hat).float(), (v - theta_hat if record_membrane else None)
    v = torch.zeros(d.shape[1:], dtype=torch.float64, device=d.device)
    out = torch.empty(d.shape, dtype=torch.float32, device=d.device)
    mem = torch.empty(d.shape, dtype=torch.float64, device=d.device) if record_membrane else None
    for t in range(T):
        v.add_(d[t] if gain is None else gain * d[t])  # charge (eq. 7)
        v.sub_(bias)
        if mem is not None:
            mem[t] = v
        fired = v > theta_hat  # fire (Alg. 2 line 13)
        out[t] = fired
        v.sub_(fired * theta_hat)  # soft reset
    return out, mem


def input_patches(bits: torch.Tensor, layer: XnorLayer) -> torch.Tensor:
    """The input vector of every array read: ``[N, positions, M]`` (conv: im2col with bit-0 padding)."""
    if layer.kind == "fc":
        return bits.reshape(bits.shape[0], 1, -1)
    p = F.unfold(bits.float(), layer.kernel, padding=layer.padding)  # [N, M, L]
    return p.transpose(1, 2)


def _pack_words(bits01: np.ndarray, pad_value: int) -> np.ndarray:
    """[..., M] 0/1 -> [..., ceil(M/64)] uint64, tail bits filled with ``pad_value``."""
    m = bits01.shape[-1]
    words = -(-m // 64)
    if words * 64 != m:
        fill = np.full(bits01.shape[:-1] + (words * 64 - m,), pad_value, dtype=np.uint8)
        bits01 = np.concatenate([bits01, fill], axis=-1)
    packed = np.packbits(bits01, axis=-1, bitorder="little")
    return np.ascontiguousarray(packed).view(np.uint64)


class XnorEngine:
    def __init__(self, program: ChipProgram, backend: str = "gemm", device: str | torch.device = "cpu", chunk: int = 4096):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.program = program
        self.backend = backend
        self.device = torch.device(device)
        self.chunk = chunk
        self._ga, self._gb, self._words = {}, {}, {}
        for l in program.xnor_layers:
            b = torch.from_numpy(l.bits).float().to(self.device)
            shape = (l.rows, l.in_features, l.kernel, l.kernel) if l.kind == "conv" else (l.rows, l.in_features)
            # ideal complementary pair: G_A = w (line A driven by o), G_B = 1 - w (line B by 1 - o)
            self._ga[l.index] = b.reshape(shape)
            self._gb[l.index] = (1 - b).reshape(shape)
            if backend == "popcount":
                # weight tail bits 0, input tail bits 1: XOR = 1 there, so tails never count as matches
                self._words[l.index] = _pack_words(l.bits, 0)
        self._digital = {l.index: self._digital_tensors(l) for l in program.layers if isinstance(l, DigitalLayer)}
        self._xnor_params = {l.index: (torch.from_numpy(l.gain).double().to(self.device),
                                       torch.from_numpy(l.bias).double().to(self.device),
                                       torch.from_numpy(l.theta_hat).double().to(self.device)) for l in program.xnor_layers}

    def _digital_tensors(self, l: DigitalLayer) -> dict:
        t = lambda a: None if a is None else torch.from_numpy(np.asarray(a)).double().to(self.device)
        return {"weight": t(l.weight), "bias": t(l.bias), "bn_mean": t(l.bn_mean), "bn_var": t(l.bn_var),
                "bn_weight": t(l.bn_weight), "bn_bias": t(l.bn_bias)}

    # ------------------------------------------------------------------ pieces
    def input(self, images_u8: torch.Tensor, index: torch.Tensor, input_seed: int) -> torch.Tensor:
        p = self.program
        images_u8 = pad_images(images_u8.to(self.device), p.image_size)
        if p.kind == "bsnn":
            return poisson_spikes(images_u8, index, p.timesteps, input_seed, dtype=torch.float64)
        x = images_u8.double() / 255.0
        c = x.shape[1]
        mean = torch.tensor(p.input_mean, dtype=torch.float64, device=x.device).expand(c).view(1, c, 1, 1)
        std = torch.tensor(p.input_std, dtype=torch.float64, device=x.device).expand(c).view(1, c, 1, 1)
        return ((x - mean) / std).unsqueeze(0)

    def first_layer(self, x: torch.Tensor, record_membrane: bool = False):
        """Digital FP conv + batch norm + neuron, the same torch ops as the float model in fp64."""
        T, B = x.shape[:2]
        d = self._digital[self.program.first.index]
        z = F.conv2d(x.flatten(0, 1), d["weight"], None, 1, 1)
        z = F.batch_norm(z, d["bn_mean"], d["bn_var"], d["bn_weight"], d["bn_bias"], False, 0.0, self.program.first.bn_eps)
        z = z.view(T, B, *z.shape[1:])
        if self.program.kind == "bsnn":
            spikes, mem = if_multistep(z, self.program.threshold, record_membrane)
            return spikes.float(), mem
        return (z > 0).float(), (z if record_membrane else None)

    def dot(self, layer: XnorLayer, bits: torch.Tensor) -> torch.Tensor:
        """popcount(XNOR) of every row with every input vector: ``[N, rows, H, W]`` (conv) or
        ``[N, rows]`` (fc), float64 holding exact integers."""
        if self.backend == "popcount":
            return self._dot_popcount(layer, bits)
        o = bits.float()
        ga, gb = self._ga[layer.index], self._gb[layer.index]
        if layer.kind == "conv":
            # match count = sum o*G_A + (1-o)*G_B; padded inputs are bit 0, i.e. 1 on the complement line
            p = layer.padding
            d = F.conv2d(o, ga, padding=p) + F.conv2d(F.pad(1 - o, (p,) * 4, value=1.0), gb)
        else:
            d = o @ ga.T + (1 - o) @ gb.T
        return d.double()

    def _dot_popcount(self, layer: XnorLayer, bits: torch.Tensor) -> torch.Tensor:
        patches = input_patches(bits, layer)  # [N, L, M]
        n, L, m = patches.shape
        flat = patches.reshape(n * L, m).to(torch.uint8).cpu().numpy()
        xw = _pack_words(flat, 1)
        ww = self._words[layer.index]
        res = np.empty((n * L, layer.rows), dtype=np.int64)
        step = max(1, self.chunk * 64 // max(1, layer.rows * ww.shape[1]))
        for i in range(0, n * L, step):
            mism = np.bitwise_count(xw[i:i + step, None, :] ^ ww[None, :, :]).sum(axis=2, dtype=np.int64)
            res[i:i + step] = ww.shape[1] * 64 - mism
        out = torch.from_numpy(res).to(self.device).double().view(n, L, layer.rows).transpose(1, 2)
        if layer.kind == "conv":
            return out.reshape(n, layer.rows, layer.in_size, layer.in_size)
        return out.squeeze(2)

    def xnor_layer(self, layer: XnorLayer, bits: torch.Tensor, res_bits: torch.Tensor | None, T: int,
                   record_membrane: bool = False):
        """Alg. 2 for one layer: MAC slot(s), accumulation, fire & reset. Returns output bits ``[T, B, ...]``."""
        d = self.mac(layer, bits, res_bits)
        gain, bias, theta_hat = self._xnor_params[layer.index]
        shape = (-1, 1, 1) if layer.kind == "conv" else (-1,)
        g = None if bool((gain == 1).all()) else gain.view(shape)
        return folded_neuron(d, T, g, bias.view(shape), theta_hat.view(shape), layer.neuron, record_membrane)

    def mac(self, layer: XnorLayer, bits: torch.Tensor, res_bits: torch.Tensor | None) -> torch.Tensor:
        """dot of eq. (11): slot tau1 (layer l-1 input) plus, for residual layers, slot tau2 (layer l-2)."""
        d = self.dot(layer, bits)
        if res_bits is not None:
            d = d + self.dot(layer, res_bits)
        return d

    def output_layer(self, bits: torch.Tensor, T: int) -> torch.Tensor:
        d = self._digital[self.program.output.index]
        h = bits.double() if self.program.kind == "bsnn" else bits.double() * 2 - 1
        return F.linear(h, d["weight"], d["bias"]).view(T, -1, d["weight"].shape[0]).sum(0)

    # ------------------------------------------------------------------ whole network
    @torch.no_grad()
    def run(self, images_u8: torch.Tensor, index: torch.Tensor, input_seed: int = 0, recording=None) -> torch.Tensor:
        """Output membrane / logits ``[B, classes]``. ``recording`` (a :class:`Recording`) gets
        every layer's output bits ``[T, B, ...]`` (pre-pool)."""
        x = self.input(images_u8, index, input_seed)
        T = x.shape[0]
        self._batch = (index.to(self.device), T)  # for engines whose per-read noise is keyed by image
        mem_on = recording is not None and recording.record_membrane
        bits, mem = self.first_layer(x, mem_on)
        first = self.program.first
        if recording is not None:
            recording.add(first.index, bits, mem)
        kept = {first.index: bits.flatten(0, 1)}
        h = or_pool(bits.flatten(0, 1), 2) if first.pool_after else bits.flatten(0, 1)
        sources = {l.residual_from for l in self.program.xnor_layers if l.residual_from is not None}
        for layer in self.program.xnor_layers:
            if layer.kind == "fc" and h.dim() > 2:
                h = h.flatten(1)
            res = identity_map(kept.pop(layer.residual_from), layer) if layer.residual_from is not None else None
            out, mem = self.xnor_layer(layer, h, res, T, mem_on)
            if recording is not None:
                recording.add(layer.index, out, mem)
            out = out.flatten(0, 1)
            if layer.index in sources:
                kept[layer.index] = out
            h = or_pool(out, 2) if layer.pool_after else out
        for k in [k for k in kept if k not in sources]:
            kept.pop(k)
        return self.output_layer(h.flatten(1) if h.dim() > 2 else h, T)


def evaluate_xnor(program: ChipProgram, data, *, batch_size: int = 256, input_seed: int = 0, backend: str = "gemm",
                  progress: bool = False, keep_predictions: bool = False):
    """Accuracy and per-layer firing rates of the XNOR engine on a data set."""
    from tqdm.auto import tqdm

    from ..models.metrics import EvalResult, iter_batches
    from ..models.vgg import Recording

    eng = XnorEngine(program, backend)
    rec = Recording()
    correct, preds = 0, []
    for idx in tqdm(list(iter_batches(len(data), batch_size)), desc="xnor eval", disable=not progress, leave=False):
        out = eng.run(data.images[idx], idx, input_seed, rec)
        p = out.argmax(1).cpu()
        correct += int((p == data.labels[idx]).sum())
        if keep_predictions:
            preds.append(p)
    return EvalResult(correct / len(data), correct, len(data), rec.rates(), torch.cat(preds) if keep_predictions else None)
