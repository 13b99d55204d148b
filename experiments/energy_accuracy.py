"""Energy against accuracy: the design space of L-Mul MACs (sequential and fused accumulation).

    make energy-accuracy                                   # cost sweep, then this (EA=quick|full)
    python -m experiments.energy_accuracy --preset quick   # accuracy grid + join + report
    python -m experiments.energy_accuracy --report-only    # join and report what is there
    python -m experiments.energy_accuracy --executor ray   # every evaluation a Ray task

Designs: the multiplier (``exact`` BF16, L-Mul at the paper offset ``lmul``, L-Mul at offset 6
``lmul_o6``, the BF16 offset of least unit error, among the best on the network in make tune)
x the accumulation (the sequential binary32 PE ``mac_pe``, variant
``seq``; the fused ``dot_pe`` at K x ALIGN_BITS, variant ``k<K>-a<A>``). Their hardware cost
comes from ``python -m syn.cost --levels dot`` (``results/energy_cost/cost.json``: area, f_max,
energy per MAC with the MNIST LSTM's operands and uniform ones, clock + register energy apart
from the datapath); their accuracy from the LSTM grid (:func:`experiments.grid.run`) in the mode
each design computes bit for bit (:func:`mode_of`: ``bf16`` / ``lmul`` / ``lmul:offset=6``, with
``acc=fused,k=K,align=A`` for ``dot_pe``), float32-trained weights, paired differences to
``fp32`` per seed with 95 % t CIs. ``dot_pe`` with PIPELINE=1 (variant ``k<K>-a<A>-p1``: the
products registered before the sum) or PIPELINE=2 (``-p2``: the products pre-aligned to their
largest exponent and registered) computes the same bits as its single-stage twin, so the two
share one mode and its accuracy rows; the report says so and sets the pipelined rows' energy
terms (clock + registers, datapath, glitches) against the twin's.

Presets ``sweep`` and ``full`` also evaluate the designs on ``make tune``'s L-Mul-aware
fine-tuned weights (:class:`FineTuned`: its 3-epoch float32 models trained one more epoch with
the L-Mul unit at offset 8, 6 or 7 in the forward pass): each L-Mul design at a tuned offset on
the weights fine-tuned at that offset, each exact design on the float32 control's weights, Δ
paired with the control ``fp32 [ft1]``. Those weights are only read (committed reference
checkpoints, else make tune's checkpoint cache); rows whose weights do not exist yet are left
out and listed in the report, and a later run adds them (``--no-finetuned`` skips the step).

Formats (:data:`FORMATS`, looked up in ``lmul.PRESETS``): BF16, on which the three verdicts
are defined, and FP8 E4M3 (``e4m3_ieee``; ``python -m syn.cost --levels dot --formats
e4m3_ieee``): the exact E4M3 multiply and L-Mul at E4M3's paper offset 1 (modes
``exact:e=4,m=3`` / ``lmul:e=4,m=3``), sequential and fused (``Preset.other_formats``), on the
same float32-trained weights, and on make tune's FP8 fine-tuned weights where it trained them
(FashionMNIST: ``ftN:lmul:e=4,m=3``, ``ftN:exact:e=4,m=3``). They get their own section of the
report (energy against both the BF16 and the E4M3 sequential exact PE) and an addendum to
verdict 1 (:func:`format_verdict`), never the BF16 front or verdicts.

The join (:func:`join`) derives each design's mode from the parameters yosys elaborated for its
netlist (not from its name: format, multiplier, OFFSET, unset meaning the format's paper
offset) and refuses a row whose name, format, reported parameters and built parameters
disagree. The grid's rows go to ``results/energy_accuracy_runs.json``; outputs
(atomic): ``results/energy_accuracy.{json,csv,md,png}`` (the plot:
energy per MAC against the accuracy difference, one point per design, the Pareto front drawn);
``--snapshot`` copies them to ``docs/results/``. Everything resumes: the grid skips finished
rows and reuses cached weights; the cost flow has its own per-design cache.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import re
import shutil
import sys
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.lib.cli import run_main
from sim.lib.fileio import RESULTS_DIR, SNAPSHOT_DIR, atomic_write_bytes, atomic_write_text

from . import executor as executor_mod
from .stats import Summary, paired_differences, summarize

#: ``python -m syn.cost --levels dot --formats bf16 --out results/energy_cost`` writes this.
DEFAULT_COST = RESULTS_DIR / "energy_cost" / "cost.json"
#: The multipliers of the sweep: cost unit -> the LSTM mode of that multiplier (BF16).
UNIT_MODES = {"exact": "bf16", "lmul": "lmul", "lmul_o6": "lmul:offset=6"}
#: The operand formats the study joins (names of ``lmul.PRESETS``, the model's one format
#: table): BF16, on which the three verdicts are defined, then the IEEE-style FP8 E4M3, the FP8
#: format make tune's L-Mul-aware fine-tuning showed to work (docs/results/tune.md).
FORMATS = ("bf16", "e4m3_ieee")
BASE_FORMAT = "bf16"
#: MACs of one MNIST image through the LSTM (28 steps x 156 x 4*128 gate products, then the
#: 128 -> 10 head); element-wise products (28 x 3 x 128) are not MACs.
LSTM_STEPS, LSTM_IN, LSTM_HIDDEN, LSTM_CLASSES = 28, 28, 128, 10
MACS_PER_IMAGE = (LSTM_STEPS * (LSTM_IN + LSTM_HIDDEN) * 4 * LSTM_HIDDEN
                  + LSTM_HIDDEN * LSTM_CLASSES)
#: The energy figure the verdicts use: MNIST operands, cell delays (glitches counted).
ENERGY_KEY = "mnist/specify"
TARGET_RATIO = 0.25


class JoinError(ValueError):
    """Cost and accuracy results that cannot be joined (mismatched or malformed designs)."""


@dataclass(frozen=True)
class FineTuned:
    """The rows on ``make tune``'s L-Mul-aware fine-tuned weights (:mod:`experiments.tune`,
    step 2: the float32 model after ``epochs`` epochs trained ``finetune_epochs`` more with a
    BF16 L-Mul unit's products in the forward pass, recipe ``ft<N>`` of
    :mod:`experiments.recipes`). Each L-Mul design whose offset is in ``offsets`` is evaluated
    on the weights fine-tuned at its offset (recipe ``ftN:<its multiplier>``: the same
    checkpoint as ``make tune``'s ``<multiplier> [ftN]`` row), the exact designs (``exact``) on
    the float32 control's (``ftN:fp32``: the same N extra epochs in float32), and ``fp32`` on
    the control (``fp32 [ftN]``), which every such row is paired with. In the other formats of
    ``formats`` (make tune's FP8 fine-tuning) both the L-Mul designs at the format's paper
    offset and the exact ones read the weights fine-tuned in their own multiplier
    (``ftN:lmul:e=4,m=3``, ``ftN:exact:e=4,m=3``: make tune's rows of those modes), on the
    datasets ``format_datasets`` only (the others have no such weights). These weights are
    only read, never trained here (:func:`ft_weights_present`)."""

    #: float32 epochs before fine-tuning, on the whole training set (make tune's full preset)
    epochs: int = 3
    finetune_epochs: int = 1
    #: the BF16 L-Mul offsets make tune fine-tunes (the paper's and its sweep's best two)
    offsets: tuple[int, ...] = (8, 6, 7)
    test_limit: int | None = 2000
    train_limit: int | None = None
    exact: bool = True
    #: formats other than BF16 that make tune fine-tunes (its FP8 step), and the datasets it
    #: fine-tunes them on (its full preset: FashionMNIST only)
    formats: tuple[str, ...] = ("e4m3_ieee",)
    format_datasets: tuple[str, ...] = ("fashion",)

    def trained_on(self, recipe: str, datasets: Sequence[str]) -> tuple[str, ...]:
        """Those of ``datasets`` on which make tune trains the weights of ``recipe`` (a
        recipe of :func:`ft_recipe`): all for BF16 and the control, ``format_datasets`` for
        the other formats."""
        from .recipes import parse_recipe

        train = parse_recipe(recipe, self.finetune_epochs).train
        fmt = None if train is None else mode_format(train.name)
        if fmt is None or fmt == BASE_FORMAT:
            return tuple(datasets)
        return tuple(ds for ds in datasets if ds in self.format_datasets)

    @property
    def ft(self) -> str:
        """The fine-tuning recipe's name (``ft1``)."""
        return f"ft{self.finetune_epochs}"

    @property
    def control(self) -> str:
        """The float32 control's row label (``fp32 [ft1]``)."""
        return f"fp32 [{self.ft}]"


@dataclass(frozen=True)
class Preset:
    """The accuracy grid's scope: datasets x seeds, float32 training epochs, test images
    (``test_limit``: the first N, None = all), training images (``train_limit``, None = all),
    and the fused designs (K x ALIGN_BITS) evaluated besides the sequential ones."""

    name: str
    datasets: tuple[str, ...]
    seeds: tuple[int, ...]
    epochs: int
    test_limit: int | None
    ks: tuple[int, ...]
    align_bits: tuple[int, ...]
    out: Path
    cost: Path = DEFAULT_COST
    train_limit: int | None = None
    #: the fused (K, ALIGN_BITS) pairs instead of the ks x align_bits grid, when given
    pairs: tuple[tuple[int, int], ...] | None = None
    #: the rows on make tune's fine-tuned weights (None: float32-trained weights only)
    finetuned: FineTuned | None = None
    #: designs in formats other than BF16 (:data:`FORMATS`): per format the fused
    #: (K, ALIGN_BITS) pairs evaluated besides its sequential PE, each with the exact multiply
    #: and L-Mul at the format's paper offset (:func:`format_unit_modes`)
    other_formats: tuple[tuple[str, tuple[tuple[int, int], ...]], ...] = ()

    @property
    def report_stem(self) -> Path:
        """Where the report goes: ``out`` without its ``_runs.json`` (json/csv/md/png)."""
        return self.out.with_name(self.out.name.removesuffix(".json").removesuffix("_runs"))


PRESETS = {
    "quick": Preset("quick", ("mnist",), (0, 1), 1, 500, (2,), (8,),
                    RESULTS_DIR / "energy_accuracy_quick_runs.json",
                    RESULTS_DIR / "energy_cost_quick" / "cost.json"),
    "medium": Preset("medium", ("mnist", "fashion"), (0, 1, 2), 1, 2000, (8,), (8, 16, 276),
                     RESULTS_DIR / "energy_accuracy_runs.json", train_limit=10000),
    "sweep": Preset("sweep", ("mnist", "fashion"), (0, 1, 2, 3, 4), 1, 2000, (), (),
                    RESULTS_DIR / "energy_accuracy_sweep_runs.json", train_limit=10000,
                    pairs=((4, 8), (8, 8), (16, 8), (8, 16), (8, 32), (8, 276), (4, 16),
                           (4, 32), (4, 276), (2, 8)), finetuned=FineTuned(),
                    other_formats=(("e4m3_ieee", ((8, 8),)),)),
    "full": Preset("full", ("mnist", "fashion"), (0, 1, 2, 3, 4), 1, None, (4, 8, 16),
                   (8, 16, 32, 276), RESULTS_DIR / "energy_accuracy_full_runs.json",
                   finetuned=FineTuned(test_limit=None),
                   other_formats=(("e4m3_ieee", ((8, 8),)),)),
}


def format_of_params(params: dict[str, int], what: str = "design") -> str:
    """The name in :data:`FORMATS` of the operand format a netlist with these Verilog
    parameters computes in (EXP_BITS, MAN_BITS, FINITE_ONLY looked up in ``lmul.PRESETS``).
    JoinError for any other format (``what`` names the design in the message)."""
    import lmul

    key = (params.get("EXP_BITS"), params.get("MAN_BITS"), bool(params.get("FINITE_ONLY", 0)))
    try:
        name = lmul.format_for(*key).name
    except (TypeError, ValueError):
        name = None
    if name in FORMATS:
        return name
    raise JoinError(f"{what} with EXP_BITS={key[0]}, MAN_BITS={key[1]}, FINITE_ONLY="
                    f"{int(key[2])}: not a format of the sweep ({', '.join(FORMATS)})")


def format_paper_offset(fmt: str) -> int:
    """The paper's L-Mul offset of format ``fmt`` (a name of ``lmul.PRESETS``), in mantissa
    LSBs: 8 for BF16, 1 for E4M3."""
    import lmul

    return lmul.paper_offset(lmul.PRESETS[fmt].man_bits)


def format_unit_modes(fmt: str) -> dict[str, str]:
    """The multipliers of format ``fmt`` the sweep evaluates: cost unit -> canonical mode
    (``exact`` and ``lmul`` at the format's paper offset; for BF16 :data:`UNIT_MODES`)."""
    from .modes import parse_mode

    if fmt == BASE_FORMAT:
        return dict(UNIT_MODES)
    return {"exact": parse_mode(f"exact:fmt={fmt}").name,
            "lmul": parse_mode(f"lmul:fmt={fmt},offset={format_paper_offset(fmt)}").name}


def mode_format(mode: str) -> str | None:
    """The :data:`FORMATS` name of ``mode``'s operand format, or None (``fp32``, another
    format)."""
    from .modes import parse_mode

    a = parse_mode(mode)
    if a.kind == "fp32":
        return None
    return a.cfg.fmt.name if a.cfg.fmt.name in FORMATS else None


def fused_mode(base: str, k: int, align_bits: int) -> str:
    """The mode string of multiplier mode ``base`` with fused accumulation (K, ALIGN_BITS)."""
    return f"{base}{',' if ':' in base else ':'}acc=fused,k={k},align={align_bits}"


def preset_modes(p: Preset) -> list[str]:
    """``fp32``, the sequential modes, then the fused ones (K, ALIGN_BITS, multiplier); then
    per other format (``p.other_formats``) its sequential and fused modes."""
    out = ["fp32", *UNIT_MODES.values()]
    pairs = p.pairs if p.pairs is not None else [(k, a) for k in p.ks for a in p.align_bits]
    out += [fused_mode(m, k, a) for k, a in pairs for m in UNIT_MODES.values()]
    for fmt, fpairs in p.other_formats:
        units = format_unit_modes(fmt).values()
        out += [*units, *(fused_mode(m, k, a) for k, a in fpairs for m in units)]
    return out


def multiplier_mode(mode: str) -> str:
    """The canonical mode of ``mode``'s multiplier alone (its accumulation option dropped):
    ``lmul:offset=6,acc=fused,k=4,align=8`` -> ``lmul:offset=6``."""
    from .modes import parse_mode

    a = parse_mode(mode)
    return a.name if a.accumulate is None else parse_mode(re.sub(
        r",?acc=fused,k=\d+,align=\d+", "", a.name).rstrip(":")).name


def ft_recipe(mode: str, ft: FineTuned) -> str | None:
    """The recipe whose weights design mode ``mode`` is evaluated on (:class:`FineTuned`):
    ``ftN`` for ``fp32`` (the control), ``ftN:<multiplier>`` for a BF16 L-Mul mode at a
    fine-tuned offset, ``ftN:fp32`` for an exact BF16 mode (when ``ft.exact``); in a format
    of ``ft.formats`` ``ftN:<multiplier>`` for L-Mul at the format's paper offset and (when
    ``ft.exact``) for the exact multiply; None for any other mode."""
    from .modes import parse_mode

    a = parse_mode(mode)
    if a.kind == "fp32":
        return ft.ft
    fmt = mode_format(mode)
    if a.fp32_head or fmt is None:
        return None
    if fmt != BASE_FORMAT:
        if fmt not in ft.formats or a.cfg.saturate:
            return None
        if (a.kind == "exact" and ft.exact) or (
                a.kind == "lmul" and a.cfg.offset_value == format_paper_offset(fmt)):
            return f"{ft.ft}:{multiplier_mode(mode)}"
        return None
    if a.kind == "exact":
        return f"{ft.ft}:fp32" if ft.exact else None
    if a.kind == "lmul" and a.cfg.offset_value in ft.offsets:
        return f"{ft.ft}:{multiplier_mode(mode)}"
    return None


def ft_label(mode: str, ft: FineTuned) -> str | None:
    """The results' row label of ``mode`` on its fine-tuned weights (``MODE [RECIPE]``), or
    None (:func:`ft_recipe`)."""
    from .modes import parse_mode
    from .recipes import parse_recipe

    recipe = ft_recipe(mode, ft)
    return None if recipe is None else parse_recipe(recipe).label(parse_mode(mode).name)


def ft_groups(p: Preset, only: Collection[str] | None = None) -> list[tuple[str, list[str]]]:
    """The fine-tuned rows of preset ``p`` as (recipe, modes) in run order: the float32
    control, the L-Mul offsets (tuned offsets before the paper's), then the exact designs on
    the control's weights (the slowest to evaluate). ``only``: of the preset's modes just
    these (and ``fp32``, the control). [] without ``p.finetuned``."""
    if p.finetuned is None:
        return []
    groups: dict[str, list[str]] = {}
    for m in preset_modes(p):
        if only is not None and m != "fp32" and m not in only:
            continue
        r = ft_recipe(m, p.finetuned)
        if r is not None:
            groups.setdefault(r, []).append(m)

    def order(item: tuple[str, list[str]]) -> tuple[int, bool]:
        r = item[0]
        return (0 if r == p.finetuned.ft else 2 if r.endswith(":fp32") else 1,
                r == f"{p.finetuned.ft}:lmul")
    return sorted(groups.items(), key=order)


def ft_weights_present(dataset: str, seed: int, recipe: str, mode: str, ft: FineTuned,
                       weights_dir: Path, reference: bool = True) -> bool:
    """Whether the weights of ``recipe`` evaluated in ``mode`` for (dataset, seed) can be read
    without training: a committed reference checkpoint of the recipe
    (:func:`experiments.weights.recipe_reference_key`), or its file in the checkpoint cache
    ``weights_dir`` together with the float32 base it was fine-tuned from; and the cell's
    float32 weights (which the grid loads for every cell) committed or cached."""
    from . import lstm
    from .modes import parse_mode
    from .recipes import checkpoint_tag, parse_recipe
    from .weights import REFERENCE_SHA256, recipe_reference_key, reference_key

    tag = f"{dataset}-rows-h{lstm.HIDDEN}" + ("" if ft.train_limit is None
                                              else f"-train{ft.train_limit}")
    rcp = parse_recipe(recipe, ft.finetune_epochs)
    arith = rcp.train_arith(parse_mode(mode))
    if arith is None:
        return False
    base_cached = lstm.checkpoint_path(weights_dir, tag, seed, ft.epochs).is_file()
    if not (base_cached or (reference and reference_key(tag, seed, ft.epochs)
                            in REFERENCE_SHA256)):
        return False
    if reference and recipe_reference_key(tag, seed, ft.epochs, rcp, arith) in REFERENCE_SHA256:
        return True
    total = ft.epochs + rcp.epochs
    return base_cached and lstm.checkpoint_path(
        weights_dir, checkpoint_tag(tag, rcp, arith, ft.epochs), seed, total).is_file()


def run_finetuned(p: Preset, *, only: Collection[str] | None = None, executor: Any = None,
                  task_cpus: int = 1, retries: int = 1, reference: bool = True,
                  weights_dir: Path | None = None, data_root: Path | None = None,
                  load_fn: Any = None, progress: bool = True, log: Any = None) -> list[str]:
    """Evaluate preset ``p``'s fine-tuned rows (:func:`ft_groups`, ``only`` those modes)
    whose weights exist (:func:`ft_weights_present`) into ``p.out``; return one line per
    (recipe, dataset) whose weights are missing for some seeds (those rows are left for a
    later run: this study never trains them)."""
    from . import grid

    ft = p.finetuned
    if ft is None:
        return []
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    wdir = Path(weights_dir) if weights_dir is not None else Path(p.out).parent / "weights"
    missing = []
    for recipe, modes in ft_groups(p, only):
        jobs = []
        for ds in ft.trained_on(recipe, p.datasets):
            have = [s for s in p.seeds
                    if ft_weights_present(ds, s, recipe, modes[0], ft, wdir, reference)]
            if len(have) < len(p.seeds):
                missing.append(f"{recipe} weights, {ds} seeds "
                               + ", ".join(str(s) for s in p.seeds if s not in have))
            jobs += [grid.Job([ds], [s], ft.epochs) for s in have]
        if not jobs:
            continue
        log(f"fine-tuned rows: recipe {recipe}, {len(modes)} modes x {len(jobs)} cells")
        grid.run(jobs, modes, p.out, weights_dir=weights_dir, data_root=data_root,
                 test_limit=ft.test_limit, train_limit=ft.train_limit, recipes=[recipe],
                 finetune_epochs=ft.finetune_epochs, executor=executor, task_cpus=task_cpus,
                 retries=retries, reference=reference, load_fn=load_fn, progress=progress,
                 log=log)
    for line in missing:
        log(f"not evaluated (weights not trained by make tune yet): {line}")
    for line in ft_not_trained(p.finetuned, ft_groups(p, only), p.datasets):
        log(f"not evaluated: {line}")
    return missing


def ft_not_trained(ft: FineTuned, groups: Sequence[tuple[str, Sequence[str]]],
                   datasets: Sequence[str]) -> list[str]:
    """One line per (recipe, dataset) that make tune never fine-tunes (a format other than
    BF16 on a dataset outside ``ft.format_datasets``), with the reason."""
    out = []
    for recipe, _modes in groups:
        skip = [ds for ds in datasets if ds not in ft.trained_on(recipe, datasets)]
        if skip:
            out.append(f"`{recipe}` weights on {' and '.join(skip)}: make tune's full preset "
                       f"fine-tunes {', '.join(ft.formats)} on "
                       f"{' and '.join(ft.format_datasets)} only")
    return out


def mode_of(params: dict[str, int], top: str) -> str:
    """The canonical LSTM mode that computes what a design with these Verilog parameters
    computes: its format (:func:`format_of_params`), multiplier and, for L-Mul, OFFSET (the
    format's paper offset when unset). JoinError for a design outside the sweep (a format not
    in :data:`FORMATS`, SATURATE=1, unknown top or multiplier, a bad offset)."""
    from .modes import parse_mode

    fmt = format_of_params(params, top)
    if params.get("SATURATE", 0):
        raise JoinError(f"{top} with SATURATE={params['SATURATE']}: not a design of the sweep")
    if params.get("MULTIPLIER") == 1:
        base = parse_mode(f"exact:fmt={fmt}").name
    elif params.get("MULTIPLIER") == 0:
        off = params.get("OFFSET", format_paper_offset(fmt))
        try:
            base = parse_mode(f"lmul:fmt={fmt},offset={off}").name
        except ValueError as err:
            raise JoinError(f"{top}: {err}") from None
    else:
        raise JoinError(f"{top}: MULTIPLIER={params.get('MULTIPLIER')} is neither 0 nor 1")
    if top == "mac_pe":
        return parse_mode(base).name
    if top == "dot_pe":
        return parse_mode(fused_mode(base, params["K"], params["ALIGN_BITS"])).name
    if top == "mac_array":
        if params.get("DOT_K", 1) == 1:
            return parse_mode(base).name
        return parse_mode(fused_mode(base, params["DOT_K"], params["ALIGN_BITS"])).name
    raise JoinError(f"top {top} is not a design of the sweep (mac_pe, dot_pe, mac_array)")


_NAME_RE = re.compile(r"dot-(\w+?)-(exact|lmul|lmul_o\d+)-(seq|k(\d+)-a(\d+)(-p[123])?(-array)?)")


def check_design(r: dict[str, Any]) -> None:
    """JoinError unless the cost row's name, its parameters and the parameters yosys built its
    netlist with agree."""
    name = r.get("name", "")
    m = _NAME_RE.fullmatch(name)
    if m is None:
        raise JoinError(f"cost row {name!r} is not a dot-level design")
    params, built = r["params"], r["synth"].get("params", {})
    wrong = [f"{k}={built.get(k, 'unset')} (reported {v})" for k, v in params.items()
             if built.get(k) != v]
    if wrong:
        raise JoinError(f"{name}: netlist built with {', '.join(wrong)}")
    fmt = format_of_params(built, f"{name}'s netlist")
    if m.group(1) != fmt:
        raise JoinError(f"{name}: netlist is {fmt} (EXP_BITS={built.get('EXP_BITS')}, "
                        f"MAN_BITS={built.get('MAN_BITS')}), not {m.group(1)}")
    if r.get("format", fmt) != fmt:
        raise JoinError(f"{name}: reported format {r['format']}, netlist is {fmt}")
    unit, variant = m.group(2), m.group(3)
    array = m.group(7) == "-array"
    if (variant == "seq") != (r["top"] == "mac_pe") or array != (r["top"] == "mac_array"):
        raise JoinError(f"{name}: variant {variant} but top {r['top']}")
    k_key = "DOT_K" if array else "K"
    if variant != "seq" and (int(m.group(4)), int(m.group(5))) != (built.get(k_key),
                                                                      built.get("ALIGN_BITS")):
        raise JoinError(f"{name}: netlist has {k_key}={built.get(k_key)}, "
                        f"ALIGN_BITS={built.get('ALIGN_BITS')}")
    want_pipeline = int(m.group(6)[2:]) if m.group(6) else 0
    if r["top"] != "mac_pe" and built.get("PIPELINE", 0) != want_pipeline:
        raise JoinError(f"{name}: netlist has PIPELINE={built.get('PIPELINE', 0)}")
    want_mult = 1 if unit == "exact" else 0
    if built.get("MULTIPLIER") != want_mult:
        raise JoinError(f"{name}: netlist has MULTIPLIER={built.get('MULTIPLIER')}")
    if unit.startswith("lmul_o") and built.get("OFFSET") != int(unit[6:]):
        raise JoinError(f"{name}: netlist has OFFSET={built.get('OFFSET')}")
    paper = format_paper_offset(fmt)
    if unit == "lmul" and built.get("OFFSET", paper) != paper:
        raise JoinError(f"{name}: netlist has OFFSET={built.get('OFFSET')}, not the paper's "
                        f"({paper} for {fmt})")


def _per_op(r: dict[str, Any], key: str, part: str | None = None) -> float:
    run = r["runs"].get(key)
    if run is None:
        return math.nan
    if part is None:
        return float(run["energy_per_op_pj"])
    return float(run["energy"][part]) / run["ops"] * 1e12


def _fixed_order_last(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``runs`` with the records summed in the fixed float32 order after the others (a stable
    sort), so that where a cell has both, the fixed-order one is the one kept."""
    from .store import FP32_ORDER, LEGACY_FP32_ORDER

    return sorted(runs, key=lambda r: r.get("fp32_order", LEGACY_FP32_ORDER) == FP32_ORDER)


def accuracies(doc: dict[str, Any], test_limit: int | None, epochs: int,
               train_limit: int | None = None) -> dict[tuple[str, str], dict[int, float]]:
    """{(dataset, mode): {seed: accuracy %}} of the grid's rows (fp32-trained, rows) with
    these test / training limits and epochs; a float32 row summed in the fixed order wins over
    one stored before it (BLAS order)."""
    out: dict[tuple[str, str], dict[int, float]] = {}
    for run in _fixed_order_last(doc.get("runs", [])):
        if run.get("recipe") or run.get("seq") != "rows" or run.get("epochs") != epochs \
                or run.get("test_limit") != test_limit \
                or run.get("train_limit") != train_limit:
            continue
        out.setdefault((run["dataset"], run["mode"]), {})[int(run["seed"])] = \
            float(run["accuracy"])
    return out


def ft_accuracies(doc: dict[str, Any], ft: FineTuned
                  ) -> dict[tuple[str, str], dict[int, float]]:
    """{(dataset, row label): {seed: accuracy %}} of the grid's rows on fine-tuned weights
    (``MODE [RECIPE]``, rows) with ``ft``'s base epochs, fine-tuning epochs and limits."""
    out: dict[tuple[str, str], dict[int, float]] = {}
    for run in ft_runs(doc, ft):
        out.setdefault((run["dataset"], run["mode"]), {})[int(run["seed"])] = \
            float(run["accuracy"])
    return out


def ft_runs(doc: dict[str, Any], ft: FineTuned) -> list[dict[str, Any]]:
    """The records of ``doc`` on fine-tuned weights that :func:`ft_accuracies` reads."""
    return [run for run in _fixed_order_last(doc.get("runs", []))
            if run.get("recipe") and run.get("seq") == "rows" and run.get("epochs") == ft.epochs
            and run.get("finetune_epochs") == ft.finetune_epochs
            and run.get("finetune_limit") is None and run.get("test_limit") == ft.test_limit
            and run.get("train_limit") == ft.train_limit]


def carried_accuracy(path: Path) -> tuple[dict[str, dict[str, Summary | None]],
                                           dict[str, Any]]:
    """The accuracy columns of an earlier report of this study (its ``.json``): per mode the
    ``<dataset>_delta`` / ``<dataset>_acc`` summaries, and that report's meta (preset, seeds,
    epochs, test and training limits). JoinError if the file is not such a report."""
    if not path.is_file():
        raise JoinError(f"{path} not found")
    doc = json.loads(path.read_text(encoding="utf-8"))
    if "designs" not in doc or "meta" not in doc:
        raise JoinError(f"{path} is not an energy_accuracy report")
    out: dict[str, dict[str, Summary | None]] = {}
    for r in doc["designs"]:
        out[r["mode"]] = {k: (Summary(**v) if isinstance(v, dict) else None)
                          for k, v in r.items() if k.endswith(("_delta", "_acc"))}
    return out, doc["meta"]


def join(cost_doc: dict[str, Any], acc: dict[tuple[str, str], dict[int, float]],
         datasets: Sequence[str],
         carried: dict[str, dict[str, Summary | None]] | None = None,
         ft: FineTuned | None = None,
         ft_acc: dict[tuple[str, str], dict[int, float]] | None = None) -> list[dict[str, Any]]:
    """One row per cost design: its mode, hardware figures (pJ per MAC), and per dataset the
    paired difference to ``fp32`` (percentage points). Raises JoinError (see
    :func:`check_design`); a design whose mode has no accuracy rows takes them from
    ``carried`` (:func:`carried_accuracy`, ``accuracy_from`` set), else gets None deltas.
    With ``ft``: ``ft_weights`` (the recipe of its fine-tuned weights, :func:`ft_recipe`, or
    None) and per dataset ``<ds>_ft_delta`` / ``<ds>_ft_acc`` from ``ft_acc``
    (:func:`ft_accuracies`), the difference paired with the float32 control ``fp32 [ftN]``."""
    rows = []
    seen: dict[str, str] = {}
    for r in cost_doc["designs"]:
        if r.get("level") != "dot":
            continue
        check_design(r)
        mode = mode_of(r["synth"]["params"], r["top"])
        # PIPELINE moves a register, not a bit: a pipelined PE shares its twin's mode
        pipeline = int(r["synth"]["params"].get("PIPELINE", 0)) if r["top"] != "mac_pe" else 0
        key = (mode, pipeline, r["top"] == "mac_array")
        if key in seen:
            raise JoinError(f"{r['name']} and {seen[key]} are the same design ({mode})")
        seen[key] = r["name"]
        row: dict[str, Any] = {
            "design": r["name"], "mode": mode, "format": format_of_params(r["synth"]["params"]),
            "unit": r["unit"], "top": r["top"],
            "k": r["params"].get("K", r["params"].get("DOT_K", 1)),
            "align_bits": r["params"].get("ALIGN_BITS"),
            "pipeline": pipeline,
            "area_um2": r["synth"]["area"], "fmax_mhz": 1000.0 / r["timing"]["min_period_ns"],
            "period_ns": r["period_ns"]}
        for wl in ("mnist", "uniform"):
            key = f"{wl}/specify"
            row[f"e_{wl}_pj"] = _per_op(r, key)
            row[f"e_{wl}_zero_pj"] = _per_op(r, f"{wl}/zero")
            row[f"clkreg_{wl}_pj"] = _per_op(r, key, "clock_and_registers")
            row[f"datapath_{wl}_pj"] = _per_op(r, key, "datapath")
            row[f"leak_{wl}_pj"] = _per_op(r, key, "leakage")
        row["accuracy_from"] = None
        for ds in datasets:
            base, this = acc.get((ds, "fp32"), {}), acc.get((ds, mode), {})
            d = paired_differences(this, base)
            row[f"{ds}_delta"] = summarize(d) if d else None
            row[f"{ds}_acc"] = (summarize([this[s] for s in sorted(this)]) if this else None)
        if all(row[f"{ds}_delta"] is None for ds in datasets) and carried and mode in carried:
            row["accuracy_from"] = "carried"
            for ds in datasets:
                row[f"{ds}_delta"] = carried[mode].get(f"{ds}_delta")
                row[f"{ds}_acc"] = carried[mode].get(f"{ds}_acc")
        if ft is not None:
            label = ft_label(mode, ft)
            row["ft_weights"] = ft_recipe(mode, ft)
            for ds in datasets:
                this = (ft_acc or {}).get((ds, label), {}) if label else {}
                d = paired_differences(this, (ft_acc or {}).get((ds, ft.control), {}))
                row[f"{ds}_ft_delta"] = summarize(d) if d else None
                row[f"{ds}_ft_acc"] = (summarize([this[s] for s in sorted(this)]) if this
                                       else None)
        rows.append(row)
    return rows


def pareto(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the Pareto-optimal points (energy x: lower is better; delta y: higher is
    better), by increasing energy. A point is dominated if another has energy <= and delta >=
    with one of them strict; NaN points are never on the front."""
    idx = [i for i, (x, y) in enumerate(points) if not (math.isnan(x) or math.isnan(y))]
    front = []
    for i in idx:
        xi, yi = points[i]
        if not any((points[j][0] <= xi and points[j][1] >= yi)
                   and (points[j][0] < xi or points[j][1] > yi) for j in idx):
            front.append(i)
    return sorted(front, key=lambda i: (points[i][0], -points[i][1]))


def _mean(s: Summary | None) -> float:
    return math.nan if s is None else s.mean


def _worst_delta(row: dict[str, Any], datasets: Sequence[str], kind: str = "delta") -> float:
    """The design's accuracy cost: the lower of its mean deltas over the datasets (``kind``
    ``delta``: float32-trained weights, ``ft_delta``: fine-tuned weights)."""
    means = [_mean(row.get(f"{ds}_{kind}")) for ds in datasets]
    return math.nan if any(math.isnan(m) for m in means) else min(means)


def _summary_dict(s: Summary | None) -> dict[str, Any] | None:
    return None if s is None else dict(s.__dict__)


def _includes_zero(s: Summary | None) -> bool:
    return s is not None and not math.isnan(s.ci_low) and s.ci_low <= 0.0 <= s.ci_high


def _fmt_delta(s: Summary | None) -> str:
    if s is None:
        return "—"
    if s.n < 2:
        return f"{s.mean:+.2f} (n={s.n})"
    return f"{s.mean:+.2f} [{s.ci_low:+.2f}, {s.ci_high:+.2f}]"


def _find(rows: Sequence[dict[str, Any]], unit: str, top: str, k: int = 1,
          align: int | None = None, pipeline: int = 0, fmt: str = BASE_FORMAT
          ) -> dict[str, Any] | None:
    for r in rows:
        if (r.get("format", BASE_FORMAT), r["unit"], r["top"], r["k"], r["align_bits"],
                r.get("pipeline", 0)) == (fmt, unit, top, k, align, pipeline):
            return r
    return None


def pipeline_pairs(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each PIPELINE=1 or 2 design with its single-stage twin (same unit, K, ALIGN_BITS) of the
    same cost files: pJ per MAC (MNIST operands) of both, split into clock + registers, datapath
    and glitches (cell-delay minus zero-delay simulation), and the ratio to the sequential exact
    PE (``ratio_to_seq_exact``, set by :func:`report`)."""
    out = []
    for r in rows:
        if not r.get("pipeline"):
            continue
        twin = _find(rows, r["unit"], "dot_pe", r["k"], r["align_bits"], 0,
                     r.get("format", BASE_FORMAT))
        if twin is None:
            continue
        out.append({"design": r["design"], "twin": twin["design"], **{
            f"{tag}_{part}": row[key] for tag, row in (("p1", r), ("p0", twin))
            for part, key in (("pj", "e_mnist_pj"), ("clkreg", "clkreg_mnist_pj"),
                              ("datapath", "datapath_mnist_pj"), ("zero", "e_mnist_zero_pj"),
                              ("area", "area_um2"), ("fmax", "fmax_mhz"))}})
        for tag in ("p1", "p0"):
            out[-1][f"{tag}_glitch"] = out[-1][f"{tag}_pj"] - out[-1][f"{tag}_zero"]
    return out


def cell_rest(cost_doc: dict[str, Any], unit: str) -> dict[str, Any] | None:
    """The rest of the LSTM cell per MNIST image for a design whose multiplier is ``unit``
    (``exact``; any L-Mul unit takes the ``lmul`` element-wise multiplier): from the cost rows
    of ``syn.cost --levels cell`` (BF16), each unit's pJ per operation (MNIST operands, cell
    delays) x its operations per image (``meta.cell_ops_per_image`` of the cost file);
    ``{"pj": {variant: pJ}, "uj": total}``, or None when a unit is missing."""
    ops = cost_doc["meta"].get("cell_ops_per_image")
    if not ops:
        return None
    mul_unit = "exact" if unit == "exact" else "lmul"
    pj = {}
    for variant in ops:
        want = mul_unit if variant == "ewmul" else "common"
        hit = [r for r in cost_doc["designs"] if r.get("level") == "cell"
               and r.get("format") == "bf16" and r.get("unit") == want
               and r.get("variant") == variant]
        if not hit or ENERGY_KEY not in hit[0]["runs"]:
            return None
        pj[variant] = _per_op(hit[0], ENERGY_KEY)
    return {"pj": pj, "uj": sum(ops[v] * e for v, e in pj.items()) * 1e-6}


def array_vs_pe(cost_doc: dict[str, Any]) -> dict[str, float] | None:
    """Per multiplier (``lmul`` / ``exact``), the BF16 4x4 ``mac_array``'s energy per MAC over
    its ``mac_pe``'s (MNIST operands, cell delays) when the cost files hold both, else None."""
    by = {(r.get("level"), r.get("format"), r.get("unit")): r for r in cost_doc["designs"]}
    out = {}
    for unit in ("lmul", "exact"):
        arr, pe = by.get(("array", "bf16", unit)), by.get(("pe", "bf16", unit))
        if arr is None or pe is None:
            return None
        out[unit] = _per_op(arr, ENERGY_KEY) / _per_op(pe, ENERGY_KEY)
    return out


def seq_array_pj(cost_doc: dict[str, Any]) -> dict[str, float]:
    """Per multiplier (``lmul`` / ``exact``) the sequential BF16 4x4 ``mac_array``'s pJ per MAC
    (MNIST operands, cell delays) of the cost files' ``array`` level (``make cost``), where
    present."""
    return {r["unit"]: _per_op(r, ENERGY_KEY) for r in cost_doc["designs"]
            if (r.get("level"), r.get("format")) == ("array", "bf16")
            and r.get("unit") in ("lmul", "exact") and ENERGY_KEY in r.get("runs", {})}


def verdicts(rows: Sequence[dict[str, Any]], datasets: Sequence[str],
             cell: dict[str, dict[str, Any] | None] | None = None,
             seq_arrays: dict[str, float] | None = None, ft_seeds: int = 0) -> dict[str, Any]:
    """The three verdicts of the study (see the module docstring), as numbers; ``cell``
    (``exact`` / ``lmul`` -> :func:`cell_rest`) adds the whole cell's energy per image. Per
    image on the 4x4 array: the chosen design's ``mac_array`` row (``-array``: 16 of its PEs,
    the same PIPELINE) against ``seq_arrays['exact']`` (:func:`seq_array_pj`), where both exist.
    ``mac_array`` rows are never the chosen design (they are 16 PEs, not one). On the
    fine-tuned weights (``best_ft``) only designs with at least ``ft_seeds`` seeds on every
    dataset compete. Only BF16 rows take part (the verdicts are defined on BF16; the other
    formats: :func:`format_verdict`)."""
    rows = [r for r in rows if r.get("format", BASE_FORMAT) == BASE_FORMAT]
    base = _find(rows, "exact", "mac_pe")
    out: dict[str, Any] = {"baseline": base["design"] if base else None}
    if base is None:
        return out
    e0 = base["e_mnist_pj"]
    pes = [r for r in rows if r["top"] != "mac_array"]
    ok = [r for r in pes if r["unit"] != "exact"
          and all(_includes_zero(r[f"{ds}_delta"]) for ds in datasets)]
    lmul_rows = [r for r in pes if r["unit"] != "exact" and not math.isnan(r["e_mnist_pj"])]
    best = min(ok, key=lambda r: r["e_mnist_pj"]) if ok else None
    cheapest = min(lmul_rows, key=lambda r: r["e_mnist_pj"]) if lmul_rows else None
    out.update(baseline_pj=e0, target_ratio=TARGET_RATIO,
               best=best and best["design"], best_pj=best and best["e_mnist_pj"],
               best_ratio=best and best["e_mnist_pj"] / e0,
               cheapest=cheapest and cheapest["design"],
               cheapest_ratio=cheapest and cheapest["e_mnist_pj"] / e0,
               reaches_target=bool(best and best["e_mnist_pj"] / e0 <= TARGET_RATIO))
    # the same criterion on the fine-tuned weights, among the designs measured on them
    ft_rows = [r for r in pes if r["unit"] != "exact"
               and any(r.get(f"{ds}_ft_delta") is not None for ds in datasets)]
    ok_ft = [r for r in ft_rows
             if all(_includes_zero(r.get(f"{ds}_ft_delta"))
                    and r[f"{ds}_ft_delta"].n >= ft_seeds for ds in datasets)]
    best_ft = min(ok_ft, key=lambda r: r["e_mnist_pj"]) if ok_ft else None
    out.update(ft_measured=[r["design"] for r in ft_rows],
               best_ft=best_ft and best_ft["design"],
               best_ft_weights=best_ft and best_ft["ft_weights"],
               best_ft_pj=best_ft and best_ft["e_mnist_pj"],
               best_ft_ratio=best_ft and best_ft["e_mnist_pj"] / e0,
               best_ft_reaches_target=bool(best_ft
                                           and best_ft["e_mnist_pj"] / e0 <= TARGET_RATIO),
               best_ft_delta=best_ft and {ds: _summary_dict(best_ft.get(f"{ds}_ft_delta"))
                                          for ds in datasets})
    chosen = best or cheapest
    if chosen is None:
        return out
    out.update(chosen_ft_weights=chosen.get("ft_weights"),
               chosen_ft_delta={ds: _summary_dict(chosen.get(f"{ds}_ft_delta"))
                                for ds in datasets})
    twin = (_find(rows, "exact", "dot_pe", chosen["k"], chosen["align_bits"],
                  chosen.get("pipeline", 0)) if chosen["top"] == "dot_pe" else base)
    if twin is not None:
        saving = e0 - chosen["e_mnist_pj"]
        lmul_part = twin["e_mnist_pj"] - chosen["e_mnist_pj"]
        out.update(fused_exact=twin["design"], fused_exact_pj=twin["e_mnist_pj"],
                   ratio_to_fused_exact=chosen["e_mnist_pj"] / twin["e_mnist_pj"],
                   lmul_share_of_saving=lmul_part / saving if saving else math.nan)
    glitch = chosen["e_mnist_pj"] - chosen["e_mnist_zero_pj"]
    if not math.isnan(glitch):
        terms = {"the clock and register energy": chosen["clkreg_mnist_pj"],
                 "the glitch-free datapath": chosen["datapath_mnist_pj"] - glitch,
                 "the glitch energy": glitch}
        out.update(chosen_glitch_pj=glitch, chosen_largest_term=max(terms, key=terms.get))
    out.update(chosen=chosen["design"], chosen_pj=chosen["e_mnist_pj"],
               chosen_pipeline=chosen.get("pipeline", 0),
               chosen_zero_pj=chosen["e_mnist_zero_pj"],
               chosen_zero_ratio=chosen["e_mnist_zero_pj"] / base["e_mnist_zero_pj"],
               chosen_clkreg_share=chosen["clkreg_mnist_pj"] / chosen["e_mnist_pj"],
               chosen_datapath_pj=chosen["datapath_mnist_pj"],
               chosen_clkreg_pj=chosen["clkreg_mnist_pj"],
               per_image_uj=chosen["e_mnist_pj"] * MACS_PER_IMAGE * 1e-6,
               baseline_per_image_uj=e0 * MACS_PER_IMAGE * 1e-6)
    arr = (_find(rows, chosen["unit"], "mac_array", chosen["k"], chosen["align_bits"],
                 chosen.get("pipeline", 0)) if chosen["top"] == "dot_pe" else None)
    arr_e0 = (seq_arrays or {}).get("exact")
    if arr is not None and arr_e0 is not None:
        out.update(array=arr["design"], array_pj=arr["e_mnist_pj"],
                   array_over_pe=arr["e_mnist_pj"] / chosen["e_mnist_pj"],
                   array_pe=chosen["design"],
                   baseline_array_pj=arr_e0,
                   array_per_image_uj=arr["e_mnist_pj"] * MACS_PER_IMAGE * 1e-6,
                   baseline_array_per_image_uj=arr_e0 * MACS_PER_IMAGE * 1e-6,
                   array_per_image_ratio=arr["e_mnist_pj"] / arr_e0, array_k=arr["k"])
    rest_l, rest_e = (cell or {}).get("lmul"), (cell or {}).get("exact")
    if rest_l is not None and rest_e is not None:
        mine = rest_e if chosen["unit"] == "exact" else rest_l
        if "array_per_image_uj" in out:
            out.update(array_cell_per_image_uj=out["array_per_image_uj"] + mine["uj"],
                       baseline_array_cell_per_image_uj=(out["baseline_array_per_image_uj"]
                                                         + rest_e["uj"]))
            out["array_cell_per_image_ratio"] = (out["array_cell_per_image_uj"]
                                                 / out["baseline_array_cell_per_image_uj"])
        img = out["per_image_uj"] + mine["uj"]
        img0 = out["baseline_per_image_uj"] + rest_e["uj"]
        out.update(cell_rest_uj=mine["uj"], baseline_cell_rest_uj=rest_e["uj"],
                   cell_pj=mine["pj"], baseline_cell_pj=rest_e["pj"],
                   cell_per_image_uj=img, baseline_cell_per_image_uj=img0,
                   cell_per_image_ratio=img / img0)
    return out


def format_verdict(rows: Sequence[dict[str, Any]], fmt: str, datasets: Sequence[str],
                   ft_seeds: int = 0) -> dict[str, Any]:
    """The addendum to verdict 1 for format ``fmt`` (not BF16; verdict 1 itself stays defined
    on BF16). ``ratios``: each ``fmt`` design's energy per MAC (MNIST operands) over the BF16
    sequential exact PE's (``bf16``) and over ``fmt``'s own sequential exact PE's (``own``).
    ``best``: the cheapest ``fmt`` PE whose Δ CIs include 0 on every dataset where it is
    measured, on the float32-trained weights or on its fine-tuned weights (there with at least
    ``ft_seeds`` seeds per measured dataset); ``best_unmeasured`` the datasets without rows
    (weights make tune does not train). Its saving over the BF16 sequential exact PE is split
    along the BF16 exact PE of the same accumulation (the accumulator's part), ``fmt``'s exact
    PE of the same accumulation (the format's part) and the rest (L-Mul's part), where those
    designs exist. ``lmul_fp32``: ``fmt``'s L-Mul PEs on the float32-trained weights, each
    ``fails`` when some dataset's CI lies below 0; ``lmul_fails_fp32`` when all do;
    ``exact_fp32`` / ``exact_fails_fp32`` the same for its exact PEs. ``best_fp32``: the
    cheapest ``fmt`` PE whose Δ CIs include 0 on every dataset on the float32-trained
    weights."""
    base = _find(rows, "exact", "mac_pe")
    own = _find(rows, "exact", "mac_pe", fmt=fmt)
    e_base = base["e_mnist_pj"] if base else math.nan
    e_own = own["e_mnist_pj"] if own else math.nan
    mine = [r for r in rows if r.get("format") == fmt]
    out: dict[str, Any] = {
        "format": fmt, "baseline": base and base["design"], "baseline_pj": e_base,
        "own_baseline": own and own["design"], "own_baseline_pj": e_own,
        "ratios": {r["design"]: {"bf16": r["e_mnist_pj"] / e_base,
                                 "own": r["e_mnist_pj"] / e_own} for r in mine}}
    cands = []
    for r in mine:
        if r["top"] == "mac_array":
            continue
        for kind, need in (("delta", 0), ("ft_delta", ft_seeds)):
            meas = [ds for ds in datasets if r.get(f"{ds}_{kind}") is not None]
            if meas and all(_includes_zero(r[f"{ds}_{kind}"]) and r[f"{ds}_{kind}"].n >= need
                            for ds in meas):
                cands.append((r["e_mnist_pj"], kind != "delta", r, kind, meas))
    full = [c for c in cands if c[3] == "delta" and len(c[4]) == len(datasets)]
    if full:
        e, _, r, _, _ = min(full, key=lambda c: c[0])
        out.update(best_fp32=r["design"], best_fp32_mode=r["mode"], best_fp32_pj=e,
                   best_fp32_ratio=e / e_base, best_fp32_ratio_own=e / e_own)
    if cands:
        e, _, r, kind, meas = min(cands, key=lambda c: (c[0], c[1]))
        out.update(best=r["design"], best_unit=r["unit"], best_mode=r["mode"], best_pj=e,
                   best_weights=r.get("ft_weights") if kind == "ft_delta" else None,
                   best_datasets=meas,
                   best_unmeasured=[ds for ds in datasets if ds not in meas],
                   best_delta={ds: _summary_dict(r[f"{ds}_{kind}"]) for ds in meas},
                   best_ratio=e / e_base, best_ratio_own=e / e_own)
        acc_twin = _find(rows, "exact", r["top"], r["k"], r["align_bits"],
                         r.get("pipeline", 0)) if r["top"] == "dot_pe" else base
        fmt_twin = _find(rows, "exact", r["top"], r["k"], r["align_bits"],
                         r.get("pipeline", 0), fmt)
        saving = e_base - e
        if acc_twin is not None and fmt_twin is not None and saving > 0:
            out.update(split={
                "bf16_exact_same_acc": acc_twin["design"],
                "bf16_exact_same_acc_pj": acc_twin["e_mnist_pj"],
                "fmt_exact_same_acc": fmt_twin["design"],
                "fmt_exact_same_acc_pj": fmt_twin["e_mnist_pj"],
                "accumulation_share": (e_base - acc_twin["e_mnist_pj"]) / saving,
                "format_share": (acc_twin["e_mnist_pj"] - fmt_twin["e_mnist_pj"]) / saving,
                "lmul_share": (fmt_twin["e_mnist_pj"] - e) / saving})
    for mult in ("lmul", "exact"):
        fp32 = []
        for r in mine:
            if (r["unit"] == "exact") != (mult == "exact") or r["top"] == "mac_array":
                continue
            deltas = {ds: r.get(f"{ds}_delta") for ds in datasets}
            if any(d is None for d in deltas.values()):
                continue
            fp32.append({"design": r["design"], "delta": {ds: _summary_dict(d)
                                                           for ds, d in deltas.items()},
                         "fails": any(not math.isnan(d.ci_high) and d.ci_high < 0
                                      for d in deltas.values())})
        out.update({f"{mult}_fp32": fp32,
                    f"{mult}_fails_fp32": bool(fp32) and all(x["fails"] for x in fp32)})
    return out


def format_label(fmt: str) -> str:
    """How the report names format ``fmt`` (``e4m3_ieee`` -> ``FP8 E4M3``)."""
    return {"bf16": "BF16", "e4m3_ieee": "FP8 E4M3", "e4m3fn": "FP8 E4M3FN",
            "e5m2": "FP8 E5M2"}.get(fmt, fmt)


# ------------------------------------------------------------------------------------ outputs
CSV_FIELDS = ("design", "mode", "format", "unit", "top", "k", "align_bits", "pipeline", "area_um2",
              "fmax_mhz",
              "e_mnist_pj", "e_uniform_pj", "e_mnist_zero_pj", "e_uniform_zero_pj",
              "clkreg_mnist_pj", "datapath_mnist_pj", "leak_mnist_pj", "clkreg_uniform_pj",
              "datapath_uniform_pj", "ratio_to_seq_exact", "ratio_to_format_seq_exact")


def _csv(rows: Sequence[dict[str, Any]], datasets: Sequence[str]) -> str:
    fields = [*CSV_FIELDS]
    kinds = ["delta"] + (["ft_delta"] if any("ft_weights" in r for r in rows) else [])
    if len(kinds) > 1:
        fields.append("ft_weights")
    for kind in kinds:
        for ds in datasets:
            fields += [f"{ds}_{kind}_mean", f"{ds}_{kind}_ci_low", f"{ds}_{kind}_ci_high",
                       f"{ds}_{kind.removesuffix('delta')}n"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for r in rows:
        out = {k: r.get(k) for k in CSV_FIELDS}
        if len(kinds) > 1:
            out["ft_weights"] = r.get("ft_weights")
        for kind in kinds:
            for ds in datasets:
                s = r.get(f"{ds}_{kind}")
                out.update({f"{ds}_{kind}_mean": s and s.mean,
                            f"{ds}_{kind}_ci_low": s and s.ci_low,
                            f"{ds}_{kind}_ci_high": s and s.ci_high,
                            f"{ds}_{kind.removesuffix('delta')}n": s and s.n})
        w.writerow(out)
    return buf.getvalue()


def _jsonable(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: (v.__dict__ if isinstance(v, Summary) else v) for k, v in r.items()}
            for r in rows]


def _fmt_pj(x: float) -> str:
    """pJ with one decimal; — where a workload was not simulated (NaN)."""
    return "—" if math.isnan(x) else f"{x:.1f}"


def _fmt_acc(s: Summary | None) -> str:
    return "—" if s is None else f"{s.mean:.2f} ± {s.std:.2f}" if s.n > 1 else f"{s.mean:.2f}"


def _fmt_ft_delta(s: Summary | None, seeds: int) -> str:
    """A fine-tuned Δ, with its seed count when fewer than the preset's (weights missing)."""
    return _fmt_delta(s) + (f" (n={s.n})" if s is not None and 1 < s.n < seeds else "")


def ft_missing(rows: Sequence[dict[str, Any]], ft_acc: dict[tuple[str, str], dict[int, float]],
               ft: FineTuned, datasets: Sequence[str], seeds: Sequence[int]) -> list[str]:
    """What the report's fine-tuned columns lack: the float32 control's missing seeds, and per
    weights the modes of ``rows`` without some seeds' rows (datasets with the same missing
    seeds on one line); [] when every row is there."""
    def seeds_text(miss: tuple[int, ...]) -> str:
        return f"seed{'s' if len(miss) > 1 else ''} {', '.join(map(str, miss))}"

    wanted: dict[str, tuple[str, set[str]]] = {ft.control: ("the float32 control", set())}
    for r in rows:
        label = ft_label(r["mode"], ft)
        if label is not None and label != ft.control:
            wanted.setdefault(r["ft_weights"], (f"`{r['ft_weights']}` weights", set()))[1].add(
                label)
    out = []
    for key, (name, labels) in wanted.items():
        by_miss: dict[tuple[tuple[int, ...], int], list[str]] = {}
        for ds in (datasets if key == ft.control else ft.trained_on(key, datasets)):
            per = [tuple(s for s in seeds if s not in ft_acc.get((ds, lb), {}))
                   for lb in (labels or {key})]
            worst = max(per, key=len)
            if worst:
                by_miss.setdefault((worst, sum(bool(m) for m in per)), []).append(ds)
        for (miss, n), dss in by_miss.items():
            out.append(f"{name} on {' and '.join(dss)}, {seeds_text(miss)}"
                       + (f" ({n} mode{'s' if n > 1 else ''})" if labels else ""))
    return out


def ft_section(rows: Sequence[dict[str, Any]], meta: dict[str, Any], datasets: Sequence[str],
               e0: float) -> list[str]:
    """The report's table of the designs on fine-tuned weights (:class:`FineTuned`)."""
    f = meta["finetuned"]
    n_seeds = len(meta["seeds_ft"])
    ctrl = meta.get("ft_fp32_accuracy", {})
    lines = ["", "## Accuracy on L-Mul-aware fine-tuned weights", "",
             f"The weights of `make tune` (experiments/tune.py, step 2, recipe `{f['ft']}`): "
             f"the float32 model after {f['epochs']} epochs on "
             f"{f.get('train_limit') or 'all'} training images, trained "
             f"{f['finetune_epochs']} more epoch with a BF16 L-Mul unit's products in the "
             "forward pass (sequential accumulation, straight-through gradients), at offsets "
             f"{', '.join(map(str, f['offsets']))}; each L-Mul design is evaluated in its own "
             "bit-exact mode on the weights fine-tuned at its offset (`ftN:MULTIPLIER`, the "
             "checkpoint of make tune's `MULTIPLIER [ftN]` row), each exact design on the "
             f"float32 control's weights (`{f['ft']}:fp32`: the same extra epoch in float32). "
             f"Δ = per-seed paired difference to the float32 control `{f['control']}` (those "
             f"weights evaluated in float32), seeds {', '.join(map(str, meta['seeds_ft']))}, "
             f"{f.get('test_limit') or 'all'} test images; n is shown where seeds are "
             "missing. Rows with the same mode share their accuracy (pipelined twins)."
             + "".join(f" Float32 control accuracy on {ds}: {a['mean']:.2f} % ± {a['std']:.2f} "
                       f"(n={a['n']})." for ds, a in ctrl.items()), "",
             "| design | weights | pJ/MAC MNIST | vs seq exact | "
             + " | ".join(f"{ds} acc % | {ds} Δ (pp)" for ds in datasets) + " | Pareto |",
             "|" + "---|" * (5 + 2 * len(datasets))]
    front = set(meta.get("pareto_ft", []))
    for r in rows:
        if not r.get("ft_weights"):
            continue
        lines.append(f"| {r['design']} | `{r['ft_weights']}` | {r['e_mnist_pj']:.1f} | "
                     f"{r['e_mnist_pj'] / e0:.3f} | " + " | ".join(
                         f"{_fmt_acc(r[f'{ds}_ft_acc'])} | "
                         f"{_fmt_ft_delta(r[f'{ds}_ft_delta'], n_seeds)}" for ds in datasets)
                     + f" | {'yes' if r['design'] in front else ''} |")
    if meta.get("ft_records"):
        ref = meta.get("ft_records_reference", 0)
        lines += ["", f"Weights: {ref} of the {meta['ft_records']} records on fine-tuned "
                  "weights evaluate committed reference checkpoints (`experiments/checkpoints/`, "
                  "bit-reproducible)" + ("" if ref == meta["ft_records"] else
                                         "; the others make tune's checkpoint cache "
                                         "(`results/weights/`), trained on the measuring "
                                         "machine") + "."]
    lines += ["", "Pareto front on these weights (designs measured on every seed of every "
              "dataset): " + (", ".join(f"`{d}`" for d in meta.get("pareto_ft", []))
                              or "none yet") + "."]
    miss = meta.get("ft_missing", [])
    lines += ["", ("Not measured yet (make tune had not trained these weights when this "
                   "report was made; rerunning the command without --report-only evaluates "
                   "them, never trains them): " + "; ".join(miss) + ".") if miss else
              "Every row of this table is measured on all seeds."]
    return lines


def format_section(rows: Sequence[dict[str, Any]], fmt: str, meta: dict[str, Any],
                   datasets: Sequence[str], e0: float) -> list[str]:
    """The report's section of format ``fmt``'s designs (not BF16): the main table's columns,
    the ratio to the BF16 sequential exact PE (``e0``, pJ per MAC) and to ``fmt``'s own
    sequential exact PE, and the Δ on the fine-tuned weights where make tune trained them."""
    mine = [r for r in rows if r.get("format") == fmt]
    label = format_label(fmt)
    own = _find(rows, "exact", "mac_pe", fmt=fmt)
    e_own = own["e_mnist_pj"] if own else math.nan
    f = meta.get("finetuned") or {}
    trained = set(f.get("format_datasets", ())) if fmt in f.get("formats", ()) else set()
    ft_cols = bool(f)
    lines = ["", f"## {label} designs ({fmt})", "",
             f"The same multipliers and accumulators with {label} operands (`lmul.PRESETS['"
             f"{fmt}']`): the exact {label} multiply and L-Mul at the format's paper offset "
             f"({format_paper_offset(fmt)}), each mode the bit-exact model of its RTL, on the "
             "same float32-trained weights, seeds and test images as the BF16 table. Two "
             "ratios: to the BF16 sequential exact PE (the baseline of the verdicts) and to "
             f"the {label} sequential exact PE (`{own['design'] if own else '—'}`, "
             f"{e_own:.1f} pJ/MAC)."
             + (f" Fine-tuned Δ: each design on the weights make tune fine-tuned one more "
                f"epoch in its own multiplier (`{f['ft']}:MULTIPLIER`, the checkpoint of make "
                f"tune's `MULTIPLIER [{f['ft']}]` row; the exact designs too, unlike BF16's), "
                f"paired with the float32 control `{f['control']}`; make tune fine-tunes "
                f"{label} on {' and '.join(sorted(trained)) or 'no dataset'} only, so the "
                "other datasets' columns say *not trained*." if ft_cols else "")
             + " These rows are not on the BF16 Pareto front and do not enter verdicts 1-3.",
             "",
             "| design | mode | area um^2 | f_max MHz | pJ/MAC MNIST | pJ/MAC uniform | "
             f"clk+reg pJ | datapath pJ | vs BF16 seq exact | vs {label} seq exact | "
             + " | ".join(f"{ds} Δ (pp)" for ds in datasets)
             + (" | ft weights | " + " | ".join(f"{ds} ft Δ (pp)" for ds in datasets)
                if ft_cols else "") + " |",
             "|" + "---|" * (10 + len(datasets) + ((1 + len(datasets)) if ft_cols else 0))]
    n_seeds = len(meta.get("seeds_ft", meta.get("seeds", [])))
    for r in mine:
        cells = [r["design"], f"`{r['mode']}`", f"{r['area_um2']:.0f}", f"{r['fmax_mhz']:.1f}",
                 f"{r['e_mnist_pj']:.1f}", _fmt_pj(r["e_uniform_pj"]),
                 f"{r['clkreg_mnist_pj']:.1f}", f"{r['datapath_mnist_pj']:.1f}",
                 f"{r['e_mnist_pj'] / e0:.3f}", f"{r['e_mnist_pj'] / e_own:.3f}",
                 *(_fmt_delta(r[f"{ds}_delta"]) for ds in datasets)]
        if ft_cols:
            w = r.get("ft_weights")
            cells.append(f"`{w}`" if w else "—")
            cells += ["not trained" if w and ds not in trained else
                      _fmt_ft_delta(r.get(f"{ds}_ft_delta"), n_seeds) for ds in datasets]
        lines.append("| " + " | ".join(cells) + " |")
    nt = [x for x in meta.get("ft_not_trained", []) if any(
        x.startswith(f"`{r['ft_weights']}`") for r in mine if r.get("ft_weights"))]
    if nt:
        lines += ["", "Not measured (no such weights exist): " + "; ".join(nt) + "."]
    return lines


def _format_addendum(fv: dict[str, Any], datasets: Sequence[str], meta: dict[str, Any]) -> str:
    """Verdict 1's addendum for another format (:func:`format_verdict`), one paragraph."""
    label = format_label(fv["format"])
    out = (f"**Addendum to verdict 1: {label}** (verdict 1 is defined on BF16 operands and "
           "stays so). ")
    if fv.get("best"):
        meas = " and ".join(f"{ds} {_fmt_delta(Summary(**fv['best_delta'][ds]))}"
                            for ds in fv["best_datasets"])
        weights = (f"on its L-Mul-aware fine-tuned weights (`{fv['best_weights']}`, Δ vs the "
                   "float32 control)" if fv.get("best_weights") else
                   "on the float32-trained weights")
        unmeasured = fv.get("best_unmeasured") or []
        reason = [x for x in meta.get("ft_not_trained", [])
                  if fv.get("best_weights") and x.startswith(f"`{fv['best_weights']}`")]
        out += (f"The cheapest {label} design whose Δ CIs include 0 on every dataset where it "
                f"is measured is `{fv['best']}` (`{fv['best_mode']}`) {weights}: {meas}"
                + (f"; {' and '.join(unmeasured)} not measured"
                   + (f" ({reason[0].split(': ', 1)[1]})" if reason else "") if unmeasured
                   else "")
                + f". {fv['best_pj']:.1f} pJ/MAC: **{fv['best_ratio']:.3f}x** the BF16 "
                f"sequential exact PE ({fv['baseline_pj']:.1f} pJ/MAC), "
                f"{fv['best_ratio_own']:.3f}x the {label} sequential exact PE "
                f"({fv['own_baseline_pj']:.1f} pJ/MAC). It changes the operand format "
                f"({label} operands instead of BF16), so this is not an L-Mul-only saving")
        sp = fv.get("split")
        if sp:
            out += (f": of the {fv['baseline_pj'] - fv['best_pj']:.1f} pJ/MAC it saves, the "
                    f"accumulation accounts for {100 * sp['accumulation_share']:.0f} % "
                    f"(`{sp['bf16_exact_same_acc']}` {sp['bf16_exact_same_acc_pj']:.1f} pJ), "
                    f"the format for {100 * sp['format_share']:.0f} % "
                    f"(`{sp['fmt_exact_same_acc']}` {sp['fmt_exact_same_acc_pj']:.1f} pJ)"
                    + (f", L-Mul for {100 * sp['lmul_share']:.0f} %"
                       if fv.get("best_unit") != "exact" else ""))
        out += "."
    else:
        out += f"No {label} design has Δ CIs that include 0 on every dataset where measured."
    def listed(xs: Sequence[dict[str, Any]]) -> str:
        return "; ".join(f"`{x['design']}` " + ", ".join(
            f"{ds} {_fmt_delta(Summary(**x['delta'][ds]))}" for ds in datasets) for x in xs)

    weights = (f"this study's float32-trained weights ({meta.get('epochs')} epoch, "
               f"{meta.get('train_limit') or 'all'} training images)" if meta.get("epochs")
               else "the float32-trained weights")
    fp32, ex = fv.get("lmul_fp32") or [], fv.get("exact_fp32") or []
    if fp32:
        out += (f" On {weights} {label} L-Mul "
                + ("**fails**: every L-Mul design loses accuracy with a CI below 0 on some "
                   "dataset (" if fv.get("lmul_fails_fp32") else
                   "does not fail on every design (") + listed(fp32) + ")")
        if ex:
            ok = all(_includes_zero(Summary(**d)) for x in ex for d in x["delta"].values())
            out += (f"; the exact {label} multiply on the same weights "
                    + ("fails too (" if fv.get("exact_fails_fp32") else
                       "keeps the float32 accuracy, every CI including 0 (" if ok else "(")
                    + listed(ex) + ")")
        out += "."
    if fv.get("best_fp32"):
        out += (f" The cheapest {label} design whose Δ CIs include 0 on "
                f"{' and '.join(datasets)} on those weights is `{fv['best_fp32']}` "
                f"(`{fv['best_fp32_mode']}`): {fv['best_fp32_pj']:.1f} pJ/MAC, "
                f"{fv['best_fp32_ratio']:.3f}x the BF16 sequential exact PE "
                f"({fv['best_fp32_ratio_own']:.3f}x the {label} one).")
    return out


def _ft_verdict(v: dict[str, Any], datasets: Sequence[str]) -> str:
    """Verdict 1 on the fine-tuned weights: the chosen design's Δ there, and the cheapest
    L-Mul design whose fine-tuned Δ CIs include 0 on every dataset."""
    if not v.get("ft_measured"):
        return " No L-Mul design is measured on fine-tuned weights yet."
    out = ""
    cd = v.get("chosen_ft_delta") or {}
    if any(cd.get(ds) for ds in datasets):
        sums = {ds: Summary(**cd[ds]) if cd.get(ds) else None for ds in datasets}
        inc = all(_includes_zero(s) for s in sums.values())
        out += (f" On its L-Mul-aware fine-tuned weights (`{v['chosen_ft_weights']}`, Δ vs the "
                "float32 control): " + ", ".join(f"{ds} {_fmt_delta(s)}" + (
                    f" (n={s.n})" if s is not None else "") for ds, s in sums.items())
                + (" (CIs include 0)." if inc else " (not every CI includes 0)."))
    if v.get("best_ft"):
        same = v["best_ft"] == v.get("chosen")
        out += (" **On fine-tuned weights**, the cheapest L-Mul design whose Δ CIs include 0 on "
                f"{' and '.join(datasets)} (every seed measured) is "
                + ("the same design" if same else f"`{v['best_ft']}` (`{v['best_ft_weights']}`, "
                   f"{v['best_ft_pj']:.1f} pJ/MAC)")
                + f": **{v['best_ft_ratio']:.3f}x** (target "
                + ("reached" if v["best_ft_reaches_target"] else "not reached") + ").")
    else:
        out += (" On fine-tuned weights no L-Mul design measured on every seed has Δ CIs that "
                "include 0 on every dataset.")
    return out


def markdown(rows: Sequence[dict[str, Any]], v: dict[str, Any], meta: dict[str, Any],
             datasets: Sequence[str]) -> str:
    """The report: table, Pareto front and the three verdicts (BF16), the other formats'
    section (:func:`format_section`) and verdict 1's addendum for them."""
    all_rows = list(rows)
    rows = [r for r in rows if r.get("format", BASE_FORMAT) == BASE_FORMAT]
    others = [f for f in FORMATS[1:] if any(r.get("format") == f for r in all_rows)]
    lines = ["<!-- generated by python -m experiments.energy_accuracy; do not edit by hand -->",
             "", "# Energy against accuracy: L-Mul MACs, sequential and fused (BF16"
             + "".join(f"; {format_label(f)} in its own section" for f in others) + ")", "",
             f"Commands: `{meta['cost_command']}` (hardware), `{meta['command']}` (accuracy, "
             "join, report)."
             + (f" Re-measured rows (the later command's kept): "
                f"{'; '.join(meta['cost_superseded'])}." if meta.get("cost_superseded") else ""),
             "",
             (f"Accuracy carried from `{meta['accuracy_from']}` (an earlier run of this study, "
              f"preset {meta.get('accuracy_preset')}; same bit-exact modes). "
              if meta.get("accuracy_from") else "")
             + f"Accuracy: MNIST LSTM (rows), float32-trained weights ({meta['epochs']} epoch, "
             f"{meta.get('train_limit') or 'all'} training images), "
             f"seeds {', '.join(map(str, meta['seeds']))}, "
             f"{meta['test_limit'] or 'all'} test images; Δ = per-seed paired difference to "
             "float32 in percentage points, mean [95 % t CI]. Each design's mode is the "
             "bit-exact model of its RTL (lmul.matmul with accumulate=lmul.Fused(K, A) for "
             "dot_pe). Hardware: OSU 0.18 um, 1.8 V, OpenSTA + gate-level activity, at the "
             f"stated {rows[0]['period_ns']:.0f} ns clock; energy per MAC = energy per step "
             "/ MACs of the workload (dot products of 156, the LSTM's gate products; the fused "
             "PE's padding lanes are counted as its cost, not as MACs), cell delays (glitches "
             "counted). clk+reg = flip-flop internal energy + clock-net switching; datapath = "
             "the rest of the dynamic energy."
             + "".join(f" float32 accuracy on {ds}: {a['mean']:.2f} % ± {a['std']:.2f} "
                       f"(n={a['n']})." for ds, a in meta.get("fp32_accuracy", {}).items()),
             ""] if rows else ["no designs"]
    if not rows:
        return "\n".join(lines) + "\n"
    e0 = v.get("baseline_pj", math.nan)
    head = ("| design | mode | area um^2 | f_max MHz | pJ/MAC MNIST | pJ/MAC uniform | "
            "clk+reg pJ | datapath pJ | vs seq exact | "
            + " | ".join(f"{ds} Δ (pp)" for ds in datasets) + " | Pareto |")
    lines += [head, "|" + "---|" * (10 + len(datasets))]
    front = set(meta["pareto"])
    for r in rows:
        lines.append(
            f"| {r['design']} | `{r['mode']}` | {r['area_um2']:.0f} | {r['fmax_mhz']:.1f} | "
            f"{r['e_mnist_pj']:.1f} | {_fmt_pj(r['e_uniform_pj'])} | {r['clkreg_mnist_pj']:.1f} | "
            f"{r['datapath_mnist_pj']:.1f} | {r['e_mnist_pj'] / e0:.3f} | "
            + " | ".join(_fmt_delta(r[f"{ds}_delta"]) for ds in datasets)
            + f" | {'yes' if r['design'] in front else ''} |")
    lines += ["", "Pareto front (pJ per MAC with MNIST operands against the lower of the "
              "datasets' mean Δ): " + ", ".join(f"`{d}`" for d in meta["pareto"])]
    if any(r["top"] == "mac_array" for r in rows):
        lines += ["", "Rows ending `-array` are the 4x4 `mac_array` of 16 such PEs (DOT_K = K, "
                  "the PE's PIPELINE) on the `array` level's MNIST tiles, energy per MAC of the "
                  "whole array (forwarding, skid and control included); they share the PE's "
                  "mode and are left off the front and the plot (verdict 3 uses them)."]
    pairs = pipeline_pairs(rows)
    if pairs:
        lines += ["", "Designs ending `-p1` are `dot_pe` with PIPELINE=1 (the K products "
                  "registered before the alignment and adder tree), `-p2` with PIPELINE=2 (the "
                  "products' largest exponent, their magnitudes truncated to the window below "
                  "it, signs and special-value flags registered: the sum stage compares one "
                  "exponent and shifts K short magnitudes); one clock more latency, "
                  "same throughput. They compute the same bits as their single-stage twin, so "
                  "their Δ columns are the twin's accuracy rows (the same mode), not a second "
                  "evaluation. Energy split against the twin, measured in the same cost files "
                  "(pJ per MAC, MNIST operands; glitch = cell-delay minus zero-delay "
                  "simulation):", "",
                  "| design | twin | pJ/MAC | twin | clk+reg | twin | datapath | twin | "
                  "glitch | twin | zero-delay | twin | area um^2 | twin | f_max MHz | twin |",
                  "|" + "---|" * 16]
        for q in pairs:
            lines.append(f"| {q['design']} | {q['twin']} | " + " | ".join(
                f"{q['p1_' + k]:.{d}f} | {q['p0_' + k]:.{d}f}"
                for k, d in (("pj", 1), ("clkreg", 1), ("datapath", 1), ("glitch", 1),
                             ("zero", 1), ("area", 0), ("fmax", 1))) + " |")
    if meta.get("finetuned"):
        lines += ft_section(rows, meta, datasets, e0)
    for f in others:
        lines += format_section(all_rows, f, meta, datasets, e0)
    lines += ["", "## Verdicts", ""]
    if v.get("best") is None:
        lines.append("No L-Mul design has CIs that include 0 on every dataset (float32-trained "
                     f"weights); the cheapest L-Mul design is {v.get('cheapest')}.")
    b = v.get("chosen")
    if b:
        ratio = v["best_ratio"] if v.get("best") else v["cheapest_ratio"]
        lines += [
            "1. **Best L-Mul design vs the sequential exact PE** (chosen on the "
            f"float32-trained weights' Δ). `{b}`: "
            f"{v['chosen_pj']:.1f} pJ per MAC vs {e0:.1f} pJ for `{v['baseline']}`: "
            f"**{ratio:.3f}x** (target <= {TARGET_RATIO}x: "
            f"{'reached' if v.get('reaches_target') else 'not reached'}; "
            + ("its Δ CIs include 0 on " + " and ".join(datasets) if v.get("best") else
               "no L-Mul design has Δ CIs that include 0 on every dataset; this is the "
               "cheapest")
            + ("; its accuracy is its single-stage twin's, the same bits"
               if v.get("chosen_pipeline") else "") + ")."
            + (_ft_verdict(v, datasets) if meta.get("finetuned") else "")
            + (f" Missing: {v['chosen_pj'] - TARGET_RATIO * e0:.1f} pJ/MAC; of its terms "
               f"(clock + registers {v['chosen_clkreg_pj']:.1f}, glitch-free datapath "
               f"{v['chosen_datapath_pj'] - v['chosen_glitch_pj']:.1f}, glitches "
               f"{v['chosen_glitch_pj']:.1f} pJ) the largest, and the one that stops it, is "
               f"{v['chosen_largest_term']}."
               if not v.get("reaches_target") and "chosen_glitch_pj" in v else ""),
            f"2. **Against the fused exact design with the same K and window** "
            f"(`{v.get('fused_exact')}`, {v.get('fused_exact_pj', math.nan):.1f} pJ/MAC): "
            f"{v.get('ratio_to_fused_exact', math.nan):.3f}x; L-Mul's share of the saving "
            f"over the sequential exact PE: {100 * v.get('lmul_share_of_saving', math.nan):.0f}"
            " % (the rest is the fused accumulation's).",
            f"3. **Per image** (MNIST LSTM, {MACS_PER_IMAGE:,} MACs): "
            f"{v['per_image_uj']:.0f} uJ vs {v['baseline_per_image_uj']:.0f} uJ on the "
            "sequential exact PE (PE energy per MAC x MACs"
            + (f"; the sequential 4x4 `mac_array` (`array` level) spends "
               f"{v['array_vs_pe']['lmul']:.2f}x (L-Mul) and {v['array_vs_pe']['exact']:.2f}x "
               "(exact) the energy per MAC of the `pe` level's sequential `mac_pe`, so an "
               "array of this PE would differ by about as much" if v.get("array_vs_pe")
               else "")
            + ")"
            + (f"; **the whole cell** (array + element-wise products, the binary32 adder, the "
               f"activation unit and the conversions of `syn.cost --levels cell`): "
               f"{v['cell_per_image_uj']:.0f} uJ vs {v['baseline_cell_per_image_uj']:.0f} uJ, "
               f"**{v['cell_per_image_ratio']:.3f}x** (the rest of the cell "
               f"{v['cell_rest_uj']:.0f} vs {v['baseline_cell_rest_uj']:.0f} uJ)."
               if "cell_per_image_uj" in v else "; element-wise products not included.")
            + (f" **On the 4x4 array** (`{v['array']}`: 16 of its PEs in `mac_array` with "
               f"DOT_K={v.get('array_k')}, PIPELINE={v['chosen_pipeline']}, the array level's "
               f"MNIST tiles): "
               f"{v['array_pj']:.1f} pJ/MAC ({v['array_over_pe']:.2f}x `{v['array_pe']}`'s), "
               f"{v['array_per_image_uj']:.0f} uJ per image vs "
               f"{v['baseline_array_per_image_uj']:.0f} uJ on the sequential exact 4x4 array "
               f"(`mac_array` of `mac_pe`, the `array` level's `array-bf16-exact`, "
               f"{v['baseline_array_pj']:.1f} pJ/MAC; arrays are joined only when measured on "
               "the same MNIST tiles): "
               f"**{v['array_per_image_ratio']:.3f}x**"
               + (f"; with the rest of the cell {v['array_cell_per_image_uj']:.0f} vs "
                  f"{v['baseline_array_cell_per_image_uj']:.0f} uJ, "
                  f"**{v['array_cell_per_image_ratio']:.3f}x**"
                  if "array_cell_per_image_uj" in v else "") + "."
               if "array_per_image_uj" in v else ""),
            *[line for f in others if f in v.get("formats", {})
              for line in ("", _format_addendum(v["formats"][f], datasets, meta))],
            "",
            f"Where `{b}`'s {v['chosen_pj']:.1f} pJ/MAC go: clock + registers "
            f"{v['chosen_clkreg_pj']:.1f} pJ ({100 * v['chosen_clkreg_share']:.0f} %), "
            f"datapath {v['chosen_datapath_pj']:.1f} pJ"
            + (f", of which glitches (cell-delay minus zero-delay simulation) "
               f"{v['chosen_pj'] - v['chosen_zero_pj']:.1f} pJ; zero-delay it would be "
               f"{v['chosen_zero_pj']:.1f} pJ/MAC, {v['chosen_zero_ratio']:.3f}x the "
               "sequential exact PE's zero-delay figure"
               if not math.isnan(v.get("chosen_zero_pj", math.nan)) else "")
            + f". The {TARGET_RATIO}x target needs <= {TARGET_RATIO * e0:.1f} pJ/MAC."]
    if meta.get("notes"):
        lines += ["", "## Notes", "", *(f"- {n}" for n in meta["notes"])]
    return "\n".join(lines) + "\n"


def plot_png(rows: Sequence[dict[str, Any]], front: Sequence[str],
             datasets: Sequence[str], front_ft: Sequence[str] | None = None) -> bytes:
    """Energy per MAC (MNIST operands) against the lower mean Δ of the datasets; one point
    per design (marker per multiplier), the Pareto front as a line. With fine-tuned rows
    (``front_ft`` given and some design measured on them) a second panel shows those. Designs
    in the other formats get their own markers (diamond exact, cross L-Mul) and are off the
    (BF16) front; on the fine-tuned panel their Δ is the lower over the datasets where their
    weights exist, said in the legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("delta", front, "float32-trained weights")]
    if front_ft is not None and any(not math.isnan(_worst_delta(r, datasets, "ft_delta"))
                                    for r in rows):
        panels.append(("ft_delta", front_ft, "L-Mul-aware fine-tuned weights (vs float32 "
                                             "control)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(8 * len(panels), 5), squeeze=False)
    marks = {"exact": "s", "lmul": "o", "lmul_o6": "^"}
    by = {r["design"]: r for r in rows}
    others = [r for r in rows if r.get("format", BASE_FORMAT) != BASE_FORMAT
              and r["top"] != "mac_array"]
    rows = [r for r in rows if r.get("format", BASE_FORMAT) == BASE_FORMAT]
    for ax, (kind, fr, title) in zip(axes[0], panels, strict=True):
        for (unit, mk), color in zip(marks.items(), ("C0", "C1", "C2"), strict=True):
            for pipe in (0, 1, 2, 3):
                # only what has points gets a legend entry; pipelined designs hollow (thicker
                # edges for PIPELINE=2 and 3)
                sel = [r for r in rows if r["unit"] == unit and r.get("pipeline", 0) == pipe
                       and r["top"] != "mac_array"
                       and not math.isnan(_worst_delta(r, datasets, kind))]
                if not sel:
                    continue
                ax.scatter([r["e_mnist_pj"] for r in sel],
                           [_worst_delta(r, datasets, kind) for r in sel], marker=mk,
                           alpha=0.8, label=unit + (f" PIPELINE={pipe}" if pipe else ""),
                           facecolors="none" if pipe else color, edgecolors=color,
                           linewidths=1.0 + 0.7 * (pipe - 1) if pipe else 1.0)
            for r in [r for r in rows if r["unit"] == unit and r["top"] != "mac_array"
                      and not math.isnan(_worst_delta(r, datasets, kind))]:
                ax.annotate(r["design"].split("-", 3)[-1],
                            (r["e_mnist_pj"], _worst_delta(r, datasets, kind)),
                            fontsize=6, xytext=(3, 2), textcoords="offset points")
        for fmt in dict.fromkeys(r["format"] for r in others):
            for unit, mk, color in (("exact", "D", "C3"), ("lmul", "X", "C4")):
                sel, dss = [], set()
                for r in others:
                    got = {ds: _mean(r.get(f"{ds}_{kind}")) for ds in datasets}
                    got = {ds: m for ds, m in got.items() if not math.isnan(m)}
                    if r["format"] == fmt and r["unit"] == unit and got:
                        sel.append((r, min(got.values())))
                        dss |= set(got)
                if not sel:
                    continue
                only = ("" if dss == set(datasets) else
                        f" (Δ: {', '.join(ds for ds in datasets if ds in dss)} only)")
                ax.scatter([r["e_mnist_pj"] for r, _ in sel], [y for _, y in sel], marker=mk,
                           color=color, alpha=0.8,
                           label=f"{format_label(fmt)} {unit}{only}, off the front")
                for r, y in sel:
                    ax.annotate(format_label(fmt).split()[-1] + " "
                                + r["design"].split("-", 3)[-1], (r["e_mnist_pj"], y),
                                fontsize=6, xytext=(3, 2), textcoords="offset points")
        fx = [by[d]["e_mnist_pj"] for d in fr]
        fy = [_worst_delta(by[d], datasets, kind) for d in fr]
        ax.step(fx, fy, where="post", color="k", lw=1,
                label="Pareto front" + (" (BF16)" if others else ""))
        ax.axhline(0, color="grey", lw=0.5)
        if any(not math.isnan(_worst_delta(r, datasets, kind)) for r in rows):
            ax.set_xscale("log")  # the exact windows reach 20x the cheapest design
        ax.set_xlabel("energy per MAC, MNIST operands (pJ, OSU 0.18 um, log scale)")
        ax.set_ylabel(f"accuracy Δ, min over {', '.join(datasets)} (pp)")
        if len(panels) > 1:
            ax.set_title(title, fontsize=9)
        ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    return buf.getvalue()


_ARRAY_SIZES = ("array_tiles", "check_array_tiles")


def read_cost(paths: Sequence[Path]) -> dict[str, Any]:
    """The designs of one or more ``cost.json`` files of ``syn.cost --levels dot`` (runs of
    parts of the sweep) as one document. A design in several files is taken from the last
    one (a re-measurement supersedes; ``meta.superseded`` names it). ``meta.command`` lists
    the files' commands. JoinError if a file is missing or the cost flows' settings (tools,
    sizes, seed, constraints) differ; the array sizes (MNIST tiles simulated, tiles checked)
    only bind the files whose 4x4 arrays (``array`` level, ``mac_array`` rows) are kept, as
    they size nothing else."""
    by_name: dict[str, dict[str, Any]] = {}
    array_sizes: dict[str, tuple[Any, ...]] = {}
    superseded: list[str] = []
    commands, settings = [], None
    cell_ops: dict[str, int] | None = None
    for path in paths:
        if not path.is_file():
            raise JoinError(f"{path} not found; run `python -m syn.cost --levels dot --formats "
                            "bf16 --out results/energy_cost` first")
        doc = json.loads(path.read_text(encoding="utf-8"))
        these = {k: doc["meta"].get(k) for k in ("versions", "sizes", "seed", "constraints")}
        sizes = dict(these["sizes"] or {})
        arr_sizes = tuple(sizes.pop(k, None) for k in _ARRAY_SIZES)
        these["sizes"] = sizes
        if settings is not None and these != settings:
            raise JoinError(f"{path}: measured with other cost-flow settings than {paths[0]}")
        settings = these
        commands.append(doc["meta"]["command"])
        names = [r.get("name") for r in doc["designs"]]
        if len(set(names)) != len(names):
            raise JoinError(f"{path}: a design appears twice")
        for r in doc["designs"]:
            if r.get("name") in by_name:
                superseded.append(f"{r['name']} (by {path})")
                del by_name[r["name"]]
                array_sizes.pop(r["name"], None)
            by_name[r.get("name")] = r
            if r.get("level") == "array" or r.get("top") == "mac_array":
                array_sizes[r["name"]] = arr_sizes
        cell_ops = doc["meta"].get("cell_ops_per_image") or cell_ops
    if len(set(array_sizes.values())) > 1:
        raise JoinError("4x4 arrays measured on different MNIST tiles ("
                        + ", ".join(f"{n}: {dict(zip(_ARRAY_SIZES, v, strict=True))}"
                                    for n, v in sorted(array_sizes.items()))
                        + "); re-measure them with the same --array-tiles")
    return {"meta": {"command": "; ".join(commands), "superseded": superseded,
                     "cell_ops_per_image": cell_ops},
            "designs": list(by_name.values())}


def report(cost_paths: Path | Sequence[Path], results: Path, p: Preset, out_stem: Path,
           command: str, plot: bool = True, notes: Sequence[str] = (),
           accuracy_from: Path | None = None) -> list[Path]:
    """Join the cost results (one or more ``cost.json``, :func:`read_cost`) with the accuracy
    ``results`` and write json/csv/md(/png). ``accuracy_from``: an earlier report of this study
    whose accuracy columns fill the modes ``results`` lacks (:func:`carried_accuracy`); its
    accuracy settings (seeds, epochs, test and training images) are then the ones reported."""
    from .report import load_results

    if isinstance(cost_paths, Path):
        cost_paths = [cost_paths]
    if out_stem.with_suffix(".json").resolve() == Path(results).resolve():
        raise JoinError(f"the report {out_stem}.json would overwrite the accuracy results "
                        f"{results}")
    cost_doc = read_cost(cost_paths)
    doc = load_results(results) if results.is_file() else {"runs": []}
    acc = accuracies(doc, p.test_limit, p.epochs, p.train_limit)
    carried, cmeta = carried_accuracy(accuracy_from) if accuracy_from else (None, {})
    ft = p.finetuned
    ft_acc = ft_accuracies(doc, ft) if ft is not None else {}
    rows = join(cost_doc, acc, p.datasets, carried, ft, ft_acc)
    if not rows:
        raise JoinError(f"{', '.join(map(str, cost_paths))}: no dot-level designs")
    # the table in design order (the cost files come in the order their runs were made)
    tops, units = ("mac_pe", "dot_pe", "mac_array"), ("exact", "lmul", "lmul_o6")
    rows.sort(key=lambda r: (FORMATS.index(r["format"]),
                             tops.index(r["top"]) if r["top"] in tops else len(tops), r["k"],
                             r["align_bits"] or 0, r["pipeline"],
                             units.index(r["unit"]) if r["unit"] in units else len(units),
                             r["design"]))
    seq_exact = {f: _find(rows, "exact", "mac_pe", fmt=f) for f in FORMATS}
    e0 = seq_exact[BASE_FORMAT]["e_mnist_pj"] if seq_exact[BASE_FORMAT] else math.nan
    for r in rows:
        own = seq_exact[r["format"]]
        r["ratio_to_seq_exact"] = r["e_mnist_pj"] / e0
        r["ratio_to_format_seq_exact"] = r["e_mnist_pj"] / (own["e_mnist_pj"] if own
                                                             else math.nan)
    # the array rows are 16 PEs: in the table, not on the front (or the plot); the fronts are
    # BF16's, as the verdicts are (the other formats have their own section)
    pts = [(math.nan, math.nan) if r["top"] == "mac_array" or r["format"] != BASE_FORMAT else
           (r["e_mnist_pj"], _worst_delta(r, p.datasets)) for r in rows]
    front = [rows[i]["design"] for i in pareto(pts)]
    # fine-tuned weights: only designs with every seed on every dataset are compared
    pts_ft = [(math.nan, math.nan) if r["top"] == "mac_array" or r["format"] != BASE_FORMAT
              or any(
        (r.get(f"{ds}_ft_delta") is None or r[f"{ds}_ft_delta"].n < len(p.seeds))
        for ds in p.datasets) else (r["e_mnist_pj"], _worst_delta(r, p.datasets, "ft_delta"))
        for r in rows]
    front_ft = [rows[i]["design"] for i in pareto(pts_ft)]
    v = verdicts(rows, p.datasets, {u: cell_rest(cost_doc, u) for u in ("exact", "lmul")},
                 seq_array_pj(cost_doc), ft_seeds=len(p.seeds))
    avp = array_vs_pe(cost_doc)
    if avp:
        v["array_vs_pe"] = avp
    others = [f for f in FORMATS[1:] if any(r["format"] == f for r in rows)]
    if others:
        v["formats"] = {f: format_verdict(rows, f, p.datasets, len(p.seeds)) for f in others}
    meta = {"command": command, "cost_command": cost_doc["meta"]["command"],
            "cost_superseded": cost_doc["meta"]["superseded"],
            "preset": p.name, "seeds": list(p.seeds), "epochs": p.epochs,
            "test_limit": p.test_limit, "train_limit": p.train_limit,
            "datasets": list(p.datasets), "pareto": front, "notes": list(notes),
            "fp32_accuracy": {ds: summarize([v for _, v in sorted(acc[(ds, "fp32")].items())])
                              .__dict__ for ds in p.datasets if acc.get((ds, "fp32"))},
            "macs_per_image": MACS_PER_IMAGE}
    if ft is not None:
        meta.update(finetuned={**ft.__dict__, "ft": ft.ft, "control": ft.control},
                    seeds_ft=list(p.seeds), pareto_ft=front_ft,
                    ft_missing=ft_missing(rows, ft_acc, ft, p.datasets, p.seeds),
                    ft_not_trained=ft_not_trained(ft, [(w, []) for w in dict.fromkeys(
                        r["ft_weights"] for r in rows if r.get("ft_weights"))], p.datasets),
                    ft_records=len(ft_runs(doc, ft)),
                    ft_records_reference=sum("checkpoint" in r for r in ft_runs(doc, ft)),
                    ft_fp32_accuracy={
                        ds: summarize([v for _, v in sorted(ft_acc[(ds, ft.control)].items())])
                        .__dict__ for ds in p.datasets if ft_acc.get((ds, ft.control))})
    if carried is not None and not acc:
        # every accuracy column is the earlier report's: state its settings, not the preset's
        meta.update({k: cmeta.get(k) for k in ("seeds", "epochs", "test_limit", "train_limit",
                                               "fp32_accuracy")},
                    accuracy_from=str(accuracy_from), accuracy_preset=cmeta.get("preset"))
    paths = [out_stem.with_suffix(s) for s in (".json", ".csv", ".md")]
    atomic_write_text(paths[0], json.dumps({"meta": meta, "verdicts": v,
                                            "designs": _jsonable(rows)}, indent=1) + "\n")
    atomic_write_text(paths[1], _csv(rows, p.datasets))
    atomic_write_text(paths[2], markdown(rows, v, meta, p.datasets))
    if plot:
        paths.append(out_stem.with_suffix(".png"))
        atomic_write_bytes(paths[3], plot_png(rows, front, p.datasets,
                                                   front_ft if ft is not None else None))
    return paths


def _cost_modes(paths: Sequence[Path]) -> set[str] | None:
    """The modes of the dot-level designs in these cost files (the designs the report can
    show), or None (every mode of the preset) when they cannot be read."""
    try:
        doc = read_cost(paths)
        return {mode_of(r["synth"]["params"], r["top"]) for r in doc["designs"]
                if r.get("level") == "dot"}
    except (JoinError, OSError, KeyError, ValueError):
        return None


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the process exit status."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="medium")
    ap.add_argument("--cost", type=Path, action="append", default=None,
                    help="cost.json of `python -m syn.cost --levels dot`, repeatable (parts of "
                    "the sweep); default: the preset's, results/energy_cost/cost.json "
                    "(quick: energy_cost_quick/)")
    ap.add_argument("--report-only", action="store_true", help="join and report, run nothing")
    ap.add_argument("--snapshot", action="store_true",
                    help="also copy the outputs to docs/results/")
    ap.add_argument("--note", action="append", default=[],
                    help="a caveat to print under the report's notes (repeatable)")
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument("--accuracy-from", type=Path, default=None,
                    help="an earlier report (.json) of this study whose accuracy columns fill "
                    "the modes without accuracy rows (with --report-only)")
    ap.add_argument("--retrain", action="store_true",
                    help="train the weights (or use the checkpoint cache) instead of the "
                    "committed reference checkpoints (experiments/checkpoints/)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads for the evaluations (default: torch's; 1 is often "
                    "faster on a busy machine)")
    ap.add_argument("--no-finetuned", action="store_true",
                    help="skip the rows on make tune's fine-tuned weights (presets that have "
                    "them: sweep, full)")
    executor_mod.add_arguments(ap)
    args = ap.parse_args(argv)
    executor_mod.check_arguments(ap, args)
    if args.threads is not None and args.threads < 1:
        ap.error(f"argument --threads: must be >= 1, got {args.threads}")
    p = PRESETS[args.preset]
    words = list(argv if argv is not None else sys.argv[1:])
    shown = [w for i, w in enumerate(words)  # the notes are printed under their own heading
             if w != "--note" and not (i and words[i - 1] == "--note")
             and not w.startswith("--note=")]
    cmd = "python -m experiments.energy_accuracy " + " ".join(shown)

    def body() -> int:
        if not args.report_only:
            from . import grid

            if args.threads is not None:
                import torch

                torch.set_num_threads(args.threads)
            with executor_mod.from_arguments(args) as ex:
                grid.run([grid.Job(list(p.datasets), list(p.seeds), p.epochs)],
                         preset_modes(p), p.out, test_limit=p.test_limit,
                         train_limit=p.train_limit, executor=ex,
                         task_cpus=args.task_cpus, retries=args.retries,
                         reference=not args.retrain)
                if p.finetuned is not None and not args.no_finetuned:
                    run_finetuned(p, only=_cost_modes(args.cost or [p.cost]), executor=ex,
                                  task_cpus=args.task_cpus, retries=args.retries,
                                  reference=not args.retrain)
        stem = p.report_stem
        paths = report(args.cost or [p.cost], p.out, p, stem, cmd.strip(), plot=not args.no_plot,
                       notes=args.note, accuracy_from=args.accuracy_from)
        if args.snapshot:
            SNAPSHOT_DIR.mkdir(parents=True, exist_ok=True)
            for path in paths:
                shutil.copyfile(path, SNAPSHOT_DIR / path.name)
        print(paths[2].read_text())
        return 0

    return run_main("energy_accuracy", body, (JoinError, ValueError))


if __name__ == "__main__":
    sys.exit(main())
