"""Benchmarks of the experiments (``make bench``, ``make bench-ray``) and their shared timer."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence


def best_time(fn: Callable[[], object], repeats: int,
              clock: Callable[[], float] = time.perf_counter) -> float:
    """Best time (s) of ``repeats`` calls after one warm-up call, on ``clock`` (wall time by
    default; on a shared machine the minimum is the least disturbed run)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return min(times)


def best_times_interleaved(fns: Sequence[Callable[[], object]], repeats: int,
                           clock: Callable[[], float] = time.perf_counter) -> list[float]:
    """Best time (s) of each of ``fns`` over ``repeats`` rounds, after one warm-up call each.

    Every round calls each function once, in turn, so a change of the machine's load (shared
    2-core hosts drift by 2x within seconds) falls on all of them alike; a ratio of two of the
    results compares runs made at the same moments, with the same number of tries each.
    """
    for fn in fns:
        fn()
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = clock()
            fn()
            best[i] = min(best[i], clock() - t0)
    return best
