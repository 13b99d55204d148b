"""Autograd functions: the MAC array's products on tensors, straight-through exact gradients.

Forward passes run the fast CPU kernels of :func:`lmul.matmul` / :func:`lmul.elementwise_product`
and return exactly their bits; backward passes return the gradient of the *exact* float32 product
(as if the operation were ``F.linear`` / ``a * b`` / ``a @ b``), evaluated at the same operands.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from ._activations import sigmoid32 as _sigmoid_np
from ._activations import tanh32 as _tanh_np
from ._dot import Fused
from ._formats import LMulConfig
from ._matmul import (
    PreparedB,
    elementwise_product,
    fast_path_enabled,
    matmul,
    matmul_prepared,
    prepare_b,
)
from ._reference import MULTIPLIERS, check_accumulate

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


def _check_options(cfg: LMulConfig, multiplier: str, rounding: str,
                   accumulate: Fused | None = None) -> None:
    check_accumulate(accumulate)
    if not isinstance(cfg, LMulConfig):
        raise TypeError(f"cfg must be an lmul.LMulConfig, got {type(cfg).__name__}")
    if multiplier not in MULTIPLIERS:
        raise ValueError(f"multiplier must be one of {MULTIPLIERS}, got {multiplier!r}")
    if rounding not in _ROUNDINGS:
        raise ValueError(f"rounding must be one of {_ROUNDINGS}, got {rounding!r}")


def _check_pair(a: object, b: object, cfg: LMulConfig | None, multiplier: str,
                rounding: str) -> LMulConfig:
    """The configuration (``LMulConfig()`` for None) after checking it, the options and the two
    operand tensors ``a`` and ``b``."""
    cfg = LMulConfig() if cfg is None else cfg
    _check_options(cfg, multiplier, rounding)
    _check_tensor(a, "a")
    _check_tensor(b, "b")
    return cfg


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


class _LinearFn(torch.autograd.Function):
    """``x2d [B, in] . W^T + b`` through the kernel; straight-through exact gradients.

    ``prepared`` (or None) is ``weight^T`` already prepared by :func:`prepare_weight` with the
    same options: the forward then skips the per-call preparation; backward always uses the
    ``weight`` tensor itself.
    """

    @staticmethod
    def forward(ctx, x2d, weight, bias, cfg, multiplier, rounding,  # type: ignore[override]
                prepared=None, accumulate=None):
        ctx.save_for_backward(x2d, weight)
        ctx.has_bias = bias is not None
        c = None if bias is None else _np(bias)
        if prepared is not None:
            return torch.from_numpy(matmul_prepared(_np(x2d), prepared, c, accumulate))
        out = matmul(_np(x2d), np.ascontiguousarray(_np(weight).T), c, cfg, rounding,
                     multiplier=multiplier, accumulate=accumulate)
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
        return grad_x, grad_w, grad_b, None, None, None, None, None


def lmul_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                cfg: LMulConfig | None = None, multiplier: str = "lmul",
                rounding: str = "rne", accumulate: Fused | None = None) -> torch.Tensor:
    """``y = x . W^T + b`` with the MAC array's arithmetic (bits of ``lmul.matmul(x, W.T, b)``).

    Args:
        x: float32 CPU tensor ``[*, in_features]`` (any number of leading dimensions, possibly 0
            rows; non-contiguous is fine).
        weight: float32 CPU tensor ``[out_features, in_features]``.
        bias: float32 CPU tensor ``[out_features]`` or None.
        cfg: L-Mul configuration (default BF16, paper offset).
        multiplier: ``"lmul"``, ``"exact"`` (IEEE product rounded to the format) or ``"seed"``.
        rounding: how x and W are rounded to the format (``"rne"`` or ``"truncate"``).
        accumulate: None (sequential binary32 sums) or an :class:`lmul.Fused` (the fused
            processing element: steps of ``k`` products, one rounding each), as
            :func:`lmul.matmul`.

    Returns:
        float32 tensor ``[*, out_features]``. Its gradient is the straight-through gradient of
        ``F.linear``: ``dx = g . W``, ``dW = g^T . x``, ``db = sum g``.

    Raises:
        TypeError: a non-tensor or non-float32 operand, a bad cfg or accumulate.
        ValueError: a non-CPU tensor, mismatched shapes, unknown multiplier or rounding.
    """
    cfg = LMulConfig() if cfg is None else cfg
    _check_options(cfg, multiplier, rounding, accumulate)
    _check_weight(weight)
    return _linear(x, weight, bias, cfg, multiplier, rounding, None, accumulate)


def _check_weight(weight: torch.Tensor) -> None:
    _check_tensor(weight, "weight")
    if weight.dim() != 2:
        raise ValueError(f"weight must be [out_features, in_features], got shape "
                         f"{tuple(weight.shape)}")


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, cfg: LMulConfig,
            multiplier: str, rounding: str, prepared: PreparedB | None,
            accumulate: Fused | None = None) -> torch.Tensor:
    """:func:`lmul_linear` after the options and the weight were checked: checks x and bias,
    applies :class:`_LinearFn` over the leading dimensions."""
    _check_tensor(x, "x")
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
                          rounding, prepared, accumulate)
    return y2d.reshape(*lead, weight.shape[0])


class PreparedWeight:
    """A linear weight ``[out_features, in_features]`` with its MAC-array operand prepared once.

    For a recurrent layer's per-step products (the same weight every step): build one per
    forward pass with :func:`prepare_weight`, pass it to :func:`linear_prepared` at each step.
    ``prepared`` is a snapshot of ``weight``'s values when it was built
    (:class:`lmul._matmul.PreparedB`); after an optimizer step, prepare again. ``weight`` (the
    tensor itself) is what backward uses. ``accumulate`` (None or an :class:`lmul.Fused`) is
    the products' accumulation, as for :func:`lmul_linear`.
    """

    __slots__ = ("accumulate", "cfg", "multiplier", "prepared", "rounding", "weight")

    def __init__(self, weight: torch.Tensor, prepared: PreparedB, cfg: LMulConfig,
                 multiplier: str, rounding: str, accumulate: Fused | None = None) -> None:
        self.weight, self.prepared = weight, prepared
        self.cfg, self.multiplier, self.rounding = cfg, multiplier, rounding
        self.accumulate = accumulate


def prepare_weight(weight: torch.Tensor, cfg: LMulConfig, multiplier: str,
                   rounding: str, accumulate: Fused | None = None) -> PreparedWeight:
    """``weight`` [out, in] (float32 CPU) prepared for :func:`linear_prepared` with these options.

    Raises:
        TypeError / ValueError: as :func:`lmul_linear` for the weight and the options.
    """
    _check_options(cfg, multiplier, rounding, accumulate)
    _check_weight(weight)
    prepared = prepare_b(np.ascontiguousarray(_np(weight).T), cfg, rounding, multiplier)
    return PreparedWeight(weight, prepared, cfg, multiplier, rounding, accumulate)


def linear_prepared(x: torch.Tensor, weight: PreparedWeight, bias: torch.Tensor | None = None
                    ) -> torch.Tensor:
    """:func:`lmul_linear` with a weight from :func:`prepare_weight`: the same bits and gradients
    as ``lmul_linear(x, weight.weight, bias, weight.cfg, weight.multiplier, weight.rounding,
    weight.accumulate)`` as long as ``weight.weight`` still holds the values it was prepared from.

    Raises:
        TypeError / ValueError: as :func:`lmul_linear` (x, bias).
    """
    if not isinstance(weight, PreparedWeight):
        raise TypeError(f"weight must come from prepare_weight, got {type(weight).__name__}")
    return _linear(x, weight.weight, bias, weight.cfg, weight.multiplier, weight.rounding,
                   weight.prepared, weight.accumulate)


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
    cfg = _check_pair(a, b, cfg, multiplier, rounding)
    if a.shape != b.shape:  # torch.broadcast_shapes costs ~20 us: only when it can fail
        try:
            torch.broadcast_shapes(a.shape, b.shape)
        except RuntimeError:
            raise ValueError(f"shapes {tuple(a.shape)} and {tuple(b.shape)} do not broadcast"
                             ) from None
    return _MulFn.apply(a, b, cfg, multiplier, rounding)


class _BmmFn(torch.autograd.Function):
    """Batched ``a [G, M, K] . b [G, K, N]`` through the kernel; straight-through gradients."""

    @staticmethod
    def forward(ctx, a, b, cfg, multiplier, rounding,  # type: ignore[override]
                accumulate=None):
        ctx.save_for_backward(a, b)
        an, bn = _np(a), _np(b)
        out = np.empty((an.shape[0], an.shape[1], bn.shape[2]), dtype=np.float32)
        for i in range(an.shape[0]):
            out[i] = matmul(an[i], bn[i], None, cfg, rounding, multiplier=multiplier,
                            accumulate=accumulate)
        return torch.from_numpy(out)

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        a, b = ctx.saved_tensors
        grad_a = grad_out @ b.transpose(1, 2) if ctx.needs_input_grad[0] else None
        grad_b = a.transpose(1, 2) @ grad_out if ctx.needs_input_grad[1] else None
        return grad_a, grad_b, None, None, None, None


def lmul_bmm(a: torch.Tensor, b: torch.Tensor, cfg: LMulConfig | None = None,
             multiplier: str = "lmul", rounding: str = "rne",
             accumulate: Fused | None = None) -> torch.Tensor:
    """Batched matrix product ``a @ b`` with the MAC array's arithmetic, one tile per batch entry.

    Each ``out[g] = lmul.matmul(a[g], b[g])`` (no bias: accumulators start at +0.0, ``k`` in
    order, binary32 sums); the gradient is that of ``a @ b`` (straight-through).

    Args:
        a: float32 CPU tensor ``[G, M, K]``; b: float32 CPU tensor ``[G, K, N]``.
        cfg, multiplier, rounding, accumulate: as :func:`lmul_linear`.

    Returns:
        float32 tensor ``[G, M, N]``.

    Raises:
        TypeError / ValueError: as :func:`lmul_linear`; shapes that do not chain.
    """
    cfg = _check_pair(a, b, cfg, multiplier, rounding)
    check_accumulate(accumulate)
    if a.dim() != 3 or b.dim() != 3 or a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1]:
        raise ValueError(f"lmul_bmm needs a [G, M, K] and b [G, K, N], got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    return _BmmFn.apply(a, b, cfg, multiplier, rounding, accumulate)


class _ActivationFn(torch.autograd.Function):
    """``y = fn(x)`` by a numpy float32 function; backward ``grad(grad_out, y)``, at the output."""

    @staticmethod
    def forward(ctx, x, fn, grad):  # type: ignore[override]
        y = torch.from_numpy(fn(_np(x)))
        ctx.save_for_backward(y)
        ctx.grad = grad
        return y

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        (y,) = ctx.saved_tensors
        return ctx.grad(grad_out, y), None, None


def _sigmoid_grad(grad_out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return grad_out * (1.0 - y) * y


def _tanh_grad(grad_out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return grad_out * (1.0 - y * y)


def sigmoid32(x: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Logistic function of float32 values, correctly rounded to float32 (:func:`lmul.sigmoid32`).

    The same bits on every machine, whatever the element's position in the array. A numpy array
    gives a numpy array; a CPU tensor gives a tensor whose gradient is ``g * y * (1 - y)``
    (torch's sigmoid backward, at this output ``y``).
    """
    if isinstance(x, torch.Tensor):
        return _ActivationFn.apply(_check_tensor(x, "x"), _sigmoid_np, _sigmoid_grad)
    return _sigmoid_np(np.asarray(x))


