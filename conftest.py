"""Repository-wide pytest hooks: the regression knobs are checked before anything is collected.

A bad ``COCOTB_RANDOM_SEED``, ``LMUL_VECTORS``, ``LMUL_TILES``, ``LMUL_FULL`` or ``WAVES`` stops
pytest with one line naming the variable (exit status 4), not a traceback per test module.

The validated values are also fixtures (``random_seed``, ``full_run``, ``vector_count``), so that
tests which must not import ``sim`` (model/tests: the model depends on nothing of the project)
read the same values as the testbenches, parsed once, here.

``make test`` runs on pytest-xdist workers: the knobs are checked in the controller before any
worker starts (a bad value stops the run there, exit status 4) and again in each worker, which
inherits the environment; the header is the controller's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from sim.lib import knobs


@dataclass(frozen=True)
class _Knobs:
    random_seed: int
    full_run: bool
    vectors: int | None  # None: unset, each test's own default


_KNOBS = pytest.StashKey[_Knobs]()


def pytest_configure(config: pytest.Config) -> None:
    try:
        knobs.check_all()
        config.stash[_KNOBS] = _Knobs(knobs.random_seed(), knobs.full_run(),
                                      knobs.vector_count(0) or None)
    except knobs.KnobError as err:
        raise pytest.UsageError(str(err)) from None


def pytest_report_header(config: pytest.Config) -> list[str]:
    """The seed and counts in every run's header, so that any failure can be replayed."""
    return ["regression knobs: " + " ".join(f"{k}={v}" for k, v in knobs.check_all().items())]


@pytest.fixture(scope="session")
def random_seed(pytestconfig: pytest.Config) -> int:
    """``COCOTB_RANDOM_SEED``, validated (default 1): the seed of every random vector."""
    return pytestconfig.stash[_KNOBS].random_seed


@pytest.fixture(scope="session")
def full_run(pytestconfig: pytest.Config) -> bool:
    """``LMUL_FULL``, validated: True for 1/true/yes/on, False for 0/false/no/off or unset."""
    return pytestconfig.stash[_KNOBS].full_run


@pytest.fixture(scope="session")
def vector_count(pytestconfig: pytest.Config) -> Callable[[int], int]:
    """``vector_count(default)``: ``LMUL_VECTORS``, validated, or the test's ``default``."""
    vectors = pytestconfig.stash[_KNOBS].vectors
    return lambda default: default if vectors is None else vectors
