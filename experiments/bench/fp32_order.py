"""The fp32 mode's matrix products, BLAS against the fixed order, on the committed checkpoint.

Usage::

    python -m experiments.bench.fp32_order [--limit N]
    OPENBLAS_CORETYPE=Sandybridge python -m experiments.bench.fp32_order   # another BLAS kernel

Evaluates the reference checkpoint of ``make experiment`` on the MNIST test images twice in
float32, with the same cell (numpy float32 element-wise products, correctly rounded
activations) and two matrix products: ``blas``, numpy's ``a @ b + bias`` (the fp32 mode before
:func:`lmul.matmul_fp32`: its summation order is the BLAS kernel's, chosen by the CPU), and
``fixed``, :func:`lmul.matmul_fp32` (the fp32 mode now). Prints per product the correct count,
the SHA-256 of all logits (first 16 hex digits: equal digests mean equal bits) and the wall time,
then the time ratio fixed / blas of the same run. Under other ``OPENBLAS_CORETYPE`` values (an
OpenBLAS built for several CPUs, as numpy's wheels are) the ``blas`` digest changes and the
``fixed`` one does not.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Callable

import numpy as np

import lmul

from .. import lstm

Product = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _blas(a: np.ndarray, b: np.ndarray, bias: np.ndarray) -> np.ndarray:
    return (a @ b + bias).astype(np.float32, copy=False)


#: name -> matrix product ``bias + a . b``.
PRODUCTS: dict[str, Product] = {"blas": _blas, "fixed": lmul.matmul_fp32}


class Float32Cell:
    """The fp32 mode's cell (:mod:`experiments.modes`) with a chosen matrix product."""

    kind = "fp32"

    def __init__(self, name: str) -> None:
        self.name = name
        self.matmul = self.head_matmul = PRODUCTS[name]

    @staticmethod
    def mul(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return x * y

    @staticmethod
    def sigmoid(x: np.ndarray) -> np.ndarray:
        return lmul.sigmoid32(x)

    @staticmethod
    def tanh(x: np.ndarray) -> np.ndarray:
        return lmul.tanh32(x)


def evaluate(wts: lstm.CellWeights, x: np.ndarray, y: np.ndarray, name: str,
             batch_size: int = 1000) -> tuple[int, str, float]:
    """(correct, logits SHA-256 hex, wall s) of the cell with product ``name`` on ``x``, ``y``."""
    cell, digest, correct = Float32Cell(name), hashlib.sha256(), 0
    t0 = time.perf_counter()
    for s in range(0, len(x), batch_size):
        logits = lstm.forward_logits(wts, x[s:s + batch_size], cell)  # type: ignore[arg-type]
        digest.update(np.ascontiguousarray(logits).tobytes())
        correct += int((lstm.predictions(logits) == y[s:s + batch_size]).sum())
    return correct, digest.hexdigest(), time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=None,
                        help="first N test images (default: all 10,000)")
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error(f"--limit must be >= 1, got {args.limit}")
    from .. import data as data_mod
    from .. import weights

    ds = data_mod.load("mnist")
    model, _ = weights.get_weights(ds, "rows", 0, 1, None, None, False, reference=True)
    wts = lstm.CellWeights.from_model(model)
    x = lstm.to_sequence(ds.test_x[:args.limit], "rows")
    y = ds.test_y[:args.limit]
    evaluate(wts, x[:8], y[:8], "fixed")  # compile / load the kernel outside the timing
    wall = {}
    for name in PRODUCTS:
        correct, digest, wall[name] = evaluate(wts, x, y, name)
        print(f"{name:5s}: {correct}/{len(y)} correct, logits sha256 {digest[:16]}, "
              f"{wall[name]:.2f} s")
    print(f"time ratio fixed / blas: {wall['fixed'] / wall['blas']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
