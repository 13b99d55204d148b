"""``make test`` runs on pytest-xdist workers; what must still hold there.

* A bad regression knob stops the run in the controller, before any worker starts: one line
  naming the variable, exit status 4. A good run prints the knob header once.
* Processes that reach one cocotb build directory at the same time (two workers, a worker and a
  ``make sim``) compile it once, and every simulation passes with its own results file
  (:func:`sim.lib.common.run_cocotb` compiles under an exclusive lock, simulates under a shared
  one).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

from sim.lib.common import BUILD_DIR

REPO = Path(__file__).resolve().parents[2]
KNOBS = ("COCOTB_RANDOM_SEED", "LMUL_VECTORS", "LMUL_TILES", "LMUL_FULL", "WAVES")


def _xdist_pytest(env_update: dict[str, str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in KNOBS}
    env.update(env_update)
    return subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "-p", "no:cacheprovider",
                           "sim/tests/test_cli.py"], cwd=REPO, env=env, capture_output=True,
                          text=True, check=False, timeout=300)


def test_bad_knob_stops_an_xdist_run_before_the_workers() -> None:
    res = _xdist_pytest({"LMUL_TILES": "abc"})
    out = res.stdout + res.stderr
    assert res.returncode == 4, out
    errors = [line for line in out.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and errors[0].startswith("ERROR: LMUL_TILES must be"), out
    assert "workers" not in out and "Traceback" not in out, out


def test_xdist_run_prints_the_knob_header_once() -> None:
    res = _xdist_pytest({"COCOTB_RANDOM_SEED": "7"})
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert "2 workers" in out, out[-3000:]
    headers = [line for line in out.splitlines() if line.startswith("regression knobs:")]
    assert len(headers) == 1 and "COCOTB_RANDOM_SEED=7" in headers[0], out[-3000:]


def test_concurrent_runs_share_one_cocotb_build() -> None:
    """Three processes start the same (fresh) build directory at once: one compiles, all pass."""
    tag = f"parallel-{uuid.uuid4().hex[:12]}"
    build = BUILD_DIR / f"stream_fault-{tag}"
    code = ("from sim.lib.common import run_cocotb; "
            "run_cocotb('test_stream', 'stream_fault', ('stream_fault.v',), "
            f"parameters={{'WIDTH': 8, 'FAULT': 0}}, build_tag={tag!r})")
    env = {k: v for k, v in os.environ.items() if k not in KNOBS}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    try:
        procs = [subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for _ in range(3)]
        outs = [p.communicate(timeout=600)[0] for p in procs]
        for p, out in zip(procs, outs, strict=True):
            assert p.returncode == 0, out[-3000:]
        compiles = sum(out.count("Running command: iverilog") for out in outs)
        assert compiles == 1, "\n".join(outs)[-3000:]
        results = sorted(build.glob("*_results.xml"))
        assert len(results) == 3, results
        assert all("<testcase" in r.read_text() for r in results), results
    finally:
        shutil.rmtree(build, ignore_errors=True)
        build.with_name(build.name + ".lock").unlink(missing_ok=True)
