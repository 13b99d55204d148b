"""lmul.act_hw_bits: the activation unit's model against its definition and the real functions.

The model's bits are checked against an exact-rational restatement of docs/activation.md
(:func:`_spec_bits`, written here with ``fractions.Fraction``), against float64 sigmoid/tanh
within the chord-interpolation error bound, and for the specified specials, symmetry and
monotonicity. (RTL == model on all 2^32 inputs: ``make prove``.)
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

import lmul

CONFIGS = [lmul.act_config(name, func) for name in lmul.ACT_PRESETS for func in lmul.ACT_FUNCS]
IDS = [f"{c.func}-{c.segments}-{c.coef_bits}" for c in CONFIGS]


def _f(func: str, x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if func == "sigmoid" else math.tanh(x)


def _spec_bits(x_bits: int, cfg: lmul.ActConfig) -> int:
    """The unit's result from the written specification, in exact rationals."""
    x = float(np.array([x_bits], dtype=np.uint32).view(np.float32)[0])
    if math.isnan(x):
        return 0x7FC00000
    if cfg.func == "tanh" and abs(x) < 2.0 ** -12:
        return x_bits
    r = 1 << (4 if cfg.func == "sigmoid" else 3)
    scale = 1 << cfg.coef_bits
    ax = abs(x)
    if ax >= r:
        y = Fraction(1)
    else:
        h = Fraction(r, cfg.segments)
        i = int(Fraction(ax) // h)
        # knots: f at R i / S, rounded to 2^-C (float64 f is accurate far beyond 2^-30 here)
        k0 = round(_f(cfg.func, float(i * h)) * scale)
        k1 = round(_f(cfg.func, float((i + 1) * h)) * scale)
        u = math.floor(Fraction(ax) * scale)  # |x| truncated to 2^-C
        t = u - int(i * h * scale)
        seg_units = int(h * scale)
        y = Fraction(k0 + ((k1 - k0) * t) // seg_units, scale)
    if cfg.func == "sigmoid" and x < 0:
        y = 1 - y
    neg = cfg.func == "tanh" and math.copysign(1.0, x) < 0
    val = float(y)  # exact: y has at most 31 significant bits
    out = np.array([-val if neg else val], dtype=np.float32)  # one RNE rounding
    return int(out.view(np.uint32)[0])


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_model_equals_the_written_specification(cfg: lmul.ActConfig) -> None:
    rng = np.random.default_rng(7)
    r = 1 << cfg.xmax_log2
    knots = np.array([r * i / cfg.segments for i in range(cfg.segments + 1)], dtype=np.float32)
    kb = knots.view(np.uint32).astype(np.int64)
    xs = np.concatenate([
        rng.integers(0, 1 << 32, 3000, dtype=np.uint64).astype(np.uint32),
        rng.uniform(-1.5 * r, 1.5 * r, 3000).astype(np.float32).view(np.uint32),
        np.clip(np.concatenate([kb - 1, kb, kb + 1]), 0, None).astype(np.uint32),
        np.array([0, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00001, 0xFFFFFFFF, 1,
                  0x39800000, 0x397FFFFF, 0xB9800000, 0xB97FFFFF], dtype=np.uint32),
    ])
    xs = np.concatenate([xs, xs ^ np.uint32(0x80000000)])
    got = lmul.act_hw_bits(xs, cfg)
    bad = [(hex(int(x)), hex(int(g)), hex(_spec_bits(int(x), cfg)))
           for x, g in zip(xs, got, strict=True) if int(g) != _spec_bits(int(x), cfg)]
    assert not bad, bad[:5]


def _chord_bound(cfg: lmul.ActConfig) -> float:
    """Max |PWL - f| on [0, R): chord error h^2/8 max|f''|, the knot rounding, the truncation of
    |x| (slope <= 1) and of the offset product, plus the saturation step at R."""
    h = (1 << cfg.xmax_log2) / cfg.segments
    f2 = 0.0963 if cfg.func == "sigmoid" else 0.7699  # max |f''| on the positive axis
    q = 2.0 ** -cfg.coef_bits
    sat = 1.0 - _f(cfg.func, float(1 << cfg.xmax_log2))
    return max(h * h / 8 * f2 + 3 * q, sat + q)


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_error_against_float64_is_within_the_chord_bound(cfg: lmul.ActConfig) -> None:
    r = 1 << cfg.xmax_log2
    x = np.linspace(-1.25 * r, 1.25 * r, 400_001).astype(np.float32)
    y = lmul.act_hw(x, cfg).astype(np.float64)
    x64 = x.astype(np.float64)
    ref = 1 / (1 + np.exp(-x64)) if cfg.func == "sigmoid" else np.tanh(x64)
    err = np.abs(y - ref).max()
    assert err <= _chord_bound(cfg), (err, _chord_bound(cfg))
    # and the bound is not vacuous: the coarsest set really has error of the chord's order
    assert err >= _chord_bound(cfg) / 8


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_specials_symmetry_and_monotonicity(cfg: lmul.ActConfig) -> None:
    bits = lmul.act_hw_bits
    nans = np.array([0x7FC00000, 0xFFC00000, 0x7F800001, 0xFFFFFFFF], dtype=np.uint32)
    assert (bits(nans, cfg) == 0x7FC00000).all()
    inf = np.array([0x7F800000, 0xFF800000], dtype=np.uint32)
    want = [0x3F800000, 0xBF800000] if cfg.func == "tanh" else [0x3F800000, 0]
    assert bits(inf, cfg).tolist() == want
    zeros = bits(np.array([0, 0x80000000], dtype=np.uint32), cfg).tolist()
    assert zeros == ([0, 0x80000000] if cfg.func == "tanh" else [0x3F000000, 0x3F000000])
    rng = np.random.default_rng(3)
    x = np.sort(np.abs(rng.standard_normal(200_000).astype(np.float32) * 6))
    pos = lmul.act_hw(x, cfg).astype(np.float64)
    neg = lmul.act_hw(-x, cfg).astype(np.float64)
    # Monotone on each side of tanh's pass-through edge 2^-12 (the chord of segment 0 lies
    # below tanh, so the unit steps down there: docs/activation.md).
    edge = x >= 2.0 ** -12
    assert (np.diff(pos[edge]) >= 0).all() and (np.diff(pos[~edge]) >= 0).all()
    if cfg.func == "tanh":
        assert (neg == -pos).all()
    else:
        assert (np.abs(pos + neg - 1) <= 2.0 ** -24).all()


def test_table_knots_are_the_rounded_function_values() -> None:
    from lmul._act_hw import coefficients

    for cfg in CONFIGS:
        a, d = coefficients(cfg)
        h = (1 << cfg.xmax_log2) / cfg.segments
        scale = 1 << cfg.coef_bits
        for i in range(cfg.segments):
            assert abs(a[i] - _f(cfg.func, i * h) * scale) <= 0.5 + 1e-6
            assert abs(a[i] + d[i] - _f(cfg.func, (i + 1) * h) * scale) <= 0.5 + 1e-6
        assert (d >= 0).all() and (d < scale).all()


@pytest.mark.parametrize("kwargs, match", [
    ({"func": "relu"}, "func"), ({"segments": 24}, "power of two"), ({"segments": 512}, "2..256"),
    ({"coef_bits": 11}, "12..30"), ({"coef_bits": 31}, "12..30")])
def test_bad_configs_are_rejected(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        lmul.ActConfig(**kwargs)
    with pytest.raises(ValueError, match="unknown activation set"):
        lmul.act_config("pwl7", "tanh")
    with pytest.raises(TypeError, match="ActConfig"):
        lmul.act_hw_bits(np.zeros(1, np.uint32), "pwl16")  # type: ignore[arg-type]
