"""Validated configuration of an analog XNOR chip (device, sense stage, calibration, residual buffer, array).

The schema only: what a chip *is*, not how it behaves (that is :mod:`imcnoise.imc.physics`).
Physical units throughout, named in the field (``_ohm``, ``_v``, ``_f``, ``_k``, ``_s`` for
seconds, ``_siemens``/``_us`` for conductances, ``_lsb`` for one XNOR match at the sense node).
Every physical field has the range a real device or circuit can have; its unit and range are in
its description (``imcnoise schema`` prints them) and in the error a bad value raises. Every
default comes from :mod:`imcnoise.defaults`, where its source is named.

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


def phys(default, lo: float, hi: float, unit: str, what: str, *, lo_open: bool = False, optional: bool = False):
    """A physical field: ``what`` in ``unit``, allowed ``lo`` .. ``hi`` (``lo`` excluded when ``lo_open``)."""
    bound = {"gt" if lo_open else "ge": lo, "le": hi}
    rng = f"{'>' if lo_open else ''}{lo:g} .. {hi:g} {unit}".strip()
    text = f"{what} [{unit}]; allowed {rng}" if unit else f"{what}; allowed {rng}"
    return Field(default, description=text + ("; null: see above" if optional else ""),
                 json_schema_extra={"unit": unit, "range": rng}, **bound)


def sigma(default, what: str):
    return phys(default, 0.0, 1.0, "", f"{what} (std of ln G = std of ln R)")


def prob(default, what: str):
    return phys(default, 0.0, 1.0, "", f"{what} (probability per device)")


READ_SIGMA = "per-read (cycle-to-cycle) noise, std as a fraction of the device conductance, drawn at every read"


class SttMramDevice(_Strict):
    """MTJ pair: parallel (P, low R, weight bit 1 on line A) / anti-parallel (AP) states."""

    model: Literal["stt_mram"] = "stt_mram"
    r_p_ohm: float = phys(D.STT_R_P_OHM, 100.0, 1e6, "Ohm", "parallel-state resistance R_P")
    tmr: float = phys(D.STT_TMR, 0.01, 10.0, "", "tunnel magnetoresistance; R_AP = R_P (1 + TMR)")
    sigma_r_p: float = sigma(D.STT_SIGMA_R, "device-to-device spread of R_P, lognormal with median R_P")
    sigma_r_ap: float = sigma(D.STT_SIGMA_R, "device-to-device spread of R_AP, lognormal with median R_AP")
    p_stuck_p: float = prob(0.0, "stuck in P")
    p_stuck_ap: float = prob(0.0, "stuck in AP")
    read_sigma: float = phys(0.0, 0.0, 0.5, "", READ_SIGMA)
    read_voltage_v: float = phys(D.STT_READ_VOLTAGE_V, 0.01, 2.0, "V", "read bias across a cell")

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
    r_lrs_ohm: float = phys(D.RRAM_R_LRS_OHM, 100.0, 1e8, "Ohm", "low-resistance state R_LRS")
    r_hrs_ohm: float = phys(D.RRAM_R_HRS_OHM, 1e3, 1e10, "Ohm", "high-resistance state R_HRS")
    sigma_lrs: float = sigma(D.RRAM_SIGMA_LRS, "device-to-device spread in LRS, lognormal with median R_LRS")
    sigma_hrs: float = sigma(D.RRAM_SIGMA_HRS, "device-to-device spread in HRS")
    p_stuck_lrs: float = prob(0.0, "stuck in LRS")
    p_stuck_hrs: float = prob(0.0, "stuck in HRS")
    read_sigma: float = phys(D.RRAM_READ_SIGMA, 0.0, 0.5, "", READ_SIGMA)
    drift_nu: float = phys(D.RRAM_DRIFT_NU, 0.0, 0.5, "", "relative loss of G per decade of time after drift_t0_s")
    drift_t0_s: float = phys(D.RRAM_DRIFT_T0_S, 1e-6, 1e6, "s", "time after programming at which drift starts", lo_open=True)
    relaxation_sigma: float = phys(0.0, 0.0, 0.5, "", "extra lognormal spread per sqrt(decade) of time after drift_t0_s")
    read_voltage_v: float = phys(D.RRAM_READ_VOLTAGE_V, 0.01, 2.0, "V", "read bias across a cell")

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
    g_on_us: float = phys(25.0, 0.1, 1000.0, "uS", "on-state conductance (aihwkit's PCM g_max reference is 25 uS)")
    on_off_ratio: float = phys(10.0, 1.0, 1e6, "", "G_on / G_off", lo_open=True)
    prog_noise_scale: float = phys(1.0, 0.0, 10.0, "", "scale of aihwkit's programming-noise fit")
    read_noise_scale: float = phys(1.0, 0.0, 10.0, "", "scale of aihwkit's read-noise fit (applied once per chip)")
    drift_scale: float = phys(1.0, 0.0, 10.0, "", "scale of aihwkit's drift fit")
    read_sigma: float = phys(0.0, 0.0, 0.5, "", READ_SIGMA)
    read_voltage_v: float = phys(0.2, 0.01, 2.0, "V", "read bias across a cell (assumption)")

    @property
    def g_on_siemens(self) -> float:
        return self.g_on_us * 1e-6

    @property
    def g_off_siemens(self) -> float:
        return self.g_on_siemens / self.on_off_ratio


class AihwkitReRamDevice(_Strict):
    """aihwkit's ``ReRamWan2022NoiseModel`` (Wan et al., Nature 2022) on each device of the pair."""

    model: Literal["aihwkit_reram_wan2022"] = "aihwkit_reram_wan2022"
    g_on_us: float = phys(40.0, 0.1, 1000.0, "uS", "on-state conductance (the model's reference g_max is 40 uS)")
    on_off_ratio: float = phys(10.0, 1.0, 1e6, "", "G_on / G_off", lo_open=True)
    noise_scale: float = phys(1.0, 0.0, 10.0, "", "scale of the model's programming-noise fit")
    read_sigma: float = phys(D.RRAM_READ_SIGMA, 0.0, 0.5, "", READ_SIGMA)
    read_voltage_v: float = phys(D.RRAM_READ_VOLTAGE_V, 0.01, 2.0, "V", "read bias across a cell")

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
    """Sense stage, sense amplifier (latch comparator) and ADC of every output line of every sub-array.

    The stage turns a row current into a sense-node voltage with one transimpedance Z (a current
    integrator: Z = t/C; a TIA: Z = R_f). ``stage: auto`` sizes Z so that two slots of a full
    sub-array row of on-state cells end at ``full_scale_v``; ``integrator`` / ``tia`` take Z from
    the circuit, and the full-scale swing must then fit ``supply_v``. Offsets and noise are
    input-referred voltages of the comparator (or the same in LSB of the nominal match voltage).
    """

    stage: Literal["auto", "integrator", "tia"] = Field("auto", description="how the transimpedance Z is given")
    supply_v: float = phys(D.SUPPLY_V, 0.3, 5.0, "V", "supply of the sense stage")
    full_scale_v: float = phys(D.SA_FULL_SCALE_V, 0.01, 5.0, "V", "sense-node swing of 2 slots x a full row of on-state cells (stage: auto)", lo_open=True)
    integration_time_s: float = phys(D.READ_TIME_S, 1e-12, 1e-3, "s", "integration time of one array read (stage integrator: "
                                     "with the capacitor it sets Z; every stage: the read window of energy and latency)",
                                     lo_open=True)
    integration_capacitance_f: float = phys(1e-12, 1e-16, 1e-8, "F", "integrating capacitor (stage: integrator)", lo_open=True)
    feedback_resistance_ohm: float = phys(1e3, 0.1, 1e9, "Ohm", "feedback resistance (stage: tia)", lo_open=True)
    offset_sigma_v: Optional[float] = phys(None, 0.0, 0.5, "V", "static comparator offset per output line, std", optional=True)
    offset_sigma_lsb: Optional[float] = phys(None, 0.0, 1e3, "LSB", "the same offset in LSB of the nominal match voltage", optional=True)
    noise_sigma_v: Optional[float] = phys(None, 0.0, 0.5, "V", "dynamic comparator noise per read, std", optional=True)
    noise_sigma_lsb: Optional[float] = phys(None, 0.0, 1e3, "LSB", "the same noise in LSB of the nominal match voltage", optional=True)
    adc_bits: Optional[int] = Field(D.ADC_BITS, ge=1, le=16, description="ADC resolution [bits]; allowed 1 .. 16; null = every count resolved")
    clip: bool = Field(True, description="clip the sensed count to [0, full scale]")

    @model_validator(mode="after")
    def _one_each(self):
        for what in ("offset", "noise"):
            if getattr(self, f"{what}_sigma_v") is not None and getattr(self, f"{what}_sigma_lsb") is not None:
                raise ValueError(f"give the {what} either as {what}_sigma_v or as {what}_sigma_lsb, not both")
        if self.full_scale_v > self.supply_v:
            raise ValueError(f"full_scale_v = {self.full_scale_v} V exceeds supply_v = {self.supply_v} V")
        return self


