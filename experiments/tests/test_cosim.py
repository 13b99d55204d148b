"""RTL in the loop (experiments.cosim): LSTM logits from the Verilated RTL against the model.

* both array variants: 4 images (one batch of a 4 x 4 array), all 28 steps and the head, every
  logit bit-identical to ``experiments.lstm.forward_logits`` in the variant's mode; the runner's
  results file, its summary and resuming;
* a copy of the RTL with one changed constant in ``lmul_core`` (the L-Mul offset plus one LSB,
  used by the PEs and the elementwise unit) makes the comparison fail, while the same images
  through the real RTL stay identical;
* the fused arrays (``DOT_K`` = 8, ``ALIGN_BITS`` = 16, both multipliers): the same 4 images
  bit-identical to the model's ``acc=fused`` modes (and not to the sequential modes), with the
  cycle count of docs/dot_product.md; a copy of ``dot_datapath`` that pairs the operand lanes
  wrongly is caught (on a 1 x 1 fused array, against the same array built from hdl/);
* the cocotb + Icarus reference flow (``sim/cosim_step.py`` on ``sim/hdl/cosim_step_tb.v``)
  recomputes three steps of one image through a narrower LSTM (hidden 32; on a 1 x 16 array,
  against the Verilator path's 4 x 4) and must agree with the Verilator path bit for bit;
* the driver's cycle count for an isolated tile and back-to-back tiles (docs/mac_array.md),
  edge tiles and empty products; the fp_to_fmt proof path on a sample, and on a broken copy.

The network is an untrained, seeded ``LSTMClassifier`` and the images are seeded random
digit-like strokes, so the test needs no download or training; bit-identity does not depend on
the weights being trained.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import lmul
from experiments import cosim, lstm
from experiments.modes import parse_mode
from sim.lib.mutation import broken_hdl

N_IMAGES = 4
SEED = 20241001


@pytest.fixture(scope="module")
def network() -> lstm.CellWeights:
    torch.manual_seed(SEED)
    return lstm.CellWeights.from_model(lstm.LSTMClassifier(28, 10))


@pytest.fixture(scope="module")
def images() -> tuple[np.ndarray, np.ndarray]:
    """Seeded 28 x 28 uint8 images: a few thick random strokes on black, and labels."""
    rng = np.random.default_rng(SEED)
    img = np.zeros((N_IMAGES, 28, 28), dtype=np.uint8)
    for n in range(N_IMAGES):
        for _ in range(3):
            r0, c0, r1, c1 = rng.integers(4, 24, 4)
            for s in np.linspace(0.0, 1.0, 40):
                r, c = int(r0 + s * (r1 - r0)), int(c0 + s * (c1 - c0))
                img[n, r - 1:r + 2, c - 1:c + 2] = rng.integers(128, 256)
    return lstm.to_sequence(img, "rows"), rng.integers(0, 10, N_IMAGES)


def _bits(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)


@pytest.mark.parametrize("variant", list(cosim.VARIANTS))
def test_rtl_logits_bit_identical_and_resume(variant: str, network, images, tmp_path) -> None:
    x_seq, labels = images
    out = tmp_path / "cosim.json"
    doc = cosim.run(network, x_seq, labels, [variant], out, progress=False, log=lambda s: None)
    s = doc["summary"][variant]
    assert s["images"] == N_IMAGES and s["identical"] == N_IMAGES, s
    # The runner's comparison itself, redone here from the stored logits.
    ref = lstm.forward_logits(network, x_seq, parse_mode(cosim.VARIANTS[variant].mode))
    stored = np.array([[int(h, 16) for h in doc["variants"][variant]["images"][str(i)]["logits"]]
                       for i in range(N_IMAGES)], dtype=np.uint32)
    assert np.array_equal(stored, _bits(ref))
    assert s["array_cycles_per_image"] >= s["ideal_cycles_per_image"]
    assert s["array_efficiency"] > 0.9  # back-to-back tiles: K + tiny fill per tile
    on_disk = json.loads(out.read_text())
    assert on_disk["summary"][variant]["identical"] == N_IMAGES
    assert "bit-identical" in out.with_suffix(".md").read_text()
    # A rerun finds every image done and adds no batch.
    again = cosim.run(network, x_seq, labels, [variant], out, progress=False,
                      log=lambda s: None)
    assert len(again["variants"][variant]["batches"]) == len(doc["variants"][variant]["batches"])


def test_resume_adds_only_missing_images(network, images, tmp_path) -> None:
    """Two images (a batch padded to the array's 4 rows), then all four: the second run
    computes images 2 and 3 only and keeps the first two records."""
    x_seq, labels = images
    out = tmp_path / "cosim.json"
    first = cosim.run(network, x_seq[:2], labels[:2], ["lmul"], out, progress=False,
                      log=lambda s: None)
    kept = json.loads(json.dumps(first["variants"]["lmul"]["images"]))
    assert first["summary"]["lmul"]["identical"] == 2
    second = cosim.run(network, x_seq, labels, ["lmul"], out, progress=False,
                       log=lambda s: None)
    rec = second["variants"]["lmul"]
    assert [(b["first"], b["count"]) for b in rec["batches"]] == [(0, 2), (2, 2)]
    assert {k: rec["images"][k] for k in kept} == kept
    assert second["summary"]["lmul"]["identical"] == N_IMAGES


def test_dump_operands(network, images, tmp_path) -> None:
    """--dump-operands: the streams that reach the multipliers, in the documented layout."""
    x_seq, labels = images
    dump = tmp_path / "ops.npz"
    cosim.run(network, x_seq, labels, ["lmul"], None, dump=dump, progress=False,
              log=lambda s: None)
    ops = np.load(dump)
    fmt = lmul.PRESETS["bf16"]
    steps, k = x_seq.shape[1], network.w.shape[0]
    assert ops["lmul.gate_a"].shape == (N_IMAGES, steps, k)
    assert ops["lmul.gate_a"].dtype == np.uint16
    assert np.array_equal(ops["lmul.gate_w"], lmul.round_to_format_bits(network.w, fmt))
    assert ops["lmul.head_w"].shape == network.fc_w.shape
    assert ops["lmul.head_a"].shape == (N_IMAGES, network.hidden)
    assert ops["lmul.ew_a"].shape == ops["lmul.ew_b"].shape == (N_IMAGES, steps, 3, 128)
    # Step 0 sees h = 0: its A rows are the rounded pixels followed by +0.
    first = lmul.round_to_format_bits(x_seq[:, 0, :], fmt)
    assert np.array_equal(ops["lmul.gate_a"][:, 0, :28], first)
    assert not ops["lmul.gate_a"][:, 0, 28:].any()
    meta = json.loads(str(ops["meta"]))
    assert meta["rows"] == 4 and meta["ew_pairs"] == ["f*c", "i*g", "o*tanh(c)"]


def _broken_hdl(tmp_path: Path) -> Path:
    """A copy of hdl/ whose lmul_core adds OFFSET + 1 instead of OFFSET."""
    return broken_hdl(tmp_path, "lmul_core.v", re.escape("+ {2'b00, b[FW-1:0]} + OFFSET_V;"),
                      "+ {2'b00, b[FW-1:0]} + OFFSET_V + ONE_V;")


FUSED = [cosim.fused_variant(b, cosim.DEFAULT_DOT_K, cosim.DEFAULT_ALIGN_BITS).name
         for b in cosim.VARIANTS]


def _array_cycles(m: int, k: int, n: int, dot_k: int, rows: int = 4, cols: int = 4) -> int:
    """docs/mac_array.md, docs/dot_product.md: an isolated tile takes beats + ROWS + COLS cycles,
    each further one max(beats, ROWS) more back to back; beats = ceil(K / DOT_K)."""
    beats = -(-k // dot_k)
    tiles = -(-m // rows) * -(-n // cols)
    return (tiles - 1) * max(beats, rows) + beats + rows + cols


@pytest.mark.parametrize("variant", FUSED)
def test_fused_rtl_logits_bit_identical(variant: str, network, images, tmp_path) -> None:
    """The array of fused dot_pe PEs: every logit equals the model in the matching
    ``acc=fused`` mode, differs from the sequential mode's somewhere (so the comparison is
    against the fused arithmetic), and the array takes the documented cycles."""
    x_seq, labels = images
    v = cosim.variant(variant)
    assert v.dot_k == 8 and v.align_bits == 16 and v.mode.endswith(":acc=fused,k=8,align=16")
    doc = cosim.run(network, x_seq, labels, [variant], tmp_path / "cosim.json", progress=False,
                    log=lambda s: None)
    s = doc["summary"][variant]
    assert s["images"] == N_IMAGES and s["identical"] == N_IMAGES, s
    stored = np.array([[int(h, 16) for h in doc["variants"][variant]["images"][str(i)]["logits"]]
                       for i in range(N_IMAGES)], dtype=np.uint32)
    mode = parse_mode(v.mode)
    assert mode.accumulate == lmul.Fused(8, 16)
    assert np.array_equal(stored, _bits(lstm.forward_logits(network, x_seq, mode)))
    seq = parse_mode(cosim.VARIANTS[variant.split("-")[0]].mode)
    assert not np.array_equal(stored, _bits(lstm.forward_logits(network, x_seq, seq)))
    # One batch of 4 images: 28 gate products [4, 156] x [156, 512], then the head [4, 128] x
    # [128, 10].
    k_gate, n_gate = network.w.shape
    cycles = (x_seq.shape[1] * _array_cycles(4, k_gate, n_gate, 8)
              + _array_cycles(4, *network.fc_w.shape, 8))
    assert s["array_cycles_per_image"] == round(cycles / N_IMAGES, 1)
    tiles = x_seq.shape[1] * n_gate // 4 + 3
    assert s["tiles_per_image"] == round(tiles / N_IMAGES, 1)
    assert "dot_pe (DOT_K=8, ALIGN_BITS=16)" in (tmp_path / "cosim.md").read_text()


def test_model_fused_mode_takes_the_fused_gates(network, images) -> None:
    """forward_logits (W prepared once) equals the cell stepped with mode.matmul in a fused mode:
    the prepared gate product must accumulate as the mode says, as the RTL does."""
    x_seq = images[0][:, 8:12]  # rows through the strokes (the first rows are blank)
    mode = parse_mode(cosim.variant(FUSED[0]).mode)
    h = np.zeros((N_IMAGES, network.hidden), np.float32)
    c = np.zeros_like(h)
    for t in range(x_seq.shape[1]):
        h, c = lstm.cell_step(network, x_seq[:, t], h, c, mode)
    stepped = _bits(mode.head_matmul(h, network.fc_w, network.fc_b))
    assert np.array_equal(_bits(lstm.forward_logits(network, x_seq, mode)), stepped)


def _broken_dot_hdl(tmp_path: Path) -> Path:
    """A copy of hdl/ whose dot_datapath multiplies lane i of A by lane K-1-i of B."""
    return broken_hdl(tmp_path, "dot_datapath.v", re.escape(".b(b[i*W+:W]),"),
                      ".b(b[(K-1-i)*W+:W]),", name="hdl_broken_dot")


def test_broken_fused_rtl_is_caught(network, images, tmp_path) -> None:
    """Two steps and the head through a 1 x 1 fused array: identical to the model with hdl/,
    not with the copy whose dot_datapath pairs the operand lanes wrongly. (Every PE holds the
    broken dot_datapath, so one PE shows it; its build is a quarter of the 4 x 4 one's.)"""
    x_seq = images[0][:, 8:10]  # rows through the strokes: non-zero gate operands
    v = cosim.variant(FUSED[0])
    mode = parse_mode(v.mode)
    ref = _bits(lstm.forward_logits(network, x_seq, mode))
    for dirs, same in ((None, True), ([_broken_dot_hdl(tmp_path)], False)):
        with cosim.Hardware(mode.cfg, v.multiplier, rows=1, cols=1, hdl_dirs=dirs,
                            dot_k=v.dot_k, align_bits=v.align_bits) as hw:
            got = _bits(cosim.rtl_forward(hw, cosim.CellBits.on(hw, network), x_seq))
        assert np.array_equal(got, ref) == same


def test_variant_names() -> None:
    assert cosim.variant("bf16-k4-a24") == cosim.Variant(
        "bf16-k4-a24", "bf16:acc=fused,k=4,align=24", 1, "fp_mul", 4, 24)
    assert cosim.default_variants(4, 24, "exact") == ["lmul", "bf16", "lmul-k4-a24",
                                                      "bf16-k4-a24"]
    for bad, msg in (("fp64-k4-a8", "unknown variant"), ("lmul-k1-a8", "DOT_K must be 2..64"),
                     ("lmul-k4-a300", "ALIGN_BITS must be 1..276"), ("lmul4", "unknown")):
        with pytest.raises(ValueError, match=msg):
            cosim.variant(bad)


def test_broken_rtl_is_caught(network, images, tmp_path) -> None:
    x_seq = images[0][:, :2]  # two steps are plenty for a wrong multiplier to show
    mode = parse_mode("lmul")
    ref = _bits(lstm.forward_logits(network, x_seq, mode))
    with cosim.Hardware(mode.cfg, 0) as hw:
        good = _bits(cosim.rtl_forward(hw, cosim.CellBits.on(hw, network), x_seq))
    assert np.array_equal(good, ref)
    with cosim.Hardware(mode.cfg, 0, hdl_dirs=[_broken_hdl(tmp_path)]) as hw:
        bad = _bits(cosim.rtl_forward(hw, cosim.CellBits.on(hw, network), x_seq))
    assert not np.array_equal(bad, ref)


@pytest.mark.parametrize("verilator_rtl", ["hdl", "broken"])
def test_icarus_reference_flow_agrees(verilator_rtl: str, images, tmp_path) -> None:
    """Three steps of one image in cocotb + Icarus equal the Verilator path (gates, c, h); with
    the Verilator side built from the broken lmul_core, the testbench must report a mismatch.

    Icarus evaluates every PE's datapath each cycle (a few tenths of a millisecond per
    multiply-accumulate here), so this check uses a narrower LSTM (hidden 32: K = 60, 128 gate
    outputs, about 7,700 MACs per step instead of 80,000) and a 1 x 16 array; the Verilator
    side runs the default 4 x 4.
    """
    from sim.lib.common import BUILD_DIR, run_cocotb

    steps, hidden = 3, 32
    torch.manual_seed(SEED + 1)
    net = lstm.CellWeights.from_model(lstm.LSTMClassifier(28, 10, hidden))
    x = images[0][:1, 10:10 + steps]  # rows through the middle of the strokes
    mode = parse_mode("lmul")
    trace = cosim.OperandTrace()
    dirs = [_broken_hdl(tmp_path)] if verilator_rtl == "broken" else None
    with cosim.Hardware(mode.cfg, 0, hdl_dirs=dirs) as hw:
        cell = cosim.CellBits.on(hw, net)
        cosim.rtl_forward(hw, cell, x, trace)
    assert np.any(np.concatenate(trace.h) != 0)
    data = tmp_path / "step.npz"
    np.savez(data, x=x[0], w=net.w, w_bits=cell.w, b=net.b,
             gates=np.concatenate(trace.gates), c=np.concatenate(trace.c),
             h=np.concatenate(trace.h))
    params = {**mode.cfg.verilog_parameters(), "ROWS": 1, "COLS": 16, "MULTIPLIER": 0,
              "LANES": hidden}
    env = {"LMUL_COSIM_STEP_DATA": str(data)}
    if verilator_rtl == "hdl":
        run_cocotb("cosim_step", "cosim_step_tb", ("cosim_step_tb.v",), parameters=params,
                   extra_env=env)
        return
    tag = "broken"
    for old in BUILD_DIR.glob(f"cosim_step_tb-{tag}*/*results.xml"):  # (with WAVES: -waves)
        old.unlink()
    with pytest.raises(SystemExit):
        run_cocotb("cosim_step", "cosim_step_tb", ("cosim_step_tb.v",), parameters=params,
                   extra_env=env, build_tag=tag)
    reports = "".join(p.read_text() for p in BUILD_DIR.glob(f"cosim_step_tb-{tag}*/*results.xml"))
    assert "differs from the Verilator path" in reports, reports[-2000:]


@pytest.mark.parametrize("dot_k", [1, 8])
@pytest.mark.parametrize(("m", "k", "n"), [(4, 1, 4), (4, 156, 512), (5, 3, 7), (1, 9, 1)])
def test_array_driver_products_and_cycles(m: int, k: int, n: int, dot_k: int) -> None:
    """Sequential and fused (DOT_K = 8, ALIGN_BITS = 16; K = 9: a chunk of 8 and one of 1)."""
    cfg = lmul.LMulConfig()
    rng = np.random.default_rng(m * 1000 + k)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = (rng.standard_normal((k, n)) * 0.2).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    with cosim.Hardware(cfg, 0, dot_k=dot_k, align_bits=16) as hw:
        y = hw.matmul_bits(lmul.round_to_format_bits(a, cfg.fmt),
                           lmul.round_to_format_bits(b, cfg.fmt), bias)
        cnt = hw.take_counters()
    acc = lmul.Fused(dot_k, 16) if dot_k > 1 else None
    assert np.array_equal(_bits(y), _bits(lmul.matmul(a, b, bias, cfg, accumulate=acc)))
    assert cnt.array_cycles == _array_cycles(m, k, n, dot_k)
    assert cnt.array_tiles == -(-m // 4) * -(-n // 4)


def test_array_driver_rejects_bad_sizes() -> None:
    with cosim.Hardware(lmul.LMulConfig(), 0) as hw:
        with pytest.raises(ValueError, match="do not match"):
            hw.matmul_bits(np.zeros((2, 3), np.uint16), np.zeros((4, 2), np.uint16),
                           np.zeros(2, np.float32))
        with pytest.raises(cosim.CosimError, match="bad sizes"):
            hw.matmul_bits(np.zeros((2, 0), np.uint16), np.zeros((0, 2), np.uint16),
                           np.zeros(2, np.float32))


def test_fp_to_fmt_proof_sample(tmp_path) -> None:
    """Two random chunks of 2^20 binary32 inputs per format through the proof path; a copy of
    fp_to_fmt.v that truncates instead of rounding must show mismatches there."""
    out = tmp_path / "proof.json"
    doc = cosim.prove_fp_to_fmt(["bf16", "e4m3_ieee"], out, inputs=2 << 20, progress=False,
                                log=lambda s: None, chunk_bits=20)
    for name in ("bf16", "e4m3_ieee"):
        assert doc["formats"][name]["inputs"] == 2 << 20
        assert doc["formats"][name]["mismatches"] == 0
    assert "| bf16 | 2,097,152 | 0 |" in out.with_suffix(".md").read_text()
    hdl = broken_hdl(tmp_path, "fp_to_fmt.v", re.escape("wire        guard  = wide[MAX_SHIFT-1];"),
                     "wire        guard  = 1'b0;")
    bad = cosim.prove_fp_to_fmt(["bf16"], tmp_path / "broken.json", inputs=1 << 20,
                                progress=False, hdl_dirs=[hdl], log=lambda s: None,
                                chunk_bits=20)
    assert bad["formats"]["bf16"]["mismatches"] > 0
    assert bad["formats"]["bf16"]["first_mismatches"]


def test_cli_rejects_bad_arguments(capsys) -> None:
    with pytest.raises(SystemExit):
        cosim.main(["--variants", "fp64"])
    assert "unknown variant" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cosim.main(["--n", "0"])
    assert "must be >= 1" in capsys.readouterr().err
