"""Repository-wide pytest hooks: the regression knobs are checked before anything is collected.

A bad ``COCOTB_RANDOM_SEED``, ``LMUL_VECTORS``, ``LMUL_TILES``, ``LMUL_FULL`` or ``WAVES`` stops
pytest with one line naming the variable (exit status 4), not a traceback per test module.
"""

from __future__ import annotations

import pytest

from sim.lib import knobs


def pytest_configure(config: pytest.Config) -> None:
    try:
        knobs.check_all()
    except knobs.KnobError as err:
        raise pytest.UsageError(str(err)) from None


def pytest_report_header(config: pytest.Config) -> list[str]:
    """The seed and counts in every run's header, so that any failure can be replayed."""
    return ["regression knobs: " + " ".join(f"{k}={v}" for k, v in knobs.check_all().items())]
