"""Closing the accuracy gap: the L-Mul offset on the network, L-Mul-aware training, FP8 L-Mul.

    python -m experiments.tune                  # make tune: the full preset (long, see below)
    python -m experiments.tune --preset quick   # make tune-quick (or TUNE=quick make tune)
    python -m experiments.tune --preset quick --report-only   # tables and plots from the JSON
    python -m experiments.tune --steps 1        # only the inference sweep
    python -m experiments.tune --executor ray   # every training/evaluation a Ray task (all cores)

A preset is a sequence of steps, each one call of the accuracy runner
(:func:`experiments.grid.run`) on one results file, so everything is resumable: rerunning the
same command skips every finished row and reuses every cached weight file (``results/weights``).
Weights with a committed reference checkpoint (``experiments/checkpoints/``, SHA-256 checked:
:mod:`experiments.weights`), float32 or a recipe's, are loaded from it instead of trained, so
the rows they give are the same bits on every machine; ``--retrain`` trains them anew.

1. **Inference sweep** on float32-trained weights: ``fp32``, ``bf16``, the BF16 L-Mul unit at
   offsets 0, 4, 6, 7, 8 (the paper's), 9, 10, 12, and FP8: L-Mul in ``e4m3_ieee``, ``e4m3fn``
   (OCP E4M3FN, ``torch.float8_e4m3fn``: mode names ``..e=4,m=3,fn=1``) and ``e5m2`` at offsets 0
   and 1 (1 is the paper's for M <= 3) and the exact FP8 multiply (``exact:e=..``).
2. **L-Mul-aware fine-tuning** (recipe ``ft``: the float32 weights trained N more epochs with the
   hardware's arithmetic in the forward pass, :mod:`experiments.recipes`) at the paper offset and
   the best BF16 offsets of step 1 (by mean paired difference on FashionMNIST), FP8 L-Mul at the
   paper's and the best offset, and the exact FP8 multiply; each with the float32 control
   ``fp32 [ftN]`` (the same N extra epochs in float32).
3. **L-Mul-aware training from scratch** (recipe ``scratch``) at the paper and the best BF16
   offset (and, in a preset with ``scratch_fp8``, FP8 L-Mul at its best offset and the exact
   FP8 multiply).

The runner steps are four: the sweep, BF16 fine-tuning, FP8 fine-tuning, training from scratch
(``--steps N`` runs the first N).

Presets: ``full`` (FashionMNIST and MNIST rows, seeds 0-4, 3 epochs, the whole test sets;
steps 1 and 2 on both datasets, FP8 fine-tuning and training from scratch (BF16 L-Mul at the
paper's and the best offset) on FashionMNIST, the dataset with the gap) and ``quick`` (seeds
0-1, 1 epoch, the first 2000 test images, fine-tuning at the paper and the single best offset;
FP8 fine-tuning (best L-Mul offset, exact) and training from scratch (BF16 only) on
FashionMNIST only). Each writes its own results (``results/tune.json`` /
``results/tune_quick.json``, CSV beside it), the report ``.md`` with the tables, CIs and
verdicts, and two plots: ``*_offsets.png`` (the network's accuracy difference and the unit's
bias and mean relative error, from the precision analysis's ``precision_offsets.csv``: the one
``make analysis`` generated in ``results/``, else the committed snapshot in ``docs/results/``, on
one offset axis) and ``*_recipes.png`` (every arithmetic with float32 weights, fine-tuned, and
trained from scratch). Wall times per step are kept in the JSON (``tune_walls``).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.lib.cli import int_in_range, json_path, run_main
from sim.lib.fileio import (
    RESULTS_DIR,
    atomic_write,
    atomic_write_text,
    locked,
    snapshot_or_generated,
)

from . import data as data_mod
from . import executor as executor_mod
from .report import ResultsError, load_results, markdown_table
from .stats import Summary, paired_differences, summarize
from .store import provenance

#: The precision analysis's offset sweep (``make analysis``), read for the offset plot and table.
PRECISION_CSV = "precision_offsets.csv"

#: The BF16 offsets of the sweep (LSBs of the 7-bit mantissa; 8 is the paper's 2^-4).
BF16_OFFSETS = (0, 4, 6, 7, 8, 9, 10, 12)
PAPER_BF16 = 8
#: FP8 formats (names of ``lmul.PRESETS``) and the offsets swept for each (1 is the paper's).
FP8_FORMATS = ("e4m3_ieee", "e4m3fn", "e5m2")
FP8_OFFSETS = (0, 1)


def bf16_mode(offset: int) -> str:
    """Canonical mode name of the BF16 L-Mul unit at ``offset``."""
    return "lmul" if offset == PAPER_BF16 else f"lmul:offset={offset}"


def fp8_mode(fmt: str, offset: int | None) -> str:
    """Canonical mode name of FP8 L-Mul (``offset`` None: the exact FP8 multiply)."""
    from .modes import parse_mode

    if offset is None:
        return parse_mode(f"exact:fmt={fmt}").name
    return parse_mode(f"lmul:fmt={fmt},offset={offset}").name


def fp8_paper_offset(fmt: str) -> int:
    """The paper's offset for ``fmt``'s mantissa width."""
    import lmul

    return lmul.paper_offset(lmul.PRESETS[fmt].man_bits)


@dataclass(frozen=True)
class Step:
    """One runner call: datasets x seeds, these modes, these recipes."""

    title: str
    datasets: tuple[str, ...]
    modes: tuple[str, ...]
    recipes: tuple[str, ...]


@dataclass(frozen=True)
class Preset:
    """A sweep's size and scope (see the module docstring)."""

    name: str
    datasets: tuple[str, ...]
    seeds: tuple[int, ...]
    epochs: int
    test_limit: int | None
    out: Path
    finetune_epochs: int = 1
    finetune_limit: int | None = None  # fine-tune on the first N training images only
    top_offsets: int = 2  # best BF16 offsets fine-tuned besides the paper's
    fp8_ft_datasets: tuple[str, ...] = ("fashion", "mnist")
    fp8_ft_exact: bool = True
    fp8_ft_paper: bool = True  # FP8 fine-tuning at the paper offset too (not only the best)
    scratch_datasets: tuple[str, ...] | None = None  # None: all datasets; (): no scratch step
    scratch_fp8: bool = True
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def select_on(self) -> str:
        """The dataset whose sweep picks the best offsets: FashionMNIST (the one with the gap)
        when the preset has it."""
        return "fashion" if "fashion" in self.datasets else self.datasets[0]

    @property
    def ft(self) -> str:
        """The fine-tuning recipe's name (:func:`experiments.recipes.parse_recipe`)."""
        return f"ft{self.finetune_epochs}" + ("" if self.finetune_limit is None
                                              else f"@{self.finetune_limit}")


