"""Reference model of the MAC array's matrix product (``hdl/mac_array.v``).

Slow but obviously correct: vectorized over the outputs, a Python loop over K. The fast kernels
(:func:`lmul.matmul`) must return the same bits.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ._convert import Rounding, as_float_array, canonicalize_nan
from ._core import exact_mul_numpy, lmul_numpy, seed_lmul_numpy
from ._dot import Fused, fused_sum_bits
from ._formats import LMulConfig

Multiplier = Literal["lmul", "exact", "seed"]
MULTIPLIERS: tuple[str, ...] = ("lmul", "exact", "seed")

_DEFAULT = LMulConfig()


def check_matmul_args(A: object, B: object, bias: object | None,
                      multiplier: str = "lmul", rounding: str = "rne"
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate matmul operands; return (A [M,K], B [K,N], bias [N]) as contiguous float32.

    Raises:
        TypeError: an operand is not float32, or is a torch tensor that requires grad (the
            message names it; ``lmul.torch.lmul_linear`` is the product with gradients).
        ValueError: wrong ranks, mismatched inner or bias dimensions, unknown multiplier/rounding.
    """
    if multiplier not in MULTIPLIERS:
        raise ValueError(f"multiplier must be one of {MULTIPLIERS}, got {multiplier!r}")
    if rounding not in ("rne", "truncate"):
        raise ValueError(f"rounding must be 'rne' or 'truncate', got {rounding!r}")
    a = np.ascontiguousarray(as_float_array(A, "A", "lmul.torch.lmul_linear"))
    b = np.ascontiguousarray(as_float_array(B, "B", "lmul.torch.lmul_linear"))
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"A and B must be 2-D, got shapes {a.shape} and {b.shape}")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"inner dimensions differ: A is {a.shape}, B is {b.shape}")
    n = b.shape[1]
    if bias is None:
        c = np.zeros(n, dtype=np.float32)
    else:
        c = np.ascontiguousarray(as_float_array(bias, "bias", "lmul.torch.lmul_linear"))
        if c.shape != (n,):
            raise ValueError(f"bias must have shape ({n},), got {c.shape}")
    return a, b, c


def matmul_reference(A: object, B: object, bias: object | None = None,
                     cfg: LMulConfig = _DEFAULT, rounding: Rounding = "rne",
                     multiplier: Multiplier = "lmul", accumulate: Fused | None = None
                     ) -> np.ndarray:
    """``Y = bias + A . B`` exactly as the MAC array computes it.

    For every output ``(m, n)``: ``acc = bias[n]``; for ``k = 0 .. K-1`` in order,
    ``acc = fl32(acc + p(A[m,k], B[k,n]))`` with IEEE binary32 addition (round to nearest even,
    subnormals kept). NaN results are the canonical ``0x7FC00000``.

    With ``accumulate=Fused(k, align_bits)`` (the fused processing element) the inner dimension
    is taken in chunks of ``k``: ``acc = dot(acc, A[m, c*k : c*k+k], B[c*k : c*k+k, n])`` for
    ``c = 0, 1, ...``, each step :func:`lmul.fused_sum_bits` of the ``k + 1`` binary32 terms
    (accumulator first); a final partial chunk is padded with +0 products. This path is slow
    (Python integers per output and step).

    Args:
        A: float32 [M, K]; B: float32 [K, N]; bias: float32 [N] or None (= +0.0).
        cfg: L-Mul configuration (format of A and B, offset, saturation).
        rounding: how A and B are rounded to the format (``"rne"`` or ``"truncate"``).
        multiplier: ``"lmul"`` (the L-Mul unit), ``"exact"`` (IEEE product rounded to the
            format, :func:`lmul.exact_mul`), or ``"seed"`` (the notebook's multiplier,
            :func:`lmul.seed_lmul`; it truncates to BF16 itself, ``cfg``/``rounding`` unused).
        accumulate: None (the sequential binary32 sum above) or a :class:`lmul.Fused`.

    Returns:
        float32 [M, N].

    Raises:
        TypeError: ``accumulate`` is neither None nor a :class:`lmul.Fused` (and the operand
            errors of :func:`lmul.matmul`).
    """
    check_accumulate(accumulate)
    a, b, c = check_matmul_args(A, B, bias, multiplier, rounding)
    m, k_len = a.shape
    acc = np.broadcast_to(c, (m, b.shape[1])).copy()
    step = 1 if accumulate is None else accumulate.k
    for k0 in range(0, k_len, step):
        prods = []
        for k in range(k0, min(k0 + step, k_len)):
            col, row = a[:, k, None], b[None, k, :]
            if multiplier == "lmul":
                prods.append(lmul_numpy(col, row, cfg, rounding))
            elif multiplier == "exact":
                prods.append(exact_mul_numpy(col, row, cfg, rounding))
            else:
                prods.append(seed_lmul_numpy(col, row))
        if accumulate is None:
            with np.errstate(invalid="ignore", over="ignore"):
                acc += prods[0]
            continue
        # Padding products are +0 (bits 0), the product of the +0 operand pairs.
        terms = np.zeros((*acc.shape, step + 1), dtype=np.uint32)
        terms[..., 0] = acc.view(np.uint32)
        for i, p in enumerate(prods):
            terms[..., i + 1] = np.ascontiguousarray(p, dtype=np.float32).view(np.uint32)
        acc = fused_sum_bits(terms, accumulate.align_bits).view(np.float32)
    return canonicalize_nan(acc)


def matmul_fp32_numpy(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """:func:`lmul.matmul_fp32` in numpy (the path without numba): validated float32 operands
    ``a [M, K]``, ``b [K, N]``, ``c [N]`` (see :func:`check_matmul_args`) -> float32 [M, N].

    numpy's float32 multiply and add are single IEEE operations per element, so the loop over
    ``k`` gives the sequential sum's bits.
    """
    acc = np.broadcast_to(c, (a.shape[0], b.shape[1])).copy()
    with np.errstate(invalid="ignore", over="ignore", under="ignore"):
        for k in range(a.shape[1]):
            acc += a[:, k, None] * b[None, k, :]
    return canonicalize_nan(acc)


def check_accumulate(accumulate: object) -> None:
    """Raise TypeError unless ``accumulate`` is None or a :class:`lmul.Fused`."""
    if accumulate is not None and not isinstance(accumulate, Fused):
        raise TypeError(f"accumulate must be None or an lmul.Fused, got "
                        f"{type(accumulate).__name__}")
