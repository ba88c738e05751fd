"""Physics constants and device / circuit defaults, each with its source.

Every default used by :mod:`imcnoise.imc` is defined here, once. Figures marked "assumption" are
modelling choices of this project, not measurements; sweep them rather than trusting them.
See also ``../shared/reference/device-parameters.md``.
"""

from __future__ import annotations

# --- physical constants (CODATA 2018, exact since the 2019 SI redefinition)
BOLTZMANN_J_PER_K = 1.380649e-23
ROOM_TEMPERATURE_K = 300.0

# --- XNOR array geometry
ARRAY_ROWS = 256  # rows (output neurons) per sub-array; assumption, common macro size
ARRAY_COLS = 256  # XNOR cells (complementary device pairs) per row of a sub-array; assumption
# Conductances of programmed devices are held on a grid of G_on_nominal / 2**CONDUCTANCE_GRID_BITS.
# 2**-12 = 0.024 % of G_on, far below any device spread; it makes every array MAC an exact fp32
# sum (<= 2 * 256 cells), so every engine (aihwkit tiles, fast grouped convolutions, CPU or GPU)
# computes bit-identical currents. Assumption (numerical, not physical).
CONDUCTANCE_GRID_BITS = 12
# ... and clipped to 8 x G_on_nominal (no device conducts 8x its nominal on-state value), so a
# 256-cell sub-array's current is at most 2 * 256 * 8 = 2**12 G_on = 2**24 grid steps: exact in fp32.
CONDUCTANCE_MAX_NORM = 8.0

# --- STT-MRAM magnetic tunnel junction
# NVSim sample STT-RAM cell (sample_STTRAM.cell, NVSim repository): R_P = 6 kOhm, R_AP = 12 kOhm
# (TMR = 100 %), read voltage 0.25 V, minimum sense voltage 25 mV.
STT_R_P_OHM = 6e3
STT_TMR = 1.0
STT_READ_VOLTAGE_V = 0.25
STT_MIN_SENSE_VOLTAGE_V = 25e-3
# Device-to-device spread of R_P / R_AP: "a few percent", lognormal (unconfirmed; swept).
STT_SIGMA_R = 0.03

# --- RRAM
# NVSim sample RRAM cell: R_on (LRS) = 100 kOhm, R_off (HRS) = 10 MOhm.
RRAM_R_LRS_OHM = 100e3
RRAM_R_HRS_OHM = 10e6
# Device-to-device spread (lognormal sigma of ln R). CrossSim RRAM_Milo: sigma_G ~ -0.0091*G + 4.78 uS
# at 50-225 uS, i.e. ~3-9 % of G; HRS spreads are typically wider (assumption: twice the LRS one).
RRAM_SIGMA_LRS = 0.05
RRAM_SIGMA_HRS = 0.10
# Per-read (cycle-to-cycle) noise: aihwkit recommends ~1 % additional read noise for ReRAM models.
RRAM_READ_SIGMA = 0.01
RRAM_READ_VOLTAGE_V = 0.2  # assumption (typical sub-set read bias)
# Conductance relaxation/drift: aihwkit CMO-ReRAM fit: mean drift ~ -0.089 * log(t) uS at 8-88 uS,
# i.e. ~0.2 % of G per decade at mid range (unit reading unconfirmed); default off (t_inference = 0).
RRAM_DRIFT_NU = 0.002  # relative decrease of G per decade of time after t0 (assumption from the fit above)
RRAM_DRIFT_T0_S = 1.0

# --- sense amplifier / ADC
# No confirmed mV offset figure: the offset is expressed in LSB of one XNOR match (and optionally
# in volts through the per-match sense voltage) and swept. Defaults: ideal.
SA_OFFSET_SIGMA_LSB = 0.0
SA_NOISE_SIGMA_LSB = 0.0
# One XNOR match on the sense node: NVSim's minimum sense voltage (25 mV), used to convert volts <-> LSB.
SA_LSB_VOLTAGE_V = STT_MIN_SENSE_VOLTAGE_V
# DNN+NeuroSim default ADC is 5 bits for 128x128 sub-arrays; default here: full resolution
# (ceil(log2(cells + 1)) bits: every match count resolved), i.e. no quantisation error.
ADC_BITS = None

# --- capacitive residual buffer (paper Sec. III: time slots tau1/tau2, analog buffer)
# kT/C: sigma_V = sqrt(k T / C); at 300 K, C = 10 fF -> 0.64 mV; 100 fF -> 0.20 mV.
BUFFER_CAPACITANCE_F = 10e-15  # assumption
BUFFER_HOLD_TIME_S = 10e-9  # one time slot; assumption
BUFFER_LEAK_RESISTANCE_OHM = float("inf")  # droop V(t) = V0 exp(-t / (R C)); default no leakage
BUFFER_GAIN_SIGMA = 0.0  # static per-column gain mismatch of the hold/add path