PRESETS: dict[str, Preset] = {
    "full": Preset("full", ("fashion", "mnist"), (0, 1, 2, 3, 4), 3, None,
                   RESULTS_DIR / "tune.json", fp8_ft_datasets=("fashion",),
                   scratch_datasets=("fashion",), scratch_fp8=False,
                   notes=("FP8 fine-tuning and training from scratch (BF16 L-Mul, paper and best "
                          "offset) on FashionMNIST only, the dataset with the gap; the inference "
                          "sweep and BF16 fine-tuning on both datasets",)),
    "quick": Preset("quick", ("fashion", "mnist"), (0, 1), 1, 2000,
                    RESULTS_DIR / "tune_quick.json", top_offsets=1,
                    fp8_ft_datasets=("fashion",), fp8_ft_paper=False,
                    scratch_datasets=("fashion",), scratch_fp8=False,
                    notes=("reduced preset: 2 seeds, 1 training epoch, the first 2000 test "
                           "images; fine-tuning (1 epoch) at the paper offset and the best BF16 "
                           "offset; FP8 fine-tuning (L-Mul at its best offset, exact) and training "
                           "from scratch (BF16 L-Mul, paper and best offset) on FashionMNIST "
                           "only",)),
}


def inference_modes() -> list[str]:
    """Step 1's modes."""
    modes = ["fp32", "bf16"] + [bf16_mode(o) for o in BF16_OFFSETS]
    for fmt in FP8_FORMATS:
        modes += [fp8_mode(fmt, o) for o in FP8_OFFSETS] + [fp8_mode(fmt, None)]
    return modes


# ------------------------------------------------------------------------------- reading results

def _runs(doc: dict[str, Any], p: Preset) -> list[dict[str, Any]]:
    """The runs of ``doc`` that belong to preset ``p`` (same epochs, test subset, seeds)."""
    return [r for r in doc["runs"] if r["epochs"] == p.epochs and r.get("test_limit") ==
            p.test_limit and r.get("train_limit") is None and r["seq"] == "rows"
            and r["seed"] in p.seeds and r["dataset"] in p.datasets]


