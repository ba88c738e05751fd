"""Direct training of the B-SNN (surrogate gradient, Alg. 1) and of the BNN baseline.

Holds the hyper-parameters and presets (:mod:`.config`), the resumable training loop
(:mod:`.loop`), the float-model evaluation (:mod:`.evaluate`) and model cards
(:mod:`.model_card`). Imports :mod:`imcnoise.models` and :mod:`imcnoise.data`, and for hardware-aware
training (:mod:`.hw_aware`: the chip's MAC errors in the loop) the public chip API :mod:`imcnoise.imc`
(and with it aihwkit).
"""
