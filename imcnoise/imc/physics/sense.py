"""Sense path of a layer's lines (one per sensing and row): read noise, residual buffer, comparator, ADC.

One small function per physical effect (:func:`slot_counts`, :func:`read_noise_scale`,
:func:`hold_with_gain_and_droop`, :func:`remove_baseline`, :func:`add_noise_`, :func:`adc`, :func:`clip`,
:func:`popcount`, :func:`add_sensings`); :func:`sense` applies them in the order the circuit does,
in fused loops over a layer's reads (:class:`imcnoise.runtime.compiled`): the per-read normals come from their
counters (:mod:`.noise`), and the sensings of a row are added digitally at its end. The pointwise
effects between two noise additions are plain correctly rounded operations (inductor builds with
-ffp-contract=off: it contracts nothing), so a compiled loop and the eager functions give the same bits.

The signal of a read (:mod:`.schemes`) is in units of the nominal on-state cell conductance; the
line turns one unit into ``vpu`` volts at the sense node (the same for every line with current
sensing, each line's own with the merged-line voltage sensing). Counts are in LSB of the line's
calibration (:mod:`.calibration`): count = (N - n_slots * baseline) / lsb, so ideal devices give
exactly the XNOR popcount. Voltages (kT/C, comparator offset and noise) convert to counts with the
line's actual LSB voltage, ``lsb * vpu``.

Per-read noise adds as a rounded-once multiply-add (:func:`add_noise_`: torch's ``addcmul``, run eagerly).

Residual layers (paper Sec. III, eq. 11) read two time slots: the tau1 MAC is held on a capacitor
-- static gain mismatch, droop exp(-t/RC) and kT/C noise act on the whole held signal, baseline
included (:func:`hold_with_gain_and_droop`, then kT/C) -- then the tau2 MAC is added and the sum is sensed once. When every effect
is off the sum is exact. The bitwise scheme has no analog path: each slot's popcount is exact
digital logic, with the latches' per-read decision noise as one normal per count
(:func:`popcount`); with the gated mapping the line's register M1 is added per slot (its
zero-count level, ``baseline = -M1``).

Tensors are in the reads layout ``[N, K, L, S, rows]`` (N = T*B samples, K chips, L output
positions, S sensings of a row; :mod:`imcnoise.imc.engines.layouts`), static per-chip values
``[K, 1, S, rows]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ... import defaults as D
from ...runtime import compiled
from ...seeding import generator
from ..config import AnalogConfig, ResidualBufferConfig, lsb_voltage_v
from .noise import normal_table, stream_normals


# ------------------------------------------------------------------------------- units
def offset_sigma_v(cfg: AnalogConfig) -> float:
    """Static comparator offset std in volts (given in V, or in LSB of the nominal match voltage)."""
    sa = cfg.sense_amp
    if sa.offset_sigma_lsb is not None:
        return sa.offset_sigma_lsb * lsb_voltage_v(cfg)
    return D.SA_OFFSET_SIGMA_V if sa.offset_sigma_v is None else sa.offset_sigma_v


def noise_sigma_v(cfg: AnalogConfig) -> float:
    """Dynamic comparator noise std per read in volts."""
    sa = cfg.sense_amp
    if sa.noise_sigma_lsb is not None:
        return sa.noise_sigma_lsb * lsb_voltage_v(cfg)
    return D.SA_NOISE_SIGMA_V if sa.noise_sigma_v is None else sa.noise_sigma_v


def buffer_droop(buf: ResidualBufferConfig) -> float:
    """Fraction of the held voltage left after the hold time: exp(-t / (R C))."""
    if math.isinf(buf.leak_resistance_ohm) or buf.hold_time_s == 0:
        return 1.0
    return math.exp(-buf.hold_time_s / (buf.leak_resistance_ohm * buf.capacitance_f))


def ktc_sigma_v(buf: ResidualBufferConfig) -> float:
    """kT/C noise of sampling onto the buffer capacitor: sigma_V = sqrt(k T / C) (0 when off)."""
    if not buf.kt_c_noise:
        return 0.0
    return math.sqrt(D.BOLTZMANN_J_PER_K * buf.temperature_k / buf.capacitance_f)


# ------------------------------------------------------------------------------- static draws
@dataclass
class PeripheryDraw:
    """Static per-chip draws of one layer: one value per (sensing, output line) (a leading chip
    axis when several chips are stacked)."""

    offset_v: torch.Tensor  # comparator offset, volts
    buffer_gain: torch.Tensor  # gain of the hold path


def draw_periphery(cfg: AnalogConfig, chip_seed: int, layer_index: int, n_lines: int, rows: int, device=None) -> PeripheryDraw:
    """Comparator offsets and buffer gains of one layer of one chip instance (drawn once per chip):
    ``[n_lines, rows]`` (one per sensing and row). The standard normals depend only on (chip seed,
    layer), not on the configured sigmas."""
    g = generator(chip_seed, "periphery", layer_index)
    z_off = torch.randn(n_lines, rows, generator=g, dtype=torch.float64)
    z_gain = torch.randn(n_lines, rows, generator=g, dtype=torch.float64)
    return PeripheryDraw((z_off * offset_sigma_v(cfg)).float().to(device), (1.0 + z_gain * cfg.buffer.gain_sigma).float().to(device))


# ------------------------------------------------------------------------------- the reads
@dataclass
class SlotRead:
    """One time slot's reads: the lines' signal and, when the devices have per-read noise, its std
    (same layout)."""

    current: torch.Tensor
    read_std: torch.Tensor | None = None


@dataclass
class SenseStatic:
    """What the sense path of a layer knows of the chips of a pass (per line: ``[K, 1, S, rows]``)."""

    cells: torch.Tensor | int  # cells of each sensing (``[S, 1]``, or one int)
    baseline: torch.Tensor  # calibrated zero-count signal of one slot
    lsb: torch.Tensor  # calibrated signal of one match
    correction_lsb: torch.Tensor  # subtracted from every count (trim, common-mode shift)
    offset_v: torch.Tensor  # static comparator offset
    gain: torch.Tensor  # static buffer gain
    volts_per_unit: torch.Tensor | float  # sense-node voltage of one unit of signal

    def volts_to_lsb(self, volts: float) -> torch.Tensor:
        """A sense-node voltage in counts of each line: volts / (lsb * volts_per_unit)."""
        return volts / (self.lsb * self.volts_per_unit)


# ------------------------------------------------------------------------------- one function per effect
def add_noise_(v: torch.Tensor, scale: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """v += scale * z, in place, rounded once (a fused multiply-add on FMA hardware: torch's
    ``addcmul``): how every per-read noise adds at the sense node. Always run eagerly, between the
    fused loops, so the numbers do not depend on whether those were compiled."""
    return v.addcmul_(scale, z)


def slot_counts(signal: torch.Tensor, lsb: torch.Tensor) -> torch.Tensor:
    """A slot's line signal in counts of the line's calibrated LSB."""
    return signal / lsb


def read_noise_scale(std: torch.Tensor, lsb: torch.Tensor) -> torch.Tensor:
    """Device read noise: each device's conductance fluctuates independently per read; the
    signal's std (from the scheme, :meth:`.schemes.Scheme.read_std`) in counts."""
    return std / lsb


