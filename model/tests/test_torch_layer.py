"""``lmul.torch``: forward bits equal the kernels, gradients equal the exact product's.

Forward references: ``lmul.matmul_reference`` (numpy, independent of the kernels) and the
elementwise numpy models. Backward references: torch autograd through ``F.linear`` and ``a * b``
on the same float32 operands. ``COCOTB_RANDOM_SEED`` (default 1) seeds the operands.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from lmul_cases import MULTIPLIERS  # noqa: E402

import lmul  # noqa: E402
from lmul import LMulConfig  # noqa: E402
from lmul._core import exact_mul_numpy, lmul_numpy, seed_lmul_numpy  # noqa: E402
from lmul.torch import LMulLinear, lmul_linear, lmul_mul  # noqa: E402

ELEMENTWISE_REF = {
    "lmul": lambda a, b, cfg: lmul_numpy(a, b, cfg, "rne"),
    "exact": lambda a, b, cfg: exact_mul_numpy(a, b, cfg, "rne"),
    "seed": lambda a, b, cfg: seed_lmul_numpy(a, b),
}


def bits(t: torch.Tensor | np.ndarray) -> np.ndarray:
    arr = t.detach().numpy() if isinstance(t, torch.Tensor) else t
    return np.ascontiguousarray(arr, dtype=np.float32).view(np.uint32)


@pytest.fixture()
def gen(random_seed: int) -> torch.Generator:
    print(f"\ntest_torch_layer: COCOTB_RANDOM_SEED={random_seed}")
    return torch.Generator().manual_seed(random_seed)


@pytest.mark.parametrize("multiplier", MULTIPLIERS)
def test_linear_forward_equals_reference(gen: torch.Generator, multiplier: str) -> None:
    cfg = LMulConfig()
    x = torch.randn(2, 5, 19, generator=gen)
    w = torch.randn(11, 19, generator=gen) * 0.3
    b = torch.randn(11, generator=gen)
    y = lmul_linear(x, w, b, cfg, multiplier)
    assert y.shape == (2, 5, 11) and y.dtype == torch.float32
    want = lmul.matmul_reference(x.reshape(10, 19).numpy(), w.numpy().T, b.numpy(), cfg,
                                 multiplier=multiplier)
    assert np.array_equal(bits(y.reshape(10, 11)), bits(want))
    # It is not the float32 product (the test could fail).
    assert not np.array_equal(bits(y), bits(F.linear(x, w, b)))
    # No bias; non-contiguous x; an empty batch.
    xt = torch.randn(19, 7, generator=gen).t()
    assert not xt.is_contiguous()
    want = lmul.matmul_reference(xt.contiguous().numpy(), w.numpy().T, None, cfg,
                                 multiplier=multiplier)
    assert np.array_equal(bits(lmul_linear(xt, w, None, cfg, multiplier)), bits(want))
    assert lmul_linear(torch.zeros(0, 19), w, b, cfg, multiplier).shape == (0, 11)


@pytest.mark.parametrize("multiplier", MULTIPLIERS)
def test_linear_backward_is_exact_products_gradient(gen: torch.Generator,
                                                    multiplier: str) -> None:
    x = torch.randn(3, 4, 13, generator=gen)
    w = torch.randn(6, 13, generator=gen)
    b = torch.randn(6, generator=gen)
    g = torch.randn(3, 4, 6, generator=gen)
    leaves = [t.clone().requires_grad_(True) for t in (x, w, b)]
    (lmul_linear(*leaves, LMulConfig(4, 3), multiplier) * g).sum().backward()
    refs = [t.clone().requires_grad_(True) for t in (x, w, b)]
    (F.linear(*refs) * g).sum().backward()
    for got, want in zip(leaves, refs, strict=True):
        torch.testing.assert_close(got.grad, want.grad, rtol=1e-6, atol=1e-6)
    # Only some inputs requiring grad.
    wl = w.clone().requires_grad_(True)
    lmul_linear(x, wl, None).sum().backward()
    wr = w.clone().requires_grad_(True)
    F.linear(x, wr).sum().backward()
    torch.testing.assert_close(wl.grad, wr.grad, rtol=1e-6, atol=1e-6)


def test_lmul_linear_module(gen: torch.Generator) -> None:
    ref = torch.nn.Linear(9, 4)
    cfg = LMulConfig(offset=0)
    layer = LMulLinear.from_linear(ref, cfg, multiplier="lmul")
    assert torch.equal(layer.weight, ref.weight) and layer.weight is not ref.weight
    x = torch.randn(8, 9, generator=gen)
    y = layer(x)
    want = lmul.matmul(x.numpy(), ref.weight.detach().numpy().T, ref.bias.detach().numpy(), cfg)
    assert np.array_equal(bits(y), bits(want))
    assert "offset=0" in repr(layer)
    y.sum().backward()
    assert layer.weight.grad is not None and layer.bias.grad is not None
    nobias = LMulLinear(9, 4, bias=False)
    assert nobias.bias is None and nobias(x).shape == (8, 4)
    # The state dict is nn.Linear's.
    assert set(layer.state_dict()) == set(ref.state_dict())


@pytest.mark.parametrize("multiplier", MULTIPLIERS)
def test_lmul_mul_forward_and_backward(gen: torch.Generator, multiplier: str) -> None:
    cfg = LMulConfig()
    a = torch.randn(4, 1, 6, generator=gen)
    b = torch.randn(5, 1, generator=gen)
    y = lmul_mul(a, b, cfg, multiplier)
    assert y.shape == (4, 5, 6)
    want = ELEMENTWISE_REF[multiplier](a.numpy(), b.numpy(), cfg)
    assert np.array_equal(bits(y), bits(want))
    al, bl = a.clone().requires_grad_(True), b.clone().requires_grad_(True)
    ar, br = a.clone().requires_grad_(True), b.clone().requires_grad_(True)
    g = torch.randn(4, 5, 6, generator=gen)
    (lmul_mul(al, bl, cfg, multiplier) * g).sum().backward()
    (ar * br * g).sum().backward()
    torch.testing.assert_close(al.grad, ar.grad, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(bl.grad, br.grad, rtol=1e-6, atol=1e-6)
    # It agrees with lmul.lmul on tensors too.
    if multiplier == "lmul":
        assert np.array_equal(bits(y), bits(lmul.lmul(a, b, cfg)))


def test_bad_input() -> None:
    w = torch.randn(3, 4)
    x = torch.randn(2, 4)
    with pytest.raises(TypeError, match="float32"):
        lmul_linear(x.double(), w)
    with pytest.raises(TypeError, match="float32"):
        lmul_linear(x, w, torch.zeros(3, dtype=torch.float16))
    with pytest.raises(TypeError, match="Tensor"):
        lmul_linear(x.numpy(), w)
    with pytest.raises(ValueError, match="CPU"):
        lmul_linear(torch.empty(2, 4, device="meta"), w)
    with pytest.raises(ValueError, match="in_features"):
        lmul_linear(torch.randn(2, 5), w)
    with pytest.raises(ValueError, match="bias"):
        lmul_linear(x, w, torch.zeros(4))
    with pytest.raises(ValueError, match="multiplier"):
        lmul_linear(x, w, multiplier="fast")
    with pytest.raises(ValueError, match="rounding"):
        LMulLinear(4, 3, rounding="up")
    with pytest.raises(TypeError, match="LMulConfig"):
        lmul_mul(x, x, cfg="bf16")
    with pytest.raises(ValueError, match="broadcast"):
        lmul_mul(x, torch.randn(3))
    with pytest.raises(TypeError, match="float32"):
        lmul_mul(x, x.to(torch.bfloat16))
