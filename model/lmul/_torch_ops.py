"""Autograd functions: the MAC array's products on tensors, straight-through exact gradients.

Forward passes run the fast CPU kernels of :func:`lmul.matmul` / :func:`lmul.elementwise_product`
and return exactly their bits; backward passes return the gradient of the *exact* float32 product
(as if the operation were ``F.linear`` / ``a * b`` / ``a @ b``), evaluated at the same operands.
"""

from __future__ import annotations

import numpy as np
import torch

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


class _BmmFn(torch.autograd.Function):
    """Batched ``a [G, M, K] . b [G, K, N]`` through the kernel; straight-through gradients."""

    @staticmethod
    def forward(ctx, a, b, cfg, multiplier, rounding):  # type: ignore[override]
        ctx.save_for_backward(a, b)
        an, bn = _np(a), _np(b)
        out = np.empty((an.shape[0], an.shape[1], bn.shape[2]), dtype=np.float32)
        for i in range(an.shape[0]):
            out[i] = matmul(an[i], bn[i], None, cfg, rounding, multiplier=multiplier)
        return torch.from_numpy(out)

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        a, b = ctx.saved_tensors
        grad_a = grad_out @ b.transpose(1, 2) if ctx.needs_input_grad[0] else None
        grad_b = a.transpose(1, 2) @ grad_out if ctx.needs_input_grad[1] else None
        return grad_a, grad_b, None, None, None


def lmul_bmm(a: torch.Tensor, b: torch.Tensor, cfg: LMulConfig | None = None,
             multiplier: str = "lmul", rounding: str = "rne") -> torch.Tensor:
    """Batched matrix product ``a @ b`` with the MAC array's arithmetic, one tile per batch entry.

    Each ``out[g] = lmul.matmul(a[g], b[g])`` (no bias: accumulators start at +0.0, ``k`` in
    order, binary32 sums); the gradient is that of ``a @ b`` (straight-through).

    Args:
        a: float32 CPU tensor ``[G, M, K]``; b: float32 CPU tensor ``[G, K, N]``.
        cfg, multiplier, rounding: as :func:`lmul_linear`.

    Returns:
        float32 tensor ``[G, M, N]``.

    Raises:
        TypeError / ValueError: as :func:`lmul_linear`; shapes that do not chain.
    """
    cfg = LMulConfig() if cfg is None else cfg
    _check_options(cfg, multiplier, rounding)
    _check_tensor(a, "a")
    _check_tensor(b, "b")
    if a.dim() != 3 or b.dim() != 3 or a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1]:
        raise ValueError(f"lmul_bmm needs a [G, M, K] and b [G, K, N], got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    return _BmmFn.apply(a, b, cfg, multiplier, rounding)


def _sigmoid_np(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp(-x) -> inf gives the correct limit 0
        return (1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(np.float32)


def _tanh_np(x: np.ndarray) -> np.ndarray:
    return np.tanh(x.astype(np.float64)).astype(np.float32)


class _SigmoidFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):  # type: ignore[override]
        y = torch.from_numpy(_sigmoid_np(_np(x)))
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        (y,) = ctx.saved_tensors
        return grad_out * (1.0 - y) * y


class _TanhFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):  # type: ignore[override]
        y = torch.from_numpy(_tanh_np(_np(x)))
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        (y,) = ctx.saved_tensors
        return grad_out * (1.0 - y * y)


def sigmoid32(x: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Logistic function of float32 values, computed in float64 and rounded once to float32.

    The value of an element does not depend on its position in the array (no SIMD tail effects),
    so results are reproducible. A numpy array gives a numpy array; a CPU tensor gives a tensor
    whose gradient is ``g * y * (1 - y)`` (torch's sigmoid backward, at this output ``y``).
    """
    if isinstance(x, torch.Tensor):
        return _SigmoidFn.apply(_check_tensor(x, "x"))
    return _sigmoid_np(np.asarray(x))


def tanh32(x: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """tanh of float32 values, computed in float64 and rounded once to float32.

    As :func:`sigmoid32`; the tensor gradient is ``g * (1 - y**2)``.
    """
    if isinstance(x, torch.Tensor):
        return _TanhFn.apply(_check_tensor(x, "x"))
    return _tanh_np(np.asarray(x))
