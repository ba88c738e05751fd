"""The physics of the chip: how programmed devices and the sense path turn bits into counts.

* :mod:`.cell`: the complementary device pair, the exact conductance grid, the converter to
  physical units;
* :mod:`.devices`: device models (STT-MRAM, RRAM, aihwkit's PCM-like and ReRamWan2022) as aihwkit
  noise models, one method per effect, and the seeded programming of a sub-array;
* :mod:`.sense`: the sense path, one function per effect (read noise, residual buffer, sense-amp
  offset and noise, ADC, clipping) and the static per-chip periphery draws;
* :mod:`.noise`: per-read random numbers keyed by what the read is, never by execution order.

Imports the chip schema (:mod:`..config`), :mod:`imcnoise.defaults` and seeding only; nothing of
the program or the engines.
"""

try:  # the device models and the converter are aihwkit classes: say how to get it, once
    import aihwkit  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError("imcnoise.imc needs IBM aihwkit 1.1.0, installed WITHOUT its build-time dependencies: "
                      "pip install --no-deps aihwkit==1.1.0 (scripts/setup.sh does this)") from exc