def by_seed(runs: list[dict[str, Any]], dataset: str, mode: str) -> dict[int, float]:
    """{seed: accuracy %} of one dataset and mode label."""
    return {int(r["seed"]): float(r["accuracy"]) for r in runs
            if r["dataset"] == dataset and r["mode"] == mode}


def delta(runs: list[dict[str, Any]], dataset: str, mode: str, base: str = "fp32"
          ) -> Summary | None:
    """Paired difference (percentage points) ``mode`` - ``base`` over the common seeds."""
    d = paired_differences(by_seed(runs, dataset, mode), by_seed(runs, dataset, base))
    return summarize(d) if d else None


def best_offsets(runs: list[dict[str, Any]], dataset: str, count: int) -> list[int]:
    """The ``count`` BF16 offsets other than the paper's with the highest mean paired difference
    to fp32 on ``dataset`` (ties: the one closer to the paper's); [] without results."""
    scored = [(o, delta(runs, dataset, bf16_mode(o))) for o in BF16_OFFSETS if o != PAPER_BF16]
    scored = [(o, s) for o, s in scored if s is not None]
    scored.sort(key=lambda t: (-t[1].mean, abs(t[0] - PAPER_BF16)))
    return [o for o, _ in scored[:count]]


def best_fp8_offset(runs: list[dict[str, Any]], dataset: str, fmt: str) -> int:
    """The FP8 offset with the highest mean paired difference on ``dataset`` (the paper's if
    nothing was measured)."""
    scored = [(o, delta(runs, dataset, fp8_mode(fmt, o))) for o in FP8_OFFSETS]
    scored = [(o, s) for o, s in scored if s is not None]
    if not scored:
        return fp8_paper_offset(fmt)
    return max(scored, key=lambda t: (t[1].mean, t[0] == fp8_paper_offset(fmt)))[0]


# ----------------------------------------------------------------------------------- the steps

def plan(p: Preset, doc: dict[str, Any]) -> list[Step]:
    """The preset's steps; steps 2 and 3 depend on step 1's results in ``doc``."""
    runs = _runs(doc, p)
    ft = p.ft
    steps = [Step("inference sweep, float32 weights", p.datasets, tuple(inference_modes()),
                  ("fp32",))]
    offs = best_offsets(runs, p.select_on, p.top_offsets)
    bf16 = ["fp32", bf16_mode(PAPER_BF16)] + [bf16_mode(o) for o in offs]
    steps.append(Step(f"L-Mul-aware fine-tuning ({ft}), BF16 offsets {PAPER_BF16} (paper)"
                      + "".join(f", {o}" for o in offs), p.datasets, tuple(bf16),
                      (ft, f"{ft}:fp32")))
    fp8: list[str] = []
    for fmt in FP8_FORMATS:
        best = best_fp8_offset(runs, p.select_on, fmt)
        for o in dict.fromkeys([fp8_paper_offset(fmt), best] if p.fp8_ft_paper else [best]):
            fp8.append(fp8_mode(fmt, o))
        if p.fp8_ft_exact:
            fp8.append(fp8_mode(fmt, None))
    steps.append(Step(f"L-Mul-aware fine-tuning ({ft}), FP8", p.fp8_ft_datasets, tuple(fp8),
                      (ft, f"{ft}:fp32")))
    scratch_ds = p.datasets if p.scratch_datasets is None else p.scratch_datasets
    if scratch_ds:
        modes = [bf16_mode(PAPER_BF16)] + [bf16_mode(o) for o in offs[:1]]
        if p.scratch_fp8:
            modes += [fp8_mode("e4m3_ieee", best_fp8_offset(runs, p.select_on, "e4m3_ieee")),
                      fp8_mode("e4m3_ieee", None)]
        steps.append(Step("L-Mul-aware training from scratch", scratch_ds,
                          tuple(dict.fromkeys(modes)), ("scratch",)))
    return steps


def _record_wall(out: Path, preset: str, title: str, seconds: float) -> None:
    """Add ``seconds`` to the step's wall time in the results file (under its writer lock)."""
    if not out.is_file():  # nothing was written (every dataset unavailable)
        return
    with locked(out):
        doc = json.loads(out.read_text(encoding="utf-8"))
        walls = doc.setdefault("tune_walls", {}).setdefault(preset, {})
        walls[title] = round(walls.get(title, 0.0) + seconds, 1)
        atomic_write_text(out, json.dumps(doc, indent=1) + "\n")


