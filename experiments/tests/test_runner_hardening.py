"""Bad input to the accuracy runner ends in a one-line error naming it, before any work; nothing
recorded is lost: not to a bad --out, a malformed results file, or two runs sharing one file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from experiments import accuracy, data, grid, lstm, report
from experiments.modes import parse_mode
from experiments.store import ResultsStore, run_key, uses_fp32_products
from experiments.tests.helpers import synthetic_images
from sim.lib import fileio

REPO = Path(__file__).resolve().parents[2]
SNAPSHOTS = REPO / "docs" / "results"


def _record(seed: int, mode: str = "fp32", **extra: Any) -> dict[str, Any]:
    return {"dataset": "mnist", "seq": "rows", "seed": seed, "epochs": 1, "mode": mode,
            "train_limit": None, "test_limit": None, "n_test": 100, "correct": 90,
            "accuracy": 90.0, **extra}


def _results_file(path: Path, runs: list[dict[str, Any]]) -> bytes:
    text = json.dumps({"schema": report.SCHEMA, "runs": runs, "unavailable": {}}, indent=1)
    path.write_text(text)
    return path.read_bytes()


@pytest.fixture
def no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any run that gets past argument checking fails the test at once (no data, no training)."""
    def reached(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a bad argument got past the checks into run()")

    monkeypatch.setattr(accuracy, "run", reached)
    monkeypatch.delenv("LMUL_THREADS", raising=False)
    monkeypatch.delenv("NUMBA_NUM_THREADS", raising=False)


def _cli_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the CLI, expect argparse's exit 2; return the error line."""
    with pytest.raises(SystemExit) as exc:
        accuracy.main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[0].startswith("usage:") and ": error: " in lines[-1], err
    return lines[-1]


@pytest.mark.parametrize(("argv", "names"), [
    (["--seeds", "a"], ["--seeds", "'a'"]),
    (["--seeds", "99999999999999999999"], ["--seeds", "out of range"]),
    (["--seeds", "3-1"], ["--seeds", "empty"]),
    (["--seeds", "-1"], ["--seeds"]),
    (["--seeds", ","], ["--seeds", "no seed"]),
    (["--seeds", "0-99999999"], ["--seeds", "more than"]),
    (["--modes", ","], ["--modes", "no mode"]),
    (["--modes", "fp32,lmul:offset=999"], ["--modes", "lmul:offset=999"]),
    (["--batch-size", "0"], ["--batch-size", ">= 1"]),
    (["--batch-size", "-1"], ["--batch-size"]),
    (["--batch-size", "1e3"], ["--batch-size", "not an integer"]),
    (["--threads", "0"], ["--threads"]),
    (["--epochs", "0"], ["--epochs"]),
    (["--test-limit", "0"], ["--test-limit"]),
    (["--train-limit", "-5"], ["--train-limit"]),
    (["--datasets", ","], ["--datasets", "nothing"]),
    (["--datasets", "imagenet"], ["--datasets", "imagenet"]),
    (["--seq", ","], ["--seq", "nothing"]),
    (["--seq", "columns"], ["--seq", "columns"]),
    (["--out", "o.md"], ["--out", ".json"]),
    (["--out", "o.csv"], ["--out", ".json"]),
    (["--out", "/dev/full"], ["--out", "/dev/full", "not a regular file"]),
])
def test_bad_arguments_give_one_line_naming_them(argv: list[str], names: list[str],
                                                 tmp_path: Path, no_work: None,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = [] if "--out" in argv else ["--out", str(tmp_path / "r.json")]
    line = _cli_error([*argv, *out], capsys)
    for name in names:
        assert name in line


def test_unusable_out_is_refused_before_any_work(tmp_path: Path, no_work: None,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "dir.json").mkdir()
    os.mkfifo(tmp_path / "fifo.json")
    (tmp_path / "full.json").symlink_to("/dev/full")
    (tmp_path / "plain").write_text("x")
    readonly = tmp_path / "ro.json"
    before = _results_file(readonly, [_record(0)])
    readonly.chmod(0o444)
    cases = {
        tmp_path / "dir.json": "is a directory",
        tmp_path / "fifo.json": "not a regular file",
        tmp_path / "full.json": "not a regular file",
        tmp_path / "plain" / "r.json": "cannot create its directory",
        readonly: "read-only",
    }
    for path, why in cases.items():
        line = _cli_error(["--out", str(path)], capsys)
        assert "--out" in line and str(path) in line and why in line
    assert readonly.read_bytes() == before
    line = _cli_error(["--out", str(tmp_path / "r.json"),
                       "--weights-dir", str(tmp_path / "plain")], capsys)
    assert "--weights-dir" in line and "not a directory" in line
    with pytest.raises(report.ResultsError, match="read-only"):
        ResultsStore(readonly)
    with pytest.raises(report.ResultsError, match=r"\.json"):
        ResultsStore(tmp_path / "r.md")


def test_thread_variables_are_checked_but_help_works(tmp_path: Path, no_work: None,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = ["--out", str(tmp_path / "r.json")]
    monkeypatch.setenv("LMUL_THREADS", "abc")
    with pytest.raises(SystemExit) as exc:
        accuracy.main(["--help"])
    assert exc.value.code == 0 and "LMUL_THREADS" in capsys.readouterr().out
    assert "LMUL_THREADS='abc'" in _cli_error(out, capsys)
    monkeypatch.setenv("LMUL_THREADS", "0")
    assert "LMUL_THREADS='0'" in _cli_error(out, capsys)
    monkeypatch.setenv("LMUL_THREADS", "1")
    monkeypatch.setenv("NUMBA_NUM_THREADS", "0")
    assert "NUMBA_NUM_THREADS='0'" in _cli_error(out, capsys)


def test_thread_variables_from_the_shell(tmp_path: Path) -> None:
    # Fresh interpreters: numba reads its variable when the kernels are first imported.
    env = {**os.environ, "LMUL_DATA_DIR": str(tmp_path / "data"), "PIP_NO_INDEX": "1"}
    env.pop("LMUL_THREADS", None)
    cmd = [sys.executable, "-m", "experiments.accuracy", "--out", str(tmp_path / "r.json"),
           "--test-limit", "1", "--train-limit", "1", "--no-progress"]
    proc = subprocess.run(cmd, cwd=REPO, env={**env, "NUMBA_NUM_THREADS": "0"},
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "NUMBA_NUM_THREADS='0'" in proc.stderr.strip().splitlines()[-1]
    helped = subprocess.run([*cmd, "--help"], cwd=REPO, env={**env, "LMUL_THREADS": "abc"},
                            capture_output=True, text=True, timeout=120, check=False)
    assert helped.returncode == 0 and "--batch-size" in helped.stdout, helped.stderr


@pytest.mark.parametrize(("bad", "field", "why"), [
    ({"accuracy": None}, "accuracy", "missing"),
    ({"seed": "0"}, "seed", "an integer"),
    ({"epochs": True}, "epochs", "an integer"),
    ({"accuracy": "high"}, "accuracy", "a finite number"),
    ({"accuracy": 150.0}, "accuracy", "outside"),
    ({"batch_size": 0}, "batch_size", ">= 1"),
    ({"test_limit": "all"}, "test_limit", "an integer or null"),
])
def test_malformed_results_file_is_named_and_untouched(
        bad: dict[str, Any], field: str, why: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "r.json"
    broken = {**_record(1, "lmul"), **bad}
    if bad.get("accuracy", 0) is None:
        del broken["accuracy"]
    before = _results_file(path, [_record(0), broken])

    with pytest.raises(report.ResultsError) as err:
        ResultsStore(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: run #1 (mnist rows seed ") and f"'{field}'" in msg
    assert why in msg and "\n" not in msg

    def no_data(*args: Any) -> data.ImageData:
        raise AssertionError("data loaded despite a malformed results file")

    monkeypatch.setattr(data, "load", no_data)
    monkeypatch.delenv("NUMBA_NUM_THREADS", raising=False)
    assert accuracy.main(["--out", str(path), "--modes", "fp32", "--seeds", "5",
                          "--no-progress", "--threads", "1"]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"accuracy: error: {msg}"
    assert report.main([str(path), "--no-plot"]) == 1
    assert path.read_bytes() == before
    assert not (tmp_path / "r.csv").exists() and not (tmp_path / "r.md").exists()


# Results written before the batch size joined the key: the reproduce and experiment snapshots
# as they were committed then (the current ones are re-measured, with the key).
OLD_FORMAT = (Path(__file__).parent / "data" / "reproduce_before_batch_key.json",
              Path(__file__).parent / "data" / "experiment_before_batch_key.json")


def test_committed_snapshots_still_load_and_tabulate_identically(tmp_path: Path) -> None:
    current = report.load_results(SNAPSHOTS / "experiment.json")
    assert current["runs"] and all(r["batch_size"] == 1000 for r in current["runs"])
    assert report.markdown_table(current) == (SNAPSHOTS / "experiment.md").read_text()
    for src in OLD_FORMAT:
        name = src.stem
        doc = report.load_results(src)
        assert doc["runs"] and all("batch_size" not in r for r in doc["runs"])
        assert report.markdown_table(doc) == src.with_suffix(".md").read_text()
        copy = tmp_path / f"{name}.json"
        copy.write_bytes(src.read_bytes())
        store = ResultsStore(copy)
        assert len(store.doc["runs"]) == len(doc["runs"])
        # Old runs were all made with the default batch, and count as such; their float32
        # products were BLAS-ordered, so their fp32 rows no longer stand for the fixed order.
        blas = [r for r in doc["runs"] if uses_fp32_products(r["mode"])]
        assert blas and len(blas) < len(doc["runs"])
        assert all(store.has(run_key({**r, "batch_size": 1000, "fp32_order": "blas"}))
                   for r in doc["runs"])
        assert all(store.has(run_key({**r, "batch_size": 1000})) for r in doc["runs"]
                   if r not in blas)
        assert not any(store.has(run_key({**r, "batch_size": 1000})) for r in blas)
        assert not any(store.has(run_key({**r, "batch_size": 999})) for r in doc["runs"])


def test_batch_size_is_checked_and_part_of_the_key(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    wts = lstm.CellWeights(np.zeros((29, 8), np.float32), np.zeros(8, np.float32),
                           np.zeros((2, 3), np.float32), np.zeros(3, np.float32))
    x = np.zeros((5, 2, 1), np.float32)
    for bad in (0, -1):
        with pytest.raises(ValueError, match="batch_size"):
            lstm.predict(wts, x, parse_mode("fp32"), batch_size=bad, progress=False)

    out = tmp_path / "r.json"
    evaluated: list[int] = []
    real_eval = grid.evaluate

    def counting_eval(*args: Any, **kwargs: Any) -> dict[str, Any]:
        evaluated.append(args[4])
        return real_eval(*args, **kwargs)

    kw: dict[str, Any] = {"test_limit": 24, "train_limit": 64, "progress": False,
                          "log": lambda m: None, "weights_dir": tmp_path / "w",
                          "load_fn": lambda name, root: synthetic_images(name, 128, 24, seed=1)}
    jobs = [grid.Job(["mnist"], [0], 1)]
    with pytest.raises(ValueError, match="batch_size"):
        grid.run(jobs, ["fp32"], out, batch_size=-1, **kw)
    with pytest.raises(ValueError, match="seed"):
        grid.run([grid.Job(["mnist"], [-1], 1)], ["fp32"], out, **kw)
    assert not out.exists()

    # A run recorded before the batch size was stored counts as the default batch: skipped.
    legacy = {**_record(0), "test_limit": 24, "train_limit": 64, "n_test": 24,
              "fp32_order": "fixed"}
    _results_file(out, [legacy])
    monkeypatch.setattr(grid, "evaluate", counting_eval)
    grid.run(jobs, ["fp32"], out, **kw)
    assert evaluated == []
    grid.run(jobs, ["fp32"], out, batch_size=7, **kw)
    grid.run(jobs, ["fp32"], out, batch_size=7, **kw)
    assert evaluated == [7]
    runs = json.loads(out.read_text())["runs"]
    assert [r.get("batch_size") for r in runs] == [None, 7]
    assert runs[0] == legacy
    table = report.write_report(out, make_plot=False)
    assert "| mnist (train 64) |" in table and "| mnist (train 64) (batch 7) |" in table
    assert out.with_suffix(".csv").read_text().splitlines()[1:] != []


def test_report_never_overwrites_the_results(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    odd = tmp_path / "r.md"  # a results file with an unlucky name
    before = _results_file(odd, [_record(0)])
    report.write_report(odd, make_plot=False)
    assert odd.read_bytes() == before
    assert (tmp_path / "r.md.md").read_text().startswith("| dataset |")
    path = tmp_path / "r.json"
    before = _results_file(path, [_record(0)])
    assert report.main([str(path), "--md", str(path), "--no-plot"]) == 1
    assert report.main([str(path), "--png", str(path)]) == 1
    assert "would overwrite the results file" in capsys.readouterr().err
    assert path.read_bytes() == before


def test_corrupt_local_kmnist_is_called_corrupt(tmp_path: Path) -> None:
    raw = tmp_path / "KMNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (raw / name).write_bytes(b"\x00\x00\x08\x03" + b"\x00\x00\x00\x09" * 3 + b"short")
    with pytest.raises(data.DataError) as err:
        data.ensure("kmnist", tmp_path)
    msg = str(err.value)
    assert not isinstance(err.value, data.DataUnavailableError)
    assert msg.startswith("KMNIST: ") and "corrupt" in msg and "download failed" not in msg
    assert str(tmp_path) in msg and "\n" not in msg


_WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from experiments.store import ResultsStore
    out, me, other, seed = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
    store = ResultsStore(out)
    me.touch()
    t0 = time.monotonic()
    while not other.exists():  # both have read the file before either writes
        assert time.monotonic() - t0 < 60, "the other writer never started"
        time.sleep(0.01)
    for k in range(int(sys.argv[5])):
        store.add({"dataset": "mnist", "seq": "rows", "seed": seed, "epochs": 1 + k,
                   "mode": "fp32", "train_limit": None, "test_limit": None, "batch_size": 1,
                   "n_test": 10, "correct": 9, "accuracy": 90.0})
""")

_CLI = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from experiments import accuracy, data
    from experiments.tests.helpers import synthetic_images
    me, other = Path(sys.argv[1]), Path(sys.argv[2])

    def load(name, root):
        # Called after the runner has read the results file: hold until the other run has too.
        me.touch()
        t0 = time.monotonic()
        while not other.exists():
            assert time.monotonic() - t0 < 60, "the other run never started"
            time.sleep(0.01)
        return synthetic_images(name, 64, 16, seed=2)

    data.load = load
    sys.exit(accuracy.main(sys.argv[3:]))
""")


def _start(code: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    env.pop("NUMBA_NUM_THREADS", None)
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finish(procs: list[subprocess.Popen[str]]) -> None:
    for p in procs:
        _, err = p.communicate(timeout=180)
        assert p.returncode == 0, err


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    out, n = tmp_path / "r.json", 10
    a, b = tmp_path / "a.ready", tmp_path / "b.ready"
    _finish([_start(_WRITER, str(out), str(a), str(b), "0", str(n)),
             _start(_WRITER, str(out), str(b), str(a), "1", str(n))])
    runs = report.load_results(out)["runs"]
    assert sorted((r["seed"], r["epochs"]) for r in runs) == [
        (s, 1 + k) for s in (0, 1) for k in range(n)]
    assert len(out.with_suffix(".csv").read_text().splitlines()) == 1 + 2 * n
    assert fileio.lock_path(out).exists()


def test_two_cli_runs_on_one_out_keep_all_results(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    a, b = tmp_path / "a.ready", tmp_path / "b.ready"
    common = ["--datasets", "mnist", "--modes", "fp32", "--test-limit", "16",
              "--out", str(out), "--weights-dir", str(tmp_path / "w"), "--threads", "1",
              "--no-progress", "--no-report"]
    _finish([_start(_CLI, str(a), str(b), "--seeds", "0", *common),
             _start(_CLI, str(b), str(a), "--seeds", "1", *common)])
    runs = report.load_results(out)["runs"]
    assert sorted((r["seed"], r["mode"]) for r in runs) == [(0, "fp32"), (1, "fp32")]
