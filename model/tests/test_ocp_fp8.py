"""The OCP FP8 formats as ML frameworks know them, against ``ml_dtypes`` and the OCP rules.

* ``e4m3fn`` is ``ml_dtypes.float8_e4m3fn`` / ``torch.float8_e4m3fn`` (no Inf, NaN only at
  ``S.1111.111``, largest 448) and ``e5m2`` is ``ml_dtypes.float8_e5m2`` (OCP E5M2 is IEEE-style):
  every one of the 256 codes decodes to ml_dtypes' value, and float32 values round to the codes
  ml_dtypes' cast gives (RNE; overflow, Inf: NaN for E4M3FN, Inf for E5M2);
* the exact multiplier is ml_dtypes' float32 product cast back, on all 2^16 operand pairs;
* L-Mul on E4M3FN, all 2^16 pairs, against the value-level rule of the paper written here
  (not the model's field arithmetic): ``(1 + xa)(1 + xb) ~ 1 + xa + xb + 2^-l(M)``, with the
  overflow rule of a format without Inf (NaN, or 448 when saturating);
* ``lmul.lmul`` / ``exact_mul`` / ``matmul`` take and give the narrow dtypes.
"""

from __future__ import annotations

import numpy as np
import pytest

import lmul
from lmul import LMulConfig

ml_dtypes = pytest.importorskip("ml_dtypes")

E4M3FN = lmul.PRESETS["e4m3fn"]
ALL8 = np.arange(256, dtype=np.uint8)
#: Every ordered pair of 8-bit codes: a = i >> 8, b = i & 255.
PAIRS = np.arange(1 << 16, dtype=np.int64)
A8, B8 = (PAIRS >> 8).astype(np.uint8), (PAIRS & 255).astype(np.uint8)

FORMATS = [("e4m3fn", ml_dtypes.float8_e4m3fn), ("e5m2", ml_dtypes.float8_e5m2),
           ("e4m3_ieee", ml_dtypes.float8_e4m3)]


def _values(codes: np.ndarray, dtype: object) -> np.ndarray:
    return codes.view(dtype).astype(np.float64)


def _same_values_or_nan(got: np.ndarray, want: np.ndarray) -> None:
    gn, wn = np.isnan(got), np.isnan(want)
    assert np.array_equal(gn, wn), f"NaN differs at {np.flatnonzero(gn != wn)[:8]}"
    ok = ~gn
    same = (got[ok] == want[ok]) & (np.signbit(got[ok]) == np.signbit(want[ok]))
    assert same.all(), f"{(~same).sum()} values differ, first {np.flatnonzero(~same)[:8]}"


def test_presets_and_aliases() -> None:
    assert E4M3FN.finite_only and not E4M3FN.has_inf
    assert (E4M3FN.exp_bits, E4M3FN.man_bits, E4M3FN.bias) == (4, 3, 7)
    assert E4M3FN.max_finite == float(ml_dtypes.finfo(ml_dtypes.float8_e4m3fn).max) == 448.0
    assert E4M3FN.max_finite_bits == 0x7E and E4M3FN.qnan_bits == 0x7F
    assert lmul.PRESETS["e5m2"].max_finite == float(ml_dtypes.finfo(ml_dtypes.float8_e5m2).max)
    with pytest.raises(ValueError, match="no Inf"):
        _ = E4M3FN.inf_bits
    assert lmul.preset("float8_e4m3fn") is E4M3FN
    assert lmul.preset("OCP_E5M2") is lmul.PRESETS["e5m2"]
    assert lmul.format_for(4, 3) is lmul.PRESETS["e4m3_ieee"]
    assert lmul.format_for(4, 3, finite_only=True) is E4M3FN
    assert lmul.format_for(3, 2, finite_only=True).name == "e3m2fn"
    cfg = LMulConfig.parse("fmt=float8_e4m3fn,saturate=1")
    assert cfg == LMulConfig(4, 3, saturate=True, finite_only=True) and cfg.fmt is E4M3FN
    assert cfg.verilog_parameters()["FINITE_ONLY"] == 1
    assert LMulConfig.parse("e=4,m=3,fn=1").fmt is E4M3FN
    with pytest.raises(ValueError, match="finite_only needs exp_bits"):
        LMulConfig(8, 7, finite_only=True)
    with pytest.raises(ValueError, match="sets finite_only again"):
        LMulConfig.parse("fmt=e4m3fn,fn=0")


@pytest.mark.parametrize(("name", "dtype"), FORMATS)
def test_decode_every_code(name: str, dtype: object) -> None:
    fmt = lmul.PRESETS[name]
    want = _values(ALL8, dtype)
    _same_values_or_nan(lmul.format_bits_to_float64(ALL8, fmt), want)
    got32 = lmul.format_bits_to_float32(ALL8, fmt)
    _same_values_or_nan(got32.astype(np.float64), want)
    assert np.all(got32.view(np.uint32)[np.isnan(got32)] == lmul.FP32_QNAN_BITS)


