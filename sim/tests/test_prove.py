"""sim.prove: the references, a slice of the proof, a broken RTL copy, resume and replay.

``make test`` runs a slice of the proof through the same harness as ``make prove``:
``LMUL_PROVE_PAIRS`` pairs (default here 2^22) of each configuration named by
``LMUL_PROVE_CONFIGS`` (default: one per module and format family, below), blocks chosen with
``LMUL_PROVE_SEED`` (default 1).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lmul
from sim import prove, rtlsim
from sim.lib import int_oracle, oracle
from sim.lib.mutation import broken_hdl

SLICE_CONFIGS = [
    "lmul_core/bf16/offset=paper/saturate=0",
    "lmul_core/fp16/offset=0/saturate=1",
    "lmul_core/e4m3_ieee/offset=paper/saturate=1",
    "lmul_core/e5m2/offset=0/saturate=0",
    "fp_mul/bf16/subnormals=1",
    "fp_mul/fp16/subnormals=0",
    "fp_add/bf16",
    "fp_add/fp16",
    "fp_add/fp32",
]
BROKEN_CONFIG = "lmul_core/bf16/offset=paper/saturate=0"


def _oracle_check(a: np.ndarray, b: np.ndarray, fmt: lmul.Format, mul: bool = True) -> None:
    e, m = fmt.exp_bits, fmt.man_bits
    got_add = int_oracle.add_reference(a, b, e, m)
    got_mul = {s: int_oracle.mul_reference(a, b, e, m, s) for s in (True, False)} if mul else {}
    for i, (x, y) in enumerate(zip(a.tolist(), b.tolist(), strict=True)):
        assert int(got_add[i]) == oracle.add_bits(x, y, e, m), (fmt.name, hex(x), hex(y))
        for sub, got in got_mul.items():
            want = oracle.mul_bits(x, y, e, m, subnormals=sub)
            assert int(got[i]) == want, (fmt.name, sub, hex(x), hex(y))


def test_references_match_the_oracle_exhaustively() -> None:
    fmt = lmul.PRESETS["e5m2"]
    grid = np.arange(1 << fmt.width, dtype=np.int64)
    _oracle_check(np.repeat(grid, grid.size), np.tile(grid, grid.size), fmt)


@pytest.mark.parametrize("name", ["bf16", "fp16", "fp32"])
def test_references_match_the_oracle_on_boundary_and_random_pairs(name: str) -> None:
    fmt = lmul.PRESETS[name]
    specials_a, specials_b = prove.random_block(fmt, seed=1, index=0, n=2_500)
    mixed_a, mixed_b = prove.random_block(fmt, seed=2, index=3, n=2_500)
    a = np.concatenate([specials_a, mixed_a])
    b = np.concatenate([specials_b, mixed_b])
    _oracle_check(a, b, fmt, mul=name != "fp32")


def _boundary_products(fmt: lmul.Format, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of normal operands whose exact product lands near the smallest normal (both sides,
    deep into the subnormals) or near the overflow threshold, half of them with mantissas that
    make exact ties likely (few low bits set)."""
    rng = np.random.default_rng(seed)
    m, bias, emaxf = fmt.man_bits, fmt.bias, fmt.max_exp_field
    ea = rng.integers(1, emaxf, n)
    # unbiased product exponent ea + eb - 2 bias: around 1 - bias (underflow) or bias (overflow)
    target = np.where(rng.integers(0, 2, n) == 1, rng.integers(-m - 4, 3, n) + 1 - bias,
                      rng.integers(-2, 2, n) + bias)
    eb = np.clip(target - ea + 2 * bias, 1, emaxf - 1)
    ma = rng.integers(0, 1 << m, n)
    mb = rng.integers(0, 1 << m, n)
    sparse = rng.integers(0, 2, n) == 1
    mb = np.where(sparse, (1 << rng.integers(0, m, n)) * rng.integers(0, 2, n), mb)
    sa, sb = rng.integers(0, 2, n), rng.integers(0, 2, n)
    a = (sa << (fmt.exp_bits + m)) | (ea << m) | ma
    b = (sb << (fmt.exp_bits + m)) | (eb << m) | mb
    return a.astype(np.int64), b.astype(np.int64)