def run_preset(p: Preset, *, progress: bool = True, weights_dir: Path | None = None,
               data_root: Path | None = None, out: Path | None = None,
               log: Callable[[str], None] | None = None,
               load_fn: Callable[[str, Path | None], data_mod.ImageData] | None = None,
               only_steps: int | None = None, executor: Any = None, task_cpus: int = 1,
               retries: int = 1, reference: bool = True) -> Path:
    """Run (or resume) every step of preset ``p``; return the results path.

    ``only_steps`` stops after that many steps. Steps 2 to 4 are planned from the results of
    step 1 after it has run. ``executor``, ``task_cpus`` and ``retries`` go to
    :func:`experiments.grid.run` (None: everything in this process); ``reference``: weights
    from the committed reference checkpoints where they exist (``--retrain``: False).
    """
    from . import grid
    from .store import ResultsStore

    out = Path(out or p.out)
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    store = ResultsStore(out)
    n_steps = len(plan(p, store.doc))
    for i in range(n_steps if only_steps is None else min(only_steps, n_steps)):
        store.refresh()
        step = plan(p, store.doc)[i]
        log(f"[tune {p.name}] step {i + 1}/{n_steps}: {step.title}: "
            f"{', '.join(step.datasets)} x seeds {', '.join(map(str, p.seeds))} x "
            f"{len(step.modes)} modes ({', '.join(step.modes)}), recipes {', '.join(step.recipes)}")
        t0 = time.perf_counter()
        grid.run([grid.Job(list(step.datasets), list(p.seeds), p.epochs)],
                 list(step.modes), out, weights_dir=weights_dir, data_root=data_root,
                 test_limit=p.test_limit, progress=progress, log=log, load_fn=load_fn,
                 recipes=list(step.recipes), finetune_epochs=p.finetune_epochs,
                 executor=executor, task_cpus=task_cpus, retries=retries,
                 reference=reference)
        _record_wall(out, p.name, step.title, time.perf_counter() - t0)
    return out


# ------------------------------------------------------------------------------------- report

def read_precision(path: Path | None = None) -> dict[tuple[str, int], tuple[float, float]]:
    """{(format, offset): (bias %, mean |relative error| %)} of the precision analysis's
    Gaussian-operand sweep (``make analysis``); {} when the file is absent. Default: the
    generated ``results/precision_offsets.csv``, else its committed snapshot
    (:func:`sim.lib.fileio.snapshot_or_generated`)."""
    path = snapshot_or_generated(PRECISION_CSV) if path is None else Path(path)
    if not path.is_file():
        return {}
    out: dict[tuple[str, int], tuple[float, float]] = {}
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["distribution"] == "gauss":
                out[(row["format"], int(row["offset"]))] = (100 * float(row["bias"]),
                                                            100 * float(row["mean_abs"]))
    return out


def _fmt_delta(s: Summary | None) -> str:
    if s is None:
        return "—"
    if s.n < 2 or math.isnan(s.ci_low):
        return f"{s.mean:+.2f} (n={s.n})"
    return f"{s.mean:+.2f} [{s.ci_low:+.2f}, {s.ci_high:+.2f}]"


def _fmt_acc(vals: dict[int, float]) -> str:
    if not vals:
        return "—"
    s = summarize([vals[k] for k in sorted(vals)])
    return f"{s.mean:.2f}" + ("" if s.n < 2 else f" ± {s.std:.2f}")


def _unit_label(mode: str) -> str:
    return {"fp32": "float32", "bf16": "BF16 exact"}.get(mode, mode)


def _ci_verdict(s: Summary | None) -> str:
    if s is None:
        return "not measured"
    if s.n < 2:
        return "one seed, no CI"
    if s.ci_low > 0:
        return "above 0"
    if s.ci_high < 0:
        return "below 0 (gap remains)"
    return "includes 0: no difference resolved at this n"


