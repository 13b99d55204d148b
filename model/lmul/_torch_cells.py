"""Recurrent cell equations, written once for numpy arrays and torch tensors alike.

Each step function takes its products from an ``ops`` object (:class:`CellOps`): the converted
torch modules pass :class:`TensorOps` (the MAC array's kernels with straight-through gradients);
``experiments.lstm`` passes its inference arithmetic on numpy arrays. So the converted
``nn.LSTM`` and the experiments' explicit cell are one implementation, with the same bits.

Conventions shared by all cells (the hardware's): a gate pre-activation is one MAC-array product
``bias + [x_t, h] . W`` (``W`` = ``[W_ih | W_hh]``, bias ``b_ih + b_hh`` summed once in float32,
accumulation from the bias in ``k`` order: inputs first, then the hidden state); sigmoid and tanh
are correctly rounded to float32 (:func:`lmul.sigmoid32`, :func:`lmul.tanh32`); every elementwise
product goes through the multiplier; sums of two products are float32 additions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch

from ._dot import Fused
from ._formats import LMulConfig
from ._torch_ops import (
    PreparedWeight,
    linear_prepared,
    lmul_linear,
    lmul_mul,
    lstm_pointwise,
    prepare_weight,
    sigmoid32,
    tanh32,
)


class CellOps(Protocol):
    """The operations a cell step needs; arrays are numpy float32 or torch float32 alike.

    ``linear(z, w, bias)`` is ``bias + z . W`` for ``z [B, K]``; ``w`` is passed through from
    the caller untouched (its layout is the ops object's business), ``bias`` may be None (+0.0).
    ``mul`` is the elementwise product, ``sigmoid``/``tanh`` the activations, ``cat(x, h)`` the
    concatenation ``[x, h]`` along the last axis. An ops object may also have
    ``lstm_pointwise(gates, c) -> (h', c')`` (or None: not for these shapes):
    :func:`lstm_cell_step` then hands it everything after the gate product (it must give the
    bits of the separate operations).
    """

    def linear(self, z: Any, w: Any, bias: Any) -> Any: ...
    def mul(self, x: Any, y: Any) -> Any: ...
    def sigmoid(self, x: Any) -> Any: ...
    def tanh(self, x: Any) -> Any: ...
    def cat(self, x: Any, h: Any) -> Any: ...


class TensorOps:
    """:class:`CellOps` on torch tensors: :func:`lmul_linear` (``w`` in torch's ``[out, in]``
    layout, or that weight from :meth:`prepare`), :func:`lmul_mul`, :func:`sigmoid32`,
    :func:`tanh32`; straight-through gradients."""

    def __init__(self, cfg: LMulConfig, multiplier: str, rounding: str,
                 accumulate: Fused | None = None) -> None:
        self.cfg, self.multiplier, self.rounding = cfg, multiplier, rounding
        self.accumulate = accumulate

    def prepare(self, w: torch.Tensor) -> PreparedWeight:
        """``w`` [out, in] prepared once for many :meth:`linear` calls (a recurrent layer's
        steps); build it per forward pass, after any weight update (a snapshot of ``w``)."""
        return prepare_weight(w, self.cfg, self.multiplier, self.rounding, self.accumulate)

    def linear(self, z: torch.Tensor, w: torch.Tensor | PreparedWeight,
               bias: torch.Tensor | None) -> torch.Tensor:
        if isinstance(w, PreparedWeight):
            if (w.cfg, w.multiplier, w.rounding, w.accumulate) != \
                    (self.cfg, self.multiplier, self.rounding, self.accumulate):
                raise ValueError("the weight was prepared with other options than this "
                                 "TensorOps' (cfg, multiplier, rounding, accumulate)")
            return linear_prepared(z, w, bias)
        return lmul_linear(z, w, bias, self.cfg, self.multiplier, self.rounding,
                           self.accumulate)

    def mul(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return lmul_mul(x, y, self.cfg, self.multiplier, self.rounding)

    def lstm_pointwise(self, gates: torch.Tensor, c: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """:func:`lstm_cell_step`'s activations and products as one autograd node (the bits
        and gradients of the separate operations, less Python overhead per step); None for
        shapes other than ``gates [B, 4H]``, ``c [B, H]`` (e.g. a broadcast ``c``), which the
        separate operations handle."""
        if gates.dim() != 2 or c.dim() != 2 or gates.shape[0] != c.shape[0] \
                or gates.shape[1] != 4 * c.shape[1]:
            return None
        return lstm_pointwise(gates, c, self.cfg, self.multiplier, self.rounding)

    def sigmoid(self, x: torch.Tensor) -> torch.Tensor:
        return sigmoid32(x)  # type: ignore[return-value]

    def tanh(self, x: torch.Tensor) -> torch.Tensor:
        return tanh32(x)  # type: ignore[return-value]

    def cat(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, h], dim=-1)


def lstm_cell_step(x_t: Any, h: Any, c: Any, w: Any, b: Any, ops: CellOps,
                   w_proj: Any = None) -> tuple[Any, Any]:
    """One LSTM step (torch's gate order i, f, g, o) with ``ops``' arithmetic.

    ``gates = ops.linear([x_t, h], w, b)``; ``i, f, o = sigmoid(...)``, ``g = tanh(...)``;
    ``c' = f*c + i*g`` (two products, one float32 sum); ``h' = o * tanh(c')``, then
    ``h' = ops.linear(h', w_proj, None)`` when the LSTM has a projection (``proj_size``).

    Args:
        x_t: ``[B, I]``; h: ``[B, H_out]``; c: ``[B, H]``; w, b: the gate weights and bias as
            ``ops.linear`` takes them (``4H`` outputs); w_proj: projection weights or None.

    Returns:
        ``(h', c')``.
    """
    hs = c.shape[-1]
    gates = ops.linear(ops.cat(x_t, h), w, b)
    fused = getattr(ops, "lstm_pointwise", None)
    out = None if fused is None else fused(gates, c)
    if out is not None:  # the lines below as one step, same bits (TensorOps: one autograd node)
        h, c = out
    else:
        i = ops.sigmoid(gates[:, :hs])
        f = ops.sigmoid(gates[:, hs:2 * hs])
        g = ops.tanh(gates[:, 2 * hs:3 * hs])
        o = ops.sigmoid(gates[:, 3 * hs:])
        c = ops.mul(f, c) + ops.mul(i, g)
        h = ops.mul(o, ops.tanh(c))
    if w_proj is not None:
        h = ops.linear(h, w_proj, None)
    return h, c


def gru_cell_step(x_t: Any, h: Any, w_rz: Any, b_rz: Any, w_in: Any, b_in: Any, w_hn: Any,
                  b_hn: Any, ops: CellOps) -> Any:
    """One GRU step (torch's equations and gate order r, z, n) with ``ops``' arithmetic.

    ``r, z = sigmoid(ops.linear([x_t, h], w_rz, b_rz))`` (bias ``b_i{r,z} + b_h{r,z}``);
    ``n = tanh(ops.linear(x_t, w_in, b_in) + r * ops.linear(h, w_hn, b_hn))`` (the input and
    hidden parts are separate products because ``r`` scales only the hidden one);
    ``h' = n + z * (h - n)``: torch's own form of ``(1 - z) * n + z * h``, one product.
    """
    hs = h.shape[-1]
    rz = ops.sigmoid(ops.linear(ops.cat(x_t, h), w_rz, b_rz))
    r, z = rz[:, :hs], rz[:, hs:]
    n = ops.tanh(ops.linear(x_t, w_in, b_in) + ops.mul(r, ops.linear(h, w_hn, b_hn)))
    return n + ops.mul(z, h - n)


def rnn_cell_step(x_t: Any, h: Any, w: Any, b: Any, ops: CellOps,
                  activation: Callable[[Any], Any]) -> Any:
    """One Elman RNN step: ``h' = activation(ops.linear([x_t, h], w, b))``."""
    return activation(ops.linear(ops.cat(x_t, h), w, b))
