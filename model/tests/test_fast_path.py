"""The wide L-Mul kernel's single-add blocks (:func:`lmul._kmatmul.matmul_lmul`) against the
numpy reference, bit for bit.

Per (row of A, k) the kernel decides from B's per-row field extremes whether every product with
row k of B is one integer add; groups of ``_K_GROUP`` such k are summed in registers, the rest
take the exact per-k paths. These tests build blocks on both sides of every edge of that
decision: field sums exactly at the under- and overflow limits and one LSB beyond, zero and
subnormal operands (masked zeros in the single-add loop), Inf/NaN in A or in a row of B, for
every preset of ``lmul.PRESETS`` (with and without saturation) and both roundings; and they
run deliberately broken copies of the kernel (decisions that take the single add too often)
to see each one caught.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable

import numba
import numpy as np
import pytest
from lmul_cases import CONFIGS, SPECIALS, assert_same_bits, bits, mixed

import lmul
from lmul import LMulConfig
from lmul import _kmatmul as km  # the kernel under test and its decision
from lmul import _matmul as mm  # B's preparation and tiling, to run kernel copies

K_GROUP = km._K_GROUP
K = 2 * K_GROUP + K_GROUP // 2  # two full k groups, and a remainder taken per k
N = 40  # wider than the narrow kernels' limit: the wide kernel runs

PRESET_CONFIGS = {f"{name}{'-sat' if sat else ''}": LMulConfig.for_format(f, saturate=sat)
                  for name, f in lmul.PRESETS.items() for sat in (False, True)}

Kernel = Callable[..., None]


#: ``(copy, decision)``: the kernel copy of :func:`_kernel_copy` and the index into
#: :data:`DECISIONS` of the decision it is to take.
Broken = tuple[Kernel, int]


def wide(kernel: Broken | None, a: np.ndarray, b: np.ndarray, bias: np.ndarray | None,
         cfg: LMulConfig, rounding: str) -> np.ndarray:
    """``bias + a . b`` by a copy of ``matmul_lmul`` with one of :data:`DECISIONS`, or (None)
    by ``lmul.matmul``."""
    if kernel is None:
        assert not mm._use_narrow(*a.shape[:1], b.shape[1])
        return lmul.matmul(a, b, bias, cfg, rounding)
    copy, decision = kernel
    prm = mm._params(cfg, rounding)
    m_len, k_len = a.shape
    n_len = b.shape[1]
    c = np.zeros(n_len, np.float32) if bias is None else bias
    out = np.empty(m_len * n_len, dtype=np.float32)
    *arrays, fbmax = mm._prepare_arrays(np.ascontiguousarray(b), prm, "lmul")
    # The copy reads fbmax[k] only to hand it to the decision: row k becomes (fbmax, decision).
    fbmax_decision = np.stack([fbmax, np.full_like(fbmax, decision)], axis=1)
    copy(np.ascontiguousarray(a).reshape(-1), *arrays, fbmax_decision, c, m_len, k_len, n_len,
         mm._chunk(m_len, n_len), prm, out)
    return out.reshape(m_len, n_len)


def fmt_value(cfg: LMulConfig, field: int, rng: np.random.Generator, shape=()) -> np.ndarray:
    """float32 values with the format field ``field`` (exponent|mantissa) and random signs."""
    fmt = cfg.fmt
    assert 1 << fmt.man_bits <= field < fmt.nonfinite_bits, "not a normal field"
    sign = rng.integers(0, 2, shape) << (fmt.exp_bits + fmt.man_bits)
    return lmul.format_bits_to_float32(np.asarray(sign + field, dtype=np.int64), fmt)


def edge_cases(cfg: LMulConfig, rng: np.random.Generator
               ) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray | None]]:
    """(name, A [M, K], B [K, N], bias) with products whose field sums sit at the kernel's
    under- and overflow limits, on either side, in whole k groups and in single positions."""
    fmt = cfg.fmt
    man, bias_e = fmt.man_bits, fmt.bias
    lo, hi = 1 << man, fmt.nonfinite_bits  # Inf, or the NaN of a finite-only format
    kb = cfg.offset_value - (bias_e << man)
    one = bias_e << man
    small, big = (bias_e - 2) << man, (bias_e + 2) << man  # fields of 0.25 and 4
    cases = []
    for name, b_edge, b_other, targets in (
            ("underflow", small, (small, one + (1 << man) - 1), lo),
            ("overflow", big, (one - (1 << man), big), hi)):
        # Row k of B: one element at the edge (the row's extreme field), the rest inside.
        fields = rng.integers(b_other[0], b_other[1] + 1, (K, N))
        fields[np.arange(K), rng.integers(0, N, K)] = b_edge
        b = np.stack([fmt_value(cfg, int(f), rng) for f in fields.ravel()]).reshape(K, N)
        rows = []
        for d in (-1, 0, 1):
            fa = targets - (b_edge + kb) + d  # field sum with the edge element: limit + d
            # A whole row at the edge (every k group decided by it) ...
            rows.append(fmt_value(cfg, fa, rng, (K,)))
            # ... and rows near 1 with the edge element at one k (in a group, in the remainder).
            for k in (3, K - 2):
                row = fmt_value(cfg, one, rng, (K,))
                row[k] = fmt_value(cfg, fa, rng)
                rows.append(row)
        a = np.stack(rows).astype(np.float32)
        cases.append((name, a, b.astype(np.float32), None))
    # Zeros and subnormals of A inside single-add groups (masked), signed-zero sums.
    a = fmt_value(cfg, one, rng, (12, K)).astype(np.float32)
    b = fmt_value(cfg, one, rng, (K, N)).astype(np.float32)
    a[0, :] = 0.0
    a[1, :] = -0.0
    a[2, 1::3] = np.float32(-0.0)
    a[3, 5] = np.float32(2.0 ** -140)  # float32 subnormal: zero or subnormal in every format
    a[4, K - 1] = 0.0
    a[5, :] = -a[5, :]
    cases.append(("zeros", a, b, np.full(N, -0.0, np.float32)))
    cases.append(("zeros-bias", a, b, fmt_value(cfg, one, rng, (N,)).astype(np.float32)))
    # Specials in A, and in single rows of B (zero, subnormal, Inf, NaN), in otherwise
    # single-add blocks; A's values in [0.25, 2): a small enough A element keeps even an
    # Inf/NaN field of B below the overflow limit, so only the row's Inf/NaN flag stops it.
    a = np.stack([fmt_value(cfg, int(f), rng)
                  for f in rng.integers(small, one + (1 << man), 10 * K)]).reshape(10, K)
    a = a.astype(np.float32)
    b = fmt_value(cfg, one, rng, (K, N)).astype(np.float32)
    a[1, 2] = np.inf
    a[2, K - 1] = np.nan
    a[3, 9] = -np.inf
    a[4, 0] = 3.0e38  # beyond most formats: Inf (RNE) or the largest finite (truncate)
    b[4, 7] = 0.0
    b[10, 3] = np.float32(2.0 ** -140)
    b[12, 30] = np.inf
    b[K - 3, 0] = np.nan
    b[1, 11] = -3.0e38
    cases.append(("specials", a, b, None))
    return cases


@functools.cache
def cases_and_references(cfg_name: str, seed: int
                         ) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray | None, str,
                                         np.ndarray]]:
    """(name, A, B, bias, rounding, bits of ``lmul.matmul_reference``) of every case of
    ``PRESET_CONFIGS[cfg_name]``, built once per process: every kernel under test gets the same
    cases, and none writes to them."""
    cfg = PRESET_CONFIGS[cfg_name]
    rng = np.random.default_rng([seed, len(cfg_name), cfg.exp_bits, cfg.man_bits])
    cases = edge_cases(cfg, rng)
    cases.append(("mixed", mixed(rng, (20, K), cfg, 0.02), mixed(rng, (K, N), cfg, 0.02), None))
    out = []
    for name, a, b, bias in cases:
        for rounding in ("rne", "truncate"):
            want = bits(lmul.matmul_reference(a, b, bias, cfg, rounding))
            out.append((name, a, b, bias, rounding, want))
    return out


def check_all(kernel: Broken | None, cfg_names: list[str], seed: int) -> list[str]:
    """Names of the cases where ``kernel`` differs from ``lmul.matmul_reference``."""
    failures = []
    for cfg_name in cfg_names:
        cfg = PRESET_CONFIGS[cfg_name]
        for name, a, b, bias, rounding, want in cases_and_references(cfg_name, seed):
            got = wide(kernel, a, b, bias, cfg, rounding)
            if not np.array_equal(bits(got), want):
                failures.append(f"{cfg_name}/{name}/{rounding}")
    return failures


@pytest.mark.parametrize("cfg_name", list(PRESET_CONFIGS))
def test_edges_match_reference(cfg_name: str, random_seed: int) -> None:
    assert check_all(None, [cfg_name], random_seed) == []


@pytest.mark.parametrize("cfg_name", list(CONFIGS))
def test_single_add_blocks_with_scattered_specials(cfg_name: str, random_seed: int) -> None:
    """Mostly single-add blocks (values near 1) with one special per chosen (row, k) of A or
    (k, column) of B, at every position of a k group and in the remainder."""
    cfg = CONFIGS[cfg_name]
    rng = np.random.default_rng([random_seed, 11, len(cfg_name)])
    one = cfg.fmt.bias << cfg.fmt.man_bits
    for where in range(K):
        a = fmt_value(cfg, one, rng, (9, K)).astype(np.float32)
        b = fmt_value(cfg, one, rng, (K, N)).astype(np.float32)
        a[where % 9, where] = rng.choice(SPECIALS)
        b[where, (5 * where) % N] = rng.choice(SPECIALS)
        for rounding in ("rne", "truncate"):
            assert_same_bits(lmul.matmul(a, b, None, cfg, rounding),
                             lmul.matmul_reference(a, b, None, cfg, rounding))


def test_gate_shape_takes_and_matches_single_add(random_seed: int) -> None:
    """An LSTM-like product (many single-add groups, zero pixels) matches the reference."""
    rng = np.random.default_rng([random_seed, 12])
    x = np.where(rng.random((64, 28)) < 0.6, 0.0, rng.random((64, 28))).astype(np.float32)
    h = np.tanh(rng.standard_normal((64, 128))).astype(np.float32)
    a = np.concatenate([x, h], axis=1)
    b = rng.uniform(-0.1, 0.1, (156, 512)).astype(np.float32)
    bias = rng.uniform(-0.1, 0.1, 512).astype(np.float32)
    for cfg in (CONFIGS["bf16"], CONFIGS["e4m3_ieee"]):
        assert_same_bits(lmul.matmul(a, b, bias, cfg), lmul.matmul_reference(a, b, bias, cfg))


# ---------------------------------------------------------------------------- broken kernels


def _as_is(ea, fz, fmn, fmx, special_k, fast32, lo, hi, emaxf32):
    return km._single_add_ok(ea, fz, fmn, fmx, special_k, fast32, lo, hi, emaxf32)


def _everywhere(ea, fz, fmn, fmx, special_k, fast32, lo, hi, emaxf32):
    return fast32


def _underflow_edge_off_by_one(ea, fz, fmn, fmx, special_k, fast32, lo, hi, emaxf32):
    return km._single_add_ok(ea, fz, fmn, fmx, special_k, fast32, lo - 1, hi, emaxf32)


def _overflow_edge_off_by_one(ea, fz, fmn, fmx, special_k, fast32, lo, hi, emaxf32):
    return km._single_add_ok(ea, fz, fmn, fmx, special_k, fast32, lo, hi + 1, emaxf32)


def _ignores_row_specials(ea, fz, fmn, fmx, special_k, fast32, lo, hi, emaxf32):
    return km._single_add_ok(ea, fz, fmn, fmx, 0, fast32, lo, hi, emaxf32)


def _ignores_row_maximum(ea, fz, fmn, fmx, special_k, fast32, lo, hi, emaxf32):
    return km._single_add_ok(ea, fz, fmn, fmn, special_k, fast32, lo, hi, emaxf32)


#: The real decision (index 0), then the broken ones, each taking the single add too often.
DECISIONS = (_as_is, _everywhere, _underflow_edge_off_by_one, _overflow_edge_off_by_one,
             _ignores_row_specials, _ignores_row_maximum)


@functools.cache
def _kernel_copy() -> Kernel:
    """``matmul_lmul`` compiled (serial, uncached) with ``_single_add_ok`` replaced by a
    dispatch to ``DECISIONS[d]``, where ``d`` comes with row k's ``fbmax`` (its argument
    ``fbmax`` is [K, 2]: the real extreme and ``d``; the kernel uses ``fbmax[k]`` only as the
    decision's argument). One compilation serves every decision: each is a numba function of
    the same arguments, so the copy runs exactly the decision it would if compiled alone."""
    d0, d1, d2, d3, d4, d5 = (numba.njit(d) for d in DECISIONS)

    @numba.njit
    def decide(ea, fz, fmn, fmx_decision, special_k, fast32, lo, hi, emaxf32):
        fmx, d = fmx_decision[0], fmx_decision[1]
        if d == 0:
            return d0(ea, fz, fmn, fmx, special_k, fast32, lo, hi, emaxf32)
        if d == 1:
            return d1(ea, fz, fmn, fmx, special_k, fast32, lo, hi, emaxf32)
        if d == 2:
            return d2(ea, fz, fmn, fmx, special_k, fast32, lo, hi, emaxf32)
        if d == 3:
            return d3(ea, fz, fmn, fmx, special_k, fast32, lo, hi, emaxf32)
        if d == 4:
            return d4(ea, fz, fmn, fmx, special_k, fast32, lo, hi, emaxf32)
        return d5(ea, fz, fmn, fmx, special_k, fast32, lo, hi, emaxf32)

    fn = km.matmul_lmul.py_func
    env = dict(fn.__globals__)
    env["_single_add_ok"] = decide
    copy = types.FunctionType(fn.__code__, env, "matmul_lmul_copy", fn.__defaults__,
                              fn.__closure__)
    return numba.njit(copy)


def test_broken_decisions_are_caught(random_seed: int) -> None:
    """A copy with the real decision passes (the harness runs what it claims); each broken
    decision fails some case."""
    cfg_names = ["bf16-sat", "e4m3_ieee", "e5m2-sat"]
    assert check_all((_kernel_copy(), 0), cfg_names, random_seed) == []
    for d in range(1, len(DECISIONS)):
        failures = check_all((_kernel_copy(), d), cfg_names, random_seed)
        assert failures, f"{DECISIONS[d].__name__} went unnoticed"
