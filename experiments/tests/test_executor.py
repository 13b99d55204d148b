"""The shared executor: serial and Ray runs give the same outcomes, failures stay contained.

Ray tests share one local 2-CPU Ray (module fixture) and are skipped only when Ray is not
installed (``pip install -e .[ray]``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numba
import numpy as np
import pytest
import torch

from experiments import accuracy, data, grid, lstm
from experiments import executor as ex_mod
from experiments.executor import ExecutorError, Outcome, RayExecutor, SerialExecutor
from experiments.modes import parse_mode
from experiments.report import load_results
from experiments.store import run_key
from experiments.tests.helpers import synthetic_images

REPO = Path(__file__).resolve().parents[2]
HAVE_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAVE_RAY, reason="Ray is not installed (pip install -e .[ray])")


# ------------------------------------------------------------------ toy jobs (module level: Ray
# workers import them by name)

def square(x: int) -> int:
    return x * x


def add(a: int, b: int, c: int = 0) -> int:
    return a + b + c


def boom(x: int) -> int:
    raise ValueError(f"bad input {x}")


def flaky(marker_dir: str, fails: int) -> str:
    """Fail the first ``fails`` attempts (counted with files, since attempts may run anywhere)."""
    d = Path(marker_dir)
    d.mkdir(parents=True, exist_ok=True)
    n = len(list(d.iterdir()))
    (d / f"attempt{n}").touch()
    if n < fails:
        raise RuntimeError(f"transient failure {n}")
    return f"ok after {n + 1}"


def rendezvous(me: str, other: str, box: str) -> str:
    """Finish only once the ``other`` job has started too: proof that both ran at once."""
    Path(box, me).touch()
    deadline = time.monotonic() + 60
    while not Path(box, other).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{me}: {other} never ran at the same time")
        time.sleep(0.02)
    return me


def crash_once(marker: str) -> str:
    """Kill the worker process on the first attempt, as a lost node would."""
    if not Path(marker).exists():
        Path(marker).touch()
        os._exit(1)
    return "survived"


def thread_counts() -> tuple[int, int, int]:
    return torch.get_num_threads(), numba.get_num_threads(), os.getpid()


def _graph(ex: ex_mod.Executor, tmp: Path) -> list[ex_mod.Handle]:
    """A small dependency graph with a transient failure, a permanent one and its dependents."""
    a = ex.submit(square, 3, name="a")
    b = ex.submit(square, 4, name="b")
    c = ex.submit(add, a, b, c=a, name="c")                       # 9 + 16 + 9
    d = ex.submit(boom, 7, name="d", retries=2)                   # fails 3 times
    e = ex.submit(add, c, d, name="e")                            # never runs
    f = ex.submit(square, 5, name="f", deps=[e])                  # ordering-only dep on e
    g = ex.submit(flaky, str(tmp / "flaky"), 1, name="g", retries=1)
    h = ex.submit(add, c, 1, name="h")
    return [a, b, c, d, e, f, g, h]


def _expected(handles: list[ex_mod.Handle]) -> list[Outcome]:
    a, b, c, d, e, f, g, h = handles
    dfail = "ValueError: bad input 7"
    efail = f"dependency 'd' failed: {dfail}"
    return [Outcome(a, 9, None, 1), Outcome(b, 16, None, 1), Outcome(c, 34, None, 1),
            Outcome(d, None, dfail, 3), Outcome(e, None, efail, 0),
            Outcome(f, None, f"dependency 'e' failed: {efail}", 0),
            Outcome(g, "ok after 2", None, 2), Outcome(h, 35, None, 1)]


def _run_all(ex: ex_mod.Executor) -> list[Outcome]:
    return sorted(ex.as_completed(progress=False), key=lambda o: o.handle.id)


# ---------------------------------------------------------------------------------- serial

def test_serial_runs_in_order_with_retries_and_contained_failures(tmp_path: Path) -> None:
    ex = SerialExecutor()
    handles = _graph(ex, tmp_path)
    got = list(ex.as_completed(progress=False))
    assert [o.handle.id for o in got] == list(range(8))  # submission order
    assert got == _expected(handles)
    assert len(list((tmp_path / "flaky").iterdir())) == 2


def test_serial_with_raise_errors_is_a_plain_loop(tmp_path: Path) -> None:
    ex = SerialExecutor(raise_errors=True)
    handles = _graph(ex, tmp_path)
    got: list[Outcome] = []
    with pytest.raises(ValueError, match="bad input 7"):
        for out in ex.as_completed(progress=False):
            got.append(out)
    assert got == _expected(handles)[:3]  # d raised on its first attempt, despite retries=2
    assert not ex.concurrent and RayExecutor.concurrent


@pytest.mark.parametrize("kind", ["serial", pytest.param("ray", marks=needs_ray)])
def test_jobs_submitted_while_iterating_are_run(kind: str, request: pytest.FixtureRequest
                                                ) -> None:
    if kind == "ray":
        request.getfixturevalue("ray_address")
    with ex_mod.make_executor(kind) as ex:
        first = ex.submit(square, 2)
        second = ex.submit(add, first, 1)
        seen = []
        for out in ex.as_completed(progress=False):
            seen.append(out.value)
            if out.handle == second:  # first's result is no longer held for a dependent
                ex.submit(add, first, out.handle)
        assert seen == [4, 5, 9]


def test_bad_use_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    other = SerialExecutor()
    foreign = other.submit(square, 1)
    ex = SerialExecutor()
    ex.submit(square, 1)
    ex.submit(square, 2)
    with pytest.raises(ExecutorError, match="was not submitted here"):
        ex.submit(square, ex_mod.Handle(1, "x"))
    with pytest.raises(ExecutorError, match="was not submitted here"):
        SerialExecutor().submit(square, foreign)
    with pytest.raises(ExecutorError, match="cpus must be >= 1"):
        ex.submit(square, 1, cpus=0)
    with pytest.raises(ExecutorError, match="retries must be >= 0"):
        ex.submit(square, 1, retries=-1)
    with pytest.raises(ExecutorError, match="unknown executor 'dask'"):
        ex_mod.make_executor("dask")
    with pytest.raises(ExecutorError, match="needs --executor ray"):
        ex_mod.make_executor("serial", address="auto")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda n, *a: None if n == "ray" else real(n, *a))
    with pytest.raises(ExecutorError, match=r"pip install -e '\.\[ray\]' \(ray==2\.60\.0\)"):
        ex_mod.make_executor("ray")


def test_unreachable_cluster_fails_fast() -> None:
    with pytest.raises(ExecutorError, match=r"cannot reach a Ray cluster at 127\.0\.0\.1:1 .*"
                                            r"ray start --head"):
        ex_mod._probe("127.0.0.1:1", timeout_s=2)
    ex_mod._probe("auto")  # left to Ray


def test_describe_error_is_one_line() -> None:
    assert ex_mod.describe_error(KeyError("k")) == "KeyError: 'k'"
    assert ex_mod.describe_error(RuntimeError("first\nsecond")) == "RuntimeError: first"
    assert ex_mod.describe_error(RuntimeError()) == "RuntimeError"


# ------------------------------------------------------------------------------------- Ray

@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """One local 2-CPU Ray for the whole module (start-up takes seconds); its GCS address."""
    if not HAVE_RAY:
        pytest.skip("Ray is not installed (pip install -e .[ray])")
    owner = RayExecutor(num_cpus=2)
    import ray

    try:
        assert owner.cluster_cpus == 2
        yield ray.get_runtime_context().gcs_address
    finally:
        owner.close()
    assert not ray.is_initialized()


@needs_ray
def test_ray_gives_the_serial_outcomes(ray_address: str, tmp_path: Path) -> None:
    serial = SerialExecutor()
    expected = _expected(_graph(serial, tmp_path / "s"))
    assert list(serial.as_completed(progress=False)) == expected
    ex = RayExecutor()
    handles = _graph(ex, tmp_path / "r")
    assert handles == [o.handle for o in expected]
    assert _run_all(ex) == expected
    assert len(list((tmp_path / "r" / "flaky").iterdir())) == 2
    ex.close()


@needs_ray
def test_ray_retries_a_task_whose_worker_died(ray_address: str, tmp_path: Path) -> None:
    ex = RayExecutor()
    ok = ex.submit(crash_once, str(tmp_path / "m1"), retries=1, name="retried")
    assert list(ex.as_completed(progress=False)) == [Outcome(ok, "survived", None, 2)]
    ex.close()


@needs_ray
def test_ray_runs_two_tasks_at_once_with_their_threads(ray_address: str, tmp_path: Path) -> None:
    ex = RayExecutor()
    box = tmp_path / "box"
    box.mkdir()
    ex.submit(rendezvous, "left", "right", str(box), name="left")
    ex.submit(rendezvous, "right", "left", str(box), name="right")
    one = ex.submit(thread_counts, cpus=1, name="one cpu")
    two = ex.submit(thread_counts, cpus=2, name="two cpus")
    out = {o.handle.name: o for o in ex.as_completed(progress=False)}
    assert out["left"].value == "left" and out["right"].value == "right", out
    assert out[one.name].value[:2] == (1, 1)
    assert out[two.name].value[:2] == (2, min(2, numba.config.NUMBA_NUM_THREADS))
    assert out[one.name].value[2] != os.getpid()  # really ran in a worker
    ex.close()


@needs_ray
def test_ray_executor_does_not_stop_a_ray_it_did_not_start(ray_address: str) -> None:
    import ray

    with socket.create_server(("", 0)) as other:  # something listens there, but not this Ray
        elsewhere = f"{ray_address.rsplit(':', 1)[0]}:{other.getsockname()[1]}"
        with pytest.raises(ExecutorError, match=r"already connected to Ray at .*cannot also join"):
            RayExecutor(address=elsewhere)
    ex = RayExecutor(address="auto")  # already initialized here: reused, not joined again
    h = ex.submit(square, 6)
    assert [o.value for o in ex.as_completed(progress=False)] == [36]
    assert h.id == 0
    ex.close()
    assert ray.is_initialized()


# ------------------------------------------------------------- the accuracy grid on an executor

SYNTH_TRAIN, SYNTH_TEST = 256, 40
TIMING_FIELDS = {"created", "train_wall_s", "eval_wall_s", "recipe_wall_s"}


def synthetic(name: str) -> data.ImageData:
    """The tiny learnable dataset, drawn per name."""
    return synthetic_images(name, SYNTH_TRAIN, SYNTH_TEST, seed=sum(map(ord, name)))


def synthetic_loader(name: str, root: Path | None) -> data.ImageData:
    if name == "kmnist":
        raise data.DataUnavailableError("KMNIST: download failed (offline); provide it")
    return synthetic(name)


def broken_loader(name: str, root: Path | None) -> data.ImageData:
    if name == "fashion":
        raise RuntimeError("disk on fire")
    return synthetic(name)


def held_loader(name: str, root: Path | None) -> data.ImageData:
    """Fashion-MNIST waits while ``<root>/hold`` exists: a driver can be killed mid-grid."""
    while name == "fashion" and root is not None and Path(root, "hold").exists():
        time.sleep(0.05)
    return synthetic(name)


def differences(serial: dict[str, Any], other: dict[str, Any]) -> list[str]:
    """Every way two results documents differ, timings aside ([] when they agree)."""
    def by_key(doc: dict[str, Any]) -> dict[tuple[Any, ...], dict[str, Any]]:
        return {run_key(r): r for r in doc["runs"]}

    a, b = by_key(serial), by_key(other)
    diffs = [f"only in one: {k}" for k in sorted(set(a) ^ set(b), key=str)]
    for k in sorted(set(a) & set(b), key=str):
        for f in sorted((set(a[k]) | set(b[k])) - TIMING_FIELDS):
            if a[k].get(f, "<missing>") != b[k].get(f, "<missing>"):
                diffs.append(f"{k} {f}: {a[k].get(f, '<missing>')!r} != "
                             f"{b[k].get(f, '<missing>')!r}")
    if serial.get("unavailable") != other.get("unavailable"):
        diffs.append(f"unavailable: {serial.get('unavailable')} != {other.get('unavailable')}")
    return diffs


def test_differences_sees_a_changed_result() -> None:
    run = {"dataset": "mnist", "seq": "rows", "seed": 0, "epochs": 1, "mode": "fp32",
           "accuracy": 90.0, "correct": 36, "created": "t0", "eval_wall_s": 1.0}
    doc = {"runs": [run], "unavailable": {}}
    later = {"runs": [{**run, "created": "t1", "eval_wall_s": 2.0}], "unavailable": {}}
    assert differences(doc, later) == []
    assert differences(doc, {"runs": [{**run, "correct": 35}], "unavailable": {}}) == [
        "('mnist', 'rows', 0, 1, 'fp32', None, None, 1000, 'fixed') correct: 36 != 35"]
    assert len(differences(doc, {"runs": [], "unavailable": {}})) == 1
    assert differences(doc, {"runs": [run], "unavailable": {"x": "y"}})


GRID = [grid.Job(["mnist", "kmnist"], [0, 1], 1)]
GRID_MODES = ["fp32", "lmul"]


# fp32-trained rows, and rows fine-tuned for one epoch on 64 images in each mode
GRID_KW: dict[str, Any] = {"test_limit": 20, "progress": False, "log": lambda m: None,
                           "load_fn": synthetic_loader, "recipes": ["fp32", "ft1@64"]}


@pytest.fixture(scope="module")
def serial_reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The grid's results from the default runner, ``grid.run`` in this process (computed once)."""
    tmp = tmp_path_factory.mktemp("serial")
    torch.set_num_threads(1)  # as the per-test fixture does: results record host.threads
    ref = grid.run(GRID, GRID_MODES, tmp / "serial.json", weights_dir=tmp / "w", **GRID_KW)
    assert len(ref.doc["runs"]) == 8 and "kmnist" in ref.doc["unavailable"]
    return ref.doc


