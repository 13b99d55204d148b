"""L-Mul-aware training: the converted classifier's forward bits, its straight-through gradients,
a short training run, and the runner's recipe rows (names, caching, resume)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.nn import functional

import lmul
from experiments import accuracy, grid, lstm, recipes
from experiments.modes import parse_mode
from experiments.tests.helpers import synthetic_images
from experiments.tests.test_accuracy import _loader

# ------------------------------------------------------------------------------ the L-Mul cell


def _small_model(seed: int = 0) -> lstm.LSTMClassifier:
    torch.manual_seed(seed)
    return lstm.LSTMClassifier(6, 4, hidden_size=8)


def _hw_linear(z: torch.Tensor, w: torch.Tensor, b: torch.Tensor, mode: Any) -> torch.Tensor:
    """The array's bits for ``b + z . w^T`` (the inference path's numpy kernel)."""
    return torch.from_numpy(mode.matmul(z.detach().numpy(),
                                        np.ascontiguousarray(w.detach().numpy().T),
                                        b.detach().numpy()))


def _hw_mul(x: torch.Tensor, y: torch.Tensor, mode: Any) -> torch.Tensor:
    return torch.from_numpy(mode.mul(x.detach().numpy(), y.detach().numpy()))


def _ste(exact: torch.Tensor, hw: torch.Tensor) -> torch.Tensor:
    """Forward value ``hw``, gradient of ``exact``: the straight-through estimator, written with
    torch's own autograd."""
    return exact + (hw - exact).detach()


def _reference_logits(model: lstm.LSTMClassifier, x: torch.Tensor, mode: Any) -> torch.Tensor:
    """The exact-product LSTM cell, written out here with torch autograd; every product's
    forward value replaced by the hardware's (straight-through), activations as float64
    rounded once."""
    w = torch.cat([model.lstm.weight_ih_l0, model.lstm.weight_hh_l0], dim=1)
    b = model.lstm.bias_ih_l0 + model.lstm.bias_hh_l0
    hs = model.lstm.hidden_size
    h = x.new_zeros(x.shape[0], hs)
    c = x.new_zeros(x.shape[0], hs)

    def act(fn: Any, v: torch.Tensor) -> torch.Tensor:
        hw = torch.from_numpy(fn(v.detach().numpy().astype(np.float64)).astype(np.float32))
        return _ste(torch.sigmoid(v) if fn is _sigmoid64 else torch.tanh(v), hw)

    for t in range(x.shape[1]):
        z = torch.cat([x[:, t], h], dim=1)
        gates = _ste(functional.linear(z, w, b), _hw_linear(z, w, b, mode))
        i, f = act(_sigmoid64, gates[:, :hs]), act(_sigmoid64, gates[:, hs:2 * hs])
        g, o = act(np.tanh, gates[:, 2 * hs:3 * hs]), act(_sigmoid64, gates[:, 3 * hs:])
        c = _ste(f * c, _hw_mul(f, c, mode)) + _ste(i * g, _hw_mul(i, g, mode))
        tc = act(np.tanh, c)
        h = _ste(o * tc, _hw_mul(o, tc, mode))
    return _ste(functional.linear(h, model.fc.weight, model.fc.bias),
                _hw_linear(h, model.fc.weight, model.fc.bias, mode))


def _sigmoid64(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v))


def _aware_logits(model: lstm.LSTMClassifier, x: torch.Tensor, mode: Any) -> torch.Tensor:
    view = recipes.aware_model(model, mode)
    _, (h, _) = view.lstm(x)
    return view.fc(h[-1])


