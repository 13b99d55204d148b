"""Explicit LSTM cell vs torch, bit-exact arithmetic modes vs a slow step-by-step reference,
reproducible and resumable training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import lmul
from experiments import lstm
from experiments.modes import parse_mode
from experiments.tests.helpers import MULTIPLIER_MODES, spread_model


def _images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 28, 28), dtype=np.uint8)


@pytest.mark.parametrize("seq", ["rows", "pixels"])
def test_fp32_cell_matches_torch_lstm(seq: str) -> None:
    model = spread_model(0, input_size=28 if seq == "rows" else 1)
    x = lstm.to_sequence(_images(16, 1), seq)
    if seq == "pixels":
        x = x[:, 300:400]  # 100 steps of a pixel sequence keeps the test fast
    with torch.no_grad():
        _, (h, _) = model.lstm(torch.from_numpy(x))
        want = model.fc(h[-1]).numpy()
    got = lstm.forward_logits(lstm.CellWeights.from_model(model), x, parse_mode("fp32"))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-5)
    assert np.array_equal(lstm.predict(lstm.CellWeights.from_model(model), x, parse_mode("fp32"),
                                       batch_size=5, progress=False), want.argmax(axis=1))


def _reference_logits(model: lstm.LSTMClassifier, x: np.ndarray, cfg: lmul.LMulConfig,
                      rounding: str, multiplier: str, fp32_head: bool = False) -> np.ndarray:
    """Slow reference written from the spec: lmul.matmul_reference for the gate and output
    products, lmul's elementwise multipliers for f*c, i*g, o*tanh(c), numpy float32 sums,
    sigmoid/tanh in float64 rounded to float32. Weights taken from torch directly."""
    sd = {k: v.numpy().astype(np.float32) for k, v in model.state_dict().items()}
    w = np.ascontiguousarray(np.concatenate([sd["lstm.weight_ih_l0"],
                                             sd["lstm.weight_hh_l0"]], axis=1).T)
    b = sd["lstm.bias_ih_l0"] + sd["lstm.bias_hh_l0"]
    hs = sd["lstm.weight_hh_l0"].shape[1]

    def mul(p: np.ndarray, q: np.ndarray) -> np.ndarray:
        if multiplier == "lmul":
            return np.asarray(lmul.lmul(p, q, cfg, rounding))
        if multiplier == "exact":
            return np.asarray(lmul.exact_mul(p, q, cfg, rounding))
        return np.asarray(lmul.seed_lmul(p, q))

    def sig(v: np.ndarray) -> np.ndarray:
        return (1.0 / (1.0 + np.exp(-v.astype(np.float64)))).astype(np.float32)

    h = np.zeros((x.shape[0], hs), np.float32)
    c = np.zeros((x.shape[0], hs), np.float32)
    for t in range(x.shape[1]):
        z = np.concatenate([x[:, t, :], h], axis=1)
        gates = lmul.matmul_reference(z, w, b, cfg=cfg, rounding=rounding, multiplier=multiplier)
        i, f = sig(gates[:, :hs]), sig(gates[:, hs:2 * hs])
        g = np.tanh(gates[:, 2 * hs:3 * hs].astype(np.float64)).astype(np.float32)
        o = sig(gates[:, 3 * hs:])
        c = mul(f, c) + mul(i, g)
        h = mul(o, np.tanh(c.astype(np.float64)).astype(np.float32))
    if fp32_head:  # the array's order with the IEEE binary32 multiplier (lmul.matmul_fp32)
        cfg, rounding, multiplier = lmul.LMulConfig(8, 23), "rne", "exact"
    return lmul.matmul_reference(h, np.ascontiguousarray(sd["fc.weight"].T), sd["fc.bias"],
                                 cfg=cfg, rounding=rounding, multiplier=multiplier)


@pytest.mark.parametrize(("mode", "cfg", "multiplier", "rounding"), [
    *MULTIPLIER_MODES, ("seed:head=fp32", lmul.LMulConfig(), "seed", "rne")])
def test_mode_forward_is_bit_exact_against_reference(mode: str, cfg: lmul.LMulConfig,
                                                     multiplier: str, rounding: str) -> None:
    model = spread_model(7, hidden=32)
    x = lstm.to_sequence(_images(3, 2), "rows")
    fp32_head = mode.endswith("head=fp32")
    want = _reference_logits(model, x, cfg, rounding, multiplier, fp32_head)
    got = lstm.forward_logits(lstm.CellWeights.from_model(model), x, parse_mode(mode))
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))
    # The arithmetic matters: L-Mul logits are not float32 logits.
    fp32 = lstm.forward_logits(lstm.CellWeights.from_model(model), x, parse_mode("fp32"))
    assert not np.array_equal(got, fp32)


def test_fp32_mode_is_the_array_with_an_ieee_multiplier() -> None:
    """The fp32 mode's logits, bit for bit, are the reference cell with the exact multiplier on
    binary32 (E8M23): products rounded to float32, sums in the array's fixed order."""
    model = spread_model(3, hidden=32)
    x = lstm.to_sequence(_images(3, 5), "rows")
    want = _reference_logits(model, x, lmul.LMulConfig(8, 23), "rne", "exact")
    got = lstm.forward_logits(lstm.CellWeights.from_model(model), x, parse_mode("fp32"))
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))


