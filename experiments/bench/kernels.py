"""Benchmark of the L-Mul kernels against the seed's approach and float32 (``make bench``).

Run as ``python -m experiments.bench.kernels``. In one run, on the same inputs, it times:

LSTM gate product ``[batch x (28 + 128)] . [156 x 512]`` (default batch 1000):
  1. the seed notebook's approach: every product of a ``[B, O, I]`` broadcast through the
     vectorized seed multiplier (``lmul.seed_lmul``'s numpy path), then ``sum`` over I and
     ``+ bias`` in torch (as the notebook's ``LSTMLayer`` did);
  2. ``lmul.matmul_reference`` (the pure-numpy model of the MAC array);
  3. the fast kernels, ``lmul.matmul`` with multiplier ``lmul``, ``exact`` and ``seed``;
  4. ``torch.addmm`` in float32 (plus bias), the machine's physical speed; timed with torch's
     default threads and with 1 thread, the faster being the yardstick (on a busy machine
     torch's spin-waiting OpenMP workers can make its multi-threaded run the slower one).
  The fast L-Mul kernel is also timed with 1 thread (per-core speed); its summary line gives the
  L-Mul kernel's time over torch's with the same thread count (default, and 1), target <= 3x
  each.
  Paths 1 and 2 are timed on a slice of the rows and scaled to the full batch (said in the
  table); rows are independent, so the time is linear in the rows.
  5. fused accumulation, ``lmul.matmul(..., accumulate=lmul.Fused(k, align_bits))`` for a few
     steps and windows, each as a ratio of CPU time (all threads) to the sequential L-Mul
     kernel's, timed alternately with it in the same run, with numba's default threads and
     with 1 thread (target: <= 1.5x for 16 products per step).

``--fused-floor`` instead times only the inner loops of one fused step alone
(:func:`print_fused_floor`): the floor under the fused kernel's ratios.

Elementwise products of 10 million float32 pairs: the seed multiplier (numpy), the numpy L-Mul
path (``lmul._core.lmul_numpy``: round, ``lmul_bits``, widen), the fast elementwise kernels, and
torch's ``a * b``.

Every time is the best of ``--repeats`` runs (the machine is shared: the minimum is the least
disturbed run); the gate product's fast kernels and torch's ``addmm``, whose ratio is the
headline, take turns in blocks of ``--repeats`` calls for 4x as many runs. Ratios are against
paths measured in the same run; nothing is compared with a fixed wall-clock threshold.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np

import lmul
from lmul import _matmul as mm  # internals timed here: the elementwise kernels, thread counts
from lmul._core import lmul_numpy, seed_lmul_numpy
from sim.lib.seed_notebook import load_notebook_lmul_bits, notebook_path

from . import best_time, best_times_interleaved


def gate_operands(batch: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LSTM-like operands: [x_t (pixels in [0,1)), h (tanh range)], W^T, bias."""
    rng = np.random.default_rng(seed)
    x = rng.random((batch, 28), dtype=np.float32)
    h = np.tanh(rng.standard_normal((batch, 128))).astype(np.float32)
    a = np.concatenate([x, h], axis=1)
    bound = 1.0 / np.sqrt(128.0)
    w_t = rng.uniform(-bound, bound, (156, 512)).astype(np.float32)
    bias = rng.uniform(-bound, bound, 512).astype(np.float32)
    return a, w_t, bias


def seed_style_gates(torch, a, w, bias):
    """The notebook's L-Mul linear layer: [B,1,I] x [1,O,I] products, sum over I, + bias.

    The products come from the pure-numpy seed multiplier (``lmul.seed_lmul``'s reference path,
    vectorized tensor operations like the notebook's torch code), so this row keeps measuring
    the notebook's approach even where ``lmul.seed_lmul`` itself dispatches to the kernels.
    """
    prod = torch.from_numpy(seed_lmul_numpy(a.numpy()[:, None, :], w.numpy()[None, :, :]))
    return prod.sum(dim=2) + bias


#: Fused-accumulation settings timed against the sequential kernel: (k, align_bits).
FUSED_SETTINGS = ((16, lmul.FUSED_EXACT_ALIGN_BITS), (16, 32), (16, 24), (16, 8), (4, 24),
                  (64, lmul.FUSED_EXACT_ALIGN_BITS))


def best_cpu_time(fn: Callable[[], object], repeats: int) -> float:
    """Least process CPU time (s, all threads) of ``repeats`` calls after one warm-up call: on
    a shared machine CPU time varies less with other jobs than wall time does."""
    return best_time(fn, repeats, clock=time.process_time)


