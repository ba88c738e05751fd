"""Direct training of the B-SNN (surrogate gradient, Alg. 1) and of the BNN baseline.

Holds the hyper-parameters and presets (:mod:`.config`), the resumable training loop
(:mod:`.loop`), the float-model evaluation (:mod:`.evaluate`) and model cards
(:mod:`.model_card`). Imports :mod:`imcnoise.models` and :mod:`imcnoise.data`, and the public chip
API :mod:`imcnoise.imc` for hardware-aware training (:mod:`.hw_aware`: the chip's MAC errors in the
loop); the loop imports it at module level, so importing :mod:`.loop` loads aihwkit too (it is a
dependency of the package, installed with it).
"""