def test_predictions_count_non_finite_rows_as_wrong() -> None:
    logits = np.array([[0.0, 2.0, 1.0], [np.nan, 0.0, 5.0], [1.0, np.inf, 0.0]], np.float32)
    assert lstm.predictions(logits).tolist() == [1, -1, -1]


def test_sequence_modes() -> None:
    imgs = _images(2, 4)
    rows = lstm.to_sequence(imgs, "rows")
    assert rows.shape == (2, 28, 28) and rows.dtype == np.float32
    assert rows[1, 5, 7] == np.float32(imgs[1, 5, 7]) / np.float32(255)
    pixels = lstm.to_sequence(imgs, "pixels")
    assert pixels.shape == (2, 784, 1) and pixels[0, 28 * 5 + 7, 0] == rows[0, 5, 7]
    perm = lstm.to_sequence(imgs, "permuted")
    assert perm.shape == (2, 784, 1)
    assert not np.array_equal(perm, pixels)
    assert np.array_equal(np.sort(perm[:, :, 0], axis=1), np.sort(pixels[:, :, 0], axis=1))
    assert np.array_equal(perm, lstm.to_sequence(imgs, "permuted"))  # fixed permutation
    with pytest.raises(ValueError, match="unknown sequence mode"):
        lstm.to_sequence(imgs, "columns")


def _tiny_task(n: int = 96) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, n)
    x = rng.normal(0, 0.3, (n, 6, 4)).astype(np.float32)
    x[np.arange(n), y, y] += 2.0  # the class is readable from the input
    return x, y


def _state(model: lstm.LSTMClassifier) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def test_training_is_reproducible_and_resumes_identically(tmp_path: Path) -> None:
    x, y = _tiny_task()
    straight, info = lstm.train(x, y, 3, seed=3, epochs=3, progress=False, hidden=16)
    again, _ = lstm.train(x, y, 3, seed=3, epochs=3, progress=False, hidden=16)
    other, _ = lstm.train(x, y, 3, seed=4, epochs=3, progress=False, hidden=16)
    a, b, c = _state(straight), _state(again), _state(other)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], c[k]) for k in a)
    assert info["resumed_from"] == 0 and info["train_loss"] > 0

    lstm.train(x, y, 3, seed=3, epochs=1, ckpt_dir=tmp_path, tag="t", progress=False, hidden=16)
    resumed, info2 = lstm.train(x, y, 3, seed=3, epochs=3, ckpt_dir=tmp_path, tag="t",
                                progress=False, hidden=16)
    assert info2["resumed_from"] == 1
    r = _state(resumed)
    assert all(np.array_equal(a[k], r[k]) for k in a)
    cached, info3 = lstm.train(x, y, 3, seed=3, epochs=3, ckpt_dir=tmp_path, tag="t",
                               progress=False, hidden=16)
    assert info3["resumed_from"] == 3
    assert all(np.array_equal(a[k], v) for k, v in _state(cached).items())


@pytest.mark.parametrize("mode_name", ["lmul", "bf16", "seed", "lmul:e=4,m=3", "fp32"])
def test_forward_logits_equals_per_step_cells(mode_name: str) -> None:
    """forward_logits (gate weights prepared once) gives the bits of chaining cell_step (the
    per-step form, unprepared) and the head."""
    mode = parse_mode(mode_name)
    torch.manual_seed(3)
    wts = lstm.CellWeights.from_model(lstm.LSTMClassifier(6, 4, hidden_size=16))
    x = np.random.default_rng([3, 3]).random((5, 7, 6), dtype=np.float32)
    h = np.zeros((5, 16), np.float32)
    c = np.zeros((5, 16), np.float32)
    for t in range(x.shape[1]):
        h, c = lstm.cell_step(wts, np.ascontiguousarray(x[:, t]), h, c, mode)
    got = lstm.forward_logits(wts, x, mode)
    want = mode.head_matmul(h, wts.fc_w, wts.fc_b)
    assert np.array_equal(np.asarray(got, np.float32).view(np.uint32),
                          np.asarray(want, np.float32).view(np.uint32))
