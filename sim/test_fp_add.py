"""cocotb regression of ``hdl/fp_add.v`` (IEEE-754 addition, round to nearest even).

All runs go through the test-only wrapper ``sim/hdl/fp_add_lanes.v`` (LANES adders per step):

* binary32 (E=8, M=23), ``test_fp_add_fp32``: RTL bits against numpy float32 addition (bit for
  bit for every non-NaN result; NaN results must be the canonical quiet NaN 0x7FC00000) and
  against the model ``lmul.fp_add_bits`` (bit for bit, NaN included). Vector classes:
  random bit patterns; equal or adjacent exponents with (massive, and exact) cancellation; exact
  rounding ties (even and odd); results around the subnormal/normal boundary; overflow edges;
  special classes against random values; plus every pair of 26 special values. Default 200,000
  vectors (``LMUL_VECTORS`` overrides), seed ``COCOTB_RANDOM_SEED`` (default 1), both printed;
  the outcomes actually reached (ties of each parity, overflows, ...) are counted and required.
* E=4, M=3, ``test_fp_add_e4m3_exhaustive``: all 65,536 operand pairs against the exact-rounding
  oracle ``sim/lib/oracle.py`` (rational sum, round to nearest even), independent of the model.
* fp16 (5, 10), bf16 (8, 7), fp64 (11, 52), ``test_fp_add_formats``: default 10,000 vectors each
  (``LMUL_VECTORS`` overrides) against the model and numpy float16/float64, ml_dtypes bfloat16.
* ``LMUL_FULL=1`` adds E=5, M=2 exhaustive (65,536 pairs; skipped otherwise).

Run: ``pytest sim/test_fp_add.py`` (``-o log_cli=true --log-cli-level=INFO`` shows the seed,
counts, coverage and vectors/s).
"""

from __future__ import annotations

import time

import cocotb
import ml_dtypes
import numpy as np
import pytest

from sim.lib import oracle
from sim.lib.common import (
    drive_lanes,
    full_run,
    random_seed,
    run_cocotb,
    tb_parameters,
    vector_count,
)

DEFAULT_VECTORS = 200_000
DEFAULT_FORMAT_VECTORS = 10_000
#: Adders per simulation step. More lanes amortise cocotb's per-step cost, but Icarus copies
#: the whole packed bus into every lane's part-select on each step, so past a few dozen lanes
#: the simulation gets slower per vector (fp32: 16 lanes cost 2/3 of 64; 8-bit: 32 lanes 3/5
#: of 256).
LANES_FP32 = 16
LANES_SMALL = 32

FP32_QNAN = 0x7FC00000

# --------------------------------------------------------------------------------------------
# binary32 vector classes


def _f32(sign: np.ndarray, field: np.ndarray, man: np.ndarray) -> np.ndarray:
    return ((sign.astype(np.uint32) << 31) | (field.astype(np.uint32) << 23)
            | man.astype(np.uint32))


