"""Checking a combinational two-operand module through its ``*_lanes`` test wrapper.

The wrappers in ``sim/hdl`` (``lmul_core_lanes.v``, ``fp_mul_lanes.v`` ...) put LANES copies
of a module on packed buses ``a_bus``, ``b_bus`` -> ``y_bus``; :class:`LaneBench` drives
operand pairs through them (:func:`sim.lib.common.drive_lanes`, LANES pairs per 1 ns step) and
asserts that every result's bit pattern equals the reference's. Operands and results are bit
patterns of the module's format (sign | exponent | mantissa), one array element per pair.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from sim.lib.common import assert_bits_equal, drive_lanes


def exhaustive_pairs(width: int) -> tuple[np.ndarray, np.ndarray]:
    """Every operand pair of a ``width``-bit format: ``a = i >> width``, ``b = i & mask``."""
    grid = np.arange(1 << width, dtype=np.int64)
    return np.repeat(grid, grid.size), np.tile(grid, grid.size)


def cross_pairs(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every value of ``values`` against every other (``values.size ** 2`` pairs)."""
    return np.repeat(values, values.size), np.tile(values, values.size)


class LaneBench:
    """Drives operand pairs into a lanes wrapper and checks every result bit.

    Args:
        dut: the cocotb handle of the wrapper. width: operand/result width in bits.
        lanes: the wrapper's LANES. context: what the configuration is, for failure messages
            (e.g. ``bf16, SUBNORMALS=1``).
    """

    def __init__(self, dut: Any, width: int, lanes: int, context: str) -> None:
        self.dut = dut
        self.width = width
        self.lanes = lanes
        self.context = context
        self.checked = 0
        self._t0 = time.perf_counter()

    async def check_bits(self, a: np.ndarray, b: np.ndarray, expected: np.ndarray,
                         what: str) -> None:
        """Apply all pairs (a[i], b[i]); assert the RTL's bits equal ``expected[i]``, every
        vector (AssertionError naming the first ones that differ)."""
        got = await drive_lanes(self.dut, a, b, self.width, self.lanes)
        assert_bits_equal(what, a, b, got, expected, self.context)
        n = len(a)
        self.checked += n
        self.dut._log.info("%s: %d vectors bit-exact", what, n)

    def log_summary(self, label: str) -> None:
        """Log how many vectors were checked, in what wall time (since construction)."""
        dt = time.perf_counter() - self._t0
        self.dut._log.info("%s: %d vectors checked in %.1f s (%.0f vectors/s)", label,
                           self.checked, dt, self.checked / max(dt, 1e-9))
