"""The regression knobs (sim/lib/knobs.py): bad values stop pytest at collection time with one line
naming the variable; good values are read as documented."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sim.lib import knobs

REPO = Path(__file__).resolve().parents[2]
KNOBS = ("COCOTB_RANDOM_SEED", "LMUL_VECTORS", "LMUL_TILES", "LMUL_FULL", "WAVES")

BAD = [
    ("COCOTB_RANDOM_SEED", "-1"), ("COCOTB_RANDOM_SEED", "abc"), ("COCOTB_RANDOM_SEED", "1.5"),
    ("COCOTB_RANDOM_SEED", "99999999999999999999"),
    ("LMUL_VECTORS", "1e3"), ("LMUL_VECTORS", "abc"), ("LMUL_VECTORS", "-5"),
    ("LMUL_VECTORS", "0"), ("LMUL_TILES", "1e3"), ("LMUL_TILES", "abc"), ("LMUL_TILES", "-5"),
    ("LMUL_FULL", "maybe"), ("LMUL_FULL", "2"), ("WAVES", "yes"),
]


def _pytest(env_update: dict[str, str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in KNOBS}
    env.update(env_update)
    return subprocess.run([sys.executable, "-m", "pytest", "--collect-only",
                           "-p", "no:cacheprovider", "sim/tests/test_oracle.py"],
                          cwd=REPO, env=env, capture_output=True, text=True, check=False,
                          timeout=300)


@pytest.mark.parametrize(("name", "value"), BAD, ids=[f"{n}={v}" for n, v in BAD])
def test_bad_value_stops_collection_with_one_line(name: str, value: str) -> None:
    res = _pytest({name: value})
    out = res.stdout + res.stderr
    assert res.returncode == 4, out  # pytest's usage-error status
    errors = [line for line in out.splitlines() if line.startswith("ERROR:")]
    assert errors == [f"ERROR: {name} must be {errors[0].split(' must be ', 1)[1]}"], out
    assert repr(value) in errors[0], out
    assert "Traceback" not in out and "INTERNALERROR" not in out, out


def test_good_values_collect_and_show_in_header() -> None:
    res = _pytest({"COCOTB_RANDOM_SEED": "0", "LMUL_VECTORS": " 12 ", "LMUL_TILES": "3",
                   "LMUL_FULL": "false", "WAVES": ""})
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert ("regression knobs: COCOTB_RANDOM_SEED=0 LMUL_VECTORS=12 LMUL_TILES=3 LMUL_FULL=0 "
            "WAVES=0") in out, out


@pytest.mark.parametrize("value", ["1", "true", "YES", "on", " On "])
def test_full_on(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LMUL_FULL", value)
    assert knobs.full_run() is True


@pytest.mark.parametrize("value", ["0", "false", "No", "off", ""])
def test_full_off(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LMUL_FULL", value)
    assert knobs.full_run() is False


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in KNOBS:
        monkeypatch.delenv(name, raising=False)
    assert knobs.random_seed() == 1
    assert knobs.vector_count(123) == 123 and knobs.tile_count(7) == 7
    assert knobs.full_run() is False and knobs.waves() is False
    monkeypatch.setenv("LMUL_VECTORS", "+40")
    monkeypatch.setenv("COCOTB_RANDOM_SEED", str(2**32 - 1))
    assert knobs.vector_count(123) == 40 and knobs.random_seed() == 2**32 - 1