def _cancellation(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Mostly opposite signs, exponents equal or adjacent; half differ only in low bits."""
    sa = rng.integers(0, 2, n)
    ea = rng.integers(1, 255, n)
    ma = rng.integers(0, 1 << 23, n)
    eb = np.clip(ea + rng.integers(-1, 2, n), 0, 254)
    low = rng.integers(1, 24, n)
    close = ma ^ rng.integers(0, 1 << 23, n) & ((1 << low) - 1)
    mb = np.where(rng.random(n) < 0.5, close, rng.integers(0, 1 << 23, n))
    sb = np.where(rng.random(n) < 0.9, 1 - sa, sa)
    # One in ten is exactly -a: x + (-x) must give +0.
    exact = rng.random(n) < 0.1
    eb, mb, sb = np.where(exact, ea, eb), np.where(exact, ma, mb), np.where(exact, 1 - sa, sb)
    return _f32(sa, ea, ma), _f32(sb, eb, mb)


def _ties(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """b's bits below a's LSB are exactly 100..0, so a + b (and often a - b) is a tie."""
    d = rng.integers(1, 25, n)
    ea = rng.integers(d + 1, 255)
    sig_a = rng.integers(1 << 23, 1 << 24, n)
    sig_b = rng.integers(1 << 23, 1 << 24, n)
    sig_b = ((sig_b >> d) << d) | (1 << (d - 1))
    sa = rng.integers(0, 2, n)
    sb = np.where(rng.random(n) < 0.75, sa, 1 - sa)
    return _f32(sa, ea, sig_a - (1 << 23)), _f32(sb, ea - d, sig_b - (1 << 23))


def _boundary(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Exponent fields 0..2: sums and differences cross the subnormal/normal boundary."""
    ea, eb = rng.integers(0, 3, n), rng.integers(0, 3, n)
    ma, mb = rng.integers(0, 1 << 23, n), rng.integers(0, 1 << 23, n)
    # Mantissas near all-ones make subnormal + subnormal carry into the normal range.
    ma = np.where(rng.random(n) < 0.3, (1 << 23) - 1 - rng.integers(0, 64, n), ma)
    sa, sb = rng.integers(0, 2, n), rng.integers(0, 2, n)
    return _f32(sa, ea, ma), _f32(sb, eb, mb)


def _overflow(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Near the top: big + big, and max-ish + about half an ulp of max (ties to Inf)."""
    half = n // 2
    ea = rng.integers(252, 255, n)
    ma = np.where(rng.random(n) < 0.5, (1 << 23) - 1 - rng.integers(0, 16, n),
                  rng.integers(0, 1 << 23, n))
    # Half ulp of max finite is 2**103 (field 230); fields 228..231 straddle it.
    eb = np.concatenate([rng.integers(252, 255, half), rng.integers(228, 232, n - half)])
    mb = np.where(rng.random(n) < 0.5, rng.integers(0, 4, n),
                  np.where(rng.random(n) < 0.5, (1 << 23) - 1 - rng.integers(0, 4, n),
                           rng.integers(0, 1 << 23, n)))
    sa = rng.integers(0, 2, n)
    sb = np.where(rng.random(n) < 0.85, sa, 1 - sa)
    return _f32(sa, ea, ma), _f32(sb, eb, mb)


SPECIALS_FP32 = np.array(
    [s | v for s in (0, 0x80000000) for v in (
        0x00000000,  # zero
        0x00000001,  # min subnormal
        0x007FFFFF,  # max subnormal
        0x00800000,  # min normal
        0x00800001,
        0x3F800000,  # 1.0
        0x3F7FFFFF,  # 1 - ulp
        0x7F7FFFFF,  # max finite
        0x7F000000,
        0x7F800000,  # Inf
        0x7FC00000,  # quiet NaN
        0x7F800001,  # signalling NaN
        0x7FFFFFFF,  # NaN, full payload
    )], dtype=np.uint32)


def _specials_random(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    a = rng.choice(SPECIALS_FP32, n)
    b = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    swap = rng.random(n) < 0.5
    return np.where(swap, b, a), np.where(swap, a, b)


def fp32_vectors(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """All binary32 vectors: ``n`` random-class vectors plus every pair of special values."""
    rng = np.random.default_rng(seed)
    shares = {"random bits": 0.30, "cancellation": 0.20, "ties": 0.15,
              "subnormal boundary": 0.15, "overflow": 0.10, "special x random": 0.10}
    makers = {
        "random bits": lambda k: (rng.integers(0, 1 << 32, k, dtype=np.uint64).astype(np.uint32),
                                  rng.integers(0, 1 << 32, k, dtype=np.uint64).astype(np.uint32)),
        "cancellation": lambda k: _cancellation(rng, k),
        "ties": lambda k: _ties(rng, k),
        "subnormal boundary": lambda k: _boundary(rng, k),
        "overflow": lambda k: _overflow(rng, k),
        "special x random": lambda k: _specials_random(rng, k),
    }
    counts = {name: int(n * share) for name, share in shares.items()}
    counts["random bits"] += n - sum(counts.values())
    parts_a, parts_b = [], []
    for name, k in counts.items():
        a, b = makers[name](k)
        parts_a.append(a.astype(np.uint32))
        parts_b.append(b.astype(np.uint32))
    sa, sb = np.meshgrid(SPECIALS_FP32, SPECIALS_FP32, indexing="ij")
    parts_a.append(sa.ravel())
    parts_b.append(sb.ravel())
    counts["special x special (all pairs)"] = sa.size
    return np.concatenate(parts_a), np.concatenate(parts_b), counts


def classify_fp32(a: np.ndarray, b: np.ndarray, y: np.ndarray) -> dict[str, int]:
    """Coverage of the outcomes that matter, computed from the exact sum (float64 is exact
    for two float32 whose exponents differ by less than 29)."""
    fy = y.view(np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        fa = a.view(np.float32).astype(np.float64)
        fb = b.view(np.float32).astype(np.float64)
        exact = fa + fb
        finite = np.isfinite(exact) & np.isfinite(fy)
        ea = (a >> 23) & 0xFF
        eb = (b >> 23) & 0xFF
        close = np.abs(ea.astype(np.int64) - eb.astype(np.int64)) < 29
        inexact = finite & close & (exact != fy.astype(np.float64))
        toward0 = np.where(np.abs(fy.astype(np.float64)) > np.abs(exact),
                           np.nextafter(fy, np.float32(0)), fy)
        away = np.nextafter(toward0, np.copysign(np.float32(np.inf), toward0))
        mid = (toward0.astype(np.float64) + away.astype(np.float64)) / 2
        tie = inexact & (mid == exact)
        odd = (toward0.view(np.uint32) & 1) == 1
        yexp = (y >> 23) & 0xFF
        max_in = np.maximum((a >> 23) & 0xFF, (b >> 23) & 0xFF)
    return {
        "ties, truncation even (round down)": int(np.sum(tie & ~odd)),
        "ties, truncation odd (round up)": int(np.sum(tie & odd)),
        "inexact non-tie": int(np.sum(inexact & ~tie)),
        "exact cancellation to zero": int(np.sum(finite & (exact == 0) & (fa != 0))),
        "massive cancellation (>= 8 bits lost)": int(np.sum(
            finite & (yexp.astype(np.int64) + 8 <= max_in.astype(np.int64)) & (exact != 0))),
        "subnormal results (nonzero)": int(np.sum(finite & (yexp == 0) & (exact != 0))),
        "subnormal inputs -> normal result": int(np.sum(
            finite & (((a >> 23) & 0xFF) == 0) & (((b >> 23) & 0xFF) == 0) & (yexp != 0))),
        "finite inputs -> Inf (overflow)": int(np.sum(
            np.isfinite(fa) & np.isfinite(fb) & np.isinf(fy))),
        "NaN results": int(np.sum(np.isnan(fy))),
    }


def format_vectors(n: int, seed: int, e_w: int, m_w: int) -> tuple[np.ndarray, np.ndarray]:
    """Vectors for any (E, M): random bits, close-exponent cancellation, subnormal boundary,
    top of the range, plus every pair of special values."""
    rng = np.random.default_rng([seed, e_w, m_w])
    w = 1 + e_w + m_w
    top = (1 << e_w) - 2
    sign_pos, m_sh = np.uint64(w - 1), np.uint64(m_w)

    def pack(sign: np.ndarray, field: np.ndarray, man: np.ndarray) -> np.ndarray:
        return (sign.astype(np.uint64) << sign_pos) | (field.astype(np.uint64) << m_sh) | (
            man.astype(np.uint64))

    def rand(k: int, lo: int, hi: int) -> np.ndarray:
        return pack(rng.integers(0, 2, k), rng.integers(lo, hi + 1, k),
                    rng.integers(0, 1 << m_w, k, dtype=np.uint64))

    q = n // 4
    a_parts = [rand(n - 3 * q, 0, top + 1), rand(q, 1, top), rand(q, 0, 2), rand(q, top - 2, top)]
    near = a_parts[1]
    field = (near >> m_sh) & np.uint64((1 << e_w) - 1)
    step = rng.integers(-1, 2, q)
    field_b = np.clip(field.astype(np.int64) + step, 0, top)
    # Flip only a random number of low mantissa bits: massive cancellation.
    flips = rng.integers(0, 1 << m_w, q, dtype=np.uint64)
    flips >>= rng.integers(0, m_w + 1, q).astype(np.uint64)
    man_b = (near & np.uint64((1 << m_w) - 1)) ^ flips
    b_parts = [rand(n - 3 * q, 0, top + 1),
               pack(1 - (near >> sign_pos), field_b, man_b),
               rand(q, 0, 2),
               rand(q, top - 2, top)]
    inf = (top + 1) << m_w
    specials = np.array([0, 1, (1 << m_w) - 1, 1 << m_w, inf - 1, inf, inf | 1,
                         inf | (1 << (m_w - 1))], dtype=np.uint64)
    specials = np.concatenate([specials, specials | (np.uint64(1) << sign_pos)])
    sa, sb = np.meshgrid(specials, specials, indexing="ij")
    return (np.concatenate([*a_parts, sa.ravel()]), np.concatenate([*b_parts, sb.ravel()]))


# --------------------------------------------------------------------------------------------
# cocotb side


async def _timed_drive(dut, a: np.ndarray, b: np.ndarray, width: int, lanes: int) -> np.ndarray:
    """`common.drive_lanes` plus a throughput log line (CPU time too: machines are shared)."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = await drive_lanes(dut, a, b, width, lanes, ports=("a", "b", "y"))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    dut._log.info("simulated %d vectors in %.1f s wall (%.0f vectors/s), %.1f s CPU"
                  " (%.0f vectors/CPU-s), %d lanes", a.size, wall, a.size / wall, cpu,
                  a.size / max(cpu, 1e-9), lanes)
    return out


def _report_mismatches(label: str, a: np.ndarray, b: np.ndarray, got: np.ndarray,
                       want: np.ndarray, bad: np.ndarray, digits: int) -> None:
    idx = np.flatnonzero(bad)
    if idx.size:
        lines = [f"  a={int(a[i]):0{digits}x} b={int(b[i]):0{digits}x} rtl={int(got[i]):0{digits}x}"
                 f" want={int(want[i]):0{digits}x}" for i in idx[:10]]
        raise AssertionError(f"{label}: {idx.size} mismatches, first:\n" + "\n".join(lines))


@cocotb.test()
async def fp32_regression(dut) -> None:
    """binary32: RTL vs numpy float32 addition and vs the model."""
    from lmul import fp_add_bits

    params = tb_parameters()
    assert (params["EXP_BITS"], params["MAN_BITS"]) == (8, 23), params
    lanes = params["LANES"]
    seed = random_seed()
    n = vector_count(DEFAULT_VECTORS)
    dut._log.info("fp_add binary32: COCOTB_RANDOM_SEED=%d LMUL_VECTORS=%d (default %d)",
                  seed, n, DEFAULT_VECTORS)
    a, b, counts = fp32_vectors(n, seed)
    for name, k in counts.items():
        dut._log.info("  class %-30s %8d vectors", name, k)

    got = (await _timed_drive(dut, a, b, 32, lanes)).astype(np.uint32)

    with np.errstate(over="ignore", invalid="ignore"):
        want = (a.view(np.float32) + b.view(np.float32)).view(np.uint32)
    want_nan = np.isnan(want.view(np.float32))
    _report_mismatches("RTL vs numpy float32 (non-NaN)", a, b, got, want,
                       ~want_nan & (got != want), 8)
    _report_mismatches("RTL NaN results must be canonical 0x7FC00000", a, b, got,
                       np.full_like(want, FP32_QNAN), want_nan & (got != FP32_QNAN), 8)
    model = fp_add_bits(a, b, 8, 23)
    _report_mismatches("RTL vs model fp_add_bits", a, b, got, model, got != model, 8)

    cover = classify_fp32(a, b, got)
    for name, k in cover.items():
        dut._log.info("  outcome %-40s %8d", name, k)
    if n >= 20_000:
        # With the default class mix every outcome occurs hundreds of times; zero means the
        # generator (not the adder) is broken and the test would prove less than it claims.
        for name, k in cover.items():
            assert k > 0, f"no vectors exercised '{name}'"
    dut._log.info("PASS: %d binary32 vectors bit-exact (RTL = numpy float32 = model)", a.size)


@cocotb.test()
async def exhaustive_regression(dut) -> None:
    """Small format: every operand pair against the exact-rounding oracle."""
    params = tb_parameters()
    e_w, m_w, lanes = params["EXP_BITS"], params["MAN_BITS"], params["LANES"]
    width = 1 + e_w + m_w
    vals = np.arange(1 << width, dtype=np.uint64)
    a = np.repeat(vals, vals.size)
    b = np.tile(vals, vals.size)
    dut._log.info("fp_add E=%d M=%d: all %d operand pairs", e_w, m_w, a.size)

    got = await _timed_drive(dut, a, b, width, lanes)

    vals_exact = [oracle.decode(x, e_w, m_w) for x in range(1 << width)]
    table = np.array([[oracle.encode(oracle.add(x, y), e_w, m_w) for y in vals_exact]
                      for x in vals_exact], dtype=np.uint64)
    want = table.ravel()
    _report_mismatches(f"RTL vs exact reference E={e_w} M={m_w}", a, b, got, want, got != want,
                       (width + 3) // 4)
    dut._log.info("PASS: all %d pairs of E=%d M=%d equal the exact RNE reference",
                  a.size, e_w, m_w)


@cocotb.test()
async def format_regression(dut) -> None:
    """Any (E, M): RTL vs the model, and vs numpy/ml_dtypes where the format has a CPU type."""
    from lmul import fp_add_bits

    params = tb_parameters()
    e_w, m_w, lanes = params["EXP_BITS"], params["MAN_BITS"], params["LANES"]
    width = 1 + e_w + m_w
    seed = random_seed()
    n = vector_count(DEFAULT_FORMAT_VECTORS)
    dut._log.info("fp_add E=%d M=%d: COCOTB_RANDOM_SEED=%d LMUL_VECTORS=%d (default %d)",
                  e_w, m_w, seed, n, DEFAULT_FORMAT_VECTORS)
    a, b = format_vectors(n, seed, e_w, m_w)
    got = await _timed_drive(dut, a, b, width, lanes)
    digits = (width + 3) // 4
    model = fp_add_bits(a, b, e_w, m_w).astype(np.uint64)
    _report_mismatches(f"RTL vs model E={e_w} M={m_w}", a, b, got, model, got != model, digits)

    cpu_types = {(5, 10): (np.float16, np.uint16), (11, 52): (np.float64, np.uint64),
                 (8, 7): (ml_dtypes.bfloat16, np.uint16)}
    if (e_w, m_w) in cpu_types:
        ftype, utype = cpu_types[(e_w, m_w)]
        with np.errstate(over="ignore", invalid="ignore"):
            want = (a.astype(utype).view(ftype) + b.astype(utype).view(ftype)).view(utype)
        want = want.astype(np.uint64)
        nan = np.isnan(want.astype(utype).view(ftype))
        qnan = (((1 << e_w) - 1) << m_w) | (1 << (m_w - 1))
        _report_mismatches(f"RTL vs {np.dtype(ftype).name} (non-NaN)", a, b, got, want,
                           ~nan & (got != want), digits)
        _report_mismatches("RTL NaN results must be canonical", a, b, got,
                           np.full_like(want, qnan), nan & (got != qnan), digits)
        dut._log.info("PASS: %d vectors bit-exact (RTL = %s = model)", a.size,
                      np.dtype(ftype).name)
    else:
        dut._log.info("PASS: %d vectors bit-exact (RTL = model)", a.size)


# --------------------------------------------------------------------------------------------
# pytest side


def test_fp_add_fp32() -> None:
    """binary32 regression: default 200,000 vectors plus all special pairs."""
    run_cocotb("test_fp_add", "fp_add_lanes", ("fp_add_lanes.v",),
               {"EXP_BITS": 8, "MAN_BITS": 23, "LANES": LANES_FP32},
               testcase="fp32_regression")


def test_fp_add_e4m3_exhaustive() -> None:
    """E=4, M=3: all 65,536 pairs against the exact-rounding oracle."""
    run_cocotb("test_fp_add", "fp_add_lanes", ("fp_add_lanes.v",),
               {"EXP_BITS": 4, "MAN_BITS": 3, "LANES": LANES_SMALL},
               testcase="exhaustive_regression")


@pytest.mark.parametrize("e_w,m_w", [(5, 10), (8, 7), (11, 52)], ids=["fp16", "bf16", "fp64"])
def test_fp_add_formats(e_w: int, m_w: int) -> None:
    """Other widths: default 10,000 vectors each against the model and the CPU's adder."""
    run_cocotb("test_fp_add", "fp_add_lanes", ("fp_add_lanes.v",),
               {"EXP_BITS": e_w, "MAN_BITS": m_w, "LANES": LANES_FP32},
               testcase="format_regression")


@pytest.mark.skipif(not full_run(), reason="large variant: set LMUL_FULL=1")
def test_fp_add_e5m2_exhaustive() -> None:
    """LMUL_FULL=1 extra: E=5, M=2 exhaustive, a second small format."""
    run_cocotb("test_fp_add", "fp_add_lanes", ("fp_add_lanes.v",),
               {"EXP_BITS": 5, "MAN_BITS": 2, "LANES": LANES_SMALL},
               testcase="exhaustive_regression")
