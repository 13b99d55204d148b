"""Reports of the cost flows: ``cost.json`` / ``.csv`` / ``.md`` / ``.png`` of :mod:`syn.cost`,
and the CSV and PNG writers :mod:`syn.synth` shares.

Every figure comes from the per-design results :func:`syn.cost.run` returns (JSON-ready dicts:
``level``, ``format``, ``unit``, ``top``, ``params``, ``synth`` (area um^2, cells), ``timing``
(``min_period_ns``), ``period_ns``, ``check`` and ``runs`` keyed ``workload/timing``, each with
``ops``, ``cycles``, ``energy`` (joules, see :class:`syn.energy.Energy`) and
``energy_per_op_pj``); nothing here measures.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sim.lib.fileio import atomic_write_bytes, atomic_write_text

from .designs import UNIT_LABELS
from .stimuli import CELL_OPS_PER_IMAGE, DOT_K, ELEMENTWISE_PER_IMAGE, MACS_PER_IMAGE, WORKLOADS


# --------------------------------------------------------------------------- shared writers
def ratio(num: float, den: float) -> float:
    """``num / den``, NaN for a zero denominator."""
    return num / den if den else float("nan")


def csv_text(rows: Sequence[dict[str, Any]], fields: Sequence[str]) -> str:
    """CSV text of ``rows`` with the columns ``fields`` (header first, ``\\n`` line ends)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(fields), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def png_bytes(fig: Any) -> bytes:
    """A matplotlib figure as PNG bytes (110 dpi); closes the figure."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


# ------------------------------------------------------------------------------ cost report
#: Published figures compared in the report (units as published).
ANCHORS = [
    {"source": "Luo & Sun (paper), Horowitz ISSCC 2014 table", "node": "45 nm, 0.9 V",
     "method": "per-operation energy table, no circuit",
     "claim": "L-Mul ~ integer add: 95 % less energy per element-wise multiply, 80 % less per "
              "dot product (fp16 mult 1.1 pJ, fp32 mult 3.7 pJ, fp32 add 0.9 pJ, int32 add "
              "0.1 pJ)"},
    {"source": "FreePDK45 PyRTL/OpenROAD university project (2025)", "node": "45 nm",
     "method": "combinational, activity not stated, units 'likely' um^2 / mW / ns",
     "claim": "BF16 area 255.6 vs 1067.7 (0.239), power 0.253 vs 7.46 mW (0.034), delay 0.48 "
              "vs 1.94 ns (0.247); fp8 area 112.8 vs 347.4 (0.325)"},
    {"source": "seed repository, yosys + OpenSTA", "node": "Nangate45",
     "method": "synthesis area only",
     "claim": "BF16 L-Mul vs BF16 multiplier: -66.8 % area (0.332), -63 % cells (0.37)"},
]


CSV_FIELDS = ("name", "level", "format", "unit", "top", "parameters", "area_um2", "cells",
              "min_period_ns", "period_ns", "workload", "timing", "ops", "cycles",
              "energy_per_op_pj", "power_mw", "dynamic_pj", "logic_internal_pj",
              "logic_switching_pj", "input_nets_pj", "clock_pj", "leakage_pj",
              "registers_pj", "clock_and_registers_pj", "datapath_pj",
              "check_vectors", "check_bits")


def design_name(r: dict[str, Any]) -> str:
    """The design's label (``name`` of a result; results written before it existed:
    level-format-unit)."""
    return r.get("name") or f"{r['level']}-{r['format']}-{r['unit']}"


def csv_rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per design x workload x timing."""
    rows = []
    for r in results:
        base = {"name": design_name(r), "level": r["level"], "format": r["format"],
                "unit": r["unit"], "top": r["top"],
                "parameters": " ".join(f"{k}={v}" for k, v in r["params"].items()),
                "area_um2": r["synth"]["area"], "cells": r["synth"]["cells"],
                "min_period_ns": r["timing"]["min_period_ns"], "period_ns": r["period_ns"],
                "check_vectors": r["check"]["vectors"], "check_bits": r["check"]["bits_compared"]}
        for key, run in sorted(r["runs"].items()):
            wl, tm = key.split("/")
            e = run["energy"]
            per = 1e12 / run["ops"]
            rows.append({**base, "workload": wl, "timing": tm, "ops": run["ops"],
                         "cycles": run["cycles"],
                         "energy_per_op_pj": round(run["energy_per_op_pj"], 4),
                         "power_mw": round(run["power_w"] * 1e3, 4),
                         "dynamic_pj": round(e["dynamic"] * per, 4),
                         "logic_internal_pj": round(e["logic_internal"] * per, 4),
                         "logic_switching_pj": round(e["logic_switching"] * per, 4),
                         "input_nets_pj": round(e["input_nets"] * per, 4),
                         "clock_pj": round(e["clock"] * per, 4),
                         "leakage_pj": round(e["leakage"] * per, 6),
                         "registers_pj": round(e.get("registers", math.nan) * per, 4),
                         "clock_and_registers_pj": round(e.get("clock_and_registers", math.nan)
                                                         * per, 4),
                         "datapath_pj": round(e.get("datapath", math.nan) * per, 4)})
    return rows


