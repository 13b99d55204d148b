"""Run a sweep's independent jobs in-process or on Ray, with one driver that owns every output.

Every study here is a grid of independent jobs (train a model, evaluate it in each arithmetic, ...)
whose results the *driver* writes. This module runs the jobs and hands each outcome back to the
driver as it finishes; jobs never write result files themselves, so the results file has exactly
one writer however many machines do the work.

    with make_executor("ray", address=None) as ex:        # or "serial" (the default everywhere)
        train = ex.submit(train_fn, cfg, name="train seed 0", cpus=1, retries=1)
        for mode in modes:
            ex.submit(eval_fn, train, mode, name=f"eval {mode}")   # a Handle argument: depends
        for out in ex.as_completed(desc="grid"):
            if out.ok: store(out.handle, out.value)               # the driver writes
            else: record(out.handle, out.error)

* :class:`SerialExecutor` runs the jobs one after another in this process, in submission order
  (dependencies permitting), with no extra dependency. With ``raise_errors`` it is a plain loop:
  the first exception a job raises propagates out of :meth:`Executor.as_completed` (the
  runners' default when no executor is given).
* :class:`RayExecutor` makes each job a Ray task declaring ``cpus`` CPUs. With no address,
  ``ray.init()`` starts a local Ray on this machine (``num_cpus`` CPUs, default all); with an
  address it joins a running cluster (``ray start --head`` on one node, ``ray start
  --address=HEAD:6379`` on the others, then ``address="HEAD:6379"`` or ``"auto"`` on a node).
  Ray is the optional extra ``pip install -e .[ray]``.

Semantics shared by both executors:

* A :class:`Handle` passed as a top-level positional or keyword argument makes the job depend on
  that job and receive its return value (on Ray through the object store: the value never goes
  back through the driver to reach the next node). ``deps`` adds ordering-only dependencies.
* A job that raises is run again up to ``retries`` more times; after the last attempt its outcome
  carries the error as ``"ExceptionType: message"``. Jobs that depend on a failed job are not run
  and fail with ``"dependency '<name>' failed: ..."``; every other job still runs.
* Threads: inside a Ray task, torch (when the job's module uses it) and numba are set to ``cpus``
  threads, so tasks sharing a node do not oversubscribe it. The serial executor leaves the
  process's thread settings alone (one job at a time uses them all).
* :meth:`Executor.as_completed` shows one tqdm bar over all jobs with running and failed counts.

Data that jobs share through files (datasets, cached weights) must be reachable on every node
under the same path: on a cluster use a shared filesystem for them, or provision each node.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import socket
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

EXECUTORS = ("serial", "ray")
RAY_VERSION = "2.60.0"


class ExecutorError(RuntimeError):
    """Bad executor use or set-up (unknown executor, Ray missing, unknown dependency)."""


@dataclass(frozen=True)
class Handle:
    """A submitted job: ``id`` is its submission index (0, 1, ...), ``name`` labels it."""

    id: int
    name: str


@dataclass(frozen=True)
class Outcome:
    """How a job ended: ``value`` when ``error`` is None, else the last attempt's error.

    ``attempts`` counts the runs made (0 when a dependency failed and the job never ran).
    """

    handle: Handle
    value: Any
    error: str | None
    attempts: int

    @property
    def ok(self) -> bool:
        """Whether the job returned a value."""
        return self.error is None


@dataclass
class _Job:
    handle: Handle
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    cpus: int
    retries: int
    deps: list[Handle]
    attempts: int = 0


def describe_error(exc: BaseException) -> str:
    """One line for an exception: ``"ValueError: message"`` (Ray's wrapper is unwrapped)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        exc = cause
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ").rstrip()


def set_task_threads(cpus: int) -> None:
    """Limit torch and numba to ``cpus`` threads in this thread.

    torch: set now if imported, else through ``OMP_NUM_THREADS``, which torch reads when the job
    imports it later (``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` also bind other OpenMP/BLAS code).
    """
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(cpus)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(cpus)
    import numba

    numba.set_num_threads(max(1, min(cpus, numba.config.NUMBA_NUM_THREADS)))


def _call_in_task(fn: Callable[..., Any], cpus: int, /, *args: Any, **kwargs: Any) -> Any:
    # Runs in the Ray worker, after ``fn`` (and so its module) was unpickled. Arguments stay at
    # the top level so that Ray resolves the ObjectRefs among them.
    set_task_threads(cpus)
    return fn(*args, **kwargs)


class Executor(ABC):
    """Common interface: :meth:`submit` jobs, then iterate :meth:`as_completed`.

    ``kind`` names the executor; ``concurrent`` says whether jobs may run at the same time (a
    driver gains nothing by submitting work ahead to one that runs them one by one).
    """

    kind: str = ""
    concurrent: bool = False

    def __init__(self) -> None:
        self._jobs: list[_Job] = []
        self._done: dict[int, Outcome] = {}
        self._failed = 0

    def submit(self, fn: Callable[..., Any], *args: Any, name: str | None = None, cpus: int = 1,
               deps: Sequence[Handle] = (), retries: int = 0, **kwargs: Any) -> Handle:
        """Queue ``fn(*args, **kwargs)`` as a job and return its handle.

        Args:
            fn: a module-level function (Ray pickles it by reference to its module).
            args, kwargs: arguments; a :class:`Handle` among them (top level only) is replaced by
                that job's return value and makes this job wait for it.
            name: label for the progress bar and errors (default ``fn.__name__ #id``).
            cpus: CPUs the job uses (Ray schedules by it; sets its torch/numba threads).
            deps: further jobs that must finish (successfully) first.
            retries: extra attempts after a failure (0: run once).
        """
        if cpus < 1:
            raise ExecutorError(f"cpus must be >= 1, got {cpus}")
        if retries < 0:
            raise ExecutorError(f"retries must be >= 0, got {retries}")
        hid = len(self._jobs)
        handle = Handle(hid, name or f"{getattr(fn, '__name__', 'job')} #{hid}")
        all_deps = list(deps) + [a for a in (*args, *kwargs.values()) if isinstance(a, Handle)]
        for d in all_deps:
            if not isinstance(d, Handle) or d.id >= hid or self._jobs[d.id].handle != d:
                raise ExecutorError(f"{handle.name}: dependency {d!r} was not submitted here")
        self._jobs.append(_Job(handle, fn, tuple(args), dict(kwargs), cpus, retries,
                               list(dict.fromkeys(all_deps))))
        return handle

    def as_completed(self, *, progress: bool = True, desc: str = "jobs") -> Iterator[Outcome]:
        """Run everything submitted (also jobs submitted while iterating); yield each outcome.

        One tqdm bar counts finished jobs out of all submitted, with running and failed counts.
        """
        bar = tqdm(total=len(self._jobs), desc=desc, unit="job", disable=not progress,
                   dynamic_ncols=True)
        try:
            for out in self._iterate(bar):
                self._failed += not out.ok
                bar.total = len(self._jobs)
                bar.update(1)
                bar.set_postfix_str(f"running {self._running()}, failed {self._failed}")
                yield out
        finally:
            bar.close()

    def close(self) -> None:  # noqa: B027 (nothing to release in the serial case)
        """Release resources (cancel unfinished work; stop a Ray this executor started)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------------------- internals

    @abstractmethod
    def _iterate(self, bar: tqdm) -> Iterator[Outcome]:
        ...

    @abstractmethod
    def _running(self) -> int:
        ...

    def _failed_dep(self, job: _Job) -> Outcome | None:
        for d in job.deps:
            dep = self._done[d.id]
            if not dep.ok:
                return Outcome(job.handle, None, f"dependency '{d.name}' failed: {dep.error}", 0)
        return None

    def _ready(self, job: _Job) -> bool:
        return all(d.id in self._done for d in job.deps)


class SerialExecutor(Executor):
    """Runs jobs in this process, one at a time, in submission order.

    Args:
        raise_errors: a job's exception propagates out of :meth:`as_completed` at once (no
            retries, no outcome), as in a plain loop; otherwise it is retried and reported in
            the job's :class:`Outcome`, like on Ray.
    """

    kind = "serial"

    def __init__(self, *, raise_errors: bool = False) -> None:
        super().__init__()
        self._next = 0
        self._busy = 0
        self._raise = raise_errors

    def _running(self) -> int:
        return self._busy

    def _iterate(self, bar: tqdm) -> Iterator[Outcome]:
        while self._next < len(self._jobs):
            job = self._jobs[self._next]
            self._next += 1
            out = self._failed_dep(job) or self._run(job, bar)
            self._done[job.handle.id] = out
            yield out

    def _run(self, job: _Job, bar: tqdm) -> Outcome:
        args = tuple(self._resolve(a) for a in job.args)
        kwargs = {k: self._resolve(v) for k, v in job.kwargs.items()}
        self._busy = 1
        bar.set_postfix_str(f"running 1, failed {self._failed}: {job.handle.name}")
        try:
            while True:
                job.attempts += 1
                if self._raise:
                    return Outcome(job.handle, job.fn(*args, **kwargs), None, job.attempts)
                try:
                    return Outcome(job.handle, job.fn(*args, **kwargs), None, job.attempts)
                except Exception as exc:
                    if job.attempts > job.retries:
                        return Outcome(job.handle, None, describe_error(exc), job.attempts)
        finally:
            self._busy = 0

    def _resolve(self, value: Any) -> Any:
        return self._done[value.id].value if isinstance(value, Handle) else value


def _import_ray() -> Any:
    if importlib.util.find_spec("ray") is None:
        raise ExecutorError(f"the ray executor needs Ray: pip install -e '.[ray]' "
                            f"(ray=={RAY_VERSION})")
    import ray

    return ray


def _probe(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast on a HOST:PORT nobody listens on (``ray.init`` would retry for minutes)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in host:
        return  # "auto", or a ray:// client address: left to Ray
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as err:
        raise ExecutorError(
            f"cannot reach a Ray cluster at {address} ({err.strerror or err}); start one with "
            "`ray start --head` on the head node and pass its HOST:6379") from None


class RayExecutor(Executor):
    """Runs each job as a Ray task; the driver (this process) collects the outcomes.

    Args:
        address: ``None`` starts a local Ray with ``num_cpus`` CPUs (default: all cores);
            otherwise the address of a running cluster (``HOST:PORT`` or ``"auto"``).
        num_cpus: CPUs of the local Ray (ignored with an address).
        quiet: keep Ray's start-up and worker log lines off the terminal.

    If Ray is already initialized in this process it is used as is and left running on close
    (an ``address`` must then name that same cluster, or be ``"auto"``).
    """

    kind = "ray"
    concurrent = True

    def __init__(self, address: str | None = None, num_cpus: int | None = None, *,
                 quiet: bool = True) -> None:
        super().__init__()
        ray = self._ray = _import_ray()
        self._owns = False
        if address:
            _probe(address)
        if ray.is_initialized():
            here = ray.get_runtime_context().gcs_address
            if address and address != "auto" and address != here:
                raise ExecutorError(f"this process is already connected to Ray at {here}; "
                                    f"cannot also join {address}")
        else:
            import logging

            opts: dict[str, Any] = {"log_to_driver": not quiet,
                                    "logging_level": logging.WARNING if quiet else logging.INFO}
            if address:
                try:
                    ray.init(address=address, **opts)
                except ConnectionError as err:
                    raise ExecutorError(f"cannot join Ray at {address}: {err}") from None
            else:
                ray.init(num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False,
                         **opts)
            self._owns = True
        self._remote = ray.remote(_call_in_task)
        self._refs: dict[int, Any] = {}        # job id -> ObjectRef of its (successful) result
        self._uses: dict[int, int] = {}        # job id -> dependents not finished yet
        self._inflight: dict[Any, _Job] = {}   # ObjectRef -> job
        self._waiting: list[_Job] = []         # submitted, dependencies not finished yet
        self._seen = 0

    @property
    def cluster_cpus(self) -> int:
        """CPUs Ray can schedule on (all nodes)."""
        return int(self._ray.cluster_resources().get("CPU", 0))

    def _running(self) -> int:
        return len(self._inflight)

    def _launch(self, job: _Job) -> None:
        def ref(v: Any) -> Any:
            if not isinstance(v, Handle):
                return v
            # A job submitted after its dependency's result was released gets the value.
            return self._refs[v.id] if v.id in self._refs else self._done[v.id].value

        job.attempts += 1
        call = self._remote.options(num_cpus=job.cpus, max_retries=0, name=job.handle.name)
        obj = call.remote(job.fn, job.cpus, *(ref(a) for a in job.args),
                          **{k: ref(v) for k, v in job.kwargs.items()})
        self._inflight[obj] = job

    def _iterate(self, bar: tqdm) -> Iterator[Outcome]:
        ray = self._ray
        while True:
            # Jobs submitted since the last round (possibly while the caller iterated).
            for job in self._jobs[self._seen:]:
                for d in job.deps:
                    self._uses[d.id] = self._uses.get(d.id, 0) + 1
                self._waiting.append(job)
            self._seen = len(self._jobs)
            settled: list[Outcome] = []
            still: list[_Job] = []
            # Hand Ray only what its CPUs can run now, so that "running" is true and later
            # jobs are not stuck behind a long queue (Ray's CPU total grows as nodes join).
            free = self.cluster_cpus - sum(j.cpus for j in self._inflight.values())
            for job in self._waiting:
                if not self._ready(job):
                    still.append(job)
                elif (bad := self._failed_dep(job)) is not None:
                    settled.append(bad)
                elif job.cpus <= free or not self._inflight:
                    self._launch(job)
                    free -= job.cpus
                else:
                    still.append(job)
            self._waiting = still
            for out in settled:
                self._finish(out)
                yield out
            if settled:
                continue  # their dependents may now be decidable
            if not self._inflight:
                if self._waiting:  # cannot happen: one ready job is always launched
                    raise ExecutorError("jobs wait on dependencies that never ran")
                if self._seen == len(self._jobs):
                    return
                continue
            bar.set_postfix_str(f"running {len(self._inflight)}, failed {self._failed}")
            ready, _ = ray.wait(list(self._inflight), num_returns=1)
            obj = ready[0]
            job = self._inflight.pop(obj)
            try:
                value = ray.get(obj)
            except Exception as exc:
                if job.attempts <= job.retries:
                    self._launch(job)
                    continue
                out = Outcome(job.handle, None, describe_error(exc), job.attempts)
            else:
                if self._uses.get(job.handle.id):
                    self._refs[job.handle.id] = obj
                out = Outcome(job.handle, value, None, job.attempts)
            self._finish(out)
            yield out

    def _finish(self, out: Outcome) -> None:
        self._done[out.handle.id] = out
        # Results no pending job needs leave the object store.
        for d in self._jobs[out.handle.id].deps:
            self._uses[d.id] -= 1
            if not self._uses[d.id]:
                self._refs.pop(d.id, None)

    def close(self) -> None:
        """Cancel unfinished tasks; shut Ray down if this executor started it."""
        for obj in list(self._inflight):
            self._ray.cancel(obj, force=True)
        self._inflight.clear()
        self._refs.clear()
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()
        self._owns = False


def make_executor(kind: str = "serial", *, address: str | None = None,
                  num_cpus: int | None = None) -> Executor:
    """The executor named ``kind`` (``serial`` or ``ray``); ``address`` needs ``ray``."""
    if kind == "serial":
        if address:
            raise ExecutorError("--address needs --executor ray")
        return SerialExecutor()
    if kind == "ray":
        return RayExecutor(address=address, num_cpus=num_cpus)
    raise ExecutorError(f"unknown executor {kind!r}: choose one of {', '.join(EXECUTORS)}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--executor``, ``--address``, ``--num-cpus``, ``--task-cpus``, ``--retries``."""
    g = parser.add_argument_group("execution (see experiments/executor.py)")
    g.add_argument("--executor", choices=EXECUTORS, default="serial",
                   help="serial: in this process (default); ray: each job a Ray task")
    g.add_argument("--address", default=None,
                   help="Ray cluster to join (HOST:PORT or auto; started with `ray start "
                        "--head`); default: start a local Ray")
    g.add_argument("--num-cpus", type=int, default=None,
                   help="CPUs of a local Ray (default: all cores)")
    g.add_argument("--task-cpus", type=int, default=1,
                   help="CPUs (torch/numba threads) per Ray task (default 1)")
    g.add_argument("--retries", type=int, default=1,
                   help="extra attempts for a failing job before its error is recorded "
                        "(default 1)")


@contextlib.contextmanager
def from_arguments(args: argparse.Namespace) -> Iterator[Executor | None]:
    """The executor the options of :func:`add_arguments` name, closed on exit; None for
    ``--executor serial``: the runners' default, this process with errors propagating
    (``SerialExecutor(raise_errors=True)``). Raises :class:`ExecutorError` as
    :func:`make_executor` does."""
    executor = (None if args.executor == "serial" else
                make_executor(args.executor, address=args.address, num_cpus=args.num_cpus))
    try:
        yield executor
    finally:
        if executor is not None:
            executor.close()


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Reject inconsistent execution options with a one-line error."""
    if args.address and args.executor != "ray":
        parser.error("--address needs --executor ray")
    if args.num_cpus is not None and args.num_cpus < 1:
        parser.error("--num-cpus must be >= 1")
    if args.task_cpus < 1:
        parser.error("--task-cpus must be >= 1")
    if args.retries < 0:
        parser.error("--retries must be >= 0")
    if args.executor == "ray" and importlib.util.find_spec("ray") is None:
        parser.error(f"--executor ray needs Ray: pip install -e '.[ray]' (ray=={RAY_VERSION})")