def tanh32(x: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """tanh of float32 values, correctly rounded to float32 (:func:`lmul.tanh32`).

    As :func:`sigmoid32`; the tensor gradient is ``g * (1 - y**2)``.
    """
    if isinstance(x, torch.Tensor):
        return _ActivationFn.apply(_check_tensor(x, "x"), _tanh_np, _tanh_grad)
    return _tanh_np(np.asarray(x))


class _LSTMPointwiseFn(torch.autograd.Function):
    """An LSTM step after its gate product, as one autograd node (see :func:`lstm_pointwise`).

    Forward: the operations of :func:`lmul.torch.lstm_cell_step` one by one, each with the
    function the separate nodes use (:func:`_sigmoid_np`, :func:`_tanh_np`,
    :func:`elementwise_product`, torch's float32 ``+``), so the same bits. Backward: the
    separate nodes' straight-through formulas, same operations in the same order: ``dh * tc``,
    ``dh * o``, ``g * (1 - y * y)``, ``g * (1 - y) * y``, ``dc * c`` ... The gate gradient is
    the four column blocks plus +0.0: autograd sums the four slices' zero-padded gradients, which
    turns a -0.0 into +0.0 and leaves every other value as is; ``+ 0.0`` does exactly that.
    With the numba kernels, backward is one pass of ``_torch_kernels.lstm_pointwise_grad`` (the same
    IEEE operations); otherwise the torch operations written out below.
    """

    @staticmethod
    def forward(ctx, gates, c, cfg, multiplier, rounding):  # type: ignore[override]
        ctx.set_materialize_grads(False)  # an unused h' or c' gives None: no term, as autograd
        hs = c.shape[-1]
        gn = _np(gates)
        i, f = _sigmoid_np(gn[:, :hs]), _sigmoid_np(gn[:, hs:2 * hs])
        g, o = _tanh_np(gn[:, 2 * hs:3 * hs]), _sigmoid_np(gn[:, 3 * hs:])
        cn = _np(c)
        c_new = (torch.from_numpy(elementwise_product(f, cn, cfg, rounding, multiplier))
                 + torch.from_numpy(elementwise_product(i, g, cfg, rounding, multiplier)))
        tc = _tanh_np(c_new.numpy())
        h_new = torch.from_numpy(elementwise_product(o, tc, cfg, rounding, multiplier))
        acts = [torch.from_numpy(a) for a in (i, f, g, o, tc)]
        ctx.save_for_backward(c, *acts)
        return h_new, c_new

    @staticmethod
    @once_differentiable  # the kernel's gradients carry no graph: refuse double backward
    def backward(ctx, dh, dc):  # type: ignore[override]
        c, i, f, g, o, tc = ctx.saved_tensors
        if fast_path_enabled():
            grad_gates, grad_c = _lstm_pointwise_grad_kernel(dh, dc, c, i, f, g, o, tc)
            return (grad_gates if ctx.needs_input_grad[0] else None,
                    grad_c if ctx.needs_input_grad[1] else None, None, None, None)
        # The same operations as torch ops (the numpy-only fallback, and the kernel's spec).
        d_o = None
        if dh is not None:
            d_o = dh * tc
            d_c_tanh = (dh * o) * (1.0 - tc * tc)
            dc = d_c_tanh if dc is None else dc + d_c_tanh
        assert dc is not None  # backward runs only when h' or c' has a gradient
        d_f, d_i, d_g = dc * c, dc * g, dc * i
        blocks = [d_i * (1.0 - i) * i, d_f * (1.0 - f) * f, d_g * (1.0 - g * g),
                  torch.zeros_like(o) if d_o is None else d_o * (1.0 - o) * o]
        grad_gates = torch.cat(blocks, dim=1) + 0.0 if ctx.needs_input_grad[0] else None
        grad_c = dc * f if ctx.needs_input_grad[1] else None
        return grad_gates, grad_c, None, None, None


def _lstm_pointwise_grad_kernel(dh: torch.Tensor | None, dc: torch.Tensor | None,
                                c: torch.Tensor, *acts: torch.Tensor
                                ) -> tuple[torch.Tensor, torch.Tensor]:
    """:class:`_LSTMPointwiseFn`'s gradients in one pass of ``_torch_kernels.lstm_pointwise_grad``
    (some twenty torch operations on [B, H] otherwise): (grad of gates [B, 4H], grad of c).
    Only called with the numba kernels in use (:func:`fast_path_enabled`)."""
    from . import _torch_kernels  # numba: imported on first use, not by ``import lmul.torch``

    rows, hs = c.shape
    grad_gates = np.empty(rows * 4 * hs, dtype=np.float32)
    grad_c = np.empty(rows * hs, dtype=np.float32)
    none = np.empty(0, dtype=np.float32)
    flat = [none if t is None else _np(t).reshape(-1) for t in (dh, dc, c, *acts)]
    if hs:
        _torch_kernels.lstm_pointwise_grad(flat[0], flat[1], dh is not None, dc is not None,
                                           *flat[2:], hs, grad_gates, grad_c)
    return (torch.from_numpy(grad_gates.reshape(rows, 4 * hs)),
            torch.from_numpy(grad_c.reshape(rows, hs)))


def lstm_pointwise(gates: torch.Tensor, c: torch.Tensor, cfg: LMulConfig, multiplier: str,
                   rounding: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(h', c')`` of an LSTM step from its gate pre-activations, as one autograd node.

    ``i, f, o = sigmoid32(...)``, ``g = tanh32(...)`` of the column blocks of ``gates [B, 4H]``
    (torch's order i, f, g, o), ``c' = f*c + i*g``, ``h' = o * tanh32(c')``, products through the
    multiplier (:func:`lmul_mul`). The same forward bits and gradients as those operations done
    one by one with :func:`sigmoid32`, :func:`tanh32`, :func:`lmul_mul` and ``+`` (NaN gradients
    possibly with another payload), for one node's Python overhead instead of eight.

    Args:
        gates: float32 CPU tensor ``[B, 4H]``; c: float32 CPU tensor ``[B, H]``.
        cfg, multiplier, rounding: as :func:`lmul_mul` (already validated by the caller).
    """
    _check_tensor(gates, "gates")
    _check_tensor(c, "c")
    if gates.dim() != 2 or c.dim() != 2 or gates.shape[0] != c.shape[0] \
            or gates.shape[1] != 4 * c.shape[1]:
        raise ValueError(f"lstm_pointwise needs gates [B, 4H] and c [B, H], got "
                         f"{tuple(gates.shape)} and {tuple(c.shape)}")
    return _LSTMPointwiseFn.apply(gates, c, cfg, multiplier, rounding)
