"""Summary table (markdown) and plot (PNG) regenerated from an accuracy results JSON.

``python -m experiments.report results/experiment.json`` prints the table and writes
``results/experiment.md`` and ``results/experiment.png`` (paths overridable).

Table rows group the runs by (dataset, sequence mode, epochs, train/test subset, inference batch
size, mode); over the seeds they give n, mean accuracy, sample std (ddof=1), the 95% t confidence
interval of the mean, and the paired difference to ``fp32`` (mean of per-seed differences, same
trained weights) with its 95% t interval. The plot shows accuracy per dataset and mode with 95%
CI error bars and each seed as a dot, and beside it the paired difference to fp32. Runs recorded
without a batch size count as batch 1000, the runner's default when they were made.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.lib.fileio import atomic_write, atomic_write_text

from .stats import Summary, paired_differences, summarize

SCHEMA = "lmul-lstm-accuracy/1"
BASELINE = "fp32"


class ResultsError(ValueError):
    """A results file is missing or malformed; ``str()`` is one line."""


#: Batch size of runs recorded before the batch size was stored (every run then used the
#: runner's default, 1000); it is part of a run's identity because float32 BLAS sums may depend
#: on the batch.
LEGACY_BATCH_SIZE = 1000

_INT = (int,)
_NUM = (int, float)
#: Fields every run must have, and their JSON types (bool is refused where int is expected).
REQUIRED_FIELDS: dict[str, tuple[type, ...]] = {
    "dataset": (str,), "seq": (str,), "seed": _INT, "epochs": _INT, "mode": (str,),
    "n_test": _INT, "accuracy": _NUM,
}
#: Fields a run may lack (or hold null where ``None`` is listed), and their types.
OPTIONAL_FIELDS: dict[str, tuple[type | None, ...]] = {
    "train_limit": (int, None), "test_limit": (int, None), "batch_size": (int,),
    "correct": (int,), "nonfinite": (int,), "fp32_order": (str,),
}


def _run_label(i: int, run: Any) -> str:
    if not isinstance(run, dict):
        return f"run #{i}"
    ident = " ".join(str(run[k]) for k in ("dataset", "seq") if isinstance(run.get(k), str))
    if "seed" in run:
        seed = run["seed"]
        ident += f" seed {seed if isinstance(seed, int) else repr(seed)}"
    if isinstance(run.get("mode"), str):
        ident += f" {run['mode']}"
    return f"run #{i} ({ident.strip()})" if ident.strip() else f"run #{i}"


def _type_ok(value: Any, types: tuple[type | None, ...]) -> bool:
    if value is None:
        return None in types
    if isinstance(value, bool):
        return False
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return isinstance(value, tuple(t for t in types if t is not None))


def _type_names(types: tuple[type | None, ...]) -> str:
    if float in types:
        return "a finite number"
    names = {int: "an integer", str: "a string", None: "null"}
    return " or ".join(names[t] for t in types)


def check_runs(doc: dict[str, Any], path: Path | str) -> None:
    """Raise :class:`ResultsError` naming ``path`` and the run if a run lacks a field or has a
    wrong type or an impossible value (seed < 0, epochs < 1, n_test < 1, accuracy outside
    0..100); also checks ``unavailable`` is a ``{dataset: message}`` object."""
    for i, run in enumerate(doc["runs"]):
        where = f"{path}: {_run_label(i, run)}"
        if not isinstance(run, dict):
            raise ResultsError(f"{where}: is {type(run).__name__}, not an object")
        for name, types in REQUIRED_FIELDS.items():
            if name not in run:
                raise ResultsError(f"{where}: field {name!r} is missing")
            if not _type_ok(run[name], types):
                raise ResultsError(f"{where}: field {name!r} is {run[name]!r}, expected "
                                   f"{_type_names(types)}")
        for name, opt in OPTIONAL_FIELDS.items():
            if name in run and not _type_ok(run[name], opt):
                raise ResultsError(f"{where}: field {name!r} is {run[name]!r}, expected "
                                   f"{_type_names(opt)}")
        for name, low in (("seed", 0), ("epochs", 1), ("n_test", 1), ("batch_size", 1),
                          ("train_limit", 1), ("test_limit", 1)):
            if isinstance(run.get(name), int) and run[name] < low:
                raise ResultsError(f"{where}: field {name!r} is {run[name]}, must be >= {low}")
        if not 0.0 <= run["accuracy"] <= 100.0:
            raise ResultsError(f"{where}: field 'accuracy' is {run['accuracy']}, outside 0..100")
    unavailable = doc.get("unavailable", {})
    if not isinstance(unavailable, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in unavailable.items()):
        raise ResultsError(f"{path}: 'unavailable' is not an object of dataset: message strings")


def load_results(path: Path) -> dict[str, Any]:
    """Read a results JSON written by :mod:`experiments.accuracy`; check its schema and every
    run (:func:`check_runs`). Never modifies the file.

    Raises:
        ResultsError: missing, unreadable, not a regular file, not JSON, wrong schema, or a
            malformed run; one line naming the file (and the run).
    """
    path = Path(path)
    try:
        # Reading a device or fifo (``/dev/zero``, a pipe nobody writes) would never end.
        if path.exists() and not path.is_file():
            raise ResultsError(f"{path}: not a regular file")
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such results file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ResultsError(f"{path}: not readable JSON ({err})") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA or not isinstance(
            doc.get("runs"), list):
        raise ResultsError(f"{path}: not an accuracy results file (schema {SCHEMA})")
    check_runs(doc, path)
    return doc


def batch_size_of(run: dict[str, Any]) -> int:
    """The inference batch size a run was measured with (:data:`LEGACY_BATCH_SIZE` if absent)."""
    return int(run.get("batch_size", LEGACY_BATCH_SIZE))


#: (dataset, seq, epochs, train_limit, n_test, batch_size): runs that differ only in seed.
Group = tuple[str, str, int, int | None, int, int]


@dataclass(frozen=True)
class Row:
    """One table row: a (configuration, mode) over its seeds."""

    dataset: str
    seq: str
    epochs: int
    train_limit: int | None
    n_test: int
    batch_size: int
    mode: str
    acc: Summary
    seeds: tuple[int, ...]
    diff: Summary | None  # paired difference to fp32 in percentage points; None for fp32/no pair

    @property
    def group(self) -> Group:
        """The configuration this row belongs to (everything but the mode)."""
        return (self.dataset, self.seq, self.epochs, self.train_limit, self.n_test,
                self.batch_size)


def run_group(run: dict[str, Any]) -> Group:
    """The configuration of one run (see :data:`Group`)."""
    return (run["dataset"], run["seq"], int(run["epochs"]), run.get("train_limit"),
            int(run["n_test"]), batch_size_of(run))


def group_label(group: Group) -> str:
    """Short two-line label of a configuration, e.g. ``mnist\nrows 3ep``."""
    dataset, seq, epochs, train_limit, _n_test, batch_size = group
    label = f"{dataset}\n{seq} {epochs}ep"
    if train_limit is not None:
        label += f" train{train_limit}"
    if batch_size != LEGACY_BATCH_SIZE:
        label += f" batch{batch_size}"
    return label


def _ordered(items: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for it in items:
        if it not in seen:
            seen.append(it)
    return seen


def build_rows(doc: dict[str, Any]) -> list[Row]:
    """Aggregate the runs of a results document into table rows (configuration order of first
    appearance; within a configuration fp32 first, then modes in order of first appearance)."""
    runs = doc["runs"]
    by_key: dict[tuple[Group, str], dict[int, float]] = {}
    for r in runs:
        by_key.setdefault((run_group(r), r["mode"]), {})[int(r["seed"])] = float(r["accuracy"])
    groups = _ordered(k[0] for k in by_key)
    rows = []
    for g in groups:
        modes = _ordered(k[1] for k in by_key if k[0] == g)
        modes.sort(key=lambda m: m != BASELINE)
        base = by_key.get((g, BASELINE))
        for mode in modes:
            accs = by_key[(g, mode)]
            diff = None
            if base is not None and mode != BASELINE:
                d = paired_differences(accs, base)
                diff = summarize(d) if d else None
            rows.append(Row(g[0], g[1], g[2], g[3], g[4], g[5], mode,
                            summarize([accs[s] for s in sorted(accs)]), tuple(sorted(accs)), diff))
    return rows


def _num(x: float, fmt: str = ".2f") -> str:
    return "—" if math.isnan(x) else format(x, fmt)


def _ci(s: Summary | None, fmt: str = ".2f") -> str:
    if s is None or math.isnan(s.ci_low):
        return "—"
    return f"[{format(s.ci_low, fmt)}, {format(s.ci_high, fmt)}]"


def markdown_table(doc: dict[str, Any]) -> str:
    """The summary table as GitHub markdown, with a note on datasets that could not run."""
    rows = build_rows(doc)
    lines = [
        "| dataset | seq | epochs | test images | mode | n | accuracy % (mean) | std | 95% CI "
        "| Δ vs fp32 (pp) | 95% CI of Δ |",
        "|---|---|---:|---:|---|---:|---:|---:|---|---:|---|",
    ]
    for r in rows:
        dataset = r.dataset + (f" (train {r.train_limit})" if r.train_limit is not None else "")
        if r.batch_size != LEGACY_BATCH_SIZE:
            dataset += f" (batch {r.batch_size})"
        delta = "—" if r.diff is None else format(r.diff.mean, "+.2f")
        lines.append(
            f"| {dataset} | {r.seq} | {r.epochs} | {r.n_test} | {r.mode} | {r.acc.n} "
            f"| {r.acc.mean:.2f} | {_num(r.acc.std)} | {_ci(r.acc)} | {delta} | {_ci(r.diff)} |"
        )
    notes = ["", "std: sample standard deviation over seeds (ddof=1); CIs from the t distribution "
             "(n-1 degrees of freedom); Δ: per-seed paired difference mode − fp32 on the same "
             "trained weights, in percentage points."]
    for name, msg in sorted((doc.get("unavailable") or {}).items()):
        notes.append(f"Not run: {name}: {msg}")
    return "\n".join(lines + notes) + "\n"


def plot(doc: dict[str, Any], path: Path) -> None:
    """Write the accuracy / paired-difference figure as PNG to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = build_rows(doc)
    if not rows:
        raise ResultsError("no runs to plot")
    groups = _ordered(r.group for r in rows)  # type: ignore[arg-type]
    modes = _ordered(r.mode for r in rows)
    by = {(r.group, r.mode): r for r in rows}
    runs_by: dict[tuple[Group, str], list[float]] = {}
    for run in doc["runs"]:
        runs_by.setdefault((run_group(run), run["mode"]), []).append(float(run["accuracy"]))
    cmap = plt.get_cmap("tab10")
    width = 0.8 / max(1, len(modes))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(max(8.0, 2.2 * len(groups) + 5), 4.6),
                                   gridspec_kw={"width_ratios": [3, 2]})
    lows: list[float] = []
    highs: list[float] = []
    labels: list[tuple[float, float]] = []
    for j, mode in enumerate(modes):
        xs, ys, errs = [], [], []
        for gi, g in enumerate(groups):
            r = by.get((g, mode))
            if r is None:
                continue
            x = gi + (j - (len(modes) - 1) / 2) * width
            xs.append(x)
            ys.append(r.acc.mean)
            errs.append(0.0 if math.isnan(r.acc.half_width) else r.acc.half_width)
            pts = runs_by[(g, mode)]
            ax1.scatter([x] * len(pts), pts, s=9, color="black", zorder=3, linewidths=0)
            lows.append(min(pts))
            highs.append(max(max(pts), r.acc.mean + errs[-1]))
        ax1.bar(xs, ys, width * 0.95, yerr=errs, capsize=3, color=cmap(j % 10), label=mode)
        labels.extend(zip(xs, ys, strict=True))
    lo = max(0, math.floor(min(lows) - 1.0)) if lows else 0
    hi = min(100.0, math.ceil(max(highs) + 0.5)) if highs else 100.0
    ax1.set_ylim(lo, hi)
    for x, y in labels:  # mean written at the foot of its bar, clear of the whiskers
        ax1.annotate(f"{y:.2f}", (x, lo), xytext=(0, 3), textcoords="offset points",
                     ha="center", va="bottom", rotation=90, fontsize=7, color="white")
    ax1.set_xticks(range(len(groups)), [group_label(g) for g in groups], fontsize=8)
    ax1.set_ylabel("test accuracy (%)")
    ax1.set_title("Accuracy (bars: mean, whiskers: 95% CI, dots: seeds)", fontsize=9)
    handles, names = ax1.get_legend_handles_labels()
    fig.legend(handles, names, loc="upper center", ncols=len(modes), frameon=False, fontsize=8)
    ax1.grid(axis="y", alpha=0.3)

    others = [m for m in modes if m != BASELINE]
    w2 = 0.8 / max(1, len(others))
    for j, mode in enumerate(others):
        xs, ys, errs = [], [], []
        for gi, g in enumerate(groups):
            r = by.get((g, mode))
            if r is None or r.diff is None:
                continue
            xs.append(gi + (j - (len(others) - 1) / 2) * w2)
            ys.append(r.diff.mean)
            errs.append(0.0 if math.isnan(r.diff.half_width) else r.diff.half_width)
        ax2.errorbar(xs, ys, yerr=errs, fmt="o", capsize=3, color=cmap(modes.index(mode) % 10),
                     label=mode)
    ax2.axhline(0.0, color="black", linewidth=0.8)
    ax2.set_xticks(range(len(groups)), [group_label(g) for g in groups], fontsize=8)
    ax2.set_xlim(-0.6, len(groups) - 0.4)
    ax2.set_ylabel("accuracy − fp32 (percentage points)")
    ax2.set_title("Paired difference to fp32 (95% CI)", fontsize=9)
    ax2.grid(axis="y", alpha=0.3)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    atomic_write(Path(path), lambda f: fig.savefig(f, format="png", dpi=120))
    plt.close(fig)


