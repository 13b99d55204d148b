"""``lmul.lmul_bits``'s numba path returns exactly the bits, dtype and shape of the numpy model.

Reference: ``lmul._core.lmul_bits_numpy`` (vectorized numpy, no code shared with the kernel's
scalar ``_lmul64``). Every pair of the 8-bit formats in every offset x saturate setting; for
BF16 and FP16 (paper offset and 0, saturate 0/1) 2^20 random pairs plus every pair of a set of
special and boundary values plus pairs whose field sums land on the underflow and overflow
edges. Each comparison runs through both kernels (serial, parallel); a spy checks that the
kernel meant to run did run, so a silent numpy fallback cannot pass as the fast path.

``COCOTB_RANDOM_SEED`` (default 1) seeds the random pairs.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import lmul
from lmul import LMulConfig
from lmul import _matmul as mm  # internals under test: the dispatch and its kernels
from lmul._core import lmul_bits_numpy

SETTINGS = [(offset, sat) for offset in (None, 0) for sat in (False, True)]


def _id(setting: tuple[int | None, bool]) -> str:
    return f"offset={'paper' if setting[0] is None else setting[0]}-sat={int(setting[1])}"


def config(preset: str, offset: int | None, saturate: bool) -> LMulConfig:
    fmt = lmul.PRESETS[preset]
    return LMulConfig.for_format(fmt, offset=offset, saturate=saturate)


@pytest.fixture
def kernels() -> object:
    if not mm.fast_path_enabled():
        pytest.skip("numba kernels not in use (LMUL_NO_NUMBA set or numba missing)")
    return mm._load_kernels()


@pytest.fixture(params=["serial", "parallel"])
def calls(request: pytest.FixtureRequest, kernels: object,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Force one kernel for every size and count its calls (the list's length)."""
    which = request.param
    if which == "parallel" and kernels.num_threads() < 2:
        pytest.skip("numba runs 1 thread here: the parallel kernel is never chosen")
    monkeypatch.setattr(mm, "_PARALLEL_BITS", 0 if which == "parallel" else 1 << 62)
    name = f"lmul_bits_{which}"
    real = getattr(kernels, name)
    seen: list[int] = []

    def spy(*args: object) -> object:
        seen.append(1)
        return real(*args)

    monkeypatch.setattr(kernels, name, spy)
    yield seen


def assert_same(got: np.ndarray, want: np.ndarray, a: np.ndarray, b: np.ndarray,
                cfg: LMulConfig) -> None:
    assert isinstance(got, np.ndarray) and got.dtype == want.dtype == cfg.fmt.uint_dtype
    assert got.shape == want.shape
    bad = np.flatnonzero(got.ravel() != want.ravel())
    if bad.size:
        i = bad[0]
        aa, bb = np.broadcast_arrays(a, b)
        raise AssertionError(
            f"{cfg.describe()}: {bad.size} of {got.size} differ; first a={int(aa.ravel()[i]):#x} "
            f"b={int(bb.ravel()[i]):#x}: numba {int(got.ravel()[i]):#x}, "
            f"numpy {int(want.ravel()[i]):#x}")


def special_values(fmt: lmul.Format) -> np.ndarray:
    """Zeros, subnormal and normal edges, one, the largest finite, Inf, NaNs, both signs."""
    m, emaxf = fmt.man_bits, fmt.max_exp_field
    mags = [0, 1, fmt.man_mask, 1 << m, (1 << m) | 1, fmt.bias << m, (fmt.bias << m) | fmt.man_mask,
            ((emaxf - 1) << m) | fmt.man_mask, (emaxf - 1) << m, emaxf << m,
            (emaxf << m) | (1 << (m - 1)), (emaxf << m) | 1, (emaxf << m) | fmt.man_mask]
    mags = np.array(mags, dtype=np.int64)
    return np.concatenate([mags, mags | fmt.sign_bit])


