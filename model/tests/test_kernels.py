"""The fast kernels (``lmul.matmul``, ``lmul._matmul``) return the same bits as the numpy reference.

References: ``lmul.matmul_reference`` (a Python loop over K of vectorized numpy ``lmul_numpy`` /
``exact_mul_numpy`` / ``seed_lmul_numpy`` products and float32 numpy additions) and, for the
elementwise paths, those numpy functions themselves (``lmul_bits`` on ``round_to_format_bits``).
None of them uses numba or shares code with the kernels. Comparisons are on integer bit patterns
(signed zeros, Inf and NaN included; every NaN the kernels return must be ``0x7FC00000`` except
the seed multiplier's elementwise NaNs, whose payload the reference's float32 arithmetic sets).

Environment: ``COCOTB_RANDOM_SEED`` (default 1) seeds the random operands; ``LMUL_VECTORS``
scales the random elementwise test (default 20,000 pairs per configuration); ``LMUL_FULL=1``
compares the whole LSTM gate product [1000 x 156] . [156 x 512] with the reference for every
multiplier (default: the kernel's full product, compared on its first 48 rows). The values come
validated from the repository conftest's fixtures (``random_seed``, ``vector_count``,
``full_run``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from lmul_cases import CONFIGS, MULTIPLIERS, SPECIALS, assert_same_bits, bits, mixed

import lmul
from lmul import LMulConfig
from lmul import _matmul as mm  # internals under test: the elementwise fast paths
from lmul._core import exact_mul_numpy, lmul_numpy, seed_lmul_numpy


@pytest.fixture(scope="module")
def vectors(vector_count: Callable[[int], int]) -> int:
    """Random pairs per configuration in the elementwise tests (``LMUL_VECTORS``)."""
    return vector_count(20000)


@pytest.fixture(scope="module", autouse=True)
def _announce(full_run: bool, random_seed: int, vectors: int) -> None:
    print(f"\ntest_kernels: COCOTB_RANDOM_SEED={random_seed} LMUL_VECTORS={vectors} "
          f"LMUL_FULL={int(full_run)} numba={mm.fast_path_enabled()}")


def test_fast_path_is_active() -> None:
    """Without numba these tests would only compare the reference with itself."""
    if os.environ.get("LMUL_NO_NUMBA", "") not in ("", "0"):
        pytest.skip("LMUL_NO_NUMBA is set")
    assert mm.fast_path_enabled()


@pytest.mark.parametrize(("value", "flag"), [("off", 0), ("on", 1)])
def test_knobs_reach_these_tests_validated(value: str, flag: int) -> None:
    """These tests run with the values the repository's conftest validated: ``LMUL_FULL=off``
    means off (they once read every value but "0" as on), and the seed is the one given."""
    env = {k: v for k, v in os.environ.items() if k not in ("LMUL_FULL", "COCOTB_RANDOM_SEED",
                                                             "LMUL_VECTORS")}
    env.update(LMUL_FULL=value, COCOTB_RANDOM_SEED="7")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
                           f"{Path(__file__).name}::test_fast_path_is_active"],
                          cwd=Path(__file__).parent, env=env, capture_output=True, text=True,
                          check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (f"test_kernels: COCOTB_RANDOM_SEED=7 LMUL_VECTORS=20000 LMUL_FULL={flag} "
            in proc.stdout), proc.stdout


SHAPES = [(1, 1, 1), (3, 1, 5), (0, 4, 3), (5, 0, 3), (4, 3, 0), (17, 33, 65), (2, 7, 300),
          (3, 5, 1100)]


@pytest.mark.parametrize("cfg_name", list(CONFIGS))
@pytest.mark.parametrize("multiplier", MULTIPLIERS)
def test_matmul_matches_reference(cfg_name: str, multiplier: str, random_seed: int) -> None:
    cfg = CONFIGS[cfg_name]
    rng = np.random.default_rng([random_seed, len(cfg_name), MULTIPLIERS.index(multiplier)])
    for rounding in ("rne", "truncate"):
        if multiplier == "seed" and (rounding == "truncate" or cfg_name != "bf16"):
            continue  # the seed multiplier ignores cfg and rounding
        for m, k, n in SHAPES:
            a = mixed(rng, (m, k), cfg, 0.02)
            b = mixed(rng, (k, n), cfg, 0.02)
            bias = None if n % 2 else mixed(rng, (n,), cfg)
            got = mm.matmul(a, b, bias, cfg, rounding, multiplier=multiplier)
            want = lmul.matmul_reference(a, b, bias, cfg, rounding, multiplier)
            assert_same_bits(got, want)


@pytest.mark.parametrize("multiplier", MULTIPLIERS)
@pytest.mark.parametrize("cfg_name", ["bf16", "e4m3_ieee", "fp16-sat", "fp32"])
def test_matmul_every_special_pair(cfg_name: str, multiplier: str) -> None:
    """Every pair of special values as a product (K=1), and as a sum of two products (K=2,
    where signed zeros, Inf - Inf and the flush of subnormals show in the sum)."""
    cfg = CONFIGS[cfg_name]
    col = SPECIALS[:, None]
    row = SPECIALS[None, :]
    assert_same_bits(mm.matmul(col, row, None, cfg, multiplier=multiplier),
                     lmul.matmul_reference(col, row, None, cfg, multiplier=multiplier))
    a2 = np.concatenate([col, -col[::-1]], axis=1)
    b2 = np.concatenate([row, row[:, ::-1]], axis=0)
    for bias in (None, np.full(SPECIALS.size, -0.0, np.float32), -SPECIALS):
        assert_same_bits(mm.matmul(a2, b2, bias, cfg, multiplier=multiplier),
                         lmul.matmul_reference(a2, b2, bias, cfg, multiplier=multiplier))


def test_matmul_special_rows_take_full_path(random_seed: int) -> None:
    """A row of B holding one Inf/NaN switches that k to the full path for every output."""
    rng = np.random.default_rng([random_seed, 7])
    cfg = CONFIGS["bf16"]
    a = mixed(rng, (9, 12), cfg)
    b = mixed(rng, (12, 40), cfg)
    b[3, 5] = np.inf
    b[7, 0] = np.nan
    a[4, 3] = 0.0
    a[5, 3] = 1e-40  # subnormal input times the Inf row: NaN
    for multiplier in MULTIPLIERS:
        got = mm.matmul(a, b, None, cfg, multiplier=multiplier)
        assert_same_bits(got, lmul.matmul_reference(a, b, None, cfg, multiplier=multiplier))
        if multiplier != "seed":  # the seed multiplier has no NaN inputs, only fields
            assert np.isnan(got[:, 0]).all()
        if multiplier == "lmul":  # L-Mul flushes the subnormal, so it is 0 * Inf
            assert np.isnan(got[5, 5])


@pytest.mark.parametrize("cfg_name", ["bf16", "bf16-mitchell", "e4m3_ieee", "fp16-sat"])
def test_every_a_against_narrow_b_rows(cfg_name: str, random_seed: int) -> None:
    """Every format pattern of A against B rows of similar magnitudes, so that for each row the
    kernels' per-row decision (no product of the row under/overflows: one add per product; else
    the per-product classification) flips exactly at the under- and overflow boundaries."""
    cfg = CONFIGS[cfg_name]
    fmt = cfg.fmt
    pats = np.arange(1 << fmt.width) if fmt.width <= 16 else np.arange(0, 1 << 16)
    col = lmul.format_bits_to_float32(pats.astype(fmt.uint_dtype), fmt)[:, None]
    rng = np.random.default_rng([random_seed, 41, len(cfg_name)])
    b = np.stack([
        rng.uniform(1, 2, 16) * rng.choice([-1, 1], 16),  # one binade: narrow range
        rng.uniform(0.25, 8, 16),
        np.full(16, 2.0**-3),
    ]).astype(np.float32)
    b[2, 0] = -0.0  # a zero in the row: the flush case of the row classification
    for multiplier in MULTIPLIERS:
        for k in range(b.shape[0]):
            got = mm.matmul(col, b[k:k + 1], None, cfg, multiplier=multiplier)
            want = lmul.matmul_reference(col, b[k:k + 1], None, cfg, multiplier=multiplier)
            assert_same_bits(got, want)


def test_exact_products_in_the_subnormal_range(random_seed: int) -> None:
    """E = 8 exact products below 2**-126 must be rounded once, not float32-then-format.

    With M = 11 a product has up to 24 significant bits, so a float32 subnormal can round it
    onto a format tie that the exact product is not on. The pairs where that happens are found
    with the reference's own rounding (float64 product vs its float32 rounding), then every
    kernel path must give the single-rounding result.
    """
    cfg = LMulConfig(8, 11)
    fmt = cfg.fmt
    rng = np.random.default_rng([random_seed, 11])
    n = 100_000
    ea = rng.integers(-75, -60, n)
    eb = -135 - ea + rng.integers(-3, 3, n)
    a = (rng.integers(2048, 4096, n) * np.exp2(ea - 11.0)).astype(np.float32)
    b = (rng.integers(2048, 4096, n) * np.exp2(eb - 11.0)).astype(np.float32)
    p64 = a.astype(np.float64) * b
    twice = lmul.round_to_format_bits(p64.astype(np.float32), fmt)
    hits = np.flatnonzero(lmul.round_to_format_bits(p64, fmt) != twice)
    assert hits.size > 3  # the case really is exercised
    pick = np.concatenate([hits, np.arange(40)])
    a_sel, b_sel = a[pick], b[pick]
    assert_same_bits(mm.exact_mul_elementwise(a_sel, b_sel, cfg),
                     exact_mul_numpy(a_sel, b_sel, cfg, "rne"))
    col = a_sel[:, None]
    for bmat in (b_sel[None, :], np.stack([b_sel, -b_sel[::-1]])):
        amat = col if bmat.shape[0] == 1 else np.concatenate([col, col[::-1]], axis=1)
        got = mm.matmul(amat, bmat, None, cfg, multiplier="exact")
        assert_same_bits(got, lmul.matmul_reference(amat, bmat, None, cfg, multiplier="exact"))
    # Rows mixing fast-range and subnormal-range products in one (m, k) row.
    amat = np.concatenate([col, np.ones_like(col)], axis=1)
    bmat = np.stack([b_sel, np.full_like(b_sel, 3.0)])
    bmat[0, :3] = 1.0
    got = mm.matmul(amat, bmat, None, cfg, multiplier="exact")
    assert_same_bits(got, lmul.matmul_reference(amat, bmat, None, cfg, multiplier="exact"))


@pytest.mark.parametrize("multiplier", MULTIPLIERS)
def test_signed_zero_sums(multiplier: str, random_seed: int) -> None:
    """Outputs whose every product is a signed zero: the sign of the sum follows IEEE
    (-0 + -0 = -0, -0 + +0 = +0), so zero products may never be skipped."""
    rng = np.random.default_rng([random_seed, 17, MULTIPLIERS.index(multiplier)])
    zeros = np.array([0.0, -0.0, 1e-40, -1e-40, 2.0**-140, -(2.0**-140)], np.float32)
    if multiplier == "exact":
        zeros = zeros[:2]  # the exact product keeps subnormals
    cfg = CONFIGS["bf16"]
    for k in (1, 2, 3):
        a = rng.choice(zeros, (40, k)).astype(np.float32)
        b = (rng.standard_normal((k, 30)) * rng.choice([1e-30, 1.0, 1e30], (k, 30)))
        b = b.astype(np.float32)
        b[:, :4] = rng.choice(zeros, (k, 4))
        for bias in (None, np.full(30, -0.0, np.float32)):
            got = mm.matmul(a, b, bias, cfg, multiplier=multiplier)
            want = lmul.matmul_reference(a, b, bias, cfg, multiplier=multiplier)
            assert_same_bits(got, want)
            assert np.all(got == 0)
        if multiplier != "seed":  # the seed multiplier's zeros are all +0.0
            assert np.signbit(got).any() and not np.signbit(got).all()


def test_lstm_gate_shape(full_run: bool, random_seed: int) -> None:
    """The LSTM gate product: [batch 1000 x (28 inputs + 128 hidden)] . [156 x 4*128]."""
    rng = np.random.default_rng([random_seed, 1000])
    x = rng.random((1000, 28), dtype=np.float32)  # pixels in [0, 1)
    h = np.tanh(rng.standard_normal((1000, 128))).astype(np.float32)
    a = np.concatenate([x, h], axis=1)
    w = rng.uniform(-1 / np.sqrt(128), 1 / np.sqrt(128), (156, 512)).astype(np.float32)
    bias = rng.uniform(-0.1, 0.1, 512).astype(np.float32)
    # The reference is slow: by default 48 rows spread over the whole batch (every thread's share
    # and column chunking included), all 1000 with LMUL_FULL=1.
    idx = np.arange(1000) if full_run else np.sort(rng.choice(1000, 48, replace=False))
    for multiplier in MULTIPLIERS:
        got = mm.matmul(a, w, bias, multiplier=multiplier)
        assert got.shape == (1000, 512)
        want = lmul.matmul_reference(a[idx], w, bias, multiplier=multiplier)
        assert_same_bits(got[idx], want)


_MEMORY_PROBE = """
import resource, sys
import numpy as np
import lmul
m, k, n = 2000, 600, 2000
rng = np.random.default_rng(0)
a = rng.standard_normal((m, k)).astype(np.float32)
b = rng.standard_normal((k, n)).astype(np.float32)
lmul.matmul(a[:2], b[:, :2], multiplier=sys.argv[1])  # compile (or load the cache) first
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
lmul.matmul(a, b, multiplier=sys.argv[1])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) * 1024)
"""


@pytest.mark.parametrize("multiplier", MULTIPLIERS)
def test_matmul_memory_is_not_m_n_k(multiplier: str) -> None:
    """Peak extra memory stays O(M*N + K*N), far below an [M, N, K] product tensor.

    Measured as the growth of a fresh process's peak RSS, which sees numba's own allocator too
    (tracemalloc does not). Here [M, N, K] would be 2.4 G elements (9.6 GB as float32), while the
    output and prepared operands are about 30 MB.
    """
    if not mm.fast_path_enabled():
        pytest.skip("measures the numba kernels (the numpy fallback has larger temporaries)")
    proc = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, multiplier], capture_output=True,
                          text=True, check=False, timeout=600)
    assert proc.returncode == 0, proc.stderr
    growth = int(proc.stdout.split()[-1])
    assert growth < 400 * 2**20, f"{multiplier}: peak RSS grew by {growth / 2**20:.0f} MiB"


def test_matmul_bad_input() -> None:
    a = np.ones((3, 4), np.float32)
    b = np.ones((4, 5), np.float32)
    with pytest.raises(TypeError, match="float32"):
        mm.matmul(a.astype(np.float64), b)
    with pytest.raises(TypeError, match="float32"):
        mm.matmul(a, b, np.ones(5, np.float16))
    with pytest.raises(ValueError, match="inner"):
        mm.matmul(a, np.ones((5, 4), np.float32))
    with pytest.raises(ValueError, match="2-D"):
        mm.matmul(a[0], b)
    with pytest.raises(ValueError, match="bias"):
        mm.matmul(a, b, np.ones(4, np.float32))
    with pytest.raises(ValueError, match="multiplier"):
        mm.matmul(a, b, multiplier="fast")
    with pytest.raises(ValueError, match="rounding"):
        mm.matmul(a, b, rounding="nearest")
    with pytest.raises(TypeError, match="LMulConfig"):
        mm.matmul(a, b, None, "bf16")


def test_matmul_non_contiguous_operands(random_seed: int) -> None:
    rng = np.random.default_rng([random_seed, 5])
    cfg = CONFIGS["bf16"]
    big_a = mixed(rng, (20, 30), cfg)
    big_b = mixed(rng, (40, 30), cfg)
    bias = mixed(rng, (80,), cfg)
    a, b, c = big_a[::2, 1::2], big_b.T[::2, :], bias[::2]  # strided, transposed, strided
    for multiplier in MULTIPLIERS:
        want = lmul.matmul_reference(np.ascontiguousarray(a), np.ascontiguousarray(b),
                                     np.ascontiguousarray(c), cfg, multiplier=multiplier)
        assert_same_bits(mm.matmul(a, b, c, cfg, multiplier=multiplier), want)
        assert_same_bits(mm.matmul(np.asfortranarray(a), b, c, cfg, multiplier=multiplier), want)


def test_no_numba_fallback(monkeypatch: pytest.MonkeyPatch, random_seed: int) -> None:
    rng = np.random.default_rng([random_seed, 9])
    cfg = CONFIGS["bf16"]
    a = mixed(rng, (5, 6), cfg, 0.05)
    b = mixed(rng, (6, 7), cfg, 0.05)
    fast = {m: mm.matmul(a, b, None, cfg, multiplier=m) for m in MULTIPLIERS}
    fast_ew = mm.lmul_elementwise(a, a[::-1], cfg)
    monkeypatch.setenv("LMUL_NO_NUMBA", "1")
    assert not mm.fast_path_enabled()
    for m in MULTIPLIERS:
        assert_same_bits(mm.matmul(a, b, None, cfg, multiplier=m), fast[m])
    assert_same_bits(mm.lmul_elementwise(a, a[::-1], cfg), fast_ew)


# ------------------------------------------------------------------------------- elementwise

ELEMENTWISE = {
    "lmul": (mm.lmul_elementwise, lmul_numpy),
    "exact": (mm.exact_mul_elementwise, exact_mul_numpy),
}


def random_float32_bits(rng: np.random.Generator, n: int) -> np.ndarray:
    """Uniform random float32 bit patterns (every class) mixed with values near 1."""
    x = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32).view(np.float32)
    near = rng.standard_normal(n).astype(np.float32)
    return np.where(rng.random(n) < 0.5, x, near)


@pytest.mark.parametrize("cfg_name", list(CONFIGS))
@pytest.mark.parametrize("rounding", ["rne", "truncate"])
def test_elementwise_matches_numpy(cfg_name: str, rounding: str, random_seed: int,
                                   vectors: int) -> None:
    cfg = CONFIGS[cfg_name]
    rng = np.random.default_rng([random_seed, len(cfg_name), len(rounding)])
    x = np.concatenate([random_float32_bits(rng, vectors), np.repeat(SPECIALS, SPECIALS.size),
                        mixed(rng, (vectors,), cfg)])
    y = np.concatenate([random_float32_bits(rng, vectors), np.tile(SPECIALS, SPECIALS.size),
                        mixed(rng, (vectors,), cfg)])
    for fast, ref in ELEMENTWISE.values():
        assert_same_bits(fast(x, y, cfg, rounding), ref(x, y, cfg, rounding))


@pytest.mark.parametrize("cfg", [LMulConfig(4, 3), LMulConfig(4, 3, offset=0, saturate=True),
                                 LMulConfig(5, 2), LMulConfig(5, 2, offset=3, saturate=True)],
                         ids=lambda c: c.describe())
def test_elementwise_exhaustive_8bit(cfg: LMulConfig) -> None:
    """All 65,536 operand pairs of an 8-bit format against ``lmul_bits`` itself."""
    fmt = cfg.fmt
    pats = np.arange(256, dtype=np.uint8)
    vals = lmul.format_bits_to_float32(pats, fmt)  # exact, so rounding returns the patterns
    a, b = np.meshgrid(pats, pats, indexing="ij")
    want = lmul.format_bits_to_float32(lmul.lmul_bits(a, b, cfg), fmt)
    got = mm.lmul_elementwise(vals[:, None], vals[None, :], cfg)
    assert_same_bits(got, want)


@pytest.mark.parametrize("cfg_name", list(CONFIGS))
def test_rounding_ties_and_neighbours(cfg_name: str, random_seed: int) -> None:
    """Inputs exactly halfway between two format values (normal and subnormal range, and the
    overflow threshold) and one float32 ulp either side: RNE ties to even, truncation floors."""
    fmt = CONFIGS[cfg_name].fmt
    rng = np.random.default_rng([random_seed, 31, len(cfg_name)])
    n_pos = fmt.nonfinite_bits  # every finite non-negative pattern, or a sample of them
    pats = np.arange(n_pos) if n_pos <= 1 << 16 else rng.integers(0, n_pos - 1, 1 << 16)
    lo = lmul.format_bits_to_float64(pats, fmt)
    hi = np.where(pats + 1 < n_pos, lmul.format_bits_to_float64(np.minimum(pats + 1, n_pos - 1),
                                                                fmt), fmt.max_finite * 2)
    with np.errstate(over="ignore"):
        mid = ((lo + hi) / 2).astype(np.float32)
    up = np.nextafter(mid, np.float32(np.inf))
    x = np.concatenate([mid, np.nextafter(mid, np.float32(0)), up, lo.astype(np.float32)])
    x = np.concatenate([x, -x])
    if not mm.fast_path_enabled():
        pytest.skip("numba kernels unavailable")
    # The kernels round inputs in every product; the exact product by 1.0 returns that rounding
    # unchanged, widened exactly (and injectively, but for NaN) to float32.
    cfg = LMulConfig.for_format(fmt)
    one = np.ones_like(x)
    for rounding in ("rne", "truncate"):
        got = bits(mm.exact_mul_elementwise(x, one, cfg, rounding))
        want = bits(lmul.format_bits_to_float32(lmul.round_to_format_bits(x, fmt, rounding), fmt))
        bad = np.flatnonzero(got != want)
        assert bad.size == 0, (rounding, x[bad[:3]], got[bad[:3]], want[bad[:3]])


def test_seed_elementwise_matches_numpy(random_seed: int, vectors: int) -> None:
    rng = np.random.default_rng([random_seed, 77])
    x = np.concatenate([random_float32_bits(rng, vectors), np.repeat(SPECIALS, SPECIALS.size)])
    y = np.concatenate([random_float32_bits(rng, vectors), np.tile(SPECIALS, SPECIALS.size)])
    # Both run the same float32 operations, so NaN payloads agree too.
    assert_same_bits(mm.seed_lmul_elementwise(x, y), seed_lmul_numpy(x, y), canonical_nan=False)


def test_elementwise_shapes_and_errors(random_seed: int) -> None:
    rng = np.random.default_rng([random_seed, 13])
    cfg = CONFIGS["bf16"]
    x = mixed(rng, (4, 1, 6), cfg)
    y = mixed(rng, (5, 1), cfg)
    for name in MULTIPLIERS:
        got = mm.elementwise_product(x, y, cfg, multiplier=name)
        assert got.shape == (4, 5, 6)
        ref = {"lmul": lmul_numpy, "exact": exact_mul_numpy}.get(name)
        want = seed_lmul_numpy(x, y) if ref is None else ref(x, y, cfg, "rne")
        assert_same_bits(got, want, canonical_nan=name != "seed")
        # Non-contiguous, 0-d and empty operands.
        assert_same_bits(mm.elementwise_product(x[:, :, ::2], y, cfg, multiplier=name),
                         mm.elementwise_product(np.ascontiguousarray(x[:, :, ::2]), y, cfg,
                                                multiplier=name), canonical_nan=False)
        scalar = mm.elementwise_product(np.float32(3.0), np.array(5.0, np.float32), cfg,
                                        multiplier=name)
        assert scalar.shape == ()
        assert mm.elementwise_product(x[:0], y, cfg, multiplier=name).shape == (0, 5, 6)
    assert float(mm.lmul_elementwise(np.float32(5.0), np.float32(5.0))) == 25.0
    with pytest.raises(TypeError, match="float32"):
        mm.lmul_elementwise(x.astype(np.float64), y)
    with pytest.raises(ValueError, match="broadcast"):
        mm.lmul_elementwise(x, mixed(rng, (3,), cfg))
    with pytest.raises(ValueError, match="multiplier"):
        mm.elementwise_product(x, y, multiplier="approx")



@pytest.mark.parametrize(("xs", "ys"), [((4, 1, 6), (5, 1)), ((0, 1, 6), (5, 1)), ((), ()),
                                        ((3,), (1, 3)), ((1, 1), ()), ((2, 3), (3,))])
def test_flat_operands_are_writable_copies_or_views(xs: tuple[int, ...], ys: tuple[int, ...]
                                                    ) -> None:
    """The elementwise kernels get writable C-contiguous flat operands of the broadcast
    values for writable inputs (a read-only ``broadcast_to`` view, as an empty or size-1
    broadcast gave, compiles every kernel a second time), and read the inputs in place when
    the broadcast adds no element."""
    x = np.arange(1, 1 + np.prod(xs, dtype=int), dtype=np.float32).reshape(xs)
    y = (-np.arange(1, 1 + np.prod(ys, dtype=int), dtype=np.float32)).reshape(ys)
    xf, yf, shape = mm._flat_pair(x, y)
    assert shape == np.broadcast_shapes(xs, ys)
    for got, op in ((xf, x), (yf, y)):
        assert got.flags.writeable and got.flags.c_contiguous and got.ndim == 1
        assert np.array_equal(got, np.broadcast_to(op, shape).reshape(-1))
        assert np.shares_memory(got, op) == (op.size == got.size > 0)

def test_lmul_lmul_uses_the_same_bits(random_seed: int) -> None:
    """``lmul.lmul`` (which dispatches here) agrees with the pure-numpy path."""
    rng = np.random.default_rng([random_seed, 21])
    cfg = CONFIGS["e4m3_ieee"]
    x = random_float32_bits(rng, 5000)
    y = random_float32_bits(rng, 5000)
    assert_same_bits(lmul.lmul(x, y, cfg), lmul_numpy(x, y, cfg, "rne"))
