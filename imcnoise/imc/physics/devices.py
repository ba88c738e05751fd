"""Device models of the XNOR cell's complementary pair, as aihwkit noise models.

Tile weights are conductances normalised to the nominal on-state conductance G_on (1.0 = G_on);
:class:`~.cell.XnorPairConverter` maps them to/from microsiemens, one slice per device, so
aihwkit's ``program_weights`` / ``drift_weights`` drive every device model, ours and aihwkit's own
(PCM-like, ReRamWan2022). Each physical effect is one small method, as in aihwkit's
``inference/noise/base.py``. All draws use torch's global generator, seeded per
(chip, layer, sub-array) by :func:`program_conductances` (and by the aihwkit engine before
``program_weights``), so every engine draws the same chip.
"""

from __future__ import annotations

import math

import torch
from aihwkit.inference.noise.base import BaseNoiseModel
from aihwkit.inference.noise.pcm import PCMLikeNoiseModel
from aihwkit.inference.noise.reram import ReRamWan2022NoiseModel

from ...seeding import derive_seed
from ..config import AihwkitPcmDevice, AihwkitReRamDevice, RramDevice, SttMramDevice
from .cell import XnorPairConverter
from .noise import normal_indices_at, normal_table, normals_at, stream_counters, stream_key, uniforms_at


def draw_key(generator: torch.Generator | None = None) -> int:
    """A 63-bit key from torch's global generator (or ``generator``): the one global draw of a
    programming call, which the engines seed per sub-array (:func:`program_conductances`, the
    aihwkit engine); the devices' numbers then come from counter-based streams of that key
    (:mod:`.noise`). A second call gives the key of the drift's draws."""
    return int(torch.randint(0, 2 ** 62, (1,), dtype=torch.int64, generator=generator))


def seeded_generator(seed: int) -> torch.Generator:
    """A CPU generator in the state torch's global one has after ``manual_seed(seed)``: the keys
    :func:`draw_key` draws there, without touching the global state (:func:`program_many`)."""
    return torch.Generator().manual_seed(seed)


