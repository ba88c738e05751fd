"""Physics constants and device / circuit defaults, each with its source.

Every default used by :mod:`imcnoise.imc` is defined here, once. Figures marked "assumption" are
modelling choices of this project, not measurements; sweep them rather than trusting them.
See also ``../shared/reference/device-parameters.md``.
"""

from __future__ import annotations

# --- physical constants (CODATA 2018, exact since the 2019 SI redefinition)
BOLTZMANN_J_PER_K = 1.380649e-23
ROOM_TEMPERATURE_K = 300.0

# --- XNOR array geometry (the buildable default, README "The default chip")
# DNN+NeuroSim V1.3 default sub-array 128 x 128 (Param.cpp numRowSubArray / numColSubArray).
ARRAY_ROWS = 128
ARRAY_COLS = 128
# Cells driven and sensed together: 63, the most whose count a 6-bit converter resolves one by one
# (64 codes: 0..63 matches; a convolution's sensing holds 7 whole 3x3 channels = 63 cells anyway);
# published macros sense 64-128 cells at once (Jung et al., Nature 601:211, 2022: 64 x 64 MRAM
# crossbar; device-parameters.md "Buildable operating points").
CELLS_PER_SENSING = 63
# Rows read at once: 16, the largest power of two whose lines (16 rows x sensings of 63 + 63 + 2 cells,
# merged-line voltage sensing at 0.2 V: <= 0.13 mW per 63-cell line, 4.2 mW in all) stay within the
# 5 mW sub-array read power below (MAX_SUBARRAY_POWER_W); the other rows take further reads.
ROWS_PER_READ = 16
# The summing line (a row's merged source line) is drawn in an intermediate metal twice the minimum
# 22 nm wire of DNN+NeuroSim V1.3 (Param.cpp: 40 nm wide, aspect ratio 1.9, 4.03e-8 Ohm m): 80 nm wide,
# NeuroSim's aspect ratio 1.7 and resistivity 3.31e-8 Ohm m at that width -> 80 x 136 nm, 3.04 Ohm/um,
# 0.49 Ohm per 160 nm cell pitch (NeuroSim's 1T1R cell: 4F high at 40 nm). (A minimum M1 line: 13.3
# Ohm/um, 2.1 Ohm per cell; 2 Ohm per cell at 65 nm, X-CHANGR arXiv:1907.00285.) Swept.
LINE_WIDTH_M, LINE_HEIGHT_M, LINE_RESISTIVITY_OHM_M, CELL_PITCH_M = 80e-9, 136e-9, 3.31e-8, 160e-9
WIRE_RESISTANCE_OHM = round(LINE_RESISTIVITY_OHM_M / (LINE_WIDTH_M * LINE_HEIGHT_M) * CELL_PITCH_M, 3)  # 0.487 Ohm
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
# Read bias: NVSim's sample cell reads at 0.25 V; the buildable default reads at 0.2 V so that the
# largest current a merged-line read puts through a device, V G_on / (1 + G_off/G_on) = 17 uA with
# the access transistor, stays below the 20 uA read-disturb limit (MAX_CELL_CURRENT_A; at 0.25 V: 21 uA).
STT_READ_VOLTAGE_V = 0.2
# Device-to-device spread of R_P / R_AP, lognormal: sigma/mu ~ 5.3 % measured for both states
# (Princeton lungyenc/mram_mult, MramSettings.py; device-parameters.md); 0.03-0.08 brackets real
# MTJ arrays; a 40 nm STT-MRAM macro measured CV 5.1 % (R_P 3364 +- 172 Ohm) and 5.2 % (R_AP) (Nature
# Electronics 2025, doi:10.1038/s41928-025-01479-y, Extended Data Fig. 1). Default: the measured 0.05; swept.
STT_SIGMA_R = 0.05

# Access transistor in series with every device (2T2MTJ cell): 1.5 kOhm = 0.25 x R_on of the 6 kOhm
# MTJ (DNN+NeuroSim V1.3: access resistance 0.25 R_on); with it the effective TMR falls from 100 %
# to 80 % (device-parameters.md).
ACCESS_RESISTANCE_OHM = 1.5e3

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

# --- mapping of a binary row onto cells
# Default: the paper's unipolar XNOR mapping (eq. 10): a complementary pair per cell, the input bit
# driving line A and its complement line B, so every cell conducts one device on every read. The
# alternative ``gated`` (only inputs at 1 conduct: the AND form of eq. 8 with positive / negative
# lines, the differential-pair crossbars of SNN accelerators) is selected per chip.
MAPPING = "xnor"