def derived_path(json_path: Path, suffix: str) -> Path:
    """The table/plot/CSV file beside a results file: ``r.json`` -> ``r.md``; a results file
    not named ``*.json`` keeps its name and gets ``suffix`` appended, so the two never collide."""
    json_path = Path(json_path)
    if json_path.suffix == ".json":
        return json_path.with_suffix(suffix)
    return json_path.with_name(json_path.name + suffix)


def _same_file(a: Path, b: Path) -> bool:
    return Path(a).resolve() == Path(b).resolve()


def write_report(json_path: Path, md_path: Path | None = None, png_path: Path | None = None,
                 make_plot: bool = True) -> str:
    """Regenerate table (and plot) from ``json_path``; return the markdown table.

    Raises:
        ResultsError: unreadable results, or a table/plot path that is the results file or
            each other (writing it would destroy the results).
    """
    json_path = Path(json_path)
    md_path = Path(md_path) if md_path is not None else derived_path(json_path, ".md")
    png_path = Path(png_path) if png_path is not None else derived_path(json_path, ".png")
    for what, p in (("table", md_path), ("plot", png_path)):
        if _same_file(p, json_path):
            raise ResultsError(f"{p}: the {what} would overwrite the results file")
    if make_plot and _same_file(md_path, png_path):
        raise ResultsError(f"{md_path}: table and plot would be the same file")
    doc = load_results(json_path)
    table = markdown_table(doc)
    atomic_write_text(md_path, table)
    if make_plot and doc["runs"]:
        plot(doc, png_path)
    return table


def main(argv: list[str] | None = None) -> int:
    """``python -m experiments.report RESULTS.json``: print the table, write .md and .png."""
    parser = argparse.ArgumentParser(description="Summary table and plot from accuracy results.")
    parser.add_argument("results", type=Path, help="results JSON (from experiments.accuracy)")
    parser.add_argument("--md", type=Path, default=None, help="default: RESULTS.md")
    parser.add_argument("--png", type=Path, default=None, help="default: RESULTS.png")
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args(argv)
    try:
        table = write_report(args.results, args.md, args.png, not args.no_plot)
    except ResultsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(table, end="")
    if not args.no_plot:
        print(f"plot: {args.png or derived_path(args.results, '.png')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
