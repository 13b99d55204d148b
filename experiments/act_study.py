"""Accuracy cost of the hardware activations (docs/activation.md), with each kind of product.

    python -m experiments.act_study                   # run (resumable) and write the snapshot
    python -m experiments.act_study --report-only     # the snapshot from the existing results

Runs the accuracy grid of :mod:`experiments.accuracy` (MNIST and FashionMNIST, 5 seeds, 1 epoch,
float32 training) with every product kind of :data:`PRODUCTS` combined with exact activations and
with each shipped activation-unit set (``lmul.ACT_PRESETS``): modes ``P`` and ``P:act=<set>``.
Results go to ``results/act_accuracy.json`` (resumable: a rerun skips what is there); then the
study table is written to ``docs/results/act_accuracy.md`` (``--snapshot``). The weights are the
committed reference checkpoints (``experiments/checkpoints/``, SHA-256 checked), so the table is
the same on every machine; ``--retrain`` trains them instead.

The study table pairs each ``P:act=<set>`` with ``P`` (the same products, exact activations) on
the same trained weights and seed, so its Δ isolates the activation unit under each product
kind; the Δ to ``fp32`` (everything exact) is beside it. The cheapest set, per product kind, is
the one with the fewest segments (then coefficient bits) whose 95 % CI of Δ includes 0 on every
dataset.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.lib.cli import run_main
from sim.lib.fileio import RESULTS_DIR, atomic_write_text

from .report import BASELINE, ResultsError, load_results, run_group
from .stats import Summary, paired_differences, summarize
from .store import provenance

REPO = Path(__file__).resolve().parents[1]
#: Product kinds of the study (mode strings without ``act=``).
PRODUCTS = ("fp32", "lmul", "bf16")
DATASETS = "mnist,fashion"
SEEDS = "0-4"
EPOCHS = 1
DEFAULT_OUT = RESULTS_DIR / "act_accuracy.json"
DEFAULT_SNAPSHOT = REPO / "docs" / "results" / "act_accuracy.md"


def study_modes(products: Sequence[str] = PRODUCTS) -> list[str]:
    """Every product kind with exact activations, then with each shipped set."""
    import lmul

    return [m for p in products for m in [p] + [f"{p}:act={s}" for s in lmul.ACT_PRESETS]]


def split_activation(mode: str) -> tuple[str, str]:
    """(the mode with exact activations, activation set) of a mode name."""
    from .modes import parse_mode

    arith = parse_mode(mode)
    if arith.activation == "exact":
        return arith.name, "exact"
    # the canonical name ends in ",act=<set>" or ":act=<set>" (experiments.modes)
    return arith.name[:-len(f"act={arith.activation}") - 1], arith.activation


@dataclass(frozen=True)
class StudyRow:
    """One (dataset configuration, products, activation) over its seeds.

    Attributes:
        dataset: dataset name. products: mode with exact activations. activation: ``exact`` or
        a set. acc: accuracy in % over seeds. diff: paired Δ (pp) to ``products`` with exact
        activations (None for the exact rows). diff_fp32: paired Δ (pp) to ``fp32``.
    """

    dataset: str
    n_test: int
    products: str
    activation: str
    acc: Summary
    diff: Summary | None
    diff_fp32: Summary | None


def study_rows(doc: dict[str, Any]) -> list[StudyRow]:
    """The study's rows from a results document (runs of training recipes are left out)."""
    by: dict[tuple[Any, str], dict[int, float]] = {}
    for r in doc["runs"]:
        if "[" in r["mode"]:
            continue
        by.setdefault((run_group(r), r["mode"]), {})[int(r["seed"])] = float(r["accuracy"])
    rows = []
    for group, mode in by:
        products, act = split_activation(mode)
        accs = by[(group, mode)]
        base = by.get((group, products))
        fp32 = by.get((group, BASELINE))
        diff = diff32 = None
        if act != "exact" and base is not None:
            d = paired_differences(accs, base)
            diff = summarize(d) if d else None
        if mode != BASELINE and fp32 is not None:
            d = paired_differences(accs, fp32)
            diff32 = summarize(d) if d else None
        rows.append(StudyRow(group[0], group[4], products, act,
                             summarize([accs[s] for s in sorted(accs)]), diff, diff32))
    datasets = list(dict.fromkeys(r["dataset"] for r in doc["runs"]))
    rows.sort(key=lambda r: (datasets.index(r.dataset), PRODUCTS.index(r.products)
                             if r.products in PRODUCTS else len(PRODUCTS), r.products,
                             _set_cost(r.activation)))
    return rows


def _set_cost(act: str) -> tuple[int, int]:
    """Sort key of a set by hardware size: segments (table entries), then coefficient bits."""
    import lmul

    if act == "exact":
        return (-1, -1)
    cfg = lmul.act_config(act, "sigmoid")
    return (cfg.segments, cfg.coef_bits)


def includes_zero(s: Summary | None) -> bool:
    """Whether the 95 % CI of a Δ includes 0 (False without a CI: n < 2 or no pairs)."""
    return (s is not None and not math.isnan(s.ci_low)
            and s.ci_low <= 0.0 <= s.ci_high)


