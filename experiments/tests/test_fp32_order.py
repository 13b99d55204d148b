"""``experiments.bench.fp32_order``: its ``fixed`` cell is the fp32 mode, bit for bit, and its
digest tells products apart."""

from __future__ import annotations

import hashlib

import numpy as np

from experiments import lstm
from experiments.bench import fp32_order
from experiments.modes import parse_mode
from experiments.tests.helpers import spread_model


def test_fixed_cell_is_the_fp32_mode_and_blas_is_counted_the_same_way() -> None:
    model = spread_model(2, hidden=32)
    wts = lstm.CellWeights.from_model(model)
    rng = np.random.default_rng(0)
    x = lstm.to_sequence(rng.integers(0, 256, (7, 28, 28), dtype=np.uint8), "rows")
    y = rng.integers(0, 10, 7)
    logits = lstm.forward_logits(wts, x, parse_mode("fp32"))
    correct, digest, _ = fp32_order.evaluate(wts, x, y, "fixed", batch_size=3)
    want = hashlib.sha256()
    for s in range(0, 7, 3):
        want.update(logits[s:s + 3].tobytes())
    assert digest == want.hexdigest()
    assert correct == int((lstm.predictions(logits) == y).sum())
    # One batch: BLAS bits may depend on the batch's shape.
    blas_correct, blas_digest, _ = fp32_order.evaluate(wts, x, y, "blas", batch_size=7)
    blas = lstm.forward_logits(wts, x, fp32_order.Float32Cell("blas"))  # type: ignore[arg-type]
    assert blas_correct == int((lstm.predictions(blas) == y).sum())
    assert blas_digest == hashlib.sha256(blas.tobytes()).hexdigest()
