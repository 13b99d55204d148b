"""Tests of sim/lib/oracle.py, the exact-rounding oracle, against numpy and ml_dtypes.

numpy's float16 / float32 casts and arithmetic and ml_dtypes' bfloat16 / float8 casts are
correctly rounded (round to nearest even) for the cases used here: float32 -> 16- and 8-bit
formats, float64 -> float32 and float16, and float32 / float16 sums and products (a float16
product is exact in float32, so numpy's float16 multiply rounds once). NaN results are compared
as a class; the oracle must give the canonical NaN. Seed: ``COCOTB_RANDOM_SEED``.
"""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from sim.lib import oracle
from sim.lib.knobs import random_seed

# Casting NaN/Inf/out-of-range values is the point of these tests.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

REPO = Path(__file__).resolve().parents[2]

#: (name, E, M, numpy scalar type, unsigned type of the same width)
FORMATS = [
    ("fp16", 5, 10, np.float16, np.uint16),
    ("bf16", 8, 7, ml_dtypes.bfloat16, np.uint16),
    ("e4m3_ieee", 4, 3, ml_dtypes.float8_e4m3, np.uint8),
    ("e5m2", 5, 2, ml_dtypes.float8_e5m2, np.uint8),
]
FORMAT_IDS = [f[0] for f in FORMATS]


def _rng(salt: int) -> np.random.Generator:
    return np.random.default_rng([random_seed(), salt])


def _reference_bits(x: np.ndarray, dtype: type, utype: type, exp_bits: int,
                    man_bits: int) -> np.ndarray:
    """numpy/ml_dtypes cast of ``x`` as bits, NaN results replaced by the canonical NaN."""
    with np.errstate(all="ignore"):
        y = x.astype(dtype)
    bits = y.view(utype).astype(np.int64)
    return np.where(np.isnan(y.astype(np.float64)), oracle.canonical_nan(exp_bits, man_bits),
                    bits)


def _assert_same(what: str, x: np.ndarray, got: list[int], want: np.ndarray) -> None:
    got_a = np.array(got, dtype=np.int64)
    bad = np.flatnonzero(got_a != want)
    assert bad.size == 0, (f"{what}: {bad.size} of {len(want)} differ; first x={x[bad[0]]!r} "
                           f"oracle=0x{int(got_a[bad[0]]):x} reference=0x{int(want[bad[0]]):x}")


@pytest.mark.parametrize(("name", "e", "m", "dtype", "utype"), FORMATS, ids=FORMAT_IDS)
def test_decode_every_pattern(name: str, e: int, m: int, dtype: type, utype: type) -> None:
    """Every bit pattern decodes to the value, sign of zero, Inf or NaN that numpy sees."""
    bits = np.arange(1 << (1 + e + m), dtype=np.int64)
    ref = bits.astype(utype).view(dtype).astype(np.float64)
    for b, r in zip(bits.tolist(), ref.tolist(), strict=True):
        v = oracle.decode(b, e, m)
        if np.isnan(r):
            assert v.is_nan, f"{name} 0x{b:x}: want NaN, got {v}"
        elif np.isinf(r):
            assert v.is_inf and v.negative == (r < 0), f"{name} 0x{b:x}: want {r}, got {v}"
        else:
            assert v.kind == "finite" and v.value == Fraction(r), f"{name} 0x{b:x}: {v} != {r}"
            assert v.negative == bool(np.signbit(r)), f"{name} 0x{b:x}: sign of {r}"


def test_decode_float32_random() -> None:
    bits = _rng(1).integers(0, 1 << 32, 20_000, dtype=np.int64)
    ref = bits.astype(np.uint32).view(np.float32).astype(np.float64)
    for b, r in zip(bits.tolist(), ref.tolist(), strict=True):
        v = oracle.decode(b, 8, 23)
        if np.isnan(r):
            assert v.is_nan
        elif np.isinf(r):
            assert v.is_inf and v.negative == (r < 0)
        else:
            assert v.value == Fraction(r) and v.negative == bool(np.signbit(r)), hex(b)


def _float32_cases(rng: np.random.Generator, dtype: type, utype: type, e: int, m: int
                   ) -> np.ndarray:
    """float32 values that stress rounding to the target: uniform bit patterns, values inside
    the target's range, exact midpoints between neighbours (ties) and one float32 ulp off them,
    and the overflow threshold."""
    n = 20_000
    raw = rng.integers(0, 1 << 32, n, dtype=np.int64).astype(np.uint32).view(np.float32)
    bias = (1 << (e - 1)) - 1
    scaled = (rng.standard_normal(n) * np.exp2(rng.integers(-bias - m - 2, bias + 2, n))
              ).astype(np.float32)
    width = 1 + e + m
    t = rng.integers(0, 1 << width, n, dtype=np.int64)
    t = t[(t >> m) & ((1 << e) - 1) != (1 << e) - 1]  # finite target patterns
    lo = t.astype(utype).view(dtype).astype(np.float64)
    hi = (t + 1).astype(utype).view(dtype).astype(np.float64)  # next magnitude (may be Inf)
    ok = np.isfinite(hi)
    mid = ((lo[ok] + hi[ok]) / 2).astype(np.float32)  # exact: target has < 23 mantissa bits
    mid_up = np.nextafter(mid, np.float32(np.inf) * np.sign(mid))
    mid_dn = np.nextafter(mid, np.float32(0))
    mx = float(oracle.decode(oracle.max_finite_bits(e, m), e, m).value)
    half_ulp = 2.0 ** (bias - m - 1)
    edges = np.array([mx, mx + half_ulp, mx + half_ulp / 2, -mx - half_ulp, 0.0, -0.0,
                      np.inf, -np.inf, np.nan], dtype=np.float32)
    return np.concatenate([raw, scaled, mid, mid_up, mid_dn, edges])


