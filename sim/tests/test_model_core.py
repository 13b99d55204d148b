"""Unit tests of the format definitions, conversions and the L-Mul / seed models.

References are independent of the implementation: ml_dtypes, numpy and the shared rational
oracle ``sim/lib/oracle.py`` for rounding, Python ``fractions.Fraction`` for the value of an L-Mul
product, the original notebook's own function (executed from ../shared/seed/ when present) for
``seed_lmul``.
"""

from __future__ import annotations

from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

import lmul
from sim.lib import oracle

REFERENCE_DTYPES = {
    "bf16": ml_dtypes.bfloat16,
    "fp16": np.float16,
    "e4m3_ieee": ml_dtypes.float8_e4m3,
    "e5m2": ml_dtypes.float8_e5m2,
    "fp32": np.float32,
}


def random_float32(n: int, seed: int = 0) -> np.ndarray:
    """Random float32 bit patterns (every class: NaN, Inf, subnormal, zero) plus a few specials."""
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    bits[:8] = [0, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0x00000001, 0x807FFFFF,
                0x7F7FFFFF]
    return bits.view(np.float32)


# ---------------------------------------------------------------------------- formats / config


def test_presets_and_ranges() -> None:
    assert {k: (f.exp_bits, f.man_bits) for k, f in lmul.PRESETS.items()} == {
        "bf16": (8, 7), "fp16": (5, 10), "e4m3_ieee": (4, 3), "e4m3fn": (4, 3), "e5m2": (5, 2),
        "fp32": (8, 23)}
    for bad in ((1, 7), (9, 7), (8, 0), (8, 24)):
        with pytest.raises(ValueError):
            lmul.LMulConfig(*bad)
    with pytest.raises(ValueError):
        lmul.LMulConfig(offset=128)  # 2**7 is out of range for M = 7
    with pytest.raises(ValueError):
        lmul.LMulConfig(offset=-1)


@pytest.mark.parametrize(("man_bits", "expected"),
                         [(1, 1), (2, 1), (3, 1), (4, 2), (5, 2), (7, 8), (10, 64), (23, 1 << 19)])
def test_paper_offset(man_bits: int, expected: int) -> None:
    # 2**-l(M) in mantissa LSBs, l = M (M <= 3), 3 (M = 4), 4 (M > 4): Luo & Sun eq. 2.
    assert lmul.LMulConfig(8, man_bits).offset_value == expected


def test_config_parse() -> None:
    assert lmul.LMulConfig.parse("") == lmul.LMulConfig()
    assert lmul.LMulConfig.parse("e=4,m=3,offset=0") == lmul.LMulConfig(4, 3, offset=0)
    assert lmul.LMulConfig.parse("fmt=fp16, saturate=1") == lmul.LMulConfig(5, 10, saturate=True)
    assert lmul.LMulConfig.parse("offset=paper") == lmul.LMulConfig()
    for bad in ("offset", "q=1", "fmt=fp64", "e=x", "saturate=2", "m=30"):
        with pytest.raises(ValueError, match=r"L-Mul option|offset|man_bits"):
            lmul.LMulConfig.parse(bad)


def test_verilog_parameters() -> None:
    cfg = lmul.LMulConfig(4, 3, saturate=True)
    assert cfg.verilog_parameters() == {"EXP_BITS": 4, "MAN_BITS": 3, "OFFSET": 1, "SATURATE": 1,
                                        "FINITE_ONLY": 0}


# ---------------------------------------------------------------------------- conversions


@pytest.mark.parametrize("name", ["bf16", "fp16", "e4m3_ieee", "e5m2", "fp32"])
def test_round_rne_matches_ml_dtypes(name: str) -> None:
    fmt = lmul.PRESETS[name]
    x = random_float32(400_000, seed=1)
    # Also values scaled into the format's range, where most roundings are non-trivial.
    scale = np.float32(2.0 ** -(127 - fmt.emax)) if fmt.exp_bits < 8 else np.float32(1)
    with np.errstate(all="ignore"):
        xs = np.concatenate([x, (x * scale).astype(np.float32)])
        ref = xs.astype(REFERENCE_DTYPES[name]).view(fmt.uint_dtype)
    got = lmul.round_to_format_bits(xs, fmt, "rne")
    nan = np.isnan(xs)
    np.testing.assert_array_equal(got[~nan], ref[~nan])
    assert np.all(got[nan] == fmt.qnan_bits)


