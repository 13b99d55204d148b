"""The numba kernels as one namespace: what :func:`lmul._matmul._load_kernels` imports on first
use (numba itself is never imported by ``import lmul``).

Split by what they do: :mod:`lmul._kparams` (the packed configuration constants, multiplier
codes, thread count, cache stamp), :mod:`lmul._kmatmul` (B's preparation, the wide and the
narrow matrix products), :mod:`lmul._kelementwise` (elementwise products) and
:mod:`lmul._kbits` (the L-Mul unit on bit patterns). The torch layer's LSTM backward kernel is
:mod:`lmul._torch_kernels`.
"""

from __future__ import annotations

from ._kbits import lmul_bits_parallel, lmul_bits_serial
from ._kelementwise import elementwise, elementwise_serial
from ._kmatmul import (
    matmul_exact,
    matmul_lmul,
    matmul_seed,
    narrow_exact,
    narrow_lmul,
    narrow_seed,
    prep_exact_b,
    prep_lmul_b,
    prep_seed_b,
)
from ._kparams import MUL_EXACT, MUL_LMUL, MUL_SEED, make_params, num_threads

__all__ = [
    "MUL_EXACT",
    "MUL_LMUL",
    "MUL_SEED",
    "elementwise",
    "elementwise_serial",
    "lmul_bits_parallel",
    "lmul_bits_serial",
    "make_params",
    "matmul_exact",
    "matmul_lmul",
    "matmul_seed",
    "narrow_exact",
    "narrow_lmul",
    "narrow_seed",
    "num_threads",
    "prep_exact_b",
    "prep_lmul_b",
    "prep_seed_b",
]
