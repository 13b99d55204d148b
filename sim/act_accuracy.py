"""Accuracy of the activation unit per shipped parameter set, over all 2^32 binary32 inputs.

Usage: ``python -m sim.act_accuracy [--sets pwl16 ...] [--inputs N]``. Writes
``docs/results/activation.json`` and ``activation.md``.

The unit's results are the model ``lmul.act_hw_bits`` (equal to the RTL bit for bit on all 2^32
inputs: ``python -m sim.prove --configs 'act/*'``). Each result ``y`` is compared with the
float64 value ``r`` of the function (``1 / (1 + exp(-x))``, ``tanh(x)``, numba's libm), not
with the correctly rounded ``lmul.sigmoid32`` / ``tanh32`` (too slow for 2^32 inputs): the error
in ulps is ``|y - r| / ulp(r)`` with ``ulp(r)`` the binary32 ulp at ``r``'s magnitude
(``2^(max(floor(log2 |r|), -126) - 23)``), so it differs from the distance to the correctly
rounded result by at most 0.5 ulp. NaN inputs (canonical NaN out) are left out of the
statistics; the infinities are in. ``--inputs N`` evaluates N evenly spaced inputs instead of all
(a quick look; the document's rows say how many inputs each covers). The rows of sets not
measured by a run are kept from the existing ``activation.json`` in the output directory, so
sets can be measured by separate runs.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
from numba import njit, prange

import lmul
from sim.lib.cli import run_main
from sim.lib.fileio import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
OUT_DIR = REPO / "docs" / "results"
CHUNK = 1 << 24


@njit(cache=True, parallel=True)
def _chunk_stats(x, y, is_tanh, xmax):
    """(count, sum ulp, max ulp, argmax x, sum abs, max abs, n exact, count in range, sum ulp in
    range, max ulp in range) over the non-NaN inputs of one chunk."""
    n = x.size
    ulp = np.zeros(n)
    ab = np.zeros(n)
    ok = np.zeros(n, dtype=np.bool_)
    for j in prange(n):
        xf = np.float64(x[j])
        if xf != xf:
            continue
        ok[j] = True
        if is_tanh:
            r = np.tanh(xf)
        else:
            r = 1.0 / (1.0 + np.exp(-xf))
        d = abs(np.float64(y[j]) - r)
        # binade of |r|: |r| = m 2^ex with m in [0.5, 1), so floor(log2 |r|) = ex - 1
        e = max(math.frexp(abs(r))[1] - 1, -126) if r != 0 else -126
        ulp[j] = math.ldexp(d, 23 - e)  # d / 2^(e - 23)
        ab[j] = d
    cnt = 0
    s_ulp = 0.0
    m_ulp = 0.0
    arg = 0
    s_abs = 0.0
    m_abs = 0.0
    exact = 0
    cnt_r = 0
    s_ulp_r = 0.0
    m_ulp_r = 0.0
    for j in range(n):
        if not ok[j]:
            continue
        cnt += 1
        s_ulp += ulp[j]
        s_abs += ab[j]
        if ulp[j] > m_ulp:
            m_ulp = ulp[j]
            arg = j
        if ab[j] > m_abs:
            m_abs = ab[j]
        if ulp[j] <= 0.5:
            exact += 1
        if abs(np.float64(x[j])) < xmax:
            cnt_r += 1
            s_ulp_r += ulp[j]
            if ulp[j] > m_ulp_r:
                m_ulp_r = ulp[j]
    return cnt, s_ulp, m_ulp, arg, s_abs, m_abs, exact, cnt_r, s_ulp_r, m_ulp_r


def measure(cfg: lmul.ActConfig, inputs: int | None = None, log=print) -> dict:
    """Error statistics of ``cfg`` over all 2^32 inputs (or ``inputs`` evenly spaced ones)."""
    total = 1 << 32
    step = 1 if inputs is None else max(1, total // inputs)
    xmax = float(1 << cfg.xmax_log2)
    acc = dict(count=0, sum_ulp=0.0, max_ulp=0.0, argmax=0, sum_abs=0.0, max_abs=0.0, exact=0,
               count_range=0, sum_ulp_range=0.0, max_ulp_range=0.0)
    t0 = time.perf_counter()
    span = CHUNK * step
    for start in range(0, total, span):
        xb = (np.arange(CHUNK, dtype=np.int64) * step + start)
        xb = xb[xb < total].astype(np.uint32)
        y = lmul.act_hw_bits(xb, cfg).view(np.float32)
        c, su, mu, arg, sa, ma, ex, cr, sur, mur = _chunk_stats(
            xb.view(np.float32), y, cfg.func == "tanh", xmax)
        acc["count"] += c
        acc["sum_ulp"] += su
        acc["sum_abs"] += sa
        acc["exact"] += ex
        acc["count_range"] += cr
        acc["sum_ulp_range"] += sur
        acc["max_ulp_range"] = max(acc["max_ulp_range"], mur)
        acc["max_abs"] = max(acc["max_abs"], ma)
        if mu > acc["max_ulp"]:
            acc["max_ulp"], acc["argmax"] = mu, int(xb[arg])
    wall = time.perf_counter() - t0
    p = cfg.verilog_parameters()
    rec = {"func": cfg.func, "segments": cfg.segments, "coef_bits": cfg.coef_bits,
           "range": xmax, "inputs": acc["count"], "all_inputs": inputs is None,
           "max_ulp": acc["max_ulp"], "max_ulp_at": f"0x{acc['argmax']:08x}",
           "mean_ulp": acc["sum_ulp"] / acc["count"],
           "max_ulp_in_range": acc["max_ulp_range"],
           "mean_ulp_in_range": acc["sum_ulp_range"] / max(1, acc["count_range"]),
           "max_abs": acc["max_abs"], "mean_abs": acc["sum_abs"] / acc["count"],
           "within_half_ulp": acc["exact"] / acc["count"], "wall_s": round(wall, 1),
           "parameters": p}
    log(f"{cfg}: max {rec['max_ulp']:.4g} ulp at {rec['max_ulp_at']}, mean {rec['mean_ulp']:.4g}"
        f" ulp; |x| < {xmax:g}: max {rec['max_ulp_in_range']:.4g}, mean "
        f"{rec['mean_ulp_in_range']:.4g} ulp; max abs {rec['max_abs']:.3g}; {wall:.0f} s")
    return rec


def render_md(doc: dict) -> str:
    lines = ["# Activation unit accuracy (hdl/act_unit.v, model lmul.act_hw_bits)", "",
             "Commands: " + "; ".join(f"{k}: `{v}`" for k, v in doc["commands"].items())
             + ". Inputs per row: all 2^32 binary32 bit patterns but the NaNs "
             "(4,278,190,082), or, where the row says fewer, evenly spaced bit patterns.",
             "", "Reference: the float64 function value (not the correctly rounded binary32 "
             "`lmul.sigmoid32`/`tanh32`; the ulp error differs from the distance to those by at "
             "most 0.5 ulp). ulp = the binary32 ulp at the reference's magnitude. 'range' = "
             "|x| < R, the table's range (R = 16 sigmoid, 8 tanh). 'exact' = share of inputs "
             "within 0.5 ulp (the correctly rounded result or its neighbour at a near-tie).", "",
             "| set | func | segments | coef bits | inputs | max ulp | at x | mean ulp |"
             " max ulp, range | mean ulp, range | max abs err | mean abs err | exact |",
             "|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    for name, recs in doc["sets"].items():
        for r in recs:
            lines.append(
                f"| {name} | {r['func']} | {r['segments']} | {r['coef_bits']} | {r['inputs']:,} | "
                f"{r['max_ulp']:.4g} | {r['max_ulp_at']} | {r['mean_ulp']:.4g} | "
                f"{r['max_ulp_in_range']:.4g} | {r['mean_ulp_in_range']:.4g} | "
                f"{r['max_abs']:.3g} | {r['mean_abs']:.3g} | {100 * r['within_half_ulp']:.2f} % |")
    lines += ["", "Reading: the ulp columns are dominated by the tails where the fixed-point "
              "result has few significant bits or is 0 while the function is tiny but nonzero "
              "(sigmoid for x <= -R returns +0; results near 0 carry an absolute error of up to "
              "2^-COEF_BITS): millions of ulps there. The absolute error is the figure of merit "
              "for a piecewise-linear unit; see docs/activation.md.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.act_accuracy",
                                     description="Activation unit error over all inputs.")
    parser.add_argument("--sets", nargs="*", default=list(lmul.ACT_PRESETS),
                        help=f"shipped sets (default all: {', '.join(lmul.ACT_PRESETS)})")
    parser.add_argument("--inputs", type=int, default=None,
                        help="evenly spaced inputs instead of all 2^32 (quick look)")
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR)
    args = parser.parse_args(argv)

    def run() -> int:
        for name in args.sets:
            lmul.act_config(name, "tanh")  # unknown names: one-line error
        if args.inputs is not None and args.inputs < 1:
            raise ValueError("--inputs must be >= 1")
        command = "python -m sim.act_accuracy " + " ".join(sys.argv[1:] if argv is None else argv)
        doc = {"commands": {}, "sets": {}}
        old = args.out_dir / "activation.json"
        if old.exists():
            prev = json.loads(old.read_text())
            doc["sets"] = {k: v for k, v in prev.get("sets", {}).items() if k not in args.sets}
            for k in doc["sets"]:
                doc["commands"][k] = prev.get("commands", {}).get(k, prev.get("command", "?"))
        args.out_dir.mkdir(parents=True, exist_ok=True)
        for name in args.sets:
            doc["sets"][name] = []
            doc["commands"][name] = command
            for f in lmul.ACT_FUNCS:
                doc["sets"][name].append(
                    measure(lmul.act_config(name, f), args.inputs))
                # written after every row, so a long run leaves what it finished
                atomic_write_text(args.out_dir / "activation.json",
                                  json.dumps(doc, indent=1) + "\n")
                atomic_write_text(args.out_dir / "activation.md", render_md(doc))
        print(f"act_accuracy: wrote {args.out_dir / 'activation.md'}")
        return 0

    return run_main("act_accuracy", run, (ValueError,))


if __name__ == "__main__":
    sys.exit(main())
