"""Engines that run chip instances of an analog configuration.

What the analog engines share: the chips (seeds), the mapping of layers onto sub-arrays and
sensings, the static state of each chip -- its cells (devices in series with access
transistors), the scheme's line weights (IR drop of every summing line, :mod:`..physics.line`),
comparator offsets, buffer gains and the calibration of every line, measured through the sense
path -- and the MAC of a layer = the signal of every read (:meth:`AnalogEngine.read_signals`, the
one thing an analog engine supplies) passed through the one sense path
(:func:`~imcnoise.imc.physics.sense.sense`), the sensings of a row added digitally.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ...runtime import compiled
from ...seeding import derive_seed, generator
from ..config import AnalogConfig, cell_off_ratio
from ..physics.calibration import LatchCalibration, LayerLines, LineCalibration, calibration_scheme, trimmed_offsets
from ..physics.cell import GRID, access_ratio, cell_conductances, nominal_off_ratio, quantize_conductance
from ..physics.devices import make_noise_model, program_many
from ..physics.energy import LayerActivity
from ..physics.limits import check_buildable
from ..physics.noise import ReadNoise
from ..physics.schemes import SensingWeights, make_scheme
from ..physics.sense import PeripheryDraw, SenseStatic, SlotRead, draw_periphery, noise_sigma_v, offset_sigma_v, sense
from ..program import ChipProgram, LayerMap, XnorLayer, map_layer
from .base import Engine, Pass

# Energy accumulators of merged-line voltage sensing count the signal in steps of 1/8 G_on (their
# squares summed over a run stay exact in int64; 1/8 unit per read is far below the energy's precision).
_COARSE = 8.0


# Reads (elements of the reads tensor, [N, K, L, S, rows]) sensed per chunk of samples: the sense
# path makes ~10 passes over them, so they should stay in the last-level cache. Measured by setting
# IMCNOISE_READS_CHUNK (2^18 .. 2^24) around the B-SNN fast engine on a 2-core AMD EPYC (2 MiB L2,
# 32 MiB L3): best at 2^21 .. 2^23 (results/benchmarks.md). IMCNOISE_READS_CHUNK overrides it (0: no chunking).
READS_PER_CHUNK = 1 << 22


def samples_per_chunk(reads_per_sample: int) -> int:
    """Samples whose reads make one chunk of about :data:`READS_PER_CHUNK` elements (at least one)."""
    budget = int(os.environ.get("IMCNOISE_READS_CHUNK", READS_PER_CHUNK))
    if budget <= 0:
        return 1 << 62
    return max(1, budget // max(1, reads_per_sample))


def _line_sums(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per line (the last two axes, ``[S, rows]``) of one chip's reads ``x`` (``[N, L, S, rows]``, units
    of G_on): the sum of round(x 2**12) (grid steps) and of round(x 8)**2 (squares in steps of 1/8
    unit), both in float64 -- exact: every term is an integer, |round(x 2**12)| < 2**20 and
    round(x 8)**2 < 2**22, so a sum over N L < 2**30 terms stays below 2**53. Summed over positions
    first, then samples: each sample's reads are one contiguous block, which the compiled loop
    walks 1.5-2.5x faster than the whole tensor column by column (measured on 4 M-read chunks)."""
    q = torch.round(x * GRID).sum(dim=1, dtype=torch.float64)
    c = torch.round(x * _COARSE)
    return q.sum(dim=0), (c * c).sum(dim=1, dtype=torch.float64).sum(dim=0)


line_sums = compiled(_line_sums, work=lambda x: x.numel())


@compiled(work=lambda x: x.numel())
def held_squares(x: torch.Tensor) -> torch.Tensor:
    """Per sample of one chip's held-slot reads ``x`` (``[N, L, S, rows]``): the sum of
    round(x 2**12)**2 in int64 (exact: integer arithmetic)."""
    q = torch.round(x * GRID).to(torch.int64)
    return (q * q).sum(dim=(1, 2, 3))


