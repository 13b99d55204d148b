"""Benchmark: a small accuracy grid run serially in-process vs as Ray tasks on a local Ray.

    python -m experiments.bench.ray_executor [--dataset fashion] [--seeds 0,1] [--modes fp32,lmul]
        [--train-limit 4000] [--test-limit 2000] [--num-cpus N]      # make bench-ray

After a warm-up on a tiny grid (data, numba's kernel cache, torch; in this process and in
every Ray worker), both runs start from an empty weights cache in a temporary directory, so each
trains and evaluates the whole grid (one training job per seed, one evaluation job per seed and
mode). The serial baselines are the default path, ``grid.run`` in this process, with
torch and numba on 1 thread and on all cores (``--serial-threads``). The Ray run makes every job
a 1-CPU task on a local Ray with ``--num-cpus`` CPUs. Printed, all measured in this one run: the
wall times, the ratios, and Ray's start-up overhead (``ray.init`` plus the Ray warm-up's excess
over the serial one), which a long sweep pays once. The results are compared field by field
(timings aside); float32 training sums can depend on torch's thread count, so a difference there
is reported, not hidden.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from .. import grid
from ..accuracy import parse_seeds
from ..executor import RayExecutor, set_task_threads
from ..store import stored_key

TIMING_FIELDS = ("created", "train_wall_s", "eval_wall_s", "host")


def _differing(a: dict, b: dict) -> int:
    ka = {stored_key(r): r for r in a["runs"]}
    kb = {stored_key(r): r for r in b["runs"]}
    bad = len(set(ka) ^ set(kb))
    for k in set(ka) & set(kb):
        fields = (set(ka[k]) | set(kb[k])) - set(TIMING_FIELDS)
        bad += any(ka[k].get(f) != kb[k].get(f) for f in fields)
    return bad


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; see the module docstring."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="fashion",
                   help="dataset (default fashion: Debian's dataset-fashion-mnist, offline)")
    p.add_argument("--seeds", default="0,1", type=parse_seeds)
    p.add_argument("--modes", default="fp32,lmul")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--train-limit", type=int, default=4000)
    p.add_argument("--test-limit", type=int, default=2000)
    p.add_argument("--num-cpus", type=int, default=os.cpu_count() or 1,
                   help="CPUs of the local Ray (default: all cores)")
    p.add_argument("--serial-threads", default=None,
                   help="comma-separated torch/numba thread counts of the serial baselines "
                        "(default: 1 and --num-cpus, the runner's `--threads` default)")
    args = p.parse_args(argv)
    try:
        threads = list(dict.fromkeys(int(t) for t in (args.serial_threads or "").split(",")
                                     if t.strip())) or list(dict.fromkeys([1, args.num_cpus]))
    except ValueError:
        p.error(f"--serial-threads {args.serial_threads!r}: integers expected")
    if min(args.epochs, args.train_limit, args.test_limit, args.num_cpus, *threads) < 1:
        p.error("--epochs, --train-limit, --test-limit, --num-cpus and --serial-threads must "
                "be >= 1")
    modes = [m for m in args.modes.split(",") if m.strip()]
    jobs = [grid.Job([args.dataset], args.seeds, args.epochs)]
    kw = {"test_limit": args.test_limit, "train_limit": args.train_limit, "progress": False,
          "log": lambda m: None}
    cells = len(args.seeds) * len(modes)
    print(f"grid: {args.dataset}, seeds {args.seeds}, modes {modes}, {args.epochs} epoch(s), "
          f"train {args.train_limit}, test {args.test_limit}: {len(args.seeds)} training + "
          f"{cells} evaluation jobs; {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}", flush=True)

    # Warm-up (timed apart): a tiny grid, so data provisioning, numba's kernel cache and torch's
    # first passes are paid before the measured runs, in this process and in every Ray worker.
    warm = [grid.Job([args.dataset], list(range(args.num_cpus)), 1)]
    warm_kw = {**kw, "train_limit": 256, "test_limit": 100}
    with tempfile.TemporaryDirectory(prefix="bench_ray.") as tmp:
        t_serial: dict[int, float] = {}
        for n in threads:
            set_task_threads(n)
            t0 = time.perf_counter()
            grid.run(warm, modes, Path(tmp, f"warm_s{n}.json"),
                     weights_dir=Path(tmp, f"wws{n}"), **warm_kw)
            t_warm_serial = time.perf_counter() - t0
            t0 = time.perf_counter()
            serial = grid.run(jobs, modes, Path(tmp, f"serial{n}.json"),
                              weights_dir=Path(tmp, f"ws{n}"), **kw)
            t_serial[n] = time.perf_counter() - t0
            if len(serial.doc["runs"]) != cells:
                print(f"error: the serial run measured {len(serial.doc['runs'])} of {cells} "
                      "cells", file=sys.stderr)
                return 1

        t0 = time.perf_counter()
        ex = RayExecutor(num_cpus=args.num_cpus)
        t_init = time.perf_counter() - t0
        try:
            t0 = time.perf_counter()
            grid.run(warm, modes, Path(tmp, "warm_r.json"), weights_dir=Path(tmp, "wwr"),
                     executor=ex, **warm_kw)
            t_warm_ray = time.perf_counter() - t0
            t0 = time.perf_counter()
            par = grid.run(jobs, modes, Path(tmp, "ray.json"), weights_dir=Path(tmp, "wr"),
                           executor=ex, **kw)
            t_ray = time.perf_counter() - t0
        finally:
            ex.close()
    diff = _differing(serial.doc, par.doc)
    print(f"ray ({args.num_cpus} CPUs, 1-CPU tasks): {t_ray:7.2f} s")
    for n, t in t_serial.items():
        print(f"serial (in-process, torch and numba {n} thread(s)): {t:7.2f} s   "
              f"ratio ray/serial {t_ray / t:.2f}")
    startup = t_init + t_warm_ray - t_warm_serial
    print(f"ray start-up: ray.init {t_init:.2f} s; warm-up grid {t_warm_ray:.2f} s on Ray vs "
          f"{t_warm_serial:.2f} s serial; overhead {startup:.2f} s (a sweep pays it once)")
    print(f"results: {cells - min(diff, cells)} of {cells} cells identical field by field to "
          f"the last serial run (timings aside)"
          + ("" if not diff else "; differences come from torch's thread count in training"))
    print(f"load average now {os.getloadavg()[0]:.1f} (other processes skew both runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