@pytest.mark.parametrize("name", ["bf16", "fp16"])
def test_mul_reference_at_underflow_and_overflow(name: str) -> None:
    """The product reference's path for normal operands (no leading-zero count) against the
    rational oracle where its shift and carry logic matters: results near the smallest normal,
    in the subnormals and near overflow."""
    fmt = lmul.PRESETS[name]
    a, b = _boundary_products(fmt, 4000, seed=11)
    e, m = fmt.exp_bits, fmt.man_bits
    for sub in (True, False):
        got = int_oracle.mul_reference(a, b, e, m, sub)
        want = [oracle.mul_bits(x, y, e, m, subnormals=sub)
                for x, y in zip(a.tolist(), b.tolist(), strict=True)]
        assert got.tolist() == want, (name, sub)
    # The sample reaches every kind of result it is meant to.
    got = int_oracle.mul_reference(a, b, e, m, True) & fmt.field_mask
    assert (got == 0).any() and ((got > 0) & (got < 1 << m)).any()
    assert (got == fmt.inf_bits).any() and ((got >> m) == fmt.max_exp_field - 1).any()


@pytest.mark.parametrize("name", ["bf16", "e4m3fn"])
def test_reference_into_matches_the_checked_reference(name: str) -> None:
    """``*_reference_into`` (the proof's inner loop, writing into the RTL's dtype) gives the
    bits of the checked ``*_reference``; misuse is a one-line error."""
    fmt = lmul.PRESETS[name]
    e, m = fmt.exp_bits, fmt.man_bits
    if fmt.width == 8:  # every pair (random_block has no finite-only formats)
        grid = np.arange(256, dtype=np.int64)
        a64, b64 = np.repeat(grid, 256), np.tile(grid, 256)
    else:
        a64, b64 = prove.random_block(fmt, seed=3, index=0, n=20_000)
    a, b = a64.astype(fmt.uint_dtype), b64.astype(fmt.uint_dtype)
    out = np.empty_like(a)
    for sub in (True, False):
        int_oracle.mul_reference_into(a, b, out, e, m, sub, fmt.finite_only)
        want = int_oracle.mul_reference(a64, b64, e, m, sub, fmt.finite_only)
        np.testing.assert_array_equal(out.astype(np.uint64), want)
    if not fmt.finite_only:
        int_oracle.add_reference_into(a, b, out, e, m)
        np.testing.assert_array_equal(out.astype(np.uint64),
                                      int_oracle.add_reference(a64, b64, e, m))
    with pytest.raises(TypeError, match="unsigned"):
        int_oracle.mul_reference_into(a64, b64, out, e, m)
    with pytest.raises(ValueError, match="differ in length"):
        int_oracle.mul_reference_into(a, b, out[:-1], e, m)


def test_fp32_add_reference_matches_numpy_float32() -> None:
    fmt = lmul.PRESETS["fp32"]
    a, b = prove.random_block(fmt, seed=5, index=0, n=1 << 18)
    x, y = a.astype(np.uint32).view(np.float32), b.astype(np.uint32).view(np.float32)
    with np.errstate(all="ignore"):
        total = x + y
    s = np.where(np.isnan(total), np.uint64(fmt.qnan_bits), total.view(np.uint32).astype(np.uint64))
    np.testing.assert_array_equal(int_oracle.add_reference(a, b, 8, 23), s)


def test_parse_count() -> None:
    assert prove.parse_count("2^24", "x") == 1 << 24
    assert prove.parse_count("1<<20", "x") == 1 << 20
    assert prove.parse_count("1e9", "x") == 10**9
    assert prove.parse_count("65_536", "x") == 65536
    with pytest.raises(prove.ProofError, match="count like"):
        prove.parse_count("lots", "LMUL_PROVE_PAIRS")


