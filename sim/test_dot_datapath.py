"""cocotb regression of ``hdl/dot_datapath.v`` (the fused dot-product step, docs/dot_product.md).

All runs go through the test-only wrapper ``sim/hdl/dot_datapath_lanes.v`` (LANES steps per
simulation step). Each configuration (format, K, ALIGN_BITS, MULTIPLIER) compares the RTL bit for
bit (signed zeros, Inf, the canonical NaN) with the model ``lmul.fused_sum_bits`` on the terms
``[acc, widen(mul(a_0, b_0)), ..., widen(mul(a_{K-1}, b_{K-1}))]``, the products computed by the
model's own multipliers (``lmul.lmul_bits`` or ``lmul.exact_mul``, widened with
``lmul.format_bits_to_float32``). Vector classes (:func:`dot_vectors`): every special value
against every other (accumulator x lane 0, lane 0 x lane 1, operand pairs of lane 0), massive
and exact cancellation, ties at the rounding point, terms exactly at and one bit beyond the
window edge (both signs, the small term a product or the accumulator), all K terms equal, the
largest and smallest exponents, subnormal accumulators and results, overflow, and random vectors
(``LMUL_VECTORS``, default 1,500, seed ``COCOTB_RANDOM_SEED``). The outcomes reached (ties,
window-edge drops, cancellation to +0, subnormal results, overflow, NaN) are counted and required.

Extra checks, by configuration:

* ``ALIGN_BITS = 276``: the exactness claim, the RTL against the rational oracle
  ``sim/lib/oracle.py`` (the exact sum of the model's terms, rounded once; IEEE zero signs).
* ``K = 1, ALIGN_BITS = 276``: the RTL equals the sequential step ``lmul.fp_add_bits(acc, p)``.

Default: BF16 and FP8 E4M3, K in {1, 2, 4}, ALIGN_BITS in {24, 32, 276}, both multipliers (a
covering set, :data:`DEFAULT_CONFIGS`); ``LMUL_FULL=1`` adds K in {8, 16}, FP16 and E5M2. Broken
designs: :func:`test_a_broken_design_fails_the_regression` runs the same regression on copies of
hdl/ with a bug injected and requires it to fail. ``test_yosys_elaborates_without_latches``:
yosys elaborates dot_pe without latches.

Run: ``pytest sim/test_dot_datapath.py`` (``-rA`` shows seeds, counts and coverage).
"""

from __future__ import annotations

import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import cocotb
import numpy as np
import pytest

import lmul
from sim.lib import oracle
from sim.lib.common import (
    HDL_DIR,
    design_sources,
    full_run,
    pack_steps,
    random_seed,
    run_cocotb,
    special_values,
    tb_parameters,
    unpack_steps,
    vector_count,
)
from sim.lib.mutation import broken_hdl

DEFAULT_VECTORS = 1_500
LANES = 8
QNAN32 = 0x7FC00000
FP32 = lmul.PRESETS["fp32"]

#: (format, K, ALIGN_BITS, MULTIPLIER) of the default run: every K, window and multiplier with
#: both formats, without the full product.
DEFAULT_CONFIGS = [
    ("bf16", 4, 276, 0), ("bf16", 2, 24, 1), ("bf16", 4, 32, 1), ("bf16", 1, 276, 0),
    ("e4m3_ieee", 2, 276, 1), ("e4m3_ieee", 4, 24, 0), ("e4m3_ieee", 1, 276, 1),
]
FULL_CONFIGS = [
    (fmt, k, align, mult)
    for fmt in ("bf16", "fp16", "e4m3_ieee", "e5m2") for k in (2, 4, 8, 16)
    for align in (24, 32, 276) for mult in (0, 1)
    if (fmt, k, align, mult) not in DEFAULT_CONFIGS
]


# --------------------------------------------------------------------------------------------
# Model side: products and expected results


