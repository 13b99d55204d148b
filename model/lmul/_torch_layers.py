"""The converted modules: drop-in subclasses of torch's layers whose products run on the MAC array.

Each class subclasses the torch layer it replaces, so code that reads the layer's attributes
(``in_features``, ``batch_first``, ``num_heads``, ...) keeps working, and its state dict is the
torch layer's (trained float32 weights load directly). Built by :meth:`_Converted.wrap` (what
:func:`lmul.torch.convert` uses), a converted module *shares* the original module's Parameter
objects and submodules, and keeps the original object for :func:`lmul.torch.revert`.

Every multiplication of a converted layer goes through the chosen multiplier (``lmul``: the
L-Mul unit, ``exact``: the IEEE product rounded to the format, ``seed``: the notebook's); matrix
products are :func:`lmul.matmul` tiles (bias first, ``k`` in order, binary32 sums). What stays
float32 (no products of the MAC array): additions of partial results, masks, activations,
softmax (float64, rounded once), dropout.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional
from torch.nn.utils.rnn import PackedSequence

from ._dot import Fused
from ._formats import LMulConfig
from ._matmul import conv2d_product, fast_path_enabled
from ._torch_cells import TensorOps, gru_cell_step, lstm_cell_step, rnn_cell_step
from ._torch_ops import _check_options, _check_tensor, lmul_bmm, lmul_linear, lmul_mul


def _no_fused_fast_path(module: nn.Module, args: Any) -> None:
    """Forward pre-hook that does nothing. Its presence is the point: torch's fused transformer
    fast path (``nn.TransformerEncoderLayer`` in eval mode) reads the weights of the layers it
    contains and computes in float32, bypassing their forward methods, unless a module inside
    it has a hook. Every converted module carries this one so it can never be bypassed."""
    return None


class _Converted(nn.Module):
    """Mixin of the converted modules: options, the original module, construction by sharing."""

    cfg: LMulConfig
    multiplier: str
    rounding: str
    accumulate: Fused | None

    def __init__(self, *args: Any, cfg: LMulConfig | None = None, multiplier: str = "lmul",
                 rounding: str = "rne", accumulate: Fused | None = None,
                 **kwargs: Any) -> None:
        """The torch layer's own arguments, plus ``cfg``, ``multiplier``, ``rounding`` and
        ``accumulate`` (keywords; ``accumulate``: None for sequential binary32 sums or an
        :class:`lmul.Fused`, as :func:`lmul.matmul`): a freshly initialised layer (:meth:`wrap`
        converts an existing one)."""
        super().__init__(*args, **kwargs)
        self._set_options(cfg, multiplier, rounding, accumulate)

    def _set_options(self, cfg: LMulConfig | None, multiplier: str, rounding: str,
                     accumulate: Fused | None = None) -> None:
        cfg = LMulConfig() if cfg is None else cfg
        _check_options(cfg, multiplier, rounding, accumulate)
        self.cfg, self.multiplier, self.rounding = cfg, multiplier, rounding
        self.accumulate = accumulate
        self.register_forward_pre_hook(_no_fused_fast_path)

    @classmethod
    def wrap(cls, module: nn.Module, cfg: LMulConfig | None = None, multiplier: str = "lmul",
             rounding: str = "rne", accumulate: Fused | None = None) -> Any:
        """A converted module that shares ``module``'s Parameters, buffers and submodules.

        The new module has the same attributes and state dict keys; its parameters *are*
        ``module``'s Parameter objects, so training either one updates both, and
        ``module`` (kept as :attr:`original`) is what :func:`lmul.torch.revert` puts back.
        Hooks registered on ``module`` before are copied; later ones are not shared.
        """
        new = cls.__new__(cls)
        for key, value in module.__dict__.items():
            # Containers (parameter/module dicts, hook dicts, RNN weight lists) are copied so
            # registering something on one module does not change the other.
            new.__dict__[key] = copy.copy(value) if isinstance(value, (dict, list, set)) \
                else value
        new.__dict__["_lmul_original"] = module
        new._set_options(cfg, multiplier, rounding, accumulate)
        return new

    @property
    def original(self) -> nn.Module | None:
        """The torch module this one was converted from (None if built directly)."""
        return self.__dict__.get("_lmul_original")

    def _ops(self) -> TensorOps:
        return TensorOps(self.cfg, self.multiplier, self.rounding, self.accumulate)

    def _check_input(self, x: torch.Tensor, batched_dims: int) -> bool:
        """Check ``x`` (float32 CPU, ``batched_dims`` or one fewer dimensions); True when it has
        the batch dimension."""
        _check_tensor(x, "input")
        if x.dim() not in (batched_dims - 1, batched_dims):
            raise ValueError(f"{type(self).__name__} expects a {batched_dims - 1}-D or "
                             f"{batched_dims}-D input, got shape {tuple(x.shape)}")
        return x.dim() == batched_dims

    def _options_repr(self) -> str:
        fused = "" if self.accumulate is None else \
            f", accumulate=Fused({self.accumulate.k}, {self.accumulate.align_bits})"
        return (f"cfg={self.cfg.describe()}, multiplier={self.multiplier}, "
                f"rounding={self.rounding}{fused}")


class LMulLinear(_Converted, nn.Linear):
    """Drop-in ``nn.Linear`` whose forward pass uses the L-Mul MAC array's arithmetic.

    Same parameters, initialisation and state dict as ``nn.Linear`` (so trained float32 weights
    load directly); forward is :func:`lmul_linear`, backward the straight-through gradient of
    the exact product.

    Args:
        in_features, out_features, bias: as ``nn.Linear``.
        cfg: L-Mul configuration (default BF16, paper offset).
        multiplier: ``"lmul"``, ``"exact"`` or ``"seed"``.
        rounding: ``"rne"`` or ``"truncate"``.
        accumulate: None (sequential binary32 sums) or an :class:`lmul.Fused`.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 cfg: LMulConfig | None = None, multiplier: str = "lmul",
                 rounding: str = "rne", accumulate: Fused | None = None) -> None:
        nn.Linear.__init__(self, in_features, out_features, bias=bias, dtype=torch.float32)
        self._set_options(cfg, multiplier, rounding, accumulate)

    @classmethod
    def from_linear(cls, linear: nn.Linear, cfg: LMulConfig | None = None,
                    multiplier: str = "lmul", rounding: str = "rne",
                    accumulate: Fused | None = None) -> LMulLinear:
        """An LMulLinear sharing nothing with ``linear`` but a copy of its weights (use
        :meth:`wrap` to share the Parameters)."""
        layer = cls(linear.in_features, linear.out_features, linear.bias is not None, cfg,
                    multiplier, rounding, accumulate)
        layer.load_state_dict(linear.state_dict())
        return layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return lmul_linear(x, self.weight, self.bias, self.cfg, self.multiplier, self.rounding,
                           self.accumulate)

    def extra_repr(self) -> str:
        return f"{nn.Linear.extra_repr(self)}, {self._options_repr()}"


