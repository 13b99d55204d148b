"""``pytest --cpu-report=N`` (the root conftest): each test's CPU seconds, its own process's and
those of the processes it waited for, in a serial run and on pytest-xdist workers.

The tests of ``cpu_report_cases.py`` spend known CPU: 0.5 s in the test's process, 0.5 s in a
child process, and none (a sleep of 0.5 s, which a wall-clock report would count); each must be
attributed to the right column and the sleep to neither.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sim.tests.cpu_report_cases import BURN_S

REPO = Path(__file__).resolve().parents[2]
CASES = "sim/tests/cpu_report_cases.py"
KNOBS = ("COCOTB_RANDOM_SEED", "LMUL_VECTORS", "LMUL_TILES", "LMUL_FULL", "WAVES")
_ROW = re.compile(r"^\s+([\d.]+) \(own\s+([\d.]+), children\s+([\d.]+), numba\s+([\d.]+)\)\s+"
                  r"(\S+)$")


def _report(*args: str) -> tuple[dict[str, tuple[float, float]], str]:
    env = {k: v for k, v in os.environ.items() if k not in KNOBS}
    res = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                          "--cpu-report=10", *args, CASES], cwd=REPO, env=env,
                         capture_output=True, text=True, check=False, timeout=300)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    rows = {}
    for line in out.splitlines():
        m = _ROW.match(line)
        if m:
            rows[m.group(5).split("::")[-1]] = (float(m.group(2)), float(m.group(3)))
    return rows, out


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_cpu_seconds_go_to_the_process_that_spent_them(xdist: list[str]) -> None:
    rows, out = _report(*xdist)
    assert {"test_burns_in_its_own_process", "test_burns_in_a_child_process",
            "test_sleeps", CASES} <= set(rows), out[-3000:]
    own, kids = rows["test_burns_in_its_own_process"]
    assert own >= 0.9 * BURN_S and kids < 0.1 * BURN_S, out[-3000:]
    own, kids = rows["test_burns_in_a_child_process"]
    assert kids >= 0.9 * BURN_S and own < 0.5 * BURN_S, out[-3000:]
    assert sum(rows["test_sleeps"]) < 0.5 * BURN_S, out[-3000:]
    assert sum(rows[CASES]) >= 1.8 * BURN_S, out[-3000:]
    if xdist:
        assert re.search(r"^  gw0: ", out, re.M) and re.search(r"^  gw1: ", out, re.M), out