def model_products(a: np.ndarray, b: np.ndarray, fmt: lmul.Format, multiplier: int,
                   cfg: lmul.LMulConfig) -> np.ndarray:
    """The K widened products per step (uint32 [n, K]) from the model's multipliers."""
    if multiplier == 0:
        bits = lmul.lmul_bits(a.astype(fmt.uint_dtype), b.astype(fmt.uint_dtype), cfg)
        return lmul.format_bits_to_float32(bits, fmt).view(np.uint32)
    x = lmul.format_bits_to_float32(a.astype(fmt.uint_dtype), fmt)
    y = lmul.format_bits_to_float32(b.astype(fmt.uint_dtype), fmt)
    return np.asarray(lmul.exact_mul(x, y, cfg), dtype=np.float32).view(np.uint32)


def model_terms(a: np.ndarray, b: np.ndarray, acc: np.ndarray, fmt: lmul.Format, multiplier: int,
                cfg: lmul.LMulConfig) -> np.ndarray:
    """uint32 [n, K+1]: the accumulator, then the widened products."""
    prods = model_products(a, b, fmt, multiplier, cfg)
    return np.concatenate([acc.astype(np.uint32)[:, None], prods], axis=1)


def exact_rounded_sum(row: np.ndarray) -> int:
    """The correctly rounded binary32 sum of one row of terms, from the rational oracle (the
    IEEE rules: NaN or Inf - Inf -> NaN, exact zero sums +0 unless every term is -0)."""
    vals = [oracle.decode(int(t), 8, 23) for t in row]
    if any(v.is_nan for v in vals):
        return QNAN32
    infs = {v.negative for v in vals if v.is_inf}
    if len(infs) == 2:
        return QNAN32
    if infs:
        return oracle.inf_bits(8, 23, negative=infs.pop())
    total = sum((v.value for v in vals), Fraction(0))
    if total == 0:
        return 0x80000000 if all(v.negative for v in vals) else 0
    return oracle.encode(oracle.exact(total), 8, 23)


# --------------------------------------------------------------------------------------------
# Vectors


def _f32(sign: np.ndarray, field: np.ndarray, man: np.ndarray) -> np.ndarray:
    return ((np.asarray(sign, np.uint64) << np.uint64(31)) | (np.asarray(field, np.uint64)
            << np.uint64(23)) | np.asarray(man, np.uint64)).astype(np.uint32)


def _lsb_exp(x: np.ndarray) -> np.ndarray:
    """Weight exponent (value = odd * 2^w) of the lowest set bit of finite non-zero binary32."""
    field = ((x >> 23) & 0xFF).astype(np.int64)
    sig = np.where(field == 0, x & 0x7FFFFF, (x & 0x7FFFFF) | 0x800000).astype(np.int64)
    tz = np.zeros(x.shape, np.int64)
    s = sig.copy()
    for _ in range(24):
        step = (s != 0) & ((s & 1) == 0)
        tz += step
        s = np.where(step, s >> 1, s)
    return np.maximum(field, 1) - 150 + tz


def _lead_exp(x: np.ndarray) -> np.ndarray:
    """Weight exponent of the leading bit of finite non-zero binary32."""
    field = ((x >> 23) & 0xFF).astype(np.int64)
    man = (x & 0x7FFFFF).astype(np.int64)
    sub_lead = np.floor(np.log2(np.maximum(man, 1))).astype(np.int64) - 149
    return np.where(field == 0, sub_lead, field - 127)


