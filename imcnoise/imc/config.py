"""Validated configuration of an analog XNOR chip (device, sense path, residual buffer, array).

The schema only: what a chip *is*, not how it behaves (that is :mod:`imcnoise.imc.physics`).
Physical units throughout (Ohm, V, F, K, seconds, fractions, probabilities); names end in the
unit (``_ohm``, ``_v``, ``_f``, ``_k``, ``_seconds``/``_s`` for times, ``_siemens`` for
conductances). Every default comes from :mod:`imcnoise.defaults`, where its source is named. Bad
values raise a ``pydantic`` ``ValidationError`` naming the field and the allowed range.

Two kinds of noise parameters, not to be confused:

* ``read_sigma`` (our device models): per-read (cycle-to-cycle) noise, drawn afresh at every
  array read, std as a fraction of the device's conductance;
* ``read_noise_scale`` (aihwkit's PCM model): a scale factor of aihwkit's own fitted read-noise
  model, applied once when the chip is drawn (aihwkit's ``drift_weights``), i.e. per chip.
"""

from __future__ import annotations

from typing import Annotated, Literal, Optional, Union, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .. import defaults as D


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


Prob = Annotated[float, Field(ge=0.0, le=1.0)]
Sigma = Annotated[float, Field(ge=0.0, le=3.0)]


class SttMramDevice(_Strict):
    """MTJ pair: parallel (P, low R, weight bit 1 on line A) / anti-parallel (AP) states."""

    model: Literal["stt_mram"] = "stt_mram"
    r_p_ohm: float = Field(D.STT_R_P_OHM, gt=0, description="parallel-state resistance R_P")
    tmr: float = Field(D.STT_TMR, gt=0, le=10, description="tunnel magnetoresistance; R_AP = R_P (1 + TMR)")
    sigma_r_p: Sigma = Field(D.STT_SIGMA_R, description="device-to-device spread of R_P: std of ln R (lognormal, median R_P)")
    sigma_r_ap: Sigma = Field(D.STT_SIGMA_R, description="device-to-device spread of R_AP: std of ln R")
    p_stuck_p: Prob = Field(0.0, description="probability a device is stuck in P")
    p_stuck_ap: Prob = Field(0.0, description="probability a device is stuck in AP")
    read_sigma: Sigma = Field(0.0, description="per-read (cycle-to-cycle) noise, std as a fraction of G")

    @model_validator(mode="after")
    def _stuck_total(self):
        if self.p_stuck_p + self.p_stuck_ap > 1:
            raise ValueError(f"p_stuck_p + p_stuck_ap = {self.p_stuck_p + self.p_stuck_ap} must be <= 1")
        return self

    @property
    def g_on_siemens(self) -> float:
        return 1.0 / self.r_p_ohm

    @property
    def g_off_siemens(self) -> float:
        return 1.0 / (self.r_p_ohm * (1.0 + self.tmr))


class RramDevice(_Strict):
    """RRAM pair: low-resistance (LRS, weight bit 1 on line A) / high-resistance (HRS) states."""

    model: Literal["rram"] = "rram"
    r_lrs_ohm: float = Field(D.RRAM_R_LRS_OHM, gt=0)
    r_hrs_ohm: float = Field(D.RRAM_R_HRS_OHM, gt=0)
    sigma_lrs: Sigma = Field(D.RRAM_SIGMA_LRS, description="std of ln R in LRS (lognormal, median r_lrs_ohm)")
    sigma_hrs: Sigma = Field(D.RRAM_SIGMA_HRS, description="std of ln R in HRS")
    p_stuck_lrs: Prob = 0.0
    p_stuck_hrs: Prob = 0.0
    read_sigma: Sigma = Field(D.RRAM_READ_SIGMA, description="per-read noise, std as a fraction of G")
    drift_nu: float = Field(D.RRAM_DRIFT_NU, ge=0, le=1, description="relative loss of G per decade of time after drift_t0_s")
    drift_t0_s: float = Field(D.RRAM_DRIFT_T0_S, gt=0)
    relaxation_sigma: Sigma = Field(0.0, description="extra lognormal spread per decade of time after drift_t0_s")

    @model_validator(mode="after")
    def _check(self):
        if self.r_hrs_ohm <= self.r_lrs_ohm:
            raise ValueError(f"r_hrs_ohm ({self.r_hrs_ohm}) must be greater than r_lrs_ohm ({self.r_lrs_ohm})")
        if self.p_stuck_lrs + self.p_stuck_hrs > 1:
            raise ValueError("p_stuck_lrs + p_stuck_hrs must be <= 1")
        return self

    @property
    def g_on_siemens(self) -> float:
        return 1.0 / self.r_lrs_ohm

    @property
    def g_off_siemens(self) -> float:
        return 1.0 / self.r_hrs_ohm


class AihwkitPcmDevice(_Strict):
    """aihwkit's ``PCMLikeNoiseModel`` (Nandakumar et al. 2019 fits) on each device of the pair."""

    model: Literal["aihwkit_pcm"] = "aihwkit_pcm"
    g_on_us: float = Field(25.0, gt=0, description="on-state conductance (aihwkit's PCM g_max reference is 25 uS)")
    on_off_ratio: float = Field(10.0, gt=1)
    prog_noise_scale: float = Field(1.0, ge=0)
    read_noise_scale: float = Field(1.0, ge=0)
    drift_scale: float = Field(1.0, ge=0)
    read_sigma: Sigma = 0.0

    @property
    def g_on_siemens(self) -> float:
        return self.g_on_us * 1e-6

    @property
    def g_off_siemens(self) -> float:
        return self.g_on_siemens / self.on_off_ratio