def print_fused_ratios(a: np.ndarray, w_t: np.ndarray, bias: np.ndarray, repeats: int) -> None:
    """Time ``lmul.matmul`` with each of :data:`FUSED_SETTINGS` and the sequential kernel
    alternately (least CPU time of ``2 * repeats`` runs each, so load changes hit both alike),
    with numba's current thread count; print the ratios."""
    settings = [lmul.Fused(k, align) for k, align in FUSED_SETTINGS]
    for acc in settings:  # compile or load the kernels outside the timing
        mm.matmul(a[:2], w_t, bias, accumulate=acc)
    best_seq = float("inf")
    best = dict.fromkeys(settings, float("inf"))
    for _ in range(2 * repeats):
        for acc in settings:
            best_seq = min(best_seq, best_cpu_time(lambda: mm.matmul(a, w_t, bias), 1))
            best[acc] = min(best[acc], best_cpu_time(
                lambda acc=acc: mm.matmul(a, w_t, bias, accumulate=acc), 1))
    threads = mm._load_kernels().num_threads() if mm.fast_path_enabled() else 0
    print(f"\n## Fused accumulation (lmul.Fused) vs the sequential kernel, same run, "
          f"{threads} numba thread(s)\n")
    print(f"sequential L-Mul kernel: {best_seq * 1e3:.2f} ms CPU time (all threads)\n")
    print("| k | align_bits | CPU time (ms) | x sequential kernel's CPU time |")
    print("|---:|---:|---:|---:|")
    for acc in settings:
        print(f"| {acc.k} | {acc.align_bits} | {best[acc] * 1e3:.2f} "
              f"| {best[acc] / best_seq:.2f} |")
    worst16 = max(best[acc] / best_seq for acc in settings if acc.k == 16)
    print(f"\nfused accumulation, 16 products per step: at most {worst16:.2f}x the sequential "
          "kernel's CPU time over the windows above (target <= 1.5x)")


def _floor_loops() -> dict[str, Callable[..., None]]:
    """The inner loops of one step of 16 products for two rows of A over one column chunk,
    alone (no routing, no per-column exponent work), each repeated ``n`` times: the sequential
    kernel's (int32 add, float32 add per product), the fused window step's truncating sums
    (int32 add, scale, truncating conversion, int32 add), its int16 maximum pass, and a float32
    sum of the products added to the accumulator once (what a step that provably cuts nothing,
    with products spanning few enough binades, could cost). Compiled on first use."""
    from numba import njit

    from lmul._kintrinsics import _bits_f32, _i32

    i16 = np.int16

    def body(kind: str) -> str:
        rows = range(8)
        src = ["def loop(n, bpre, fbn, x, y, f, d, cs, sc, sc1, o0, o1, h0, h1):",
               "    for _ in range(n):",
               "        for g in range(0, 16, 8):"]
        src += [f"            b{i} = bpre[(g + {i}) * cs:(g + {i} + 1) * cs]" for i in rows]
        src += [f"            c{i} = fbn[(g + {i}) * cs:(g + {i} + 1) * cs]" for i in rows]
        src += [f"            x{i}, y{i} = x[g + {i}], y[g + {i}]" for i in rows]
        src += [f"            f{i}, d{i} = f[g + {i}], d[g + {i}]" for i in rows]
        src += ["            for j in range(cs):"]
        if kind == "max":
            for out, half in (("h0", "f"), ("h1", "d")):
                expr = f"{out}[j]"
                for i in rows:
                    expr = f"max({expr}, i16({half}{i} + c{i}[j]))"
                src += [f"                {out}[j] = {expr}"]
        elif kind == "trunc":
            src += ["                s0, s1 = sc[j], sc1[j]"]
            src += ["                o0[j] = _i32(o0[j] + " + " + ".join(
                f"_i32(_bits_f32(_i32(x{i} + b{i}[j])) * s0)" for i in rows) + ")"]
            src += ["                o1[j] = _i32(o1[j] + " + " + ".join(
                f"_i32(_bits_f32(_i32(y{i} + b{i}[j])) * s1)" for i in rows) + ")"]
        else:
            op = "+"
            if kind == "seq":  # in k order, one rounding per product, as the sequential kernel
                src += ["                t = sc[j]"] + [
                    f"                t += _bits_f32(_i32(x{i} + b{i}[j]))" for i in rows]
                src += ["                sc[j] = t", "                t = sc1[j]"] + [
                    f"                t += _bits_f32(_i32(y{i} + b{i}[j]))" for i in rows]
                src += ["                sc1[j] = t"]
            else:
                src += ["                sc[j] += " + f" {op} ".join(
                    f"_bits_f32(_i32(x{i} + b{i}[j]))" for i in rows)]
                src += ["                sc1[j] += " + f" {op} ".join(
                    f"_bits_f32(_i32(y{i} + b{i}[j]))" for i in rows)]
        return "\n".join(src)

    loops = {}
    for kind in ("seq", "max", "trunc", "tree"):
        scope = {"i16": i16, "_i32": _i32, "_bits_f32": _bits_f32}
        exec(body(kind), scope)  # the source is built above from fixed templates
        loops[kind] = njit(scope["loop"])
    return loops


