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
# (TMR = 100 %), read voltage 0.25 V. (Its minimum sense voltage, 25 mV, is the margin for reading
# ONE cell, not the step of one match in a 252-cell sum: not used, see the sense stage below.)
STT_R_P_OHM = 6e3
STT_TMR = 1.0
STT_READ_VOLTAGE_V = 0.25
# Device-to-device spread of R_P / R_AP, lognormal: sigma/mu ~ 5.3 % measured for both states
# (Princeton lungyenc/mram_mult, MramSettings.py; device-parameters.md); 0.03-0.08 brackets real
# MTJ arrays. Default 0.03; swept.
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
RRAM_READ_VOLTAGE_V = 0.2  # assumption (a read bias well below the set voltage)
# Conductance relaxation/drift: aihwkit CMO-ReRAM fit: mean drift ~ -0.089 * log(t) uS at 8-88 uS,
# i.e. ~0.2 % of G per decade at mid range (unit reading unconfirmed); default off (t_inference = 0).
RRAM_DRIFT_NU = 0.002  # relative decrease of G per decade of time after t0 (assumption from the fit above)
RRAM_DRIFT_T0_S = 1.0

# --- supply and sense stage (device-parameters.md, "Sensing in physical units")
# Core supply at 28-65 nm is ~0.8-1.2 V; the sense node must swing within it.
SUPPLY_V = 0.9  # 28 nm core supply (assumption within that range)
# The sense stage (a current integrator t/C or a TIA R_f: one transimpedance Z, after any current
# scaling) is sized so that two slots of a full sub-array row of on-state cells end at this
# voltage: V_fs = 2 * cols * G_on * V_read * Z. One XNOR match is then
# V_lsb = V_fs * (G_on - G_off) / (2 * cols * G_on): 0.78 mV for the STT default (TMR 100 %),
# 1.55 mV for the RRAM default (on/off 100): within the 1-2 mV the supply allows.
SA_FULL_SCALE_V = 0.8  # assumption: 0.1 V head-room below the supply

# --- sense amplifier / ADC
# Latch-comparator input-referred offset: sigma 3.44 mV (dynamic latch, 0.18 um, Monte Carlo; Rahman
# et al., "A High-Speed and Low-Offset Dynamic Latch Comparator", Scientific World Journal 2014,
# 258068) -- i.e. ~4 LSB of the STT default: a chip needs per-column trim (calibration mode "trim").
# Default: ideal (0), so that the default chip isolates device effects; the scenarios sweep 0-3.4 mV.
SA_OFFSET_SIGMA_V = 0.0
SA_OFFSET_UNCALIBRATED_V = 3.44e-3
# Dynamic (per-decision) comparator noise: default 0; swept (a fraction of a mV is typical of
# latches sized for mV offsets, assumption).
SA_NOISE_SIGMA_V = 0.0
# DNN+NeuroSim default ADC is 5 bits for 128x128 sub-arrays; default here: full resolution
# (ceil(log2(cells + 1)) bits: every match count resolved), i.e. no quantisation error.
ADC_BITS = None

# --- calibration of the sense path (device-parameters.md, "Calibration and the mean of a lognormal
# spread"): real macros calibrate against the device population, not against nominal values.
CALIBRATION_MODE = "reference"
# Reference columns per sub-array, of each kind (all-on, all-off): 4 + 4 extra lines per 256 rows
# (3 % area; assumption). Their finite-sample error stays in the model.
CALIBRATION_REFERENCE_COLUMNS = 4
# Per-column trim DAC (foreground offset calibration of each comparator, e.g. Miyahara et al., "A
# low-noise self-calibrating dynamic comparator for high-speed ADCs", A-SSCC 2008 (unconfirmed)):
# 6 bits over +-16 LSB, i.e. 0.5 LSB steps (assumption).
CALIBRATION_TRIM_BITS = 6
CALIBRATION_TRIM_RANGE_LSB = 16.0

# --- capacitive residual buffer (paper Sec. III: time slots tau1/tau2, analog buffer)
# kT/C: sigma_V = sqrt(k T / C); at 300 K, C = 10 fF -> 0.64 mV; 100 fF -> 0.20 mV.
# 100 fF: kT/C = 0.20 mV, a quarter of the STT default LSB (a designer sizes C so that kT/C stays
# below an LSB; 10 fF would give 0.8 LSB; assumption, swept in scenarios/noise_sources.yaml).
BUFFER_CAPACITANCE_F = 100e-15
BUFFER_HOLD_TIME_S = 10e-9  # one time slot; assumption
BUFFER_LEAK_RESISTANCE_OHM = float("inf")  # droop V(t) = V0 exp(-t / (R C)); default no leakage
BUFFER_GAIN_SIGMA = 0.0  # static per-column gain mismatch of the hold/add path

# --- energy and latency (imcnoise/imc/physics/energy.py)
# Read window of one array read (the integrator's integration time; for the auto / TIA stages the
# time the row current flows): 10 ns, a typical analog IMC macro read cycle (assumption).
READ_TIME_S = 10e-9
# Input line capacitance per cell crossed (wire ~0.2 fF/um at a ~0.5 um cell pitch, NeuroSim-style
# wire model; assumption): a line crossing a sub-array's rows is charged to V_read once per read.
LINE_CAPACITANCE_PER_CELL_F = 0.1e-15
# ADC energy by resolution, Walden figure of merit E = FoM * 2**bits: SAR ADCs reach ~1-10
# fJ/conversion-step (B. Murmann, "ADC Performance Survey 1997-2024", Stanford) (unconfirmed);
# 5 fJ/step: a 10-bit column conversion costs 5 pJ.
ADC_FOM_J_PER_STEP = 5e-15
# Digital operations at 45 nm (M. Horowitz, "Computing's energy problem (and what we can do about
# it)", ISSCC 2014): 8-bit integer add 0.03 pJ, 32-bit add 0.1 pJ; 32-bit float add 0.9 pJ,
# 32-bit float multiply 3.7 pJ. A 16-bit add (membrane / partial-sum accumulation): 0.05 pJ,
# between the 8- and 32-bit figures.
E_ADD16_J = 0.05e-12
E_FP32_ADD_J = 0.9e-12
E_FP32_MULT_J = 3.7e-12
# Poisson input: a 16-bit LFSR step and a comparison per pixel and time step (assumption: ~0.1 pJ,
# two 16-bit add-equivalents).
E_POISSON_J = 0.1e-12
# Digital layers (first, output) on a 256-lane MAC array at 1 GHz (assumption), for the latency.
DIGITAL_LANES = 256
DIGITAL_CLOCK_HZ = 1e9
