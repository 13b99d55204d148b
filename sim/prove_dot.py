"""The fused dot-product configurations of the proof (``sim.prove``): blocks of steps, evaluation.

A configuration ``dot/<format>/K=<k>/align=<a>/<multiplier>`` runs ``hdl/dot_datapath.v``
(Verilator, :class:`sim.rtlsim.DotOp`) on blocks of 2^16 steps and compares every result with
:func:`sim.lib.dot_oracle.dot_reference` (integer window sum, rounded once; the products from
``lmul.lmul_bits`` for L-Mul or :func:`sim.lib.int_oracle.mul_reference` for the exact
multiplier, widened by :func:`sim.lib.dot_oracle.widen_reference`).

Two spaces:

* ``steps`` (random): block ``i`` is drawn by ``default_rng([seed, i])`` (:func:`random_steps`):
  uniform bit patterns; operands near 1 with the accumulator within +-(ALIGN_BITS + 30) binades
  of the products (window edges, ties, truncated terms); exactly cancelling lane pairs and an
  accumulator equal to minus a product; special values (zeros, subnormals, Inf, NaN, the largest
  finite values) in random lanes; the format's extreme exponents (overflow, underflow).
* ``sweep`` (exhaustive in lane 0): block ``s`` holds every (a_0, b_0) pair of the 8-bit format
  against one sample ``s`` of the other lanes and the accumulator (:func:`sweep_block`), samples
  drawn like the random steps.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

import lmul
from sim import rtlsim
from sim.lib.dot_oracle import dot_reference, widen_reference
from sim.lib.int_oracle import mul_reference

#: Steps per block (the proof's block size).
BLOCK = 1 << 16

Work = Callable[[int], tuple[int, int, list[dict[str, str]]]]


def _special_f32() -> np.ndarray:
    mags = [0, 1, 0x7FFFFF, 0x400000, 0x800000, 0x800001, 0x3F800000, 0x3F7FFFFF, 0x7F7FFFFF,
            0x7F7FFFFE, 0x7F000000, 0x7F800000, 0x7FC00000, 0x7F800001, 0x7FFFFFFF]
    arr = np.array(mags, dtype=np.int64)
    return np.concatenate([arr, arr | (1 << 31)])


def _special_fmt(fmt: lmul.Format) -> np.ndarray:
    m = fmt.man_bits
    one = fmt.bias << m
    mags = {0, 1, fmt.man_mask, 1 << m, (1 << m) | fmt.man_mask, one, one | 1, one - 1,
            fmt.max_finite_bits, fmt.max_finite_bits - 1, fmt.inf_bits, fmt.qnan_bits,
            fmt.inf_bits | 1}
    arr = np.array(sorted(mags), dtype=np.int64)
    return np.concatenate([arr, arr | fmt.sign_bit])


def random_steps(fmt: lmul.Format, k: int, align: int, rng: np.random.Generator, n: int,
                 products: Callable[[np.ndarray, np.ndarray], np.ndarray]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` mixed steps: (a [n, K], b [n, K] int64 format bits, acc [n] uint32).

    ``products(a, b)`` gives the widened products (uint32 [m, K]) of the configuration's
    multiplier; it sets the accumulators that cancel a product.
    """
    w = fmt.width
    sign = np.int64(fmt.sign_bit)
    q = n // 6
    sizes = [n - 5 * q, q, q, q, q, q]

    def near_one(c: int) -> np.ndarray:
        e = np.clip(fmt.bias + rng.integers(-4, 5, (c, k)), 1, fmt.max_exp_field - 1)
        return ((rng.integers(0, 2, (c, k)) << (w - 1)) | (e << fmt.man_bits)
                | rng.integers(0, 1 << fmt.man_bits, (c, k))).astype(np.int64)

    def f32(s: np.ndarray, field: np.ndarray, man: np.ndarray) -> np.ndarray:
        return ((s.astype(np.int64) << 31) | (np.clip(field, 0, 254).astype(np.int64) << 23)
                | man.astype(np.int64))

    a_parts, b_parts, acc_parts = [], [], []
    # uniform bit patterns
    c = sizes[0]
    a_parts.append(rng.integers(0, 1 << w, (c, k), dtype=np.int64))
    b_parts.append(rng.integers(0, 1 << w, (c, k), dtype=np.int64))
    acc_parts.append(rng.integers(0, 1 << 32, c, dtype=np.int64))
    # operands near 1, the accumulator anywhere from far above to far below the products
    c = sizes[1]
    a_parts.append(near_one(c))
    b_parts.append(near_one(c))
    acc_parts.append(f32(rng.integers(0, 2, c), 127 + rng.integers(-align - 30, align + 31, c),
                         rng.integers(0, 1 << 23, c)))
    # cancellation: lane pairs (a, b) and (-a, b), the accumulator minus one product
    c = sizes[2]
    a, b = near_one(c), near_one(c)
    for i in range(0, k - 1, 2):
        pair = rng.random(c) < 0.5
        a[pair, i + 1] = a[pair, i] ^ sign
        b[pair, i + 1] = b[pair, i]
    lane = rng.integers(0, k, c)
    p = products(a, b)[np.arange(c), lane].astype(np.int64)
    wiggle = np.where(rng.random(c) < 0.5, 0, rng.integers(-2, 3, c))
    acc = (p ^ (1 << 31)) + wiggle
    acc = np.where((p & 0x7FFFFFFF) >= 0x7F800000, p, acc)  # keep Inf/NaN products as they are
    a_parts.append(a)
    b_parts.append(b)
    acc_parts.append(acc & 0xFFFFFFFF)
    # special values in random lanes and the accumulator
    c = sizes[3]
    a, b = near_one(c), near_one(c)
    sf = _special_fmt(fmt)
    pick = rng.random((c, k)) < 0.4
    a = np.where(pick, rng.choice(sf, (c, k)), a)
    pick = rng.random((c, k)) < 0.4
    b = np.where(pick, rng.choice(sf, (c, k)), b)
    acc = np.where(rng.random(c) < 0.5, rng.choice(_special_f32(), c),
                   f32(rng.integers(0, 2, c), 127 + rng.integers(-10, 11, c),
                       rng.integers(0, 1 << 23, c)))
    a_parts.append(a)
    b_parts.append(b)
    acc_parts.append(acc)
    # extreme exponents: products overflowing, underflowing, subnormal; accumulators at the top
    # and the bottom of binary32
    c = sizes[4]
    hi = rng.random((c, k)) < 0.5
    e = np.where(hi, fmt.max_exp_field - 1 - rng.integers(0, 3, (c, k)), rng.integers(0, 3, (c, k)))
    a = (rng.integers(0, 2, (c, k)) << (w - 1)) | (e << fmt.man_bits) | rng.integers(
        0, 1 << fmt.man_bits, (c, k))
    e = np.where(hi, fmt.max_exp_field - 1 - rng.integers(0, 3, (c, k)), rng.integers(0, 3, (c, k)))
    b = (e << fmt.man_bits) | rng.integers(0, 1 << fmt.man_bits, (c, k))
    top = rng.random(c) < 0.5
    acc = f32(rng.integers(0, 2, c), np.where(top, 254 - rng.integers(0, 3, c),
                                              rng.integers(0, 3, c)),
              np.where(top, (1 << 23) - 1 - rng.integers(0, 1 << 12, c),
                       rng.integers(0, 1 << 23, c)))
    a_parts.append(a.astype(np.int64))
    b_parts.append(b.astype(np.int64))
    acc_parts.append(acc)
    # all lanes equal, the accumulator near their scale or zero
    c = sizes[5]
    a = np.repeat(near_one(c)[:, :1], k, axis=1)
    b = np.repeat(near_one(c)[:, :1], k, axis=1)
    acc = np.where(rng.random(c) < 0.3, 0, f32(rng.integers(0, 2, c), 127 + rng.integers(
        -30, 31, c), rng.integers(0, 1 << 23, c)))
    a_parts.append(a)
    b_parts.append(b)
    acc_parts.append(acc)
    mask = np.int64((1 << w) - 1)
    return (np.concatenate(a_parts) & mask, np.concatenate(b_parts) & mask,
            (np.concatenate(acc_parts) & 0xFFFFFFFF).astype(np.uint32))


