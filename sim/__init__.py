"""Verification of the design in ``hdl/``.

``sim/test_<dut>.py`` are the cocotb testbenches (Icarus); :mod:`sim.lib` is their library
(stream source/sink/monitors, knobs, helpers, the exact-rounding oracle) and the file plumbing
every flow shares; :mod:`sim.rtlsim` is the Verilator harness (C++ drivers in ``sim/verilator/``),
:mod:`sim.prove` the exhaustive proof and :mod:`sim.lint_hdl` the HDL lint. Imports only
:mod:`lmul` of the project.
"""