def _direct_conv(conv: nn.Conv1d | nn.Conv2d, x: torch.Tensor) -> bool:
    """Whether the forward pass can read the patches straight from the image
    (:func:`lmul._matmul.conv2d_product`, same bits as im2col + ``lmul_linear``).

    Only without autograd (``lmul_linear`` carries the straight-through gradients), on the numba
    kernels, for float32 CPU weights (the im2col path raises the errors otherwise), and with
    sequential accumulation (the direct kernels have no fused step).
    """
    if conv.accumulate is not None:
        return False
    params = [conv.weight] if conv.bias is None else [conv.weight, conv.bias]
    if torch.is_grad_enabled() and any(t.requires_grad for t in (x, *params)):
        return False
    return (fast_path_enabled()
            and all(t.dtype == torch.float32 and t.device.type == "cpu" for t in params))


def _direct_conv_forward(conv: nn.Conv1d | nn.Conv2d, x: torch.Tensor, nd: int) -> torch.Tensor:
    """:func:`_conv_forward` on a batched input without autograd, on numpy arrays throughout.

    Zero padding is numpy's: a torch op here would wake torch's thread pool, whose spinning
    workers then compete with the numba kernel's threads (measured: the pad alone took 12-15 ms
    instead of 0.2 ms on a loaded 2-core machine). Other padding modes use torch's pad (its
    checks and errors).
    """
    pads = conv._reversed_padding_repeated_twice  # (left, right[, top, bottom])
    if any(pads) and conv.padding_mode != "zeros":
        x = functional.pad(x, pads, mode=conv.padding_mode)
        pads = [0] * len(pads)
    xn = x.detach().numpy()
    kernel, stride, dilation = conv.kernel_size, conv.stride, conv.dilation
    if nd == 1:  # a 1-D convolution is a 2-D one over a height-1 image
        xn = xn[:, :, None, :]
        kernel, stride, dilation = (1, *kernel), (1, *stride), (1, *dilation)
        pads = [*pads, 0, 0]
    if any(pads):
        xn = np.pad(xn, [(0, 0), (0, 0), (pads[2], pads[3]), (pads[0], pads[1])])
    height, width = xn.shape[2:]
    if (height - dilation[0] * (kernel[0] - 1) - 1 < 0
            or width - dilation[1] * (kernel[1] - 1) - 1 < 0):
        raise ValueError(f"{type(conv).__name__}: input {(*xn.shape[:2], height, width)} (padded)"
                         f" is smaller than the kernel {tuple(kernel)}")
    w2d = conv.weight.detach().reshape(conv.out_channels, -1).numpy()
    b = None if conv.bias is None else conv.bias.detach().numpy()
    y = torch.from_numpy(conv2d_product(xn, w2d, b, kernel, stride, dilation, conv.groups,
                                        conv.cfg, conv.rounding, conv.multiplier))
    return y.squeeze(2) if nd == 1 else y