class AihwkitReRamDevice(_Strict):
    """aihwkit's ``ReRamWan2022NoiseModel`` (Wan et al., Nature 2022) on each device of the pair."""

    model: Literal["aihwkit_reram_wan2022"] = "aihwkit_reram_wan2022"
    g_on_us: float = Field(40.0, gt=0, description="on-state conductance (the model's reference g_max is 40 uS)")
    on_off_ratio: float = Field(10.0, gt=1)
    noise_scale: float = Field(1.0, ge=0)
    read_sigma: Sigma = Field(D.RRAM_READ_SIGMA)

    @property
    def g_on_siemens(self) -> float:
        return self.g_on_us * 1e-6

    @property
    def g_off_siemens(self) -> float:
        return self.g_on_siemens / self.on_off_ratio


Device = Annotated[Union[SttMramDevice, RramDevice, AihwkitPcmDevice, AihwkitReRamDevice], Field(discriminator="model")]


def device_tags() -> tuple[str, ...]:
    """The ``model`` tags of the device union (``chip.device.model``)."""
    return tuple(get_args(m)[0] for m in (t.model_fields["model"].annotation for t in get_args(get_args(Device)[0])))


class SenseAmpConfig(_Strict):
    """Sense amplifier + ADC of every output line of every sub-array."""

    offset_sigma_lsb: float = Field(D.SA_OFFSET_SIGMA_LSB, ge=0, le=1e3,
                                    description="static input-referred offset per column, std in LSB (1 LSB = one XNOR match)")
    offset_sigma_v: Optional[float] = Field(None, ge=0, le=10.0,
                                            description="same offset in volts (converted with lsb_voltage_v); replaces offset_sigma_lsb")
    noise_sigma_lsb: float = Field(D.SA_NOISE_SIGMA_LSB, ge=0, le=1e3, description="dynamic noise per read, std in LSB")
    lsb_voltage_v: float = Field(D.SA_LSB_VOLTAGE_V, gt=0, le=10.0, description="sense-node voltage of one XNOR match")
    adc_bits: Optional[int] = Field(D.ADC_BITS, ge=1, le=16, description="ADC resolution; None = every count resolved")
    clip: bool = Field(True, description="clip the sensed count to [0, full scale]")

    @model_validator(mode="after")
    def _one_offset(self):
        if self.offset_sigma_v is not None and self.offset_sigma_lsb != 0:
            raise ValueError("give the offset either as offset_sigma_lsb or as offset_sigma_v, not both")
        return self


class ResidualBufferConfig(_Strict):
    """Capacitive buffer holding the tau1 MAC of a residual layer until the tau2 MAC is added."""

    capacitance_f: float = Field(D.BUFFER_CAPACITANCE_F, gt=0, le=1e-9)
    temperature_k: float = Field(D.ROOM_TEMPERATURE_K, gt=0, le=1000)
    kt_c_noise: bool = Field(True, description="sample kT/C noise when holding")
    hold_time_s: float = Field(D.BUFFER_HOLD_TIME_S, ge=0, le=1.0)
    leak_resistance_ohm: float = Field(D.BUFFER_LEAK_RESISTANCE_OHM, gt=0, description="droop V(t) = V0 exp(-t / (R C)); inf = none")
    gain_sigma: float = Field(D.BUFFER_GAIN_SIGMA, ge=0, le=1, description="static gain mismatch per column (std, fraction)")


class ArrayConfig(_Strict):
    rows: int = Field(D.ARRAY_ROWS, ge=1, le=65536, description="rows (output lines) per sub-array")
    cols: int = Field(D.ARRAY_COLS, ge=9, le=65536, description="XNOR cells per row of a sub-array")


class AnalogConfig(_Strict):
    device: Device = Field(default_factory=SttMramDevice)
    sense_amp: SenseAmpConfig = Field(default_factory=SenseAmpConfig)
    buffer: ResidualBufferConfig = Field(default_factory=ResidualBufferConfig)
    array: ArrayConfig = Field(default_factory=ArrayConfig)
    t_inference_s: float = Field(0.0, ge=0, le=1e10, description="time between programming and inference (drift)")

    @model_validator(mode="after")
    def _drift_times(self):
        allowed = (0.0, 1.0, 86400.0, 172800.0)
        if isinstance(self.device, AihwkitReRamDevice) and self.t_inference_s not in allowed:
            raise ValueError(f"t_inference_s={self.t_inference_s}: the aihwkit_reram_wan2022 model is fitted only at "
                             f"{allowed} s")
        return self

    @classmethod
    def ideal(cls, **device_kw) -> "AnalogConfig":
        """Every non-ideality off (zero spread, no faults, no offsets, no buffer noise)."""
        dev = SttMramDevice(sigma_r_p=0.0, sigma_r_ap=0.0, **device_kw)
        return cls(device=dev, buffer=ResidualBufferConfig(kt_c_noise=False))