def print_fused_floor(a: np.ndarray, w_t: np.ndarray, repeats: int) -> None:
    """Time :func:`_floor_loops` on the gate product's first 16 rows of B (L1-resident, one
    thread, wall time of 2000 steps) and print each as a multiple of the sequential loop."""
    kdot = mm._load_dot_kernels()
    cfg = lmul.LMulConfig()
    prm = mm._params(cfg, "rne")
    cs = w_t.shape[1]
    _bb, fb, bpre, special, fbmin, fbmax = mm._prepare_arrays(w_t[:16].copy(), prm, "lmul")
    fbn = np.empty(fb.size, dtype=np.int16)
    kdot.lmul_fields16(fb, fbn)
    halves = []
    for m in range(2):
        ax = np.empty(16, dtype=np.int32)
        kdot._tile_a(a[:2, :16].reshape(-1).copy(), fbmin, fbmax, special, m, 16, prm,
                     np.empty(16, dtype=np.int64), ax, np.empty(16, dtype=np.int64),
                     np.empty(16, dtype=np.int64))
        halves.append(ax)
    fields = [((h & 0x7FFFFFFF) >> int(prm[19])).astype(np.int16) for h in halves]  # _P_SH
    loops = _floor_loops()
    f32 = np.float32
    args = (bpre, fbn, halves[0], halves[1], fields[0], fields[1], cs,
            np.full(cs, f32(2.0 ** 20)), np.full(cs, f32(2.0 ** 20)),
            np.zeros(cs, np.int32), np.zeros(cs, np.int32),
            np.zeros(cs, np.int16), np.zeros(cs, np.int16))
    steps = 2000
    best = {}
    for _ in range(repeats):
        for kind, loop in loops.items():
            t = best_time(lambda loop=loop: loop(steps, *args), 1)
            best[kind] = min(best.get(kind, float("inf")), t / steps)
    print(f"\n## Inner loops of one fused step (16 products x 2 rows of A x {cs} columns), "
          "alone, 1 thread\n")
    print("| loop | ns per step | x the sequential loop |")
    print("|---|---:|---:|")
    names = {"seq": "sequential: int32 add, float32 add (k order)",
             "max": "window emax: int16 add, max (16 lanes)",
             "trunc": "window sums: int32 add, scale, truncate, int32 add",
             "tree": "float32 sum of the products, then the accumulator (nothing cut)"}
    for kind in loops:
        print(f"| {names[kind]} | {best[kind] * 1e9:.0f} | {best[kind] / best['seq']:.2f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=1000, help="rows of the gate product")
    parser.add_argument("--seed-rows", type=int, default=50,
                        help="rows timed for the seed-style path (scaled to --batch)")
    parser.add_argument("--ref-rows", type=int, default=50,
                        help="rows timed for lmul.matmul_reference (scaled to --batch)")
    parser.add_argument("--elements", type=int, default=10_000_000,
                        help="elementwise products")
    parser.add_argument("--repeats", type=int, default=5,
                        help="best of this many runs (the gate product's kernel-vs-torch rows: "
                             "4x as many, in alternating blocks)")
    parser.add_argument("--seed", type=int, default=0, help="operand RNG seed")
    parser.add_argument("--fused-floor", action="store_true",
                        help="only time the fused step's inner loops alone (and exit)")
    args = parser.parse_args(argv)
    if args.fused_floor:
        a, w_t, _bias = gate_operands(args.batch, args.seed)
        print_fused_floor(a, w_t, args.repeats)
        return 0

    import torch

    if not mm.fast_path_enabled():
        print("WARNING: numba kernels disabled (LMUL_NO_NUMBA or numba missing): "
              "'fast' rows time the numpy fallback")
    kernels = mm._load_kernels()
    threads = kernels.num_threads() if kernels is not None else 0
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {os.cpu_count()} CPUs, load average {load:.2f}; numba threads {threads}, "
          f"torch threads {torch.get_num_threads()}; best of {args.repeats} runs "
          f"({4 * args.repeats}, in alternating blocks of {args.repeats}, for the gate "
          "product's kernels and addmm)")

    a, w_t, bias = gate_operands(args.batch, args.seed)
    m, k = a.shape
    n = w_t.shape[1]
    products = m * k * n
    at, wt, bt = torch.from_numpy(a), torch.from_numpy(np.ascontiguousarray(w_t.T)), \
        torch.from_numpy(bias)

    # Warm up (numba compiles or loads its cache) outside any timing.
    for mult in lmul.MULTIPLIERS:
        mm.matmul(a[:2], w_t, bias, multiplier=mult)

    rows: list[tuple[str, str, float]] = []  # (path, note, seconds for the full product)
    sr = min(args.seed_rows, m)
    t = best_time(lambda: seed_style_gates(torch, at[:sr], wt, bt), max(1, args.repeats // 2))
    rows.append(("seed-style broadcast (seed_lmul on [B,O,I], torch sum)",
                 f"{sr} rows timed, x{m / sr:.0f}", t * m / sr))
    rr = min(args.ref_rows, m)
    t = best_time(lambda: lmul.matmul_reference(a[:rr], w_t, bias), max(1, args.repeats // 2))
    rows.append(("lmul.matmul_reference (numpy, lmul)", f"{rr} rows timed, x{m / rr:.0f}",
                 t * m / rr))
    # The L-Mul kernel and torch take turns in blocks, with the same number of tries each:
    # their ratio is the headline figure, and this host's speed drifts within seconds.
    fast_fns = [lambda mult=mult: mm.matmul(a, w_t, bias, multiplier=mult)
                for mult in lmul.MULTIPLIERS]
    *t_mults, t_torch = best_times_interleaved(
        [*fast_fns, lambda: torch.addmm(bt, at, wt.t())], 4 * args.repeats,
        block=args.repeats)
    for mult, t in zip(lmul.MULTIPLIERS, t_mults, strict=True):
        rows.append((f"fast kernel lmul.matmul ({mult})", "full", t))
    rows.append((f"torch float32 addmm, {torch.get_num_threads()} threads", "full", t_torch))
    # One thread each: per-core speed, and a yardstick less disturbed by other jobs (torch's
    # OpenMP workers spin-wait; on a busy machine its 1-thread run is often the faster one).
    t_yard = t_torch
    t1 = t1_torch = None
    if mm._load_kernels() is not None:
        import numba

        saved = (numba.get_num_threads(), torch.get_num_threads())
        numba.set_num_threads(1)
        torch.set_num_threads(1)
        try:
            t1, t1_torch = best_times_interleaved(
                [lambda: mm.matmul(a, w_t, bias), lambda: torch.addmm(bt, at, wt.t())],
                4 * args.repeats, block=args.repeats)
        finally:
            numba.set_num_threads(saved[0])
            torch.set_num_threads(saved[1])
        rows.append(("fast kernel lmul.matmul (lmul), 1 thread", "full", t1))
        rows.append(("torch float32 addmm, 1 thread", "full", t1_torch))
        t_yard = min(t_torch, t1_torch)

    t_seed_style = rows[0][2]
    t_fast = rows[2][2]
    print(f"\n## LSTM gate product [{m} x {k}] . [{k} x {n}] + bias "
          f"({products / 1e6:.1f} M products)\n")
    print(f"torch yardstick: the faster of the torch rows below ({t_yard * 1e3:.2f} ms)\n")
    print("| path | timed | time (ms) | M products/s | x faster than seed-style "
          "| x torch fp32 yardstick's time |")
    print("|---|---|---:|---:|---:|---:|")
    for name, note, t in rows:
        print(f"| {name} | {note} | {t * 1e3:.2f} | {products / t / 1e6:,.0f} "
              f"| {t_seed_style / t:,.1f} | {t / t_yard:,.1f} |")
    print(f"\nfast L-Mul kernel: {t_seed_style / t_fast:,.0f}x the seed-style path "
          f"(target >= 100x), {t_fast / t_yard:.1f}x the torch float32 yardstick's time")
    if t1 is not None and t1_torch is not None:
        print(f"L-Mul kernel vs torch float32 addmm, same thread count: "
              f"{t_fast / t_torch:.1f}x with the default threads, {t1 / t1_torch:.1f}x with 1 "
              "thread (target <= 3x each)")

    print_fused_ratios(a, w_t, bias, args.repeats)
    if mm._load_kernels() is not None:
        import numba

        saved_threads = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            print_fused_ratios(a, w_t, bias, args.repeats)
        finally:
            numba.set_num_threads(saved_threads)

    # Sanity: the seed-style layer and the kernel's seed multiplier agree up to summation order.
    ref_seed = seed_style_gates(torch, at[:sr], wt, bt).numpy()
    fast_seed = mm.matmul(a[:sr], w_t, bias, multiplier="seed")
    scale = float(np.abs(ref_seed).max())
    diff = float(np.abs(ref_seed - fast_seed).max())
    print(f"seed-style vs kernel (seed multiplier), max |diff| / max |y| = {diff / scale:.1e} "
          "(summation order differs: torch's sum vs the array's k order)")

    # ---------------------------------------------------------------------------- elementwise
    rng = np.random.default_rng(args.seed + 1)
    x = rng.standard_normal(args.elements).astype(np.float32)
    y = rng.standard_normal(args.elements).astype(np.float32)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    slow_repeats = max(1, args.repeats // 2)
    ew = [
        ("seed_lmul, numpy path", best_time(lambda: seed_lmul_numpy(x, y), slow_repeats)),
        ("lmul numpy path (round, lmul_bits, widen)",
         best_time(lambda: lmul_numpy(x, y, lmul.LMulConfig(), "rne"), slow_repeats)),
        ("fast lmul_elementwise", best_time(lambda: mm.lmul_elementwise(x, y), args.repeats)),
        ("fast exact_mul_elementwise",
         best_time(lambda: mm.exact_mul_elementwise(x, y), args.repeats)),
        ("fast seed_lmul_elementwise",
         best_time(lambda: mm.seed_lmul_elementwise(x, y), args.repeats)),
        ("torch float32 a * b (yardstick)", best_time(lambda: xt * yt, args.repeats)),
    ]
    notebook_fn = load_notebook_lmul_bits()
    if notebook_fn is None:
        print(f"(the notebook's own lmul_bits is not timed: {notebook_path()} not found)")
    else:
        ew.append(("the notebook's own lmul_bits (torch, from ../shared/seed/)",
                   best_time(lambda: notebook_fn(xt, yt), slow_repeats)))
    t_ref = ew[0][1]
    print(f"\n## Elementwise products ({args.elements / 1e6:g} M float32 pairs)\n")
    print("| path | time (ms) | M products/s | x faster than seed_lmul (numpy) |")
    print("|---|---:|---:|---:|")
    for name, t in ew:
        print(f"| {name} | {t * 1e3:.1f} | {args.elements / t / 1e6:,.0f} | {t_ref / t:,.1f} |")
    rate = args.elements / ew[2][1] / 1e6
    print(f"\nfast elementwise L-Mul: {rate:,.0f} M products/s (target >= 100)")

    # -------------------------------------------------------- lmul.torch.convert's layers
    from ..convert_demo import bench_converted_layers

    print("\n## Converted layers (lmul.torch.convert, L-Mul) vs torch float32, forward\n")
    print("| layer | torch float32 (ms) | converted (ms) | x torch's time (target <= 3) |")
    print("|---|---:|---:|---:|")
    for name, t_torch, t_conv in bench_converted_layers(args.repeats, args.seed):
        print(f"| {name} | {t_torch * 1e3:.2f} | {t_conv * 1e3:.2f} | {t_conv / t_torch:.1f} |")

    # ------------------------------------------------- L-Mul-aware training (experiments.tune)
    from ..recipes import bench_training

    steps = bench_training(repeats=max(1, args.repeats // 2), seed=args.seed)
    per_epoch = 60_000 / 128  # batches in an MNIST epoch
    print("\n## Training step, batch 128 (forward + backward + Adam), same data\n")
    print("| model | ms / batch | MNIST epoch (s, estimated) | x explicit float32 cell |")
    print("|---|---:|---:|---:|")
    for name, t in steps:
        print(f"| {name} | {t * 1e3:.1f} | {t * per_epoch:.0f} | {t / steps[1][1]:.2f} |")
    print(f"\nL-Mul-aware training: {steps[2][1] / steps[1][1]:.2f}x the explicit float32 "
          f"cell's time (target <= 2), {steps[2][1] / steps[0][1]:.2f}x torch's fused nn.LSTM")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