def _conv_forward(conv: nn.Conv1d | nn.Conv2d, x: torch.Tensor, nd: int) -> torch.Tensor:
    """Convolution as im2col + one MAC-array product per group.

    Padding (any ``padding_mode``, ``'same'`` included) is applied first exactly as torch's
    ``_conv_forward`` does, then ``F.unfold`` lays out the patches; the contraction index runs
    over (input channel, kernel row, kernel column) in that order, the order of
    ``weight.reshape(out_channels, -1)``, and each output is ``bias + sum`` in that order.
    Without autograd the patches are read straight from the padded image instead
    (:func:`_direct_conv_forward`, the same bits, no patch matrix).
    """
    _check_tensor(x, "input")
    if x.dim() not in (nd + 1, nd + 2):
        raise ValueError(f"{type(conv).__name__} expects a {nd + 1}-D or {nd + 2}-D input, got "
                         f"shape {tuple(x.shape)}")
    batched = x.dim() == nd + 2
    if not batched:
        x = x.unsqueeze(0)
    if _direct_conv(conv, x):
        y = _direct_conv_forward(conv, x, nd)
        return y if batched else y.squeeze(0)
    mode = "constant" if conv.padding_mode == "zeros" else conv.padding_mode
    if any(conv._reversed_padding_repeated_twice):
        x = functional.pad(x, conv._reversed_padding_repeated_twice, mode=mode)
    kernel, stride, dilation = conv.kernel_size, conv.stride, conv.dilation
    if nd == 1:  # a 1-D convolution is a 2-D one over a height-1 image
        x = x.unsqueeze(2)
        kernel, stride, dilation = (1, *kernel), (1, *stride), (1, *dilation)
    n, _, height, width = x.shape
    out_h = (height - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1
    out_w = (width - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1
    if out_h < 1 or out_w < 1:
        raise ValueError(f"{type(conv).__name__}: input {tuple(x.shape)} (padded) is smaller "
                         f"than the kernel {tuple(kernel)}")
    cols = functional.unfold(x, kernel, dilation=dilation, stride=stride)  # [N, C*kk, P]
    groups = conv.groups
    per_group = cols.shape[1] // groups
    out_per_group = conv.out_channels // groups
    w2d = conv.weight.reshape(conv.out_channels, per_group)
    outs = []
    for g in range(groups):
        rows = cols[:, g * per_group:(g + 1) * per_group].transpose(1, 2)  # [N, P, C*kk]
        bias = None if conv.bias is None else conv.bias[g * out_per_group:(g + 1) * out_per_group]
        w = w2d[g * out_per_group:(g + 1) * out_per_group]
        outs.append(lmul_linear(rows, w, bias, conv.cfg, conv.multiplier, conv.rounding,
                                conv.accumulate))
    y = outs[0] if groups == 1 else torch.cat(outs, dim=2)  # [N, P, C_out]
    y = y.transpose(1, 2).reshape(n, conv.out_channels, out_h, out_w)
    if nd == 1:
        y = y.squeeze(2)
    return y if batched else y.squeeze(0)


class LMulConv1d(_Converted, nn.Conv1d):
    """``nn.Conv1d`` (every option and padding mode) as im2col + the MAC array's product."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _conv_forward(self, x, 1)

    def extra_repr(self) -> str:
        return f"{nn.Conv1d.extra_repr(self)}, {self._options_repr()}"


class LMulConv2d(_Converted, nn.Conv2d):
    """``nn.Conv2d`` (every option and padding mode) as im2col + the MAC array's product."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _conv_forward(self, x, 2)

    def extra_repr(self) -> str:
        return f"{nn.Conv2d.extra_repr(self)}, {self._options_repr()}"


# ------------------------------------------------------------------------------------ recurrent

def _bias_sum(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    return None if a is None or b is None else a + b  # once, in float32: the array has one bias


class _RecurrentMixin(_Converted):
    """Shared driver of LSTM / GRU / RNN: layers, directions, batch_first, initial states."""

    def _layer_weights(self, layer: int, direction: int) -> dict[str, Any]:
        sfx = f"_l{layer}" + ("_reverse" if direction else "")
        return {name: getattr(self, name + sfx, None)
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")}

    def _run(self, x: torch.Tensor, hx: Any, n_states: int) -> tuple[torch.Tensor, list]:
        if isinstance(x, PackedSequence):
            raise TypeError(f"{type(self).__name__} does not take a PackedSequence; pass a padded "
                            "tensor (or revert the layer with lmul.torch.revert)")
        batched = self._check_input(x, 3)
        if not batched:
            x = x.unsqueeze(1)
        elif self.batch_first:
            x = x.transpose(0, 1)
        steps, batch = x.shape[0], x.shape[1]
        dirs = 2 if self.bidirectional else 1
        out_size = getattr(self, "proj_size", 0) or self.hidden_size
        sizes = [out_size, self.hidden_size][:n_states]
        if hx is None:
            states = [x.new_zeros(self.num_layers * dirs, batch, s) for s in sizes]
        else:
            states = list(hx) if n_states == 2 else [hx]
            for k, s in enumerate(states):
                _check_tensor(s, "hx")
                if not batched:
                    states[k] = s.unsqueeze(1)
                want = (self.num_layers * dirs, batch, sizes[k])
                if tuple(states[k].shape) != want:
                    raise ValueError(f"initial state {k} must have shape {want}, got "
                                     f"{tuple(states[k].shape)}")
        ops = self._ops()
        finals: list[list[torch.Tensor]] = [[] for _ in range(n_states)]
        layer_in = x
        for layer in range(self.num_layers):
            outs = []
            for d in range(dirs):
                idx = layer * dirs + d
                state = tuple(s[idx] for s in states)
                seq = [None] * steps
                step_fn = self._step_fn(self._layer_weights(layer, d), ops)
                for t in (range(steps - 1, -1, -1) if d else range(steps)):
                    state = step_fn(layer_in[t], state)
                    seq[t] = state[0]
                outs.append(torch.stack(seq) if steps else layer_in.new_zeros(0, batch, out_size))
                for k in range(n_states):
                    finals[k].append(state[k])
            layer_in = outs[0] if dirs == 1 else torch.cat(outs, dim=2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_in = functional.dropout(layer_in, self.dropout, training=True)
        out = layer_in
        final = [torch.stack(f) for f in finals]
        if not batched:
            out = out.squeeze(1)
            final = [f.squeeze(1) for f in final]
        elif self.batch_first:
            out = out.transpose(0, 1)
        return out, final

    def _step_fn(self, wts: dict[str, Any], ops: TensorOps) -> Any:
        raise NotImplementedError

    #: States a step carries: (h, c) for the LSTM, h alone for the GRU and the RNN.
    _N_STATES = 1

    def forward(self, input: Any, hx: Any = None) -> Any:
        """``(output, (h, c))`` for the LSTM, ``(output, h)`` otherwise, as torch's layer."""
        out, final = self._run(input, hx, self._N_STATES)
        return out, (tuple(final) if self._N_STATES == 2 else final[0])

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {self._options_repr()}"


class LMulLSTM(_RecurrentMixin, nn.LSTM):
    """``nn.LSTM`` (layers, bidirectional, batch_first, bias, proj_size, dropout) on the MAC array.

    Per step :func:`lstm_cell_step`: gates ``[x_t, h] . [W_ih | W_hh]^T + (b_ih + b_hh)`` as one
    array product, f*c, i*g, o*tanh(c) (and the projection) through the multiplier. Dropout
    between layers (training only) is torch's. PackedSequence inputs are refused.
    """

    _N_STATES = 2

    def _step_fn(self, wts: dict[str, Any], ops: TensorOps) -> Any:
        # Prepared here, once per forward pass and layer: every step multiplies by the same
        # weights, and the weights cannot change before the next forward.
        w = ops.prepare(torch.cat([wts["weight_ih"], wts["weight_hh"]], dim=1))
        b = _bias_sum(wts["bias_ih"], wts["bias_hh"])
        w_proj = None if wts["weight_hr"] is None else ops.prepare(wts["weight_hr"])

        def step(x_t: torch.Tensor, state: tuple) -> tuple:
            return lstm_cell_step(x_t, state[0], state[1], w, b, ops, w_proj)
        return step


class LMulGRU(_RecurrentMixin, nn.GRU):
    """``nn.GRU`` (layers, bidirectional, batch_first, bias, dropout) on the MAC array.

    Per step :func:`gru_cell_step` (torch's equations; r and z from one array product over
    ``[x_t, h]``, the candidate's input and hidden products separate, as the equations need).
    """

    def _step_fn(self, wts: dict[str, Any], ops: TensorOps) -> Any:
        hs = self.hidden_size
        w_ih, w_hh, b_ih, b_hh = (wts[k] for k in ("weight_ih", "weight_hh", "bias_ih",
                                                   "bias_hh"))
        w_rz = ops.prepare(torch.cat([w_ih[:2 * hs], w_hh[:2 * hs]], dim=1))  # as LMulLSTM
        b_rz = None if b_ih is None else _bias_sum(b_ih[:2 * hs], b_hh[:2 * hs])
        b_in = None if b_ih is None else b_ih[2 * hs:]
        b_hn = None if b_hh is None else b_hh[2 * hs:]
        w_in, w_hn = ops.prepare(w_ih[2 * hs:]), ops.prepare(w_hh[2 * hs:])

        def step(x_t: torch.Tensor, state: tuple) -> tuple:
            return (gru_cell_step(x_t, state[0], w_rz, b_rz, w_in, b_in, w_hn, b_hn, ops),)
        return step


class LMulRNN(_RecurrentMixin, nn.RNN):
    """``nn.RNN`` (tanh or relu, layers, bidirectional, batch_first, bias, dropout) on the
    MAC array: ``h' = act([x_t, h] . [W_ih | W_hh]^T + (b_ih + b_hh))``."""

    def _step_fn(self, wts: dict[str, Any], ops: TensorOps) -> Any:
        w = ops.prepare(torch.cat([wts["weight_ih"], wts["weight_hh"]], dim=1))  # as LMulLSTM
        b = _bias_sum(wts["bias_ih"], wts["bias_hh"])
        act = ops.tanh if self.nonlinearity == "tanh" else torch.relu

        def step(x_t: torch.Tensor, state: tuple) -> tuple:
            return (rnn_cell_step(x_t, state[0], w, b, ops, act),)
        return step


class _CellMixin(_Converted):
    def _prepare(self, x: torch.Tensor, hx: Any, n_states: int) -> tuple[torch.Tensor, list,
                                                                         bool]:
        batched = self._check_input(x, 2)
        if not batched:
            x = x.unsqueeze(0)
        if hx is None:
            states = [x.new_zeros(x.shape[0], self.hidden_size) for _ in range(n_states)]
        else:
            states = [s if batched else s.unsqueeze(0)
                      for s in (list(hx) if n_states == 2 else [hx])]
        return x, states, batched


class LMulLSTMCell(_CellMixin, nn.LSTMCell):
    """``nn.LSTMCell`` on the MAC array (:func:`lstm_cell_step`)."""

    def forward(self, input: torch.Tensor, hx: Any = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        x, (h, c), batched = self._prepare(input, hx, 2)
        w = torch.cat([self.weight_ih, self.weight_hh], dim=1)
        h, c = lstm_cell_step(x, h, c, w, _bias_sum(self.bias_ih, self.bias_hh), self._ops())
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


class LMulGRUCell(_CellMixin, nn.GRUCell):
    """``nn.GRUCell`` on the MAC array (:func:`gru_cell_step`)."""

    def forward(self, input: torch.Tensor, hx: Any = None) -> torch.Tensor:
        x, (h,), batched = self._prepare(input, hx, 1)
        hs = self.hidden_size
        w_rz = torch.cat([self.weight_ih[:2 * hs], self.weight_hh[:2 * hs]], dim=1)
        b_ih, b_hh = self.bias_ih, self.bias_hh
        b_rz = None if b_ih is None else _bias_sum(b_ih[:2 * hs], b_hh[:2 * hs])
        h = gru_cell_step(x, h, w_rz, b_rz, self.weight_ih[2 * hs:],
                          None if b_ih is None else b_ih[2 * hs:], self.weight_hh[2 * hs:],
                          None if b_hh is None else b_hh[2 * hs:], self._ops())
        return h if batched else h.squeeze(0)


class LMulRNNCell(_CellMixin, nn.RNNCell):
    """``nn.RNNCell`` on the MAC array (:func:`rnn_cell_step`)."""

    def forward(self, input: torch.Tensor, hx: Any = None) -> torch.Tensor:
        x, (h,), batched = self._prepare(input, hx, 1)
        ops = self._ops()
        w = torch.cat([self.weight_ih, self.weight_hh], dim=1)
        act = ops.tanh if self.nonlinearity == "tanh" else torch.relu
        h = rnn_cell_step(x, h, w, _bias_sum(self.bias_ih, self.bias_hh), ops, act)
        return h if batched else h.squeeze(0)


# ------------------------------------------------------------------------------------ attention

def _float_mask(mask: torch.Tensor | None, name: str) -> torch.Tensor | None:
    """torch's mask convention: bool True = masked out (-inf), float = added to the scores."""
    if mask is None:
        return None
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=torch.float32).masked_fill_(mask, float("-inf"))
    if not torch.is_floating_point(mask):
        raise TypeError(f"{name} must be bool or floating point, got {mask.dtype}")
    return mask.to(torch.float32)


class LMulMultiheadAttention(_Converted, nn.MultiheadAttention):
    """``nn.MultiheadAttention`` with every product on the MAC array.

    The Q, K, V and output projections are array products (:func:`lmul_linear`), the query
    scaling ``q * head_dim**-0.5`` is an elementwise product through the multiplier, the scores
    ``Q.K^T`` and ``attention.V`` are array tiles per (batch, head) (:func:`lmul_bmm`). Masks
    (``attn_mask`` 2-D/3-D, ``key_padding_mask``, bool or float) are added to the scores in
    float32; softmax is computed in float64 and rounded once to float32; attention dropout
    (training only) is torch's. Supports ``batch_first``, unbatched inputs, ``kdim``/``vdim``,
    ``add_bias_kv``, ``add_zero_attn``, ``need_weights`` and ``average_attn_weights``;
    ``is_causal`` is a hint, as in torch (``attn_mask`` must be given and is what is applied).
    """

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                key_padding_mask: torch.Tensor | None = None, need_weights: bool = True,
                attn_mask: torch.Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        for t, name in ((query, "query"), (key, "key"), (value, "value")):
            _check_tensor(t, name)
        if is_causal and attn_mask is None:
            raise ValueError("is_causal needs attn_mask (as in torch): pass the causal mask, "
                             "e.g. nn.Transformer.generate_square_subsequent_mask(L)")
        batched = query.dim() == 3
        if self.batch_first and batched:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        if not batched:
            query, key, value = (t.unsqueeze(1) for t in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        tgt_len, bsz, embed = query.shape
        heads, hd = self.num_heads, self.head_dim
        cfg, mult, rnd, acc = self.cfg, self.multiplier, self.rounding, self.accumulate
        if self._qkv_same_embed_dim:
            w_q, w_k, w_v = self.in_proj_weight.chunk(3)
        else:
            w_q, w_k, w_v = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        b_q, b_k, b_v = (None, None, None) if self.in_proj_bias is None \
            else self.in_proj_bias.chunk(3)
        q = lmul_linear(query, w_q, b_q, cfg, mult, rnd, acc)
        k = lmul_linear(key, w_k, b_k, cfg, mult, rnd, acc)
        v = lmul_linear(value, w_v, b_v, cfg, mult, rnd, acc)
        attn_mask = _float_mask(attn_mask, "attn_mask")
        key_padding_mask = _float_mask(key_padding_mask, "key_padding_mask")
        if attn_mask is not None and attn_mask.dim() == 2:
            attn_mask = attn_mask.unsqueeze(0)
        if self.bias_k is not None and self.bias_v is not None:
            k = torch.cat([k, self.bias_k.repeat(1, bsz, 1)])
            v = torch.cat([v, self.bias_v.repeat(1, bsz, 1)])
            if attn_mask is not None:
                attn_mask = functional.pad(attn_mask, (0, 1))
            if key_padding_mask is not None:
                key_padding_mask = functional.pad(key_padding_mask, (0, 1))
        q = q.reshape(tgt_len, bsz * heads, hd).transpose(0, 1)
        k = k.reshape(k.shape[0], bsz * heads, hd).transpose(0, 1)
        v = v.reshape(v.shape[0], bsz * heads, hd).transpose(0, 1)
        if self.add_zero_attn:
            zeros = q.new_zeros(bsz * heads, 1, hd)
            k, v = torch.cat([k, zeros], dim=1), torch.cat([v, zeros], dim=1)
            if attn_mask is not None:
                attn_mask = functional.pad(attn_mask, (0, 1))
            if key_padding_mask is not None:
                key_padding_mask = functional.pad(key_padding_mask, (0, 1))
        src_len = k.shape[1]
        if key_padding_mask is not None:
            if tuple(key_padding_mask.shape) != (bsz, src_len):
                raise ValueError(f"key_padding_mask must have shape {(bsz, src_len)}, got "
                                 f"{tuple(key_padding_mask.shape)}")
            kpm = key_padding_mask.view(bsz, 1, 1, src_len).expand(-1, heads, -1, -1) \
                .reshape(bsz * heads, 1, src_len)
            attn_mask = kpm if attn_mask is None else attn_mask + kpm
        scale = torch.tensor(math.sqrt(1.0 / hd), dtype=torch.float32)
        q = lmul_mul(q, scale, cfg, mult, rnd)
        scores = lmul_bmm(q, k.transpose(1, 2), cfg, mult, rnd, acc)
        if attn_mask is not None:
            scores = scores + attn_mask
        weights = torch.softmax(scores.double(), dim=-1).float()
        if self.training and self.dropout > 0.0:
            weights = functional.dropout(weights, self.dropout, training=True)
        out = lmul_bmm(weights, v, cfg, mult, rnd, acc)  # [B*heads, L, hd]
        out = out.transpose(0, 1).reshape(tgt_len, bsz, embed)
        out = lmul_linear(out, self.out_proj.weight, self.out_proj.bias, cfg, mult, rnd, acc)
        if self.batch_first and batched:
            out = out.transpose(0, 1)
        if not batched:
            out = out.squeeze(1)
        if not need_weights:
            return out, None
        w = weights.view(bsz, heads, tgt_len, src_len)
        if average_attn_weights:
            w = w.mean(dim=1)
        return out, (w if batched else w.squeeze(0))

    def extra_repr(self) -> str:
        return f"{nn.MultiheadAttention.extra_repr(self)}, {self._options_repr()}"