def test_e4m3fn_codes_by_hand() -> None:
    """The spec's own table, independent of ml_dtypes: S.1111.110 = 448, S.1111.000 = 256,
    only S.1111.111 is NaN, no code is Inf."""
    v = lmul.format_bits_to_float64(ALL8, E4M3FN)
    assert v[0x7E] == 448.0 and v[0xFE] == -448.0 and v[0x78] == 256.0 and v[0xF8] == -256.0
    assert np.flatnonzero(np.isnan(v)).tolist() == [0x7F, 0xFF]
    assert not np.isinf(v).any()
    assert v[0x01] == 2.0**-9 and v[0x08] == 2.0**-6


def _float32_probe() -> np.ndarray:
    """float32 values around every code: the codes, the midpoints between neighbours (ties),
    one float32 ulp either side of each midpoint, beyond the range, Inf, NaN, and random."""
    vals = np.unique(np.abs(_values(ALL8, ml_dtypes.float8_e4m3fn)))
    vals = vals[np.isfinite(vals)]
    ext = np.concatenate([vals, [480.0, 512.0, 2.0**-10, 2.0**-11]])
    mids = ((ext[1:] + ext[:-1]) / 2).astype(np.float32)
    near = np.concatenate([mids, np.nextafter(mids, np.float32(0)),
                           np.nextafter(mids, np.float32(np.inf)), vals.astype(np.float32)])
    rng = np.random.default_rng(5)
    rand = (rng.standard_normal(20000) * np.exp2(rng.integers(-12, 10, 20000))).astype(np.float32)
    extra = np.array([np.inf, np.nan, 1e30, 3.4e38, 1e-45, 0.0], np.float32)
    x = np.concatenate([near, rand, extra])
    return np.concatenate([x, -x])


@pytest.mark.parametrize(("name", "dtype"), FORMATS)
def test_rounding_from_float32_matches_ml_dtypes(name: str, dtype: object) -> None:
    fmt = lmul.PRESETS[name]
    x = _float32_probe()
    got = lmul.round_to_format_bits(x, fmt, "rne")
    with np.errstate(invalid="ignore", over="ignore"):
        want = x.astype(dtype).view(np.uint8)
    # The model makes a NaN *input* canonical (sign 0); ml_dtypes keeps its sign.
    nan_in = np.isnan(x)
    assert np.array_equal(got[~nan_in], want[~nan_in])
    assert np.all(got[nan_in] == fmt.qnan_bits)


def test_e4m3fn_conversion_rules() -> None:
    """OCP non-saturating conversion: beyond 464 (the tie 448/480 goes to even 448) and Inf are
    NaN with the input's sign; truncation saturates finite values; NaN is canonical."""
    x = np.array([464.0, 464.5, -465.0, np.inf, -np.inf, 1e9, np.nan, 470.0], np.float32)
    assert lmul.round_to_format_bits(x, E4M3FN).tolist() == [
        0x7E, 0x7F, 0xFF, 0x7F, 0xFF, 0x7F, 0x7F, 0x7F]
    assert lmul.round_to_format_bits(x, E4M3FN, "truncate").tolist() == [
        0x7E, 0x7E, 0xFE, 0x7F, 0xFF, 0x7E, 0x7F, 0x7E]


@pytest.mark.parametrize("name", ["e4m3fn", "e5m2"])
def test_exact_multiplier_matches_ml_dtypes_all_pairs(name: str) -> None:
    dtype = dict(FORMATS)[name]
    cfg = LMulConfig.for_format(name)
    fa = lmul.format_bits_to_float32(A8, cfg.fmt)
    fb = lmul.format_bits_to_float32(B8, cfg.fmt)
    got = lmul.exact_mul(fa, fb, cfg)
    # The float32 product of two 4-bit significands is exact, so one cast rounds it once.
    with np.errstate(invalid="ignore", over="ignore"):
        prod = A8.view(dtype).astype(np.float32) * B8.view(dtype).astype(np.float32)
        want = prod.astype(dtype).astype(np.float32)
    _same_values_or_nan(got.astype(np.float64), want.astype(np.float64))


