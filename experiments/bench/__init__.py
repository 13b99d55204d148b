"""Benchmarks of the experiments (``make bench``, ``make bench-ray``) and their shared timer."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """Best wall time (s) of ``repeats`` calls after one warm-up call (on a shared machine the
    minimum is the least disturbed run)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)
