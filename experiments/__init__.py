"""LSTM accuracy experiments: float32-trained classifiers evaluated with the hardware's arithmetic.

Modules: :mod:`experiments.data` (dataset provisioning), :mod:`experiments.modes` (inference
arithmetic), :mod:`experiments.lstm` (model, training, explicit-cell inference),
:mod:`experiments.accuracy` (the resumable runner), :mod:`experiments.stats` and
:mod:`experiments.report` (summary table and plot), :mod:`sim.lib.fileio` (atomic writes).
(``bench_kernels``, ``precision`` and ``synth`` are separate tools sharing the package.)
"""
