"""The physics of the chip: how programmed devices and the sense path turn bits into counts.

* :mod:`.cell`: the complementary device pair, the access transistor in series, the exact
  conductance grid, the converter to physical units;
* :mod:`.devices`: device models (STT-MRAM, RRAM, aihwkit's PCM-like and ReRamWan2022) as aihwkit
  noise models, one method per effect, and the seeded programming of a sub-array;
* :mod:`.mappings`: how a binary row drives its cells (xnor: the paper's complementary pair, every
  cell conducts; gated: only inputs at 1 conduct), one class each;
* :mod:`.line`: the summing line of a sensing: exact IR-drop weights, first-order form, node voltages;
* :mod:`.schemes`: current / voltage / bitwise sensing: line weights, volts per unit, read noise;
* :mod:`.calibration`: how every line learns its baseline, LSB and trim, read through :func:`.sense.sense`;
* :mod:`.sense`: the sense path, one function per effect (read noise, residual buffer, sense-amp
  offset and noise, ADC, clipping, popcount), fused, and the static per-chip periphery draws;
* :mod:`.noise`: per-read random numbers keyed by what the read is, never by execution order;
* :mod:`.limits`: what a buildable chip must respect (currents, power, IR drop);
* :mod:`.energy`: energy and latency per inference.

Imports the chip schema (:mod:`..config`), :mod:`imcnoise.defaults`, seeding and runtime, and
the program's mapping (the energy model counts sensings per layer); nothing of the engines.
"""

try:  # the device models and the converter are aihwkit classes: say how to get it, once
    import aihwkit  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError("imcnoise.imc needs IBM aihwkit 1.1.0, installed WITHOUT its build-time dependencies: "
                      "pip install --no-deps aihwkit==1.1.0 (scripts/setup.sh does this)") from exc
