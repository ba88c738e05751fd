"""The networks of the paper (Sec. II): B-SNN and BNN as one VGG11 class with the residual schedule.

Holds the layer plan and residual wiring (:mod:`.topology`), binary layers with scale alpha
(:mod:`.binary`), the integrate-and-fire neuron in charge / fire / reset phases and its surrogate
gradient (:mod:`.neurons`, :mod:`.surrogate`), Poisson input keyed by image index
(:mod:`.encoding`, :mod:`.inputs`), compact checkpoints (:mod:`.checkpoint`) and the shared
evaluation result (:mod:`.metrics`). Imports torch, numpy and :mod:`imcnoise.seeding` only.
"""