class CalibrationConfig(_Strict):
    """How the sense path learns each sub-array's baseline (zero-count current) and LSB (one match).

    ``reference`` (default): reference columns of the same device population per sub-array
    (all-on and all-off, ``reference_columns`` of each, read once after programming);
    ``trim``: nominal baseline and LSB, plus a per-output-line trim DAC that removes the static
    offset measured with all inputs at 0; ``nominal``: nominal device values (no calibration).
    The shifts model a calibration residue common to every line of a chip (for the noise-source
    decomposition); 0 for a real chip.
    """

    mode: Literal["reference", "trim", "nominal"] = Field(D.CALIBRATION_MODE, description="calibration scheme")
    reference_columns: int = Field(D.CALIBRATION_REFERENCE_COLUMNS, ge=1, le=256,
                                   description="reference columns of each kind (all-on, all-off) per sub-array; allowed 1 .. 256")
    trim_bits: int = Field(D.CALIBRATION_TRIM_BITS, ge=1, le=12, description="trim DAC resolution [bits]; allowed 1 .. 12")
    trim_range_lsb: float = phys(D.CALIBRATION_TRIM_RANGE_LSB, 0.0, 1e3, "LSB", "trim DAC range (+-)", lo_open=True)
    baseline_shift_lsb: float = phys(0.0, -100.0, 100.0, "LSB", "common-mode baseline error added to every read")
    gain_shift: float = phys(0.0, -0.5, 0.5, "", "common-mode relative LSB error (every line)")


