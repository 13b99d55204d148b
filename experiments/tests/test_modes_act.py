"""The ``act=`` option of the inference modes: the LSTM cell's sigmoid/tanh (exact or a shipped
activation-unit set)."""

from __future__ import annotations

import numpy as np
import pytest

import lmul
from experiments import lstm
from experiments.modes import parse_mode


def test_default_is_exact_and_names_are_canonical() -> None:
    assert parse_mode("lmul").activation == "exact"
    assert parse_mode("lmul:act=exact").name == "lmul"
    m = parse_mode("lmul:offset=7,act=PWL16")
    assert (m.activation, m.name) == ("pwl16", "lmul:offset=7,act=pwl16")
    assert parse_mode(m.name) == m
    f = parse_mode("fp32:act=pwl64")
    assert (f.kind, f.name, f.describe()) == ("fp32", "fp32:act=pwl64",
                                              {"multiplier": "fp32", "activation": "pwl64"})
    assert parse_mode("bf16:act=pwl256").describe()["activation"] == "pwl256"
    assert "activation" not in parse_mode("bf16").describe()


@pytest.mark.parametrize("text, match", [("lmul:act=pwl7", "act must be"),
                                         ("lmul:act=pwl16,act=exact", "twice"),
                                         ("fp32:act=pwl16,offset=3", "fp32 takes no options")])
def test_bad_activation_options(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_mode(text)


def test_activations_are_the_units_bits() -> None:
    x = np.linspace(-20, 20, 10001, dtype=np.float32)
    exact = parse_mode("lmul")
    hw = parse_mode("lmul:act=pwl16")
    assert np.array_equal(exact.sigmoid(x).view(np.uint32), lmul.sigmoid32(x).view(np.uint32))
    assert np.array_equal(exact.tanh(x).view(np.uint32), lmul.tanh32(x).view(np.uint32))
    for func, fn in (("sigmoid", hw.sigmoid), ("tanh", hw.tanh)):
        want = lmul.act_hw_bits(x.view(np.uint32), lmul.act_config("pwl16", func))
        assert np.array_equal(fn(x).view(np.uint32), want)
    assert not np.array_equal(hw.tanh(x), exact.tanh(x))


def test_cell_step_uses_the_modes_activations() -> None:
    rng = np.random.default_rng(0)
    i_size, h_size, b = 5, 4, 3
    wts = lstm.CellWeights(rng.standard_normal((i_size + h_size, 4 * h_size)).astype(np.float32),
                           rng.standard_normal(4 * h_size).astype(np.float32),
                           rng.standard_normal((h_size, 2)).astype(np.float32),
                           np.zeros(2, np.float32))
    x = rng.standard_normal((b, i_size)).astype(np.float32)
    h = rng.standard_normal((b, h_size)).astype(np.float32)
    c = rng.standard_normal((b, h_size)).astype(np.float32)
    h_ex, _ = lstm.cell_step(wts, x, h, c, parse_mode("fp32"))
    h_hw, c_hw = lstm.cell_step(wts, x, h, c, parse_mode("fp32:act=pwl16"))
    # by hand with the unit's functions (fp32 products and sums)
    g = np.concatenate([x, h], axis=1) @ wts.w + wts.b
    sg = lambda v: lmul.act_hw(v, lmul.act_config("pwl16", "sigmoid"))  # noqa: E731
    th = lambda v: lmul.act_hw(v, lmul.act_config("pwl16", "tanh"))  # noqa: E731
    c_want = sg(g[:, 4:8]) * c + sg(g[:, :4]) * th(g[:, 8:12])
    h_want = sg(g[:, 12:]) * th(c_want)
    np.testing.assert_allclose(c_hw, c_want, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(h_hw, h_want, rtol=1e-6, atol=1e-6)
    assert not np.allclose(h_hw, h_ex, rtol=0, atol=1e-5)