@pytest.mark.parametrize("kind", ["serial", pytest.param("ray", marks=needs_ray)])
def test_grid_gives_the_serial_runners_results(kind: str, tmp_path: Path,
                                               serial_reference: dict[str, Any],
                                               request: pytest.FixtureRequest) -> None:
    if kind == "ray":
        request.getfixturevalue("ray_address")
    with ex_mod.make_executor(kind) as ex:
        got = grid.run(GRID, GRID_MODES, tmp_path / "grid.json", weights_dir=tmp_path / "wg",
                       executor=ex, **GRID_KW)
    assert differences(serial_reference, got.doc) == []
    assert differences(serial_reference, load_results(tmp_path / "grid.json")) == []
    # The grid trained its own weights (not the serial run's cache) and stored them.
    assert len(list((tmp_path / "wg").glob("mnist-*seed[01]-epoch1.pt"))) == 2


def test_evaluate_gives_the_kernels_writable_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ray hands a job's result to its dependents as read-only arrays; ``grid.evaluate`` passes
    writable copies on (numba would compile every kernel again for read-only arrays), the same
    values, and writable weights as they are."""
    seen: list[lstm.CellWeights] = []

    def predict(wts: lstm.CellWeights, x: Any, *args: Any, **kwargs: Any) -> np.ndarray:
        seen.append(wts)
        return np.zeros(len(x), np.int64)

    def logits(wts: lstm.CellWeights, x: Any, *args: Any, **kwargs: Any) -> np.ndarray:
        seen.append(wts)  # the slice_check's logits: the same writable weights
        return np.zeros((len(x), 3), np.float32)

    monkeypatch.setattr(lstm, "predict", predict)
    monkeypatch.setattr(lstm, "forward_logits", logits)
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in ((6, 8), (8,), (2, 3), (3,))]
    writable = lstm.CellWeights(*arrays)
    frozen = lstm.CellWeights(*(a.copy() for a in arrays))
    for a in (frozen.w, frozen.b, frozen.fc_w, frozen.fc_b):
        a.flags.writeable = False
    x, y = np.zeros((3, 28, 28), np.float32), np.zeros(3, np.int64)
    for wts in (frozen, writable):
        res = grid.evaluate(wts, x, y, parse_mode("fp32"), 8, False, "")
        assert res["correct"] == 3
    for got, a in zip((seen[0].w, seen[0].b, seen[0].fc_w, seen[0].fc_b), arrays, strict=True):
        assert got.flags.writeable and got.flags.c_contiguous and np.array_equal(got, a)
    assert seen[1] is seen[0]
    assert all(g is a for g, a in zip((seen[2].w, seen[2].b, seen[2].fc_w, seen[2].fc_b),
                                      arrays, strict=True))


@needs_ray
def test_grid_records_a_failing_job_and_keeps_the_rest(ray_address: str, tmp_path: Path) -> None:
    out = tmp_path / "acc.json"
    jobs = [grid.Job(["mnist", "fashion"], [0], 1)]
    logs: list[str] = []
    kw = {"test_limit": 20, "progress": False, "log": logs.append,
          "weights_dir": tmp_path / "w"}
    with RayExecutor() as ex:
        store = grid.run(jobs, GRID_MODES, out, load_fn=broken_loader, executor=ex,
                         retries=1, **kw)
    doc = load_results(out)
    # Ray finishes the two MNIST cells in either order; the file keeps completion order.
    assert sorted((r["dataset"], r["mode"]) for r in doc["runs"]) == [("mnist", "fp32"),
                                                                        ("mnist", "lmul")]
    why = "dependency 'train fashion/rows seed 0 1ep' failed: RuntimeError: disk on fire"
    assert sorted((f["dataset"], f["mode"], f["error"], f["attempts"]) for f in doc["failed"]) == [
        ("fashion", "fp32", why, 0), ("fashion", "lmul", why, 0)]
    assert any("train fashion/rows seed 0 1ep after 2 attempts" in m for m in logs), logs
    assert store.doc["runs"] == doc["runs"]
    # A rerun (fixed data) measures only the two failed cells and clears their errors.
    logs.clear()
    with SerialExecutor() as ex:
        grid.run(jobs, GRID_MODES, out, load_fn=synthetic_loader, executor=ex, **kw)
    assert logs[0].startswith("grid: 2 cells to run, 2 already in"), logs
    doc2 = load_results(out)
    assert doc2["runs"][:2] == doc["runs"] and len(doc2["runs"]) == 4
    assert doc2["failed"] == []


DRIVER = """
import sys
from pathlib import Path
from experiments import grid
from experiments.executor import RayExecutor
from experiments.tests.test_executor import GRID_MODES, held_loader
out, wdir, root, address = sys.argv[1:5]
with RayExecutor(address=address) as ex:
    grid.run([grid.Job(["mnist", "fashion"], [0], 1)], GRID_MODES, Path(out),
                 weights_dir=Path(wdir), data_root=Path(root), test_limit=20, progress=False,
                 load_fn=held_loader, executor=ex)
