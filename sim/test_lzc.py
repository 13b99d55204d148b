"""cocotb regression of hdl/lzc.v (leading-zero counter) against Python's ``int.bit_length``.

``sim/hdl/lzc_widths.v`` holds LANES counters of every WIDTH 1..24. Expected for an input x of
width w: ``count = w - x.bit_length()`` (so w for zero) and ``all_zero = (x == 0)``.

* Widths 1..12: every input (exhaustive).
* Widths 13..24: zero, and every position of the leading one with random bits below it (plus the
  lone one and all ones below it): default 64 inputs per position (``LMUL_VECTORS`` overrides),
  seed ``COCOTB_RANDOM_SEED``; both printed.

``test_lzc_regression_catches_a_broken_counter`` runs the same testbench on a copy of lzc.v
without its last normaliser stage and requires it to fail.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cocotb
import numpy as np
import pytest
from cocotb.triggers import Timer

from sim.lib.common import (
    BUILD_DIR,
    HDL_DIR,
    REPO,
    SIM_HDL_DIR,
    design_sources,
    random_seed,
    run_cocotb,
    tb_parameters,
    vector_count,
)

MAX_WIDTH = 24
LANES = 16  # vectors per step (wider buses cost Icarus more per vector)
EXHAUSTIVE_WIDTH = 12
COUNT_BITS = MAX_WIDTH.bit_length()  # $clog2(MAX_WIDTH + 1)


def lzc_inputs(width: int, per_position: int, rng: np.random.Generator) -> np.ndarray:
    """Inputs of one width: all of them up to EXHAUSTIVE_WIDTH; above, zero and each position of
    the leading one with ``per_position`` random patterns below it, the lone one and all ones."""
    if width <= EXHAUSTIVE_WIDTH:
        return np.arange(1 << width, dtype=np.int64)
    values = [np.zeros(1, dtype=np.int64)]
    for p in range(width):
        low = rng.integers(0, 1 << p, per_position, dtype=np.int64) if p else np.zeros(1, np.int64)
        values.append((1 << p) | np.concatenate([low, [0, (1 << p) - 1]]))
    return np.concatenate(values)


def to_bits(values: np.ndarray, width: int) -> np.ndarray:
    """(len(values), width) array of bits, LSB first."""
    return ((values[:, None] >> np.arange(width)) & 1).astype(np.uint8)


def from_bus(word: int, fields: int, field_bits: int) -> np.ndarray:
    """The ``fields`` unsigned fields of ``field_bits`` bits each packed in ``word``, field 0 at
    the LSB."""
    raw = np.frombuffer(word.to_bytes((fields * field_bits + 7) // 8, "little"), np.uint8)
    bits = np.unpackbits(raw, bitorder="little")[:fields * field_bits].reshape(fields, field_bits)
    return bits.astype(np.int64) @ (1 << np.arange(field_bits, dtype=np.int64))


@cocotb.test()
async def run_lzc(dut) -> None:
    """Every width 1..MAX_WIDTH: exhaustive up to EXHAUSTIVE_WIDTH, leading positions above."""
    seed, per_position = random_seed(), vector_count(64)
    rng = np.random.default_rng(seed)
    lanes = tb_parameters()["LANES"]
    inputs = {w: lzc_inputs(w, per_position, rng) for w in range(1, MAX_WIDTH + 1)}
    steps = max(-(-len(v) // lanes) for v in inputs.values())
    dut._log.info("lzc widths 1..%d: %d inputs in %d steps, COCOTB_RANDOM_SEED=%d, %d per "
                  "leading position above %d bits", MAX_WIDTH,
                  sum(len(v) for v in inputs.values()), steps, seed, per_position,
                  EXHAUSTIVE_WIDTH)
    bad: list[str] = []
    for step in range(steps):
        # Widths whose inputs ran out repeat their last chunk (checked again, harmlessly).
        chunks = {}
        for w, v in inputs.items():
            start = min(step * lanes, max(0, len(v) - lanes))
            chunk = v[start:start + lanes]
            chunks[w] = np.concatenate([chunk, np.zeros(lanes - len(chunk), np.int64)])
        bits = np.concatenate([to_bits(chunks[w], w).ravel() for w in inputs])
        dut.x_bus.value = int.from_bytes(np.packbits(bits, bitorder="little").tobytes(), "little")
        await Timer(1, unit="ns")
        counts = from_bus(int(dut.count_bus.value), MAX_WIDTH * lanes, COUNT_BITS)
        zeros = from_bus(int(dut.zero_bus.value), MAX_WIDTH * lanes, 1)
        for w, chunk in chunks.items():
            want = [w - int(x).bit_length() for x in chunk]
            got_c = counts[(w - 1) * lanes:w * lanes]
            got_z = zeros[(w - 1) * lanes:w * lanes]
            for x, c, z, e in zip(chunk, got_c, got_z, want, strict=True):
                if c != e or z != int(x == 0):
                    bad.append(f"WIDTH={w} x={int(x):#x}: count {c} all_zero {z}, expected {e} "
                               f"{int(x == 0)}")
    assert not bad, f"{len(bad)} lzc outputs differ from bit_length, first: {bad[:5]}"


def test_lzc() -> None:
    run_cocotb("test_lzc", "lzc_widths", ("lzc_widths.v",),
               parameters={"MAX_WIDTH": MAX_WIDTH, "LANES": LANES})


#: A deliberately broken counter: the last normaliser stage (shift by one) is left out.
BROKEN_LINE = ("for (k = COUNT_BITS - 1; k >= 0; k = k - 1)",
               "for (k = COUNT_BITS - 1; k >= 1; k = k - 1)")


def test_lzc_regression_catches_a_broken_counter(tmp_path: Path) -> None:
    """The regression must fail on a copy of lzc.v without the shift-by-one stage (one changed
    line)."""
    from cocotb_test.simulator import run

    src = (HDL_DIR / "lzc.v").read_text()
    assert src.count(BROKEN_LINE[0]) == 1, "lzc.v changed: update BROKEN_LINE"
    broken = tmp_path / "lzc.v"
    broken.write_text(src.replace(*BROKEN_LINE))
    sources = [p for p in design_sources() if Path(p).name != "lzc.v"]
    build = BUILD_DIR / "lzc_widths-broken"
    shutil.rmtree(build, ignore_errors=True)
    params = {"MAX_WIDTH": MAX_WIDTH, "LANES": LANES}
    with pytest.raises(SystemExit):
        run(simulator="icarus", toplevel="lzc_widths", module="sim.test_lzc",
            verilog_sources=[*sources, str(broken), str(SIM_HDL_DIR / "lzc_widths.v")],
            includes=[str(HDL_DIR)], parameters=params, sim_build=str(build),
            extra_env={"COCOTB_RANDOM_SEED": str(random_seed()), "LMUL_VECTORS": "4",
                       "LMUL_TB_PARAMETERS": json.dumps(params)},
            python_search=[str(REPO)], timescale="1ns/1ps", testcase="run_lzc")
    # It must have failed on the comparison, not on something else.
    reports = "".join(p.read_text() for p in build.glob("*results.xml"))
    assert "differ from bit_length" in reports, reports[-2000:]
