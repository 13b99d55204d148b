"""A fresh checkout reproduces the committed accuracy snapshots from the committed reference
checkpoints, bit for bit, on a cheap slice; an altered checkpoint or manifest is refused.

The expected values are the ``slice_check`` of each snapshot record (the correct count and the
SHA-256 of the predicted classes over its first test images), written when the snapshot was
measured from the checkpoint named in the record, not computed by the code under test.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from experiments import data as data_mod
from experiments import grid, lstm, weights
from experiments.modes import parse_mode
from experiments.recipes import parse_recipe
from experiments.tests.helpers import spread_model, synthetic_images
from sim.lib.fileio import SNAPSHOT_DIR

#: Snapshots measured from reference checkpoints: every record names its checkpoint.
SNAPSHOTS = ("experiment", "act_accuracy", "reproduce", "tune", "tune_quick")

#: The rows re-evaluated of a snapshot whose first cell spans many checkpoints (tune's: float32
#: weights, fine-tuned and float32-control weights, from scratch; ~40 rows): the float32
#: weights in fp32 and L-Mul, an L-Mul-aware fine-tuned row and its float32 control. The other
#: snapshots: every row of the first cell.
SLICE_ROWS = {"tune": ("fp32", "lmul", "lmul [ft1]", "fp32 [ft1]"),
              "tune_quick": ("fp32", "lmul", "lmul [ft1]", "fp32 [ft1]")}


def _records(stem: str) -> list[dict[str, Any]]:
    doc = json.loads((SNAPSHOT_DIR / f"{stem}.json").read_text(encoding="utf-8"))
    return doc["runs"]


def _from_references(stem: str) -> bool:
    runs = _records(stem)
    return bool(runs) and all("checkpoint" in r and "slice_check" in r for r in runs)


@pytest.mark.parametrize("stem", SNAPSHOTS)
def test_snapshot_slice_is_reproduced_from_its_checkpoint(stem: str) -> None:
    runs = _records(stem)
    if not _from_references(stem):
        pytest.fail(f"docs/results/{stem}.json has records without a reference checkpoint or "
                    "slice_check: it was not measured from committed weights")
    # One cell (the first record's dataset, seed and epochs), every mode measured on it (or
    # the SLICE_ROWS of it).
    first = runs[0]
    cell = [r for r in runs if (r["dataset"], r["seed"], r["epochs"], r["train_limit"])
            == (first["dataset"], first["seed"], first["epochs"], first["train_limit"])]
    if stem in SLICE_ROWS:
        cell = [r for r in cell if r["mode"] in SLICE_ROWS[stem]]
        assert sorted(r["mode"] for r in cell) == sorted(SLICE_ROWS[stem])
        tuned = next(r for r in cell if r["mode"] == "lmul [ft1]")
        # The fine-tuned row evaluates its own (fine-tuned) checkpoint, not the float32 one.
        assert "-ft-from" in tuned["checkpoint"] and tuned["checkpoint"] != first["checkpoint"]
    else:
        assert all(r["checkpoint"] == first["checkpoint"] for r in cell)
    try:
        ds = data_mod.load(first["dataset"])
    except data_mod.DataError as err:
        pytest.skip(f"{first['dataset']} unavailable here: {err}")
    n = first["slice_check"]["n"]
    x = lstm.to_sequence(ds.test_x[:n], first["seq"])
    y = ds.test_y[:n]
    cell_weights: dict[str, lstm.CellWeights] = {}
    for r in cell:
        key = r["checkpoint"].removesuffix(".npz")
        assert weights.REFERENCE_SHA256[key] == r["checkpoint_sha256"], \
            f"{key} changed since {stem}'s snapshot was measured"
        if key not in cell_weights:
            model, _ = weights.load_reference(weights.REFERENCE_DIR / r["checkpoint"],
                                              r["checkpoint_sha256"], 28, ds.n_classes)
            cell_weights[key] = lstm.CellWeights.from_model(model)
        got = _slice(cell_weights[key], x, y, r.get("eval_mode", r["mode"]))
        assert got == r["slice_check"], f"{stem}: {r['dataset']} seed {r['seed']} {r['mode']}"
    # A broken arithmetic (the L-Mul offset one LSB off) must not pass this comparison.
    lmul_rows = [r for r in cell if r["mode"] == "lmul"]
    if lmul_rows:
        wts = cell_weights[lmul_rows[0]["checkpoint"].removesuffix(".npz")]
        wrong = _slice(wts, x, y, "lmul:offset=7")
        assert wrong["logits_sha256"] != lmul_rows[0]["slice_check"]["logits_sha256"]


def _slice(wts: lstm.CellWeights, x: np.ndarray, y: np.ndarray, mode: str) -> dict[str, Any]:
    """A record's ``slice_check`` recomputed: the logits of two batches (the snapshot's were
    computed in one), so a batch dependence would show too."""
    arith = parse_mode(mode)
    half = x.shape[0] // 2
    logits = np.concatenate([lstm.forward_logits(wts, x[:half], arith),
                             lstm.forward_logits(wts, x[half:], arith)])
    return grid.slice_check(lstm.predictions(logits), y, logits, x.shape[0])


def test_slice_check_tells_one_prediction_or_logit_bit_apart() -> None:
    y = np.arange(10) % 3
    pred = y.copy()
    logits = np.linspace(-1, 1, 30, dtype=np.float32).reshape(10, 3)
    base = grid.slice_check(pred, y, logits, 8)
    pred[9] = 7  # outside the slice: the same
    logits[9, 0] = 5.0
    assert grid.slice_check(pred, y, logits, 8) == base
    pred[2] = (pred[2] + 1) % 3  # inside: the count and the digest move
    moved = grid.slice_check(pred, y, logits, 8)
    assert moved["correct"] == base["correct"] - 1 and moved["pred_sha256"] != base["pred_sha256"]
    assert base["pred_sha256"] == hashlib.sha256(y[:8].astype("<i8").tobytes()).hexdigest()
    logits.view(np.int32)[3, 1] ^= 1  # one ulp of one logit
    assert grid.slice_check(pred, y, logits, 8)["logits_sha256"] != moved["logits_sha256"]


def test_every_committed_checkpoint_is_listed_and_matches() -> None:
    files = {p.name for p in weights.REFERENCE_DIR.glob("*.npz")}
    assert files == {f"{k}.npz" for k in weights.REFERENCE_SHA256}
    for key, sha in weights.REFERENCE_SHA256.items():
        raw = (weights.REFERENCE_DIR / f"{key}.npz").read_bytes()
        assert hashlib.sha256(raw).hexdigest() == sha, key


def test_cosim_and_operands_evaluate_the_reference_checkpoint(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from experiments import cosim, operands

    trained: list[Any] = []

    def no_training(*a: Any, **k: Any) -> None:
        trained.append(a)
        raise RuntimeError("trained")

    monkeypatch.setattr(lstm, "train", no_training)
    try:
        data_mod.load("mnist")
    except data_mod.DataError as err:
        pytest.skip(f"mnist unavailable here: {err}")
    wts = cosim.load_network(tmp_path / "no-cache", False)
    # The weights make cosim's committed snapshot was measured on (its recorded digest).
    doc = json.loads((SNAPSHOT_DIR / "cosim.json").read_text(encoding="utf-8"))
    assert cosim.weights_digest(wts) == doc["config"]["weights_sha256"]
    arrays = operands.capture(1, tmp_path / "no-cache", progress=False)
    assert np.array_equal(arrays["w"], wts.w) and np.array_equal(arrays["b"], wts.b)
    assert "reference checkpoint mnist-rows-h128-seed0-epoch1.npz" in str(arrays["source"])
    assert trained == []
    with pytest.raises(RuntimeError, match="trained"):  # --retrain: the cache / training
        cosim.load_network(tmp_path / "no-cache", False, reference=False)
    assert len(trained) == 1


# ------------------------------------------------------------------------ refusing bad weights

def _tamper(monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    """Record a hash the committed file does not have (as if the file had been altered)."""
    sha = weights.REFERENCE_SHA256[key]
    monkeypatch.setitem(weights.REFERENCE_SHA256, key, sha[:-1] + ("0" if sha[-1] != "0" else "1"))


def test_accuracy_cli_refuses_a_tampered_checkpoint_in_one_line(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from experiments import accuracy

    _tamper(monkeypatch, "mnist-rows-h128-seed1-epoch1")
    trained: list[Any] = []
    monkeypatch.setattr(lstm, "train", lambda *a, **k: trained.append(a))
    monkeypatch.setattr(data_mod, "load", lambda name, root=None: synthetic_images(name))
    monkeypatch.setattr(grid, "_loaded", {})  # no synthetic data left for later tests
    out = tmp_path / "r.json"
    rc = accuracy.main(["--datasets", "mnist", "--seeds", "1", "--modes", "lmul",
                        "--threads", "1", "--no-progress", "--no-report", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1
    assert trained == []  # refused, not silently retrained
    assert err[-1].startswith("accuracy: error: reference checkpoint ")
    assert "mnist-rows-h128-seed1-epoch1.npz has SHA-256" in err[-1] and "--retrain" in err[-1]
    assert not out.exists() or json.loads(out.read_text())["runs"] == []


def test_tampered_file_copy_is_refused(tmp_path: Path) -> None:
    key = "fashion-rows-h128-seed2-epoch1"
    d = tmp_path / "ck"
    d.mkdir()
    shutil.copyfile(weights.REFERENCE_DIR / f"{key}.npz", d / f"{key}.npz")
    raw = bytearray((d / f"{key}.npz").read_bytes())
    raw[-100] ^= 0x40
    (d / f"{key}.npz").write_bytes(bytes(raw))
    with pytest.raises(weights.CheckpointHashError, match="SHA-256") as err:
        weights.get_weights(synthetic_images("fashion"), "rows", 2, 1, None, None, False,
                            reference=True, reference_dir=d)
    assert "\n" not in str(err.value)
    (d / f"{key}.npz").unlink()
    with pytest.raises(weights.CheckpointHashError, match="missing"):
        weights.get_weights(synthetic_images("fashion"), "rows", 2, 1, None, None, False,
                            reference=True, reference_dir=d)


@pytest.mark.parametrize("line", [
    "abc  x.npz",                                        # short hash
    "g" * 64 + "  x.npz",                                # not hex
    "0" * 64 + "  x.pt",                                 # not an npz
    "0" * 64 + " x.npz",                                 # one space: not sha256sum's format
    "0" * 64 + "  ../x.npz",                             # a path
])
def test_malformed_manifest_line_is_refused(tmp_path: Path, line: str) -> None:
    (tmp_path / weights.MANIFEST).write_text("0" * 64 + "  ok.npz\n" + line + "\n")
    with pytest.raises(weights.CheckpointHashError, match=":2: not") as err:
        weights.read_manifest(tmp_path)
    assert "\n" not in str(err.value)


# --------------------------------------------------------------------------------- packing

def _cache_file(path: Path, model: lstm.LSTMClassifier, wall: float, epoch: int) -> None:
    torch.save({"model": model.state_dict(), "optimizer": {}, "generator": None,
                "train_loss": 0.25, "train_wall_s": wall, "epoch": epoch}, path)


def test_pack_writes_checkpoints_and_manifest_and_recipes_load_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache, ref = tmp_path / "w", tmp_path / "ref"
    cache.mkdir()
    ref.mkdir()
    base_tag, recipe = "mnist-rows-h128", parse_recipe("ft1")
    arith = parse_mode("lmul")
    rkey = weights.recipe_reference_key(base_tag, 3, 1, recipe, arith)
    assert rkey == "mnist-rows-h128-ft-from1-lmul-seed3-epoch2"
    _cache_file(cache / "mnist-rows-h128-seed3-epoch1.pt", spread_model(1), 10.0, 1)
    ft_model = spread_model(2)
    _cache_file(cache / f"{rkey}.pt", ft_model, 14.5, 2)
    assert weights.main(["--pack", str(cache), "--reference-dir", str(ref),
                         "mnist-rows-h128-seed3-epoch1", rkey]) == 0
    hashes = weights.read_manifest(ref)
    assert set(hashes) == {"mnist-rows-h128-seed3-epoch1", rkey}
    for k, h in hashes.items():
        assert hashlib.sha256((ref / f"{k}.npz").read_bytes()).hexdigest() == h

    monkeypatch.setattr(weights, "REFERENCE_SHA256", hashes)
    trained: list[Any] = []
    monkeypatch.setattr(lstm, "train", lambda *a, **k: trained.append(a))
    model, info = weights.get_recipe_weights(synthetic_images("mnist"), "rows", 3, 1, None,
                                             tmp_path / "empty", False, recipe, arith,
                                             reference=True, reference_dir=ref)
    assert trained == []
    assert info["reference"] == f"{rkey}.npz" and info["recipe_wall_s"] == 4.5
    for k, v in ft_model.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k


# ------------------------------------------------------------------- every study asks for them

def test_studies_use_the_references_unless_retrain(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    from experiments import accuracy, act_study, energy_accuracy, tune

    seen: list[tuple[str, bool]] = []

    def fake_preset(p: Any, **kw: Any) -> Path:
        seen.append(("tune", kw["reference"]))
        raise ValueError("stop")

    def fake_accuracy(argv: list[str]) -> int:
        seen.append(("act_study", "--retrain" not in argv))
        return 3

    def fake_grid(*a: Any, **kw: Any) -> None:
        seen.append(("energy_accuracy", kw["reference"]))
        raise ValueError("stop")

    monkeypatch.setattr(tune, "run_preset", fake_preset)
    monkeypatch.setattr(accuracy, "main", fake_accuracy)
    monkeypatch.setattr(grid, "run", fake_grid)
    for extra in ([], ["--retrain"]):
        tune.main(["--preset", "quick", "--out", str(tmp_path / "t.json"), *extra])
        assert act_study.main(["--out", str(tmp_path / "a.json"), *extra]) == 3
        energy_accuracy.main(["--preset", "quick", "--no-plot", *extra])
    assert seen == [("tune", True), ("act_study", True), ("energy_accuracy", True),
                    ("tune", False), ("act_study", False), ("energy_accuracy", False)]


def test_result_keys_name_the_weights_each_record_evaluated() -> None:
    base = {"dataset": "fashion", "seq": "rows", "seed": 1, "epochs": 1, "train_limit": None}
    runs = [{**base, "mode": "lmul"},
            {**base, "mode": "lmul [ft1]", "recipe": "ft1", "eval_mode": "lmul",
             "finetune_epochs": 1},
            {**base, "mode": "lmul [ft1:fp32]", "recipe": "ft1:fp32", "eval_mode": "lmul",
             "finetune_epochs": 1},
            {**base, "mode": "lmul:offset=6 [scratch]", "recipe": "scratch",
             "eval_mode": "lmul:offset=6", "finetune_epochs": 1},
            {**base, "mode": "fp32", "train_limit": 10000}]
    assert weights.result_keys(runs) == [
        "fashion-rows-h128-seed1-epoch1", "fashion-rows-h128-ft-from1-lmul-seed1-epoch2",
        "fashion-rows-h128-seed1-epoch2",  # float32 fine-tuning continues the float32 run
        "fashion-rows-h128-scratch-lmul_offset_6-seed1-epoch1",
        "fashion-rows-h128-train10000-seed1-epoch1"]
    # The committed snapshots measured from references use only committed weights.
    for stem in SNAPSHOTS:
        missing = [k for k in weights.result_keys(_records(stem))
                   if k not in weights.REFERENCE_SHA256]
        assert missing == [], stem
