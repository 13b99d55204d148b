"""A converted ``nn.LSTM`` (``lmul.torch.convert``) is the experiments' explicit cell, bit for bit.

The experiments' classifier is converted whole (LSTM and head) and run as a torch module; the
experiments' ``forward_logits`` runs its explicit cell (``lmul.torch.lstm_cell_step`` on numpy
arrays with the mode's products) on the same weights in the same arithmetic mode. The logits must
have the same bit patterns in every mode that has a multiplier.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lmul
import lmul.torch as lt
from experiments import lstm
from experiments.modes import parse_mode
from experiments.tests.helpers import MULTIPLIER_MODES, spread_model


@pytest.mark.parametrize(("mode", "cfg", "multiplier", "rounding"), MULTIPLIER_MODES)
def test_converted_lstm_is_the_experiments_cell(mode: str, cfg: lmul.LMulConfig,
                                                multiplier: str, rounding: str) -> None:
    model = spread_model(5, hidden=24)
    images = np.random.default_rng(3).integers(0, 256, size=(6, 28, 28), dtype=np.uint8)
    x = lstm.to_sequence(images, "rows")
    want = lstm.forward_logits(lstm.CellWeights.from_model(model), x, parse_mode(mode))
    conv = lt.convert(model, cfg, multiplier=multiplier, rounding=rounding)
    assert {r.name for r in conv.lmul_report.converted} == {"lstm", "fc"}
    with torch.no_grad():
        _, (h, _) = conv.lstm(torch.from_numpy(x))
        got = conv.fc(h[-1]).numpy()
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))
    fp32 = lstm.forward_logits(lstm.CellWeights.from_model(model), x, parse_mode("fp32"))
    assert not np.array_equal(got, fp32)  # the comparison can fail