def report(p: Preset, out: Path | None = None, precision_csv: Path | None = None) -> str:
    """Tables, verdicts and plots of preset ``p`` from its results; returns the markdown.
    ``precision_csv``: the unit's offset sweep (default as :func:`read_precision`)."""
    out = Path(out or p.out)
    doc = load_results(out)
    runs = _runs(doc, p)
    if not runs:
        raise ResultsError(f"{out}: no results of preset {p.name} yet")
    prec = read_precision(precision_csv)
    ft = p.ft
    control = f"fp32 [{ft}]"
    n_test = sorted({int(r["n_test"]) for r in runs})
    lines = [f"# L-Mul offset, L-Mul-aware training and FP8 on the LSTM ({p.name} preset)", "",
             f"Command: `python -m experiments.tune --preset {p.name}`"
             f"{' (make tune)' if p.name == 'full' else ' (make tune-quick)'}. "
             f"Datasets {', '.join(p.datasets)} (rows), seeds {', '.join(map(str, p.seeds))}, "
             f"{p.epochs} float32 training epoch(s), test images {', '.join(map(str, n_test))}, "
             f"fine-tuning: recipe {p.ft} ({p.finetune_epochs} epoch(s)"
             + ("" if p.finetune_limit is None else f" over the first {p.finetune_limit} "
                "training images") + ").", ""]
    lines += [f"Note: {n}." for n in p.notes] + ([""] if p.notes else [])
    lines += [provenance(runs), ""]
    lines += ["Δ: per-seed paired difference to the float32-trained model evaluated in fp32 "
              "(same seed), in percentage points, mean [95% t CI]; accuracy: mean ± sample std "
              "(ddof=1) over seeds. Control: the float32 model trained the same extra epochs in "
              "float32 (fine-tuned rows are also compared with it).", ""]

    # 1. offsets
    lines += ["## BF16 offset: the unit and the network (float32-trained weights)", "",
              "| offset | unit bias % | unit mean rel. error % | "
              + " | ".join(f"{d} Δ (pp)" for d in p.datasets) + " |",
              "|---:|---:|---:|" + "---|" * len(p.datasets)]
    for o in BF16_OFFSETS:
        unit = prec.get(("e8m7", o))
        tag = " (paper)" if o == PAPER_BF16 else ""
        b, e = ("—", "—") if unit is None else (f"{unit[0]:+.2f}", f"{unit[1]:.2f}")
        lines.append(f"| {o}{tag} | {b} | {e} | "
                     + " | ".join(_fmt_delta(delta(runs, d, bf16_mode(o))) for d in p.datasets)
                     + " |")
    lines.append("")

    # 2. every arithmetic x weights
    modes = ["fp32", "bf16"] + [bf16_mode(o) for o in BF16_OFFSETS]
    for fmt in FP8_FORMATS:
        modes += [fp8_mode(fmt, o) for o in FP8_OFFSETS] + [fp8_mode(fmt, None)]
    lines += ["## Every arithmetic: float32 weights, L-Mul-aware fine-tuning, from scratch", "",
              "Each Δ compares equal training: float32 weights after E epochs and from-scratch "
              "training (E epochs in the arithmetic) with `fp32` after E epochs; both "
              f"fine-tuned columns with the float32 control `{control}` (E+N epochs, "
              f"float32, evaluated in fp32). 'float32 fine-tuned' is that control's weights "
              f"evaluated in the arithmetic (`MODE [{ft}:fp32]`): what the extra training alone "
              "does. A gap counts as closed where the fine-tuned Δ's CI lies above 0, or includes "
              "0 and is narrow enough to mean it.",
              "", "| dataset | arithmetic | acc. float32 weights | Δ | acc. float32 fine-tuned "
              "| Δ vs control | acc. fine-tuned in the arithmetic | Δ vs control "
              "| acc. from scratch | Δ |", "|---|---|---:|---|---:|---|---:|---|---:|---|"]
    for d in p.datasets:
        for m in modes:
            plain, tuned, scr = m, f"{m} [{ft}]", f"{m} [scratch]"
            f32t = control if m == "fp32" else f"{m} [{ft}:fp32]"
            if not (by_seed(runs, d, plain) or by_seed(runs, d, tuned)):
                continue
            aware = (None, "—") if m == "fp32" else (delta(runs, d, tuned, control),
                                                      _fmt_acc(by_seed(runs, d, tuned)))
            lines.append(
                f"| {d} | {_unit_label(m)} | {_fmt_acc(by_seed(runs, d, plain))} | "
                f"{'—' if m == 'fp32' else _fmt_delta(delta(runs, d, plain))} | "
                f"{_fmt_acc(by_seed(runs, d, f32t))} | "
                f"{'—' if m == 'fp32' else _fmt_delta(delta(runs, d, f32t, control))} | "
                f"{aware[1]} | {_fmt_delta(aware[0])} | {_fmt_acc(by_seed(runs, d, scr))} | "
                f"{_fmt_delta(delta(runs, d, scr))} |")
    lines.append("")

    # 3. verdicts
    lines += ["## Verdicts (from the rows above; CIs are 95% t intervals of paired differences)",
              ""]
    lines += _verdicts(runs, p, ft, control)

    walls = doc.get("tune_walls", {}).get(p.name, {})
    if walls:
        lines += ["", "Wall time per step (this machine, all runs of the step, cumulated over "
                  "resumed runs): " + "; ".join(f"{k}: {v / 60:.1f} min" for k, v in walls.items())
                  + f"; total {sum(walls.values()) / 60:.1f} min."]
    sub = {**doc, "runs": runs}
    lines += ["", "## All rows", "", markdown_table(sub)]
    text = "\n".join(lines) + "\n"
    atomic_write_text(out.with_suffix(".md"), text)
    plot_offsets(runs, p, prec, out.with_name(out.stem + "_offsets.png"))
    plot_recipes(runs, p, out.with_name(out.stem + "_recipes.png"))
    return text


