"""imcnoise: binarized spiking vs. binarized networks on noisy in-memory XNOR arrays.

Pipeline stages, one sub-package each (imports point downward only):

    cli  ->  sweep  ->  imc, training  ->  models, data

* :mod:`imcnoise.data`      real data sets as in-memory uint8 tensors
* :mod:`imcnoise.models`    B-SNN / BNN (VGG11 with residual schedule), paper Sec. II
* :mod:`imcnoise.training`  training and evaluation of the float models
* :mod:`imcnoise.imc`       the chip: program (fold, Alg. 2), physics (devices, sense path),
                            engines (integer, aihwkit, fast); see ARCHITECTURE.md
* :mod:`imcnoise.sweep`     Monte Carlo scenarios, results store, tables and plots
"""

__version__ = "0.1.0"
