"""The RTL regressions' knobs are checked and printed by the repository's conftest.py
(sim/lib/knobs.py); this directory needs no hooks of its own."""