class ResidualBufferConfig(_Strict):
    """Capacitive buffer holding the tau1 MAC of a residual layer until the tau2 MAC is added."""

    capacitance_f: float = phys(D.BUFFER_CAPACITANCE_F, 1e-16, 1e-9, "F", "hold capacitor", lo_open=True)
    temperature_k: float = phys(D.ROOM_TEMPERATURE_K, 1.0, 500.0, "K", "temperature of the kT/C noise")
    kt_c_noise: bool = Field(True, description="sample kT/C noise when holding")
    hold_time_s: float = phys(D.BUFFER_HOLD_TIME_S, 0.0, 1.0, "s", "hold time (one slot)")
    leak_resistance_ohm: float = Field(D.BUFFER_LEAK_RESISTANCE_OHM, ge=1e3, description="leakage of the hold node [Ohm]; "
                                       "allowed >= 1000 Ohm, .inf = none; droop V(t) = V0 exp(-t / (R C))",
                                       json_schema_extra={"unit": "Ohm", "range": ">= 1e3 Ohm"})
    gain_sigma: float = phys(D.BUFFER_GAIN_SIGMA, 0.0, 0.5, "", "static gain mismatch of the hold path per output line, std")


class ArrayConfig(_Strict):
    rows: int = Field(D.ARRAY_ROWS, ge=1, le=4096, description="rows (output lines) per sub-array; allowed 1 .. 4096")
    cols: int = Field(D.ARRAY_COLS, ge=9, le=4096, description="XNOR cells per row of a sub-array; allowed 9 .. 4096")


