"""PyTorch integration: L-Mul linear layers and elementwise products, straight-through gradients.

The forward passes run the fast CPU kernels of :func:`lmul.matmul` and return exactly the bits of
:func:`lmul.matmul` / :func:`lmul.lmul` (the MAC array's arithmetic). The backward passes are
straight-through: they return the gradient of the *exact* float32 product (as if the layer were
``torch.nn.functional.linear`` / ``a * b``), so a model can be trained with L-Mul in the forward
pass while its gradients stay those of ordinary multiplication.

Only CPU float32 tensors are accepted (the kernels are CPU kernels; a GPU tensor raises a clear
error rather than being copied behind the caller's back).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ._formats import LMulConfig
from ._matmul import elementwise_product, matmul
from ._reference import MULTIPLIERS

_ROUNDINGS = ("rne", "truncate")


def _check_tensor(t: object, name: str) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dtype != torch.float32:
        raise TypeError(f"{name} must be float32, got {t.dtype}")
    if t.device.type != "cpu":
        raise ValueError(f"{name} is on {t.device}; the L-Mul kernels run on CPU tensors only "
                         "(move it with .cpu())")
    return t


def _check_options(cfg: LMulConfig, multiplier: str, rounding: str) -> None:
    if not isinstance(cfg, LMulConfig):
        raise TypeError(f"cfg must be an lmul.LMulConfig, got {type(cfg).__name__}")
    if multiplier not in MULTIPLIERS:
        raise ValueError(f"multiplier must be one of {MULTIPLIERS}, got {multiplier!r}")
    if rounding not in _ROUNDINGS:
        raise ValueError(f"rounding must be one of {_ROUNDINGS}, got {rounding!r}")


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


class _LinearFn(torch.autograd.Function):
    """``x2d [B, in] . W^T + b`` through the kernel; straight-through exact gradients."""

    @staticmethod
    def forward(ctx, x2d, weight, bias, cfg, multiplier, rounding):  # type: ignore[override]
        ctx.save_for_backward(x2d, weight)
        ctx.has_bias = bias is not None
        out = matmul(_np(x2d), np.ascontiguousarray(_np(weight).T),
                     None if bias is None else _np(bias), cfg, rounding, multiplier=multiplier)
        return torch.from_numpy(out)

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        x2d, weight = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = grad_out @ weight
        if ctx.needs_input_grad[1]:
            grad_w = grad_out.t() @ x2d
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_out.sum(0)
        return grad_x, grad_w, grad_b, None, None, None


def lmul_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                cfg: LMulConfig | None = None, multiplier: str = "lmul",
                rounding: str = "rne") -> torch.Tensor:
    """``y = x . W^T + b`` with the MAC array's arithmetic (bits of ``lmul.matmul(x, W.T, b)``).

    Args:
        x: float32 CPU tensor ``[*, in_features]`` (any number of leading dimensions, possibly 0
            rows; non-contiguous is fine).
        weight: float32 CPU tensor ``[out_features, in_features]``.
        bias: float32 CPU tensor ``[out_features]`` or None.
        cfg: L-Mul configuration (default BF16, paper offset).
        multiplier: ``"lmul"``, ``"exact"`` (IEEE product rounded to the format) or ``"seed"``.
        rounding: how x and W are rounded to the format (``"rne"`` or ``"truncate"``).

    Returns:
        float32 tensor ``[*, out_features]``. Its gradient is the straight-through gradient of
        ``F.linear``: ``dx = g . W``, ``dW = g^T . x``, ``db = sum g``.

    Raises:
        TypeError: a non-tensor or non-float32 operand, or a bad cfg.
        ValueError: a non-CPU tensor, mismatched shapes, unknown multiplier or rounding.
    """
    cfg = LMulConfig() if cfg is None else cfg
    _check_options(cfg, multiplier, rounding)
    _check_tensor(x, "x")
    _check_tensor(weight, "weight")
    if weight.dim() != 2:
        raise ValueError(f"weight must be [out_features, in_features], got shape "
                         f"{tuple(weight.shape)}")
    if x.dim() < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"x's last dimension must be in_features={weight.shape[1]}, got shape "
                         f"{tuple(x.shape)}")
    if bias is not None:
        _check_tensor(bias, "bias")
        if tuple(bias.shape) != (weight.shape[0],):
            raise ValueError(f"bias must have shape ({weight.shape[0]},), got "
                             f"{tuple(bias.shape)}")
    lead = x.shape[:-1]
    y2d = _LinearFn.apply(x.reshape(-1, weight.shape[1]), weight, bias, cfg, multiplier,
                          rounding)
    return y2d.reshape(*lead, weight.shape[0])


class LMulLinear(nn.Linear):
    """Drop-in ``nn.Linear`` whose forward pass uses the L-Mul MAC array's arithmetic.

    Same parameters, initialisation and state dict as ``nn.Linear`` (so trained float32 weights
    load directly); forward is :func:`lmul_linear`, backward the straight-through gradient of
    the exact product.

    Args:
        in_features, out_features, bias: as ``nn.Linear``.
        cfg: L-Mul configuration (default BF16, paper offset).
        multiplier: ``"lmul"``, ``"exact"`` or ``"seed"``.
        rounding: ``"rne"`` or ``"truncate"``.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 cfg: LMulConfig | None = None, multiplier: str = "lmul",
                 rounding: str = "rne") -> None:
        cfg = LMulConfig() if cfg is None else cfg
        _check_options(cfg, multiplier, rounding)
        super().__init__(in_features, out_features, bias=bias, dtype=torch.float32)
        self.cfg = cfg
        self.multiplier = multiplier
        self.rounding = rounding

    @classmethod
    def from_linear(cls, linear: nn.Linear, cfg: LMulConfig | None = None,
                    multiplier: str = "lmul", rounding: str = "rne") -> LMulLinear:
        """An LMulLinear sharing nothing with ``linear`` but a copy of its weights."""
        layer = cls(linear.in_features, linear.out_features, linear.bias is not None, cfg,
                    multiplier, rounding)
        layer.load_state_dict(linear.state_dict())
        return layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return lmul_linear(x, self.weight, self.bias, self.cfg, self.multiplier, self.rounding)

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, cfg={self.cfg.describe()}, "
                f"multiplier={self.multiplier}, rounding={self.rounding}")


