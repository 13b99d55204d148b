"""pytest hooks for the RTL regressions: the replay knobs go into every run's header."""

from __future__ import annotations

import os


def pytest_report_header(config) -> list[str]:
    """Print the seed and counts so that any failure can be replayed from the log."""
    from common import random_seed

    return [
        f"RTL regressions: COCOTB_RANDOM_SEED={random_seed()} "
        f"LMUL_VECTORS={os.environ.get('LMUL_VECTORS') or '(per-testbench default)'} "
        f"LMUL_TILES={os.environ.get('LMUL_TILES') or '(default 40)'} "
        f"LMUL_FULL={os.environ.get('LMUL_FULL') or '0'}"
    ]