def test_round_float64_matches_fraction_reference() -> None:
    # float64 inputs (exact products) must be rounded once. ml_dtypes is no reference here: it
    # casts float64 -> float32 -> bfloat16 and double-rounds (e.g. -0x1.26ffff8454907p+55).
    rng = np.random.default_rng(2)
    x = rng.standard_normal(20_000) * np.exp2(rng.integers(-150, 140, 20_000))
    hard = ("-0x1.26ffff8454907p+55", "0x1.0080000000001p0", "0x1.018p0")
    x[:3] = [float.fromhex(h) for h in hard]
    for name in ("bf16", "e4m3_ieee", "fp16", "fp32"):
        fmt = lmul.PRESETS[name]
        got = lmul.round_to_format_bits(x, fmt)
        ref = [oracle.encode(float(v), fmt.exp_bits, fmt.man_bits) for v in x]
        np.testing.assert_array_equal(got.astype(np.int64), np.array(ref, dtype=np.int64))


def test_truncate_bf16_is_bit_chop() -> None:
    x = random_float32(200_000, seed=3)
    got = lmul.round_to_format_bits(x, lmul.PRESETS["bf16"], "truncate")
    chop = (x.view(np.uint32) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    np.testing.assert_array_equal(got[~nan], chop[~nan])


def test_truncate_small_format_rounds_toward_zero() -> None:
    fmt = lmul.PRESETS["e4m3_ieee"]
    grid = lmul.format_bits_to_float64(np.arange(256), fmt)
    finite = np.sort(np.unique(grid[np.isfinite(grid)]))
    x = np.random.default_rng(4).uniform(-500, 500, 50_000).astype(np.float32)
    got = lmul.format_bits_to_float64(lmul.round_to_format_bits(x, fmt, "truncate"), fmt)
    # Largest grid value not above |x| (clamped to max finite), with x's sign.
    idx = np.searchsorted(finite, np.abs(x.astype(np.float64)), side="right") - 1
    expect = np.sign(x) * finite[idx]
    np.testing.assert_array_equal(np.abs(got), np.abs(expect))


@pytest.mark.parametrize("name", ["bf16", "fp16", "e4m3_ieee", "e5m2"])
def test_widen_matches_ml_dtypes(name: str) -> None:
    fmt = lmul.PRESETS[name]
    bits = np.arange(1 << fmt.width, dtype=np.uint64).astype(fmt.uint_dtype)
    got = lmul.format_bits_to_float32(bits, fmt)
    ref = bits.view(REFERENCE_DTYPES[name]).astype(np.float32)
    nan = np.isnan(ref)
    np.testing.assert_array_equal(got[~nan].view(np.uint32), ref[~nan].view(np.uint32))
    assert np.all(got[nan].view(np.uint32) == lmul.FP32_QNAN_BITS)


def test_bad_inputs() -> None:
    with pytest.raises(TypeError, match="float32"):
        lmul.lmul(np.ones(3), np.ones(3, np.float32))
    with pytest.raises(ValueError, match="outside"):
        lmul.lmul_bits(np.array([1 << 16]), np.array([0]))
    with pytest.raises(TypeError, match="integer"):
        lmul.lmul_bits(np.array([1.0]), np.array([0]))
    with pytest.raises(ValueError, match="rounding"):
        lmul.lmul(np.ones(2, np.float32), np.ones(2, np.float32), rounding="up")
    with pytest.raises(TypeError, match="LMulConfig"):
        lmul.lmul_bits(np.array([1]), np.array([1]), None)
    with pytest.raises(ValueError, match="do not broadcast"):
        lmul.lmul_bits(np.zeros(3, np.uint16), np.zeros(4, np.uint16))
    with pytest.raises(ValueError, match="do not broadcast"):
        lmul.fp_add_bits(np.zeros(3, np.uint32), np.zeros(4, np.uint32))


# ---------------------------------------------------------------------------- L-Mul


def decode(bits: int, fmt: lmul.Format) -> tuple[int, int, int]:
    return bits >> (fmt.exp_bits + fmt.man_bits), (bits >> fmt.man_bits) & fmt.max_exp_field, \
        bits & fmt.man_mask


def lmul_value_reference(a: int, b: int, cfg: lmul.LMulConfig) -> tuple[str, int, Fraction]:
    """Independent value-level L-Mul: (class, sign, value) from the paper's formula.

    For normal operands x = (1 + xm) 2**xe, y = (1 + ym) 2**ye, with c = 2**-l(M) (``offset``
    LSBs): (1 + xm + ym + c) 2**(xe+ye) when xm + ym + c < 1, else the field-add carry gives
    (xm + ym + c) 2**(xe+ye+1) (Mitchell's piecewise-linear log/antilog).
    """
    fmt = cfg.fmt
    sa, ea, ma = decode(a, fmt)
    sb, eb, mb = decode(b, fmt)
    s = sa ^ sb
    emax = fmt.max_exp_field
    if (ea == emax and ma) or (eb == emax and mb) or (ea == emax and eb == 0) or (
            eb == emax and ea == 0):
        return "nan", 0, Fraction(0)
    if ea == emax or eb == emax:
        return "inf", s, Fraction(0)
    if ea == 0 or eb == 0:
        return "zero", s, Fraction(0)
    scale = Fraction(1, 1 << fmt.man_bits)
    frac = ma * scale + mb * scale + cfg.offset_value * scale
    e = (ea - fmt.bias) + (eb - fmt.bias)
    # The field sum carries k = floor(frac) into the exponent (k = 2 needs offset >= 2 and two
    # near-maximal mantissas): value = (1 + frac - k) 2**(e + k).
    k = int(frac)
    value = (1 + frac - k) * Fraction(2) ** (e + k)
    if value < Fraction(2) ** fmt.emin:
        return "zero", s, Fraction(0)
    if value >= Fraction(2) ** (fmt.emax + 1):
        return ("max" if cfg.saturate else "inf"), s, Fraction(0)
    return "normal", s, value


def value_of(bits: int, fmt: lmul.Format) -> Fraction:
    _, e, _ = decode(bits, fmt)
    assert 0 < e < fmt.max_exp_field
    return oracle.decode(bits, fmt.exp_bits, fmt.man_bits).value


def check_against_value_reference(a: np.ndarray, b: np.ndarray, cfg: lmul.LMulConfig) -> None:
    fmt = cfg.fmt
    got = lmul.lmul_bits(a, b, cfg)
    for ai, bi, yi in zip(a.tolist(), b.tolist(), got.tolist(), strict=True):
        cls, s, value = lmul_value_reference(ai, bi, cfg)
        where = f"a=0x{ai:x} b=0x{bi:x} -> 0x{yi:x} ({cfg.describe()})"
        if cls == "nan":
            assert yi == fmt.qnan_bits, where
            continue
        assert yi >> (fmt.exp_bits + fmt.man_bits) == s, where
        mag = yi & fmt.field_mask
        if cls == "inf":
            assert mag == fmt.inf_bits, where
        elif cls == "max":
            assert mag == fmt.max_finite_bits, where
        elif cls == "zero":
            assert mag == 0, where
        else:
            assert value_of(mag, fmt) == value, where


@pytest.mark.parametrize("offset", [None, 0])
@pytest.mark.parametrize("saturate", [False, True])
def test_lmul_exhaustive_e4m3_ieee_vs_value_reference(offset: int | None, saturate: bool) -> None:
    cfg = lmul.LMulConfig(4, 3, offset=offset, saturate=saturate)
    grid = np.arange(256, dtype=np.uint8)
    check_against_value_reference(np.repeat(grid, 256), np.tile(grid, 256), cfg)


@pytest.mark.parametrize("spec", ["fmt=bf16", "fmt=fp16", "fmt=e5m2", "e=2,m=1", "e=6,m=4",
                                  "fmt=bf16,offset=0,saturate=1", "e=8,m=23", "e=3,m=12,offset=5"])
def test_lmul_random_vs_value_reference(spec: str) -> None:
    cfg = lmul.LMulConfig.parse(spec)
    fmt = cfg.fmt
    rng = np.random.default_rng(5)
    n = 6000
    a = rng.integers(0, 1 << fmt.width, n, dtype=np.uint64)
    b = rng.integers(0, 1 << fmt.width, n, dtype=np.uint64)
    # Half of the pairs with exponents near the bias, so that most products are normal.
    e = np.clip(fmt.bias + rng.integers(-2, 3, (2, n // 2)), 1, fmt.max_exp_field - 1)
    a[: n // 2] = (a[: n // 2] & (fmt.sign_bit | fmt.man_mask)) | (e[0] << fmt.man_bits).astype(
        np.uint64)
    b[: n // 2] = (b[: n // 2] & (fmt.sign_bit | fmt.man_mask)) | (e[1] << fmt.man_bits).astype(
        np.uint64)
    check_against_value_reference(a, b, cfg)


def test_lmul_float_api_examples() -> None:
    # The example: BF16 5.0 x 5.0 = 25.0 exactly with the paper offset.
    five = np.float32([5.0])
    assert lmul.lmul(five, five)[0] == np.float32(25.0)
    # Mitchell (offset 0): (1.25 + 0.25) * 16 = 24.
    assert lmul.lmul(five, five, lmul.LMulConfig(offset=0))[0] == np.float32(24.0)
    x = np.float32([0.0, -0.0, np.inf, -np.inf, np.nan, 3.0])
    y = np.float32([-2.0, -2.0, 0.0, 2.0, 1.0, -np.inf])
    r = lmul.lmul(x, y)
    assert np.signbit(r[0]) and r[0] == 0 and not np.signbit(r[1]) and r[1] == 0
    assert r[2].view(np.uint32) == lmul.FP32_QNAN_BITS and r[4].view(np.uint32) == 0x7FC00000
    assert r[3] == -np.inf and r[5] == -np.inf
    # Broadcasting and shape.
    assert lmul.lmul(np.ones((3, 1), np.float32), np.ones((1, 4), np.float32)).shape == (3, 4)


def test_lmul_rounding_modes_differ_as_expected() -> None:
    x = np.float32([1.0 + 2.0**-8 + 2.0**-9])  # between two BF16 values, nearer the upper
    one = np.float32([1.0])
    up = lmul.lmul(x, one, lmul.LMulConfig(offset=0), rounding="rne")[0]
    down = lmul.lmul(x, one, lmul.LMulConfig(offset=0), rounding="truncate")[0]
    assert up == np.float32(1.0 + 2.0**-7) and down == np.float32(1.0)


def test_lmul_torch_roundtrip() -> None:
    torch = pytest.importorskip("torch")
    x = torch.randn(7, 5)
    y = torch.randn(7, 5)
    r = lmul.lmul(x, y)
    assert isinstance(r, torch.Tensor) and r.dtype == torch.float32 and r.shape == (7, 5)
    np.testing.assert_array_equal(r.numpy(), lmul.lmul(x.numpy(), y.numpy()))
    with pytest.raises(TypeError, match="float32"):
        lmul.lmul(x.double(), y)


def test_exact_mul_matches_ml_dtypes() -> None:
    rng = np.random.default_rng(6)
    x = (rng.standard_normal(100_000) * 3).astype(np.float32)
    y = (rng.standard_normal(100_000) * 3).astype(np.float32)
    xb, yb = x.astype(ml_dtypes.bfloat16), y.astype(ml_dtypes.bfloat16)
    # A product of two 8-bit significands is exact in float32 (normal range here).
    ref = (xb.astype(np.float32) * yb.astype(np.float32)).astype(ml_dtypes.bfloat16)
    got = lmul.exact_mul(x, y)
    np.testing.assert_array_equal(got, ref.astype(np.float32))
    # fp32 "format": the exact multiply is numpy's float32 multiply.
    fp32 = lmul.LMulConfig(8, 23)
    np.testing.assert_array_equal(lmul.exact_mul(x, y, fp32).view(np.uint32),
                                  (x * y).view(np.uint32))


# ---------------------------------------------------------------------------- seed notebook


def test_seed_lmul_documented_examples() -> None:
    torch = pytest.importorskip("torch")
    # The notebook printed tensor([25.1250]) for 5 x 5: Mitchell gives 24, x 1.046875 = 25.125.
    r = lmul.seed_lmul(torch.tensor([5.0]), torch.tensor([5.0]))
    assert r.dtype == torch.float32 and r.item() == 25.125
    # Either exponent field 0 -> +0.0 (sign dropped).
    z = lmul.seed_lmul(torch.tensor([-0.0, 1e-40]), torch.tensor([3.0, -3.0]))
    assert z.view(torch.int32).tolist() == [0, 0]
    # Overflow pattern 0x7FFF is a NaN.
    assert torch.isnan(lmul.seed_lmul(torch.tensor([3e38]), torch.tensor([3e38]))).all()


def test_seed_lmul_matches_notebook_function(seed_notebook_lmul_bits) -> None:
    torch = pytest.importorskip("torch")
    x = random_float32(300_000, seed=7)
    y = random_float32(300_000, seed=8)
    near = np.random.default_rng(9).standard_normal((2, 200_000)).astype(np.float32)
    xs = torch.from_numpy(np.concatenate([x, near[0]]))
    ys = torch.from_numpy(np.concatenate([y, near[1]]))
    ref = seed_notebook_lmul_bits(xs.clone(), ys.clone()).numpy()
    got = lmul.seed_lmul(xs, ys).numpy()
    nan = np.isnan(ref)
    np.testing.assert_array_equal(np.isnan(got), nan)  # NaN payloads are free
    np.testing.assert_array_equal(got[~nan].view(np.uint32), ref[~nan].view(np.uint32))
