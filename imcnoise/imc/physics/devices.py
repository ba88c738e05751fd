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


class TwoStateNoiseModel(BaseNoiseModel):
    """A binary device programmed to an on (1) or off (0) state.

    Programming (drawn once per chip): stuck-at faults, then lognormal device-to-device
    variation around the state's nominal conductance (median = nominal, ``sigma`` = std of
    ln G = std of ln R). Time after programming: :meth:`apply_drift_noise_to_conductance`.
    """

    def __init__(self, g_on_us: float, g_off_us: float, sigma_on: float, sigma_off: float,
                 p_stuck_on: float = 0.0, p_stuck_off: float = 0.0):
        super().__init__(XnorPairConverter(g_on_us))
        self.g_on_us, self.g_off_us = float(g_on_us), float(g_off_us)
        self.sigma_on, self.sigma_off = float(sigma_on), float(sigma_off)
        self.p_stuck_on, self.p_stuck_off = float(p_stuck_on), float(p_stuck_off)

    def programmed_state(self, g_target: torch.Tensor) -> torch.Tensor:
        """True where the device ends in the on state: its target, unless stuck."""
        on = g_target > 0.5 * (self.g_on_us + self.g_off_us)
        if self.p_stuck_on == 0 and self.p_stuck_off == 0:
            return on
        u = torch.rand_like(g_target)
        stuck_on = u < self.p_stuck_on
        stuck_off = (u >= self.p_stuck_on) & (u < self.p_stuck_on + self.p_stuck_off)
        return torch.where(stuck_on, True, torch.where(stuck_off, False, on))

    def device_variation(self, on: torch.Tensor) -> torch.Tensor:
        """Lognormal conductance around each state's nominal value."""
        z = torch.randn(on.shape, dtype=torch.float64, device=on.device)
        g = torch.where(on, self.g_on_us * torch.exp(self.sigma_on * z), self.g_off_us * torch.exp(self.sigma_off * z))
        return g

    @torch.no_grad()
    def apply_programming_noise_to_conductance(self, g_target: torch.Tensor) -> torch.Tensor:
        return self.device_variation(self.programmed_state(g_target)).to(g_target.dtype)

    @torch.no_grad()
    def apply_drift_noise_to_conductance(self, g_prog, drift_noise_param, t_inference: float) -> torch.Tensor:
        return g_prog


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

    @torch.no_grad()
    def apply_drift_noise_to_conductance(self, g_prog, drift_noise_param, t_inference: float) -> torch.Tensor:
        if t_inference <= self.drift_t0_s:
            return g_prog
        decades = math.log10(t_inference / self.drift_t0_s)
        g = g_prog * max(0.0, 1.0 - self.drift_nu * decades)
        if self.relaxation_sigma > 0:
            g = g * torch.exp(self.relaxation_sigma * math.sqrt(decades) * torch.randn_like(g))
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
        torch.manual_seed(seed)
        g, drift = noise_model.apply_programming_noise(target)
        if t_inference > 0:
            g = noise_model.apply_drift_noise(g, drift, t_inference)
    return g