@pytest.mark.parametrize(("name", "e", "m", "dtype", "utype"), FORMATS, ids=FORMAT_IDS)
def test_encode_float32_matches_casts(name: str, e: int, m: int, dtype: type,
                                      utype: type) -> None:
    x = _float32_cases(_rng(2), dtype, utype, e, m)
    want = _reference_bits(x, dtype, utype, e, m)
    got = [oracle.encode(v, e, m) for v in x.tolist()]
    _assert_same(f"float32 -> {name}", x, got, want)


@pytest.mark.parametrize(("name", "e", "m", "dtype", "utype"),
                         [("fp32", 8, 23, np.float32, np.uint32),
                          ("fp16", 5, 10, np.float16, np.uint16)], ids=["fp32", "fp16"])
def test_encode_float64_matches_numpy(name: str, e: int, m: int, dtype: type,
                                      utype: type) -> None:
    """float64 -> float32 / float16 are single roundings in numpy."""
    rng = _rng(3)
    n = 20_000
    bias = (1 << (e - 1)) - 1
    x = rng.standard_normal(n) * np.exp2(rng.integers(-bias - m - 3, bias + 3, n))
    lo = x.astype(dtype).astype(np.float64)
    ties = (lo + np.nextafter(lo.astype(dtype), dtype(np.inf) * np.sign(lo)).astype(
        np.float64)) / 2
    x = np.concatenate([x, ties[np.isfinite(ties)]])
    want = _reference_bits(x, dtype, utype, e, m)
    got = [oracle.encode(v, e, m) for v in x.tolist()]
    _assert_same(f"float64 -> {name}", x, got, want)


def test_add_float32_matches_numpy() -> None:
    rng = _rng(4)
    n = 20_000
    a = rng.integers(0, 1 << 32, n, dtype=np.int64)
    b = np.where(rng.random(n) < 0.5, rng.integers(0, 1 << 32, n, dtype=np.int64),
                 a ^ rng.integers(0, 1 << 8, n) ^ (rng.integers(0, 2, n) << 31))  # cancellation
    with np.errstate(all="ignore"):
        y = a.astype(np.uint32).view(np.float32) + b.astype(np.uint32).view(np.float32)
    want = np.where(np.isnan(y), 0x7FC00000, y.view(np.uint32).astype(np.int64))
    got = [oracle.add_bits(x, z, 8, 23) for x, z in zip(a.tolist(), b.tolist(), strict=True)]
    _assert_same("float32 add", a, got, want)


@pytest.mark.parametrize(("e", "m", "ftype", "utype"),
                         [(8, 23, np.float32, np.uint32), (5, 10, np.float16, np.uint16)],
                         ids=["fp32", "fp16"])
def test_mul_matches_numpy(e: int, m: int, ftype: type, utype: type) -> None:
    rng = _rng(5)
    n = 20_000
    width = 1 + e + m
    a = rng.integers(0, 1 << width, n, dtype=np.int64)
    b = rng.integers(0, 1 << width, n, dtype=np.int64)
    with np.errstate(all="ignore"):
        y = a.astype(utype).view(ftype) * b.astype(utype).view(ftype)
    want = np.where(np.isnan(y), oracle.canonical_nan(e, m), y.view(utype).astype(np.int64))
    got = [oracle.mul_bits(x, z, e, m) for x, z in zip(a.tolist(), b.tolist(), strict=True)]
    _assert_same(f"E{e}M{m} mul", a, got, want)


