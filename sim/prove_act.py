"""The activation-unit configurations of the proof (``sim.prove``): every binary32 input.

A configuration ``act/<set>/<func>`` runs ``hdl/act_unit.v`` (Verilator, through
``sim/verilator/unary_driver.cpp``) on blocks of 2^16 consecutive input bit patterns and compares
every result with the model :func:`lmul.act_hw_bits`; the whole space is the 2^32 inputs
(:data:`TOTAL`), a slice takes whole blocks like the other configurations.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

import lmul
from sim import rtlsim

UNARY_DRIVER = rtlsim.DRIVER_DIR / "unary_driver.cpp"
#: Inputs of one configuration: every binary32 bit pattern.
TOTAL = 1 << 32
MAX_REPORTED = 8

Work = Callable[[int], tuple[int, int, list[dict[str, str]]]]


def configs_spec() -> list[tuple[str, str]]:
    """(set name, function) of every proven activation configuration."""
    return [(name, func) for name in lmul.ACT_PRESETS for func in lmul.ACT_FUNCS]


def config_name(name: str, func: str) -> str:
    return f"act/{name}/{func}"


class Unary:
    """A combinational ``x -> y`` module in Verilator, one model per thread.

    Args:
        top: module name; params: its Verilog parameters; threads: models to create (one per
        concurrent caller); hdl_dirs: Verilog search directories (a broken copy first).
    """

    def __init__(self, top: str, params: dict[str, int], threads: int = 1,
                 hdl_dirs: Sequence[Path] | None = None) -> None:
        lib = rtlsim.load(top, params, (UNARY_DRIVER,), hdl_dirs)
        lib.rtlsim_new.restype = ctypes.c_void_p
        lib.rtlsim_free.argtypes = [ctypes.c_void_p]
        lib.rtlsim_run.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_size_t]
        lib.rtlsim_run.restype = None
        if lib.rtlsim_in_bytes() != 4 or lib.rtlsim_out_bytes() != 4:
            raise rtlsim.RtlBuildError(f"{top}: x and y must be 32 bits wide")
        self._lib = lib
        self._free = [lib.rtlsim_new() for _ in range(max(1, threads))]
        self._handles = list(self._free)
        self._lock = threading.Lock()

    def run(self, x: np.ndarray) -> np.ndarray:
        """``y[i] = top(x[i])``, uint32 in and out (thread-safe up to ``threads`` callers)."""
        xv = np.ascontiguousarray(x, dtype=np.uint32)
        out = np.empty(xv.shape, dtype=np.uint32)
        with self._lock:
            h = self._free.pop()
        try:
            self._lib.rtlsim_run(h, xv.ctypes.data, out.ctypes.data, xv.size)
        finally:
            with self._lock:
                self._free.append(h)
        return out

    def close(self) -> None:
        for h in self._handles:
            self._lib.rtlsim_free(h)
        self._handles = self._free = []


def evaluator(params: dict[str, int], block: int, threads: int, hdl_dirs: Sequence[Path]
              ) -> tuple[Unary, Work]:
    """The RTL model and ``work(block index) -> (inputs, mismatches, first mismatches)``."""
    cfg = lmul.ActConfig(lmul.ACT_FUNCS[params["FUNC"]], params["SEGMENTS"], params["COEF_BITS"])
    rtl = Unary("act_unit", params, threads, hdl_dirs)
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