def _sum_to(grad: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Sum a broadcast gradient back to an operand's shape."""
    if grad.shape == shape:
        return grad
    extra = grad.dim() - len(shape)
    if extra:
        grad = grad.sum(dim=tuple(range(extra)))
    dims = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if dims:
        grad = grad.sum(dim=dims, keepdim=True)
    return grad.reshape(shape)


class _MulFn(torch.autograd.Function):
    """Elementwise product through the kernel; straight-through exact gradients."""

    @staticmethod
    def forward(ctx, a, b, cfg, multiplier, rounding):  # type: ignore[override]
        ctx.save_for_backward(a, b)
        out = elementwise_product(_np(a), _np(b), cfg, rounding, multiplier)
        # np.ascontiguousarray would turn a 0-d result into shape (1,).
        return torch.from_numpy(out if out.flags.c_contiguous else out.copy(order="C"))

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        a, b = ctx.saved_tensors
        grad_a = _sum_to(grad_out * b, a.shape) if ctx.needs_input_grad[0] else None
        grad_b = _sum_to(grad_out * a, b.shape) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b, None, None, None


def lmul_mul(a: torch.Tensor, b: torch.Tensor, cfg: LMulConfig | None = None,
             multiplier: str = "lmul", rounding: str = "rne") -> torch.Tensor:
    """Elementwise product with the L-Mul unit (or ``"exact"`` / ``"seed"``), broadcasting.

    Forward bits equal :func:`lmul.lmul` (``"exact"``: :func:`lmul.exact_mul`, ``"seed"``:
    :func:`lmul.seed_lmul`); the gradient is that of ``a * b`` (straight-through), summed back
    over broadcast dimensions. Useful for an LSTM cell's ``f*c``, ``i*g``, ``o*tanh(c)``.

    Raises:
        TypeError / ValueError: as :func:`lmul_linear`; shapes that do not broadcast.
    """
    cfg = LMulConfig() if cfg is None else cfg
    _check_options(cfg, multiplier, rounding)
    _check_tensor(a, "a")
    _check_tensor(b, "b")
    try:
        torch.broadcast_shapes(a.shape, b.shape)
    except RuntimeError:
        raise ValueError(f"shapes {tuple(a.shape)} and {tuple(b.shape)} do not broadcast") from None
    return _MulFn.apply(a, b, cfg, multiplier, rounding)
