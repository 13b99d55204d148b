"""Inference arithmetic modes: which multiplier the LSTM's products use.

A mode string is ``NAME`` or ``NAME:key=value,...``:

* ``fp32``: float32 throughout. Matrix products are :func:`lmul.matmul_fp32`: the MAC array's
  order (bias first, then k = 0 .. K-1, each product and each sum rounded to float32, no fused
  multiply-add), so the bits are the same on every machine, which a BLAS ``sgemm`` (summation
  order chosen by the CPU's kernel) does not give; elementwise products are numpy's.
* ``bf16``: inputs rounded to BF16, exact products rounded to BF16 (``lmul.exact_mul``),
  binary32 accumulation in the array's order (``lmul.matmul(..., multiplier="exact")``).
  ``exact:e=4,m=3`` is the same for another format.
* ``lmul``: the L-Mul unit (``lmul.matmul(..., multiplier="lmul")`` and ``lmul.lmul``); options
  as :meth:`lmul.LMulConfig.parse` (``e``, ``m``, ``fmt``, ``offset``, ``saturate``), e.g.
  ``lmul:offset=7`` or ``lmul:e=4,m=3``. Default: BF16, the paper's offset.
* ``lmul-mitchell``: ``lmul`` with offset 0 (Mitchell's approximation); same options but offset.
* ``seed``: the seed notebook's multiplier (``lmul.seed_lmul``, bit for bit) through the fast
  kernel (``multiplier="seed"``) with float32 sums. The sum runs in the array's order (bias first,
  then k = 0 .. K-1), not the notebook's ``prod.sum(dim=2) + b`` (torch's pairwise/vectorized
  reduction, bias last), so the seed mode's accumulations may differ from the notebook's in the
  last bits; its products are identical.

Every mode but ``fp32`` and ``seed`` also takes ``rounding=rne|truncate`` (how float32 operands
are rounded to the format; default ``rne``; the seed multiplier always truncates). Every mode but
``fp32`` takes ``head=fp32``: the final linear layer (128 -> classes) then stays float32, as in
the seed notebook, whose L-Mul model only replaced the LSTM cell's products; by default the head
uses the mode too (in hardware it runs on the same MAC array). ``seed:head=fp32`` is therefore
the notebook's configuration. Every mode but ``fp32`` and ``seed`` also takes
``acc=fused,k=K,align=A``: the matrix products then accumulate in fused dot-product steps of K
products with an ALIGN_BITS = A window (``lmul.matmul(..., accumulate=lmul.Fused(K, A))``, the
arithmetic of ``hdl/dot_pe.v``, docs/dot_product.md); ``align=exact`` is A = 276 (the correctly
rounded sum); ``acc=seq`` (the default) is the sequential binary32 sum. Elementwise products are
unchanged. Equal configurations get the same canonical name (:attr:`Arithmetic.name`):
``lmul:offset=8`` is ``lmul``, ``lmul:acc=fused,k=8,align=exact`` is
``lmul:acc=fused,k=8,align=276``.

Every mode takes ``act=exact|<set>``: the LSTM cell's sigmoid and tanh. ``exact`` (the default)
is the correctly rounded ``lmul.sigmoid32`` / ``lmul.tanh32``; a shipped parameter set of the
activation unit (``lmul.ACT_PRESETS``: ``pwl16``, ``pwl64``, ``pwl256``) is the hardware's
piecewise-linear unit, bit for bit (``lmul.act_hw``, ``hdl/act_unit.v``, docs/activation.md),
e.g. ``lmul:act=pwl16`` or ``fp32:act=pwl64``. The canonical name ends in ``act=<set>`` when it
is not exact.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

import lmul

KINDS = ("fp32", "bf16", "exact", "lmul", "lmul-mitchell", "seed")
DEFAULT_MODES = ("fp32", "bf16", "lmul", "seed")


@dataclass(frozen=True)
class Arithmetic:
    """One inference arithmetic.

    Attributes:
        kind: ``fp32``, ``exact`` (``bf16`` is exact in BF16), ``lmul`` or ``seed``
            (``lmul-mitchell`` is ``lmul`` with offset 0).
        cfg: the format/unit configuration (unused by ``fp32``; ``seed`` is always BF16-truncate).
        rounding: ``rne`` or ``truncate``: float32 operand rounding to ``cfg.fmt``.
        name: canonical mode string, used as the results key.
        use_reference: use ``lmul.matmul_reference`` instead of the fast ``lmul.matmul`` (matrix
            products only; elementwise products have the same bits either way).
        fp32_head: the final linear layer (classifier) runs in float32 instead of this mode.
        accumulate: the matrix products' fused accumulation (None: sequential binary32 sums).
        activation: ``exact`` or the name of a shipped activation-unit set (``lmul.ACT_PRESETS``)
            for the cell's sigmoid and tanh.
    """

    kind: str
    cfg: lmul.LMulConfig
    rounding: str
    name: str
    use_reference: bool = False
    fp32_head: bool = False
    accumulate: lmul.Fused | None = None
    activation: str = "exact"

    def sigmoid(self, x: np.ndarray) -> np.ndarray:
        """Logistic sigmoid of float32 values -> float32: correctly rounded, or the unit's."""
        if self.activation == "exact":
            return lmul.sigmoid32(x)
        return lmul.act_hw(x, lmul.act_config(self.activation, "sigmoid"))

    def tanh(self, x: np.ndarray) -> np.ndarray:
        """tanh of float32 values -> float32: correctly rounded, or the unit's."""
        if self.activation == "exact":
            return lmul.tanh32(x)
        return lmul.act_hw(x, lmul.act_config(self.activation, "tanh"))

    def head_matmul(self, a: np.ndarray, b: np.ndarray, bias: np.ndarray) -> np.ndarray:
        """The classifier's ``bias + a . b``: float32 (:func:`lmul.matmul_fp32`) if
        :attr:`fp32_head`, else :meth:`matmul`."""
        if self.fp32_head:
            return lmul.matmul_fp32(a, b, bias)
        return self.matmul(a, b, bias)

    def matmul(self, a: np.ndarray, b: np.ndarray, bias: np.ndarray) -> np.ndarray:
        """``bias + a . b`` for float32 ``a [M,K]``, ``b [K,N]``, ``bias [N]`` -> float32 [M,N]."""
        if self.kind == "fp32":
            return lmul.matmul_fp32(a, b, bias)
        fn = lmul.matmul_reference if self.use_reference else lmul.matmul
        multiplier = {"exact": "exact", "lmul": "lmul", "seed": "seed"}[self.kind]
        return np.asarray(fn(a, b, bias, cfg=self.cfg, rounding=self.rounding,
                             multiplier=multiplier, accumulate=self.accumulate),
                          dtype=np.float32)

    def mul(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Elementwise product of float32 arrays with this mode's multiplier -> float32."""
        if self.kind == "fp32":
            return x * y
        # The same bits as lmul.lmul / exact_mul / seed_lmul (numpy arrays in, numpy out).
        return lmul.elementwise_product(x, y, self.cfg, self.rounding, multiplier=self.kind)

    def describe(self) -> dict[str, Any]:
        """JSON-ready description (format, offset, rounding, multiplier) for results files."""
        act = {} if self.activation == "exact" else {"activation": self.activation}
        if self.kind == "fp32":
            return {"multiplier": "fp32", **act}
        if self.kind == "seed":
            return {"multiplier": "seed", "format": "bf16", "rounding": "truncate",
                    "head": "fp32" if self.fp32_head else "mode", **act}
        d: dict[str, Any] = {"multiplier": self.kind, "format": self.cfg.fmt.name,
                             "exp_bits": self.cfg.exp_bits, "man_bits": self.cfg.man_bits,
                             "rounding": self.rounding}
        if self.kind == "lmul":
            d.update(offset=self.cfg.offset_value, saturate=self.cfg.saturate)
        d["head"] = "fp32" if self.fp32_head else "mode"
        if self.accumulate is not None:
            d.update(accumulate="fused", k=self.accumulate.k,
                     align_bits=self.accumulate.align_bits)
        d.update(act)
        return d


_ACC_KEYS = ("acc", "k", "align")


def _accumulation(opts: dict[str, str]) -> lmul.Fused | None:
    """The fused accumulation of the ``acc``, ``k``, ``align`` options (None for ``acc=seq``
    or none given); ValueError for an incomplete or bad combination."""
    acc = opts.get("acc", "seq")
    if acc not in ("seq", "fused"):
        raise ValueError(f"acc must be seq or fused, got {acc!r}")
    if acc == "seq":
        if "k" in opts or "align" in opts:
            raise ValueError("k= and align= need acc=fused")
        return None
    if "k" not in opts or "align" not in opts:
        raise ValueError("acc=fused needs k=K and align=A (A an integer or exact)")
    align = opts["align"]
    try:
        k = int(opts["k"])
        a = lmul.FUSED_EXACT_ALIGN_BITS if align == "exact" else int(align)
    except ValueError:
        raise ValueError(f"k and align must be integers (align may be exact), got "
                         f"k={opts['k']!r}, align={align!r}") from None
    return lmul.Fused(k, a)


def _split_options(text: str) -> tuple[str, str, bool, lmul.Fused | None]:
    """Take ``rounding=``, ``head=`` and the accumulation options out of an option string;
    return (rest, rounding, fp32_head, accumulate)."""
    rest, rounding, fp32_head = [], "rne", False
    acc_opts: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, _, value = (t.strip().lower() for t in item.partition("="))
        if key in _ACC_KEYS:
            if key in acc_opts:
                raise ValueError(f"{key}= given twice")
            acc_opts[key] = value
        elif key == "rounding":
            if value not in ("rne", "truncate"):
                raise ValueError(f"rounding must be rne or truncate, got {value!r}")
            rounding = value
        elif key == "head":
            if value not in ("fp32", "mode"):
                raise ValueError(f"head must be fp32 or mode, got {value!r}")
            fp32_head = value == "fp32"
        else:
            rest.append(item)
    return ",".join(rest), rounding, fp32_head, _accumulation(acc_opts)


def _acc_suffix(acc: lmul.Fused | None) -> list[str]:
    return [] if acc is None else ["acc=fused", f"k={acc.k}", f"align={acc.align_bits}"]


def _format_suffix(cfg: lmul.LMulConfig) -> list[str]:
    if (cfg.exp_bits, cfg.man_bits) == (8, 7):
        return []
    # fn=1: the finite-only (OCP E4M3FN) encoding of these widths.
    return [f"e={cfg.exp_bits}", f"m={cfg.man_bits}"] + (["fn=1"] if cfg.finite_only else [])


def _name(base: str, parts: list[str]) -> str:
    return base + (":" + ",".join(parts) if parts else "")


def _split_activation(opts: str) -> tuple[str, str]:
    """Take ``act=`` out of an option string: (rest, activation)."""
    rest, act = [], None
    for item in filter(None, (p.strip() for p in opts.split(","))):
        key, _, value = (t.strip().lower() for t in item.partition("="))
        if key != "act":
            rest.append(item)
            continue
        if act is not None:
            raise ValueError("act= given twice")
        if value != "exact" and value not in lmul.ACT_PRESETS:
            raise ValueError(f"act must be exact or one of {', '.join(lmul.ACT_PRESETS)}, "
                             f"got {value!r}")
        act = value
    return ",".join(rest), act or "exact"


def parse_mode(text: str, use_reference: bool = False) -> Arithmetic:
    """Parse a mode string (see the module docstring) into an :class:`Arithmetic`.

    Raises:
        ValueError: unknown mode, options where none are allowed, or a bad option; the message
        names the mode string.
    """
    base, sep, opts = text.strip().partition(":")
    try:
        opts, act = _split_activation(opts)
    except ValueError as err:
        raise ValueError(f"bad mode {text!r}: {err}") from None
    mode = _parse_multiplier(base + (sep if opts else "") + opts, use_reference)
    if act == "exact":
        return mode
    name = mode.name + ("," if ":" in mode.name else ":") + f"act={act}"
    return replace(mode, activation=act, name=name)


def _parse_multiplier(text: str, use_reference: bool) -> Arithmetic:
    """:func:`parse_mode` without the ``act=`` option."""
    kind, _, opts = text.strip().partition(":")
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise ValueError(f"unknown mode {text!r}; known: {', '.join(KINDS)} "
                         "(options after ':', e.g. lmul:offset=7)")
    try:
        rest, rounding, fp32_head, acc = _split_options(opts)
        tail = _acc_suffix(acc) + ([] if rounding == "rne" else [f"rounding={rounding}"]) + (
            ["head=fp32"] if fp32_head else [])
        if kind == "fp32":
            if opts.strip():
                raise ValueError("mode fp32 takes no options")
            return Arithmetic("fp32", lmul.LMulConfig(), "rne", "fp32", use_reference)
        if kind == "seed":
            if acc is not None:
                raise ValueError("mode seed takes no fused accumulation")
            if rest or rounding != "rne":
                raise ValueError("mode seed takes only head=fp32 (it is BF16 by truncation)")
            return Arithmetic("seed", lmul.LMulConfig(), "truncate", _name("seed", tail),
                              use_reference, fp32_head)
        cfg = lmul.LMulConfig.parse(rest)
        if kind in ("bf16", "exact"):
            if kind == "bf16" and (cfg.exp_bits, cfg.man_bits) != (8, 7):
                raise ValueError("bf16 is BF16; use exact:e=..,m=.. for another format")
            if cfg.offset is not None or cfg.saturate:
                raise ValueError("the exact multiplier has no offset/saturate options")
            fmt = _format_suffix(cfg)
            name = _name("exact", fmt + tail) if fmt else _name("bf16", tail)
            return Arithmetic("exact", cfg, rounding, name, use_reference, fp32_head, acc)
        parts = _format_suffix(cfg)
        if kind == "lmul-mitchell":
            if cfg.offset is not None:
                raise ValueError("lmul-mitchell fixes offset=0; use lmul:offset=N instead")
            cfg = lmul.LMulConfig(cfg.exp_bits, cfg.man_bits, 0, cfg.saturate, cfg.finite_only)
        elif cfg.offset is not None and cfg.offset != lmul.paper_offset(cfg.man_bits):
            parts.append(f"offset={cfg.offset}")
        if cfg.saturate:
            parts.append("saturate=1")
        return Arithmetic("lmul", cfg, rounding, _name(kind, parts + tail), use_reference,
                          fp32_head, acc)
    except ValueError as err:
        raise ValueError(f"bad mode {text!r}: {err}") from None


def split_modes(text: str) -> list[str]:
    """Split a ``--modes`` argument into mode strings.

    Modes are separated by commas, but a comma followed by ``key=value`` continues the previous
    mode's options: ``fp32,lmul:e=4,m=3,seed`` is ``["fp32", "lmul:e=4,m=3", "seed"]``.
    """
    modes: list[str] = []
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        if "=" in item and ":" not in item and modes:
            modes[-1] += "," + item
        else:
            modes.append(item)
    return modes
