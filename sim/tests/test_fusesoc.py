"""The FuseSoC core description ``lmul.core`` (CAPI2) cannot rot: its file lists name every
design file (hdl/*.v, hdl/*.vh) and test wrapper (sim/hdl/*.v) and nothing else, its targets
expose every parameter of their toplevel, and ``fusesoc`` itself runs the ``lint`` (Verilator),
``sim`` (Icarus, the self-checking sim/tb/lmul_selfcheck_tb.v) and ``synth`` (yosys) targets.
The checks are seen to fail on a core with a missing file, on an out-of-range parameter and on a
design with a broken multiplier.

fusesoc and edalize come from the ``fusesoc`` extra of pyproject.toml (scripts/setup.sh installs
it); each run uses an empty FuseSoC configuration, so a user's own libraries do not enter.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CORE = REPO / "lmul.core"
VLNV = "lmul:ip:lmul"
#: The console script of the venv that runs the tests (fusesoc is not importable as ``-m``).
FUSESOC = Path(sys.executable).parent / "fusesoc"

_PARAM_RE = re.compile(r"^\s*parameter\s+integer\s+(\w+)", re.MULTILINE)


def load_core(core: Path = CORE) -> dict:
    """The parsed CAPI2 file (after its ``CAPI=2:`` header line)."""
    text = core.read_text()
    assert text.startswith("CAPI=2:"), f"{core.name}: first line must be CAPI=2:"
    return yaml.safe_load(text.split("\n", 1)[1])


def fileset_entries(core: dict, name: str) -> dict[str, dict]:
    """Path -> attributes (``{}`` for a plain entry) of the files of fileset ``name``."""
    entries: dict[str, dict] = {}
    for item in core["filesets"][name]["files"]:
        if isinstance(item, dict):
            (path, attrs), = item.items()
            entries[path] = attrs
        else:
            entries[item] = {}
    return entries


def listing_problems(root: Path) -> list[str]:
    """Differences between the core's file lists and the files on disk below ``root``: rtl must
    be exactly hdl/*.v plus hdl/*.vh (the latter as include files), wrappers exactly
    sim/hdl/*.v, and every listed file of any fileset must exist."""
    core = load_core(root / "lmul.core")
    problems = []
    want = {
        "rtl": sorted(root.glob("hdl/*.v")) + sorted(root.glob("hdl/*.vh")),
        "wrappers": sorted(root.glob("sim/hdl/*.v")),
    }
    for fileset, paths in want.items():
        listed = fileset_entries(core, fileset)
        on_disk = {p.relative_to(root).as_posix() for p in paths}
        problems += [f"{fileset}: {p} is not listed" for p in sorted(on_disk - set(listed))]
        for path, attrs in sorted(listed.items()):
            if path.endswith(".vh") and not attrs.get("is_include_file"):
                problems.append(f"{fileset}: {path} must have is_include_file: true")
    for fileset in core["filesets"]:
        problems += [f"{fileset}: {p} does not exist" for p in fileset_entries(core, fileset)
                     if not (root / p).is_file()]
    return problems


def module_parameters(module: str) -> set[str]:
    """The parameter names of hdl/<module>.v."""
    return set(_PARAM_RE.findall((REPO / "hdl" / f"{module}.v").read_text()))


def run_fusesoc(work: Path, *args: str) -> subprocess.CompletedProcess:
    """``fusesoc <args>`` in directory ``work``, with FuseSoC's user configuration, data and cache
    directories inside ``work``; stdout and stderr captured."""
    if not FUSESOC.is_file():
        pytest.fail(f"{FUSESOC} missing: install the extra (pip install -e '.[fusesoc]')")
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "XDG_CACHE_HOME": str(work / "cache"),
           "XDG_DATA_HOME": str(work / "data"), "XDG_CONFIG_HOME": str(work / "config")}
    env["PATH"] = f"{FUSESOC.parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run([str(FUSESOC), *args], cwd=work, env=env, capture_output=True,
                          text=True, timeout=600, check=False)


def fusesoc(root: Path, work: Path, target: str, *params: str) -> subprocess.CompletedProcess:
    """``fusesoc run --target <target>`` of the core below ``root``, built in ``work`` with an
    empty configuration, with backend arguments ``params`` (``--NAME=value``)."""
    conf = work / "empty.conf"
    work.mkdir(parents=True, exist_ok=True)
    conf.write_text("")
    return run_fusesoc(work, "--config", str(conf), "--cores-root", str(root), "run",
                       "--build-root", str(work / "build"), "--target", target, VLNV, *params)


def build_dir(work: Path, target: str) -> Path:
    return work / "build" / "lmul_ip_lmul_0.1.0" / target


def broken_copy(tmp_path: Path) -> Path:
    """A copy of the core and its files whose lmul_core keeps its header and ports but returns
    its first operand (the body after the port list is replaced, whatever it is)."""
    root = tmp_path / "repo"
    core = load_core()
    for fileset in core["filesets"]:
        for p in fileset_entries(core, fileset):
            (root / p).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(REPO / p, root / p)
    shutil.copy(CORE, root / "lmul.core")
    rtl = root / "hdl" / "lmul_core.v"
    text = rtl.read_text()
    ports_end = re.compile(r"\)\s*;").search(text, text.index("module lmul_core")).end()
    rtl.write_text(text[:ports_end] + "\n  assign y = a;\nendmodule\n`default_nettype wire\n")
    return root


def test_core_lists_every_design_file_and_nothing_else() -> None:
    assert listing_problems(REPO) == []


def test_listing_check_catches_a_missing_and_a_stale_entry(tmp_path: Path) -> None:
    (tmp_path / "hdl").mkdir()
    (tmp_path / "sim" / "hdl").mkdir(parents=True)
    for name in ("lmul_core.v", "new_module.v", "lmul_defs.vh"):
        (tmp_path / "hdl" / name).write_text("")
    (tmp_path / "lmul.core").write_text(
        "CAPI=2:\nname: lmul:ip:lmul:0.1.0\nfilesets:\n"
        "  rtl:\n    files: [hdl/lmul_core.v, hdl/gone.v, hdl/lmul_defs.vh]\n"
        "  wrappers:\n    files: []\n")
    assert listing_problems(tmp_path) == [
        "rtl: hdl/new_module.v is not listed",
        "rtl: hdl/lmul_defs.vh must have is_include_file: true",
        "rtl: hdl/gone.v does not exist",
    ]


@pytest.mark.parametrize(("target", "module"), [("lint", "mac_array"), ("synth", "lmul_core")])
def test_targets_expose_every_parameter_of_their_toplevel(target: str, module: str) -> None:
    core = load_core()
    assert core["targets"][target]["toplevel"] == module
    assert set(core["targets"][target]["parameters"]) == module_parameters(module)
    assert set(core["targets"][target]["parameters"]) <= set(core["parameters"])


def test_lint_target_is_clean(tmp_path: Path) -> None:
    proc = fusesoc(REPO, tmp_path, "lint")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "-Wall" in (build_dir(tmp_path, "lint") / "lmul_ip_lmul_0.1.0.vc").read_text()


def test_lint_target_rejects_an_out_of_range_parameter(tmp_path: Path) -> None:
    proc = fusesoc(REPO, tmp_path, "lint", "--ROWS=0")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "ROWS=0 out of range" in out


def test_sim_target_passes(tmp_path: Path) -> None:
    proc = fusesoc(REPO, tmp_path, "sim")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "PASS lmul_selfcheck_tb" in out and "FAIL" not in out


def test_sim_target_fails_on_a_broken_multiplier(tmp_path: Path) -> None:
    proc = fusesoc(broken_copy(tmp_path), tmp_path / "work", "sim")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    # y = a: 1 x 1 gives 1.0 (3F80) instead of 1.0625 (3F88).
    assert "FAIL lmul_core 3f80 x 3f80 = 3f80, expected 3f88" in out
    assert "FAIL mac_array" in out and "PASS" not in out


def test_synth_target_maps_the_unit_with_its_parameters(tmp_path: Path) -> None:
    widths = {}
    for fmt, params in (("bf16", ()), ("e4m3", ("--EXP_BITS=4", "--MAN_BITS=3"))):
        work = tmp_path / fmt
        proc = fusesoc(REPO, work, "synth", *params)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        log = (build_dir(work, "synth") / "yosys.log").read_text()
        cells = [int(n) for n in re.findall(r"Number of cells:\s+(\d+)", log)]
        assert cells and cells[-1] > 20, "no gates in the synthesized unit"
        netlist = json.loads((build_dir(work, "synth") / "lmul_ip_lmul_0.1.0.json").read_text())
        ports = netlist["modules"]["lmul_core"]["ports"]
        widths[fmt] = {p: len(ports[p]["bits"]) for p in ("a", "b", "y")}
    assert widths == {"bf16": {"a": 16, "b": 16, "y": 16}, "e4m3": {"a": 8, "b": 8, "y": 8}}


#: A user's core and top level that pull the IP in as a dependency (README, "Use the IP").
USER_CORE = """CAPI=2:
name: user:demo:top:0.1.0
filesets:
  rtl:
    files: [demo_top.v]
    file_type: verilogSource
    depend: [lmul:ip:lmul]
targets:
  default:
    filesets: [rtl]
    flow: lint
    flow_options: {tool: verilator, verilator_options: [-Wall]}
    toplevel: demo_top
"""
USER_TOP = """`default_nettype none
module demo_top (input wire [15:0] a, input wire [15:0] b, output wire [15:0] y);
  lmul_core u_mul (.a(a), .b(b), .y(y));
endmodule
"""


def test_readme_lines_pull_the_ip_into_a_user_project(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text()
    assert "fusesoc library add lmul <path or git URL of this repository>" in readme
    assert f"fusesoc run --target sim {VLNV}" in readme
    add = run_fusesoc(tmp_path, "library", "add", "lmul", str(REPO))
    assert add.returncode == 0, add.stdout + add.stderr
    sim = run_fusesoc(tmp_path, "run", "--target", "sim", VLNV)
    assert sim.returncode == 0 and "PASS lmul_selfcheck_tb" in sim.stdout, sim.stdout + sim.stderr
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "demo.core").write_text(USER_CORE)
    (tmp_path / "user" / "demo_top.v").write_text(USER_TOP)
    user = run_fusesoc(tmp_path, "--cores-root", "user", "run", "user:demo:top")
    assert user.returncode == 0, user.stdout + user.stderr
    vc = (tmp_path / "build" / "user_demo_top_0.1.0" / "default" / "user_demo_top_0.1.0.vc")
    listed = vc.read_text()
    # The dependency brings the design (its default target), not the project's testbenches.
    assert "hdl/lmul_core.v" in listed and "lmul_selfcheck_tb" not in listed