"""


@needs_ray
def test_killed_driver_resumes_with_only_the_missing_cells(ray_address: str,
                                                           tmp_path: Path) -> None:
    out, root = tmp_path / "res" / "acc.json", tmp_path / "data"
    root.mkdir()
    (root / "hold").touch()
    cmd = [sys.executable, "-c", DRIVER, str(out), str(tmp_path / "w"), str(root), ray_address]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    first = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out.exists() and len(json.loads(out.read_text())["runs"]) == 2):
            assert first.poll() is None, first.communicate()[0]
            assert time.monotonic() < deadline, "the MNIST cells never finished"
            time.sleep(0.1)
    finally:
        first.kill()  # SIGKILL: no clean-up code runs in the driver
        first.communicate()
    before = load_results(out)
    assert sorted(r["dataset"] for r in before["runs"]) == ["mnist", "mnist"]
    (root / "hold").unlink()
    # The rerun (here, to spare a second driver start-up) computes only the missing cells.
    logs: list[str] = []
    with RayExecutor() as ex:
        grid.run([grid.Job(["mnist", "fashion"], [0], 1)], GRID_MODES, out,
                     weights_dir=tmp_path / "w", data_root=root, test_limit=20, progress=False,
                     load_fn=held_loader, log=logs.append, executor=ex)
    assert logs[0] == f"grid: 2 cells to run, 2 already in {out} (ray executor)", logs
    after = load_results(out)
    assert after["runs"][:2] == before["runs"]
    assert sorted((r["dataset"], r["mode"]) for r in after["runs"][2:]) == [
        ("fashion", "fp32"), ("fashion", "lmul")]


def test_cli_rejects_bad_execution_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                           ) -> None:
    base = ["--out", str(tmp_path / "a.json"), "--no-progress", "--no-report"]
    with pytest.raises(SystemExit) as exc:
        accuracy.main([*base, "--address", "auto"])
    assert exc.value.code == 2
    assert "--address needs --executor ray" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        accuracy.main([*base, "--executor", "ray", "--retries", "-1"])
    assert "--retries must be >= 0" in capsys.readouterr().err
    if HAVE_RAY:  # nobody listens on port 1: a one-line error, not minutes of retries
        code = accuracy.main([*base, "--executor", "ray", "--address", "127.0.0.1:1"])
        assert code == 2
        assert "cannot reach a Ray cluster at 127.0.0.1:1" in capsys.readouterr().err
    assert not (tmp_path / "a.json").exists()


@needs_ray
def test_cli_runs_on_ray_with_one_flag(ray_address: str, tmp_path: Path) -> None:
    try:  # Fashion-MNIST ships with Debian (dataset-fashion-mnist): no download needed
        data.load("fashion", None)
    except data.DataError as err:
        pytest.skip(f"Fashion-MNIST not available: {err}")
    out = tmp_path / "exp.json"
    argv = ["--datasets", "fashion", "--modes", "fp32,lmul", "--train-limit", "128",
            "--test-limit", "30", "--out", str(out), "--no-progress", "--no-report"]
    assert accuracy.main([*argv, "--executor", "ray"]) == 0
    runs = load_results(out)["runs"]
    assert sorted(r["mode"] for r in runs) == ["fp32", "lmul"]
    assert {r["n_test"] for r in runs} == {30}
