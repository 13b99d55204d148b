"""The convert demo (``experiments.convert_demo``): modes, a tiny end-to-end run with resume, the
table, fine-tuning that lowers the loss, and the benchmark helper."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import lmul
import lmul.torch as lt
from experiments import convert_demo as demo
from experiments.data import ImageData


def _tiny(name: str, root: object = None, n_train: int = 192, n_test: int = 64) -> ImageData:
    """A learnable synthetic 3-class image task: a bright block whose row is the class."""
    rng = np.random.default_rng(0)

    def make(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 3, n)
        x = rng.integers(0, 40, size=(n, 28, 28)).astype(np.uint8)
        for i, c in enumerate(y):
            x[i, 4 + 8 * c:10 + 8 * c, 6:22] = 230
        return x, y.astype(np.int64)

    trx, tr_y = make(n_train)
    tex, te_y = make(n_test)
    return ImageData(name, 3, trx, tr_y, tex, te_y)


def test_parse_demo_mode() -> None:
    m = demo.parse_demo_mode("lmul@attn+ft")
    assert (m.name, m.multiplier, m.where, m.ft_epochs) == ("lmul@attn+ft", "lmul", "attn", 1)
    m = demo.parse_demo_mode("lmul:offset=7@linear+ft2")
    assert m.cfg.offset == 7 and m.ft_epochs == 2 and m.name == "lmul:offset=7@linear+ft2"
    assert demo.parse_demo_mode("bf16").multiplier == "exact"
    assert demo.parse_demo_mode("lmul:offset=8@all").name == "lmul"
    assert demo.parse_demo_mode("fp32+ft").ft_epochs == 1
    for bad in ("lmul@heads", "fp32@attn", "lmul+tune", "lmul:head=fp32", "fp8"):
        with pytest.raises(ValueError, match="mode"):
            demo.parse_demo_mode(bad)


def test_where_selects_layers() -> None:
    model = demo.build_model("transformer", 10)
    attn = demo.parse_demo_mode("lmul@attn").convert(model)
    names = {r.name for r in attn.lmul_report.converted}
    assert names == {"encoder.layers.0.self_attn", "encoder.layers.1.self_attn"}
    linear = demo.parse_demo_mode("lmul@linear").convert(model)
    names = {r.name for r in linear.lmul_report.converted}
    assert "embed" in names and "head" in names and "encoder.layers.1.linear2" in names
    assert not any("self_attn" in n for n in names)
    every = demo.parse_demo_mode("lmul").convert(model)
    assert len(every.lmul_report.converted) == 2 + 4 + 2  # attention, FFN, embed + head
    assert isinstance(model.head, torch.nn.Linear) and not isinstance(model.head, lt.LMulLinear)


def test_models_run_converted_with_the_rtl_bits() -> None:
    """The CNN's first layer through the converted model equals lmul.matmul on its patches."""
    torch.manual_seed(0)
    cnn = demo.build_model("cnn", 10).eval()
    x = demo.model_input("cnn", _tiny("t").test_x[:2])
    conv = demo.parse_demo_mode("lmul").convert(cnn)
    with torch.no_grad():
        got = conv.conv1(x)
    cols = torch.nn.functional.unfold(torch.nn.functional.pad(x, (2, 2, 2, 2)), 5)
    rows = cols.transpose(1, 2).reshape(-1, 25).numpy()
    want = lmul.matmul(rows, cnn.conv1.weight.detach().reshape(6, 25).numpy().T,
                       cnn.conv1.bias.detach().numpy())
    assert np.array_equal(got.permute(0, 2, 3, 1).reshape(-1, 6).numpy().view(np.uint32),
                          want.view(np.uint32))
    assert conv(x).shape == (2, 10)
    tr = demo.build_model("transformer", 10).eval()
    assert demo.parse_demo_mode("lmul").convert(tr)(demo.model_input(
        "transformer", _tiny("t").test_x[:2])).shape == (2, 10)


def test_lmul_aware_fine_tuning_lowers_the_loss() -> None:
    torch.manual_seed(0)
    ds = _tiny("t")
    model = demo.build_model("cnn", 3)
    x, y = demo.model_input("cnn", ds.train_x), torch.from_numpy(ds.train_y)
    conv = demo.parse_demo_mode("lmul").convert(model)
    with torch.no_grad():
        before = float(torch.nn.functional.cross_entropy(conv(x), y))
    demo.train_epochs(conv, x, y, seed=0, epochs=3, lr=3e-3, progress=False, desc="t")
    with torch.no_grad():
        after = float(torch.nn.functional.cross_entropy(conv(x), y))
    assert after < 0.8 * before
    back = lt.revert(conv)
    assert not any(isinstance(m, lt.LMulLinear | lt.LMulConv2d) for m in back.modules())


def test_run_writes_results_resumes_and_tables(tmp_path: Path) -> None:
    out = tmp_path / "demo.json"
    modes = {"cnn": ["fp32", "lmul", "lmul+ft"], "transformer": ["fp32", "lmul@attn"]}
    store = demo.run(["cnn", "transformer"], ["mnist"], [0, 1], 1, modes, out,
                     weights_dir=tmp_path / "w", batch_size=32, progress=False,
                     log=lambda m: None, load_fn=_tiny)
    runs = store.doc["runs"]
    assert len(runs) == 2 * 3 + 2 * 2
    assert {r["mode"] for r in runs if r["seq"] == "cnn"} == {"fp32", "lmul", "lmul+ft"}
    ft = [r for r in runs if r["mode"] == "lmul+ft"]
    assert all("ft_loss" in r for r in ft)
    assert next(r["converted"] for r in runs if r["mode"] == "lmul@attn") == [
        "encoder.layers.0.self_attn", "encoder.layers.1.self_attn"]
    assert out.with_suffix(".csv").is_file()
    # Rerunning skips everything (resume): no loader call, nothing added.
    calls = []

    def loader(name: str, root: object = None) -> ImageData:
        calls.append(name)
        return _tiny(name)

    again = demo.run(["cnn", "transformer"], ["mnist"], [0, 1], 1, modes, out,
                     weights_dir=tmp_path / "w", batch_size=32, progress=False,
                     log=lambda m: None, load_fn=loader)
    assert calls == [] and len(again.doc["runs"]) == len(runs)
    table = demo.write_outputs(again, "python -m experiments.convert_demo --test")
    assert "| mnist | cnn | 1 |" in table and "lmul+ft" in table
    assert out.with_suffix(".png").is_file()
    assert out.with_suffix(".md").read_text().startswith("`python -m experiments.convert_demo")
    doc = json.loads(out.read_text())
    assert doc["runs"][0]["dataset"] == "mnist"


def test_bench_helper_times_both_paths() -> None:
    rows = demo.bench_converted_layers(repeats=1)
    assert len(rows) == 5 and all(t > 0 and c > 0 for _, t, c in rows)


def test_cli_rejects_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--models", "rnn"], ["--modes", "lmul@heads"], ["--out", "x.txt"],
                 ["--seeds", "-1"]):
        with pytest.raises(SystemExit) as exc:
            demo.main(argv)
        assert exc.value.code == 2