def test_textbook_cases() -> None:
    """Values worked out by hand from the format definition (E4M3: bias 7, BF16: bias 127)."""
    enc = oracle.encode
    one = 0x38
    assert enc(1, 4, 3) == one
    assert enc(Fraction(17, 16), 4, 3) == one  # 1 + half ulp: tie -> even (down)
    assert enc(Fraction(19, 16), 4, 3) == 0x3A  # 1 + 3/2 ulp: tie -> even (up)
    assert enc(Fraction(1, 2**10), 4, 3) == 0x00  # half the smallest subnormal: tie -> 0
    assert enc(Fraction(-1, 2**10), 4, 3) == 0x80  # ... of the value's sign
    assert enc(Fraction(3, 2**11), 4, 3) == 0x01  # 3/4 of the smallest subnormal -> it
    assert enc(Fraction(15, 2**10), 4, 3) == 0x08  # 7.5 subnormal LSBs: tie -> 8 = min normal
    assert enc(240, 4, 3) == 0x77 and enc(247, 4, 3) == 0x77 and enc(248, 4, 3) == 0x78
    assert enc(-248, 4, 3) == 0xF8  # max + half ulp: tie to even is the overflow -> -Inf
    assert enc(float("nan"), 4, 3) == 0x7C and enc(float("-nan"), 8, 7) == 0x7FC0
    assert enc(-0.0, 8, 7) == 0x8000 and enc(0, 8, 7) == 0
    # Flush: below the smallest normal -> signed zero, decided on the exact value.
    assert enc(Fraction(15, 2**10), 4, 3, subnormals=False) == 0x00
    assert enc(-Fraction(1, 2**6), 4, 3, subnormals=False) == 0x88
    assert oracle.decode(0x81, 4, 3, subnormals=False).is_zero
    assert oracle.decode(0x81, 4, 3, subnormals=False).negative
    assert oracle.mul_bits(0x08, 0x30, 4, 3, subnormals=False) == 0x00  # 2^-6 x 0.5 flushed
    assert oracle.mul_bits(0x08, 0x30, 4, 3) == 0x04  # kept as a subnormal
    # Sums: x + (-x) = +0, -0 + -0 = -0, Inf - Inf = NaN; products: Inf x 0 = NaN, signs XOR.
    assert oracle.add_bits(0x38, 0xB8, 4, 3) == 0x00
    assert oracle.add_bits(0x80, 0x80, 4, 3) == 0x80 and oracle.add_bits(0x80, 0x00, 4, 3) == 0
    assert oracle.add_bits(0x78, 0xF8, 4, 3) == 0x7C
    assert oracle.mul_bits(0x78, 0x80, 4, 3) == 0x7C
    assert oracle.mul_bits(0x78, 0x81, 4, 3, subnormals=False) == 0x7C  # subnormal read as 0
    assert oracle.mul_bits(0xF8, 0xB8, 4, 3) == 0x78
    assert oracle.mul_bits(0x80, 0x38, 4, 3) == 0x80


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="exp_bits"):
        oracle.encode(1, 1, 3)
    with pytest.raises(ValueError, match="man_bits"):
        oracle.decode(0, 4, 0)
    with pytest.raises(ValueError, match="does not fit"):
        oracle.decode(0x100, 4, 3)
    with pytest.raises(ValueError, match="no rational value"):
        _ = oracle.decode(0x78, 4, 3).value


def _imports_nothing_of_the_project(module: str, also: tuple[str, ...] = ()) -> None:
    """Importing ``module`` in a fresh interpreter loads neither lmul nor the testbench library
    (``sim.lib.common``, ``sim.lib.cli``) nor any module starting with one of ``also``."""
    prefixes = ("lmul.", "sim.lib.c", *also)
    code = (f"import sys; import {module}; "
            "bad = [m for m in sys.modules"
            f" if m == 'lmul' or m.startswith({prefixes!r})]; "
            "assert not bad, bad")
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=False)
    assert res.returncode == 0, res.stderr


def test_oracle_is_independent_of_the_model() -> None:
    """Importing the oracle imports nothing of the project (it must not share the model's bugs)."""
    _imports_nothing_of_the_project("sim.lib.oracle")


def test_integer_oracle_is_independent_of_the_model() -> None:
    """The proof's vectorized references (sim.lib.int_oracle) import nothing of the project
    either: they are checked against the rational oracle, and the RTL against them."""
    _imports_nothing_of_the_project("sim.lib.int_oracle", ("sim.lib.o", "sim.prove"))


@pytest.mark.parametrize(("name", "e", "m", "dtype", "utype"), FORMATS, ids=FORMAT_IDS)
def test_rounding_edges_of_each_format(name: str, e: int, m: int, dtype: type,
                                       utype: type) -> None:
    """Ties, the subnormal floor and the overflow threshold, from the format definition."""
    bias = (1 << (e - 1)) - 1
    one = bias << m
    ulp = Fraction(1, 2**m)
    enc = oracle.encode
    assert enc(1 + ulp / 2, e, m) == one  # tie -> even (down)
    assert enc(1 + 3 * ulp / 2, e, m) == one | 2  # tie between odd and even -> up
    assert enc(1 + ulp / 2 + Fraction(1, 2**40), e, m) == one | 1  # just above the tie
    min_sub = Fraction(1, 2 ** (bias - 1 + m))
    assert enc(-min_sub / 2, e, m) == 1 << (e + m)  # tie -> even zero, signed
    assert enc(min_sub * Fraction(3, 4), e, m) == 1
    emax = (1 << e) - 2 - bias
    max_finite = Fraction(2 ** (m + 1) - 1) * Fraction(2) ** (emax - m)
    half_ulp_max = Fraction(2) ** (emax - m - 1)
    assert enc(max_finite + half_ulp_max, e, m) == oracle.inf_bits(e, m)
    assert enc(max_finite + half_ulp_max / 2, e, m) == oracle.max_finite_bits(e, m)