class AnalogConfig(_Strict):
    device: Device = Field(default_factory=SttMramDevice)
    sense_amp: SenseAmpConfig = Field(default_factory=SenseAmpConfig)
    calibration: CalibrationConfig = Field(default_factory=CalibrationConfig)
    buffer: ResidualBufferConfig = Field(default_factory=ResidualBufferConfig)
    array: ArrayConfig = Field(default_factory=ArrayConfig)
    t_inference_s: float = phys(0.0, 0.0, 1e9, "s", "time between programming and inference (drift)")

    @model_validator(mode="after")
    def _physical(self):
        allowed = (0.0, 1.0, 86400.0, 172800.0)
        if isinstance(self.device, AihwkitReRamDevice) and self.t_inference_s not in allowed:
            raise ValueError(f"t_inference_s={self.t_inference_s}: the aihwkit_reram_wan2022 model is fitted only at "
                             f"{allowed} s")
        swing = full_scale_swing_v(self)
        if swing > self.sense_amp.supply_v * (1 + 1e-9):
            raise ValueError(f"sense_amp: the full-scale swing of 2 slots x {self.array.cols} on-state cells is "
                             f"{swing:.3g} V (stage {self.sense_amp.stage}, transimpedance {transimpedance_ohm(self):.3g} Ohm), "
                             f"more than supply_v = {self.sense_amp.supply_v} V: lower the integration time or the read "
                             "voltage, or raise the capacitance / lower the feedback resistance")
        return self

    @classmethod
    def ideal(cls, **device_kw) -> "AnalogConfig":
        """Every non-ideality off (zero spread, no faults, no offsets, no buffer noise)."""
        dev = SttMramDevice(sigma_r_p=0.0, sigma_r_ap=0.0, **device_kw)
        return cls(device=dev, buffer=ResidualBufferConfig(kt_c_noise=False))


# ------------------------------------------------------------------------------- derived circuit quantities
def transimpedance_ohm(cfg: AnalogConfig) -> float:
    """Z of the sense stage: row current -> sense-node voltage."""
    sa, dev = cfg.sense_amp, cfg.device
    if sa.stage == "integrator":
        return sa.integration_time_s / sa.integration_capacitance_f
    if sa.stage == "tia":
        return sa.feedback_resistance_ohm
    return sa.full_scale_v / (2 * cfg.array.cols * dev.g_on_siemens * dev.read_voltage_v)


def volts_per_unit(cfg: AnalogConfig) -> float:
    """Sense-node voltage of a current of one nominal on-state device (the engines' unit of current)."""
    return cfg.device.read_voltage_v * cfg.device.g_on_siemens * transimpedance_ohm(cfg)


def full_scale_swing_v(cfg: AnalogConfig) -> float:
    """Sense-node voltage of 2 slots x a full row of nominal on-state cells."""
    return 2 * cfg.array.cols * volts_per_unit(cfg)


def lsb_voltage_v(cfg: AnalogConfig) -> float:
    """Sense-node voltage of one XNOR match at nominal devices: V_read (G_on - G_off) Z."""
    dev = cfg.device
    return dev.read_voltage_v * (dev.g_on_siemens - dev.g_off_siemens) * transimpedance_ohm(cfg)