def driven_inputs(layer: XnorLayer, bits: torch.Tensor) -> int:
    """Input cells at 1 summed over the reads of one slot of one chip (``bits`` ``[N, H, W, C]`` or
    ``[N, F]``): per output position, the 1s of its receptive field (bit-0 padding). Exact: float64
    sums of integers far below 2**53."""
    if layer.kind != "conv":
        return int(bits.double().sum())
    per_pixel = bits.double().sum(-1).unsqueeze(1)  # [N, 1, H, W]
    k = layer.kernel
    fields = torch.nn.functional.conv2d(per_pixel, torch.ones(1, 1, k, k, dtype=torch.float64), padding=layer.padding)
    return int(fields.sum())


@dataclass
class ChipLayer:
    """The static state of one layer of the engine's chips (lines ``[S, rows]``, or ``[K, S, rows]``)."""

    weights: SensingWeights  # [.., S, rows, n]
    periphery: PeripheryDraw
    calibration: LineCalibration


def stack_layers(states: list[ChipLayer]) -> ChipLayer:
    s = lambda get: torch.stack([get(x) for x in states])
    w = [x.weights for x in states]
    opt = lambda get: None if get(w[0]) is None else torch.stack([get(x) for x in w])
    vpu = w[0].vpu if isinstance(w[0].vpu, float) else torch.stack([x.vpu for x in w])
    weights = SensingWeights(torch.stack([x.w_a for x in w]), torch.stack([x.w_b for x in w]), opt(lambda x: x.sq_a),
                             opt(lambda x: x.sq_b), vpu, opt(lambda x: x.square_total))
    return ChipLayer(weights, PeripheryDraw(s(lambda x: x.periphery.offset_v), s(lambda x: x.periphery.buffer_gain)),
                     LineCalibration(s(lambda x: x.calibration.baseline), s(lambda x: x.calibration.lsb),
                                     s(lambda x: x.calibration.correction_lsb)))


def split_sensings(tiles: list[torch.Tensor], m: LayerMap) -> tuple[torch.Tensor, torch.Tensor]:
    """Per column tile ``[R, 2*cells]`` (A devices, then B) -> the A and B parts of every sensing,
    ``[S, R, n_max]`` (zero beyond a sensing's cells)."""
    n = max(m.sensing_cells(s) for s in range(m.n_sensings))
    R = tiles[0].shape[0]
    ga = torch.zeros(m.n_sensings, R, n, dtype=tiles[0].dtype)
    gb = torch.zeros_like(ga)
    for s, ((a, b), c) in enumerate(zip(m.sensings, m.sensing_tile)):
        c0 = m.col_tiles[c][0]
        cells = m.cells(c)
        g = tiles[c]
        ga[s, :, :b - a] = g[:, a - c0:b - c0]
        gb[s, :, :b - a] = g[:, cells + a - c0:cells + b - c0]
    return ga, gb


