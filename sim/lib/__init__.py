"""The testbenches' library (:mod:`~sim.lib.common`, :mod:`~sim.lib.stream`,
:mod:`~sim.lib.knobs`, :mod:`~sim.lib.oracle`) and the plumbing every flow shares
(:mod:`~sim.lib.fileio`, :mod:`~sim.lib.cli`)."""
