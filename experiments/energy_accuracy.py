"""Energy against accuracy: the design space of L-Mul MACs (sequential and fused accumulation).

    make energy-accuracy                                   # cost sweep, then this (EA=quick|full)
    python -m experiments.energy_accuracy --preset quick   # accuracy grid + join + report
    python -m experiments.energy_accuracy --report-only    # join and report what is there
    python -m experiments.energy_accuracy --executor ray   # every evaluation a Ray task

Designs: the multiplier (``exact`` BF16, L-Mul at the paper offset ``lmul``, L-Mul at make tune's
best offset ``lmul_o6``) x the accumulation (the sequential binary32 PE ``mac_pe``, variant
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

The join (:func:`join`) derives each design's mode from the parameters yosys elaborated for its
netlist (not from its name) and refuses a row whose name, reported parameters and built
parameters disagree. The grid's rows go to ``results/energy_accuracy_runs.json``; outputs
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
from collections.abc import Sequence
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
PAPER_OFFSET_BF16 = 8
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
                           (4, 32), (4, 276))),
    "full": Preset("full", ("mnist", "fashion"), (0, 1, 2, 3, 4), 1, None, (4, 8, 16),
                   (8, 16, 32, 276), RESULTS_DIR / "energy_accuracy_full_runs.json"),
}


def fused_mode(base: str, k: int, align_bits: int) -> str:
    """The mode string of multiplier mode ``base`` with fused accumulation (K, ALIGN_BITS)."""
    return f"{base}{',' if ':' in base else ':'}acc=fused,k={k},align={align_bits}"


def preset_modes(p: Preset) -> list[str]:
    """``fp32``, the sequential modes, then the fused ones (K, ALIGN_BITS, multiplier)."""
    out = ["fp32", *UNIT_MODES.values()]
    pairs = p.pairs if p.pairs is not None else [(k, a) for k in p.ks for a in p.align_bits]
    out += [fused_mode(m, k, a) for k, a in pairs for m in UNIT_MODES.values()]
    return out


def mode_of(params: dict[str, int], top: str) -> str:
    """The canonical LSTM mode that computes what a design with these Verilog parameters
    computes. JoinError for a design outside the sweep (not BF16, unknown top or offset)."""
    from .modes import parse_mode

    if (params.get("EXP_BITS"), params.get("MAN_BITS")) != (8, 7):
        raise JoinError(f"{top} with EXP_BITS={params.get('EXP_BITS')}, "
                        f"MAN_BITS={params.get('MAN_BITS')}: only BF16 designs are joined")
    if params.get("MULTIPLIER") == 1:
        base = "bf16"
    elif params.get("MULTIPLIER") == 0:
        off = params.get("OFFSET", PAPER_OFFSET_BF16)
        base = "lmul" if off == PAPER_OFFSET_BF16 else f"lmul:offset={off}"
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


_NAME_RE = re.compile(r"dot-(\w+?)-(exact|lmul|lmul_o\d+)-(seq|k(\d+)-a(\d+)(-p[123]|-array)?)")


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
    unit, variant = m.group(2), m.group(3)
    array = m.group(6) == "-array"
    if (variant == "seq") != (r["top"] == "mac_pe") or array != (r["top"] == "mac_array"):
        raise JoinError(f"{name}: variant {variant} but top {r['top']}")
    k_key = "DOT_K" if array else "K"
    if variant != "seq" and (int(m.group(4)), int(m.group(5))) != (built.get(k_key),
                                                                      built.get("ALIGN_BITS")):
        raise JoinError(f"{name}: netlist has {k_key}={built.get(k_key)}, "
                        f"ALIGN_BITS={built.get('ALIGN_BITS')}")
    want_pipeline = int(m.group(6)[2:]) if (m.group(6) or "").startswith("-p") else 0
    if r["top"] == "dot_pe" and built.get("PIPELINE", 0) != want_pipeline:
        raise JoinError(f"{name}: netlist has PIPELINE={built.get('PIPELINE', 0)}")
    want_mult = 1 if unit == "exact" else 0
    if built.get("MULTIPLIER") != want_mult:
        raise JoinError(f"{name}: netlist has MULTIPLIER={built.get('MULTIPLIER')}")
    if unit.startswith("lmul_o") and built.get("OFFSET") != int(unit[6:]):
        raise JoinError(f"{name}: netlist has OFFSET={built.get('OFFSET')}")
    if unit == "lmul" and built.get("OFFSET", PAPER_OFFSET_BF16) != PAPER_OFFSET_BF16:
        raise JoinError(f"{name}: netlist has OFFSET={built.get('OFFSET')}, not the paper's")


def _per_op(r: dict[str, Any], key: str, part: str | None = None) -> float:
    run = r["runs"].get(key)
    if run is None:
        return math.nan
    if part is None:
        return float(run["energy_per_op_pj"])
    return float(run["energy"][part]) / run["ops"] * 1e12


def accuracies(doc: dict[str, Any], test_limit: int | None, epochs: int,
               train_limit: int | None = None) -> dict[tuple[str, str], dict[int, float]]:
    """{(dataset, mode): {seed: accuracy %}} of the grid's rows (fp32-trained, rows) with
    these test / training limits and epochs."""
    out: dict[tuple[str, str], dict[int, float]] = {}
    for run in doc.get("runs", []):
        if run.get("recipe") or run.get("seq") != "rows" or run.get("epochs") != epochs \
                or run.get("test_limit") != test_limit \
                or run.get("train_limit") != train_limit:
            continue
        out.setdefault((run["dataset"], run["mode"]), {})[int(run["seed"])] = \
            float(run["accuracy"])
    return out


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
         carried: dict[str, dict[str, Summary | None]] | None = None) -> list[dict[str, Any]]:
    """One row per cost design: its mode, hardware figures (pJ per MAC), and per dataset the
    paired difference to ``fp32`` (percentage points). Raises JoinError (see
    :func:`check_design`); a design whose mode has no accuracy rows takes them from
    ``carried`` (:func:`carried_accuracy`, ``accuracy_from`` set), else gets None deltas."""
    rows = []
    seen: dict[str, str] = {}
    for r in cost_doc["designs"]:
        if r.get("level") != "dot":
            continue
        check_design(r)
        mode = mode_of(r["synth"]["params"], r["top"])
        # PIPELINE moves a register, not a bit: a pipelined PE shares its twin's mode
        pipeline = int(r["synth"]["params"].get("PIPELINE", 0)) if r["top"] == "dot_pe" else 0
        key = (mode, pipeline, r["top"] == "mac_array")
        if key in seen:
            raise JoinError(f"{r['name']} and {seen[key]} are the same design ({mode})")
        seen[key] = r["name"]
        row: dict[str, Any] = {
            "design": r["name"], "mode": mode, "unit": r["unit"], "top": r["top"],
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


def _worst_delta(row: dict[str, Any], datasets: Sequence[str]) -> float:
    """The design's accuracy cost: the lower of its mean deltas over the datasets."""
    return min(_mean(row[f"{ds}_delta"]) for ds in datasets)


