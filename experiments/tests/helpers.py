"""Fixtures shared by the experiments' tests: a tiny learnable dataset, an LSTM with spread
weights, and the arithmetic modes that have a multiplier."""

from __future__ import annotations

import numpy as np
import torch

import lmul
from experiments import data, lstm


def synthetic_images(name: str = "mnist", n_train: int = 256, n_test: int = 40,
                     seed: int = 0) -> data.ImageData:
    """Tiny 28x28 dataset whose class k lights up row 3k: learnable in one short epoch (uint8
    images, 10 classes, drawn from ``np.random.default_rng(seed)``)."""
    rng = np.random.default_rng(seed)

    def make(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 10, n)
        x = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        x[np.arange(n), 3 * y, :] = 250
        return x, y.astype(np.int64)

    (trx, tr_y), (tex, tey) = make(n_train), make(n_test)
    return data.ImageData(name, 10, trx, tr_y, tex, tey)


def spread_model(seed: int, input_size: int = 28, n_classes: int = 10, hidden: int = 128
                 ) -> lstm.LSTMClassifier:
    """A seeded classifier (eval mode) whose weights are scaled by 3, so that the gates leave
    sigmoid's linear region and the arithmetic's rounding shows."""
    torch.manual_seed(seed)
    model = lstm.LSTMClassifier(input_size, n_classes, hidden)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)
    return model.eval()


#: (mode string, unit configuration, multiplier, rounding) of the modes with a multiplier.
MULTIPLIER_MODES = [
    ("lmul", lmul.LMulConfig(), "lmul", "rne"),
    ("lmul-mitchell", lmul.LMulConfig(offset=0), "lmul", "rne"),
    ("lmul:e=4,m=3,rounding=truncate", lmul.LMulConfig(4, 3), "lmul", "truncate"),
    ("bf16", lmul.LMulConfig(), "exact", "rne"),
    ("seed", lmul.LMulConfig(), "seed", "rne"),
]
