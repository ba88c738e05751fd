"""Validated configuration of an analog XNOR chip: device, cell, array, sense path, calibration, buffer, limits.

The schema only: what a chip *is*, not how it behaves (that is :mod:`imcnoise.imc.physics`).
Physical units throughout, named in the field (``_ohm``, ``_v``, ``_f``, ``_k``, ``_s`` for
seconds, ``_a`` for amperes, ``_w`` for watts, ``_siemens``/``_us`` for conductances, ``_lsb``
for one XNOR match at the sense node). Every physical field has the range a real device or
circuit can have; its unit and range are in its description (``imcnoise schema`` prints them) and
in the error a bad value raises. Every default comes from :mod:`imcnoise.defaults`, where its
source is named.

The nominal operating point of a chip (cell conductances with the access transistor, the LSB at
the sense node, the full-scale swing, the current a line and a sub-array draw) is derived here,
from the schema alone, by the functions at the end of this module; whether a configuration is
buildable (its limits, the validity of the line model) is checked by
:func:`imcnoise.imc.physics.limits.check_buildable`.

Two kinds of noise parameters, not to be confused:

* ``read_sigma`` (our device models): per-read (cycle-to-cycle) noise, drawn afresh at every
  array read, std as a fraction of the device's conductance;
* ``read_noise_scale`` (aihwkit's PCM model): a scale factor of aihwkit's own fitted read-noise
  model, applied once when the chip is drawn (aihwkit's ``drift_weights``), i.e. per chip.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Literal, Optional, Union, get_args

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from .. import defaults as D


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)


def phys(default, lo: float, hi: float, unit: str, what: str, *, lo_open: bool = False, optional: bool = False, **kw):
    """A physical field: ``what`` in ``unit``, allowed ``lo`` .. ``hi`` (``lo`` excluded when ``lo_open``)."""
    bound = {"gt" if lo_open else "ge": lo, "le": hi}
    rng = f"{'>' if lo_open else ''}{lo:g} .. {hi:g} {unit}".strip()
    text = f"{what} [{unit}]; allowed {rng}" if unit else f"{what}; allowed {rng}"
    return Field(default, description=text + ("; null: see above" if optional else ""),
                 json_schema_extra={"unit": unit, "range": rng}, **bound, **kw)


def sigma(default, what: str):
    return phys(default, 0.0, 1.0, "", f"{what} (std of ln G = std of ln R)")


def prob(default, what: str):
    return phys(default, 0.0, 1.0, "", f"{what} (probability per device)")


READ_SIGMA = "per-read (cycle-to-cycle) noise, std as a fraction of the device conductance, drawn at every read"


class TwoStateDevice(_Strict):
    """A device with an on (low-resistance, weight bit 1 on line A) and an off state.

    Every device model gives its nominal on / off conductances, the read bias across a cell and
    its per-read noise; the engines and the physics use only these (and the model's own noise
    model, :func:`imcnoise.imc.physics.devices.make_noise_model`)."""

    read_voltage_v: float
    read_sigma: float
    _stuck_fields: tuple[str, str] = ()  # the two stuck-at probabilities of a device (their sum is <= 1)

    @model_validator(mode="after")
    def _stuck_total(self):
        if self._stuck_fields:
            a, b = self._stuck_fields
            total = getattr(self, a) + getattr(self, b)
            if total > 1:
                raise ValueError(f"{a} + {b} = {total} must be <= 1")
        return self

    @property
    def g_on_siemens(self) -> float:
        raise NotImplementedError

    @property
    def g_off_siemens(self) -> float:
        raise NotImplementedError


class SttMramDevice(TwoStateDevice):
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
    _stuck_fields = ("p_stuck_p", "p_stuck_ap")

    @property
    def g_on_siemens(self) -> float:
        return 1.0 / self.r_p_ohm

    @property
    def g_off_siemens(self) -> float:
        return 1.0 / (self.r_p_ohm * (1.0 + self.tmr))


class RramDevice(TwoStateDevice):
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
    _stuck_fields = ("p_stuck_lrs", "p_stuck_hrs")

    @model_validator(mode="after")
    def _check(self):
        if self.r_hrs_ohm <= self.r_lrs_ohm:
            raise ValueError(f"r_hrs_ohm ({self.r_hrs_ohm}) must be greater than r_lrs_ohm ({self.r_lrs_ohm})")
        return self

    @property
    def g_on_siemens(self) -> float:
        return 1.0 / self.r_lrs_ohm

    @property
    def g_off_siemens(self) -> float:
        return 1.0 / self.r_hrs_ohm


class AihwkitPcmDevice(TwoStateDevice):
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


class AihwkitReRamDevice(TwoStateDevice):
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


class CellConfig(_Strict):
    """The XNOR cell around the two devices: an access transistor in series with each (2T2R)."""

    access_resistance_ohm: float = phys(D.ACCESS_RESISTANCE_OHM, 0.0, 1e7, "Ohm",
                                        "on-resistance of the access transistor in series with each device (0: none)")


SCHEMES = ("current", "voltage", "bitwise")


class SenseAmpConfig(_Strict):
    """How each output line of a sub-array is sensed and converted.

    ``scheme``: ``current`` -- the line is held at virtual ground and its current summed into a
    sense stage (a current integrator, Z = t/C, or a TIA, Z = R_f; ``stage: auto`` sizes Z so that
    two slots of a full sensing of on-state cells end at ``full_scale_v``), then an ADC;
    ``voltage`` -- the merged source line of a complementary row floats and its voltage
    V_SL = V_read sum G_read / sum (G_A + G_B) is converted (the paper's reference [3]);
    ``bitwise`` -- every cell is read by its own latch against a reference and the XNOR bits are
    counted in digital logic. Offsets and noise are input-referred voltages of the comparator
    (or the same in LSB of the nominal match voltage).
    """

    scheme: Literal["current", "voltage", "bitwise"] = Field(D.SENSE_SCHEME, description="sensing scheme: current | voltage | bitwise")
    stage: Literal["auto", "integrator", "tia"] = Field("auto", description="how the transimpedance Z is given (scheme current)")
    supply_v: float = phys(D.SUPPLY_V, 0.3, 5.0, "V", "supply of the sense stage")
    full_scale_v: float = phys(D.SA_FULL_SCALE_V, 0.01, 5.0, "V", "sense-node swing of 2 slots x a full sensing of on-state "
                               "cells (scheme current, stage auto)", lo_open=True)
    read_time_s: float = phys(D.READ_TIME_S, 1e-12, 1e-3, "s", "read window of one array read (the time the line current "
                              "flows; stage integrator: with the capacitor it sets Z)", lo_open=True,
                              validation_alias=AliasChoices("read_time_s", "integration_time_s"))
    integration_capacitance_f: float = phys(1e-12, 1e-16, 1e-8, "F", "integrating capacitor (stage: integrator)", lo_open=True)
    feedback_resistance_ohm: float = phys(1e3, 0.1, 1e9, "Ohm", "feedback resistance (stage: tia)", lo_open=True)
    offset_sigma_v: Optional[float] = phys(None, 0.0, 0.5, "V", "static comparator offset per output line (per latch: "
                                           "bitwise), std, before calibration", optional=True)
    offset_sigma_lsb: Optional[float] = phys(None, 0.0, 1e3, "LSB", "the same offset in LSB of the nominal match voltage", optional=True)
    noise_sigma_v: Optional[float] = phys(None, 0.0, 0.5, "V", "dynamic comparator noise per read (per decision), std", optional=True)
    noise_sigma_lsb: Optional[float] = phys(None, 0.0, 1e3, "LSB", "the same noise in LSB of the nominal match voltage", optional=True)
    adc_bits: Optional[int] = Field(D.ADC_BITS, ge=1, le=16, description="ADC resolution [bits]; allowed 1 .. 16; null = every "
                                    "count resolved (schemes current, voltage)")
    adc_share: int = Field(D.ADC_SHARE, ge=1, le=4096, description="output lines per ADC (converted one after the other); "
                           "allowed 1 .. 4096")
    adc_bit_time_s: float = phys(D.ADC_BIT_TIME_S, 0.0, 1e-3, "s", "SAR cycle: one conversion takes (bits + 1) cycles")
    adc_fom_j_per_step: float = phys(D.ADC_FOM_J_PER_STEP, 0.0, 1e-9, "J", "ADC energy per conversion step (Walden figure "
                                     "of merit): one conversion costs FoM 2**bits")
    bit_margin_v: float = phys(D.BIT_MARGIN_V, 1e-4, 1.0, "V", "scheme bitwise: latch-input difference between a nominal "
                               "on-state and off-state cell read", lo_open=True)
    clip: bool = Field(True, description="clip the sensed count to [0, full scale]")

    @model_validator(mode="after")
    def _one_each(self):
        for what in ("offset", "noise"):
            if getattr(self, f"{what}_sigma_v") is not None and getattr(self, f"{what}_sigma_lsb") is not None:
                raise ValueError(f"give the {what} either as {what}_sigma_v or as {what}_sigma_lsb, not both")
        if self.full_scale_v > self.supply_v:
            raise ValueError(f"full_scale_v = {self.full_scale_v} V exceeds supply_v = {self.supply_v} V")
        return self


CALIBRATION_MODES = ("reference", "trim", "reference_trim", "nominal")


class CalibrationConfig(_Strict):
    """How the sense path learns each line's baseline (zero-count level) and LSB (one match), and
    how it cancels each line's static offset -- measured through the chip's own noisy path.

    ``reference``: reference rows of the same device population per sub-array (``reference_columns``
    of them, read with all inputs at 1 and at 0) give baseline and LSB; ``trim``: nominal baseline
    and LSB, plus a per-line trim DAC that cancels the static error measured with all inputs at 0;
    ``reference_trim``: both (the reference rows set the converter's range, the trim DACs cancel
    each line's offset); ``nominal``: nominal device values (what the simulator knows, not the
    chip). Every calibration read goes through the sense path of the line it calibrates (device
    read noise, comparator offset and noise, kT/C of a held slot) and is averaged over ``reads``
    reads (null: an exact, noise-free measurement -- not what a chip can do; for the legacy chip).
    The shifts model a calibration residue common to every line of a chip (for the noise-source
    decomposition); 0 for a real chip.
    """

    mode: Literal["reference", "trim", "reference_trim", "nominal"] = Field(D.CALIBRATION_MODE, description="calibration scheme")
    reads: Optional[int] = Field(D.CALIBRATION_READS, ge=1, le=1 << 20, description="reads averaged per calibration "
                                 "measurement; allowed 1 .. 1048576; null = exact, noise-free (legacy)")
    reference_columns: int = Field(D.CALIBRATION_REFERENCE_COLUMNS, ge=1, le=256,
                                   description="reference rows of each sub-array; allowed 1 .. 256")
    trim_bits: int = Field(D.CALIBRATION_TRIM_BITS, ge=1, le=12, description="trim DAC resolution [bits]; allowed 1 .. 12")
    trim_range_lsb: float = phys(D.CALIBRATION_TRIM_RANGE_LSB, 0.0, 1e3, "LSB", "trim DAC range (+-)", lo_open=True)
    baseline_shift_lsb: float = phys(0.0, -100.0, 100.0, "LSB", "common-mode baseline error added to every read")
    gain_shift: float = phys(0.0, -0.5, 0.5, "", "common-mode relative LSB error (every line)")


class AdaptationConfig(_Strict):
    """Per-chip adaptation after programming and calibration (batch-norm re-estimation on the chip,
    :mod:`imcnoise.imc.engines.adaptation`): the chip runs ``images`` unlabelled training images,
    compares each binary layer's per-row statistics of its own sensed counts with the software
    model's statistics of the same images (stored with the program) and re-folds each neuron's bias
    (``bias``), or its bias and threshold (``bias_threshold``), into its registers, adjusted in steps
    of ``register_lsb`` counts (:func:`imcnoise.imc.program.refold.refold_registers`)."""

    mode: Literal["off", "bias", "bias_threshold"] = Field(D.ADAPTATION_MODE, description="off | bias (re-estimated mean) "
                                                           "| bias_threshold (mean and spread)")
    images: int = Field(D.ADAPTATION_IMAGES, ge=1, le=4096, description="unlabelled training images the chip runs "
                        "(never evaluation images); allowed 1 .. 4096")
    register_lsb: float = phys(D.ADAPTATION_REGISTER_LSB, 0.0, 1.0, "count", "step of the neuron's adjustment registers "
                               "(0: exact, not a chip)")


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
    """Sub-array geometry and the summing lines.

    A row of a sub-array (one output neuron's cells in one column tile) is split into sensings of
    ``cells_per_sensing`` cells; each sensing is its own summing line (a segment with its own
    sense path), and the partial counts of a row are added digitally. ``rows_per_read`` rows are
    read at once (each with its own lines); a sub-array takes ceil(rows / rows_per_read) reads per
    input vector."""

    rows: int = Field(D.ARRAY_ROWS, ge=1, le=4096, description="rows (output neurons) per sub-array; allowed 1 .. 4096")
    cols: int = Field(D.ARRAY_COLS, ge=9, le=4096, description="XNOR cells per row of a sub-array; allowed 9 .. 4096")
    cells_per_sensing: Optional[int] = Field(D.CELLS_PER_SENSING, ge=9, le=4096, description="cells of a row driven and sensed "
                                             "together (one summing line), at most a sub-array row; allowed 9 .. 4096 (a 3x3 "
                                             "kernel is never split); null = a whole sub-array row")
    rows_per_read: Optional[int] = Field(D.ROWS_PER_READ, ge=1, le=4096, description="rows of a sub-array read at once; "
                                         "allowed 1 .. 4096; null = all rows")
    wire_resistance_ohm: float = phys(D.WIRE_RESISTANCE_OHM, 0.0, 1e3, "Ohm", "resistance of the summing line per cell pitch")

    @property
    def sensing_cells(self) -> int:
        """Cells per sensing: ``cells_per_sensing``, at most a whole sub-array row (null: the row)."""
        return self.cols if self.cells_per_sensing is None else min(self.cells_per_sensing, self.cols)

    @property
    def read_rows(self) -> int:
        """Rows read at once."""
        return self.rows if self.rows_per_read is None else min(self.rows_per_read, self.rows)


class LimitsConfig(_Strict):
    """What a buildable chip must respect; a configuration beyond a limit is refused
    (:func:`imcnoise.imc.physics.limits.check_buildable`). ``.inf`` switches a limit off."""

    cell_current_a: float = phys(D.MAX_CELL_CURRENT_A, 0.0, math.inf, "A", "largest current through one device during a "
                                 "read (read disturb)", lo_open=True)
    line_current_a: float = phys(D.MAX_LINE_CURRENT_A, 0.0, math.inf, "A", "largest current in one summing line "
                                 "(electromigration)", lo_open=True)
    subarray_power_w: float = phys(D.MAX_SUBARRAY_POWER_W, 0.0, math.inf, "W", "largest power one sub-array read draws",
                                   lo_open=True)
    ir_drop_fraction: float = phys(D.MAX_IR_DROP_FRACTION, 0.0, math.inf, "", "largest deviation of a summing line's node "
                                   "voltages from nominal, relative to the read voltage (the devices stay ohmic)", lo_open=True)


class AnalogConfig(_Strict):
    """A chip: its devices, cells, sub-arrays, sense path, calibration, residual buffer and limits."""

    device: Device = Field(default_factory=SttMramDevice)
    cell: CellConfig = Field(default_factory=CellConfig)
    array: ArrayConfig = Field(default_factory=ArrayConfig)
    sense_amp: SenseAmpConfig = Field(default_factory=SenseAmpConfig)
    calibration: CalibrationConfig = Field(default_factory=CalibrationConfig)
    buffer: ResidualBufferConfig = Field(default_factory=ResidualBufferConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    adaptation: AdaptationConfig = Field(default_factory=AdaptationConfig)
    mapping: Literal["xnor", "gated"] = Field(D.MAPPING, description="how a binary row drives its cells: xnor (the paper's "
                                              "complementary pair, every cell conducts) | gated (only inputs at 1 conduct, "
                                              "a differential pair read as I+ - I-)")
    t_inference_s: float = phys(0.0, 0.0, 1e9, "s", "time between programming and inference (drift)")

    @model_validator(mode="after")
    def _physical(self):
        allowed = (0.0, 1.0, 86400.0, 172800.0)
        if isinstance(self.device, AihwkitReRamDevice) and self.t_inference_s not in allowed:
            raise ValueError(f"t_inference_s={self.t_inference_s}: the aihwkit_reram_wan2022 model is fitted only at "
                             f"{allowed} s")
        if self.sense_amp.scheme == "current":
            swing = full_scale_swing_v(self)
            if swing > self.sense_amp.supply_v * (1 + 1e-9):
                raise ValueError(f"sense_amp: the full-scale swing of 2 slots x {self.array.sensing_cells} on-state cells is "
                                 f"{swing:.3g} V (stage {self.sense_amp.stage}, transimpedance {transimpedance_ohm(self):.3g} "
                                 f"Ohm), more than supply_v = {self.sense_amp.supply_v} V: lower the read time or the read "
                                 "voltage, or raise the capacitance / lower the feedback resistance")
        if self.mapping == "gated" and self.sense_amp.scheme == "voltage":
            raise ValueError("mapping: gated cannot be sensed with sense_amp.scheme = voltage: a gated row's two merged lines "
                             "float at V sum_j x_j G+_j / sum_j G+_j and V sum_j x_j G-_j / sum_j G-_j, whose totals depend on "
                             "the stored weights (n1 + r n0 and n0 + r n1), so their difference is not a function of the XNOR "
                             "count even with ideal devices; use sense_amp.scheme current or bitwise with mapping gated")
        if self.sense_amp.scheme == "voltage" and 2 * self.device.read_voltage_v > self.sense_amp.supply_v * (1 + 1e-9):
            raise ValueError(f"sense_amp: the merged-line voltage of 2 slots reaches 2 x read_voltage_v = "
                             f"{2 * self.device.read_voltage_v:g} V, more than supply_v = {self.sense_amp.supply_v} V")
        return self

    @classmethod
    def ideal(cls, device=None, **sections) -> "AnalogConfig":
        """The default chip with every non-ideality off: zero spread, no faults, no offsets, no wire
        resistance, no buffer noise, a full-resolution ADC. ``device``: another (ideal) device;
        ``sections``: fields to set per section, e.g. ``sense_amp={"scheme": "bitwise"}``."""
        doc = {"device": device if device is not None else SttMramDevice(sigma_r_p=0.0, sigma_r_ap=0.0),
               "buffer": {"kt_c_noise": False}, "sense_amp": {"offset_sigma_v": 0.0, "adc_bits": None},
               "array": {"wire_resistance_ohm": 0.0}}
        for k, v in sections.items():
            doc[k] = {**doc.get(k, {}), **v} if isinstance(v, dict) and isinstance(doc.get(k), dict) else v
        return cls(**doc)


ChipConfig = AnalogConfig


# ------------------------------------------------------------------------------- the nominal operating point
def series_siemens(g_device_siemens: float, r_series_ohm: float) -> float:
    """Conductance of a device in series with a resistance: 1 / (1/G + R) (exactly G when R = 0)."""
    return g_device_siemens if r_series_ohm == 0 else 1.0 / (1.0 / g_device_siemens + r_series_ohm)


def cell_g_on_siemens(cfg: AnalogConfig) -> float:
    """Nominal on-state conductance of a cell's read path: the device in series with its access transistor."""
    return series_siemens(cfg.device.g_on_siemens, cfg.cell.access_resistance_ohm)


def cell_g_off_siemens(cfg: AnalogConfig) -> float:
    return series_siemens(cfg.device.g_off_siemens, cfg.cell.access_resistance_ohm)


def cell_off_ratio(cfg: AnalogConfig) -> float:
    """G_off / G_on of a nominal cell (the engines' conductances are normalised to the cell's G_on)."""
    return cell_g_off_siemens(cfg) / cell_g_on_siemens(cfg)


def transimpedance_ohm(cfg: AnalogConfig) -> float:
    """Z of the current sense stage: line current -> sense-node voltage."""
    sa = cfg.sense_amp
    if sa.stage == "integrator":
        return sa.read_time_s / sa.integration_capacitance_f
    if sa.stage == "tia":
        return sa.feedback_resistance_ohm
    return sa.full_scale_v / (2 * cfg.array.sensing_cells * cell_g_on_siemens(cfg) * cfg.device.read_voltage_v)


def volts_per_unit(cfg: AnalogConfig) -> float:
    """Sense-node voltage of one unit of line signal (the current of one nominal on-state cell).

    Scheme current: V_read G_on Z. Scheme voltage: the merged line divides by the line's total
    conductance, V_SL = V_read sum G_read / sum G_tot, so one unit is V_read / sum G_tot -- here
    for nominal cells (n (1 + r) units); the engines use each line's own sum. Scheme bitwise: the
    latch input of one nominal on-state cell read, bit_margin_v / (1 - r)."""
    sa, dev = cfg.sense_amp, cfg.device
    if sa.scheme == "voltage":
        return dev.read_voltage_v / (cfg.array.sensing_cells * (1.0 + cell_off_ratio(cfg)))
    if sa.scheme == "bitwise":
        return sa.bit_margin_v / (1.0 - cell_off_ratio(cfg))
    return dev.read_voltage_v * cell_g_on_siemens(cfg) * transimpedance_ohm(cfg)


def full_scale_swing_v(cfg: AnalogConfig) -> float:
    """Sense-node voltage of 2 slots x a full sensing of nominal on-state cells (scheme current)."""
    return 2 * cfg.array.sensing_cells * volts_per_unit(cfg)


def lsb_voltage_v(cfg: AnalogConfig) -> float:
    """Sense-node voltage of one XNOR match at nominal cells: volts_per_unit (1 - G_off / G_on)."""
    if cfg.sense_amp.scheme == "current" and cfg.cell.access_resistance_ohm == 0:  # the legacy expression, bit for bit
        dev = cfg.device
        return dev.read_voltage_v * (dev.g_on_siemens - dev.g_off_siemens) * transimpedance_ohm(cfg)
    return volts_per_unit(cfg) * (1.0 - cell_off_ratio(cfg))


# ------------------------------------------------------------------------------- reading and error messages
def read_chip_section(path) -> dict:
    """The chip section of a chip YAML file: a chip section alone, or a scenario with a ``chip:``
    section (strict YAML, :mod:`imcnoise.yamlio`). ValueError naming the file and what is wrong."""
    from pathlib import Path

    import yaml

    from .. import yamlio

    p = Path(path)
    try:
        doc = yamlio.load(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read the chip file {p} ({type(exc).__name__}: {exc})") from None
    if isinstance(doc, dict) and "chip" in doc:
        doc = doc["chip"]
    if not isinstance(doc, dict):
        raise ValueError(f"{p} is not a chip section (a YAML mapping), found {type(doc).__name__}")
    return doc


def chip_from_file(path, where: str) -> "AnalogConfig":
    """A validated chip configuration from a chip YAML file; ``where`` (what the user gave it as, e.g.
    an option name) prefixes every error. ValueError with one line per problem."""
    from pydantic import ValidationError

    try:
        doc = read_chip_section(path)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    try:
        return AnalogConfig.model_validate(doc)
    except ValidationError as exc:
        raise ValueError(format_validation_error(exc, f"{where} {path}", prefix="chip")) from None


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def format_validation_error(exc, source: str, prefix: str = "", root=None) -> str:
    """One line per pydantic error: ``source: path.to.field: message [allowed range] (got value)``;
    ``root``: the model the document is an instance of (its fields name the allowed keys and ranges;
    default the chip, :class:`AnalogConfig`)."""
    root = AnalogConfig if root is None else root
    lines = []
    for e in exc.errors():
        loc = [p for p in e["loc"] if p not in device_tags()]  # pydantic puts the union's tag in the path
        where = _loc(tuple(loc))
        where = f"{prefix}.{where}" if prefix and where else (prefix or where or "(top level)")
        value = e.get("input")
        shown = json.dumps(value) if isinstance(value, (int, float, str, bool, type(None))) else type(value).__name__
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            parent = _parent_fields(root, e["loc"])
            msg = "unknown key" + (f"; allowed keys: {', '.join(parent)}" if parent else "")
        else:
            extra = _field_extra(root, e["loc"])
            if extra.get("range"):
                msg += f" [allowed {extra['range']}]"
        lines.append(f"{source}: {where}: {msg} (got {shown})")
    return "\n".join(lines)


def _field_extra(root, loc: tuple) -> dict:
    """The unit and allowed range of the field at a pydantic error location (physical fields)."""
    info = getattr(_model_at(root, tuple(loc)[:-1]), "model_fields", {}).get(loc[-1]) if loc else None
    extra = info.json_schema_extra if info is not None else None
    return extra if isinstance(extra, dict) else {}


class _Union:
    """The member models of a union field (the device models), for :func:`_field_extra`."""

    def __init__(self, members):
        self.__args__ = tuple(members)
        self.model_fields = {}


def _parent_fields(root, loc: tuple) -> list[str]:
    """The keys allowed beside the last element of a pydantic location (union tags resolved)."""
    model = _model_at(root, tuple(loc)[:-1])
    return list(getattr(model, "model_fields", {}).keys()) if model is not None else []


def _model_at(root, loc: tuple):
    """The pydantic model at a location of a ``root`` document (the device union by its tag)."""
    model = root
    for part in loc:
        if model is None or isinstance(part, int):
            return None
        fields = getattr(model, "model_fields", {})
        if part not in fields:  # a tag of the device union
            model = {m.model_fields["model"].default: m for m in getattr(model, "__args__", ())}.get(part)
            continue
        kind, sub = field_models(fields[part].annotation)
        model = sub if kind == "model" else (_Union(sub) if kind == "union" else None)
    return model


def field_models(annotation) -> tuple[str, object]:
    """What a field's annotation holds: ("model", the pydantic model), ("union", its member models:
    the device union, told apart by their ``model`` tag) or ("value", None). The one rule every walk
    over the schema uses (error messages here, ``imcnoise schema``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "model", annotation
    members = [a for a in getattr(annotation, "__args__", ()) if isinstance(a, type) and issubclass(a, BaseModel)]
    if members:
        return "union", members
    return "value", None


def iter_fields(model, prefix: str = ""):
    """(path, field) of every value field under ``model``: nested models by ``a.b``, the device
    union's members by ``a[tag].b`` (:func:`field_models`)."""
    for name, f in model.model_fields.items():
        path = f"{prefix}{name}"
        kind, sub = field_models(f.annotation)
        if kind == "model":
            yield from iter_fields(sub, path + ".")
        elif kind == "union" and all("model" in m.model_fields for m in sub):
            for m in sub:
                yield from iter_fields(m, f"{path}[{m.model_fields['model'].default}].")
        else:
            yield path, f