def _lmul_by_values(cfg: LMulConfig) -> np.ndarray:
    """The L-Mul result of every pair as float64, from the paper's value rule.

    Normal a = (1 + xa) 2^ea, b = (1 + xb) 2^eb: with t = xa + xb + OFFSET 2^-M the product is
    (1 + t) 2^(ea+eb) for t < 1, else t 2^(ea+eb+1) (the mantissa carry). Subnormal or zero
    operands give a zero of sign sa^sb; a result below the smallest normal is such a zero;
    above the largest finite value NaN (no Inf), or the largest finite value with the sign when
    saturating; a NaN operand NaN.
    """
    fmt = cfg.fmt
    va, vb = _values(A8, ml_dtypes.float8_e4m3fn), _values(B8, ml_dtypes.float8_e4m3fn)
    sign = np.where(np.signbit(va) != np.signbit(vb), -1.0, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ea, eb = np.floor(np.log2(np.abs(va))), np.floor(np.log2(np.abs(vb)))
        xa, xb = np.abs(va) / np.exp2(ea) - 1, np.abs(vb) / np.exp2(eb) - 1
    t = xa + xb + cfg.offset_value * 2.0**-fmt.man_bits
    mag = np.where(t < 1, (1 + t) * np.exp2(ea + eb), t * np.exp2(ea + eb + 1))
    tiny = 2.0**fmt.emin
    flushed = (np.abs(va) < tiny) | (np.abs(vb) < tiny) | (mag < tiny)
    out = np.where(flushed, 0.0, mag)
    big = np.nan if not cfg.saturate else fmt.max_finite
    out = np.where(mag > fmt.max_finite, big, out) * sign
    return np.where(np.isnan(va) | np.isnan(vb), np.nan, out)


@pytest.mark.parametrize("cfg", [LMulConfig.for_format("e4m3fn"),
                                 LMulConfig.for_format("e4m3fn", saturate=True),
                                 LMulConfig.for_format("e4m3fn", offset=0)],
                         ids=["paper", "sat", "mitchell"])
def test_lmul_e4m3fn_all_pairs_value_rule(cfg: LMulConfig) -> None:
    want = _lmul_by_values(cfg)
    bits = lmul.lmul_bits(A8, B8, cfg)
    _same_values_or_nan(lmul.format_bits_to_float64(bits, cfg.fmt), want)
    assert np.all(bits[np.isnan(want)] == 0x7F), "every NaN result is the canonical 0x7F"
    # Results in the exponent-all-ones binade (256..448) are normal numbers, and they occur.
    top = (bits & 0x78) == 0x78
    assert (top & ((bits & 0x7F) != 0x7F)).any()
    # The float API and the numpy reference agree with the bit-level unit.
    fa, fb = lmul.format_bits_to_float32(A8, cfg.fmt), lmul.format_bits_to_float32(B8, cfg.fmt)
    got = lmul.lmul(fa, fb, cfg)
    _same_values_or_nan(got.astype(np.float64), want)


def test_narrow_dtypes_in_and_out() -> None:
    cfg = LMulConfig.for_format("e4m3fn")
    x = A8[:4096].view(ml_dtypes.float8_e4m3fn)
    y = B8[:4096].view(ml_dtypes.float8_e4m3fn)
    r = lmul.lmul(x, y, cfg)
    assert r.dtype == ml_dtypes.float8_e4m3fn
    want = lmul.lmul(x.astype(np.float32), y.astype(np.float32), cfg)
    _same_values_or_nan(r.astype(np.float64), want.astype(np.float64))
    assert lmul.exact_mul(x, y, cfg).dtype == ml_dtypes.float8_e4m3fn
    assert lmul.lmul(x, y.astype(np.float32), cfg).dtype == np.float32  # mixed: float32
    with pytest.raises(TypeError, match="for_format"):
        lmul.lmul(x, y)  # the default BF16 configuration does not hold float8_e4m3fn values
    rng = np.random.default_rng(3)
    a = (rng.standard_normal((5, 7)) * 20).astype(ml_dtypes.float8_e4m3fn)
    b = (rng.standard_normal((7, 3)) * 20).astype(ml_dtypes.float8_e4m3fn)
    for mult in ("lmul", "exact"):
        got = lmul.matmul(a, b, cfg=cfg, multiplier=mult)
        ref = lmul.matmul_reference(a.astype(np.float32), b.astype(np.float32), cfg=cfg,
                                    multiplier=mult)
        assert got.dtype == np.float32
        assert np.array_equal(got.view(np.uint32), ref.view(np.uint32))


def test_torch_float8_e4m3fn() -> None:
    torch = pytest.importorskip("torch")
    cfg = LMulConfig.for_format("e4m3fn")
    x = torch.from_numpy(A8[:4096].copy()).view(torch.float8_e4m3fn)
    y = torch.from_numpy(B8[:4096].copy()).view(torch.float8_e4m3fn)
    r = lmul.lmul(x, y, cfg)
    assert isinstance(r, torch.Tensor) and r.dtype == torch.float8_e4m3fn
    want = lmul.lmul_bits(A8[:4096], B8[:4096], cfg)
    got = r.view(torch.uint8).numpy()
    nan = want == 0x7F
    assert np.array_equal(got[~nan], want[~nan]) and np.all((got[nan] & 0x7F) == 0x7F)
    y2 = lmul.matmul(x.reshape(64, 64), y.reshape(64, 64), cfg=cfg)
    ref = lmul.matmul_reference(x.reshape(64, 64).float().numpy(),
                                y.reshape(64, 64).float().numpy(), cfg=cfg)
    assert np.array_equal(y2.view(np.uint32), ref.view(np.uint32))


def test_narrow_torch_tensor_that_requires_grad_is_refused() -> None:
    torch = pytest.importorskip("torch")
    a = torch.ones(2, 3, dtype=torch.bfloat16, requires_grad=True)
    for call in (lambda: lmul.matmul(a, a.detach().T), lambda: lmul.lmul(a, a.detach())):
        with pytest.raises(TypeError, match="requires grad"):
            call()
