"""The outputs of :mod:`experiments.energy_accuracy`: CSV, JSON rows, the Markdown report and
the plot (private; that module documents them)."""


from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from typing import Any

from ._ea_core import (
    BASE_FORMAT,
    FORMATS,
    MACS_PER_IMAGE,
    TARGET_RATIO,
    FineTuned,
    _find,
    _fmt_delta,
    _includes_zero,
    _mean,
    _worst_delta,
    format_label,
    format_paper_offset,
    ft_label,
    pipeline_pairs,
)
from .stats import Summary

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