def _get(results: list[dict[str, Any]], level: str, fmt: str, unit: str) -> dict[str, Any] | None:
    for r in results:
        if (r["level"], r["format"], r["unit"]) == (level, fmt, unit):
            return r
    return None


def _epo(r: dict[str, Any] | None, key: str) -> float:
    if r is None or key not in r["runs"]:
        return float("nan")
    return float(r["runs"][key]["energy_per_op_pj"])


def ratios(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """L-Mul / exact ratios per level, format and baseline: area, cells, delay, energy (not
    for the ``dot`` sweep, whose designs the energy-accuracy study pairs itself)."""
    out = []
    for r in results:
        if r["unit"] == "lmul" or r["level"] in ("dot", "cell"):
            continue
        lm = _get(results, r["level"], r["format"], "lmul")
        if lm is None:
            continue
        row = {"level": r["level"], "format": r["format"], "baseline": r["unit"],
               "area": lm["synth"]["area"] / r["synth"]["area"],
               "cells": lm["synth"]["cells"] / r["synth"]["cells"],
               "delay": lm["timing"]["min_period_ns"] / r["timing"]["min_period_ns"]}
        for key in r["runs"]:
            row[f"energy {key}"] = _epo(lm, key) / _epo(r, key)
        out.append(row)
    return out


def per_image(results: list[dict[str, Any]], timing: str = "specify") -> dict[str, Any] | None:
    """Energy per classified MNIST image on the L-Mul vs the exact BF16 array: MACs x array
    energy per MAC + element-wise products x multiplier energy per multiply (mnist workload);
    with the ``cell`` level measured, the whole cell instead: the array's MACs + every cell
    unit's operations per image (:data:`syn.stimuli.CELL_OPS_PER_IMAGE`) x its energy per
    operation (the element-wise multiplier of the same unit, the common units for both)."""
    key = f"mnist/{timing}"
    out: dict[str, Any] = {"macs": MACS_PER_IMAGE, "elementwise": ELEMENTWISE_PER_IMAGE,
                           "timing": timing}
    for unit in ("lmul", "exact"):
        arr = _get(results, "array", "bf16", unit)
        mul = _get(results, "mul", "bf16", unit)
        if arr is None or mul is None or key not in arr["runs"] or key not in mul["runs"]:
            return None
        e_mac, e_mul = _epo(arr, key), _epo(mul, key)
        out[unit] = {"mac_pj": e_mac, "mul_pj": e_mul,
                     "image_uj": (MACS_PER_IMAGE * e_mac + ELEMENTWISE_PER_IMAGE * e_mul) * 1e-6}
        cell = cell_energies(results, "bf16", unit, key)
        if cell is not None:
            cell_uj = sum(CELL_OPS_PER_IMAGE[v] * e for v, e in cell.items()) * 1e-6
            out[unit].update({"cell_pj": cell, "array_uj": MACS_PER_IMAGE * e_mac * 1e-6,
                              "cell_uj": cell_uj,
                              "image_uj": MACS_PER_IMAGE * e_mac * 1e-6 + cell_uj})
            out["cell_ops"] = dict(CELL_OPS_PER_IMAGE)
    out["ratio"] = out["lmul"]["image_uj"] / out["exact"]["image_uj"]
    return out


def cell_energies(results: list[dict[str, Any]], fmt: str, unit: str,
                  key: str) -> dict[str, float] | None:
    """pJ per operation of each ``cell``-level unit a ``unit`` (``lmul`` / ``exact``) cell
    uses (variant -> pJ: its own element-wise multiplier, the ``common`` units), or None if one
    of them has no ``key`` run."""
    out = {}
    for variant in CELL_OPS_PER_IMAGE:
        want = unit if variant == "ewmul" else "common"
        hit = [r for r in results if (r["level"], r["format"], r["unit"], r.get("variant")) ==
               ("cell", fmt, want, variant)]
        if not hit or key not in hit[0]["runs"]:
            return None
        out[variant] = _epo(hit[0], key)
    return out


def multiplier_share(results: list[dict[str, Any]], fmt: str, unit: str,
                     key: str) -> float:
    """Energy of the multiplier alone on the same workload / energy of the PE per MAC: the
    multiplier's share of the PE (approximate: the multiplier is measured as its own netlist,
    with its output load in place of the widening logic)."""
    return _epo(_get(results, "mul", fmt, unit), key) / _epo(_get(results, "pe", fmt, unit), key)


def _f(x: float, nd: int = 3) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"


def markdown(meta: dict[str, Any], results: list[dict[str, Any]]) -> str:
    """The ``cost.md`` report."""
    v = meta["versions"]
    c = meta["constraints"]
    lines = [
        "<!-- generated by `make cost` (python -m syn.cost); do not edit by hand -->",
        "",
        f"Command: `{meta['command']}`. Tools: {v['yosys']}"
        + (f" (`{v['synth']}`: the synthesis of `--flow`)" if "synth" in v else "")
        + f"; {v['opensta']}; {v['iverilog']}; "
        f"{v['library']}, typical corner, {meta['voltage']} V. Seed {meta['seed']}"
        + (f"; wall time {meta['wall_s'] / 60:.1f} min" if "wall_s" in meta else "") + ".",
        "",
        "Flow: `read_liberty -lib; read_verilog -I hdl <the hdl/ files the design reads>; "
        "chparam; synth -flatten -top T;"
        " dfflibmap -liberty; abc -D <clock in ps> -constr <BUFX2 drive, output load> -liberty;"
        " stat -liberty` (area; ABC maps for the stated clock and buffers high-fanout nets); "
        "OpenSTA: inputs driven by "
        f"{c['driving_cell']}, input delay {c['input_delay_ns']} ns, output delay "
        f"{c['output_delay_ns']} ns, {c['output_load_pf'] * 1000:.0f} fF on every output, ideal "
        f"clock ({c['clock_transition_ns']} ns transition), no wire load (nothing is placed). "
        "Delay = minimum clock period meeting every setup check (combinational: the input to "
        "output critical path). Energy per operation = OpenSTA's energy per transition of every "
        "pin (internal power tables + 0.5 C V^2) x transitions counted per net in Icarus "
        "gate-level simulation of the mapped netlist (library cell models), + leakage, / "
        "operations; input capacitance is charged through a BUFX2 driver per input bit (its "
        "net's switching counts, its internal energy does not). `zero`: zero-delay simulation, "
        "no glitches; `specify`: the cells' specify-block delays, glitches counted. Each "
        "netlist equals the RTL on random bit patterns and on every workload vector (bits "
        "compared below).",
        "",
        f"Workloads: `uniform` = operands uniform in (-1, 1) rounded to the format (PE/array: "
        f"dot products of K = {DOT_K}); `mnist` = operand pairs of the MNIST LSTM's gate "
        f"products in `lmul` mode ({meta.get('mnist_source', 'not run')}).",
        "",
    ]
    rats = ratios(results)
    if rats:
        keys = sorted({k for r in rats for k in r if k.startswith("energy ")})
        lines += ["**L-Mul / exact ratios** (below 1: L-Mul is cheaper)", "",
                  "| level | format | baseline | area | cells | delay | "
                  + " | ".join(k.replace("energy ", "energy/op ") for k in keys) + " |",
                  "|---|---|---|---:|---:|---:|" + "---:|" * len(keys)]
        for r in rats:
            lines.append(f"| {r['level']} | {r['format']} | {UNIT_LABELS[r['baseline']]} | "
                         f"{_f(r['area'])} | {_f(r['cells'])} | {_f(r['delay'])} | "
                         + " | ".join(_f(r.get(k, float('nan'))) for k in keys) + " |")
        lines.append("")
    lines += ["**All designs**", "",
              "| design | area um^2 | cells | delay / min period ns | f_max MHz | clock ns | "
              "check bits | workload | timing | energy/op pJ | power mW | of which clock pJ | "
              "input nets pJ | clock + registers pJ | datapath pJ |",
              "|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|"]
    for row in csv_rows(results):
        fmax = "—" if row["level"] in ("mul", "cell") else f"{1000 / row['min_period_ns']:.1f}"
        lines.append(f"| {row['name']} | {row['area_um2']:.0f} | "
                     f"{row['cells']} | {row['min_period_ns']:.3f} | {fmax} | "
                     f"{row['period_ns']:.0f} | "
                     f"{row['check_bits']} | {row['workload']} | {row['timing']} | "
                     f"{row['energy_per_op_pj']:.3f} | {row['power_mw']:.3f} | "
                     f"{row['clock_pj']:.3f} | {row['input_nets_pj']:.3f} | "
                     f"{_f(row['clock_and_registers_pj'])} | {_f(row['datapath_pj'])} |")
    lines.append("")
    glitch = []
    for r in results:
        for wl in WORKLOADS:
            z, s = _epo(r, f"{wl}/zero"), _epo(r, f"{wl}/specify")
            if not math.isnan(z) and not math.isnan(s):
                glitch.append(s / z)
    if glitch:
        lines += [f"Glitches: with cell delays the energy per operation is "
                  f"{min(glitch):.2f}x to {max(glitch):.2f}x the zero-delay figure, so the "
                  "tables quote both; the verdict uses the `specify` (glitch-inclusive) runs.", ""]
    shares = []
    for r in results:
        if r["level"] == "pe":
            for wl in WORKLOADS:
                s = multiplier_share(results, r["format"], r["unit"], f"{wl}/specify")
                if not math.isnan(s):
                    shares.append((r["format"], r["unit"], wl, s))
    if shares:
        lines += ["**Multiplier share of the PE's energy per MAC** (multiplier alone on the "
                  "same workload / PE; `specify` timing)", "",
                  "| format | unit | workload | share |", "|---|---|---|---:|"]
        lines += [f"| {f} | {UNIT_LABELS[u]} | {w} | {s:.3f} |" for f, u, w, s in shares]
        lines += ["", "The share is a lower bound on what the multiplier costs inside a PE: "
                  "its output glitches also make the adder behind it switch. Saving per MAC "
                  "(exact PE - L-Mul PE) vs saving of the multiplier alone (exact - L-Mul), "
                  "pJ, `specify` timing:", "",
                  "| format | workload | PE saving pJ | multiplier-alone saving pJ |",
                  "|---|---|---:|---:|"]
        for r in results:
            if r["level"] != "pe" or r["unit"] != "exact":
                continue
            for wl in WORKLOADS:
                key = f"{wl}/specify"
                d_pe = _epo(r, key) - _epo(_get(results, "pe", r["format"], "lmul"), key)
                d_mul = (_epo(_get(results, "mul", r["format"], "exact"), key)
                         - _epo(_get(results, "mul", r["format"], "lmul"), key))
                if not (math.isnan(d_pe) or math.isnan(d_mul)):
                    lines.append(f"| {r['format']} | {wl} | {d_pe:.1f} | {d_mul:.1f} |")
        lines.append("")
    img = per_image(results)
    if img and "cell_ops" in img:
        ops = img["cell_ops"]
        lines += ["**Energy per classified MNIST image, the whole cell** (BF16 4x4 array + the "
                  "`cell` units: each variant's element-wise multiplier, the adder, activation "
                  "unit and conversions in common; `mnist` workload, `specify` timing): pJ per "
                  "operation x operations per image", "",
                  "| unit | operations per image | "
                  + " | ".join(f"{UNIT_LABELS[u]} pJ/op" for u in ("lmul", "exact"))
                  + " |", "|---|---:|---:|---:|",
                  f"| array MAC | {img['macs']:,} | {img['lmul']['mac_pj']:.3f} | "
                  f"{img['exact']['mac_pj']:.3f} |"]
        lines += [f"| {v} | {n:,} | {img['lmul']['cell_pj'][v]:.3f} | "
                  f"{img['exact']['cell_pj'][v]:.3f} |" for v, n in ops.items()]
        lines += ["", "| cell | array uJ | rest of the cell uJ | image uJ |",
                  "|---|---:|---:|---:|"]
        lines += [f"| {UNIT_LABELS[u]} | {img[u]['array_uj']:.1f} | "
                  f"{img[u]['cell_uj']:.1f} | {img[u]['image_uj']:.1f} |"
                  for u in ("lmul", "exact")]
        lines += ["", f"L-Mul / exact per image, whole cell: **{img['ratio']:.3f}**.", ""]
    elif img:
        lines += ["**Energy per classified MNIST image** (BF16 4x4 array, `mnist` workload, "
                  f"`specify` timing): {img['macs']:,} MACs x array energy per MAC + "
                  f"{img['elementwise']:,} element-wise products x multiplier energy", "",
                  "| array | pJ per MAC | pJ per element-wise multiply | uJ per image |",
                  "|---|---:|---:|---:|"]
        for unit in ("lmul", "exact"):
            u = img[unit]
            lines.append(f"| {UNIT_LABELS[unit]} | {u['mac_pj']:.3f} | {u['mul_pj']:.3f} | "
                         f"{u['image_uj']:.3f} |")
        lines += ["", f"L-Mul / exact per image: **{img['ratio']:.3f}**.", ""]
    lines += verdict_lines(results)
    lines += ["", "**Published figures, for comparison** (other nodes and methods)", "",
              "| source | node | method | figures |", "|---|---|---|---|"]
    lines += [f"| {a['source']} | {a['node']} | {a['method']} | {a['claim']} |" for a in ANCHORS]
    bf = [r for r in ratios(results) if r["format"] == "bf16" and r["baseline"] == "exact"]
    for r in bf:
        lines.append(f"| this flow, {r['level']} BF16 | OSU 0.18 um, 1.8 V | mapped + OpenSTA + "
                     f"gate-level activity | area {_f(r['area'])}, delay {_f(r['delay'])}, "
                     f"energy/op (mnist, glitches) "
                     f"{_f(r.get('energy mnist/specify', float('nan')))} (L-Mul / exact) |")
    return "\n".join(lines) + "\n"


def verdict_lines(results: list[dict[str, Any]]) -> list[str]:
    """A plain verdict on the paper's 95 % (element-wise) and 80 % (dot product) claims."""
    key = "mnist/specify"
    lines = ["**Verdict at this node (OSU 0.18 um)**", ""]
    mul = [(r["format"], 1 - _epo(_get(results, "mul", r["format"], "lmul"), key) / _epo(r, key))
           for r in results if r["level"] == "mul" and r["unit"] == "exact"]
    mul = [(f, s) for f, s in mul if not math.isnan(s)]
    if mul:
        txt = ", ".join(f"{f} {100 * s:.0f} %" for f, s in mul)
        ok = all(s >= 0.95 for _, s in mul)
        lines.append(f"- Element-wise multiply (paper: 95 % less energy): measured saving vs the "
                     f"exact IEEE multiplier {txt}. "
                     + ("The claim holds." if ok else "The 95 % claim does not hold here."))
    dot = []
    for lvl in ("pe", "array"):
        for r in results:
            if r["level"] == lvl and r["unit"] == "exact":
                s = 1 - _epo(_get(results, lvl, r["format"], "lmul"), key) / _epo(r, key)
                if not math.isnan(s):
                    dot.append((lvl, r["format"], s))
    if dot:
        txt = ", ".join(f"{lvl} {f} {100 * s:.0f} %" for lvl, f, s in dot)
        ok = all(s >= 0.80 for *_, s in dot)
        lines.append(f"- Dot product (paper: 80 % less energy): measured saving per MAC {txt}. "
                     + ("The claim holds." if ok else "The 80 % claim does not hold here: the "
                        "binary32 accumulation, registers and clock, which L-Mul does not "
                        "change, dominate a MAC's energy."))
    return lines


def plot_png(results: list[dict[str, Any]]) -> bytes:
    """Bar chart of L-Mul / exact (IEEE) ratios: area, delay, energy per op (both workloads,
    glitch-inclusive), one group per design level and format."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rats = [r for r in ratios(results) if r["baseline"] == "exact"]
    metrics = [("area", "area"), ("delay", "delay"),
               ("energy uniform/specify", "energy/op uniform (cell delays)"),
               ("energy mnist/specify", "energy/op MNIST (cell delays)")]
    colors = ("#4c72b0", "#55a868", "#c44e52", "#8172b2")
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(rats) + 2), 4.2))
    width = 0.2
    for k, ((key, label), color) in enumerate(zip(metrics, colors, strict=True)):
        xs = [x + (k - 1.5) * width for x in range(len(rats))]
        vals = [float(r.get(key, float("nan"))) for r in rats]
        bars = ax.bar(xs, vals, width, label=label, color=color)
        ax.bar_label(bars, fmt="%.2f", fontsize=6, padding=1)
    ax.axhline(1.0, color="black", lw=0.8, ls="--")
    ax.axhline(0.05, color="black", lw=1.0, ls=":", label="paper: 0.05 per multiply")
    ax.axhline(0.20, color="black", lw=1.0, ls="-.", label="paper: 0.20 per dot product")
    ax.set_xticks(range(len(rats)), [f"{r['level']}\n{r['format']}" for r in rats], fontsize=8)
    ax.set_ylim(0, 1.3)
    ax.set_ylabel("L-Mul / exact IEEE")
    ax.set_title("OSU 0.18 um: L-Mul relative to the exact multiplier (lower is cheaper)",
                 fontsize=10)
    ax.legend(fontsize=7, ncol=3, loc="upper left")
    fig.tight_layout()
    return png_bytes(fig)


def write_outputs(meta: dict[str, Any], results: list[dict[str, Any]], out_dir: Path,
                  plot: bool = True) -> list[Path]:
    """Write ``cost.json``, ``cost.csv``, ``cost.md`` and (optionally) ``cost.png``."""
    paths = [out_dir / "cost.json", out_dir / "cost.csv", out_dir / "cost.md"]
    atomic_write_text(paths[0], json.dumps({"meta": meta, "designs": results,
                                            "ratios": ratios(results),
                                            "per_image": per_image(results)}, indent=1))
    atomic_write_text(paths[1], csv_text(csv_rows(results), CSV_FIELDS))
    atomic_write_text(paths[2], markdown(meta, results))
    if plot and ratios(results):
        paths.append(out_dir / "cost.png")
        atomic_write_bytes(paths[3], plot_png(results))
    return paths


# --------------------------------------------------------------------------------- profile
def profile_markdown(meta: dict[str, Any], results: Sequence[dict[str, Any]],
                     phases: Sequence[str]) -> str:
    """Where the time of the run that wrote ``results`` went: CPU seconds (of the flow's
    processes and the tools they ran) per phase (rows, ``phases`` order first) and level
    (columns), from each design's ``profile`` (``{phase: [wall_s, cpu_s]}``), then the
    designs that took the most CPU time. Steps a cache answered cost nothing there."""
    levels = list(dict.fromkeys(str(r["level"]) for r in results))
    seen = [ph for ph in phases if any(ph in r.get("profile", {}) for r in results)]
    seen += sorted({ph for r in results for ph in r.get("profile", {})} - set(seen))
    cpu = {(ph, lv): 0.0 for ph in seen for lv in levels}
    for r in results:
        for ph, (_, c) in r.get("profile", {}).items():
            cpu[(ph, str(r["level"]))] += c
    total = sum(cpu.values())
    lines = [f"Run: `{meta.get('command', '?')}`, {meta.get('jobs', 1)} process(es), wall "
             f"{meta.get('wall_s', float('nan')):.0f} s, {total:.0f} CPU s in the phases "
             f"below ({len(results)} designs).", "",
             "| phase | " + " | ".join(levels) + " | all | share |",
             "|---|" + "---:|" * (len(levels) + 2)]
    for ph in seen:
        row = sum(cpu[(ph, lv)] for lv in levels)
        lines.append(f"| {ph} | " + " | ".join(f"{cpu[(ph, lv)]:.1f}" for lv in levels)
                     + f" | {row:.1f} | {ratio(row, total):.0%} |")
    col = [sum(cpu[(ph, lv)] for ph in seen) for lv in levels]
    lines.append("| **all** | " + " | ".join(f"{c:.1f}" for c in col) + f" | {total:.1f} | |")
    per_design = sorted(((sum(c for _, c in r.get("profile", {}).values()), str(r["name"]))
                         for r in results), reverse=True)[:5]
    lines += ["", "Most CPU time: " + ", ".join(f"{n} {c:.0f} s" for c, n in per_design)
              + "."]
    return "\n".join(lines) + "\n"
