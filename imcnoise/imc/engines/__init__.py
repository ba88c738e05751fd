"""Engines that run a chip program: one traversal, one neuron, one evaluate loop (:mod:`.base`).

* :mod:`.integer`: exact XNOR match counts (bits only, no physics), the reference of the fold;
* :mod:`.aihwkit`: one chip instance on aihwkit ``TorchInferenceTile``s (the reference analog path);
* :mod:`.fast`: K chip instances per pass as convolutions with per-chip effective weights,
  bit-identical to the aihwkit path (the Monte Carlo workhorse);
* :mod:`.analog`: what the two analog engines share (chips, periphery, the sense path);
* :mod:`.layouts`: the named tensor layouts the traversal works in.

An engine implements ``mac`` only (an analog engine: ``tile_currents`` only). Imports the program
and the physics; nothing above (verify, export, sweep).
"""
