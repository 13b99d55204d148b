"""``accumulate`` through ``lmul.torch``: ``lmul_linear``, ``lmul_bmm``, the converted layers and
``convert`` hand an :class:`lmul.Fused` to every matrix product, and their bits are those of
``lmul.matmul_reference`` with it; the default (None) keeps the sequential sums."""

from __future__ import annotations

import numpy as np
import pytest
from lmul_cases import assert_same_bits

import lmul

torch = pytest.importorskip("torch")
nn = torch.nn
import lmul.torch as lt  # noqa: E402  (needs torch)
from lmul import _torch_ops  # noqa: E402  (internals: the kernels the autograd functions call)

FUSED = lmul.Fused(8, 24)


def test_lmul_linear_bits() -> None:
    rng = np.random.default_rng(31)
    x = rng.standard_normal((5, 3, 37)).astype(np.float32)
    w = rng.standard_normal((11, 37)).astype(np.float32)
    b = rng.standard_normal(11).astype(np.float32)
    y = lt.lmul_linear(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b),
                       accumulate=FUSED).numpy()
    want = lmul.matmul_reference(x.reshape(-1, 37), w.T, b, accumulate=FUSED).reshape(5, 3, 11)
    assert_same_bits(y, want)
    # The option matters here: the sequential sums differ somewhere.
    seq = lt.lmul_linear(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)).numpy()
    assert (seq.view(np.uint32) != want.view(np.uint32)).any()


def test_lmul_bmm_bits() -> None:
    rng = np.random.default_rng(32)
    a = rng.standard_normal((3, 4, 19)).astype(np.float32)
    b = rng.standard_normal((3, 19, 6)).astype(np.float32)
    got = lt.lmul_bmm(torch.from_numpy(a), torch.from_numpy(b), accumulate=FUSED).numpy()
    for g in range(3):
        assert_same_bits(got[g], lmul.matmul_reference(a[g], b[g], accumulate=FUSED))


def test_conv2d_bits_through_im2col() -> None:
    """A converted Conv2d with fused accumulation (no autograd: the direct kernels would apply
    without the option) against im2col + the reference."""
    torch.manual_seed(33)
    conv = nn.Conv2d(3, 4, 3, padding=1)
    x = torch.randn(2, 3, 6, 5)
    lconv = lt.convert(conv, accumulate=FUSED)
    with torch.no_grad():
        got = lconv(x).numpy()
    cols = torch.nn.functional.unfold(nn.functional.pad(x, (1, 1, 1, 1)), 3)  # [2, 27, 30]
    rows = cols.transpose(1, 2).reshape(-1, 27).numpy()
    w2d = conv.weight.detach().reshape(4, -1).numpy()
    want = lmul.matmul_reference(rows, w2d.T, conv.bias.detach().numpy(), accumulate=FUSED)
    want = want.reshape(2, 30, 4).transpose(0, 2, 1).reshape(2, 4, 6, 5)
    assert_same_bits(got, np.ascontiguousarray(want))


class Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(4, 6, 3)
        self.lstm = nn.LSTM(6, 5, batch_first=True)
        self.gru = nn.GRU(5, 5)
        self.cell = nn.RNNCell(5, 5)
        self.attn = nn.MultiheadAttention(5, 1)
        self.fc = nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x).transpose(1, 2)  # [B, L, 6]
        y, _ = self.lstm(y)
        y, _ = self.gru(y.transpose(0, 1))  # [L, B, 5]
        y, _ = self.attn(y, y, y)
        h = self.cell(y[-1])
        return self.fc(h)


@pytest.mark.parametrize("accumulate", [None, FUSED], ids=["sequential", "fused"])
def test_every_layer_passes_the_option(accumulate: lmul.Fused | None,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Every matrix product the converted model runs gets ``accumulate``."""
    seen: list[object] = []
    honest_mm, honest_prep = _torch_ops.matmul, _torch_ops.matmul_prepared

    def spy_mm(*args: object, accumulate: object = None, **kw: object) -> np.ndarray:
        seen.append(accumulate)
        return honest_mm(*args, accumulate=accumulate, **kw)

    def spy_prep(a: object, prepared: object, bias: object = None,
                 accumulate: object = None) -> np.ndarray:
        seen.append(accumulate)
        return honest_prep(a, prepared, bias, accumulate)

    monkeypatch.setattr(_torch_ops, "matmul", spy_mm)
    monkeypatch.setattr(_torch_ops, "matmul_prepared", spy_prep)
    torch.manual_seed(34)
    model = Model()
    lm = lt.convert(model, accumulate=accumulate)
    x = torch.randn(2, 4, 7, requires_grad=True)  # autograd: the conv takes im2col + matmul
    out = lm(x)
    out.sum().backward()
    assert len(seen) >= 8 and all(s == accumulate for s in seen), seen
    if accumulate is not None:
        assert "accumulate=Fused(8, 24)" in repr(lm.fc)
        assert "fused accumulation k=8 align_bits=24" in str(lm.lmul_report)
    else:
        assert "accumulate" not in repr(lm.fc)


def test_fused_model_differs_from_sequential() -> None:
    torch.manual_seed(35)
    model = Model()
    x = torch.randn(2, 4, 7)
    with torch.no_grad():
        seq = lt.convert(model)(x).numpy()
        fused = lt.convert(model, accumulate=lmul.Fused(4, 8))(x).numpy()
    assert (seq.view(np.uint32) != fused.view(np.uint32)).any()


def test_bad_accumulate_is_refused() -> None:
    with pytest.raises(TypeError, match=r"lmul\.Fused"):
        lt.convert(nn.Linear(2, 2), accumulate=(8, 24))
    with pytest.raises(TypeError, match=r"lmul\.Fused"):
        lt.LMulLinear(2, 2, accumulate="fused")
    with pytest.raises(TypeError, match=r"lmul\.Fused"):
        lt.lmul_linear(torch.ones(1, 2), torch.ones(2, 2), accumulate=8)
