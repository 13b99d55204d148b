"""LSTM accuracy experiments: float32-trained classifiers evaluated with the hardware's arithmetic.

Modules: :mod:`experiments.data` (dataset provisioning), :mod:`experiments.modes` (inference
arithmetic), :mod:`experiments.lstm` (model, training, explicit-cell inference),
:mod:`experiments.recipes` (L-Mul-aware training), :mod:`experiments.weights` (trained weights
and their checkpoint cache), :mod:`experiments.grid` (the resumable accuracy grid, on an
:mod:`experiments.executor`), :mod:`experiments.store` (the results file),
:mod:`experiments.accuracy` (the runner's command line), :mod:`experiments.stats` and
:mod:`experiments.report` (summary table and plot), :mod:`experiments.tune` (offset sweep and
L-Mul-aware training). Separate tools sharing the package: :mod:`experiments.precision`,
:mod:`experiments.cosim`, :mod:`experiments.convert_demo`, :mod:`experiments.operands`, and the
benchmarks in ``experiments/bench``.
"""