def _verdicts(runs: list[dict[str, Any]], p: Preset, ft: str, control: str) -> list[str]:
    out: list[str] = []
    scored = {d: sorted(((delta(runs, d, bf16_mode(o)), o) for o in BF16_OFFSETS
                         if delta(runs, d, bf16_mode(o)) is not None),
                        key=lambda t: -t[0].mean) for d in p.datasets}
    for d, sc in scored.items():
        if not sc:
            continue
        (best, o), paper = sc[0], delta(runs, d, bf16_mode(PAPER_BF16))
        diff = summarize(paired_differences(by_seed(runs, d, bf16_mode(o)),
                                            by_seed(runs, d, bf16_mode(PAPER_BF16)))) \
            if o != PAPER_BF16 else None
        text = (f"- Offset, {d}: best mean Δ at offset {o}: {_fmt_delta(best)}; paper offset "
                f"{PAPER_BF16}: {_fmt_delta(paper)}")
        if diff is not None:
            text += f"; offset {o} − offset {PAPER_BF16}: {_fmt_delta(diff)} ({_ci_verdict(diff)})"
        out.append(text + ".")
    for d in p.datasets:
        for m in [bf16_mode(PAPER_BF16)] + [bf16_mode(o) for o in BF16_OFFSETS
                                            if o != PAPER_BF16]:
            tuned = f"{m} [{ft}]"
            s = delta(runs, d, tuned, control)
            if s is None:
                continue
            alone = delta(runs, d, f"{m} [{ft}:fp32]", control)
            out.append(f"- Fine-tuning, {d}, {m}: L-Mul-aware fine-tuned − float32 control "
                       f"{_fmt_delta(s)} ({_ci_verdict(s)}); float32 fine-tuning alone, "
                       f"evaluated in {m}: {_fmt_delta(alone)};"
                       f" before fine-tuning (float32 weights, E epochs): "
                       f"{_fmt_delta(delta(runs, d, m))}.")
    for d in p.datasets:
        for fmt in FP8_FORMATS:
            parts = []
            for o in (*FP8_OFFSETS, None):
                m = fp8_mode(fmt, o)
                name = "exact" if o is None else f"L-Mul offset {o}"
                s, t = delta(runs, d, m), delta(runs, d, f"{m} [{ft}]", control)
                if s is None and t is None:
                    continue
                parts.append(f"{name}: {_fmt_delta(s)}" + (
                    f", fine-tuned in it − control {_fmt_delta(t)}" if t is not None
                    else ""))
            if parts:
                out.append(f"- FP8 {fmt}, {d}: " + "; ".join(parts) + ".")
    return out


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> None:
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=120))


def _clip_ylim(ax: Any, means: list[float], margin: float = 1.5) -> bool:
    """Fit the y range to the means (plus ``margin`` pp) rather than to 2-seed whiskers that span
    tens of points; return whether a whisker was cut."""
    if not means:
        return False
    lo, hi = min(min(means), 0.0) - margin, max(max(means), 0.0) + margin
    ys = [float(y) for line in ax.lines for y in line.get_ydata()]
    cut = any(y < lo or y > hi for y in ys)
    ax.set_ylim(lo, hi)
    return cut


