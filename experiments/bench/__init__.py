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
                           clock: Callable[[], float] = time.perf_counter,
                           block: int = 1) -> list[float]:
    """Best time (s) of each of ``fns`` over ``repeats`` calls each, after one warm-up call each.

    The functions take turns, ``block`` consecutive calls at a time, so a change of the
    machine's load (shared 2-core hosts drift by 2x within seconds) falls on all of them alike;
    a ratio of two of the results compares runs made over the same stretch of time, with the
    same number of tries each. Blocks of several calls let each function also run after
    itself: torch's OpenMP workers spin for milliseconds after each of its operations and take
    a core from whatever runs next, which only the first call of a block pays.
    """
    if block < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    for fn in fns:
        fn()
    best = [float("inf")] * len(fns)
    done = 0
    while done < repeats:
        n = min(block, repeats - done)
        for i, fn in enumerate(fns):
            for _ in range(n):
                t0 = clock()
                fn()
                best[i] = min(best[i], clock() - t0)
        done += n
    return best
