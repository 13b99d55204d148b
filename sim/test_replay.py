"""Replay a vector file in the cocotb testbench (Icarus), e.g. the mismatches the proof found.

``LMUL_REPLAY=<file.json> pytest sim/test_replay.py -s`` applies the file's operand pairs to the
module it names through the packed-lane wrapper in ``sim/hdl/`` and asserts that the RTL's bits
equal the file's ``expected`` bits (``WAVES=1`` also dumps a waveform). Without ``LMUL_REPLAY``
the test is skipped. ``python -m sim.prove`` writes such files (and prints this command)
when the RTL and the reference disagree; the file format is::

    {"top": "lmul_core", "parameters": {"EXP_BITS": 8, ...},
     "a": ["0x3f80", ...], "b": [...], "expected": [...]}
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
import numpy as np
import pytest

from sim.lib.common import assert_bits_equal, drive_lanes, run_cocotb, tb_parameters

LANES = 16
#: The packed-lane test wrapper of each replayable module.
WRAPPERS = {"lmul_core": "lmul_core_lanes", "fp_mul": "fp_mul_lanes", "fp_add": "fp_add_lanes"}


def load_vectors(path: Path) -> dict:
    """Read and validate a replay file; raise ValueError naming what is wrong."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"LMUL_REPLAY={path}: cannot read a JSON vector file ({exc})") from None
    for key in ("top", "parameters", "a", "b", "expected"):
        if key not in data:
            raise ValueError(f"LMUL_REPLAY={path}: missing {key!r}")
    if data["top"] not in WRAPPERS:
        raise ValueError(f"LMUL_REPLAY={path}: top {data['top']!r} is not one of "
                         f"{sorted(WRAPPERS)}")
    if not len(data["a"]) == len(data["b"]) == len(data["expected"]) or not data["a"]:
        raise ValueError(f"LMUL_REPLAY={path}: a, b, expected must be equally long, non-empty")
    return data


def _ints(values: list) -> np.ndarray:
    return np.array([int(v, 0) if isinstance(v, str) else int(v) for v in values], dtype=np.uint64)


@cocotb.test()
async def replay(dut) -> None:
    """Apply every pair of the file and compare the RTL with the file's expected bits."""
    data = load_vectors(Path(os.environ["LMUL_REPLAY"]))
    params = tb_parameters()
    width = 1 + params["EXP_BITS"] + params["MAN_BITS"]
    a, b, expected = _ints(data["a"]), _ints(data["b"]), _ints(data["expected"])
    ports = ("a_bus", "b_bus", "y_bus") if hasattr(dut, "a_bus") else ("a", "b", "y")
    got = await drive_lanes(dut, a, b, width, params["LANES"], ports)
    for i in range(min(len(a), 20)):
        dut._log.info("a=0x%x b=0x%x -> rtl=0x%x expected=0x%x", int(a[i]), int(b[i]),
                      int(got[i]), int(expected[i]))
    assert_bits_equal(f"replay {data['top']}", a, b, got, expected,
                      f"{data.get('config', data['top'])} {data['parameters']}")
    dut._log.info("%d replayed vectors bit-exact", len(a))


def test_replay() -> None:
    """The file named by ``LMUL_REPLAY`` through the cocotb testbench (skipped when unset)."""
    name = os.environ.get("LMUL_REPLAY", "").strip()
    if not name:
        pytest.skip("LMUL_REPLAY is not set: nothing to replay (python -m sim.prove "
                    "writes a vector file and prints the command on a mismatch)")
    path = Path(name).resolve()
    data = load_vectors(path)
    wrapper = WRAPPERS[data["top"]]
    params = {str(k): int(v) for k, v in data["parameters"].items()}
    params["LANES"] = LANES
    tag = "replay-" + "-".join(f"{k}{v}" for k, v in sorted(params.items()))
    run_cocotb("test_replay", wrapper, (f"{wrapper}.v",), parameters=params,
               extra_env={"LMUL_REPLAY": str(path)}, build_tag=tag)