def dot_vectors(n: int, seed: int, fmt: lmul.Format, k: int, align: int, multiplier: int,
                cfg: lmul.LMulConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
    """(a [N, K], b [N, K], acc [N], counts per class): the directed classes plus ``n``
    random vectors."""
    rng = np.random.default_rng([seed, fmt.exp_bits, fmt.man_bits, k, align, multiplier])
    w = fmt.width
    one = fmt.bias << fmt.man_bits
    sign = np.int64(fmt.sign_bit)
    sf = special_values(fmt)
    s32 = special_values(FP32).astype(np.uint32)
    parts: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def normal_ops(c: int, spread: int = 6) -> np.ndarray:
        e = fmt.bias + rng.integers(-spread, spread + 1, (c, k))
        e = np.clip(e, 1, fmt.max_exp_field - 1)
        return ((rng.integers(0, 2, (c, k)) << (w - 1)) | (e << fmt.man_bits)
                | rng.integers(0, 1 << fmt.man_bits, (c, k))).astype(np.int64)

    def rand_acc(c: int, lo: int = 100, hi: int = 150) -> np.ndarray:
        return _f32(rng.integers(0, 2, c), rng.integers(lo, hi, c), rng.integers(0, 1 << 23, c))

    def prods(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return model_products(a, b, fmt, multiplier, cfg)

    # every special value against every other
    ones = np.full(k, one, np.int64)
    ga, gb = np.meshgrid(np.arange(s32.size), np.arange(sf.size), indexing="ij")
    # the other lanes multiply -0 (half the rows) or +0 by 1: all-zero steps of both signs
    a = np.where(np.arange(ga.size)[:, None] % 2 == 0, sign, 0) * np.ones((1, k), np.int64)
    b = np.tile(ones, (ga.size, 1))
    a[:, 0] = sf[gb.ravel()]
    parts["special acc x special lane 0"] = (a, b, s32[ga.ravel()])
    if k >= 2:
        ga, gb = np.meshgrid(sf, sf, indexing="ij")
        a = normal_ops(ga.size)
        b = np.tile(ones, (ga.size, 1))
        a[:, 0], a[:, 1] = ga.ravel(), gb.ravel()
        parts["special lane 0 x special lane 1"] = (a, b, rng.choice(s32, ga.size))
    ga, gb = np.meshgrid(sf, sf, indexing="ij")
    a, b = normal_ops(ga.size), normal_ops(ga.size)
    a[:, 0], b[:, 0] = ga.ravel(), gb.ravel()
    parts["special operand pairs"] = (a, b, rng.choice(s32, ga.size))

    # massive and exact cancellation
    c = 400
    a, b = normal_ops(c), normal_ops(c)
    if k >= 2:  # lane 1 = -lane 0: the products cancel exactly (both multipliers are odd)
        a[: c // 2, 1] = a[: c // 2, 0] ^ sign
        b[: c // 2, 1] = b[: c // 2, 0]
    p = prods(a, b).view(np.float32).astype(np.float64)
    total = p.sum(axis=1)
    acc = (-total).astype(np.float32).view(np.uint32)
    # A quarter: the accumulator is off by a few ulps, so that a few low bits survive.
    wiggle = rng.integers(-3, 4, c).astype(np.int64)
    acc = np.where(np.arange(c) % 4 == 0, (acc.astype(np.int64) + wiggle).astype(np.uint32), acc)
    parts["cancellation"] = (a, b, acc)

    # ties at the rounding point: one product p, the accumulator's ulp twice p's lowest bit
    c = 400
    a, b = normal_ops(c), normal_ops(c)
    a[:, 1:] = 0
    if k >= 3:  # a cancelling pair keeps the other lanes busy
        a[: c // 2, 2] = a[: c // 2, 1] = normal_ops(c // 2)[:, 1]
        a[: c // 2, 2] ^= sign
        b[: c // 2, 2] = b[: c // 2, 1]
    p0 = prods(a, b)[:, 0]
    field = np.clip(_lsb_exp(p0) + 151, 1, 254)
    acc = _f32(rng.integers(0, 2, c), field, rng.integers(0, 1 << 23, c))
    parts["ties"] = (a, b, acc)

    # window edge: the small term's lowest bit exactly at u (kept) or one below (dropped)
    c = 400
    a, b = normal_ops(c), normal_ops(c)
    a[:, 1:] = np.where(rng.random((c, k - 1)) < 0.5, 0, a[:, 1:])
    p0 = prods(a, b)[:, 0]
    beyond = np.arange(c) % 2
    half = c // 2
    # first half: the accumulator is the large term, product 0 sits at the edge
    field = _lsb_exp(p0[:half]) + align + 127 + beyond[:half]
    acc_big = _f32(rng.integers(0, 2, half), np.clip(field, 1, 254), rng.integers(0, 1 << 23, half))
    # second half: product 0 is the large term, the accumulator's (odd) lowest bit at the edge
    field = _lead_exp(p0[half:]) - align + 150 - beyond[half:]
    acc_small = _f32(rng.integers(0, 2, c - half), np.clip(field, 0, 254),
                     rng.integers(0, 1 << 22, c - half) * 2 + 1)
    parts["window edge"] = (a, b, np.concatenate([acc_big, acc_small]))

    # all K terms equal (and the accumulator too, or zero, or -K times the term)
    c = 200
    a0, b0 = normal_ops(c)[:, :1], normal_ops(c)[:, :1]
    a, b = np.repeat(a0, k, axis=1), np.repeat(b0, k, axis=1)
    p0 = prods(a, b)[:, 0]
    choice = np.arange(c) % 3
    minus_k = (-(p0.view(np.float32).astype(np.float64) * k)).astype(np.float32).view(np.uint32)
    acc = np.where(choice == 0, p0, np.where(choice == 1, 0, minus_k)).astype(np.uint32)
    parts["all terms equal"] = (a, b, acc)

    # largest and smallest exponents: operands at the format's extremes, accumulator at
    # binary32's (overflow to Inf, underflow, subnormals)
    c = 300
    e_hi = fmt.max_exp_field - 1 - rng.integers(0, 2, (c, k))
    e_lo = rng.integers(0, 3, (c, k))
    pick = rng.random((c, k)) < 0.5
    e = np.where(pick, e_hi, e_lo)
    a = ((rng.integers(0, 2, (c, k)) << (w - 1)) | (e << fmt.man_bits)
         | rng.integers(0, 1 << fmt.man_bits, (c, k))).astype(np.int64)
    b = np.where(pick, (fmt.max_exp_field - 1 - rng.integers(0, 3, (c, k))) << fmt.man_bits,
                 rng.integers(0, 3, (c, k)) << fmt.man_bits) | rng.integers(0, 1 << fmt.man_bits,
                                                                            (c, k))
    acc = np.where(rng.random(c) < 0.5,
                   _f32(rng.integers(0, 2, c), 254 - rng.integers(0, 2, c),
                        (1 << 23) - 1 - rng.integers(0, 8, c)),
                   _f32(rng.integers(0, 2, c), rng.integers(0, 2, c), rng.integers(0, 1 << 23, c)))
    parts["extreme exponents"] = (a, b.astype(np.int64), acc)

    # subnormal accumulators and results: tiny accumulators, zero or tiny products
    c = 300
    a, b = normal_ops(c), normal_ops(c)
    a[: c // 2] = 0
    acc = _f32(rng.integers(0, 2, c), rng.integers(0, 2, c), rng.integers(0, 1 << 23, c))
    # min normal minus a tiny product: a subnormal result
    tiny = rng.random(c) < 0.3
    acc = np.where(tiny, _f32(rng.integers(0, 2, c), 1, rng.integers(0, 4, c)), acc)
    parts["subnormal"] = (a, b, acc)

    # overflow: the accumulator near the largest finite value and products of its sign; with
    # E = 8 the products themselves reach 2^100..2^126 (smaller formats' products cannot move
    # a binary32 accumulator past the largest finite value)
    c = 200
    a, b = normal_ops(c, spread=3), normal_ops(c, spread=3)
    if fmt.exp_bits == 8:
        big = lambda: (fmt.bias + rng.integers(50, 64, (c, k))) << fmt.man_bits  # noqa: E731
        a = (a & ~np.int64(fmt.field_mask)) | big() | (a & fmt.man_mask)
        b = big() | (b & fmt.man_mask)
    s = rng.integers(0, 2, c)
    a = (a & ~sign) | (s[:, None].astype(np.int64) << (w - 1))
    b &= ~sign
    acc = _f32(s, 254, (1 << 23) - 1 - rng.integers(0, 1 << 12, c))
    parts["overflow"] = (a, b, acc)

    # random: half uniform bit patterns, half normal values near the bias
    ra = rng.integers(0, 1 << w, (n, k), dtype=np.int64)
    rb = rng.integers(0, 1 << w, (n, k), dtype=np.int64)
    racc = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    h = n // 2
    ra[:h], rb[:h] = normal_ops(h), normal_ops(h)
    p = prods(ra[:h], rb[:h]).view(np.float32).astype(np.float64)
    scale = np.abs(p).max(axis=1)
    lead = np.floor(np.log2(np.where(np.isfinite(scale) & (scale > 0), scale, 1.0))).astype(
        np.int64)
    racc[:h] = _f32(rng.integers(0, 2, h), np.clip(lead + 127 + rng.integers(-30, 31, h), 0, 254),
                    rng.integers(0, 1 << 23, h))
    parts["random"] = (ra, rb, racc)

    a_all = np.concatenate([v[0] for v in parts.values()]).astype(np.int64)
    b_all = np.concatenate([v[1] for v in parts.values()]).astype(np.int64)
    acc_all = np.concatenate([v[2] for v in parts.values()]).astype(np.uint32)
    mask = np.int64((1 << w) - 1)
    return a_all & mask, b_all & mask, acc_all, {name: len(v[2]) for name, v in parts.items()}


def coverage(terms: np.ndarray, y: np.ndarray, align: int) -> dict[str, int]:
    """Outcomes reached, from the terms and the (checked) results."""
    finite = np.all((((terms >> 23) & 0xFF) != 0xFF), axis=1)
    nonzero = (terms & 0x7FFFFFFF) != 0
    field = ((terms >> 23) & 0xFF).astype(np.int64)
    e = np.maximum(field, 1)
    emax = np.where(nonzero, e, 0).max(axis=1)
    # A term whose lowest set bit lies below u loses bits (the window truncates it).
    lsb = np.where(nonzero, _lsb_exp(terms), 1 << 20)
    u = emax - 127 - align
    truncated = finite & np.any(nonzero & (lsb < u[:, None]), axis=1)
    yf = ((y >> 23) & 0xFF)
    return {
        "terms truncated by the window": int(np.sum(truncated)),
        "exact cancellation to +0 (non-zero terms)": int(np.sum(
            finite & np.any(nonzero, axis=1) & (y == 0))),
        "subnormal results": int(np.sum((yf == 0) & ((y & 0x7FFFFF) != 0))),
        "finite terms -> Inf": int(np.sum(finite & ((y & 0x7FFFFFFF) == 0x7F800000))),
        "NaN results": int(np.sum(y == QNAN32)),
        "-0 results": int(np.sum(y == 0x80000000)),
    }


# --------------------------------------------------------------------------------------------
# cocotb side


@cocotb.test()
async def dot_regression(dut) -> None:
    """The RTL against lmul.fused_sum_bits on every vector class; oracle and sequential-step
    checks where the configuration allows them."""
    p = tb_parameters()
    k, align, mult, lanes = p["K"], p["ALIGN_BITS"], p["MULTIPLIER"], p["LANES"]
    fmt = lmul.format_for(p["EXP_BITS"], p["MAN_BITS"])
    cfg = lmul.LMulConfig(p["EXP_BITS"], p["MAN_BITS"])
    seed, n = random_seed(), vector_count(DEFAULT_VECTORS)
    dut._log.info("dot_datapath %s K=%d ALIGN_BITS=%d MULTIPLIER=%d: COCOTB_RANDOM_SEED=%d "
                  "LMUL_VECTORS=%d (default %d)", fmt.name, k, align, mult, seed, n,
                  DEFAULT_VECTORS)
    a, b, acc, counts = dot_vectors(n, seed, fmt, k, align, mult, cfg)
    for name, c in counts.items():
        dut._log.info("  class %-34s %6d vectors", name, c)
    got = await _drive(dut, a, b, acc, fmt.width, lanes)

    terms = model_terms(a, b, acc, fmt, mult, cfg)
    want = lmul.fused_sum_bits(terms, align)
    _check("RTL vs lmul.fused_sum_bits", terms, got, want)

    if align == lmul.FUSED_EXACT_ALIGN_BITS:
        rows = np.arange(terms.shape[0])
        if terms.shape[0] > 3000:  # the rational oracle is slow: every directed vector, some random
            rows = np.concatenate([rows[:-n], rows[-n:][:1000]])
        exact = np.array([exact_rounded_sum(terms[i]) for i in rows], dtype=np.uint32)
        _check("RTL (ALIGN_BITS=276) vs the correctly rounded exact sum (oracle)", terms[rows],
               got[rows], exact)
        dut._log.info("exactness: %d vectors equal the oracle's correctly rounded sum", rows.size)
        if k == 1:
            seq = lmul.fp_add_bits(acc, terms[:, 1], 8, 23).astype(np.uint32)
            _check("RTL (K=1, ALIGN_BITS=276) vs the sequential step fp_add_bits", terms, got, seq)
            dut._log.info("K=1: %d vectors equal the sequential step", terms.shape[0])

    cover = coverage(terms, got, align)
    for name, c in cover.items():
        dut._log.info("  outcome %-42s %6d", name, c)
    required = ["exact cancellation to +0 (non-zero terms)", "subnormal results",
                "NaN results", "-0 results"]
    if fmt.exp_bits == 8:  # smaller formats' products cannot reach binary32's overflow
        required.append("finite terms -> Inf")
    if align < lmul.FUSED_EXACT_ALIGN_BITS:
        required.append("terms truncated by the window")
    for name in required:
        assert cover[name] > 0, f"no vector reached '{name}': the generator is broken"
    dut._log.info("PASS: %d steps bit-exact", terms.shape[0])


async def _drive(dut, a: np.ndarray, b: np.ndarray, acc: np.ndarray, width: int,
                 lanes: int) -> np.ndarray:
    """Apply ``lanes`` steps per 1 ns: lane j of the ``a`` / ``b`` buses holds a step's K
    operands (operand i at bit ``(j K + i) width``), lane j of ``acc`` / ``y`` its binary32
    accumulator and result. The last step's unused lanes are zero. Returns uint32 [n]."""
    from cocotb.triggers import Timer

    n, k = a.shape
    a_words = pack_steps(a.reshape(-1), width, lanes * k)
    b_words = pack_steps(b.reshape(-1), width, lanes * k)
    acc_words = pack_steps(acc, 32, lanes)
    step = Timer(1, unit="ns")
    y_words = []
    for wa, wb, wc in zip(a_words, b_words, acc_words, strict=True):
        dut.a.value = wa
        dut.b.value = wb
        dut.acc.value = wc
        await step
        y_words.append(int(dut.y.value))
    return unpack_steps(y_words, 32, lanes)[:n].astype(np.uint32)


def _check(what: str, terms: np.ndarray, got: np.ndarray, want: np.ndarray) -> None:
    bad = np.flatnonzero(np.asarray(got, np.uint32) != np.asarray(want, np.uint32))
    if bad.size:
        lines = [f"  terms=[{', '.join(f'0x{int(t):08x}' for t in terms[i])}] "
                 f"rtl=0x{int(got[i]):08x} expected=0x{int(want[i]):08x}" for i in bad[:8]]
        raise AssertionError(f"{what}: {bad.size} of {len(got)} steps differ; first:\n"
                             + "\n".join(lines))


# --------------------------------------------------------------------------------------------
# pytest side


def _params(fmt_name: str, k: int, align: int, mult: int) -> dict[str, int]:
    fmt = lmul.PRESETS[fmt_name]
    return {"EXP_BITS": fmt.exp_bits, "MAN_BITS": fmt.man_bits, "K": k, "ALIGN_BITS": align,
            "MULTIPLIER": mult, "LANES": LANES}


def _run(fmt_name: str, k: int, align: int, mult: int, hdl_dir: Path | None = None,
         tag: str | None = None) -> None:
    run_cocotb("test_dot_datapath", "dot_datapath_lanes", ("dot_datapath_lanes.v",),
               _params(fmt_name, k, align, mult), build_tag=tag, hdl_dir=hdl_dir)


def _id(c: tuple[str, int, int, int]) -> str:
    return f"{c[0]}-K{c[1]}-align{c[2]}-{'exact' if c[3] else 'lmul'}"


@pytest.mark.parametrize("config", DEFAULT_CONFIGS, ids=_id)
def test_dot_datapath(config: tuple[str, int, int, int]) -> None:
    _run(*config)


@pytest.mark.skipif(not full_run(), reason="large variant: set LMUL_FULL=1")
@pytest.mark.parametrize("config", FULL_CONFIGS, ids=_id)
def test_dot_datapath_full(config: tuple[str, int, int, int]) -> None:
    _run(*config)


#: The default configuration the broken copies run (it passes on hdl/).
BROKEN_CONFIG = ("bf16", 2, 24, 1)
#: Deliberate bugs: (file, pattern, replacement, why the regression must see it).
MUTATIONS = {
    "ties away from zero": (
        "fp_dot_sum.v", r"\.sticky  \(stk\)", ".sticky  (stk | grd)",
        "every tie rounds up (away from zero) instead of to even"),
    "window one bit narrower": (
        "fp_dot_sum.v", r"mj = \{\{\(MW - ALIGN_BITS - 1\) \{1'b0\}\}, al\[AW-1:23\]\};",
        "mj = {{(MW - ALIGN_BITS - 1) {1'b0}}, al[AW-1:24], 1'b0};",
        "the lowest window bit of every term is dropped"),
    "carry lost in the adder tree": (
        "fp_dot_sum.v",
        r"tree\[k\] = tree\[2\*k\] \+ tree\[2\*k\+1\];",
        "tree[k] = tree[2*k] ^ tree[2*k+1];",
        "the adder tree XORs (every carry lost)"),
}


def broken_datapath(tmp: Path, mutation: str) -> Path:
    """A copy of hdl/ with one deliberate bug (``MUTATIONS``)."""
    file, pattern, repl, _ = MUTATIONS[mutation]
    return broken_hdl(tmp, file, pattern, repl)


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_a_broken_design_fails_the_regression(tmp_path: Path, mutation: str) -> None:
    """The same regression on a copy of hdl/ with one bug must fail."""
    hdl = broken_datapath(tmp_path, mutation)
    # cocotb-test raises SystemExit("FAILED <n> tests.") when a cocotb test fails (a compile
    # error would say otherwise and must not count as caught).
    with pytest.raises(SystemExit, match="FAILED"):
        _run(*BROKEN_CONFIG, hdl_dir=hdl, tag=f"broken-{mutation.replace(' ', '_')}")


def test_yosys_elaborates_without_latches() -> None:
    """yosys reads, elaborates and flattens dot_pe; `check -assert` finds no multiple drivers,
    undriven bits or combinational loops, and no latch is inferred."""
    if shutil.which("yosys") is None:
        pytest.fail("yosys not found: run scripts/setup.sh (Debian package yosys)")
    for params in ({"K": 2, "ALIGN_BITS": 24, "MULTIPLIER": 1}, {"K": 3, "ALIGN_BITS": 276}):
        chparam = " ".join(f"-chparam {k} {v}" for k, v in params.items())
        script = (f"read_verilog -I{HDL_DIR} {' '.join(design_sources())}; "
                  f"hierarchy -check -top dot_pe {chparam}; proc; flatten; opt_clean; "
                  "check -assert; select -assert-none t:$dlatch t:$adlatch t:$dlatchsr "
                  "t:$_DLATCH_*")
        res = subprocess.run(["yosys", "-q", "-p", script], capture_output=True, text=True,
                             check=False)
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