# --- sense amplifier / ADC
# Default scheme: the merged source-line voltage of a complementary row (the paper's reference [3],
# Pham et al., ISCAS 2021; STT-BNN, IEEE JETCAS 12(2):569, 2022).
SENSE_SCHEME = "voltage"
# scheme bitwise: difference at the latch input between an on-state and an off-state cell read: the
# NVSim sample cell's minimum sense voltage, 25 mV (the margin for reading ONE cell).
BIT_MARGIN_V = 25e-3
# Latch-comparator input-referred offset: sigma 3.44 mV (dynamic latch, 0.18 um, Monte Carlo; Rahman
# et al., "A High-Speed and Low-Offset Dynamic Latch Comparator", Scientific World Journal 2014,
# 258068), the same order as the default below.
# Default: the offset of a 55 nm CIM comparator array before calibration, 14.7 mV at 3.3 sigma,
# i.e. 4.5 mV (1.03 mV at 3.3 sigma = 0.31 mV after its binary-search trim; Microelectronics &
# Computer 2025, doi:10.19304/J.ISSN1000-7180.2025.0018, abstract): the chip's trim removes it.
SA_OFFSET_SIGMA_V = 4.5e-3
# Dynamic (per-decision) comparator noise: default 0; swept (a fraction of a mV is typical of
# latches sized for mV offsets, assumption).
SA_NOISE_SIGMA_V = 0.0
# ADC: 6-bit SAR converters shared by several columns (Deaville et al., JSSC 60(5), 2025, 22 nm
# MRAM CIM); DNN+NeuroSim V1.3: 8 columns per ADC (numColMuxed), 5-bit ADC.
ADC_BITS = 6
ADC_SHARE = 8
# SAR conversion time: (bits + 1) cycles of 1 ns (DNN+NeuroSim SarADC.cpp: latency (log2(levels) + 1) ns).
ADC_BIT_TIME_S = 1e-9

# --- calibration of the sense path (device-parameters.md, "Calibration and the mean of a lognormal
# spread"): real macros calibrate against the device population, not against nominal values.
# Default: reference rows set the converter's range and a per-line trim DAC cancels each line's
# offset (published macros calibrate their offsets: ~4.5 mV before, ~0.3 mV after in a 55 nm CIM
# comparator array, device-parameters.md).
CALIBRATION_MODE = "reference_trim"
# Reads averaged per calibration measurement (assumption: a power-up calibration of a few us).
CALIBRATION_READS = 16
# Reference rows per sub-array, of each kind (all-on, all-off): 4 + 4 extra lines per 128 rows
# (6 % area; assumption). Their finite-sample error stays in the model.
CALIBRATION_REFERENCE_COLUMNS = 4
# Per-column trim DAC (foreground offset calibration of each comparator, e.g. Miyahara et al., "A
# low-noise self-calibrating dynamic comparator for high-speed ADCs", A-SSCC 2008 (unconfirmed)):
# 6 bits over +-16 LSB, i.e. 0.5 LSB steps (assumption).
CALIBRATION_TRIM_BITS = 6
CALIBRATION_TRIM_RANGE_LSB = 16.0

# --- per-chip adaptation of the folded neurons after programming (chip.adaptation)
# Batch-norm statistics re-estimated on the target's own data with a few hundred unlabelled inputs
# (AdaBN: Li et al., "Adaptive Batch Normalization for practical domain adaptation", Pattern
# Recognition 80:109, 2018; the same re-estimation on programmed analog hardware recovers most of the
# lost accuracy, the literature's "few hundred" images): 256 training images, off by default (the
# shipped tables are without it).
ADAPTATION_MODE = "off"
ADAPTATION_IMAGES = 256
# The neuron's adjustment registers hold a shift in count units at 2**-4 steps (4 fractional bits,
# assumption): their rounding error, <= 1/32 count, is a tenth of a 1-LSB converter's own rms
# quantisation error (1/sqrt(12) = 0.29 LSB).
ADAPTATION_REGISTER_LSB = 2.0 ** -4

# --- capacitive residual buffer (paper Sec. III: time slots tau1/tau2, analog buffer)
# kT/C: sigma_V = sqrt(k T / C); at 300 K, C = 10 fF -> 0.64 mV; 100 fF -> 0.20 mV.
# 100 fF: kT/C = 0.20 mV, a quarter of the STT default LSB (a designer sizes C so that kT/C stays
# below an LSB; 10 fF would give 0.8 LSB; assumption, swept in scenarios/noise_sources.yaml).
BUFFER_CAPACITANCE_F = 100e-15
BUFFER_HOLD_TIME_S = 10e-9  # one time slot; assumption
BUFFER_LEAK_RESISTANCE_OHM = float("inf")  # droop V(t) = V0 exp(-t / (R C)); default no leakage
BUFFER_GAIN_SIGMA = 0.0  # static per-column gain mismatch of the hold/add path

