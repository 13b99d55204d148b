"""Repository-wide pytest hooks: the regression knobs are checked before anything is collected.

A bad ``COCOTB_RANDOM_SEED``, ``LMUL_VECTORS``, ``LMUL_TILES``, ``LMUL_FULL`` or ``WAVES`` stops
pytest with one line naming the variable (exit status 4), not a traceback per test module.

The validated values are also fixtures (``random_seed``, ``full_run``, ``vector_count``), so that
tests which must not import ``sim`` (model/tests: the model depends on nothing of the project)
read the same values as the testbenches, parsed once, here.

``make test`` runs on pytest-xdist workers: the knobs are checked in the controller before any
worker starts (a bad value stops the run there, exit status 4) and again in each worker, which
inherits the environment; the header is the controller's.

Each worker also compiles a cached numba kernel under an exclusive ``flock`` beside the kernel's
cache index (:func:`_compile_kernels_once`): on a fresh clone, a worker that needs a kernel
another worker is compiling waits and then loads it from numba's on-disk cache instead of
compiling it a second time.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
    if hasattr(config, "workerinput"):  # a pytest-xdist worker
        _compile_kernels_once()


def _compile_kernels_once() -> None:
    """Serialize the compilation of each disk-cached numba kernel across processes.

    numba's ``Dispatcher.compile`` looks in the on-disk cache before it compiles and saves what
    it compiled; it is wrapped to hold an exclusive ``flock`` on ``<cache index>.lock`` meanwhile,
    so of two workers that want one kernel, the second waits for the first and then loads its
    result. Kernels without a disk cache (test copies of a kernel) compile as before. numba's
    own (reentrant) compiler lock is taken first, so one thread per process compiles, and each
    file lock once (a kernel compiling its cached callees re-enters ``compile``); the call graph
    has no cycles, so two processes cannot wait on each other. Without numba, nothing.
    """
    try:
        from numba.core.compiler_lock import global_compiler_lock
        from numba.core.dispatcher import Dispatcher
    except ImportError:
        return
    compile_ = Dispatcher.compile
    if getattr(compile_, "_lmul_once", False):
        return
    held: set[str] = set()

    def compile_once(self: Any, sig: Any) -> Any:
        index = getattr(getattr(getattr(self, "_cache", None), "_cache_file", None),
                        "_index_path", None)
        if index is None:
            return compile_(self, sig)
        with global_compiler_lock, contextlib.ExitStack() as stack:
            if index in held:
                return compile_(self, sig)
            try:
                os.makedirs(os.path.dirname(index), exist_ok=True)
                fd = os.open(index + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
            except OSError:  # an unwritable cache directory: numba will not cache either
                return compile_(self, sig)
            stack.callback(os.close, fd)
            fcntl.flock(fd, fcntl.LOCK_EX)
            held.add(index)
            stack.callback(held.discard, index)
            return compile_(self, sig)

    compile_once._lmul_once = True  # type: ignore[attr-defined]
    Dispatcher.compile = compile_once


#: Modules whose tests take tens of seconds each on a fresh clone (Verilator builds and Icarus runs
#: of the 4 x 4 arrays, proof slices, Ray clusters, cold numba compiles), longest first.
_LONG_MODULES = (
    "experiments/tests/test_cosim.py",
    "sim/test_mac_array.py",
    "experiments/tests/test_array_lstm.py",
    "sim/tests/test_prove_fp8.py",
    "sim/tests/test_prove.py",
    "experiments/tests/test_executor.py",
    "sim/tests/test_dot_model.py",
    "model/tests/test_kernels.py",
    "model/tests/test_fast_path.py",
    "sim/tests/test_fusesoc.py",
    "syn/tests/test_booth.py",
    "syn/tests/test_dot_sweep.py",
    "model/tests/test_matmul_fp32.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On pytest-xdist workers, the long modules first (longest processing time first).

    ``--dist worksteal`` hands each worker a contiguous share of the collection and an idle
    worker steals from the end of another's queue, so the run ends with whatever was collected
    last: with the long tests at the front, the last minutes run short tests on both workers
    instead of one worker finishing a long one alone. The order within a module is kept (its
    module-scoped fixtures stay together); a serial run keeps pytest's order.
    """
    if not hasattr(config, "workerinput"):
        return
    rank = {path: i for i, path in enumerate(_LONG_MODULES)}
    root = config.rootpath

    def key(item: pytest.Item) -> int:
        try:
            rel = item.path.relative_to(root).as_posix()
        except ValueError:
            return len(rank)
        return rank.get(rel, len(rank))

    items.sort(key=key)  # stable: the rest keep their order


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
