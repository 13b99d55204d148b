"""``convert`` / ``revert``: put a whole PyTorch model on the MAC array's arithmetic and back."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from torch import nn

from . import _torch_layers as layers
from ._dot import Fused
from ._formats import LMulConfig
from ._torch_layers import _Converted
from ._torch_ops import _check_options

_log = logging.getLogger("lmul.torch")

#: torch layer type -> converted type. Exact types only: a user's subclass may have its own
#: forward, which a converted module would silently drop.
CONVERTIBLE: dict[type[nn.Module], type[_Converted]] = {
    nn.Linear: layers.LMulLinear,
    nn.Conv1d: layers.LMulConv1d,
    nn.Conv2d: layers.LMulConv2d,
    nn.LSTM: layers.LMulLSTM,
    nn.GRU: layers.LMulGRU,
    nn.RNN: layers.LMulRNN,
    nn.LSTMCell: layers.LMulLSTMCell,
    nn.GRUCell: layers.LMulGRUCell,
    nn.RNNCell: layers.LMulRNNCell,
    nn.MultiheadAttention: layers.LMulMultiheadAttention,
}

_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm)
_NOT_SUPPORTED = (nn.modules.conv._ConvTransposeNd, nn.Conv3d, nn.Bilinear)


@dataclass(frozen=True)
class LayerRecord:
    """One module in a :class:`ConversionReport`.

    Attributes:
        name: its qualified name in the model (``""`` for the model itself).
        kind: its torch class name.
        detail: for a converted layer the arithmetic (``"bf16 offset=8, multiplier=lmul"``), for
            one left alone the reason.
    """

    name: str
    kind: str
    detail: str


@dataclass
class ConversionReport:
    """What :func:`convert` replaced and what it left in float32, with reasons.

    Attributes:
        converted: layers now on the MAC array's arithmetic.
        left_alone: layers with parameters (or products) that still compute in float32.
        notes: other changes made (e.g. torch's nested-tensor fast path turned off).
    """

    converted: list[LayerRecord] = field(default_factory=list)
    left_alone: list[LayerRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"lmul.torch.convert: {len(self.converted)} layer(s) converted, "
                 f"{len(self.left_alone)} left in float32"]
        lines += [f"  converted   {r.name or '(model)'} ({r.kind}): {r.detail}"
                  for r in self.converted]
        lines += [f"  left alone  {r.name or '(model)'} ({r.kind}): {r.detail}"
                  for r in self.left_alone]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


Selector = Callable[[str, nn.Module], bool] | Mapping[str, LMulConfig] | None


def _qualify(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _describe(cfg: LMulConfig, multiplier: str, rounding: str) -> str:
    if multiplier == "lmul":
        return f"L-Mul {cfg.describe()}, inputs {rounding}"
    if multiplier == "exact":
        return f"exact products in {cfg.fmt.name}, inputs {rounding}"
    return "the seed notebook's multiplier (bf16 by truncation)"


def _reason_left_alone(module: nn.Module) -> str | None:
    """Why a module that is not converted still matters (None: it has no products to report)."""
    if isinstance(module, _NORMS):
        return "normalisation: its scale and shift stay float32"
    if isinstance(module, nn.Embedding | nn.EmbeddingBag):
        return "a table lookup (no products); stays float32"
    if isinstance(module, _NOT_SUPPORTED):
        return "not supported by lmul.torch: computes in float32"
    for base in CONVERTIBLE:
        if isinstance(module, base):
            return (f"a subclass of nn.{base.__name__} ({type(module).__name__}) may have its own "
                    "forward; only exact torch types are converted: computes in float32")
    if any(True for _ in module.parameters(recurse=False)):
        return f"{type(module).__name__} is not a layer lmul.torch converts: computes in float32"
    return None


def convert(model: nn.Module, cfg: LMulConfig | None = None, *, multiplier: str = "lmul",
            filter_fn: Selector = None, inplace: bool = False,
            rounding: str = "rne", accumulate: Fused | None = None) -> nn.Module:
    """Replace a model's layers by converted ones whose products are the MAC array's, bit for bit.

    Converted: ``nn.Linear``, ``nn.Conv1d``, ``nn.Conv2d`` (im2col; every stride, padding,
    padding mode, dilation, group count, bias), ``nn.LSTM``, ``nn.GRU``, ``nn.RNN`` (layers,
    bidirectional, batch_first, bias; LSTM ``proj_size``; dropout between layers is torch's),
    ``nn.LSTMCell``, ``nn.GRUCell``, ``nn.RNNCell`` and ``nn.MultiheadAttention`` (projections,
    query scaling, ``Q.K^T``, ``attention.V``, masks). Forward products are the bits of
    :func:`lmul.matmul` / :func:`lmul.elementwise_product`; gradients are straight-through (the
    exact product's), so the converted model can be fine-tuned. Only exact torch types are
    converted; everything else with parameters (norms, embeddings, ConvTranspose, Conv3d, user
    subclasses, ...) is left alone and listed, never approximated. Products written inline in a
    custom ``forward`` (``x * y``, ``F.linear``) are invisible to this function and stay float32.

    Args:
        model: the model (float32, CPU).
        cfg: L-Mul configuration (default BF16, paper offset).
        multiplier: ``"lmul"``, ``"exact"`` (IEEE product rounded to the format) or ``"seed"``.
        filter_fn: ``filter_fn(name, module) -> bool`` picks the convertible layers to convert
            (qualified names as in ``model.named_modules()``); or a dict ``{name: LMulConfig}``
            converting exactly the named layers, each with its configuration; None: all.
        inplace: convert ``model`` itself; False (default) converts a deep copy and leaves
            ``model`` untouched.
        rounding: how float32 operands are rounded to the format (``"rne"`` or ``"truncate"``).
        accumulate: how a matrix product sums its products: None (default, sequential binary32
            additions) or an :class:`lmul.Fused` (the fused processing element: steps of ``k``
            products with one rounding each), as :func:`lmul.matmul`; every converted layer
            gets it.

    Returns:
        The converted model (``model`` itself when ``inplace``; a converted layer itself when
        ``model`` is a convertible layer). Its ``lmul_report`` attribute is the
        :class:`ConversionReport`, also logged at INFO on the ``lmul.torch`` logger.

        Parameter sharing: each converted layer holds the *same* Parameter objects as the layer
        it replaced (kept for :func:`revert`), so fine-tuning the converted model updates the
        weights that ``revert`` brings back; with ``inplace=False`` those are the copy's.

    Raises:
        TypeError: ``model`` is not an ``nn.Module``, a bad cfg, filter or accumulate.
        ValueError: unknown multiplier or rounding; dict names that are not convertible layers
            of the model.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    cfg = LMulConfig() if cfg is None else cfg
    _check_options(cfg, multiplier, rounding, accumulate)
    if isinstance(filter_fn, Mapping):
        for name, c in filter_fn.items():
            if not isinstance(c, LMulConfig):
                raise TypeError(f"filter_fn[{name!r}] must be an lmul.LMulConfig, got "
                                f"{type(c).__name__}")
        known = {n for n, m in model.named_modules() if type(m) in CONVERTIBLE}
        unknown = sorted(set(filter_fn) - known)
        if unknown:
            raise ValueError(f"filter_fn names {unknown} are not convertible layers of the model; "
                             f"convertible: {sorted(known)}")
    elif filter_fn is not None and not callable(filter_fn):
        raise TypeError("filter_fn must be a callable (name, module) -> bool, a dict "
                        f"{{name: LMulConfig}} or None, got {type(filter_fn).__name__}")
    if not inplace:
        model = copy.deepcopy(model)
    report = ConversionReport()

    def choose(name: str, module: nn.Module) -> LMulConfig | None:
        if filter_fn is None:
            return cfg
        if isinstance(filter_fn, Mapping):
            return filter_fn.get(name)
        return cfg if filter_fn(name, module) else None

    def swap(name: str, module: nn.Module) -> nn.Module:
        """The replacement for ``module`` (itself when not converted); recurses otherwise."""
        if isinstance(module, _Converted):
            report.left_alone.append(LayerRecord(name, type(module).__name__,
                                                 "already converted: left as it is"))
            return module
        if type(module) in CONVERTIBLE:
            chosen = choose(name, module)
            if chosen is not None:
                new = CONVERTIBLE[type(module)].wrap(module, chosen, multiplier, rounding,
                                                     accumulate)
                detail = _describe(chosen, multiplier, rounding)
                if accumulate is not None:
                    detail += (f", fused accumulation k={accumulate.k} "
                               f"align_bits={accumulate.align_bits}")
                report.converted.append(LayerRecord(name, type(module).__name__, detail))
                return new
            why = ("not in the filter dict" if isinstance(filter_fn, Mapping)
                   else "excluded by filter_fn")
            report.left_alone.append(LayerRecord(name, type(module).__name__,
                                                 f"{why}: computes in float32"))
            if isinstance(module, nn.MultiheadAttention):
                # Its out_proj is read directly by its forward: converting it alone would do
                # nothing, so it is not offered to the filter.
                return module
        else:
            why = _reason_left_alone(module)
            if why is not None:
                report.left_alone.append(LayerRecord(name, type(module).__name__, why))
        for child_name, child in list(module.named_children()):
            new_child = swap(_qualify(name, child_name), child)
            if new_child is not child:
                setattr(module, child_name, new_child)
        return module

    model = swap("", model)
    # nn.TransformerEncoder may route a padded batch through nested tensors and fused kernels
    # that read the weights of its layers directly; converted layers must never be bypassed.
    for name, module in model.named_modules():
        if isinstance(module, nn.TransformerEncoder) and getattr(module, "use_nested_tensor",
                                                                 False) \
                and any(isinstance(m, _Converted) for m in module.modules()):
            module.__dict__["_lmul_saved_use_nested_tensor"] = True
            module.use_nested_tensor = False
            report.notes.append(f"{name or '(model)'}: nested-tensor fast path turned off (it "
                                "would bypass the converted layers); revert turns it back on")
    model.lmul_report = report
    _log.info("%s", report)
    return model


def revert(model: nn.Module) -> nn.Module:
    """Undo :func:`convert` in place: every converted layer is replaced by its original module.

    The originals are the very module objects that were converted (with ``inplace=False``: those
    of the copy), holding the same Parameter objects, so weights changed by fine-tuning the
    converted model are kept. Each original gets the converted layer's train/eval flag.

    Returns:
        ``model`` (or the original layer when ``model`` itself is a converted layer).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")

    def back(module: nn.Module) -> nn.Module:
        if isinstance(module, _Converted) and module.original is not None:
            orig = module.original
            orig.training = module.training
            return orig
        for child_name, child in list(module.named_children()):
            new_child = back(child)
            if new_child is not child:
                setattr(module, child_name, new_child)
        if module.__dict__.pop("_lmul_saved_use_nested_tensor", False):
            module.use_nested_tensor = True
        return module

    model = back(model)
    model.__dict__.pop("lmul_report", None)
    return model
