"""The designs, modes, the join of cost and accuracy and the verdicts of
:mod:`experiments.energy_accuracy` (private; that module documents them)."""


from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.lib.fileio import RESULTS_DIR

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
