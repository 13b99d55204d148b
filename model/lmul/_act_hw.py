"""The activation unit ``hdl/act_unit.v``: piecewise-linear sigmoid and tanh of binary32 inputs.

:func:`act_hw_bits` returns the unit's result bits, bit for bit (``make prove`` checks it on
every one of the 2^32 inputs per shipped parameter set). The unit (docs/activation.md):

* ``|x|`` is truncated to fixed point ``u = floor(|x| * 2^C)`` (``C = coef_bits``) on the range
  ``[0, R)`` (``R = 2^X``: 16 for sigmoid, 8 for tanh); ``S = segments`` uniform segments of
  width ``R / S``; segment ``i = u >> k`` with ``k = C + X - log2(S)``, offset
  ``t = u mod 2^k``;
* ``y = A[i] + floor(D[i] * t / 2^k)`` in units of ``2^-C``: the chord between the knots
  ``A[i] = round(f(R i / S) 2^C)`` (``f`` = sigmoid or tanh, exact decimal arithmetic, ties to
  even) with ``D[i] = A[i+1] - A[i]``, so the curve is continuous and monotone;
* ``|x| >= R`` (Inf included) saturates to ``y = 2^C`` (1.0);
* odd/even symmetry: ``tanh(-x) = -tanh(x)``, ``sigmoid(-x) = 1 - sigmoid(x)``
  (``2^C - y``);
* tanh passes ``x`` through for ``|x| < 2^-12`` (there ``tanh(x)`` rounds to ``x``), so
  ``tanh(+-0) = +-0`` and subnormals keep their value;
* the fixed-point result is rounded once to binary32 (round to nearest even, the project's
  ``fp_round``); NaN gives the canonical NaN ``0x7FC00000``.

The coefficient table comes from :func:`coefficients`; the same table is written into
``hdl/act_coef.vh`` by ``python -m sim.gen_act_coef``, and a test checks that the committed file
equals the generator's output, so the RTL and the model can't drift apart.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from functools import cache

import numpy as np

#: Activation functions: the FUNC parameter of the RTL.
ACT_FUNCS = ("sigmoid", "tanh")
#: Range of the table per function: [0, 2^log2) (sigmoid 16, tanh 8, where both are within
#: 2.3e-7 of their limit 1).
ACT_XMAX_LOG2 = {"sigmoid": 4, "tanh": 3}
#: tanh returns x for |x| < 2^-ACT_TANH_PASS_LOG2.
ACT_TANH_PASS_LOG2 = 12
#: Accepted coefficient fraction bits and segment counts (the RTL's parameter checks).
ACT_COEF_BITS_RANGE = (12, 30)
ACT_SEGMENTS_RANGE = (2, 256)


@dataclass(frozen=True)
class ActConfig:
    """One parameter set of the activation unit.

    Attributes:
        func: ``"sigmoid"`` or ``"tanh"`` (RTL ``FUNC`` 0 / 1).
        segments: uniform segments over [0, R) (R = 16 for sigmoid, 8 for tanh); a power of
            two in 2..256 (RTL ``SEGMENTS``).
        coef_bits: fraction bits of the fixed-point input, table and result, 12..30
            (RTL ``COEF_BITS``).
    """

    func: str = "sigmoid"
    segments: int = 16
    coef_bits: int = 16

    def __post_init__(self) -> None:
        if self.func not in ACT_FUNCS:
            raise ValueError(f"ActConfig: func must be one of {ACT_FUNCS}, got {self.func!r}")
        lo, hi = ACT_SEGMENTS_RANGE
        s = self.segments
        if not isinstance(s, int) or not lo <= s <= hi or s & (s - 1):
            raise ValueError(f"ActConfig: segments must be a power of two in {lo}..{hi}, got {s}")
        lo, hi = ACT_COEF_BITS_RANGE
        if not isinstance(self.coef_bits, int) or not lo <= self.coef_bits <= hi:
            raise ValueError(f"ActConfig: coef_bits must be in {lo}..{hi}, got {self.coef_bits}")

    @property
    def seg_log2(self) -> int:
        return self.segments.bit_length() - 1

    @property
    def xmax_log2(self) -> int:
        return ACT_XMAX_LOG2[self.func]

    def verilog_parameters(self) -> dict[str, int]:
        """The RTL parameters of ``hdl/act_unit.v`` for this set."""
        return {"FUNC": ACT_FUNCS.index(self.func), "SEGMENTS": self.segments,
                "COEF_BITS": self.coef_bits}


#: The shipped parameter sets, by name: the RTL holds tables for these (hdl/act_coef.vh).
ACT_PRESETS: dict[str, tuple[int, int]] = {
    "pwl16": (16, 16),
    "pwl64": (64, 20),
    "pwl256": (256, 24),
}


def act_config(name: str, func: str) -> ActConfig:
    """The :class:`ActConfig` of shipped set ``name`` (a key of ``ACT_PRESETS``) for ``func``."""
    if name not in ACT_PRESETS:
        raise ValueError(f"unknown activation set {name!r}; known: {', '.join(ACT_PRESETS)}")
    segments, coef_bits = ACT_PRESETS[name]
    return ActConfig(func, segments, coef_bits)


def _exact_f(func: str, x: decimal.Decimal) -> decimal.Decimal:
    if func == "sigmoid":
        return 1 / (1 + (-x).exp())
    e2 = (2 * x).exp()
    return (e2 - 1) / (e2 + 1)


@cache
def _table(cfg: ActConfig) -> tuple[tuple[int, ...], tuple[int, ...]]:
    ctx = decimal.Context(prec=60, rounding=decimal.ROUND_HALF_EVEN)
    scale = 1 << cfg.coef_bits
    knots = []
    with decimal.localcontext(ctx):
        for i in range(cfg.segments + 1):
            x = decimal.Decimal((1 << cfg.xmax_log2) * i) / cfg.segments
            knots.append(int((_exact_f(cfg.func, x) * scale).to_integral_value()))
    a = tuple(knots[:-1])
    d = tuple(knots[i + 1] - knots[i] for i in range(cfg.segments))
    return a, d


def coefficients(cfg: ActConfig) -> tuple[np.ndarray, np.ndarray]:
    """(A, D): knot values and rises per segment, int64 arrays of ``cfg.segments`` entries, in
    units of ``2^-coef_bits`` (the table of ``hdl/act_coef.vh``)."""
    a, d = _table(cfg)
    return np.array(a, dtype=np.int64), np.array(d, dtype=np.int64)


def act_hw_bits(x_bits: object, cfg: ActConfig) -> np.ndarray:
    """The activation unit's binary32 result bits for binary32 input bits ``x_bits``.

    Args:
        x_bits: array-like of IEEE binary32 bit patterns (any integer dtype; values taken
            modulo 2^32), any shape.
        cfg: the parameter set.

    Returns:
        uint32 array of result bit patterns, the shape of ``x_bits``.
    """
    if not isinstance(cfg, ActConfig):
        raise TypeError(f"act_hw_bits: cfg must be an ActConfig, got {type(cfg).__name__}")
    x = np.ascontiguousarray(np.asarray(x_bits).astype(np.uint32, copy=False))
    out = np.empty(x.shape, dtype=np.uint32)
    from ._kact import _act_array  # numba: imported on first use, like _kdot

    a, d = coefficients(cfg)
    _act_array(x.reshape(-1), out.reshape(-1), cfg.func == "tanh", 127 - ACT_TANH_PASS_LOG2,
               cfg.coef_bits, cfg.seg_log2, cfg.xmax_log2, a, d)
    return out


def act_hw(x: object, cfg: ActConfig) -> np.ndarray:
    """:func:`act_hw_bits` on float32 values: returns a float32 array."""
    xf = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    return act_hw_bits(xf.view(np.uint32), cfg).view(np.float32)