def cheapest(rows: Sequence[StudyRow], products: str) -> str | None:
    """The cheapest set whose Δ CI includes 0 on every dataset measured with ``products``
    (each dataset must have the set's row), or None."""
    datasets = {r.dataset for r in rows if r.products == products}
    sets = sorted({r.activation for r in rows if r.products == products} - {"exact"},
                  key=_set_cost)
    for s in sets:
        got = {r.dataset: r for r in rows if r.products == products and r.activation == s}
        if datasets and set(got) == datasets and all(includes_zero(r.diff)
                                                     for r in got.values()):
            return s
    return None


def _ci(s: Summary | None) -> str:
    if s is None or math.isnan(s.ci_low):
        return "—"
    return f"[{s.ci_low:.2f}, {s.ci_high:.2f}]"


def _mean(s: Summary | None) -> str:
    return "—" if s is None else format(s.mean, "+.2f")


def render(doc: dict[str, Any], command: str) -> str:
    """The study table and its conclusions as markdown."""
    rows = study_rows(doc)
    lines = ["# Accuracy cost of the hardware activations (LSTM, MNIST and FashionMNIST)", "",
             f"Command: `{command}` (the grid's results: `results/act_accuracy.json`, not "
             "tracked). float32 weights trained per seed (1 epoch, rows as the sequence), "
             "evaluated on the full test sets with each kind of product (`fp32`: float32; "
             "`lmul`: the BF16 L-Mul unit; `bf16`: exact BF16 products; binary32 sums) and the "
             "cell's sigmoid/tanh exact (correctly rounded) or from the activation unit "
             "(`act=<set>`, docs/activation.md). Δ vs exact act pairs each row with the same "
             "products and exact activations on the same weights, so it isolates the "
             "activation unit; Δ vs fp32 is the whole cost of the arithmetic.", "",
             provenance(doc["runs"]), "",
             "| dataset | test images | products | activation | n | accuracy % (mean) | 95% CI "
             "| Δ vs exact act (pp) | 95% CI | Δ vs fp32 (pp) | 95% CI |",
             "|---|---:|---|---|---:|---:|---|---:|---|---:|---|"]
    for r in rows:
        lines.append(f"| {r.dataset} | {r.n_test} | {r.products} | {r.activation} | {r.acc.n} "
                     f"| {r.acc.mean:.2f} | {_ci(r.acc)} | {_mean(r.diff)} | {_ci(r.diff)} "
                     f"| {_mean(r.diff_fp32)} | {_ci(r.diff_fp32)} |")
    lines += ["", "CIs: t distribution, n-1 degrees of freedom, over the seeds; Δ: per-seed "
              "paired difference in percentage points.", "",
              "Cheapest set whose 95 % CI of Δ vs exact act includes 0 on every dataset:", ""]
    for p in dict.fromkeys(r.products for r in rows):
        best = cheapest(rows, p)
        if best is None:
            lines.append(f"* `{p}` products: none of the sets measured")
            continue
        per = "; ".join(f"{r.dataset} {_mean(r.diff)} pp {_ci(r.diff)}" for r in rows
                        if r.products == p and r.activation == best)
        lines.append(f"* `{p}` products: **{best}** ({per})")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.act_study",
                                     description="Accuracy cost of the activation unit.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results JSON")
    parser.add_argument("--snapshot", type=Path, default=DEFAULT_SNAPSHOT,
                        help="study table (markdown)")
    parser.add_argument("--products", default=",".join(PRODUCTS),
                        help=f"product kinds (default {','.join(PRODUCTS)})")
    parser.add_argument("--datasets", default=DATASETS)
    parser.add_argument("--seeds", default=SEEDS)
    parser.add_argument("--threads", default="1", help="torch threads (default 1)")
    parser.add_argument("--report-only", action="store_true",
                        help="only write the snapshot from the existing results")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--retrain", action="store_true",
                        help="train the weights (or use the checkpoint cache) instead of the "
                             "committed reference checkpoints (experiments/checkpoints/)")
    args = parser.parse_args(argv)
    products = [p.strip() for p in args.products.split(",") if p.strip()]
    command = "python -m experiments.act_study" + "".join(
        f" {a}" for a in (sys.argv[1:] if argv is None else argv) if a != "--report-only")

    def body() -> int:
        from .modes import parse_mode

        for p in products:
            if parse_mode(p).activation != "exact":
                raise ValueError(f"--products: {p!r} has act=; give the products only")
        if not args.report_only:
            from . import accuracy

            grid = ["--datasets", args.datasets, "--seeds", args.seeds, "--epochs", str(EPOCHS),
                    "--modes", ",".join(study_modes(products)), "--threads", args.threads,
                    "--out", str(args.out), "--no-report"]
            rc = accuracy.main(grid + (["--no-progress"] if args.no_progress else [])
                               + (["--retrain"] if args.retrain else []))
            if rc:
                return rc
        doc = load_results(args.out)
        text = render(doc, command)
        atomic_write_text(args.snapshot, text)
        print(text, end="")
        print(f"act_study: wrote {args.snapshot}", file=sys.stderr)
        return 0

    return run_main("act_study", body, {ResultsError: 1, ValueError: 2})


if __name__ == "__main__":
    sys.exit(main())