def short_name(mode: str) -> str:
    """A compact label of a mode for plot axes (``lmul:e=4,m=3,offset=0`` -> ``E4M3 L-Mul 0``)."""
    from .modes import parse_mode

    a = parse_mode(mode)
    if a.kind == "fp32":
        return "float32"
    fmt = {(8, 7): "BF16", (4, 3): "E4M3", (5, 2): "E5M2"}.get(
        (a.cfg.exp_bits, a.cfg.man_bits), f"E{a.cfg.exp_bits}M{a.cfg.man_bits}")
    if a.kind == "exact":
        return f"{fmt} exact"
    paper = " (paper)" if a.cfg.offset_value == fp8_or_bf16_paper(a.cfg.man_bits) else ""
    return f"{fmt} L-Mul {a.cfg.offset_value}{paper}"


def fp8_or_bf16_paper(man_bits: int) -> int:
    """The paper's offset for a mantissa width."""
    import lmul

    return lmul.paper_offset(man_bits)


def plot_offsets(runs: list[dict[str, Any]], p: Preset,
                 prec: dict[tuple[str, int], tuple[float, float]], path: Path) -> None:
    """Network Δ (float32 weights; fine-tuned: vs the float32 control) and the unit's bias /
    mean relative error (lower panel) against the BF16 offset, on one shared offset axis."""
    plt = _pyplot()
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(8.5, 6.4), sharex=True,
                                  gridspec_kw={"height_ratios": [3, 2]})
    cmap = plt.get_cmap("tab10")
    ft = p.ft
    control = f"fp32 [{ft}]"
    means: list[float] = []
    series = ((lambda m: (m, "fp32"), "o-", 1.0, "float32 weights, vs fp32"),
              (lambda m: (f"{m} [{ft}]", control), "s", 0.6,
               f"L-Mul-aware fine-tuned ({ft}), vs float32 control"))
    for j, d in enumerate(p.datasets):
        for k, (names, fmt, alpha, label) in enumerate(series):
            xs, ys, es = [], [], []
            for o in BF16_OFFSETS:
                mode, base = names(bf16_mode(o))
                s = delta(runs, d, mode, base)
                if s is None:
                    continue
                xs.append(o + (j - 0.5) * 0.15 + k * 0.08)
                ys.append(s.mean)
                es.append(0.0 if math.isnan(s.half_width) else s.half_width)
            if xs:
                ax.errorbar(xs, ys, yerr=es, fmt=fmt, capsize=3, color=cmap(j), alpha=alpha,
                            label=f"{d}: {label}", markersize=5)
                means += ys
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.axvline(PAPER_BF16, color="grey", linestyle=":", linewidth=1)
    ax.grid(alpha=0.3)
    cut = _clip_ylim(ax, means)
    ax.set_ylabel("LSTM accuracy Δ (pp), 95% CI" + ("\n(whiskers cut)" if cut else ""))
    ax.legend(fontsize=7, loc="lower left")
    ax2.set_xlabel("BF16 L-Mul offset (LSBs of the 7-bit mantissa; 8 = paper)")
    ax2.set_xticks(BF16_OFFSETS)
    ax2.axvline(PAPER_BF16, color="grey", linestyle=":", linewidth=1)
    ax2.axhline(0.0, color="black", linewidth=0.8)
    ax2.grid(alpha=0.3)
    if prec:
        offs = [o for o in range(0, 13) if ("e8m7", o) in prec]
        ax2.plot(offs, [prec[("e8m7", o)][0] for o in offs], "o--", color="dimgray",
                 markersize=3, label="unit bias %")
        ax2.plot(offs, [prec[("e8m7", o)][1] for o in offs], "o-.", color="darkred",
                 markersize=3, label="unit mean |relative error| %")
        ax2.legend(fontsize=7, loc="upper center")
        ax2.set_ylabel("BF16 unit error (%),\nGaussian operands")
    else:
        ax2.set_title("(unit curves missing: run make analysis)", fontsize=8)
    ax.set_title(f"LSTM accuracy difference and unit error vs offset ({p.name} preset)",
                 fontsize=9)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def plot_recipes(runs: list[dict[str, Any]], p: Preset, path: Path) -> None:
    """Δ of every arithmetic: float32 weights (vs fp32), the float32 control's and the
    fine-tuned weights (vs the control), trained from scratch (vs fp32)."""
    plt = _pyplot()
    ft = p.ft
    control = f"fp32 [{ft}]"
    modes = ["bf16"] + [bf16_mode(o) for o in BF16_OFFSETS]
    for fmt in FP8_FORMATS:
        modes += [fp8_mode(fmt, o) for o in FP8_OFFSETS] + [fp8_mode(fmt, None)]
    series = (("", "fp32", "float32 weights"),
              (f" [{ft}:fp32]", control, "float32 fine-tuned (control weights)"),
              (f" [{ft}]", control, f"fine-tuned in the arithmetic ({ft})"),
              (" [scratch]", "fp32", "trained from scratch in the arithmetic"))
    fig, axes = plt.subplots(len(p.datasets), 1, figsize=(11.0, 3.6 * len(p.datasets)),
                             squeeze=False)
    cmap = plt.get_cmap("tab10")
    for ax, d in zip(axes[:, 0], p.datasets, strict=True):
        means: list[float] = []
        for k, (sfx, base, label) in enumerate(series):
            xs, ys, es = [], [], []
            for i, m in enumerate(modes):
                s = delta(runs, d, m + sfx, base)
                if s is None:
                    continue
                xs.append(i + (k - 1.5) * 0.18)
                ys.append(s.mean)
                es.append(0.0 if math.isnan(s.half_width) else s.half_width)
            if xs:
                ax.errorbar(xs, ys, yerr=es, fmt="o", capsize=3, color=cmap(k), label=label,
                            markersize=4)
                means += ys
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(modes)), [short_name(m).replace(" (", "\n(") for m in modes],
                      fontsize=7, rotation=35, ha="right")
        cut = _clip_ylim(ax, means, margin=3.0)
        ax.set_ylabel(f"{d}: Δ (pp)" + ("\nwhiskers cut" if cut else ""))
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")
    axes[0, 0].set_title(f"Paired differences, 95% CI ({p.name} preset): float32 weights and "
                         f"scratch vs fp32; fine-tuned vs the float32 control {control}",
                         fontsize=9)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


