"""PyTorch integration: any model's products on the L-Mul MAC array, straight-through gradients.

:func:`convert` replaces a model's ``nn.Linear``, ``nn.Conv1d``/``Conv2d``, ``nn.LSTM``/``GRU``/
``RNN`` (and their cells) and ``nn.MultiheadAttention`` by converted modules whose products
return exactly the bits of :func:`lmul.matmul` / :func:`lmul.elementwise_product` (the MAC
array's arithmetic: format rounding, L-Mul, exact or seed products, binary32 sums in the array's
order); :func:`revert` puts the original modules back. The backward passes are straight-through:
the gradient of the *exact* float32 product at the same operands, so a model can be fine-tuned
with L-Mul in the forward pass.

Implementation (private, lowest first): ``_torch_ops`` (autograd functions) -> ``_torch_cells``
(recurrent cell equations, generic over numpy and torch) -> ``_torch_layers`` (the converted
modules) -> ``_torch_swap`` (convert / revert).

Only CPU float32 tensors are accepted (the kernels are CPU kernels; a GPU tensor raises a clear
error rather than being copied behind the caller's back).

Example::

    import lmul, lmul.torch
    lm = lmul.torch.convert(model, lmul.LMulConfig(), multiplier="lmul")
    print(lm.lmul_report)                  # what was converted, what stays float32 and why
    accuracy(lm, test_loader)              # inference with the RTL's bits
    model_back = lmul.torch.revert(lm)     # the original modules, same Parameters
"""

from __future__ import annotations

from ._torch_cells import CellOps, TensorOps, gru_cell_step, lstm_cell_step, rnn_cell_step
from ._torch_layers import (
    LMulConv1d,
    LMulConv2d,
    LMulGRU,
    LMulGRUCell,
    LMulLinear,
    LMulLSTM,
    LMulLSTMCell,
    LMulMultiheadAttention,
    LMulRNN,
    LMulRNNCell,
)
from ._torch_ops import lmul_bmm, lmul_linear, lmul_mul, sigmoid32, tanh32
from ._torch_swap import CONVERTIBLE, ConversionReport, LayerRecord, convert, revert

__all__ = [
    "CONVERTIBLE",
    "CellOps",
    "ConversionReport",
    "LMulConv1d",
    "LMulConv2d",
    "LMulGRU",
    "LMulGRUCell",
    "LMulLSTM",
    "LMulLSTMCell",
    "LMulLinear",
    "LMulMultiheadAttention",
    "LMulRNN",
    "LMulRNNCell",
    "LayerRecord",
    "TensorOps",
    "convert",
    "gru_cell_step",
    "lmul_bmm",
    "lmul_linear",
    "lmul_mul",
    "lstm_cell_step",
    "revert",
    "rnn_cell_step",
    "sigmoid32",
    "tanh32",
]
