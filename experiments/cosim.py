"""RTL in the loop: the LSTM classifies MNIST with the whole cell's arithmetic on the simulated RTL.

    python -m experiments.cosim [--n 100] [--variants lmul,bf16,lmul-pwl64,...]
                                [--dot-k 8 --align-bits 16] [--act pwl64] [--ew-lanes 4]
                                [--rows 4 --cols 4]
    make cosim N=100

For each test image (MNIST rows, the ``make experiment`` weights: seed 0, 1 epoch, the committed
reference checkpoint ``experiments/checkpoints/mnist-rows-h128-seed0-epoch1.npz``, SHA-256 checked,
so the same weights on every machine; ``--retrain``: trained and cached under ``results/weights``
instead) the explicit LSTM cell of :mod:`experiments.lstm`
runs with its arithmetic on Verilator models of the RTL (:mod:`sim.rtlsim`):

=====================================  =========================================================
what                                   where
=====================================  =========================================================
float32 -> format rounding (RNE) of    ``hdl/fp_to_fmt.v`` (the array's input and the
activations, hidden state, weights     element-wise unit's own)
gate product ``[x_t, h] . W + b``      ``hdl/mac_array.v`` (ROWS x COLS, default 4 x 4), tiled
(K = 156, 512 outputs) and the head    over the outputs inside the C++ driver
``h . fc_W + fc_b``                    ``sim/verilator/mac_array_driver.cpp``, valid/ready handshake
sigmoid (i, f, o), tanh (g, c)         ``hdl/act_unit.v`` (``FUNC`` 0 / 1, the variant's set) for
                                       a hardware set (``-pwl64`` variants); **Python**
                                       (``lmul.sigmoid32`` / ``tanh32``, correctly rounded) for
                                       exact activations, which are not a hardware unit
``f*c``, ``i*g``, ``o*tanh(c)``        ``hdl/lmul_core.v`` (variant ``lmul``) or ``hdl/fp_mul.v``
                                       (variant ``bf16``) on operands rounded by ``fp_to_fmt``,
                                       widened by ``hdl/fmt_to_fp32.v`` (the model's
                                       ``mode.mul``: ``lmul.elementwise_product``)
cell state ``c = f*c + i*g``           ``hdl/fp_add.v`` (binary32)
=====================================  =========================================================

Variants: ``lmul`` is the array with L-Mul PEs (``MULTIPLIER=0``, BF16, paper offset) against the
model's ``lmul`` mode; ``bf16`` the same array with the exact BF16 multiplier (``MULTIPLIER=1``)
against the model's ``bf16`` mode. ``lmul-k<K>-a<A>`` and ``bf16-k<K>-a<A>`` are the same arrays
with fused dot-product PEs (``DOT_K=K``, ``ALIGN_BITS=A``; ``hdl/dot_pe.v``, K products per beat,
one rounding) against the modes ``lmul:acc=fused,k=K,align=A`` and ``bf16:acc=fused,k=K,align=A``.
A suffix ``-<set>`` (``lmul-pwl64``, ``bf16-k8-a16-pwl64``) evaluates sigmoid and tanh on
``act_unit`` with the shipped set (``lmul.ACT_PRESETS``) against the mode with ``act=<set>``:
then nothing of the cell is computed in Python (Python only moves bits between the models).
The default run has eight variants: the two sequential arrays and the two fused ones with
K = 8, A = 16 (``--dot-k``, ``--align-bits``: the energy study's fused design,
``syn/designs.py``, ``docs/results/energy_accuracy.md``), each with exact activations and with
``--act`` (default ``pwl64``, the cheapest set whose accuracy cost's CI includes 0,
docs/activation.md). Images go through in batches of ROWS (one image per array row), so the
array is full; the logits of every image must equal the model's
(:func:`experiments.lstm.forward_logits` with the variant's mode) bit for bit.

Cycles: the array's are counted by the simulation (its valid/ready streams). The element-wise
unit's are a model (:meth:`Hardware.lstm_pointwise`): ``--ew-lanes`` lanes (default 4), one hidden
unit per lane per cycle (3 sigmoid and 2 tanh on ``act_unit``, the 3 products with their
roundings and widenings, 1 sum; pipelined, fill latency not counted), not overlapping the
array: ``ceil(images x hidden / lanes)`` cycles per time step.

Output: a summary per variant (images, bit-identical logit vectors, accuracy of RTL and model
on the same images, where sigmoid and tanh ran; array cycles per image against the ideal MACs per
image / (PEs x DOT_K), tiles per image, array cycles per tile, element-wise cycles per image and
the sum, act_unit evaluations per image, simulated array cycles per second, images per second,
wall time), ``results/cosim.json`` and ``results/cosim.md``. The JSON is rewritten atomically
every few seconds and keyed by the configuration (weights, array shape, element-wise lanes,
every Verilog source, the drivers): a rerun skips images already done with the same
configuration and recomputes stale ones.

JSON layout: ``{"schema", "command", "config": {...}, "variants": {name: {"config_key",
"images": {index: {"label", "rtl_pred", "model_pred", "identical", "logits"}}, "batches":
[{"first", "count", "wall_s", "array_cycles", "array_tiles", "array_s", "ideal_cycles",
"elementwise_ops", "act_evals", "pointwise_cycles"}]}},
"summary": {name: {...}}, "last_run": {"wall_s", "images"}}`` with logits as 8-digit hex
binary32 patterns.

``--dump-operands FILE`` writes the operand streams that reach the multipliers (for the power
analysis) as an ``.npz`` of unsigned format patterns (uint16 for BF16), per variant ``V``:

* ``V.gate_a`` [N, T, 156]: rounded ``[x_t, h]`` per image and step (rows of A);
* ``V.gate_w`` [156, 512]: rounded gate weights (B, the same for every step);
* ``V.head_a`` [N, 128], ``V.head_w`` [128, C]: the head's operands;
* ``V.ew_a``, ``V.ew_b`` [N, T, 3, 128]: elementwise multiplier pairs (f, c), (i, g),
  (o, tanh c) after rounding;
* ``meta`` (a JSON string): rows, cols, format, the tile order.

The array computes tile (mb, nb) (m-block outer, n-block inner, K beats each, back to back);
in beat k of it PE(r, c) multiplies ``A[mb*ROWS + r, k]`` by ``B[k, nb*COLS + c]`` (rows beyond
the batch and columns beyond N are +0; with DOT_K > 1 beat j carries k = DOT_K*j .. DOT_K*j +
DOT_K-1, the last chunk padded with +0). With ``--dump-operands`` every image is run again (no
resume) so that the file holds all N.

``--fp-to-fmt FORMATS`` instead proves ``hdl/fp_to_fmt.v`` on all 2^32 binary32 inputs per
format (``--fp-to-fmt-inputs`` for a random sample of chunks) against
``lmul.round_to_format_bits``; results in ``results/fp_to_fmt_proof.{json,md}``, resumable.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import lmul
from sim import rtlsim
from sim.lib.cli import int_in_range
from sim.lib.fileio import RESULTS_DIR, atomic_write, atomic_write_text

from . import lstm
from .store import check_results_path

REPO = rtlsim.REPO
DRIVER_DIR = rtlsim.DRIVER_DIR
MAC_ARRAY_DRIVER = DRIVER_DIR / "mac_array_driver.cpp"
UNARY_DRIVER = rtlsim.UNARY_DRIVER
DEFAULT_OUT = RESULTS_DIR / "cosim.json"
SCHEMA = 1
DEFAULT_N = 100
#: Longest interval between two writes of the results file during a run (seconds).
WRITE_INTERVAL_S = 5.0
#: The ``make experiment`` configuration whose cached weights are used.
DATASET, SEQ, SEED, EPOCHS = "mnist", "rows", 0, 1
#: What an ``act=exact`` variant leaves in Python: the correctly rounded activations are a
#: reference function, not a hardware unit.
PYTHON_ACT = ("sigmoid and tanh (lmul.sigmoid32 / lmul.tanh32, correctly rounded float32: "
              "exact activations are not a hardware unit)")
#: Hidden units the element-wise unit takes per cycle (its lanes; :meth:`Hardware.lstm_pointwise`).
DEFAULT_EW_LANES = 4


@dataclass(frozen=True)
class Variant:
    """One hardware variant and the model mode it must match bit for bit.

    Attributes:
        name: short name (results key).
        mode: model mode string (:func:`experiments.modes.parse_mode`).
        multiplier: the array's ``MULTIPLIER`` parameter (0 L-Mul, 1 exact ``fp_mul``).
        unit: the elementwise multiplier module.
        dot_k: the array's ``DOT_K`` (1: sequential ``mac_pe``; K > 1: fused ``dot_pe``, K
            products per beat).
        align_bits: the fused PE's window ``ALIGN_BITS`` (bits; unused with ``dot_k`` = 1).
        act: ``exact`` (sigmoid and tanh in Python, correctly rounded) or a shipped activation
            set (``lmul.ACT_PRESETS``) evaluated on ``hdl/act_unit.v``.
    """

    name: str
    mode: str
    multiplier: int
    unit: str
    dot_k: int = 1
    align_bits: int = 276
    act: str = "exact"

    @property
    def pe(self) -> str:
        """The processing element, in words."""
        if self.dot_k == 1:
            return "mac_pe (sequential)"
        return f"dot_pe (DOT_K={self.dot_k}, ALIGN_BITS={self.align_bits})"

    @property
    def activations(self) -> str:
        """Where sigmoid and tanh run, in words."""
        if self.act == "exact":
            return "Python (exact)"
        seg, coef = lmul.ACT_PRESETS[self.act]
        return f"act_unit {self.act} (SEGMENTS={seg}, COEF_BITS={coef})"


#: The sequential arrays with exact activations; the others are ``<name>[-k<K>-a<A>][-<set>]``
#: of these (:func:`variant`).
VARIANTS: dict[str, Variant] = {
    "lmul": Variant("lmul", "lmul", 0, "lmul_core"),
    "bf16": Variant("bf16", "bf16", 1, "fp_mul"),
}
#: The default run's fused configuration: the energy study's fused design (syn/designs.py).
DEFAULT_DOT_K, DEFAULT_ALIGN_BITS = 8, 16
#: The default run's hardware activation set: the cheapest whose accuracy cost's CI includes 0
#: (docs/activation.md).
DEFAULT_ACT = "pwl64"
_NAME = re.compile(r"^(?P<base>[a-z0-9]+)(?:-k(?P<k>[0-9]+)-a(?P<a>[0-9]+))?"
                   r"(?:-(?P<act>[a-z][a-z0-9]*))?$")


def fused_variant(base: str, dot_k: int, align_bits: int, act: str = "exact") -> Variant:
    """The array of ``VARIANTS[base]`` with fused PEs: ``DOT_K`` = ``dot_k`` (2..64) products
    per beat in an ``ALIGN_BITS`` = ``align_bits`` (1..276) window, against the model mode
    ``<mode>:acc=fused,k=K,align=A`` (and ``act`` as :func:`make_variant`). ValueError on an
    unknown base or a value out of range."""
    if not 2 <= dot_k <= 64:
        raise ValueError(f"DOT_K must be 2..64 for a fused variant, got {dot_k}")
    return make_variant(base, dot_k, align_bits, act)


def make_variant(base: str, dot_k: int = 1, align_bits: int = 276,
                 act: str = "exact") -> Variant:
    """The array of ``VARIANTS[base]`` with ``DOT_K`` = ``dot_k`` (1: sequential; 2..64: fused,
    ``ALIGN_BITS`` = ``align_bits`` in 1..276) and activations ``act`` (``exact`` or a shipped
    set of ``lmul.ACT_PRESETS``: the model mode gets ``act=<set>``, the RTL ``act_unit``).
    ValueError on an unknown base or set, or a value out of range."""
    if base not in VARIANTS:
        raise ValueError(f"unknown variant {base!r}; known: {', '.join(VARIANTS)}")
    if not 1 <= dot_k <= 64:
        raise ValueError(f"DOT_K must be 1..64, got {dot_k}")
    if not 1 <= align_bits <= 276:
        raise ValueError(f"ALIGN_BITS must be 1..276, got {align_bits}")
    if act != "exact" and act not in lmul.ACT_PRESETS:
        raise ValueError(f"unknown activation set {act!r}; known: exact, "
                         f"{', '.join(lmul.ACT_PRESETS)}")
    seq = VARIANTS[base]
    name, opts = base, []
    if dot_k > 1:
        name += f"-k{dot_k}-a{align_bits}"
        opts += ["acc=fused", f"k={dot_k}", f"align={align_bits}"]
    else:
        align_bits = 276
    if act != "exact":
        name += f"-{act}"
        opts.append(f"act={act}")
    mode = seq.mode + (":" + ",".join(opts) if opts else "")
    return Variant(name, mode, seq.multiplier, seq.unit, dot_k, align_bits, act)


def variant(name: str) -> Variant:
    """The variant called ``name``: ``lmul`` or ``bf16``, optionally followed by ``-k<K>-a<A>``
    (fused PEs) and ``-<set>`` (hardware activations, e.g. ``lmul-k8-a16-pwl64``)."""
    if name in VARIANTS:
        return VARIANTS[name]
    m = _NAME.match(name)
    if m is None or m["base"] not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}, "
                         "<variant>-k<K>-a<A> (fused PEs) and <variant>[-k<K>-a<A>]-<set> "
                         f"(activation set: {', '.join(lmul.ACT_PRESETS)})")
    act = m["act"] or "exact"
    if m["act"] is not None and m["act"] not in lmul.ACT_PRESETS:
        raise ValueError(f"unknown activation set {m['act']!r} in variant {name!r}; known: "
                         f"{', '.join(lmul.ACT_PRESETS)} (no suffix: exact, in Python)")
    if m["k"] is None:
        return make_variant(m["base"], act=act)
    return fused_variant(m["base"], int(m["k"]), int(m["a"]), act)


def default_variants(dot_k: int = DEFAULT_DOT_K, align_bits: int = DEFAULT_ALIGN_BITS,
                     act: str = DEFAULT_ACT) -> list[str]:
    """The default run: both sequential arrays and both with fused PEs of this configuration,
    each with exact activations (in Python) and with the activation set ``act`` on the RTL."""
    arrays = [*VARIANTS, *(fused_variant(b, dot_k, align_bits).name for b in VARIANTS)]
    if act == "exact":
        return arrays
    return arrays + [f"{a}-{act}" for a in arrays]


class CosimError(RuntimeError):
    """The RTL driver reported a protocol error or a hang."""


def _hex_words(bits: np.ndarray) -> list[str]:
    return [f"{int(v):08x}" for v in np.asarray(bits, dtype=np.uint32).reshape(-1)]


@dataclass
class Counters:
    """Work done on the RTL since the last :meth:`Hardware.take_counters`."""

    array_cycles: int = 0
    array_tiles: int = 0
    array_s: float = 0.0
    array_beats: int = 0
    array_macs: int = 0
    #: unit evaluations outside the array: roundings, widenings, products, sums
    elementwise_ops: int = 0
    #: sigmoid and tanh evaluations on ``act_unit`` (0 with exact activations)
    act_evals: int = 0
    #: cycles of the element-wise unit (the model of :meth:`Hardware.lstm_pointwise`)
    pointwise_cycles: int = 0


class Hardware:
    """The simulated RTL of one variant: array, converters, elementwise multiplier, adder and
    (with a hardware activation set) the activation unit.

    Args:
        cfg: operand format and L-Mul options (``EXP_BITS``, ``MAN_BITS``, ``OFFSET``,
            ``SATURATE``).
        multiplier: 0 = L-Mul (``lmul_core`` in the PEs and elementwise), 1 = exact ``fp_mul``
            (IEEE subnormals, the model's ``exact`` mode).
        rows, cols: array shape.
        hdl_dirs: Verilog search path (default ``hdl/``); a directory with a modified copy of a
            module first overrides it (the broken-design test does this).
        dot_k: the array's ``DOT_K`` (1: sequential PEs; 2..64: fused ``dot_pe``).
        align_bits: the fused PEs' ``ALIGN_BITS`` (1..276; unused with ``dot_k`` = 1).
        act: ``exact`` (sigmoid and tanh in Python: :func:`lmul.sigmoid32`, :func:`lmul.tanh32`)
            or a shipped set of ``lmul.ACT_PRESETS`` (``act_unit`` with ``FUNC`` 0 and 1).
        ew_lanes: hidden units the element-wise unit takes per cycle (the cycle model of
            :meth:`lstm_pointwise`), 1..1024.
        pointwise_hdl_dirs: Verilog search path of the element-wise units only (converters,
            multiplier, adder, activation unit); default ``hdl_dirs`` (a test puts a broken
            copy here to show that the comparison covers them apart from the array).

    All operands and results are numpy arrays; float32 values in, float32 values out, except
    :meth:`to_format` (format bit patterns out) and :meth:`matmul_bits` (format bits in).
    """

    def __init__(self, cfg: lmul.LMulConfig, multiplier: int, rows: int = 4, cols: int = 4,
                 hdl_dirs: Sequence[Path] | None = None, *, dot_k: int = 1,
                 align_bits: int = 276, act: str = "exact", ew_lanes: int = DEFAULT_EW_LANES,
                 pointwise_hdl_dirs: Sequence[Path] | None = None) -> None:
        if multiplier not in (0, 1):
            raise ValueError(f"multiplier must be 0 (L-Mul) or 1 (exact), got {multiplier!r}")
        if not (1 <= rows <= 64 and 1 <= cols <= 64):
            raise ValueError(f"array shape must be 1..64 x 1..64, got {rows} x {cols}")
        if not (1 <= dot_k <= 64 and 1 <= align_bits <= 276):
            raise ValueError(f"DOT_K must be 1..64 and ALIGN_BITS 1..276, got {dot_k} and "
                             f"{align_bits}")
        if act != "exact" and act not in lmul.ACT_PRESETS:
            raise ValueError(f"act must be exact or one of {', '.join(lmul.ACT_PRESETS)}, "
                             f"got {act!r}")
        if not 1 <= ew_lanes <= 1024:
            raise ValueError(f"ew_lanes must be 1..1024, got {ew_lanes}")
        self.cfg = cfg
        self.multiplier = multiplier
        self.rows, self.cols = rows, cols
        self.dot_k, self.align_bits = dot_k, align_bits
        self.act, self.ew_lanes = act, ew_lanes
        self.fmt = cfg.fmt
        lparams = cfg.verilog_parameters()
        fparams = {"EXP_BITS": cfg.exp_bits, "MAN_BITS": cfg.man_bits}
        aparams = {**lparams, "ROWS": rows, "COLS": cols, "MULTIPLIER": multiplier}
        if dot_k > 1:  # (DOT_K = 1 keeps the sequential array's parameters and its cached model)
            aparams.update(DOT_K=dot_k, ALIGN_BITS=align_bits)
        dirs = list(hdl_dirs) if hdl_dirs else None
        pdirs = list(pointwise_hdl_dirs) if pointwise_hdl_dirs else dirs
        lib = ctypes.CDLL(str(rtlsim.build("mac_array", aparams, (MAC_ARRAY_DRIVER,), dirs)))
        lib.mac_array_new.restype = ctypes.c_void_p
        lib.mac_array_new.argtypes = [ctypes.c_int] * 4
        lib.mac_array_free.argtypes = [ctypes.c_void_p]
        lib.mac_array_matmul.restype = ctypes.c_int
        lib.mac_array_matmul.argtypes = ([ctypes.c_void_p] * 4 + [ctypes.c_int64] * 3
                                         + [ctypes.c_void_p] * 2)
        self._array_lib = lib
        self._array = lib.mac_array_new(rows, cols, self.fmt.width, dot_k)
        if not self._array:
            raise CosimError(f"mac_array model does not have the ports of a {rows} x {cols} "
                             f"array of {dot_k} x {self.fmt.width}-bit operands per PE")
        # The array's input rounding, then the element-wise unit's own units.
        self._to_fmt = rtlsim.Unary("fp_to_fmt", fparams, 1, dirs)
        self._ew_to_fmt = rtlsim.Unary("fp_to_fmt", fparams, 1, pdirs)
        self._widen = rtlsim.Unary("fmt_to_fp32", fparams, 1, pdirs)
        if multiplier == 0:
            self._mul = rtlsim.BinOp("lmul_core", lparams, threads=1, hdl_dirs=pdirs)
        else:
            self._mul = rtlsim.BinOp("fp_mul", {**fparams, "SUBNORMALS": 1}, threads=1,
                                     hdl_dirs=pdirs)
        self._add = rtlsim.BinOp("fp_add", {"EXP_BITS": 8, "MAN_BITS": 23}, threads=1,
                                 hdl_dirs=pdirs)
        self._act: dict[str, rtlsim.Unary] = {}
        if act != "exact":
            for func in lmul.ACT_FUNCS:
                params = lmul.act_config(act, func).verilog_parameters()
                self._act[func] = rtlsim.Unary("act_unit", params, 1, pdirs)
        self.counters = Counters()
        self._stats = np.zeros(4, dtype=np.uint64)

    def close(self) -> None:
        """Free the Verilator models."""
        if self._array:
            self._array_lib.mac_array_free(self._array)
            self._array = None
        for unit in (self._to_fmt, self._ew_to_fmt, self._widen, self._mul, self._add,
                     *self._act.values()):
            unit.close()

    def __enter__(self) -> Hardware:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def activations_on_rtl(self) -> bool:
        """True when sigmoid and tanh run on ``act_unit`` (a hardware set), False in Python."""
        return bool(self._act)

    def take_counters(self) -> Counters:
        """Return the counters and reset them."""
        out, self.counters = self.counters, Counters()
        return out

    def to_format(self, x: np.ndarray) -> np.ndarray:
        """float32 values -> format bit patterns (``fmt.uint_dtype``), RNE, on the array's
        input ``fp_to_fmt``."""
        return self._round(self._to_fmt, x)

    def _round(self, unit: rtlsim.Unary, x: np.ndarray) -> np.ndarray:
        xv = np.ascontiguousarray(x, dtype=np.float32)
        self.counters.elementwise_ops += xv.size
        return unit.run(xv.view(np.uint32)).astype(self.fmt.uint_dtype, copy=False)

    def widen(self, bits: np.ndarray) -> np.ndarray:
        """Format bit patterns -> float32 values, exactly, on ``fmt_to_fp32``."""
        self.counters.elementwise_ops += bits.size
        return self._widen.run(bits).astype(np.uint32, copy=False).view(np.float32)

    def mul_bits(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Elementwise product of format patterns on the variant's multiplier."""
        self.counters.elementwise_ops += a.size
        return self._mul.run(a.reshape(-1), b.reshape(-1)).reshape(a.shape)

    def add(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Elementwise binary32 sum on ``fp_add`` (float32 in and out)."""
        xv = np.ascontiguousarray(x, dtype=np.float32)
        yv = np.ascontiguousarray(y, dtype=np.float32)
        self.counters.elementwise_ops += xv.size
        out = self._add.run(xv.view(np.uint32).reshape(-1), yv.view(np.uint32).reshape(-1))
        return out.astype(np.uint32, copy=False).view(np.float32).reshape(xv.shape)

    def activation(self, func: str, x: np.ndarray) -> np.ndarray:
        """``func`` (``sigmoid`` or ``tanh``) of float32 values -> float32, as the model's mode:
        on ``act_unit`` for a hardware set, else the correctly rounded Python functions."""
        xv = np.ascontiguousarray(x, dtype=np.float32)
        if not self._act:
            return lstm.sigmoid32(xv) if func == "sigmoid" else lstm.tanh32(xv)
        self.counters.act_evals += xv.size
        return self._act[func].run(xv.view(np.uint32)).view(np.float32)

    def sigmoid(self, x: np.ndarray) -> np.ndarray:
        """Logistic sigmoid of float32 values (:meth:`activation`)."""
        return self.activation("sigmoid", x)

    def tanh(self, x: np.ndarray) -> np.ndarray:
        """tanh of float32 values (:meth:`activation`)."""
        return self.activation("tanh", x)

    def matmul_bits(self, a_bits: np.ndarray, b_bits: np.ndarray, bias: np.ndarray
                    ) -> np.ndarray:
        """``bias + A . B`` on the array: A [M, K], B [K, N] format patterns, bias float32 [N];
        returns float32 [M, N]."""
        m_len, k_len = a_bits.shape
        k2, n_len = b_bits.shape
        if k2 != k_len or bias.shape != (n_len,):
            raise ValueError(f"shapes A {a_bits.shape}, B {b_bits.shape}, bias {bias.shape} "
                             "do not match")
        a32 = np.ascontiguousarray(a_bits, dtype=np.uint32)
        b32 = np.ascontiguousarray(b_bits, dtype=np.uint32)
        c32 = np.ascontiguousarray(bias, dtype=np.float32).view(np.uint32)
        y = np.empty((m_len, n_len), dtype=np.uint32)
        t0 = time.perf_counter()
        rc = self._array_lib.mac_array_matmul(self._array, a32.ctypes.data, b32.ctypes.data,
                                              c32.ctypes.data, m_len, k_len, n_len,
                                              y.ctypes.data, self._stats.ctypes.data)
        self.counters.array_s += time.perf_counter() - t0
        if rc != 0:
            what = {-1: "bad sizes", -2: "the array stopped producing outputs (hang)",
                    -3: "an output row arrived out of order"}.get(rc, f"error {rc}")
            raise CosimError(f"mac_array driver: {what} (M={m_len}, K={k_len}, N={n_len})")
        self.counters.array_cycles += int(self._stats[0])
        self.counters.array_beats += int(self._stats[1])
        self.counters.array_tiles += int(self._stats[2]) // self.rows
        self.counters.array_macs += m_len * k_len * n_len
        return y.view(np.float32)

    def mul(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Elementwise product of float32 arrays as the model's ``mode.mul``: both rounded on
        the element-wise unit's ``fp_to_fmt``, multiplied, widened. Returns (product float32,
        x bits, y bits)."""
        xb, yb = self._round(self._ew_to_fmt, x), self._round(self._ew_to_fmt, y)
        return self.widen(self.mul_bits(xb, yb)), xb, yb

    def lstm_pointwise(self, gates: np.ndarray, c: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The cell's element-wise step on the element-wise unit, in the model's order
        (:func:`lmul.torch.lstm_cell_step`): gates float32 [B, 4H] (i, f, g, o), c [B, H] ->
        (h, c', multiplier operands A [B, 3, H], B [B, 3, H] as format bits: (f, c), (i, g),
        (o, tanh c')).

        ``i, f, o = sigmoid(...)``, ``g = tanh(...)``; ``c' = fp_add(f*c, i*g)``;
        ``h = o * tanh(c')``; each product rounds both operands (``fp_to_fmt``), multiplies
        (``lmul_core`` / ``fp_mul``) and widens (``fmt_to_fp32``).

        Cycle model (:attr:`Counters.pointwise_cycles`): the unit has :attr:`ew_lanes` lanes,
        each taking one hidden unit per cycle (pipelined; fill latency not counted), and does
        not overlap the array (the next step's gate product needs all of h):
        ``ceil(B * H / ew_lanes)`` cycles per step.
        """
        hs = c.shape[1]
        i = self.sigmoid(gates[:, :hs])
        f = self.sigmoid(gates[:, hs:2 * hs])
        g = self.tanh(gates[:, 2 * hs:3 * hs])
        o = self.sigmoid(gates[:, 3 * hs:])
        fc, fb, cb = self.mul(f, c)
        ig, ib, gb = self.mul(i, g)
        c = self.add(fc, ig)
        h, ob, tb = self.mul(o, self.tanh(c))
        self.counters.pointwise_cycles += -(-c.size // self.ew_lanes)
        return h, c, np.stack([fb, ib, ob], axis=1), np.stack([cb, gb, tb], axis=1)


@dataclass
class CellBits:
    """The LSTM weights as the RTL sees them: format patterns of W and fc_W (rounded on the
    RTL's ``fp_to_fmt``), float32 biases."""

    w: np.ndarray
    b: np.ndarray
    fc_w: np.ndarray
    fc_b: np.ndarray
    hidden: int

    @classmethod
    def on(cls, hw: Hardware, wts: lstm.CellWeights) -> CellBits:
        return cls(hw.to_format(wts.w), np.ascontiguousarray(wts.b, dtype=np.float32),
                   hw.to_format(wts.fc_w), np.ascontiguousarray(wts.fc_b, dtype=np.float32),
                   wts.hidden)


@dataclass
class OperandTrace:
    """What one batch did, step by step: the operand streams (see the module docstring's dump
    layout) and the cell's float32 results (gates [B, 4H], c and h [B, H] per step)."""

    gate_a: list[np.ndarray] = field(default_factory=list)
    ew_a: list[np.ndarray] = field(default_factory=list)
    ew_b: list[np.ndarray] = field(default_factory=list)
    head_a: np.ndarray | None = None
    gates: list[np.ndarray] = field(default_factory=list)
    c: list[np.ndarray] = field(default_factory=list)
    h: list[np.ndarray] = field(default_factory=list)


def rtl_forward(hw: Hardware, cell: CellBits, x_seq: np.ndarray,
                trace: OperandTrace | None = None) -> np.ndarray:
    """The explicit LSTM cell of :func:`experiments.lstm.cell_step` on the RTL.

    ``x_seq`` float32 [B, T, I] -> logits float32 [B, C]. Gate order i, f, g, o (torch's); the
    element-wise step is :meth:`Hardware.lstm_pointwise` (sigmoid and tanh on ``act_unit`` or,
    with exact activations, in Python).
    """
    x_seq = np.asarray(x_seq, dtype=np.float32)
    bsz, hs = x_seq.shape[0], cell.hidden
    h = np.zeros((bsz, hs), dtype=np.float32)
    c = np.zeros((bsz, hs), dtype=np.float32)
    for t in range(x_seq.shape[1]):
        zb = hw.to_format(np.concatenate([x_seq[:, t, :], h], axis=1))
        gates = hw.matmul_bits(zb, cell.w, cell.b)
        h, c, ew_a, ew_b = hw.lstm_pointwise(gates, c)
        if trace is not None:
            trace.gate_a.append(zb)
            trace.ew_a.append(ew_a)
            trace.ew_b.append(ew_b)
            trace.gates.append(gates)
            trace.c.append(c)
            trace.h.append(h)
    hb = hw.to_format(h)
    if trace is not None:
        trace.head_a = hb
    return hw.matmul_bits(hb, cell.fc_w, cell.fc_b)


def macs_per_image(wts: lstm.CellWeights, steps: int) -> int:
    """Array multiply-accumulates per image: gate products over all steps plus the head."""
    k, n = wts.w.shape
    return steps * k * n + wts.fc_w.shape[0] * wts.fc_w.shape[1]


# ----------------------------------------------------------------------------- results file

def weights_digest(wts: lstm.CellWeights) -> str:
    """SHA-256 of the weight arrays (the identity of the network that was run)."""
    h = hashlib.sha256()
    for arr in (wts.w, wts.b, wts.fc_w, wts.fc_b):
        h.update(np.ascontiguousarray(arr, dtype=np.float32).tobytes())
    return h.hexdigest()


def config_key(variant: Variant, rows: int, cols: int, wdigest: str,
               hdl_dirs: Sequence[Path] | None, ew_lanes: int = DEFAULT_EW_LANES) -> str:
    """Key of everything that determines a variant's per-image results (and cycle counts)."""
    h = hashlib.sha256()
    dirs = [Path(d) for d in hdl_dirs] if hdl_dirs else [rtlsim.HDL_DIR]
    parts = [repr(variant), f"{rows}x{cols}", f"ew_lanes={ew_lanes}", wdigest,
             json.dumps(rtlsim.source_hashes(dirs), sort_keys=True),
             rtlsim.sha256_file(MAC_ARRAY_DRIVER), rtlsim.sha256_file(UNARY_DRIVER),
             rtlsim.sha256_file(rtlsim.BINOP_DRIVER)]
    for p in parts:
        h.update(p.encode() + b"\0")
    return h.hexdigest()


def load_doc(path: Path) -> dict[str, Any]:
    """The results document at ``path``, or an empty one; a malformed file is an error."""
    if not path.exists():
        return {"schema": SCHEMA, "variants": {}}
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise CosimError(f"{path}: cannot read the results file ({err}); move it away to start "
                         "over") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA \
            or not isinstance(doc.get("variants"), dict):
        raise CosimError(f"{path}: not a cosim results file of schema {SCHEMA}; move it away "
                         "to start over")
    return doc


def summarize(rec: dict[str, Any], n: int, ideal_per_image: float) -> dict[str, Any]:
    """Summary numbers of one variant over images 0..n-1 (``ideal_per_image``: array cycles
    per image at one beat per cycle, MACs / (PEs x DOT_K))."""
    imgs = [rec["images"].get(str(i)) for i in range(n)]
    done = [r for r in imgs if r is not None]
    batches = rec.get("batches", [])
    cycles = sum(b["array_cycles"] for b in batches)
    tiles = sum(b.get("array_tiles", 0) for b in batches)
    images_run = sum(b["count"] for b in batches)
    array_s = sum(b["array_s"] for b in batches)
    wall = sum(b["wall_s"] for b in batches)
    pw_cycles = sum(b.get("pointwise_cycles", 0) for b in batches)
    act_evals = sum(b.get("act_evals", 0) for b in batches)
    k = len(done)
    return {
        "images": k,
        "identical": sum(bool(r["identical"]) for r in done),
        "rtl_correct": sum(r["rtl_pred"] == r["label"] for r in done),
        "model_correct": sum(r["model_pred"] == r["label"] for r in done),
        "rtl_accuracy": round(100.0 * sum(r["rtl_pred"] == r["label"] for r in done) / k, 2)
        if k else None,
        "model_accuracy": round(100.0 * sum(r["model_pred"] == r["label"] for r in done) / k, 2)
        if k else None,
        "array_cycles_per_image": round(cycles / images_run, 1) if images_run else None,
        "ideal_cycles_per_image": round(ideal_per_image, 1),
        "tiles_per_image": round(tiles / images_run, 1) if images_run else None,
        "array_cycles_per_tile": round(cycles / tiles, 2) if tiles else None,
        "array_efficiency": round(ideal_per_image * images_run / cycles, 4) if cycles else None,
        "pointwise_cycles_per_image": round(pw_cycles / images_run, 1) if images_run else None,
        "total_cycles_per_image": round((cycles + pw_cycles) / images_run, 1)
        if images_run else None,
        "act_evals_per_image": round(act_evals / images_run, 1) if images_run else None,
        "sim_cycles_per_s": round(cycles / array_s) if array_s else None,
        "images_per_s": round(images_run / wall, 2) if wall else None,
        "wall_s": round(wall, 2),
        "images_timed": images_run,
    }


def _where_activations(cfg: Mapping[str, Any], names: Sequence[str]) -> str:
    """The sentence that says what of the cell, per variant, is left in Python."""
    exact = [n for n in names if variant(n).act == "exact"]
    hw = [n for n in names if variant(n).act != "exact"]
    parts = []
    if hw:
        parts.append(f"{', '.join(hw)}: nothing, the whole cell runs on the RTL (sigmoid and "
                     "tanh on `hdl/act_unit.v`)")
    if exact:
        parts.append(f"{', '.join(exact)}: **sigmoid and tanh run in Python** "
                     "(`lmul.sigmoid32` / `lmul.tanh32`, correctly rounded float32: exact "
                     "activations are not a hardware unit); everything else on the RTL")
    return "In Python: " + "; ".join(parts) + "."


def markdown(doc: dict[str, Any]) -> str:
    """The ``results/cosim.md`` text."""
    cfg = doc["config"]
    summary = doc.get("summary", {})
    lanes = cfg.get("ew_lanes", DEFAULT_EW_LANES)
    lines = [
        "# RTL in the loop: LSTM inference on the simulated hardware",
        "",
        f"Command: `{doc.get('command', 'make cosim')}`. Network: {cfg['dataset']} "
        f"{cfg['seq']}, seed {cfg['seed']}, {cfg['epochs']} epoch(s), hidden {cfg['hidden']}; "
        f"first {cfg['n']} test images; mac_array {cfg['rows']} x {cfg['cols']}.",
        "",
        "On the RTL (Verilator): every product and sum of the cell and the head (gate products "
        "on the array; `f*c`, `i*g`, `o*tanh(c)` on the element-wise multiplier with "
        "`fp_to_fmt` rounding and `fmt_to_fp32` widening, `c = f*c + i*g` on `fp_add`), the "
        "float32 -> format rounding of every operand, and for a hardware activation set "
        "sigmoid and tanh. " + _where_activations(cfg, list(summary)),
        "",
        "| variant | array multiplier | PE | activations | model mode | images | "
        "bit-identical logits | RTL accuracy % | model accuracy % |",
        "|---|---|---|---|---|---:|---:|---:|---:|",
    ]
    for name, s in summary.items():
        v = variant(name)
        lines.append(
            f"| {name} | {v.unit} (MULTIPLIER={v.multiplier}) | {v.pe} | {v.activations} | "
            f"`{v.mode}` | {s['images']} | {s['identical']}/{s['images']} | "
            f"{s['rtl_accuracy']} | {s['model_accuracy']} |")
    lines += [
        "", "Cycles per image:", "",
        "| variant | array | vs sequential | ideal (MACs / (PEs x DOT_K)) | efficiency | "
        "tiles | array cycles / tile | element-wise | array + element-wise | "
        "act_unit evaluations | sim. array cycles/s | images/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in summary.items():
        v = variant(name)
        lines.append(
            f"| {name} | {s['array_cycles_per_image']} | {_speedup(summary, v)} | "
            f"{s['ideal_cycles_per_image']} | {s['array_efficiency']} | "
            f"{s.get('tiles_per_image')} | {s.get('array_cycles_per_tile')} | "
            f"{s.get('pointwise_cycles_per_image')} | {s.get('total_cycles_per_image')} | "
            f"{s.get('act_evals_per_image')} | {s['sim_cycles_per_s']} | {s['images_per_s']} |")
    lines += ["", "array: cycles of the simulated `mac_array` (its valid/ready streams, tiles "
              "back to back). vs sequential: array cycles per image of the sequential array "
              "with the same multiplier divided by this variant's (both from this file). A tile "
              "is one ROWS x COLS block of outputs of a product (K = 156 for the gates, 128 for "
              "the head); cycles / tile averages both.",
              "", f"element-wise: a cycle model, not a simulated count. The element-wise unit "
              f"has {lanes} lanes; each takes one hidden unit per cycle (3 sigmoid and 2 tanh "
              "on `act_unit`, 6 roundings, 3 products, 3 widenings, 1 sum, pipelined; fill "
              "latency not counted), and it does not overlap the array (the next step's gate "
              "product needs all of h): ceil(images x hidden / lanes) cycles per step. With "
              "exact activations the count assumes an activation unit of the same throughput, "
              "which the hardware does not have. act_unit evaluations: sigmoid and tanh on "
              "the RTL (0: in Python).",
              "", "images/s and cycles/s: this machine, measured over the images computed by "
              "the runs that produced this file (a resumed run adds its own)."]
    return "\n".join(lines) + "\n"


def _speedup(summary: Mapping[str, Any], v: Variant) -> str:
    """Cycles per image of the same multiplier's sequential array over ``v``'s, as ``4.00x``."""
    seq = next((n for n, sv in VARIANTS.items() if sv.multiplier == v.multiplier), None)
    base = summary.get(seq, {}).get("array_cycles_per_image") if seq else None
    mine = summary.get(v.name, {}).get("array_cycles_per_image")
    return f"{base / mine:.2f}x" if base and mine else "-"


# ----------------------------------------------------------------------------- the run

def load_network(weights_dir: Path, progress: bool, reference: bool = True
                 ) -> lstm.CellWeights:
    """The ``make experiment`` weights: the committed reference checkpoint
    (:func:`experiments.weights.get_weights` with ``reference``); ``reference`` False: from the
    checkpoint cache ``weights_dir``, trained now and cached if not there yet."""
    from . import data as data_mod
    from .weights import get_weights

    ds = data_mod.load(DATASET)
    model, _ = get_weights(ds, SEQ, SEED, EPOCHS, None, weights_dir, progress,
                           reference=reference)
    return lstm.CellWeights.from_model(model)


def run(wts: lstm.CellWeights, x_seq: np.ndarray, labels: np.ndarray, variants: Sequence[str],
        out: Path | None, *, rows: int = 4, cols: int = 4, hdl_dirs: Sequence[Path] | None = None,
        dump: Path | None = None, progress: bool = True, command: str = "make cosim",
        ew_lanes: int = DEFAULT_EW_LANES, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Classify ``x_seq`` (float32 [N, T, I]) on the RTL for each variant (names as
    :func:`variant` takes them); compare with the model.

    Results are merged into ``out`` (atomically, every :data:`WRITE_INTERVAL_S` seconds and at
    the end; ``None`` keeps them in memory only). ``ew_lanes``: lanes of the element-wise unit
    in the cycle model (:meth:`Hardware.lstm_pointwise`). Returns the results document.
    """
    from tqdm import tqdm

    from .modes import parse_mode

    n, steps = x_seq.shape[0], x_seq.shape[1]
    specs = {name: variant(name) for name in variants}
    wdigest = weights_digest(wts)
    doc = load_doc(out) if out is not None else {"schema": SCHEMA, "variants": {}}
    doc["command"] = command
    doc["config"] = {"dataset": DATASET, "seq": SEQ, "seed": SEED, "epochs": EPOCHS,
                     "hidden": wts.hidden, "n": n, "rows": rows, "cols": cols,
                     "ew_lanes": ew_lanes, "weights_sha256": wdigest,
                     "python": {name: PYTHON_ACT if specs[name].act == "exact" else "nothing"
                                for name in variants},
                     "hdl_sha256": rtlsim.source_hashes(
                         [Path(d) for d in hdl_dirs] if hdl_dirs else [rtlsim.HDL_DIR])}
    ideal = {name: macs_per_image(wts, steps) / (rows * cols * v.dot_k)
             for name, v in specs.items()}
    hws: dict[str, Hardware] = {}
    cells: dict[str, CellBits] = {}
    modes = {}
    todo: dict[str, list[int]] = {}
    for name in variants:
        v = specs[name]
        mode = parse_mode(v.mode)
        modes[name] = mode
        key = config_key(v, rows, cols, wdigest, hdl_dirs, ew_lanes)
        rec = doc["variants"].get(name)
        if rec is None or rec.get("config_key") != key or dump is not None:
            if rec is not None and rec.get("config_key") != key:
                log(f"{name}: results in {out} are for other weights/RTL/array; recomputing")
            rec = {"config_key": key, "images": {}, "batches": []}
            doc["variants"][name] = rec
        todo[name] = [i for i in range(n) if str(i) not in rec["images"]]
        if todo[name]:
            hws[name] = Hardware(mode.cfg, v.multiplier, rows, cols, hdl_dirs, dot_k=v.dot_k,
                                 align_bits=v.align_bits, act=v.act, ew_lanes=ew_lanes)
            cells[name] = CellBits.on(hws[name], wts)
            hws[name].take_counters()
    # The model runs here, before the RTL threads start: its numba kernels are parallel
    # themselves and must not be entered from two threads at once.
    ref_logits: dict[str, np.ndarray] = {}
    for name in variants:
        ref = np.zeros((n, wts.fc_w.shape[1]), dtype=np.float32)
        idx_all = np.array(todo[name], dtype=np.int64)
        for s in range(0, idx_all.size, 1000):
            part = idx_all[s:s + 1000]
            ref[part] = lstm.forward_logits(wts, x_seq[part], modes[name])
        ref_logits[name] = ref
    traces: dict[str, list[tuple[int, OperandTrace]]] = {name: [] for name in variants}

    lock = threading.Lock()
    last_write = [time.perf_counter()]

    def one_batch(name: str, idx: list[int], bar: Any) -> None:
        hw, rec = hws[name], doc["variants"][name]
        t0 = time.perf_counter()
        xb = x_seq[idx]  # a last batch of fewer than ROWS images leaves array rows at +0
        trace = OperandTrace() if dump is not None else None
        logits = rtl_forward(hw, cells[name], xb, trace)
        ref = ref_logits[name][idx]
        cnt = hw.take_counters()
        wall = time.perf_counter() - t0
        rtl_pred, model_pred = lstm.predictions(logits), lstm.predictions(ref)
        same = np.all(logits.view(np.uint32) == ref.view(np.uint32), axis=1)
        with lock:
            for j, i in enumerate(idx):
                rec["images"][str(i)] = {"label": int(labels[i]), "rtl_pred": int(rtl_pred[j]),
                                         "model_pred": int(model_pred[j]),
                                         "identical": bool(same[j]),
                                         "logits": _hex_words(logits[j].view(np.uint32))}
            rec["batches"].append({"first": idx[0], "count": len(idx),
                                   "wall_s": round(wall, 4), "array_cycles": cnt.array_cycles,
                                   "array_tiles": cnt.array_tiles,
                                   "array_s": round(cnt.array_s, 4),
                                   "ideal_cycles": round(ideal[name] * len(idx), 1),
                                   "elementwise_ops": cnt.elementwise_ops,
                                   "act_evals": cnt.act_evals,
                                   "pointwise_cycles": cnt.pointwise_cycles})
            if trace is not None:
                traces[name].append((len(idx), trace))
            bar.update(len(idx))
            # Rewriting a large file after every batch would cost more than the batch: at most
            # every WRITE_INTERVAL_S seconds (and at the end), so a kill loses only that much.
            if out is not None and time.perf_counter() - last_write[0] >= WRITE_INTERVAL_S:
                doc["summary"] = {v: summarize(doc["variants"][v], n, ideal[v])
                                  for v in variants}
                _write(out, doc)
                last_write[0] = time.perf_counter()

    def worker(name: str, bar: Any) -> None:
        for s in range(0, len(todo[name]), rows):
            one_batch(name, todo[name][s:s + rows], bar)

    t_start = time.perf_counter()
    total = sum(len(v) for v in todo.values())
    try:
        # One thread per variant: the Verilator calls release the GIL, so the variants run on
        # both cores, each at its own pace.
        with tqdm(total=total, unit="image", disable=not progress, dynamic_ncols=True,
                  desc="cosim " + ",".join(variants)) as bar, \
                ThreadPoolExecutor(max(1, len(variants))) as pool:
            for fut in [pool.submit(worker, name, bar) for name in variants if todo[name]]:
                fut.result()
    finally:
        for hw in hws.values():
            hw.close()
    wall = time.perf_counter() - t_start
    doc["summary"] = {name: summarize(doc["variants"][name], n, ideal[name])
                      for name in variants}
    doc["last_run"] = {"wall_s": round(wall, 2), "images": total}
    if out is not None:
        _write(out, doc)
    if dump is not None:
        _write_dump(dump, traces, cells, rows, cols)
        log(f"operand streams written to {dump}")
    return doc


def _write(out: Path, doc: dict[str, Any]) -> None:
    atomic_write_text(out, json.dumps(doc, indent=1, sort_keys=True) + "\n")
    if "config" in doc and "summary" in doc:
        atomic_write_text(out.with_suffix(".md"), markdown(doc))


def _write_dump(path: Path, traces: dict[str, list[tuple[int, OperandTrace]]],
                cells: dict[str, CellBits], rows: int, cols: int) -> None:
    arrays: dict[str, np.ndarray] = {}
    for name, items in traces.items():
        if not items:
            continue
        gate = [np.stack(t.gate_a, axis=1)[:k] for k, t in items]
        ew_a = [np.stack(t.ew_a, axis=1)[:k] for k, t in items]
        ew_b = [np.stack(t.ew_b, axis=1)[:k] for k, t in items]
        head = [t.head_a[:k] for k, t in items if t.head_a is not None]
        arrays[f"{name}.gate_a"] = np.concatenate(gate)
        arrays[f"{name}.gate_w"] = cells[name].w
        arrays[f"{name}.head_a"] = np.concatenate(head)
        arrays[f"{name}.head_w"] = cells[name].fc_w
        arrays[f"{name}.ew_a"] = np.concatenate(ew_a)
        arrays[f"{name}.ew_b"] = np.concatenate(ew_b)
    meta = {"rows": rows, "cols": cols, "variants": {n: variant(n).__dict__ for n in traces},
            "tile_order": "m-block outer, n-block inner; beat k of tile (mb, nb): PE(r, c) "
                          "multiplies A[mb*ROWS + r, k] by B[k, nb*COLS + c]",
            "ew_pairs": ["f*c", "i*g", "o*tanh(c)"]}
    arrays["meta"] = np.array(json.dumps(meta))
    atomic_write(Path(path), lambda f: np.savez_compressed(f, **arrays))


def print_summary(doc: dict[str, Any], log: Callable[[str], None] = print) -> None:
    """Human-readable summary of a results document."""
    cfg = doc["config"]
    log(f"RTL in the loop: {cfg['dataset']} {cfg['seq']} LSTM (hidden {cfg['hidden']}), "
        f"mac_array {cfg['rows']}x{cfg['cols']}. "
        + _where_activations(cfg, list(doc["summary"])).replace("**", "").replace("`", ""))
    for name, s in doc["summary"].items():
        v = variant(name)
        where = ("activations in PYTHON (exact)" if v.act == "exact"
                 else f"activations on the RTL ({v.activations})")
        log(f"[{name}] array {v.unit} (MULTIPLIER={v.multiplier}), {v.pe}, {where}, vs model "
            f"mode '{v.mode}': "
            f"{s['images']} images classified, {s['identical']}/{s['images']} logit vectors "
            f"bit-identical; accuracy RTL {s['rtl_accuracy']} % / model {s['model_accuracy']} %"
            f"; array cycles/image {s['array_cycles_per_image']} "
            f"({_speedup(doc['summary'], v)} vs sequential) vs ideal "
            f"{s['ideal_cycles_per_image']} (MACs/(PEs x DOT_K), efficiency "
            f"{s['array_efficiency']}); {s.get('tiles_per_image')} tiles/image, "
            f"{s.get('array_cycles_per_tile')} cycles/tile; element-wise cycles/image "
            f"{s.get('pointwise_cycles_per_image')} (model: {cfg.get('ew_lanes')} lanes), "
            f"array + element-wise {s.get('total_cycles_per_image')}; act_unit evaluations/image "
            f"{s.get('act_evals_per_image')}; "
            f"{s['sim_cycles_per_s']} simulated cycles/s; {s['images_per_s']} images/s; "
            f"{s['wall_s']} s over {s['images_timed']} images")
    last = doc.get("last_run", {})
    if last.get("images"):
        log(f"this run: {last['images']} image runs in {last['wall_s']} s wall "
            f"({last['images'] / max(last['wall_s'], 1e-9):.2f} per second; variants run in "
            "parallel threads)")
    else:
        log("this run: nothing to compute, every image was in the results file already")


# ----------------------------------------------------------------------------- fp_to_fmt proof

FP_TO_FMT_CHUNK_BITS = 24


def prove_fp_to_fmt(formats: Sequence[str], out: Path, inputs: int | None = None, seed: int = 1,
                    progress: bool = True, hdl_dirs: Sequence[Path] | None = None,
                    log: Callable[[str], None] = print,
                    chunk_bits: int = FP_TO_FMT_CHUNK_BITS) -> dict[str, Any]:
    """``hdl/fp_to_fmt.v`` against ``lmul.round_to_format_bits`` on binary32 inputs.

    All 2^32 inputs per format (chunks of 2^chunk_bits consecutive bit patterns, resumable
    through ``out``), or with ``inputs`` that many inputs in whole chunks picked at random with
    ``seed`` (printed). Returns the document written to ``out`` (JSON) and
    ``out.with_suffix('.md')``.
    """
    from tqdm import tqdm

    if not 8 <= chunk_bits <= 28:
        raise ValueError(f"chunk_bits must be in 8..28, got {chunk_bits}")
    chunk = 1 << chunk_bits
    n_chunks = 1 << (32 - chunk_bits)
    if inputs is None:
        chunks = list(range(n_chunks))
    else:
        want = max(1, min(n_chunks, -(-inputs // chunk)))
        chunks = sorted(np.random.default_rng(seed).choice(n_chunks, want, replace=False)
                        .tolist())
        log(f"fp_to_fmt proof: {want} random chunks of 2^{chunk_bits} inputs, seed {seed}")
    dirs = [Path(d) for d in hdl_dirs] if hdl_dirs else [rtlsim.HDL_DIR]
    hashes = rtlsim.source_hashes(dirs)
    try:
        doc = json.loads(out.read_text()) if out.exists() else {}
    except (OSError, ValueError) as err:
        raise CosimError(f"{out}: cannot read the resume file ({err}); move it away to start "
                         "over") from None
    if not isinstance(doc, dict) or doc.get("hdl_sha256") != hashes \
            or not isinstance(doc.get("formats"), dict):
        doc = {"hdl_sha256": hashes, "formats": {}}
    for name in formats:
        fmt = lmul.PRESETS[name]
        unit = rtlsim.Unary("fp_to_fmt", {"EXP_BITS": fmt.exp_bits, "MAN_BITS": fmt.man_bits}, 1,
                            dirs)
        key = "all" if inputs is None else f"sample-{seed}-{len(chunks)}"
        if chunk_bits != FP_TO_FMT_CHUNK_BITS:
            key += f"-chunk{chunk_bits}"
        rec = doc["formats"].get(name)
        if rec is None or rec.get("key") != key:
            rec = {"key": key, "done": [], "inputs": 0, "mismatches": 0, "wall_s": 0.0,
                   "first_mismatches": []}
            doc["formats"][name] = rec
        done = set(rec["done"])
        base = np.arange(chunk, dtype=np.uint32)
        try:
            for c in tqdm([c for c in chunks if c not in done], desc=f"fp_to_fmt {name}",
                          disable=not progress, unit="chunk", dynamic_ncols=True):
                t0 = time.perf_counter()
                x = base + np.uint32(c * chunk)
                got = unit.run(x)
                ref = np.empty(chunk, dtype=fmt.uint_dtype)
                # The model's float64 temporaries in cache-sized pieces: about ten times faster
                # than one call on the whole chunk.
                with np.errstate(invalid="ignore"):
                    for s in range(0, chunk, 1 << 16):
                        ref[s:s + (1 << 16)] = lmul.round_to_format_bits(
                            x[s:s + (1 << 16)].view(np.float32), fmt, "rne")
                bad = np.flatnonzero(got.astype(np.uint32) != ref.astype(np.uint32))
                rec["mismatches"] += int(bad.size)
                for j in bad[:max(0, 8 - len(rec["first_mismatches"]))]:
                    rec["first_mismatches"].append(
                        {"x": f"{int(x[j]):08x}", "rtl": f"{int(got[j]):x}",
                         "model": f"{int(ref[j]):x}"})
                rec["inputs"] += chunk
                rec["wall_s"] = round(rec["wall_s"] + time.perf_counter() - t0, 3)
                rec["done"].append(c)
                atomic_write_text(out, json.dumps(doc, indent=1) + "\n")
        finally:
            unit.close()
        rate = rec["inputs"] / rec["wall_s"] if rec["wall_s"] else 0.0
        log(f"fp_to_fmt {name}: {rec['inputs']:,} inputs, {rec['mismatches']} mismatches, "
            f"{rec['wall_s']:.1f} s ({rate / 1e6:.1f} M inputs/s)"
            + (f"; first: {rec['first_mismatches']}" if rec["mismatches"] else ""))
    lines = ["# fp_to_fmt: every binary32 input, RTL against lmul.round_to_format_bits", "",
             "Command: `python -m experiments.cosim --fp-to-fmt ...`", "",
             "| format | inputs | mismatches | wall s | M inputs/s |", "|---|---:|---:|---:|---:|"]
    for name, rec in doc["formats"].items():
        rate = rec["inputs"] / rec["wall_s"] / 1e6 if rec["wall_s"] else 0.0
        lines.append(f"| {name} | {rec['inputs']:,} | {rec['mismatches']} | {rec['wall_s']:.1f} "
                     f"| {rate:.1f} |")
    lines += ["", "wall s: summed over the runs that produced this file (a resumed run adds "
              "its own); the model's conversion dominates it."]
    atomic_write_text(out, json.dumps(doc, indent=1) + "\n")
    atomic_write_text(out.with_suffix(".md"), "\n".join(lines) + "\n")
    return doc


# ----------------------------------------------------------------------------- CLI

def _variants(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"unknown variant(s) {text!r}; known: "
                                         f"{', '.join(VARIANTS)}")
    for name in names:
        try:
            variant(name)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    return list(dict.fromkeys(names))


def _act_set(text: str) -> str:
    name = text.strip().lower()
    if name != "exact" and name not in lmul.ACT_PRESETS:
        raise argparse.ArgumentTypeError(f"unknown activation set {text!r}; known: exact, "
                                         f"{', '.join(lmul.ACT_PRESETS)}")
    return name


def _formats(text: str) -> list[str]:
    names = [t.strip().lower() for t in text.split(",") if t.strip()]
    bad = [t for t in names if t not in lmul.PRESETS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"unknown format(s) {bad or text!r}; presets: "
                                         f"{', '.join(lmul.PRESETS)}")
    return names


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m experiments.cosim",
                                description="LSTM inference with every product on the RTL.")
    p.add_argument("--n", type=int_in_range(1), default=DEFAULT_N,
                   help=f"test images, the first N of the test set (default {DEFAULT_N})")
    p.add_argument("--variants", type=_variants, default=None,
                   help="comma list of lmul (L-Mul array), bf16 (exact array), fused "
                        "<lmul|bf16>-k<K>-a<A> (DOT_K=K, ALIGN_BITS=A), each optionally with "
                        "-<set> (sigmoid/tanh on act_unit, e.g. lmul-pwl64; without it they "
                        "run in Python); default lmul, bf16, both fused with "
                        "--dot-k/--align-bits, and these four with --act")
    p.add_argument("--dot-k", type=int_in_range(2, 64), default=DEFAULT_DOT_K,
                   help=f"DOT_K of the default fused variants (default {DEFAULT_DOT_K})")
    p.add_argument("--align-bits", type=int_in_range(1, 276), default=DEFAULT_ALIGN_BITS,
                   help=f"ALIGN_BITS of the default fused variants (default "
                        f"{DEFAULT_ALIGN_BITS})")
    p.add_argument("--act", type=_act_set, default=DEFAULT_ACT,
                   help=f"activation set of the default variants that run sigmoid/tanh on the "
                        f"RTL ({', '.join(lmul.ACT_PRESETS)}; exact: none of them; default "
                        f"{DEFAULT_ACT})")
    p.add_argument("--ew-lanes", type=int_in_range(1, 1024), default=DEFAULT_EW_LANES,
                   help="lanes of the element-wise unit in the cycle model (hidden units per "
                        f"cycle; default {DEFAULT_EW_LANES})")
    p.add_argument("--rows", type=int_in_range(1), default=4, help="array rows (1..64)")
    p.add_argument("--cols", type=int_in_range(1), default=4, help="array columns (1..64)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results JSON (.md beside it)")
    p.add_argument("--weights-dir", type=Path, default=RESULTS_DIR / "weights",
                   help="checkpoint cache shared with make experiment (with --retrain)")
    p.add_argument("--retrain", action="store_true",
                   help="train (or use the checkpoint cache) instead of the committed reference "
                        "checkpoint (experiments/checkpoints/)")
    p.add_argument("--dump-operands", type=Path, default=None, metavar="FILE",
                   help="write the multiplier operand streams to FILE (.npz)")
    p.add_argument("--fp-to-fmt", type=_formats, default=None, metavar="FORMATS",
                   help="instead: prove fp_to_fmt on all 2^32 binary32 inputs for these presets")
    p.add_argument("--fp-to-fmt-inputs", type=int_in_range(1), default=None,
                   help="with --fp-to-fmt: only this many inputs (random chunks)")
    p.add_argument("--seed", type=int, default=1, help="seed of --fp-to-fmt-inputs sampling")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from . import data as data_mod

    args = build_parser().parse_args(argv)
    progress = not args.no_progress and sys.stderr.isatty()
    try:
        if args.fp_to_fmt is not None:
            doc = prove_fp_to_fmt(args.fp_to_fmt, RESULTS_DIR / "fp_to_fmt_proof.json",
                                  args.fp_to_fmt_inputs, args.seed, progress)
            return 1 if any(r["mismatches"] for r in doc["formats"].values()) else 0
        if args.rows > 64 or args.cols > 64:
            raise ValueError(f"array shape must be at most 64 x 64, got {args.rows} x {args.cols}")
        check_results_path(args.out)  # a ResultsError is a ValueError

        wts = load_network(args.weights_dir, progress, reference=not args.retrain)
        ds = data_mod.load(DATASET)
        n = min(args.n, ds.test_x.shape[0])
        x_seq = lstm.to_sequence(ds.test_x[:n], SEQ)
        names = args.variants or default_variants(args.dot_k, args.align_bits, args.act)
        print(f"cosim: {n} test images, variants {', '.join(names)}, array "
              f"{args.rows}x{args.cols}; building the Verilator models (cached in "
              f"{rtlsim.build_root()})", flush=True)
        command = f"make cosim N={n}" if args.n != DEFAULT_N else "make cosim"
        extra = [f"--{k.replace('_', '-')} {v}" for k, v in
                 (("variants", ",".join(args.variants or [])), ("dot_k", args.dot_k),
                  ("align_bits", args.align_bits), ("act", args.act),
                  ("ew_lanes", args.ew_lanes), ("rows", args.rows), ("cols", args.cols))
                 if v and v != build_parser().get_default(k)]
        extra += ["--retrain"] if args.retrain else []
        if extra:
            command += f' COSIM_ARGS="{" ".join(extra)}"'
        doc = run(wts, x_seq, ds.test_y[:n], names, args.out, rows=args.rows,
                  cols=args.cols, dump=args.dump_operands, progress=progress, command=command,
                  ew_lanes=args.ew_lanes)
    except (CosimError, rtlsim.ToolMissingError, rtlsim.RtlBuildError, data_mod.DataError,
            ValueError) as err:
        print(f"cosim: error: {err}", file=sys.stderr)
        return 2
    print_summary(doc)
    print(f"results: {args.out} and {args.out.with_suffix('.md')}")
    bad = any(s["identical"] != s["images"] for s in doc["summary"].values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