# ----------------------------------------------------------------------------------------- CLI

def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; see the module docstring."""
    parser = argparse.ArgumentParser(
        description="Offset sweep, L-Mul-aware training and FP8 on the LSTM (resumable).")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="full",
                        help="full (make tune; long) or quick (make tune-quick)")
    parser.add_argument("--report-only", action="store_true",
                        help="only regenerate the tables and plots from the results")
    parser.add_argument("--out", type=json_path, default=None,
                        help="results JSON (default results/tune.json, results/tune_quick.json)")
    parser.add_argument("--weights-dir", type=Path, default=None,
                        help="checkpoint cache (default: <out dir>/weights)")
    parser.add_argument("--threads", type=int, default=2,
                        help="torch threads (default 2; 1 is often much faster on a busy "
                             "machine, where torch's OpenMP workers spin-wait)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--steps", type=int_in_range(1, 4), default=None,
                        help="run only the first N steps (1-4; default all), e.g. 1 for the "
                             "inference sweep alone")
    parser.add_argument("--retrain", action="store_true",
                        help="train (or use the checkpoint cache) even where a committed "
                             "reference checkpoint exists (experiments/checkpoints/)")
    executor_mod.add_arguments(parser)
    args = parser.parse_args(argv)
    executor_mod.check_arguments(parser, args)
    if args.threads < 1:
        parser.error(f"argument --threads: must be >= 1, got {args.threads}")
    p = PRESETS[args.preset]
    out = Path(args.out or p.out)

    def body() -> int:
        if not args.report_only:
            import torch

            torch.set_num_threads(args.threads)
            print(f"tune preset {p.name}: seeds {', '.join(map(str, p.seeds))}, {p.epochs} "
                  f"epoch(s), test limit {p.test_limit or 'none'}; results {out}",
                  file=sys.stderr)
            t0 = time.perf_counter()
            with executor_mod.from_arguments(args) as executor:
                run_preset(p, progress=not args.no_progress, weights_dir=args.weights_dir,
                           out=out, only_steps=args.steps, executor=executor,
                           task_cpus=args.task_cpus, retries=args.retries,
                           reference=not args.retrain)
            print(f"done in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        print(report(p, out), end="")
        print(f"table: {out.with_suffix('.md')}  plots: {out.stem}_offsets.png, "
              f"{out.stem}_recipes.png", file=sys.stderr)
        return 0

    # ResultsError is a ValueError: a bad or missing results file, like a bad value, exits 1.
    # CheckpointHashError is a ValueError too: a missing or altered reference checkpoint.
    return run_main("tune", body, {ValueError: 1, executor_mod.ExecutorError: 2},
                    interrupted=f"rerun the same command to resume ({out})")


if __name__ == "__main__":
    sys.exit(main())