class TwoStateNoiseModel(BaseNoiseModel):
    """A binary device programmed to an on (1) or off (0) state.

    Programming (drawn once per chip): stuck-at faults, then lognormal device-to-device
    variation around the state's nominal conductance (median = nominal, ``sigma`` = std of
    ln G = std of ln R). Time after programming: :meth:`apply_drift_noise_to_conductance`.

    Common random numbers: every device always draws one uniform (stuck-at) and one standard
    normal (variation), from counter-based streams keyed by the sub-array's seed (element j of
    the sub-array is draw j), whatever the probabilities and sigmas; a fault is u below its
    probability (stuck on: u < p_on; stuck off: u >= 1 - p_off) and the variation is sigma * z. So a
    chip instance keeps the same underlying draws at every point of a sweep: its conductance
    errors at two sigmas differ only by the scale, and its stuck devices at a higher fault rate
    include those at a lower one.
    """

    def __init__(self, g_on_us: float, g_off_us: float, sigma_on: float, sigma_off: float,
                 p_stuck_on: float = 0.0, p_stuck_off: float = 0.0):
        super().__init__(XnorPairConverter(g_on_us))
        self.g_on_us, self.g_off_us = float(g_on_us), float(g_off_us)
        self.sigma_on, self.sigma_off = float(sigma_on), float(sigma_off)
        self.p_stuck_on, self.p_stuck_off = float(p_stuck_on), float(p_stuck_off)

    def programmed_state(self, g_target: torch.Tensor, u: torch.Tensor | None) -> torch.Tensor:
        """True where the device ends in the on state: its target, unless stuck (u: uniform draws)."""
        on = g_target > 0.5 * (self.g_on_us + self.g_off_us)
        if u is None:
            return on
        # stuck on from the bottom of [0, 1), stuck off from the top: raising either probability only
        # adds stuck devices (nested fault sets along a sweep)
        stuck_on = u < self.p_stuck_on
        stuck_off = u >= 1.0 - self.p_stuck_off
        return torch.where(stuck_on, True, torch.where(stuck_off, False, on))

    def device_variation(self, on: torch.Tensor, z: torch.Tensor | None) -> torch.Tensor:
        """Lognormal conductance (uS) around each state's nominal value (z: standard normal draws;
        None: no variation)."""
        # torch.where between exact fp64 scalars: the nominal values stay exact (faster than a lookup)
        g = torch.where(on, self._scalar(self.g_on_us, on), self._scalar(self.g_off_us, on))
        if z is None:
            return g
        if self.sigma_on == self.sigma_off:  # one sigma: the same products as the per-state form
            return g * torch.exp(self._scalar(self.sigma_on, on) * z)
        return g * torch.exp(torch.where(on, self._scalar(self.sigma_on, on), self._scalar(self.sigma_off, on)) * z)

    @staticmethod
    def _scalar(value: float, like: torch.Tensor) -> torch.Tensor:
        """A 0-d fp64 tensor on ``like``'s device."""
        return torch.tensor(value, dtype=torch.float64, device=like.device)

    def program(self, g_target: torch.Tensor, stuck: torch.Tensor, variation: torch.Tensor) -> torch.Tensor:
        """Programmed conductances (uS) of targets ``g_target`` (uS) whose draws sit at the stream
        counters ``stuck`` and ``variation`` (int64, same shape). Counter-based streams: a draw not
        needed (zero probability or sigma) is not computed, and every other draw stays what it is."""
        u = uniforms_at(stuck) if self.p_stuck_on + self.p_stuck_off > 0 else None
        z = normals_at(variation) if self.sigma_on + self.sigma_off > 0 else None
        return self.device_variation(self.programmed_state(g_target, u), z).to(g_target.dtype)

    def program_normalised(self, g_target: torch.Tensor, stuck: torch.Tensor, variation: torch.Tensor) -> torch.Tensor:
        """:meth:`program` followed by the converter's ``convert_back_to_weights`` (normalised grid
        conductances), by table lookup: a device's result is a function of its state and its normal
        only, and every normal is one of :func:`.noise.normal_table`'s entries, so :meth:`device_variation`
        and the conversion run once per (state, entry) -- 2 x 3 * 2^16 values -- and each device gathers
        its own. The same numbers as the element-wise form (the aihwkit engine's; tests compare them),
        for any subclass whose :meth:`programmed_state` and :meth:`device_variation` stay element-wise
        (a device's value from its own state and normal), as every physical override of them is."""
        u = uniforms_at(stuck) if self.p_stuck_on + self.p_stuck_off > 0 else None
        on = self.programmed_state(g_target, u)
        back = lambda g_us: self.g_converter.convert_back_to_weights([g_us.to(g_target.dtype)], {})
        if self.sigma_on + self.sigma_off == 0:
            return back(self.device_variation(on, None))
        z = normal_table(g_target.device, torch.float64)
        lut = torch.cat([back(self.device_variation(torch.full(z.shape, state, device=z.device), z)) for state in (False, True)])
        idx = normal_indices_at(variation)
        return lut[torch.where(on, idx + len(z), idx)]

    @torch.no_grad()
    def apply_programming_noise_to_conductance(self, g_target: torch.Tensor) -> torch.Tensor:
        key, n = draw_key(), g_target.numel()
        stuck = stream_counters(stream_key(key, "stuck"), n, g_target.device).view(g_target.shape)
        variation = stream_counters(stream_key(key, "variation"), n, g_target.device).view(g_target.shape)
        return self.program(g_target, stuck, variation)

    def drift_draws(self, t_inference: float) -> bool:
        """Whether the drift after ``t_inference`` s draws random numbers (a second key per sub-array)."""
        return False

    def drift(self, g_prog: torch.Tensor, t_inference: float, relaxation: torch.Tensor | None) -> torch.Tensor:
        """Conductances (uS) after ``t_inference`` s (``relaxation``: stream counters of its draws,
        when :meth:`drift_draws`); none here. Both engines call this one method."""
        return g_prog

    @torch.no_grad()
    def apply_drift_noise_to_conductance(self, g_prog, drift_noise_param, t_inference: float) -> torch.Tensor:
        relax = stream_counters(stream_key(draw_key(), "relaxation"), g_prog.numel(), g_prog.device).view(g_prog.shape) \
            if self.drift_draws(t_inference) else None
        return self.drift(g_prog, t_inference, relax)


class SttMramNoiseModel(TwoStateNoiseModel):
    """MTJ: P state = G_on = 1/R_P, AP state = G_off = 1/(R_P (1 + TMR)); no drift."""

    def __init__(self, cfg: SttMramDevice):
        super().__init__(cfg.g_on_siemens * 1e6, cfg.g_off_siemens * 1e6, cfg.sigma_r_p, cfg.sigma_r_ap, cfg.p_stuck_p, cfg.p_stuck_ap)


