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

``--cpu-report=N`` ends the run with the N tests and test files that took the most CPU seconds,
each worker's total and the numba compile time among them (:func:`pytest_terminal_summary`):
CPU, not wall time, so that it means the same on a machine busy with other jobs.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import resource
import threading
import time
from collections import defaultdict
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


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--cpu-report", type=int, default=0, metavar="N",
        help="after the run, the N tests and test files that took the most CPU seconds (this "
             "process and the processes it waited for: simulators, compilers, command-line "
             "runs), each worker's total and numba's compile time; 0 (default): off")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("cpu_report") > 0:
        _CPU_REPORT.rows = []
        _count_numba_compile_time()
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


# ------------------------------------------------------------------------------- --cpu-report

class _CPU_REPORT:  # noqa: N801 (a namespace)
    #: (test id, worker, own CPU s, children's CPU s, numba compile s); None: no --cpu-report.
    rows: list[tuple[str, str, float, float, float]] | None = None


_CPU_START = pytest.StashKey[tuple[float, float, float]]()
#: numba compile seconds (CPU of the compiling thread) of this process so far, top-level calls.
_NUMBA_CPU = [0.0]
_NUMBA_DEPTH = threading.local()


def _cpu_now() -> tuple[float, float, float]:
    """(this process's user+system CPU s, its waited-for children's, numba compile s)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime, _NUMBA_CPU[0]


def _count_numba_compile_time() -> None:
    """Add the CPU time of each top-level ``Dispatcher.compile`` call (a load from numba's disk
    cache included, which takes milliseconds) to :data:`_NUMBA_CPU`. Without numba, nothing."""
    try:
        from numba.core.dispatcher import Dispatcher
    except ImportError:
        return
    compile_ = Dispatcher.compile
    if getattr(compile_, "_lmul_timed", False):
        return

    def compile_timed(self: Any, sig: Any) -> Any:
        depth = getattr(_NUMBA_DEPTH, "n", 0)
        _NUMBA_DEPTH.n = depth + 1
        start = time.thread_time()
        try:
            return compile_(self, sig)
        finally:
            _NUMBA_DEPTH.n = depth
            if depth == 0:
                _NUMBA_CPU[0] += time.thread_time() - start

    compile_timed._lmul_timed = True  # type: ignore[attr-defined]
    Dispatcher.compile = compile_timed


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    if _CPU_REPORT.rows is not None:
        item.stash[_CPU_START] = _cpu_now()
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """The teardown report carries the test's CPU seconds (setup, call and teardown) to the
    controller of an xdist run: ``("cpu_s", [own, children, numba compile])``."""
    outcome = yield
    if call.when == "teardown" and _CPU_START in item.stash:
        now, start = _cpu_now(), item.stash[_CPU_START]
        outcome.get_result().user_properties.append(
            ("cpu_s", [round(b - a, 3) for a, b in zip(start, now, strict=True)]))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "teardown" or _CPU_REPORT.rows is None:
        return
    for name, value in report.user_properties:
        if name == "cpu_s":
            node = getattr(report, "node", None)  # in an xdist controller: the worker that ran it
            worker = node.gateway.id if node is not None else "main"
            _CPU_REPORT.rows.append((report.nodeid, worker, *value))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int,
                            config: pytest.Config) -> None:
    """The ``--cpu-report`` tables: per worker, per test file and per test, CPU seconds of the
    test's process ("own", numba compiles included) plus those of the processes it waited for
    ("children"; a process it leaves running, such as a Ray cluster, is not counted)."""
    top, rows = config.getoption("cpu_report"), _CPU_REPORT.rows
    if top <= 0 or not rows or hasattr(config, "workerinput"):
        return
    write = terminalreporter.write_line
    terminalreporter.write_sep("=", "CPU seconds (own + children)")
    total = sum(r[2] + r[3] for r in rows)
    write(f"{len(rows)} tests, {total:.1f} CPU s, of which numba compiling "
          f"{sum(r[4] for r in rows):.1f} s")
    workers: defaultdict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    files: defaultdict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for nodeid, worker, own, kids, numba in rows:
        for acc in (workers[worker], files[nodeid.split("::")[0]]):
            acc[0] += own
            acc[1] += kids
            acc[2] += numba
    for worker, (own, kids, numba) in sorted(workers.items()):
        write(f"  {worker}: {own + kids:7.1f} (own {own:.1f}, children {kids:.1f}, "
              f"numba {numba:.1f})")
    for title, table in (("test files", [(k, *v) for k, v in files.items()]),
                         ("tests", [(r[0], r[2], r[3], r[4]) for r in rows])):
        write(f"{title}, most CPU first:")
        for name, own, kids, numba in sorted(table, key=lambda r: -(r[1] + r[2]))[:top]:
            write(f"  {own + kids:7.1f} (own {own:6.1f}, children {kids:6.1f}, "
                  f"numba {numba:5.1f})  {name}")


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
