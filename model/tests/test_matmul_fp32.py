"""``lmul.matmul_fp32``: the float32 matrix product in one fixed order, the same bits anywhere.

The oracle is independent of the kernel: a numpy loop over ``k`` of elementwise float32
multiplies and adds (each a single IEEE operation), bias first. The checker
(:func:`first_mismatch`) is fed deliberately wrong products (fused multiply-add, reversed and
pairwise orders, the bias last, BLAS) and must reject each of them, so a kernel that contracted
or reordered the sum could not pass. Operands include signed zeros, Inf, NaN, subnormals,
products that overflow and underflow, and sums that cancel. ``COCOTB_RANDOM_SEED`` (default 1)
seeds the operands.
"""

from __future__ import annotations

import platform
import re
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from lmul_cases import SPECIALS, assert_same_bits, bits, mixed

import lmul

Product = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]

needs_kernels = pytest.mark.skipif(not lmul.fast_path_enabled(),
                                   reason="numba kernels not in use (LMUL_NO_NUMBA or no numba)")

_FP32 = lmul.LMulConfig(8, 23)


def oracle(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``acc = c``; for k = 0 .. K-1: ``acc = fl32(acc + fl32(a[:, k] * b[k]))``; then every
    NaN -> 0x7FC00000."""
    acc = np.tile(c, (a.shape[0], 1)).astype(np.float32)
    with np.errstate(all="ignore"):
        for k in range(a.shape[1]):
            prod = (a[:, k, None] * b[None, k, :]).astype(np.float32)
            acc = (acc + prod).astype(np.float32)
    return np.where(np.isnan(acc), np.uint32(0x7FC00000).view(np.float32), acc)


def _fma_case() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One output where a fused multiply-add differs: bias = -fl(x*x), so the sequential sum is
    0 and the fused one the product's rounding error 2**-46."""
    x = np.float32(1 + 2.0**-23)
    return (np.array([[x]], np.float32), np.array([[x]], np.float32),
            np.array([-(x * x)], np.float32))


def _order_case() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One output where the order decides: 2**24 + 0 + 1 + 1 is 2**24 summed left to right
    (each +1 is a tie, to even), 2**24 + 2 pairwise or right to left."""
    return (np.ones((1, 4), np.float32), np.array([[2.0**24], [0], [1], [1]], np.float32),
            np.zeros(1, np.float32))


def cases(seed: int) -> Iterator[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """(name, a [M, K], b [K, N], bias [N]) float32 cases: shapes around the kernel's row
    blocking and column chunks, empty dimensions, special values, cancelling sums."""
    rng = np.random.default_rng(seed)
    yield "fma", *_fma_case()
    yield "order", *_order_case()
    for m, k, n in ((1, 1, 1), (3, 5, 7), (4, 33, 10), (9, 156, 512), (67, 40, 1030),
                    (0, 3, 4), (5, 0, 6), (2, 3, 0)):
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        c = rng.standard_normal(n).astype(np.float32)
        yield f"normal {m}x{k}x{n}", a, b, c
    # Every exponent (overflow to Inf, underflow to subnormals and signed zeros) and SPECIALS.
    a = mixed(rng, (13, 24), _FP32, 0.05)
    b = mixed(rng, (24, 37), _FP32, 0.05)
    yield "mixed", a, b, mixed(rng, (37,), _FP32, 0.1)
    # Every pair of SPECIALS in a one-term sum, with each special as the bias too.
    s = SPECIALS.size
    yield "specials", np.repeat(SPECIALS, s)[:, None], np.tile(SPECIALS, (1, 1)), SPECIALS.copy()
    # Subnormal operands and products, sums that stay subnormal.
    a = (rng.standard_normal((8, 16)) * 2.0**-70).astype(np.float32)
    b = (rng.standard_normal((16, 24)) * 2.0**-70).astype(np.float32)
    yield "subnormal", a, b, np.full(24, -0.0, np.float32)
    # Cancellation: each b column pairs a value with its negation, so partial sums swing
    # between large and tiny and the rounding of each step shows.
    a = rng.standard_normal((6, 64)).astype(np.float32) * np.float32(1e4)
    b = rng.standard_normal((64, 40)).astype(np.float32)
    b[1::2] = -b[0::2] * np.float32(1 + 2.0**-12)
    yield "cancel", a, b, np.zeros(40, np.float32)


def first_mismatch(product: Product, seed: int) -> str | None:
    """The first case where ``product`` differs from :func:`oracle` in any bit (None: none)."""
    for name, a, b, c in cases(seed):
        with np.errstate(all="ignore"):
            got = np.asarray(product(a, b, c), dtype=np.float32)
        want = oracle(a, b, c)
        if got.shape != want.shape:
            return f"{name}: shape {got.shape}, want {want.shape}"
        diff = np.flatnonzero(bits(got) != bits(want))
        if diff.size:
            i = diff[0]
            return (f"{name}: {diff.size} of {got.size} differ, first at {i}: "
                    f"{bits(got).ravel()[i]:#010x} vs {bits(want).ravel()[i]:#010x}")
    return None


def test_matmul_fp32_matches_the_oracle(random_seed: int) -> None:
    assert first_mismatch(lmul.matmul_fp32, random_seed) is None


def test_without_numba_same_bits(random_seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The numpy path (``LMUL_NO_NUMBA=1``) returns the oracle's bits too."""
    monkeypatch.setenv("LMUL_NO_NUMBA", "1")
    assert not lmul.fast_path_enabled()
    assert first_mismatch(lmul.matmul_fp32, random_seed) is None


@needs_kernels
def test_thread_count_does_not_change_bits(random_seed: int) -> None:
    import numba

    rng = np.random.default_rng(random_seed)
    a = rng.standard_normal((37, 156)).astype(np.float32)
    b = rng.standard_normal((156, 512)).astype(np.float32)
    c = rng.standard_normal(512).astype(np.float32)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = lmul.matmul_fp32(a, b, c)
    finally:
        numba.set_num_threads(before)
    assert_same_bits(lmul.matmul_fp32(a, b, c), one)


def test_is_the_mac_array_with_an_ieee_multiplier(random_seed: int) -> None:
    """The same bits as ``lmul.matmul`` with the exact multiplier on binary32 (E8M23), the MAC
    array's bias-first sequential sum: a third, separately written implementation."""
    rng = np.random.default_rng(random_seed)
    a = mixed(rng, (9, 20), _FP32, 0.05)
    b = mixed(rng, (20, 45), _FP32, 0.05)
    c = mixed(rng, (45,), _FP32, 0.05)
    with np.errstate(all="ignore"):
        want = lmul.matmul(a, b, c, cfg=_FP32, multiplier="exact")
    assert_same_bits(lmul.matmul_fp32(a, b, c), want)


def test_bias_none_is_positive_zero() -> None:
    """No bias starts the sum at +0: +0 + (1 * -0) is +0, where a -0 start would give -0."""
    a, b = np.ones((1, 1), np.float32), np.full((1, 1), -0.0, np.float32)
    assert bits(lmul.matmul_fp32(a, b))[0, 0] == 0
    assert bits(lmul.matmul_fp32(a, b, np.full(1, -0.0, np.float32)))[0, 0] == 0x80000000


def test_order_and_contraction_change_the_bits() -> None:
    """The fixed order is a real constraint: pairwise, reversed and fused evaluations of the
    cases above give other bits, and the kernel gives the sequential ones."""
    a, b, c = _order_case()
    seq = lmul.matmul_fp32(a, b, c)[0, 0]
    p = (a[0] * b[:, 0]).astype(np.float32)
    pairwise = np.float32(np.float32(p[0] + p[1]) + np.float32(p[2] + p[3]))
    assert seq == np.float32(2.0**24) and pairwise == np.float32(2.0**24 + 2)
    a, b, c = _fma_case()
    fused = np.float32(np.float64(c[0]) + np.float64(a[0, 0]) * np.float64(b[0, 0]))
    assert lmul.matmul_fp32(a, b, c)[0, 0] == 0 and fused == np.float32(2.0**-46)


def _fused(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Fused multiply-add per step (the product exact in float64, one rounding of the sum to
    float64 and then to float32: an FMA but for rare double roundings)."""
    acc = np.tile(c, (a.shape[0], 1)).astype(np.float32)
    for k in range(a.shape[1]):
        acc = (acc.astype(np.float64) + a[:, k, None].astype(np.float64)
               * b[None, k, :].astype(np.float64)).astype(np.float32)
    return acc


def _reversed(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    return lmul.matmul_fp32(a[:, ::-1], b[::-1], c)


def _pairwise(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The products summed as a tree (numpy's pairwise float32 ``sum``), then the bias."""
    prods = (a[:, :, None] * b[None, :, :]).astype(np.float32)
    return (prods.sum(axis=1, dtype=np.float32) + c).astype(np.float32)


def _bias_last(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    return (lmul.matmul_fp32(a, b) + c).astype(np.float32)


def _blas(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    return (a @ b + c).astype(np.float32)


@pytest.mark.parametrize("broken", [_fused, _reversed, _pairwise, _bias_last, _blas],
                         ids=lambda f: f.__name__.strip("_"))
def test_checker_rejects_other_orders(broken: Product, random_seed: int) -> None:
    """Each wrong product differs from the oracle somewhere in :func:`cases` (the constructed
    ``fma`` and ``order`` cases alone catch contraction and reordering on any machine)."""
    assert first_mismatch(broken, random_seed) is not None


@needs_kernels
def test_kernel_machine_code_has_no_fma(random_seed: int) -> None:
    """No fused multiply-add in the compiled kernel, and the check can fail: the same source
    compiled with ``fastmath={'contract'}`` contains them (x86-64 hosts with FMA) and
    :func:`first_mismatch` rejects its results."""
    import llvmlite.binding as llvm
    from numba import njit

    from lmul import _kfp32

    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("the instruction pattern checked is x86-64's")
    if "+fma" not in llvm.get_host_cpu_features().flatten().split(","):
        pytest.skip("this CPU has no FMA instructions to contract into")
    fma = re.compile(r"\bvfn?m(?:add|sub)\w*p[sd]\b")
    assert _kfp32.matmul_fp32.targetoptions.get("fastmath") in (None, False)

    def compiled(fastmath: object) -> tuple[Product, str]:
        # A fresh compilation of the kernel's source (cached code has no assembly to inspect).
        kernel = njit(parallel=True, fastmath=fastmath)(_kfp32.matmul_fp32.py_func)

        def product(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
            (m, k), n = a.shape, b.shape[1]
            out = np.empty(m * n, np.float32)
            kernel(np.ascontiguousarray(a).reshape(-1), np.ascontiguousarray(b).reshape(-1), c,
                   m, k, n, 64, out)
            return out.reshape(m, n)

        product(*_fma_case())
        return product, "".join(kernel.inspect_asm().values())

    plain, plain_asm = compiled(False)
    assert re.search(r"\bv(?:mul|add)ps\b", plain_asm) and not fma.search(plain_asm)
    assert first_mismatch(plain, random_seed) is None
    contracted, contracted_asm = compiled({"contract"})
    assert fma.search(contracted_asm)
    assert first_mismatch(contracted, random_seed) is not None


def test_errors_name_the_operand() -> None:
    with pytest.raises(TypeError, match="B"):
        lmul.matmul_fp32(np.ones((2, 2), np.float32), np.ones((2, 2), np.float64))
    with pytest.raises(ValueError, match="inner dimensions"):
        lmul.matmul_fp32(np.ones((2, 3), np.float32), np.ones((2, 2), np.float32))
    with pytest.raises(ValueError, match="bias"):
        lmul.matmul_fp32(np.ones((2, 2), np.float32), np.ones((2, 2), np.float32),
                         np.ones(3, np.float32))