class AnalogEngine(Engine):
    def __init__(self, program: ChipProgram, config: AnalogConfig, chip_seeds: list[int], device: str | torch.device = "cpu"):
        super().__init__(program, device)
        check_buildable(config)
        self.config = config
        self.chip_seeds = [int(s) for s in chip_seeds]
        self.scheme = make_scheme(config)
        self.device_off_ratio = nominal_off_ratio(config.device)  # device targets of programming
        # a nominal cell's G_off / G_on as the cells are held: on the conductance grid (the engines' unit is the cell's G_on)
        self.off_ratio = float(quantize_conductance(torch.tensor(cell_off_ratio(config), dtype=torch.float64)))
        self.access = access_ratio(config)
        self.noise_model = make_noise_model(config.device)
        self.maps: dict[int, LayerMap] = {l.index: map_layer(l, config.array) for l in program.xnor_layers}
        self._calibrate = calibration_scheme(config, self.scheme, self.off_ratio)
        self._zero_bits, self._cells = {}, {}
        for l in program.xnor_layers:
            m = self.maps[l.index]
            bits = torch.from_numpy(l.bits)
            self._zero_bits[l.index] = torch.stack([(bits[:, a:b] == 0).sum(1) for a, b in m.sensings])
            cells = [m.sensing_cells(s) for s in range(m.n_sensings)]
            self._cells[l.index] = cells[0] if len(set(cells)) == 1 else torch.tensor(cells, dtype=torch.float32,
                                                                                       device=self.device).view(-1, 1)
        # per layer: static state of the chips (one chip: [S, rows]; stacked: [K, S, rows])
        self.state: dict[int, ChipLayer] = {}
        self.activity: list[dict[int, list[int]]] | None = None  # per chip, while recorded (energy): integer sums

    @property
    def n_chips(self) -> int:
        return len(self.chip_seeds)

    # ------------------------------------------------------------------ programming a chip
    def reference_rows(self, chip_seeds: list[int], layer: XnorLayer) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Cells of the reference rows of every sub-array of each chip, split into sensings
        ``[K, S, row tiles, R, n]`` (A: on-state devices, B: off-state; seeds per sub-array, as every
        engine draws them)."""
        cal = self.config.calibration
        if cal.mode == "nominal" or (cal.mode == "trim" and self.scheme.name != "bitwise"):
            return None
        m = self.maps[layer.index]
        R = cal.reference_columns
        subs = [(c, ri) for c in range(m.n_col_tiles) for ri in range(m.n_row_tiles)]
        targets = [torch.cat([torch.ones(R, m.cells(c)), torch.full((R, m.cells(c)), self.device_off_ratio)]).float()
                   for c, _ in subs]
        seeds = [derive_seed(s, "reference", layer.index, ri, c) for s in chip_seeds for c, ri in subs]
        drawn = iter(program_many(self.noise_model, targets * len(chip_seeds), seeds, self.config.t_inference_s))
        ref_a, ref_b = [], []
        for _ in chip_seeds:
            g = {k: cell_conductances(next(drawn), self.access) for k in subs}
            a_k, b_k = [], []
            for ri in range(m.n_row_tiles):
                # each reference row as a pair row: A = on-state device j, B = off-state device j
                tiles = [torch.cat([g[c, ri][:R], g[c, ri][R:]], dim=1) for c in range(m.n_col_tiles)]
                a, b = split_sensings(tiles, m)
                a_k.append(a)
                b_k.append(b)
            ref_a.append(torch.stack(a_k, dim=1))
            ref_b.append(torch.stack(b_k, dim=1))
        return torch.stack(ref_a), torch.stack(ref_b)

    def chip_layers(self, chip_seeds: list[int], layer: XnorLayer, devices: list[list[torch.Tensor]]) -> list[ChipLayer]:
        """The static state of one layer of each chip from its programmed devices (``devices[k]``:
        ``[rows, 2*cells]`` per column tile, normalised to the device's G_on): cells, line weights
        (computed for all chips at once), periphery, calibration."""
        cfg, m = self.config, self.maps[layer.index]
        devs = [split_sensings(d, m) for d in devices]
        # cells: devices in series with their access transistors (all chips at once; padding stays 0)
        ga, gb = (cell_conductances(torch.stack([d[i] for d in devs]), self.access) for i in (0, 1))  # [K, S, rows, n]
        S, rows = m.n_sensings, layer.rows
        row_tile = torch.tensor([i // cfg.array.rows for i in range(rows)])
        cells = torch.tensor([m.sensing_cells(s) for s in range(S)])
        refs = self.reference_rows(chip_seeds, layer)
        bitwise = self.scheme.name == "bitwise"
        if not bitwise:
            weights = self.scheme.weights(ga, gb)
            if refs is not None:
                ref_w = self.scheme.weights(*refs)
        out = []
        for k, seed in enumerate(chip_seeds):
            per = draw_periphery(cfg, seed, layer.index, S, rows)
            ref_k = None if refs is None else (refs[0][k], refs[1][k])
            if bitwise:
                w = self._latch_weights(seed, layer, ga[k], gb[k], ref_k, row_tile, cells)
                # the zero-count level of a popcount: 0, or with the gated mapping -M1 (count = M1 + sum x (2 b - 1))
                zero = self.scheme.mapping.zero_count_level(torch.zeros(S, rows), torch.ones(S, rows), self._zero_bits[layer.index])
                cal = LineCalibration(zero.float(), torch.ones(S, rows), torch.zeros(S, rows))
            else:
                w = weights.chip(k)
                lines = LayerLines(seed, layer.index, cells, w.w_a, w.w_b, w.sq_b, w.vpu, self._scheme_static(w),
                                   self._zero_bits[layer.index], per, layer.n_slots, row_tile)
                if refs is not None:
                    rw = ref_w.chip(k)
                    lines.ref_a, lines.ref_b = rw.w_a, rw.w_b
                    lines.ref_sq_a, lines.ref_sq_b = rw.sq_a, rw.sq_b
                    lines.ref_vpu = rw.vpu
                    if cfg.calibration.reads is not None:  # the reference rows' own comparators
                        z = torch.randn(rw.w_a.shape[:3], generator=generator(seed, "periphery-reference", layer.index),
                                        dtype=torch.float64)
                        lines.ref_offset_v = z * offset_sigma_v(cfg)
                        if cfg.calibration.mode == "reference_trim":  # auto-zero trimmed before they are read
                            lines.ref_offset_v = trimmed_offsets(lines.ref_offset_v, cfg, seed, layer.index, "reference-trim")
                cal = self._calibrate(lines)
            to = lambda t: t if t is None or isinstance(t, float) else t.to(self.device)
            w = SensingWeights(to(w.w_a), to(w.w_b), to(w.sq_a), to(w.sq_b),
                               w.vpu if isinstance(w.vpu, float) else to(w.vpu.float()), to(w.square_total))
            out.append(ChipLayer(w, PeripheryDraw(to(per.offset_v), to(per.buffer_gain)),
                                 LineCalibration(to(cal.baseline), to(cal.lsb), to(cal.correction_lsb))))
        return out

    def chip_layer(self, chip_seed: int, layer: XnorLayer, devices: list[torch.Tensor]) -> ChipLayer:
        """:meth:`chip_layers` of one chip."""
        return self.chip_layers([chip_seed], layer, [devices])[0]

    def _scheme_static(self, w: SensingWeights) -> dict:
        return {"total": w.total.float(), "square_total": w.square_total}

    def _latch_weights(self, chip_seed, layer, ga, gb, refs, row_tile, cells) -> SensingWeights:
        """Bitwise: the latches' decisions (or probabilities) for every cell and input state."""
        cfg, m = self.config, self.maps[layer.index]
        lc = LatchCalibration(cfg, self.off_ratio)
        ref = lc.reference(*(refs if refs is not None else (None, None)), cells)  # [S, row tiles]
        ref_cell = ref[:, row_tile if ref.shape[1] > 1 else torch.zeros_like(row_tile)].unsqueeze(-1)  # [S, rows, 1]
        # one latch per column of a sub-array (shared by its rows): offsets [row tiles, M]
        z = torch.randn(m.n_row_tiles, layer.cols, generator=generator(chip_seed, "latch", layer.index), dtype=torch.float64)
        off = lc.residual_offset(z * offset_sigma_v(cfg), chip_seed, layer.index)  # [row tiles, M]
        n = ga.shape[-1]
        col = torch.zeros(m.n_sensings, n, dtype=torch.long)
        for s, (a, b) in enumerate(m.sensings):
            col[s, :b - a] = torch.arange(a, b)
        off_cell = off[row_tile][:, col].permute(1, 0, 2)  # [S, rows, n]
        return self.scheme.latch_weights(ga, gb, ref_cell, off_cell, noise_sigma_v(cfg))

    # ------------------------------------------------------------------ what an engine supplies
    def read_signals(self, layer: XnorLayer, bits: torch.Tensor, chips: slice, squared: bool = False) -> torch.Tensor:
        """The signal of every read, READS ``[N, Kc, L, S, rows]`` (units of the cell's G_on), of the
        chips ``chips`` for one slot's input bits; ``squared``: the same reads on the squared weights
        (device read noise). Fresh tensors: the sense path works in them."""
        raise NotImplementedError

    def sense_static(self, layer: XnorLayer, chips: slice) -> SenseStatic:
        """What the sense path of the layer knows of the chips ``chips`` (``[Kc, 1, S, rows]``)."""
        st, m = self.state[layer.index], self.maps[layer.index]
        v = lambda t: t.view(-1, 1, m.n_sensings, layer.rows)[chips]
        w = st.weights
        vpu = w.vpu if isinstance(w.vpu, float) else v(w.vpu)
        return SenseStatic(self._cells[layer.index], v(st.calibration.baseline), v(st.calibration.lsb),
                           v(st.calibration.correction_lsb), v(st.periphery.offset_v), v(st.periphery.buffer_gain), vpu)

    def _read_static(self, layer: XnorLayer, chips: slice) -> dict:
        st, m = self.state[layer.index], self.maps[layer.index]
        v = lambda t: None if t is None else t.view(-1, 1, m.n_sensings, layer.rows)[chips]
        w = st.weights
        return {"total": v(w.total.float().view(-1, m.n_sensings, layer.rows)), "square_total": v(w.square_total)}

    def mac(self, layer: XnorLayer, slots: list[torch.Tensor], p: Pass) -> torch.Tensor:
        """Counts ``[N, Kc, L, rows]`` of a layer's reads, sensed in chunks of samples whose reads
        fit in the cache (:func:`samples_per_chunk`): every read's signal is exact and its noise is
        keyed by its own counter, and each sample's counts depend on that sample alone, so the
        chunking changes no bit -- only how often the reads tensor goes through main memory."""
        N = slots[0].shape[0]
        m = self.maps[layer.index]
        n = samples_per_chunk((p.chips.stop - p.chips.start) * layer.positions * m.n_sensings * layer.rows)
        if n >= N:
            return self._mac(layer, slots, p, None)
        return torch.cat([self._mac(layer, [s[a:a + n] for s in slots], p, (a, min(a + n, N))) for a in range(0, N, n)])

    def _mac(self, layer: XnorLayer, slots: list[torch.Tensor], p: Pass, samples: tuple[int, int] | None) -> torch.Tensor:
        noisy = self.state[layer.index].weights.sq_a is not None
        signals = [self.read_signals(layer, s, p.chips) for s in slots]
        if self.activity is not None:
            self._record_activity(layer, signals, p, slots)
        squares = [self.read_signals(layer, s, p.chips, squared=True) if noisy else None for s in slots]
        rs = self._read_static(layer, p.chips) if noisy else None
        reads = [SlotRead(sig, None if sq is None else self.scheme.read_std(sig, sq, rs)) for sig, sq in zip(signals, squares)]
        m = self.maps[layer.index]
        noise = ReadNoise(self.chip_seeds[p.chips], layer.index, p.index, p.T, 0, m.n_sensings, samples, p.stream)
        return sense(reads, self.sense_static(layer, p.chips), self.config, noise)  # the sensings of a row added digitally

    # ------------------------------------------------------------------ activity for the energy model
    def _record_activity(self, layer: XnorLayer, signals: list[torch.Tensor], p: Pass, slots: list[torch.Tensor]) -> None:
        """Integer sums of what the array did, per chip (energy). Signals lie on the conductance
        grid: counted in grid steps as integers, the sums are exact and do not depend on how images
        or chips were batched. Current / bitwise sensing: the summed signal, and the squared held
        slot per sample; voltage sensing: per line the summed signal and (in steps of 1/8 unit) its
        square, of every read and of the held slot. One fused pass per slot (:func:`line_sums`,
        :func:`held_squares`)."""
        kc = signals[0].shape[1]
        held = len(signals) == 2
        voltage = self.scheme.name == "voltage"
        gated = not self.scheme.mapping.every_cell_driven
        for i in range(kc):
            a = self.activity[p.chips.start + i].setdefault(layer.index, {"units": 0, "held": 0, "line_sum": 0,
                                                                          "line_sq": 0, "held_sq": 0, "driven": 0})
            if gated:
                a["driven"] += sum(driven_inputs(layer, x[:, min(i, x.shape[1] - 1)]) for x in slots)
            for s, t in enumerate(signals):
                x = t[:, i]
                q_sum, c_sq = line_sums(x)  # [S, rows] each, exact integers in float64
                q_sum = q_sum.to(torch.int64)
                a["units"] += int(q_sum.sum())
                if voltage:
                    c_sq = c_sq.to(torch.int64)
                    a["line_sum"] = a["line_sum"] + q_sum
                    a["line_sq"] = a["line_sq"] + c_sq
                    if s == 0 and held:
                        a["held_sq"] = a["held_sq"] + c_sq
                elif s == 0 and held:
                    a["held"] += sum(held_squares(x).tolist())  # [N], < 2**62 each

    def activity_per_inference(self, counts: dict[int, dict], images: int, chip: int = 0) -> dict[int, LayerActivity]:
        """Chip ``chip``'s recorded activity (integer sums) per inference, in units of the cell's G_on."""
        out = {}
        for l, a in counts.items():
            if self.scheme.name == "voltage":
                st = self.state[l]
                total = st.weights.total.double().view(-1, *a["line_sum"].shape)[chip].cpu()  # [S, rows] of this chip
                vpu = st.weights.vpu.double().view(-1, *a["line_sum"].shape)[chip].cpu()
                s1 = a["line_sum"].double().cpu() / GRID
                s2 = a["line_sq"].double().cpu() / _COARSE ** 2
                units = float((s1 - s2 / total).sum()) / images
                held_v2 = float((vpu * vpu * a["held_sq"].double().cpu()).sum()) / _COARSE ** 2 / images \
                    if torch.is_tensor(a["held_sq"]) else 0.0
                out[l] = LayerActivity(units, 0.0, held_v2)
            elif not self.scheme.mapping.every_cell_driven:
                # only driven cells conduct, both devices of each (nominal G+ + G- = 1 + r); bitwise: the
                # latch reads device A of every driven cell, sum x b = (signal + driven) / 2 of its decisions
                layer = next(x for x in self.program.xnor_layers if x.index == l)
                cell_reads = a["driven"] * layer.rows / images
                if self.scheme.name == "bitwise":
                    ones = (a["units"] / GRID / images + cell_reads) / 2
                    units = (1 - self.off_ratio) * ones + self.off_ratio * cell_reads
                    out[l] = LayerActivity(units, 0.0, driven_inputs=a["driven"] / images)
                else:
                    out[l] = LayerActivity(self.scheme.mapping.conducting_cell_units(self.off_ratio) * cell_reads,
                                           a["held"] / GRID ** 2 / images,
                                           driven_inputs=a["driven"] / images)
            elif self.scheme.name == "bitwise":
                layer = next(x for x in self.program.xnor_layers if x.index == l)
                m = self.maps[l]
                cells = sum(m.sensing_cells(s) for s in range(m.n_sensings))
                reads = self.program.timesteps * layer.positions * layer.n_slots * layer.rows * images
                matches = a["units"] / GRID
                out[l] = LayerActivity(((1 - self.off_ratio) * matches + self.off_ratio * cells * reads) / images, 0.0)
            else:
                out[l] = LayerActivity(a["units"] / GRID / images, a["held"] / GRID ** 2 / images)
        return out