class RramNoiseModel(TwoStateNoiseModel):
    """RRAM: LRS = G_on, HRS = G_off; conductance drift/relaxation after programming.

    g(t) = g_prog * max(0, 1 - nu * log10(t / t0)) * exp(relaxation_sigma * sqrt(log10(t / t0)) * z)
    for t > t0 (nothing before t0): a mean decrease of ``nu`` per decade and a spread that grows
    like a random walk in log time.
    """

    def __init__(self, cfg: RramDevice):
        super().__init__(cfg.g_on_siemens * 1e6, cfg.g_off_siemens * 1e6, cfg.sigma_lrs, cfg.sigma_hrs, cfg.p_stuck_lrs, cfg.p_stuck_hrs)
        self.drift_nu, self.drift_t0_s, self.relaxation_sigma = cfg.drift_nu, cfg.drift_t0_s, cfg.relaxation_sigma

    def drift_draws(self, t_inference: float) -> bool:
        return t_inference > self.drift_t0_s and self.relaxation_sigma > 0

    def drift(self, g_prog: torch.Tensor, t_inference: float, relaxation: torch.Tensor | None) -> torch.Tensor:
        """Conductances (uS) after ``t_inference`` s; ``relaxation``: stream counters of the spread's draws."""
        if t_inference <= self.drift_t0_s:
            return g_prog
        decades = math.log10(t_inference / self.drift_t0_s)
        g = g_prog * max(0.0, 1.0 - self.drift_nu * decades)
        if self.relaxation_sigma > 0:
            g = g * torch.exp(self.relaxation_sigma * math.sqrt(decades) * normals_at(relaxation).to(g.dtype))
        return g


def make_noise_model(device) -> BaseNoiseModel:
    """The aihwkit noise model for a device configuration."""
    if isinstance(device, SttMramDevice):
        return SttMramNoiseModel(device)
    if isinstance(device, RramDevice):
        return RramNoiseModel(device)
    if isinstance(device, AihwkitPcmDevice):
        m = PCMLikeNoiseModel(g_converter=XnorPairConverter(device.g_on_us), prog_noise_scale=device.prog_noise_scale,
                              read_noise_scale=device.read_noise_scale, drift_scale=device.drift_scale)
        return m
    if isinstance(device, AihwkitReRamDevice):
        return ReRamWan2022NoiseModel(g_converter=XnorPairConverter(device.g_on_us), noise_scale=device.noise_scale)
    raise ValueError(f"unknown device model {device!r}")


def program_seed(chip_seed: int, layer: int, row_tile: int, col_tile: int) -> int:
    """Seed of every programming draw of one sub-array of one chip instance."""
    return derive_seed(chip_seed, "program", layer, row_tile, col_tile)


@torch.no_grad()
def program_conductances(noise_model: BaseNoiseModel, target: torch.Tensor, seed: int, t_inference: float) -> torch.Tensor:
    """Programmed (and drifted) normalised conductances of one sub-array: what aihwkit's
    ``tile.program_weights()`` (+ ``drift_weights(t_inference)``) does to a tile, under ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)  # the CPU generator only (torch.manual_seed also queues CUDA seeding)
        g, drift = noise_model.apply_programming_noise(target)
        if t_inference > 0:
            g = noise_model.apply_drift_noise(g, drift, t_inference)
    return g


@torch.no_grad()
def program_many(noise_model: BaseNoiseModel, targets: list[torch.Tensor], seeds: list[int], t_inference: float) -> list[torch.Tensor]:
    """:func:`program_conductances` of many sub-arrays at once: the same numbers (our device models
    compute every draw from its sub-array's seed and its position), in a few tensor operations."""
    if not isinstance(noise_model, TwoStateNoiseModel):
        return [program_conductances(noise_model, t, s, t_inference) for t, s in zip(targets, seeds)]
    relax = t_inference > 0 and noise_model.drift_draws(t_inference)
    stuck, variation, relaxation = [], [], []
    for t, seed in zip(targets, seeds):
        g = seeded_generator(seed)  # the keys draw_key() gives after seeding the global generator
        key = draw_key(g)
        stuck.append(stream_counters(stream_key(key, "stuck"), t.numel()))
        variation.append(stream_counters(stream_key(key, "variation"), t.numel()))
        if relax:
            relaxation.append(stream_counters(stream_key(draw_key(g), "relaxation"), t.numel()))
    conv = noise_model.g_converter
    flat = torch.cat([t.reshape(-1) for t in targets])
    g = noise_model.program_normalised(conv.convert_to_conductances(flat)[0][0], torch.cat(stuck), torch.cat(variation))
    if t_inference > 0:  # aihwkit's drift_weights (every engine): to uS, the model's drift, and back
        g = noise_model.drift(conv.convert_to_conductances(g)[0][0], t_inference, torch.cat(relaxation) if relax else None)
        g = conv.convert_back_to_weights([g], {})
    return [x.view(t.shape) for x, t in zip(g.split([t.numel() for t in targets]), targets)]
