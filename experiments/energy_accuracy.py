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
import json
import math
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sim.lib.cli import run_main
from sim.lib.fileio import SNAPSHOT_DIR, atomic_write_bytes, atomic_write_text

from . import executor as executor_mod
from ._ea_core import (
    BASE_FORMAT,
    DEFAULT_COST,
    ENERGY_KEY,
    FORMATS,
    MACS_PER_IMAGE,
    PRESETS,
    TARGET_RATIO,
    UNIT_MODES,
    FineTuned,
    JoinError,
    Preset,
    _find,
    _worst_delta,
    accuracies,
    array_vs_pe,
    carried_accuracy,
    cell_rest,
    check_design,
    format_label,
    format_of_params,
    format_paper_offset,
    format_unit_modes,
    format_verdict,
    ft_accuracies,
    ft_groups,
    ft_label,
    ft_not_trained,
    ft_recipe,
    ft_runs,
    ft_weights_present,
    fused_mode,
    join,
    mode_format,
    mode_of,
    multiplier_mode,
    pareto,
    pipeline_pairs,
    preset_modes,
    run_finetuned,
    seq_array_pj,
    verdicts,
)
from ._ea_report import (
    CSV_FIELDS,
    _csv,
    _jsonable,
    format_section,
    ft_missing,
    ft_section,
    markdown,
    plot_png,
)
from .stats import summarize

#: The study's public names, wherever they are implemented.
__all__ = [
    "BASE_FORMAT", "CSV_FIELDS", "DEFAULT_COST", "ENERGY_KEY", "FORMATS", "MACS_PER_IMAGE",
    "PRESETS", "TARGET_RATIO", "UNIT_MODES", "FineTuned", "JoinError", "Preset", "accuracies",
    "array_vs_pe", "carried_accuracy", "cell_rest", "check_design", "format_label",
    "format_of_params", "format_paper_offset", "format_section", "format_unit_modes",
    "format_verdict", "ft_accuracies", "ft_groups", "ft_label", "ft_missing", "ft_not_trained",
    "ft_recipe", "ft_runs", "ft_section", "ft_weights_present", "fused_mode", "join", "main",
    "markdown", "mode_format", "mode_of", "multiplier_mode", "pareto", "pipeline_pairs",
    "plot_png", "preset_modes", "read_cost", "report", "run_finetuned", "seq_array_pj",
    "verdicts",
]

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
