"""The activation-unit configurations of the proof (``sim.prove``): every binary32 input.

A configuration ``act/<set>/<func>`` runs ``hdl/act_unit.v`` (Verilator, through
``sim/verilator/unary_driver.cpp``) on blocks of 2^16 consecutive input bit patterns and compares
every result with the model :func:`lmul.act_hw_bits`; the whole space is the 2^32 inputs
(:data:`TOTAL`), a slice takes whole blocks like the other configurations.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

import lmul
from sim import rtlsim

UNARY_DRIVER = rtlsim.UNARY_DRIVER
#: Inputs of one configuration: every binary32 bit pattern.
TOTAL = 1 << 32
MAX_REPORTED = 8

Work = Callable[[int], tuple[int, int, list[dict[str, str]]]]


def configs_spec() -> list[tuple[str, str]]:
    """(set name, function) of every proven activation configuration."""
    return [(name, func) for name in lmul.ACT_PRESETS for func in lmul.ACT_FUNCS]


def config_name(name: str, func: str) -> str:
    return f"act/{name}/{func}"


def evaluator(params: dict[str, int], block: int, threads: int, hdl_dirs: Sequence[Path]
              ) -> tuple[rtlsim.Unary, Work]:
    """The RTL model and ``work(block index) -> (inputs, mismatches, first mismatches)``."""
    cfg = lmul.ActConfig(lmul.ACT_FUNCS[params["FUNC"]], params["SEGMENTS"], params["COEF_BITS"])
    rtl = rtlsim.Unary("act_unit", params, threads, hdl_dirs)
    if rtl.in_dtype != np.uint32 or rtl.out_dtype != np.uint32:
        rtl.close()
        raise rtlsim.RtlBuildError("act_unit: x and y must be 32 bits wide")
    model_lock = threading.Lock()  # the model's numba kernel is parallel: one caller at a time
    lo = np.arange(block, dtype=np.uint32)
    lmul.act_hw_bits(lo[:1], cfg)  # JIT compilation / cache loading outside the timed loop

    def work(index: int) -> tuple[int, int, list[dict[str, str]]]:
        x = lo + np.uint32(index * block)
        y = rtl.run(x)
        with model_lock:
            exp = lmul.act_hw_bits(x, cfg)
        bad = np.flatnonzero(y != exp)
        first = [{"a": f"0x{int(x[i]):08x}", "b": "-", "rtl": f"0x{int(y[i]):08x}",
                  "expected": f"0x{int(exp[i]):08x}"} for i in bad[:MAX_REPORTED]]
        return x.size, int(bad.size), first

    return rtl, work