# --- limits of a buildable chip (imcnoise/imc/physics/limits.py)
# Read disturb: "the sensing current should be < 20 uA to protect the read disturbance in the beyond
# 45-nm technology" (Na, Kim, Kim, Kang, Jung, IEEE TVLSI 22(7):1620, 2014).
MAX_CELL_CURRENT_A = 20e-6
# Electromigration of a summing line: Cu design current densities are ~1-2 MA/cm^2 (onset 1e6-1e7
# A/cm^2; secondary sources, unconfirmed): the summing line above (80 x 136 nm) at 2 MA/cm^2 carries
# 0.22 mA (a minimum 22 nm M1 line ~30-60 uA). Swept rather than trusted.
EM_CURRENT_DENSITY_A_PER_M2 = 2e10  # 2 MA/cm^2
MAX_LINE_CURRENT_A = round(EM_CURRENT_DENSITY_A_PER_M2 * LINE_WIDTH_M * LINE_HEIGHT_M, 6)  # 0.218 mA
# Peak power of one sub-array read: assumption, 5 mW (a 128 x 128 sub-array of a macro whose
# ~8-16 active sub-arrays stay within ~50 mW; 22 nm MRAM macros report peak current as a supply-
# integrity problem (ISSCC 2021, 13.4), no figure found).
MAX_SUBARRAY_POWER_W = 5e-3
# The summing line's node voltages may deviate by at most 10 % of the read voltage (assumption): the
# line network is solved exactly for ohmic devices, and an MTJ's conductance changes with its bias.
MAX_IR_DROP_FRACTION = 0.1

# --- energy and latency (imcnoise/imc/physics/energy.py)
# Read window of one array read (the time the line current flows; a current integrator's
# integration time): 10 ns (DNN+NeuroSim V1.3 Param.cpp readPulseWidth = 10e-9 s).
READ_TIME_S = 10e-9
# Input line capacitance per cell crossed (wire ~0.2 fF/um at a ~0.5 um cell pitch, NeuroSim-style
# wire model; assumption): a line crossing a sub-array's rows is charged to V_read once per read.
LINE_CAPACITANCE_PER_CELL_F = 0.1e-15
# ADC energy by resolution, Walden figure of merit E = FoM * 2**bits per conversion.
# Default figure of merit: 10.2 fJ/conversion-step of a pitch-matched 3-8 bit SAR / single-slope ADC
# for compute-in-memory (Fan et al., ISCAS 2022, doi:10.1109/ISCAS48785.2022.9937285, 65 nm, abstract):
# 0.65 pJ per 6-bit conversion. (Standalone 5-8 bit SAR ADCs: median ~34 fJ/step, Murmann survey;
# DNN+NeuroSim's 22 nm SAR model: ~53 fJ per 6-bit conversion.) The legacy chip used 5 fJ/step.
ADC_FOM_J_PER_STEP = 10.2e-15
# Digital operations at 45 nm (M. Horowitz, "Computing's energy problem (and what we can do about
# it)", ISSCC 2014): 8-bit integer add 0.03 pJ, 32-bit add 0.1 pJ; 32-bit float add 0.9 pJ,
# 32-bit float multiply 3.7 pJ. A 16-bit add (membrane / partial-sum accumulation): 0.05 pJ,
# between the 8- and 32-bit figures.
E_ADD16_J = 0.05e-12
E_FP32_ADD_J = 0.9e-12
E_FP32_MULT_J = 3.7e-12
# Scheme bitwise: one latch decision per cell read (assumption: ~10 fJ, a small dynamic latch at
# 22-28 nm), and the popcount of a row's decisions as n / 8 8-bit adds (Horowitz's 0.03 pJ each).
E_LATCH_J = 10e-15
E_ADD8_J = 0.03e-12
# Poisson input: a 16-bit LFSR step and a comparison per pixel and time step (assumption: ~0.1 pJ,
# two 16-bit add-equivalents).
E_POISSON_J = 0.1e-12
# Digital layers (first, output) on a 256-lane MAC array at 1 GHz (assumption), for the latency.
DIGITAL_LANES = 256
DIGITAL_CLOCK_HZ = 1e9
