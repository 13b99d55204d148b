"""The committed reference checkpoints (:mod:`experiments.weights`): hash, round trip, a corrupted
copy refused, and ``--retrain`` bypassing them. No training: ``lstm.train`` is replaced."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from experiments import accuracy, lstm, weights
from experiments.store import ResultsStore
from experiments.tests.helpers import spread_model, synthetic_images

KEY = "mnist-rows-h128-seed0-epoch1"


def test_committed_files_match_their_recorded_hashes() -> None:
    files = {p.stem for p in weights.REFERENCE_DIR.glob("*.npz")}
    assert files == set(weights.REFERENCE_SHA256), "a checkpoint without a hash, or vice versa"
    for key, sha in weights.REFERENCE_SHA256.items():
        raw = (weights.REFERENCE_DIR / f"{key}.npz").read_bytes()
        assert hashlib.sha256(raw).hexdigest() == sha, key


def test_committed_file_is_little_endian_float32_without_pickles() -> None:
    with np.load(weights.REFERENCE_DIR / f"{KEY}.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != "meta"}
    assert arrays and all(a.dtype == np.dtype("<f4") for a in arrays.values())
    assert arrays["lstm.weight_hh_l0"].shape == (4 * 128, 128)


def _fake_pt(tmp_path: Path, model: lstm.LSTMClassifier) -> Path:
    """A checkpoint-cache file shaped like the ones :func:`experiments.lstm.train` writes."""
    path = tmp_path / "tiny-seed0-epoch1.pt"
    torch.save({"model": model.state_dict(), "optimizer": {}, "generator": None,
                "train_loss": 0.5, "train_wall_s": 1.25, "epoch": 1}, path)
    return path


def test_round_trip_is_bit_identical(tmp_path: Path) -> None:
    model = spread_model(3, hidden=16)
    pt = _fake_pt(tmp_path, model)
    out = tmp_path / "tiny.npz"
    assert weights.main([str(pt), str(out)]) == 0
    sha = hashlib.sha256(out.read_bytes()).hexdigest()
    loaded, info = weights.load_reference(out, sha, 28, 10)
    original = torch.load(pt, weights_only=True)["model"]
    got = loaded.state_dict()
    assert got.keys() == original.keys()
    for k, v in original.items():
        assert got[k].dtype == torch.float32
        # Bit patterns, not values: -0.0 or a NaN payload must survive too.
        assert torch.equal(got[k].view(torch.int32), v.view(torch.int32)), k
    assert (info["train_loss"], info["train_wall_s"], info["epochs"]) == (0.5, 1.25, 1)


def _corrupt_copy(tmp_path: Path) -> Path:
    d = tmp_path / "ck"
    d.mkdir()
    path = d / f"{KEY}.npz"
    shutil.copyfile(weights.REFERENCE_DIR / f"{KEY}.npz", path)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 1  # one bit of one weight
    path.write_bytes(bytes(raw))
    return d


def test_corrupted_copy_is_refused(tmp_path: Path) -> None:
    d = _corrupt_copy(tmp_path)
    with pytest.raises(weights.CheckpointHashError, match="SHA-256") as err:
        weights.get_weights(synthetic_images("mnist"), "rows", 0, 1, None, None, False,
                            reference=True, reference_dir=d)
    assert "\n" not in str(err.value)


def test_well_hashed_but_malformed_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.npz"
    np.savez(path, w=np.zeros(3, dtype=">f4"), meta=np.frombuffer(b"{}", dtype=np.uint8))
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(weights.CheckpointHashError, match="malformed"):
        weights.load_reference(path, sha, 28, 10)


def _no_training(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []

    def fake_train(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[6])  # the tag
        return spread_model(0), {"train_loss": 1.0, "train_wall_s": 0.0}

    monkeypatch.setattr(lstm, "train", fake_train)
    return calls


def test_get_weights_prefers_the_reference_only_when_asked(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    calls = _no_training(monkeypatch)
    ds = synthetic_images("mnist")
    model, info = weights.get_weights(ds, "rows", 0, 1, None, None, False, reference=True)
    assert calls == [] and info["reference"] == f"{KEY}.npz"
    assert "using the committed reference checkpoint" in capsys.readouterr().err
    with np.load(weights.REFERENCE_DIR / f"{KEY}.npz", allow_pickle=False) as z:
        for k, v in model.state_dict().items():
            assert np.array_equal(v.numpy(), z[k]), k
    # Not asked (--retrain), a seed without a reference, or a training subset: trained.
    assert "mnist-rows-h128-seed7-epoch1" not in weights.REFERENCE_SHA256
    weights.get_weights(ds, "rows", 0, 1, None, None, False, reference=False)
    weights.get_weights(ds, "rows", 7, 1, None, None, False, reference=True)
    weights.get_weights(ds, "rows", 0, 1, 100, None, False, reference=True)
    assert calls == ["mnist-rows-h128", "mnist-rows-h128", "mnist-rows-h128-train100"]


def test_retrain_flag_reaches_the_grid(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[bool] = []

    def fake_run(*args: Any, **kw: Any) -> ResultsStore:
        seen.append(kw["reference"])
        return ResultsStore(tmp_path / "none.json")

    monkeypatch.setattr(accuracy, "run", fake_run)
    common = ["--preset", "experiment", "--no-report", "--threads", "1",
              "--out", str(tmp_path / "r.json")]
    accuracy.main(common)
    accuracy.main([*common, "--retrain"])
    assert seen == [True, False]