def _includes_zero(s: Summary | None) -> bool:
    return s is not None and not math.isnan(s.ci_low) and s.ci_low <= 0.0 <= s.ci_high


def _fmt_delta(s: Summary | None) -> str:
    if s is None:
        return "—"
    if s.n < 2:
        return f"{s.mean:+.2f} (n={s.n})"
    return f"{s.mean:+.2f} [{s.ci_low:+.2f}, {s.ci_high:+.2f}]"


def _find(rows: Sequence[dict[str, Any]], unit: str, top: str, k: int = 1,
          align: int | None = None, pipeline: int = 0) -> dict[str, Any] | None:
    for r in rows:
        if (r["unit"], r["top"], r["k"], r["align_bits"], r.get("pipeline", 0)) == (
                unit, top, k, align, pipeline):
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
        twin = _find(rows, r["unit"], "dot_pe", r["k"], r["align_bits"], 0)
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
             seq_arrays: dict[str, float] | None = None) -> dict[str, Any]:
    """The three verdicts of the study (see the module docstring), as numbers; ``cell``
    (``exact`` / ``lmul`` -> :func:`cell_rest`) adds the whole cell's energy per image. Per
    image on the 4x4 array: the chosen design's ``mac_array`` row (``-array``: fused PEs,
    single-stage) against ``seq_arrays['exact']`` (:func:`seq_array_pj`), where both exist.
    ``mac_array`` rows are never the chosen design (they are 16 PEs, not one)."""
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
    chosen = best or cheapest
    if chosen is None:
        return out
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
    arr = (_find(rows, chosen["unit"], "mac_array", chosen["k"], chosen["align_bits"])
           if chosen["top"] == "dot_pe" else None)
    arr_e0 = (seq_arrays or {}).get("exact")
    if arr is not None and arr_e0 is not None:
        pe = _find(rows, chosen["unit"], "dot_pe", chosen["k"], chosen["align_bits"]) or chosen
        out.update(array=arr["design"], array_pj=arr["e_mnist_pj"],
                   array_over_pe=arr["e_mnist_pj"] / pe["e_mnist_pj"], array_pe=pe["design"],
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


# ------------------------------------------------------------------------------------ outputs
CSV_FIELDS = ("design", "mode", "unit", "top", "k", "align_bits", "pipeline", "area_um2",
              "fmax_mhz",
              "e_mnist_pj", "e_uniform_pj", "e_mnist_zero_pj", "e_uniform_zero_pj",
              "clkreg_mnist_pj", "datapath_mnist_pj", "leak_mnist_pj", "clkreg_uniform_pj",
              "datapath_uniform_pj", "ratio_to_seq_exact")


def _csv(rows: Sequence[dict[str, Any]], datasets: Sequence[str]) -> str:
    fields = [*CSV_FIELDS]
    for ds in datasets:
        fields += [f"{ds}_delta_mean", f"{ds}_delta_ci_low", f"{ds}_delta_ci_high", f"{ds}_n"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for r in rows:
        out = {k: r.get(k) for k in CSV_FIELDS}
        for ds in datasets:
            s = r[f"{ds}_delta"]
            out.update({f"{ds}_delta_mean": s and s.mean, f"{ds}_delta_ci_low": s and s.ci_low,
                        f"{ds}_delta_ci_high": s and s.ci_high, f"{ds}_n": s and s.n})
        w.writerow(out)
    return buf.getvalue()


def _jsonable(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: (v.__dict__ if isinstance(v, Summary) else v) for k, v in r.items()}
            for r in rows]


def markdown(rows: Sequence[dict[str, Any]], v: dict[str, Any], meta: dict[str, Any],
             datasets: Sequence[str]) -> str:
    """The report: table, Pareto front and the three verdicts."""
    lines = ["<!-- generated by python -m experiments.energy_accuracy; do not edit by hand -->",
             "", "# Energy against accuracy: L-Mul MACs, sequential and fused (BF16)", "",
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
            f"{r['e_mnist_pj']:.1f} | {r['e_uniform_pj']:.1f} | {r['clkreg_mnist_pj']:.1f} | "
            f"{r['datapath_mnist_pj']:.1f} | {r['e_mnist_pj'] / e0:.3f} | "
            + " | ".join(_fmt_delta(r[f"{ds}_delta"]) for ds in datasets)
            + f" | {'yes' if r['design'] in front else ''} |")
    lines += ["", "Pareto front (pJ per MAC with MNIST operands against the lower of the "
              "datasets' mean Δ): " + ", ".join(f"`{d}`" for d in meta["pareto"])]
    if any(r["top"] == "mac_array" for r in rows):
        lines += ["", "Rows ending `-array` are the 4x4 `mac_array` of 16 such PEs (DOT_K = K, "
                  "single-stage PEs) on the `array` level's MNIST tiles, energy per MAC of the "
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
    lines += ["", "## Verdicts", ""]
    if v.get("best") is None:
        lines.append("No L-Mul design has CIs that include 0 on every dataset; the cheapest "
                     f"L-Mul design is {v.get('cheapest')}.")
    b = v.get("chosen")
    if b:
        ratio = v["best_ratio"] if v.get("best") else v["cheapest_ratio"]
        lines += [
            f"1. **Best L-Mul design vs the sequential exact PE.** `{b}`: "
            f"{v['chosen_pj']:.1f} pJ per MAC vs {e0:.1f} pJ for `{v['baseline']}`: "
            f"**{ratio:.3f}x** (target <= {TARGET_RATIO}x: "
            f"{'reached' if v.get('reaches_target') else 'not reached'}; "
            + ("its Δ CIs include 0 on " + " and ".join(datasets) if v.get("best") else
               "no L-Mul design has Δ CIs that include 0 on every dataset; this is the "
               "cheapest")
            + ("; its accuracy is its single-stage twin's, the same bits"
               if v.get("chosen_pipeline") else "") + ")."
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
            + (f"; the sequential 4x4 `mac_array` of the same cost run spends "
               f"{v['array_vs_pe']['lmul']:.2f}x (L-Mul) and {v['array_vs_pe']['exact']:.2f}x "
               "(exact) its PE's energy per MAC, so an array of this PE would differ by as "
               "much" if v.get("array_vs_pe") else "")
            + ")"
            + (f"; **the whole cell** (array + element-wise products, the binary32 adder, the "
               f"activation unit and the conversions of `syn.cost --levels cell`): "
               f"{v['cell_per_image_uj']:.0f} uJ vs {v['baseline_cell_per_image_uj']:.0f} uJ, "
               f"**{v['cell_per_image_ratio']:.3f}x** (the rest of the cell "
               f"{v['cell_rest_uj']:.0f} vs {v['baseline_cell_rest_uj']:.0f} uJ)."
               if "cell_per_image_uj" in v else "; element-wise products not included.")
            + (f" **On the 4x4 array** (`{v['array']}`: 16 of its PEs, single-stage, in "
               f"`mac_array` with DOT_K={v.get('array_k')}, the array level's MNIST tiles): "
               f"{v['array_pj']:.1f} pJ/MAC ({v['array_over_pe']:.2f}x `{v['array_pe']}`'s), "
               f"{v['array_per_image_uj']:.0f} uJ per image vs "
               f"{v['baseline_array_per_image_uj']:.0f} uJ on the sequential exact 4x4 array "
               f"({v['baseline_array_pj']:.1f} pJ/MAC, `make cost`): "
               f"**{v['array_per_image_ratio']:.3f}x**"
               + (f"; with the rest of the cell {v['array_cell_per_image_uj']:.0f} vs "
                  f"{v['baseline_array_cell_per_image_uj']:.0f} uJ, "
                  f"**{v['array_cell_per_image_ratio']:.3f}x**"
                  if "array_cell_per_image_uj" in v else "") + "."
               if "array_per_image_uj" in v else ""),
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
             datasets: Sequence[str]) -> bytes:
    """Energy per MAC (MNIST operands) against the lower mean Δ of the datasets; one point
    per design (marker per multiplier), the Pareto front as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    marks = {"exact": "s", "lmul": "o", "lmul_o6": "^"}
    for (unit, mk), color in zip(marks.items(), ("C0", "C1", "C2"), strict=True):
        for pipe in (0, 1, 2, 3):
            # only what has points gets a legend entry; pipelined designs hollow (thicker
            # edges for PIPELINE=2 and 3)
            sel = [r for r in rows if r["unit"] == unit and r.get("pipeline", 0) == pipe
                   and r["top"] != "mac_array" and not math.isnan(_worst_delta(r, datasets))]
            if not sel:
                continue
            ax.scatter([r["e_mnist_pj"] for r in sel],
                       [_worst_delta(r, datasets) for r in sel], marker=mk, alpha=0.8,
                       label=unit + (f" PIPELINE={pipe}" if pipe else ""),
                       facecolors="none" if pipe else color, edgecolors=color,
                       linewidths=1.0 + 0.7 * (pipe - 1) if pipe else 1.0)
        for r in [r for r in rows if r["unit"] == unit and r["top"] != "mac_array"]:
            ax.annotate(r["design"].split("-", 3)[-1], (r["e_mnist_pj"],
                                                        _worst_delta(r, datasets)),
                        fontsize=6, xytext=(3, 2), textcoords="offset points")
    by = {r["design"]: r for r in rows}
    fx = [by[d]["e_mnist_pj"] for d in front]
    fy = [_worst_delta(by[d], datasets) for d in front]
    ax.step(fx, fy, where="post", color="k", lw=1, label="Pareto front")
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xscale("log")  # the exact windows reach 20x the cheapest design
    ax.set_xlabel("energy per MAC, MNIST operands (pJ, OSU 0.18 um, log scale)")
    ax.set_ylabel(f"accuracy Δ vs float32, min over {', '.join(datasets)} (pp)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    return buf.getvalue()


def read_cost(paths: Sequence[Path]) -> dict[str, Any]:
    """The designs of one or more ``cost.json`` files of ``syn.cost --levels dot`` (runs of
    parts of the sweep) as one document. A design in several files is taken from the last
    one (a re-measurement supersedes; ``meta.superseded`` names it). ``meta.command`` lists
    the files' commands. JoinError if a file is missing or the cost flows' settings (tools,
    sizes, seed, constraints) differ."""
    by_name: dict[str, dict[str, Any]] = {}
    superseded: list[str] = []
    commands, settings = [], None
    cell_ops: dict[str, int] | None = None
    for path in paths:
        if not path.is_file():
            raise JoinError(f"{path} not found; run `python -m syn.cost --levels dot --formats "
                            "bf16 --out results/energy_cost` first")
        doc = json.loads(path.read_text(encoding="utf-8"))
        these = {k: doc["meta"].get(k) for k in ("versions", "sizes", "seed", "constraints")}
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
            by_name[r.get("name")] = r
        cell_ops = doc["meta"].get("cell_ops_per_image") or cell_ops
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
    rows = join(cost_doc, acc, p.datasets, carried)
    if not rows:
        raise JoinError(f"{', '.join(map(str, cost_paths))}: no dot-level designs")
    # the table in design order (the cost files come in the order their runs were made)
    tops, units = ("mac_pe", "dot_pe", "mac_array"), ("exact", "lmul", "lmul_o6")
    rows.sort(key=lambda r: (tops.index(r["top"]) if r["top"] in tops else len(tops), r["k"],
                             r["align_bits"] or 0, r["pipeline"],
                             units.index(r["unit"]) if r["unit"] in units else len(units),
                             r["design"]))
    e0 = next((r["e_mnist_pj"] for r in rows if r["design"].endswith("-exact-seq")), math.nan)
    for r in rows:
        r["ratio_to_seq_exact"] = r["e_mnist_pj"] / e0
    # the array rows are 16 PEs: in the table, not on the front (or the plot)
    pts = [(math.nan, math.nan) if r["top"] == "mac_array" else
           (r["e_mnist_pj"], _worst_delta(r, p.datasets)) for r in rows]
    front = [rows[i]["design"] for i in pareto(pts)]
    v = verdicts(rows, p.datasets, {u: cell_rest(cost_doc, u) for u in ("exact", "lmul")},
                 seq_array_pj(cost_doc))
    avp = array_vs_pe(cost_doc)
    if avp:
        v["array_vs_pe"] = avp
    meta = {"command": command, "cost_command": cost_doc["meta"]["command"],
            "cost_superseded": cost_doc["meta"]["superseded"],
            "preset": p.name, "seeds": list(p.seeds), "epochs": p.epochs,
            "test_limit": p.test_limit, "train_limit": p.train_limit,
            "datasets": list(p.datasets), "pareto": front, "notes": list(notes),
            "fp32_accuracy": {ds: summarize([v for _, v in sorted(acc[(ds, "fp32")].items())])
                              .__dict__ for ds in p.datasets if acc.get((ds, "fp32"))},
            "macs_per_image": MACS_PER_IMAGE}
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
        atomic_write_bytes(paths[3], plot_png(rows, front, p.datasets))
    return paths


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
    executor_mod.add_arguments(ap)
    args = ap.parse_args(argv)
    executor_mod.check_arguments(ap, args)
    p = PRESETS[args.preset]
    words = list(argv if argv is not None else sys.argv[1:])
    shown = [w for i, w in enumerate(words)  # the notes are printed under their own heading
             if w != "--note" and not (i and words[i - 1] == "--note")
             and not w.startswith("--note=")]
    cmd = "python -m experiments.energy_accuracy " + " ".join(shown)

    def body() -> int:
        if not args.report_only:
            from . import grid

            with executor_mod.from_arguments(args) as ex:
                grid.run([grid.Job(list(p.datasets), list(p.seeds), p.epochs)],
                         preset_modes(p), p.out, test_limit=p.test_limit,
                         train_limit=p.train_limit, executor=ex,
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
