"""Benchmarks of the experiments (``make bench``, ``make bench-ray``) and their shared timer."""

from __future__ import annotations

import time
from collections.abc import Callable


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