def sweep_block(fmt: lmul.Format, k: int, align: int, seed: int, index: int,
                products: Callable[[np.ndarray, np.ndarray], np.ndarray]
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Block ``index`` of the sweep: every (a_0, b_0) pair of the format (2^(2W) steps) with
    lanes 1.. and the accumulator fixed to sample ``index`` (one step of :func:`random_steps`
    drawn by ``default_rng([seed, index])``)."""
    w = fmt.width
    rng = np.random.default_rng([seed, index])
    sa, sb, sacc = random_steps(fmt, k, align, rng, 6, products)
    j = index % 6  # rotate through the classes of random_steps
    pairs = np.arange(1 << (2 * w), dtype=np.int64)
    a = np.repeat(sa[j:j + 1], pairs.size, axis=0)
    b = np.repeat(sb[j:j + 1], pairs.size, axis=0)
    a[:, 0], b[:, 0] = pairs >> w, pairs & ((1 << w) - 1)
    return a, b, np.full(pairs.size, sacc[j], dtype=np.uint32)


def evaluator(params: dict[str, int], fmt: lmul.Format, space: str, seed: int,
              total: int, threads: int, hdl_dirs: Sequence[Path]
              ) -> tuple[rtlsim.DotOp, Work]:
    """The RTL model and ``work(block index) -> (steps, mismatches, first mismatches)`` of one
    configuration; ``total`` caps the random steps of the last block."""
    k, align, mult = params["K"], params["ALIGN_BITS"], params["MULTIPLIER"]
    e, m = fmt.exp_bits, fmt.man_bits
    rtl = rtlsim.DotOp(params, threads=threads, hdl_dirs=hdl_dirs, lanes=1)
    cfg = lmul.LMulConfig(e, m, offset=params.get("OFFSET"),
                          saturate=bool(params.get("SATURATE", 0)))

    model_lock = threading.Lock()

    def product_bits(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
        if mult == 0:
            # The model may run a numba parallel kernel, which two threads must not enter at once.
            with model_lock:
                return lmul.lmul_bits(a.astype(fmt.uint_dtype), b.astype(fmt.uint_dtype), cfg)
        return None  # dot_reference's exact product

    def widened(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        bits = product_bits(a, b)
        if bits is None:
            bits = mul_reference(a.reshape(-1), b.reshape(-1), e, m, True).reshape(a.shape)
        return widen_reference(bits, e, m)

    # JIT compilation (or cache loading) of the references stays out of the timed loop.
    zeros = np.zeros((1, k), dtype=np.int64)
    widened(zeros, zeros)
    dot_reference(zeros, zeros, np.zeros(1, np.uint32), e, m, align,
                  products=product_bits(zeros, zeros))

    def work(index: int) -> tuple[int, int, list[dict[str, str]]]:
        if space == "sweep":
            a64, b64, acc = sweep_block(fmt, k, align, seed, index, widened)
        else:
            n = min(BLOCK, total - index * BLOCK)
            a64, b64, acc = random_steps(fmt, k, align, np.random.default_rng([seed, index]),
                                         n, widened)
        a = np.ascontiguousarray(a64.astype(rtl.dtype))
        b = np.ascontiguousarray(b64.astype(rtl.dtype))
        y = np.empty(acc.size, dtype=np.uint32)
        rtl.run_unchecked(a, b, acc, y)
        exp = dot_reference(a, b, acc, e, m, align, products=product_bits(a, b))
        bad = np.flatnonzero(y != exp)
        first = [{"a": ",".join(f"0x{int(v):x}" for v in a[i]),
                  "b": ",".join(f"0x{int(v):x}" for v in b[i]), "acc": f"0x{int(acc[i]):08x}",
                  "rtl": f"0x{int(y[i]):08x}", "expected": f"0x{int(exp[i]):08x}"}
                 for i in bad[:8]]
        return acc.size, int(bad.size), first

    return rtl, work


def configs_spec() -> list[tuple[str, int, int, int, str]]:
    """(format, K, ALIGN_BITS, MULTIPLIER, space) of ``make prove``'s dot configurations."""
    return [
        ("bf16", 4, 276, 0, "steps"),
        ("bf16", 4, 32, 1, "steps"),
        ("bf16", 16, 32, 0, "steps"),
        ("e4m3_ieee", 2, 24, 0, "steps"),
        ("e4m3_ieee", 4, 276, 1, "steps"),
        ("e4m3_ieee", 2, 276, 1, "sweep"),
    ]


def config_name(fmt: str, k: int, align: int, mult: int, space: str) -> str:
    """``dot/<format>/K=<k>/align=<a>/<lmul|exact>`` (``/sweep`` for the lane-0 sweep)."""
    return (f"dot/{fmt}/K={k}/align={align}/{'exact' if mult else 'lmul'}"
            + ("/sweep" if space == "sweep" else ""))