def hold_with_gain_and_droop(v: torch.Tensor, gain_droop: torch.Tensor) -> torch.Tensor:
    """The residual buffer holding the tau1 MAC: static gain mismatch x droop (its kT/C noise then
    adds, :func:`add_noise_`)."""
    return v * gain_droop


def remove_baseline(v: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Subtract the calibrated baseline of every summed slot and the line's correction (trim); the
    static comparator offset adds (``shift``, :func:`baseline_shift`)."""
    return v + shift


def baseline_shift(static: SenseStatic, n_slots: int) -> torch.Tensor:
    """Per line: offset / (lsb vpu) - n_slots baseline / lsb - correction (counts)."""
    return static.volts_to_lsb(1.0) * static.offset_v - n_slots * static.baseline / static.lsb - static.correction_lsb


def adc_step(full_scale, bits: int | None) -> torch.Tensor | float:
    """Counts per ADC code of a uniform ADC over [0, full scale] counts (per sensing: ``full_scale``
    an int or ``[S, 1]``): 1 where its codes resolve every count (it then rounds to whole counts)."""
    if bits is None:
        return 1.0
    if isinstance(full_scale, int):
        return 1.0 if 2 ** bits >= full_scale + 1 else full_scale / (2 ** bits - 1)
    fs = full_scale.float()
    return torch.where(fs + 1 <= 2 ** bits, torch.ones_like(fs), fs / (2 ** bits - 1))


def adc(v: torch.Tensor, step) -> torch.Tensor:
    """The ADC: the nearest of its codes, in counts."""
    return torch.round(v / step) * step


def clip(q: torch.Tensor, full_scale) -> torch.Tensor:
    """The ADC's input range: counts below 0 or above full scale saturate."""
    return torch.minimum(q.clamp(min=0.0), full_scale)


def add_sensings(q: torch.Tensor) -> torch.Tensor:
    """The digital sum of a row's sensings (axis 3). Each count is a whole number of ADC steps
    (at most 24 significant bits within [0, 2**13]): their float64 sum is exact in any order, so
    the result does not depend on how the sum is vectorised."""
    return q.double().sum(dim=3).to(q.dtype)


def popcount(signal: torch.Tensor) -> torch.Tensor:
    """Bitwise scheme: a slot's count of latch "match" decisions, digital and exact: the expected
    count (plus, with per-read decision noise, one normal of the popcount's std), rounded."""
    return torch.round(signal)


# ------------------------------------------------------------------------------- the fused loops
def _numel(v, *args, **kw) -> int:
    return v.numel()


@compiled(work=_numel)
def _segment(v: torch.Tensor, ops: tuple, a: dict) -> torch.Tensor:
    """The pointwise effects ``ops`` applied in order, as one loop (between two noise additions)."""
    for op in ops:
        if op == "counts":
            v = slot_counts(v, a["lsb"])
        elif op == "hold":
            v = hold_with_gain_and_droop(v, a["gain"])
        elif op == "add_slot":
            v = v + slot_counts(a["s1"], a["lsb"])
        elif op == "shift":
            v = remove_baseline(v, a["shift"])
        elif op == "adc":
            v = adc(v, a["step"])
        elif op == "clip":
            v = clip(v, a["fs"])
        elif op == "sum":
            v = add_sensings(v)
        elif op == "popcount":
            v = popcount(v)
        elif op == "add":
            v = v + a["other"]
    return v


def _normals(stream, shape, dtype, device) -> torch.Tensor:
    """Normals of a noise stream (key per chip ``[K]``, first counter per sample ``[N]``, position
    counters) in the reads layout ``shape``."""
    key, first, pos = stream
    N, K = shape[0], shape[1]
    z = _stream_kernel(first.view(N, 1) + key.view(1, K), pos.reshape(-1), normal_table(device, dtype))
    return z.view(shape)


_stream_kernel = compiled(stream_normals, work=lambda first, positions, table: first.numel() * positions.numel(),
                          min_numel=1 << 16)


# ------------------------------------------------------------------------------- the whole path
@torch.no_grad()  # the same graphs for programming-time calibration and inference (no gradient ever flows here)
def sense(reads: list[SlotRead], static: SenseStatic, cfg: AnalogConfig, noise=None, digitize: bool = True) -> torch.Tensor:
    """Counts ``[N, K, L, rows]`` of a layer's reads (one or two time slots, ``[N, K, L, S, rows]``
    each), the S sensings of a row added digitally.

    ``noise`` (:class:`~.noise.ReadNoise` of the layer, or a calibration's noise) supplies the
    counters of the per-read normals; it is asked only for the effects that are on. Every engine --
    and every calibration read -- calls this one function, so their arithmetic is identical.
    ``digitize=False`` returns the analog value at the comparator of every line (``[N, K, L, S,
    rows]``, counts before the ADC), what a calibration averages. The pointwise effects between two
    noise additions run as one fused loop (:func:`_segment`); the noise adds eagerly (:func:`add_noise_`).
    """
    shape = tuple(reads[0].current.shape)
    dev, dtype = reads[0].current.device, reads[0].current.dtype
    z = lambda purpose, slot: _normals(noise.stream(purpose, slot, shape, dev), shape, dtype, dev)
    second = reads[1] if len(reads) > 1 else None
    if cfg.sense_amp.scheme == "bitwise":
        total = None
        for s, read in enumerate(reads):
            c = read.current
            if read.read_std is not None:
                c = add_noise_(c.clone(), read.read_std, z("latch", s))
            c = _segment(c, ("popcount",), {})
            total = c if total is None else _segment(total, ("add",), {"other": c})
        if bool((static.baseline != 0).any()):  # a popcount's zero-count level per slot (gated mapping: -M1)
            total = _segment(total, ("add",), {"other": -len(reads) * static.baseline.to(dtype)})
        return _segment(total, ("sum",), {})
    n_slots = len(reads)
    s_ktc, s_noise = ktc_sigma_v(cfg.buffer), noise_sigma_v(cfg)
    lsb = static.lsb.to(dtype)
    args = {"lsb": lsb, "gain": (static.gain * buffer_droop(cfg.buffer)).to(dtype),
            "shift": baseline_shift(static, n_slots).to(dtype)}
    if second is not None:
        args["s1"] = second.current
    full_scale = static.cells * n_slots
    args["step"] = torch.as_tensor(adc_step(full_scale, cfg.sense_amp.adc_bits), dtype=dtype, device=dev)
    args["fs"] = torch.as_tensor(full_scale, dtype=dtype, device=dev)
    # the effects in circuit order; a noise addition ends a fused segment
    plan: list = ["counts"]
    if reads[0].read_std is not None:
        plan.append(("noise", read_noise_scale(reads[0].read_std, lsb), "device-read", 0))
    if second is not None:
        plan.append("hold")
        if s_ktc > 0:
            plan.append(("noise", static.volts_to_lsb(s_ktc).to(dtype), "ktc", 0))
        plan.append("add_slot")
        if second.read_std is not None:
            plan.append(("noise", read_noise_scale(second.read_std, lsb), "device-read", 1))
    plan.append("shift")
    if s_noise > 0:
        plan.append(("noise", static.volts_to_lsb(s_noise).to(dtype), "sense", 0))
    if digitize:
        plan += ["adc"] + (["clip"] if cfg.sense_amp.clip else []) + ["sum"]
    v, ops = reads[0].current, []
    for step in plan:
        if isinstance(step, str):
            ops.append(step)
            continue
        v = _segment(v, tuple(ops), args)
        ops = []
        v = add_noise_(v if v is not reads[0].current else v.clone(), step[1], z(step[2], step[3]))
    return _segment(v, tuple(ops), args) if ops else v
