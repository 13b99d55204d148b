"""Tests of known CPU use, run by ``sim/tests/test_cpu_report.py`` in a pytest subprocess (the
file name does not start with ``test_``, so a plain ``pytest`` does not collect it): CPU spent in
the test's process, CPU spent in a process the test waits for, and none (a sleep)."""

from __future__ import annotations

import subprocess
import sys
import time

#: CPU seconds each burning test spends, counted by the process that spends them.
BURN_S = 0.5


def burn(seconds: float) -> None:
    """Spin until this process has used ``seconds`` more CPU seconds."""
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_burns_in_its_own_process() -> None:
    burn(BURN_S)


def test_burns_in_a_child_process() -> None:
    code = f"from sim.tests.cpu_report_cases import burn; burn({BURN_S})"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_sleeps() -> None:
    time.sleep(BURN_S)