def edge_pairs(cfg: LMulConfig, rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
    """Normal pairs whose field sum lands within 2 LSBs of the underflow and overflow edges."""
    fmt = cfg.fmt
    m, emaxf = fmt.man_bits, fmt.max_exp_field
    fa = rng.integers(1 << m, (emaxf << m), n)
    # f = fa + fb - (bias << M) + offset; edges at f = 2**M (exponent 1) and emaxf << M.
    edges = np.array([1 << m, emaxf << m])
    target = rng.choice(edges, n) + rng.integers(-2, 3, n)
    fb = target - fa + (fmt.bias << m) - cfg.offset_value
    keep = (fb >= 1 << m) & (fb < emaxf << m)
    sa, sb = (rng.integers(0, 2, int(keep.sum())) * fmt.sign_bit for _ in range(2))
    return fa[keep] | sa, fb[keep] | sb


# ------------------------------------------------------------------------------ exhaustive


@pytest.mark.parametrize("setting", SETTINGS, ids=_id)
@pytest.mark.parametrize("preset", ["e4m3_ieee", "e5m2"])
def test_every_pair_of_the_8_bit_formats(preset: str, setting: tuple[int | None, bool],
                                         calls: list[int]) -> None:
    cfg = config(preset, *setting)
    grid = np.arange(256, dtype=np.uint8)
    a, b = np.repeat(grid, 256), np.tile(grid, 256)
    got = lmul.lmul_bits(a, b, cfg)
    assert calls, "the kernel did not run"
    assert_same(got, lmul_bits_numpy(a, b, cfg), a, b, cfg)


@pytest.mark.parametrize("setting", SETTINGS, ids=_id)
@pytest.mark.parametrize("preset", ["bf16", "fp16"])
def test_16_bit_formats_random_special_and_edge_pairs(preset: str, setting: tuple[int | None, bool],
                                                      calls: list[int], random_seed: int) -> None:
    cfg = config(preset, *setting)
    fmt = cfg.fmt
    rng = np.random.default_rng([random_seed, fmt.exp_bits, fmt.man_bits, int(setting[1])])
    sp = special_values(fmt)
    ea, eb = edge_pairs(cfg, rng, 1 << 16)
    a = np.concatenate([rng.integers(0, 1 << 16, 1 << 20), np.repeat(sp, sp.size), ea])
    b = np.concatenate([rng.integers(0, 1 << 16, 1 << 20), np.tile(sp, sp.size), eb])
    assert a.size >= 1_000_000 and ea.size > 30_000
    want = lmul_bits_numpy(a, b, cfg)
    a16, b16 = a.astype(np.uint16), b.astype(np.uint16)
    assert_same(lmul.lmul_bits(a16, b16, cfg), want, a, b, cfg)  # the format's dtype, in place
    assert_same(lmul.lmul_bits(a, b, cfg), want, a, b, cfg)  # int64, as the cocotb tests pass
    assert len(calls) == 2
    # Every result class occurs, so none of them is compared vacuously.
    mag = want & fmt.field_mask
    assert (want == fmt.qnan_bits).any() and (mag == fmt.inf_bits).any() and (mag == 0).any()
    assert ((mag > 0) & (mag < fmt.inf_bits)).any()
    if setting[1]:
        assert (mag == fmt.max_finite_bits).any()


def test_the_comparison_sees_a_one_lsb_offset_and_a_saturation_change(calls: list[int]) -> None:
    """The exhaustive comparison is not vacuous: a kernel run with a configuration one LSB or
    one policy away from the reference's differs on some pairs."""
    grid = np.arange(256, dtype=np.uint8)
    a, b = np.repeat(grid, 256), np.tile(grid, 256)
    ref = config("e4m3_ieee", 0, False)
    for near in (config("e4m3_ieee", 1, False), config("e4m3_ieee", 0, True)):
        with pytest.raises(AssertionError, match="differ"):
            assert_same(lmul.lmul_bits(a, b, near), lmul_bits_numpy(a, b, ref), a, b, ref)
    assert calls


# ------------------------------------------------------------------------------ shapes and inputs

SHAPES = [((3, 1, 4), (1, 5, 1)), ((), (7,)), ((6,), ()), ((), ()), ((0, 3), (1, 3)), ((2, 0), ())]


@pytest.mark.parametrize(("sa", "sb"), SHAPES, ids=str)
def test_broadcasting_and_0d(sa: tuple[int, ...], sb: tuple[int, ...], calls: list[int],
                             random_seed: int) -> None:
    cfg = LMulConfig()
    rng = np.random.default_rng([random_seed, 11])
    a = rng.integers(0, 1 << 16, sa).astype(np.uint16)
    b = rng.integers(0, 1 << 16, sb).astype(np.uint16)
    want = lmul_bits_numpy(a, b, cfg)
    got = lmul.lmul_bits(a, b, cfg)
    assert got.shape == np.broadcast_shapes(sa, sb)
    assert_same(got, want, a, b, cfg)
    assert calls


def test_non_contiguous_operands(calls: list[int], random_seed: int) -> None:
    cfg = LMulConfig(5, 10, saturate=True)
    rng = np.random.default_rng([random_seed, 12])
    big = rng.integers(0, 1 << 16, (40, 60)).astype(np.uint16)
    a, b = big[::2, 1::3], big.T[:20:1, ::2][:, :20]  # strided, and a transposed view
    assert not a.flags.c_contiguous and not b.flags.c_contiguous and a.shape == b.shape
    assert_same(lmul.lmul_bits(a, b, cfg), lmul_bits_numpy(a, b, cfg), a, b, cfg)
    assert calls


def test_python_ints_lists_and_other_integer_dtypes(calls: list[int]) -> None:
    cfg = LMulConfig()
    one, two, inf, nan = 0x3F80, 0x4000, 0x7F80, 0x7FC1
    cases = [(one, two), (one, [two, inf, nan, 0x8000, 0]), ([[one], [inf]], [0, two]),
             (np.int8(0x40), np.int32(two)), (np.uint32([one, two]), np.uint64(inf)),
             (np.array([one, 0x4040], dtype=np.int16), np.uint16(two))]
    for a, b in cases:
        want = lmul_bits_numpy(a, b, cfg)
        got = lmul.lmul_bits(a, b, cfg)
        assert_same(got, want, np.asarray(a), np.asarray(b), cfg)
    assert len(calls) == len(cases)
    # Independent spot values: with offset 0, 1 * 2 = 2 exactly; the paper's offset adds 2**-4
    # (8 LSBs of BF16's 7-bit mantissa); Inf * 0 -> canonical NaN; 0-d in, 0-d out.
    y = lmul.lmul_bits(one, two, LMulConfig(offset=0))
    assert isinstance(y, np.ndarray) and y.shape == () and int(y) == two
    assert int(lmul.lmul_bits(one, two, cfg)) == two + 8
    assert int(lmul.lmul_bits(inf, 0, cfg)) == cfg.fmt.qnan_bits


@pytest.mark.parametrize("fast", [True, False], ids=["numba", "numpy"])
def test_bad_input_errors_match(fast: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both paths refuse the same inputs with the same exception and operand name."""
    if fast and not mm.fast_path_enabled():
        pytest.skip("numba kernels not in use")
    if not fast:
        monkeypatch.setenv("LMUL_NO_NUMBA", "1")
    e5m4 = LMulConfig(5, 4)  # 10 bits in uint16: the dtype alone does not bound the value
    with pytest.raises(ValueError, match="a_bits has values outside"):
        lmul.lmul_bits(np.array([1 << 10], np.uint16), np.zeros(1, np.uint16), e5m4)
    with pytest.raises(ValueError, match="b_bits has values outside"):
        lmul.lmul_bits(np.zeros(3, np.uint16), np.array([0, 1, 0xFFFF], np.uint16), e5m4)
    with pytest.raises(ValueError, match="a_bits has values outside"):
        lmul.lmul_bits(-1, 0)
    with pytest.raises(ValueError, match="b_bits has values outside"):
        lmul.lmul_bits(np.zeros(2, np.uint64), np.array([1 << 63], np.uint64))
    with pytest.raises(TypeError, match="a_bits must be an integer array"):
        lmul.lmul_bits(np.array([1.0]), 0)
    with pytest.raises(TypeError, match="b_bits must be an integer array"):
        lmul.lmul_bits(0, [True])
    with pytest.raises(ValueError, match="do not broadcast"):
        lmul.lmul_bits(np.zeros(3, np.uint16), np.zeros(4, np.uint16))
    with pytest.raises(TypeError, match="LMulConfig"):
        lmul.lmul_bits(0, 0, "bf16")


def test_no_numba_selects_numpy(kernels: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LMUL_NO_NUMBA", "1")

    def fail(*args: object) -> None:
        raise AssertionError("a kernel ran with LMUL_NO_NUMBA=1")

    for name in ("lmul_bits_serial", "lmul_bits_parallel"):
        monkeypatch.setattr(kernels, name, fail)
    a = np.arange(1 << 16, dtype=np.uint16)
    assert_same(lmul.lmul_bits(a, a[::-1]), lmul_bits_numpy(a, a[::-1]), a, a[::-1], LMulConfig())


def test_threads_share_the_serial_kernel(kernels: object) -> None:
    """The serial kernel releases the GIL; concurrent callers (the proof's workers) each get
    their own correct block."""
    cfg = LMulConfig(5, 10)
    blocks = [np.arange(i << 16, (i + 1) << 16, dtype=np.uint32) for i in range(0, 1 << 16, 4099)]

    def work(idx: np.ndarray) -> tuple[np.ndarray, ...]:
        a, b = (idx >> 16).astype(np.uint16), (idx & 0xFFFF).astype(np.uint16)
        return lmul.lmul_bits(a, b, cfg), lmul_bits_numpy(a, b, cfg), a, b

    with ThreadPoolExecutor(4) as pool:
        for got, want, a, b in pool.map(work, blocks):
            assert_same(got, want, a, b, cfg)