def test_slice_of_the_proof(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The documented ``make test`` slice: every selected configuration, 0 mismatches."""
    pairs = os.environ.get("LMUL_PROVE_PAIRS") or "2^22"
    configs = (os.environ.get("LMUL_PROVE_CONFIGS") or "").split() or SLICE_CONFIGS
    rc = prove.main(["--configs", *configs, "--pairs", pairs, "--fp32-vectors", "1e6",
                     "--state", str(tmp_path / "state.json"), "--out-dir", str(tmp_path),
                     "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0, out
    doc = json.loads((tmp_path / "proof.json").read_text())
    assert len(doc["configs"]) == len(prove.select_configs(configs))
    want = prove.parse_count(pairs, "pairs")
    for entry in doc["configs"]:
        assert entry["mismatches"] == 0 and entry["complete"]
        total = 10**6 if entry["config"] == "fp_add/fp32" else min(
            want, prove.select_configs([entry["config"]])[0].total_pairs)
        assert entry["pairs"] >= total, entry
    assert set(doc["sources"]["verilog"]) >= {"hdl/lmul_core.v", "hdl/fp_add.v", "hdl/fp_mul.v"}
    assert "| mismatches |" in (tmp_path / "proof.md").read_text()


def _broken_copy(tmp_path: Path) -> Path:
    """hdl/ with one constant of lmul_core changed: the underflow limit moves up one binade."""
    return broken_hdl(tmp_path, "lmul_core.v", r"(UNDER_LIMIT\s*=\s*\(BIAS_V\s*\+\s*)ONE_V(\))",
                      lambda m: f"{m[1]}ONE_V + ONE_V{m[2]}")


def test_a_broken_lmul_core_is_caught(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hdl = _broken_copy(tmp_path)
    state = tmp_path / "state.json"
    rc = prove.main(["--configs", BROKEN_CONFIG, "--pairs", "2^20", "--hdl-dir", str(hdl),
                     "--state", str(state), "--no-results", "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 1, out
    assert "MISMATCH" in out and "sim/test_replay.py" in out
    replay = json.loads(next(tmp_path.glob("replay-*.json")).read_text())
    a = np.array([int(v, 0) for v in replay["a"]])
    b = np.array([int(v, 0) for v in replay["b"]])
    cfg = lmul.LMulConfig(8, 7)
    assert [int(v, 0) for v in replay["expected"]] == lmul.lmul_bits(a, b, cfg).tolist()
    # The reported vectors really separate the broken copy from the real RTL.
    with rtlsim.BinOp("lmul_core", replay["parameters"], threads=1, hdl_dirs=[hdl]) as bad, \
            rtlsim.BinOp("lmul_core", replay["parameters"], threads=1) as good:
        assert np.all(bad.run(a, b) != lmul.lmul_bits(a, b, cfg))
        np.testing.assert_array_equal(good.run(a, b), lmul.lmul_bits(a, b, cfg))


def test_profile_reports_each_phase(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--profile``: one line per two-operand configuration with the CPU time of each phase,
    over every pair of the run."""
    rc = prove.main(["--configs", "fp_mul/e5m2/subnormals=1", "--threads", "2", "--profile",
                     "--state", str(tmp_path / "state.json"), "--no-results", "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0, out
    line = next(x for x in out.splitlines() if x.strip().startswith("profile (this run):"))
    for phase in ("operands", "rtl", "reference", "compare"):
        assert re.search(rf"\b{phase} \d+\.\d\d s \(", line), line
    assert "(65,536 pairs)" in line


def test_a_broken_fp_mul_is_caught(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """hdl/ with fp_mul's denormalisation shift forgetting the bits it drops (no sticky): ties
    and near-ties of subnormal results round wrong, and the proof against the product reference
    reports them and exits 1."""
    hdl = broken_hdl(tmp_path, "fp_mul.v", r"assign sticky_shift = right & \(",
                     "assign sticky_shift = 1'b0 & (")
    rc = prove.main(["--configs", "fp_mul/bf16/subnormals=1", "--pairs", "2^20", "--hdl-dir",
                     str(hdl), "--state", str(tmp_path / "state.json"), "--no-results",
                     "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 1, out
    assert "MISMATCH in fp_mul/bf16/subnormals=1" in out
    replay = json.loads(next(tmp_path.glob("replay-*.json")).read_text())
    a = np.array([int(v, 0) for v in replay["a"]])
    b = np.array([int(v, 0) for v in replay["b"]])
    want = [oracle.mul_bits(x, y, 8, 7) for x, y in zip(a.tolist(), b.tolist(), strict=True)]
    assert [int(v, 0) for v in replay["expected"]] == want
    # Every reported product is subnormal (or rounds up to the smallest normal).
    assert all((v & 0x7FFF) <= 0x80 for v in want)


def test_resume_continues_where_it_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(prove, "CHUNK_BLOCKS", 4)
    seen: list[int] = []
    real_block = prove.exhaustive_block

    def counting_block(config, block, index, lo, dtype):
        seen.append(index)
        return real_block(config, block, index, lo, dtype)

    monkeypatch.setattr(prove, "exhaustive_block", counting_block)
    saves = []
    real_save = prove.save_state

    def interrupting_save(path: Path, state: dict) -> None:
        real_save(path, state)
        saves.append(1)
        if len(saves) == 3:  # the initial save, then two chunks of 4 blocks
            raise KeyboardInterrupt

    monkeypatch.setattr(prove, "save_state", interrupting_save)
    state = tmp_path / "state.json"
    args = ["--configs", "fp_add/bf16", "--pairs", "2^20", "--state", str(state),
            "--no-results", "--no-progress", "--threads", "1"]
    assert prove.main(args) == 130
    assert "run the same command again to resume" in capsys.readouterr().err
    first = list(seen)
    assert len(first) == 8
    entry = json.loads(state.read_text())["configs"]["fp_add/bf16"]
    assert entry["blocks_done"] == 8 and not entry["complete"]
    seen.clear()
    assert prove.main(args) == 0
    assert len(seen) == 8 and not set(seen) & set(first)  # only the other 8 blocks ran
    entry = json.loads(state.read_text())["configs"]["fp_add/bf16"]
    assert entry["complete"] and entry["pairs"] == 1 << 20 and entry["mismatches"] == 0
    seen.clear()
    assert prove.main(args) == 0 and seen == []  # complete: nothing re-run
    assert "1,048,576 pairs, 0 mismatches" in capsys.readouterr().out


def test_a_corrupted_resume_file_is_an_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state.json"
    args = ["--configs", "fp_add/e5m2", "--state", str(state), "--no-results", "--no-progress"]
    state.write_text('{"version": 2, "configs": {"fp_add/e5m2": {"pla')
    assert prove.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "corrupted" in err and "--fresh" in err and len(err.splitlines()) == 1
    assert state.read_text().endswith('"pla')  # left alone, not silently replaced
    state.write_text(json.dumps({"version": 1, "sources": {}, "configs": {}}))  # older harness
    assert prove.main(args) == 2
    assert "version 1 != 2" in capsys.readouterr().err
    assert prove.main([*args, "--fresh"]) == 0
    assert "65,536 pairs, 0 mismatches" in capsys.readouterr().out


def test_replay_testbench_flags_a_wrong_vector(tmp_path: Path) -> None:
    """The cocotb replay of a vector file passes the right bits and fails a wrong one."""
    cfg = lmul.LMulConfig(8, 7)
    a = np.array([0x40A0, 0x3F80, 0x7FC0, 0x0001], dtype=np.int64)
    b = np.array([0x40A0, 0xBF80, 0x3F80, 0x7F80], dtype=np.int64)
    expected = lmul.lmul_bits(a, b, cfg).astype(np.int64)
    expected[1] ^= 1  # one deliberately wrong expectation
    path = tmp_path / "replay.json"
    path.write_text(json.dumps({
        "top": "lmul_core", "parameters": cfg.verilog_parameters(),
        "a": [hex(v) for v in a.tolist()], "b": [hex(v) for v in b.tolist()],
        "expected": [hex(v) for v in expected.tolist()]}))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "sim/test_replay.py"],
        cwd=rtlsim.REPO, env={**os.environ, "LMUL_REPLAY": str(path)}, capture_output=True,
        text=True, check=False, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0, log
    assert "1 of 4 vectors differ" in log and "a=0x3f80 b=0xbf80" in log, log[-3000:]


#: The fused dot-product configurations of the slice: one random, one sweep (a few blocks each).
DOT_SLICE_CONFIGS = ["dot/bf16/K=4/align=32/exact", "dot/e4m3_ieee/K=2/align=276/exact/sweep"]


def test_dot_slice_of_the_proof(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A slice of the dot_datapath configurations: 0 mismatches, every step counted."""
    rc = prove.main(["--configs", *DOT_SLICE_CONFIGS, "--pairs", "2^17", "--state",
                     str(tmp_path / "state.json"), "--out-dir", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0, out
    doc = json.loads((tmp_path / "proof.json").read_text())
    assert [e["config"] for e in doc["configs"]] == DOT_SLICE_CONFIGS
    for entry in doc["configs"]:
        assert entry["mismatches"] == 0 and entry["complete"] and entry["pairs"] == 1 << 17
    assert "sim/lib/dot_oracle.py" in doc["sources"]["model"]


def test_a_broken_dot_datapath_is_caught(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """hdl/ with fp_dot_sum's ties rounded away from zero: the proof reports mismatching steps
    (with their lanes and accumulator) and exits 1."""
    hdl = broken_hdl(tmp_path, "fp_dot_sum.v", r"\.sticky  \(stk\)", ".sticky  (stk | grd)")
    rc = prove.main(["--configs", "dot/bf16/K=4/align=32/exact", "--pairs", "2^17",
                     "--hdl-dir", str(hdl), "--state", str(tmp_path / "state.json"),
                     "--no-results", "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 1, out
    assert "MISMATCH in dot/bf16/K=4/align=32/exact" in out and " acc=0x" in out


def test_act_slice_of_the_proof(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A slice of every activation configuration (random blocks of 2^16 consecutive binary32
    inputs): 0 mismatches, every input counted, the unit's sources hashed."""
    rc = prove.main(["--configs", "act/*", "--pairs", "2^18", "--state",
                     str(tmp_path / "state.json"), "--out-dir", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0, out
    doc = json.loads((tmp_path / "proof.json").read_text())
    names = [e["config"] for e in doc["configs"]]
    assert names == [f"act/{s}/{f}" for s in lmul.ACT_PRESETS for f in lmul.ACT_FUNCS]
    for entry in doc["configs"]:
        assert entry["mismatches"] == 0 and entry["complete"] and entry["pairs"] == 1 << 18
    assert {"hdl/act_unit.v", "hdl/act_coef.vh"} <= set(doc["sources"]["verilog"])
    assert prove.select_configs(["act/pwl16/tanh"])[0].total_pairs == 1 << 32


def test_a_broken_act_unit_is_caught(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """hdl/ with act_unit's segment offset product one bit short: the proof of a slice around
    x = 1.0 reports mismatching inputs and exits 1."""
    hdl = broken_hdl(tmp_path, "act_unit.v", r"a \+ \{1'b0, prod\[COEF_BITS\+K-1:K\]\}",
                     "a + {1'b0, prod[COEF_BITS+K-2:K-1]}")
    rc = prove.main(["--configs", "act/pwl16/tanh", "--pairs", "2^16", "--start",
                     str(0x3F800000), "--hdl-dir", str(hdl), "--state",
                     str(tmp_path / "state.json"), "--no-results", "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 1, out
    assert "MISMATCH in act/pwl16/tanh" in out and "x=0x3f8" in out