def _grads(model: lstm.LSTMClassifier, logits: torch.Tensor, weight: torch.Tensor
           ) -> list[torch.Tensor]:
    model.zero_grad()
    (logits * weight).sum().backward()
    return [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("mode_text", ["lmul", "lmul:offset=0", "lmul:fmt=e4m3_ieee",
                                       "exact:fmt=e5m2"])
def test_aware_forward_is_the_inference_cell_bit_for_bit(mode_text: str) -> None:
    mode = parse_mode(mode_text)
    model = _small_model()
    x = torch.rand(5, 7, 6)
    got = _aware_logits(model, x, mode).detach().numpy()
    want = lstm.forward_logits(lstm.CellWeights.from_model(model), x.numpy(), mode)
    assert got.dtype == want.dtype == np.float32
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
    # and it is not float32 arithmetic in disguise
    assert not np.array_equal(got, lstm.forward_logits(lstm.CellWeights.from_model(model),
                                                       x.numpy(), parse_mode("fp32")))


@pytest.mark.parametrize("mode_text", ["lmul", "lmul:fmt=e4m3_ieee"])
def test_aware_gradients_equal_autograd_of_the_exact_product_cell(mode_text: str) -> None:
    mode = parse_mode(mode_text)
    model = _small_model(1)
    x = torch.rand(5, 7, 6)
    weight = torch.randn(5, 4, generator=torch.Generator().manual_seed(2))
    want = _grads(model, _reference_logits(model, x, mode), weight)
    got = _grads(model, _aware_logits(model, x, mode), weight)
    for g, w in zip(got, want, strict=True):
        assert torch.isfinite(g).all() and g.abs().max() > 0
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("broken", ["mul", "fused"])
def test_gradient_check_catches_a_broken_straight_through_product(
        broken: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison above can fail: with the gradient of one operand of every elementwise
    product dropped (the separate products, or the fused step's), the gradients no longer
    match."""
    import lmul.torch

    mode = parse_mode("lmul")
    model = _small_model(1)
    x = torch.rand(5, 7, 6)
    weight = torch.randn(5, 4, generator=torch.Generator().manual_seed(2))
    want = _grads(model, _reference_logits(model, x, mode), weight)
    if broken == "mul":  # the products one by one, one operand's gradient cut
        monkeypatch.delattr(lmul.torch.TensorOps, "lstm_pointwise")
        real = lmul.torch.TensorOps.mul
        monkeypatch.setattr(lmul.torch.TensorOps, "mul",
                            lambda self, a, b: real(self, a, b.detach()))
    else:  # the fused step (the path training takes), the cell state's gradient cut
        fused = lmul.torch.TensorOps.lstm_pointwise
        monkeypatch.setattr(lmul.torch.TensorOps, "lstm_pointwise",
                            lambda self, g, c: fused(self, g, c.detach()))
    got = _grads(model, _aware_logits(model, x, mode), weight)
    assert not all(torch.allclose(g, w, rtol=1e-4, atol=1e-6)
                   for g, w in zip(got, want, strict=True))


def test_aware_model_leaves_the_model_plain_and_shares_its_parameters() -> None:
    model = _small_model()
    view = recipes.aware_model(model, parse_mode("lmul:head=fp32"))
    assert type(model.lstm) is torch.nn.LSTM and type(model.fc) is torch.nn.Linear
    assert type(view.lstm).__name__ == "LMulLSTM"
    assert type(view.fc) is torch.nn.Linear  # head=fp32: the head stays float32
    assert {id(p) for p in view.parameters()} == {id(p) for p in model.parameters()}
    assert recipes.aware_model(model, parse_mode("fp32")) is model


def test_short_aware_training_reduces_the_loss(tmp_path: Path) -> None:
    ds = synthetic_images(n_train=1024)  # 8 batches an epoch
    x = lstm.to_sequence(ds.train_x, "rows")
    mode = parse_mode("lmul")
    recipe = recipes.parse_recipe("scratch")

    def loss_of(model: torch.nn.Module) -> float:
        with torch.no_grad():
            out = recipes.aware_model(model, mode)(torch.from_numpy(x))
            return float(functional.nll_loss(out, torch.from_numpy(ds.train_y)))

    torch.manual_seed(0)
    before = loss_of(lstm.LSTMClassifier(28, 10))  # the seed's initial weights, as training
    model, info = recipes.train_recipe(x, ds.train_y, 10, 0, 3, recipe, mode, tmp_path,
                                       "syn", progress=False)
    after = loss_of(model)
    assert np.isfinite(after) and after < 0.9 * before, (before, after)
    assert info["train_loss"] < before
    assert (tmp_path / "syn-scratch-lmul-seed0-epoch3.pt").is_file()


# --------------------------------------------------------------------------- recipe strings


def test_recipe_names_and_errors() -> None:
    assert recipes.parse_recipe("fp32").name == "fp32"
    assert recipes.parse_recipe("ft").name == "ft1"
    assert recipes.parse_recipe("finetune", 3).name == "ft3"
    assert recipes.parse_recipe("ft2:lmul:offset=8").name == "ft2:lmul"  # canonical mode name
    assert recipes.parse_recipe("ft@500:lmul").name == "ft1@500:lmul"
    assert recipes.parse_recipe("ft@500").limit == 500
    assert recipes.parse_recipe("scratch:lmul:e=4,m=3").name == "scratch:lmul:e=4,m=3"
    assert recipes.split_recipes("fp32,ft:lmul:e=4,m=3,scratch") == [
        "fp32", "ft:lmul:e=4,m=3", "scratch"]
    r = recipes.parse_recipe("ft")
    assert r.label("lmul:offset=7") == "lmul:offset=7 [ft1]"
    assert recipes.parse_recipe("fp32").label("lmul") == "lmul"
    assert recipes.parse_recipe("scratch").train_arith(parse_mode("fp32")) is None
    assert recipes.parse_recipe("ft").train_arith(parse_mode("fp32")).name == "fp32"
    for bad, msg in (("ftx", "unknown recipe"), ("scratch2", "unknown recipe"),
                     ("scratch@10", "unknown recipe"), ("ft@0", "must be >= 1"),
                     ("fp32:lmul", "takes no mode"), ("ft:lmul:offset=x", "recipe 'ft:lmul"),
                     ("", "unknown recipe")):
        with pytest.raises(ValueError, match=msg):
            recipes.parse_recipe(bad)
    with pytest.raises(ValueError, match="finetune epochs"):
        recipes.parse_recipe("ft", 0)


def test_cli_rejects_a_bad_recipe(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        accuracy.main(["--recipes", "ft:nosuchmode", "--out", "/nonexistent/x.json"])
    assert exc.value.code == 2
    assert "argument --recipes: recipe 'ft:nosuchmode'" in capsys.readouterr().err


# ------------------------------------------------------------------- recipe rows in the runner


class _StopError(Exception):
    pass


def test_recipe_rows_are_named_cached_and_resumed(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "acc.json"
    wdir = tmp_path / "w"
    jobs = [grid.Job(["mnist"], [0], 1)]
    evaluated: list[str] = []
    trained: list[tuple[str, int]] = []  # (tag, epoch the run started from)
    real_eval, real_train = grid.evaluate, lstm.train
    stop_at: list[int | None] = [None]

    def counting_eval(*args: Any, **kwargs: Any) -> dict[str, Any]:
        if stop_at[0] is not None and len(evaluated) == stop_at[0]:
            raise _StopError
        evaluated.append(kwargs.get("desc", args[6] if len(args) > 6 else "").split("1ep ")[-1])
        return real_eval(*args, **kwargs)

    def counting_train(*args: Any, **kwargs: Any) -> Any:
        model, info = real_train(*args, **kwargs)
        trained.append((args[6] if len(args) > 6 else kwargs["tag"], info["resumed_from"]))
        return model, info

    monkeypatch.setattr(grid, "evaluate", counting_eval)
    monkeypatch.setattr(lstm, "train", counting_train)
    kw: dict[str, Any] = {"test_limit": 20, "progress": False, "log": lambda m: None,
                          "weights_dir": wdir, "load_fn": _loader([]),
                          "recipes": ["fp32", "ft"]}
    modes = ["fp32", "lmul:offset=7"]

    stop_at[0] = 3  # interrupted before the second fine-tuned row
    with pytest.raises(_StopError):
        grid.run(jobs, modes, out, **kw)
    doc = json.loads(out.read_text())
    assert [r["mode"] for r in doc["runs"]] == ["fp32", "lmul:offset=7", "fp32 [ft1]"]
    ft = doc["runs"][2]
    assert (ft["recipe"], ft["eval_mode"], ft["finetune_epochs"]) == ("ft1", "fp32", 1)
    assert ft["train_arithmetic"] == {"multiplier": "fp32"}
    # float32 fine-tuning is the float32 run continued: its checkpoint is that run's epoch 2;
    # the L-Mul fine-tuning finished before the interruption
    assert trained == [("mnist-rows-h128", 0), ("mnist-rows-h128", 1),
                       ("mnist-rows-h128-ft-from1-lmul_offset_7", 1)]
    assert (wdir / "mnist-rows-h128-seed0-epoch2.pt").is_file()

    stop_at[0] = None
    evaluated.clear()
    trained.clear()
    grid.run(jobs, modes, out, **kw)
    assert evaluated == ["lmul:offset=7 [ft1]"]  # only what was missing
    assert trained == [("mnist-rows-h128", 1),  # the float32 base, from its checkpoint
                       ("mnist-rows-h128-ft-from1-lmul_offset_7", 2)]  # and the fine-tuned
    assert (wdir / "mnist-rows-h128-ft-from1-lmul_offset_7-seed0-epoch2.pt").is_file()
    doc = json.loads(out.read_text())
    row = next(r for r in doc["runs"] if r["mode"] == "lmul:offset=7 [ft1]")
    assert row["train_arithmetic"]["offset"] == 7 and row["arithmetic"]["offset"] == 7
    assert row["recipe_wall_s"] > 0

    # A rerun does nothing; the fine-tuned weights come from the cache on a new row.
    evaluated.clear()
    trained.clear()
    grid.run(jobs, modes, out, **kw)
    assert evaluated == [] and trained == []
    grid.run(jobs, ["lmul"], out, **{**kw, "recipes": ["ft:lmul:offset=7"]})
    assert evaluated == ["lmul [ft1:lmul:offset=7]"]
    assert trained == [("mnist-rows-h128", 1), ("mnist-rows-h128-ft-from1-lmul_offset_7", 2)]
    fresh = json.loads(out.read_text())["runs"][-1]
    assert fresh["torch_fp32_accuracy"] == row["torch_fp32_accuracy"]  # same weights


def test_lmul_offset_default_is_paper() -> None:
    assert parse_mode("lmul").cfg.offset_value == lmul.paper_offset(7) == 8
