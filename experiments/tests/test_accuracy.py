"""The runner resumes after an interruption without redoing finished work, and goes on past an
unavailable dataset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from experiments import accuracy, data, grid, lstm
from experiments.store import ResultsStore
from experiments.tests.helpers import synthetic_images


def _loader(calls: list[str]) -> Any:
    def load(name: str, root: Path | None) -> data.ImageData:
        calls.append(name)
        if name == "kmnist":
            raise data.DataUnavailableError("KMNIST: download failed (offline); provide it")
        return synthetic_images(name)
    return load


class _InterruptedError(Exception):
    pass


def test_runner_resumes_without_redoing_finished_runs(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "res" / "acc.json"
    jobs = [grid.Job(["mnist"], [0, 1], 1)]
    modes = ["fp32", "lmul", "seed"]
    evaluated: list[str] = []
    trained: list[tuple[int, int]] = []  # (seed, epoch training started from)
    real_eval, real_train = grid.evaluate, lstm.train

    def counting_eval(*args: Any, **kwargs: Any) -> dict[str, Any]:
        mode = args[3]
        if fail_at is not None and len(evaluated) == fail_at:
            raise _InterruptedError
        evaluated.append(mode.name)
        return real_eval(*args, **kwargs)

    def counting_train(*args: Any, **kwargs: Any) -> Any:
        model, info = real_train(*args, **kwargs)
        trained.append((args[3], info["resumed_from"]))
        return model, info

    monkeypatch.setattr(grid, "evaluate", counting_eval)
    monkeypatch.setattr(lstm, "train", counting_train)
    kw = {"test_limit": 20, "progress": False, "log": lambda m: None,
          "weights_dir": tmp_path / "w"}

    fail_at = 4  # interrupted during seed 1's second mode
    with pytest.raises(_InterruptedError):
        grid.run(jobs, modes, out, load_fn=_loader([]), **kw)
    doc = json.loads(out.read_text())
    assert [(r["seed"], r["mode"]) for r in doc["runs"]] == [
        (0, "fp32"), (0, "lmul"), (0, "seed"), (1, "fp32")]
    assert out.with_suffix(".csv").read_text().count("\n") == 5  # header + 4 runs
    assert trained == [(0, 0), (1, 0)]

    fail_at = None
    evaluated.clear()
    trained.clear()
    grid.run(jobs, modes, out, load_fn=_loader([]), **kw)
    assert evaluated == ["lmul", "seed"]  # only what was missing
    assert trained == [(1, 1)]  # seed 1's weights come from the checkpoint, no new epoch
    doc = json.loads(out.read_text())
    assert len(doc["runs"]) == 6
    assert {r["test_limit"] for r in doc["runs"]} == {20}
    assert all(r["n_test"] == 20 and 0 <= r["correct"] <= 20 for r in doc["runs"])
    by_mode = {(r["seed"], r["mode"]): r for r in doc["runs"]}
    assert by_mode[(1, "lmul")]["arithmetic"]["offset"] == 8

    calls: list[str] = []
    evaluated.clear()
    grid.run(jobs, modes, out, load_fn=_loader(calls), **kw)
    assert evaluated == [] and calls == []  # nothing to do: not even the data is loaded

    # A different test subset is a different result, so it runs.
    grid.run(jobs, ["fp32"], out, load_fn=_loader([]), **{**kw, "test_limit": 10})
    assert evaluated == ["fp32", "fp32"]


def test_unavailable_dataset_is_reported_and_others_run(tmp_path: Path) -> None:
    out = tmp_path / "acc.json"
    logs: list[str] = []
    store = grid.run([grid.Job(["kmnist", "mnist"], [0], 1)], ["fp32"], out,
                     load_fn=_loader([]), test_limit=10, progress=False, log=logs.append,
                     weights_dir=tmp_path / "w")
    assert [r["dataset"] for r in store.doc["runs"]] == ["mnist"]
    assert store.doc["unavailable"] == {"kmnist": "KMNIST: download failed (offline); provide it"}
    assert any(m.startswith("skipping kmnist: KMNIST: download failed") for m in logs)
    saved = json.loads(out.read_text())
    assert saved["unavailable"] == store.doc["unavailable"]


def test_cli_rejects_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--modes", "fp32,lmul:offset=999"], ["--datasets", "imagenet"],
                 ["--seq", "columns"], ["--epochs", "0"]):
        with pytest.raises(SystemExit) as err:
            accuracy.main(argv)
        assert err.value.code == 2
    assert "bad mode 'lmul:offset=999'" in capsys.readouterr().err


def test_seed_ranges() -> None:
    assert accuracy.parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert accuracy.parse_seeds("3,7,9-10") == [3, 7, 9, 10]
    assert accuracy.parse_seeds(" 2, 1,2,0-1 ") == [2, 1, 0]
    assert accuracy.parse_seeds(f"{2**32 - 1}") == [2**32 - 1]


def test_preset_dataset_selection(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[list[grid.Job]] = []

    def fake_run(jobs: list[grid.Job], modes: list[str], out: Path,
                 **kw: Any) -> ResultsStore:
        seen.append(jobs)
        return ResultsStore(tmp_path / "none.json")

    monkeypatch.setattr(accuracy, "run", fake_run)
    out = ["--out", str(tmp_path / "r.json")]
    accuracy.main(["--preset", "reproduce", "--datasets", "fashion", "--no-report",
                   "--threads", "1", *out])
    accuracy.main(["--preset", "reproduce", "--datasets", "mnist", "--seeds", "0-1",
                   "--no-report", "--threads", "1", *out])
    accuracy.main(["--datasets", "kmnist", "--epochs", "2", "--no-report", "--threads", "1",
                   *out])
    got = [[(j.datasets, j.seeds, j.epochs) for j in jobs] for jobs in seen]
    assert got == [[(["fashion"], [0, 1, 2, 3, 4], 3)],
                   [(["mnist"], [0, 1], 3), (["mnist"], [0, 1], 5)],
                   [(["kmnist"], [0], 2)]]
    with pytest.raises(SystemExit):
        accuracy.main(["--preset", "experiment", "--datasets", "fashion"])
