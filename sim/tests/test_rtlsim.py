"""sim.rtlsim: Verilator builds, their cache, the ctypes driver and its error messages."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import lmul
from sim import rtlsim

BF16 = lmul.LMulConfig(8, 7)  # paper offset, no saturation
E4M3 = lmul.LMulConfig(4, 3, offset=0, saturate=True)


def _pairs(fmt: lmul.Format, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 1 << fmt.width, n, dtype=np.int64),
            rng.integers(0, 1 << fmt.width, n, dtype=np.int64))


def test_binop_matches_the_model_with_and_without_lanes() -> None:
    """Uneven lengths and chunks: full lane groups, a padded tail, several threads."""
    a, b = _pairs(BF16.fmt, 5003, seed=3)
    expected = lmul.lmul_bits(a, b, BF16)
    with rtlsim.BinOp("lmul_core", BF16.verilog_parameters(), threads=2) as wide:
        assert wide.lanes == 16 and wide.dtype == np.uint16
        got = wide.run(a, b, chunk=1000)
    with rtlsim.BinOp("lmul_core", BF16.verilog_parameters(), threads=1, lanes=1) as single:
        got_single = single.run(a, b)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got_single, expected)


def test_eight_bit_exhaustive_through_lanes() -> None:
    grid = np.arange(256, dtype=np.int64)
    a, b = np.repeat(grid, 256), np.tile(grid, 256)
    with rtlsim.BinOp("lmul_core", E4M3.verilog_parameters()) as op:
        assert op.lanes == 32 and op.dtype == np.uint8
        np.testing.assert_array_equal(op.run(a, b), lmul.lmul_bits(a, b, E4M3))


def test_unary_widths_threads_and_close() -> None:
    """The one-operand driver through the shared model pool: E4M3 patterns in (uint8), binary32
    out (uint32), the model's widening bit for bit from two threads at once; a closed model
    refuses to run."""
    from concurrent.futures import ThreadPoolExecutor

    fmt = E4M3.fmt
    x = np.tile(np.arange(256, dtype=np.uint8), 40).reshape(20, 512)
    with rtlsim.Unary("fmt_to_fp32", {"EXP_BITS": 4, "MAN_BITS": 3}, threads=2) as unit:
        assert unit.in_dtype == np.uint8 and unit.out_dtype == np.uint32
        with ThreadPoolExecutor(2) as ex:
            got = list(ex.map(unit.run, [x[:10], x[10:]]))
    ref = np.ascontiguousarray(lmul.format_bits_to_float32(x, fmt)).view(np.uint32)
    np.testing.assert_array_equal(np.concatenate(got), ref)
    with pytest.raises(RuntimeError, match="closed"):
        unit.run(x[:1])


def test_operands_out_of_range_are_rejected() -> None:
    with rtlsim.BinOp("lmul_core", E4M3.verilog_parameters(), threads=1) as op:
        with pytest.raises(ValueError, match="outside"):
            op.run([256], [0])
        with pytest.raises(ValueError, match="elements"):
            op.run([1, 2], [0])
        with pytest.raises(TypeError, match="integer"):
            op.run([1.0], [0.0])


def test_cache_hit_and_rebuild_when_the_verilog_changes(tmp_path: Path) -> None:
    hdl = tmp_path / "hdl"
    shutil.copytree(rtlsim.HDL_DIR, hdl)
    params = E4M3.verilog_parameters()
    first = rtlsim.BinOp("lmul_core", params, threads=1, hdl_dirs=[hdl])
    stamp = first.lib_path.stat().st_mtime_ns
    again = rtlsim.BinOp("lmul_core", params, threads=1, hdl_dirs=[hdl])
    assert again.lib_path == first.lib_path
    assert again.lib_path.stat().st_mtime_ns == stamp  # not rebuilt
    with open(hdl / "lmul_core.v", "a") as fh:
        fh.write("// an edit\n")
    edited = rtlsim.BinOp("lmul_core", params, threads=1, hdl_dirs=[hdl])
    assert edited.lib_path != first.lib_path
    other = rtlsim.BinOp("lmul_core", {**params, "SATURATE": 0}, threads=1, hdl_dirs=[hdl])
    assert other.lib_path not in (first.lib_path, edited.lib_path)
    # Both libraries hold a class of the same name; each must still run its own parameters.
    grid = np.arange(256, dtype=np.int64)
    a, b = np.repeat(grid, 256), np.tile(grid, 256)
    np.testing.assert_array_equal(first.run(a, b), lmul.lmul_bits(a, b, E4M3))
    no_sat = lmul.LMulConfig(4, 3, offset=0, saturate=False)
    np.testing.assert_array_equal(other.run(a, b), lmul.lmul_bits(a, b, no_sat))
    for op in (first, again, edited, other):
        op.close()


def test_model_and_driver_compiles_read_the_precompiled_header(tmp_path: Path) -> None:
    """Both compiles of a build (the generated model, with the flags its makefile uses, and the
    driver) find verilated.h precompiled: GCC's -H marks a .gch it uses with '!' and one it
    rejects with 'x' (a compile at -O0 must reject the -O2 header, so the check can fail)."""
    version_line, _ = rtlsim.verilator_version()
    include = rtlsim._verilator_include()
    obj = tmp_path / "obj"
    hdl = rtlsim.HDL_DIR
    subprocess.run(["verilator", "--cc", "--top-module", "lmul_core", "--Mdir", str(obj),
                    "-CFLAGS", "-fPIC", "-y", str(hdl), f"-I{hdl}", str(hdl / "lmul_core.v")],
                   check=True, capture_output=True)
    make = ["make", "-f", "Vlmul_core.mk", *rtlsim._OPT, *rtlsim._MAKE_ONE_UNIT]
    model = rtlsim._model_compile_flags(make, obj, "Vlmul_core")
    assert model is not None and "-fPIC" in model and "-c" not in model
    src = obj / "probe.cpp"
    src.write_text('#include "verilated.h"\nint probe() { return 0; }\n')

    def marks(cxx: str, flags: list[str], extra: tuple[str, ...] = ()) -> set[str]:
        pch = rtlsim._precompiled_header(cxx, flags, version_line)
        assert pch, "no precompiled header was made"
        res = subprocess.run([cxx, *flags, *extra, *pch, "-H", "-fsyntax-only", str(src)],
                             cwd=obj, capture_output=True, text=True, check=False)
        assert res.returncode == 0, res.stderr[-2000:]
        return {line[0] for line in res.stderr.splitlines() if line.endswith(".gch")}

    cxx = rtlsim._which("g++", "g++")  # as build() names it: part of the header's key
    driver = [*rtlsim._CXXFLAGS, "-pthread", f"-I{include}", f"-I{include / 'vltstd'}"]
    assert marks(model[0], model[1:]) == {"!"}
    assert marks(cxx, driver) == {"!"}
    assert marks(cxx, driver, ("-O0",)) == {"x"}


def test_rejected_parameters_give_the_rtl_message() -> None:
    # 17-bit operands: the module itself is the top (-G parameters).
    with pytest.raises(rtlsim.RtlBuildError) as exc:
        rtlsim.BinOp("lmul_core", {"EXP_BITS": 9, "MAN_BITS": 7, "OFFSET": 8, "SATURATE": 0})
    assert "lmul_core" in str(exc.value) and "EXP_BITS=9" in str(exc.value)
    assert "\n" not in str(exc.value)
    # 16-bit operands: the parameter reaches the module through the generated lane wrapper.
    with pytest.raises(rtlsim.RtlBuildError) as exc:
        rtlsim.BinOp("lmul_core", {**BF16.verilog_parameters(), "SATURATE": 2})
    assert "SATURATE=2" in str(exc.value) and "\n" not in str(exc.value)


def test_missing_verilator_names_the_debian_package(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(rtlsim.ToolMissingError, match=r"Debian package `verilator`"):
        rtlsim.verilator_version()
    proc = subprocess.run(
        [sys.executable, "-m", "sim.prove", "--configs", "fp_add/e5m2", "--no-results",
         "--no-progress", "--state", str(tmp_path / "state.json")],
        cwd=rtlsim.REPO, env={**os.environ, "PATH": str(empty)}, capture_output=True, text=True,
        check=False, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "`verilator`" in lines[0], proc.stderr


def test_old_verilator_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "bin" / "verilator"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'Verilator 4.038 2020-07-11 rev v4.036-114-g0cd4a57ad'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(rtlsim.ToolMissingError, match=r"too old.*`verilator`"):
        rtlsim.verilator_version()


def test_build_key_covers_the_driver_headers(tmp_path: Path) -> None:
    """A change of the shared header (rtlsim_model.h) next to a driver must give a new build."""
    drivers = tmp_path / "verilator"
    drivers.mkdir()
    for f in (rtlsim.BINOP_DRIVER, rtlsim.DRIVER_DIR / "rtlsim_model.h"):
        shutil.copyfile(f, drivers / f.name)
    cpp = [drivers / rtlsim.BINOP_DRIVER.name]
    assert drivers / "rtlsim_model.h" in rtlsim.driver_files(cpp)
    before = rtlsim.build_key("lmul_core", {"EXP_BITS": 4}, cpp, [rtlsim.HDL_DIR])
    header = drivers / "rtlsim_model.h"
    header.write_text(header.read_text() + "// changed\n")
    assert rtlsim.build_key("lmul_core", {"EXP_BITS": 4}, cpp, [rtlsim.HDL_DIR]) != before


SIM_HDL = rtlsim.REPO / "sim" / "hdl"


def _verilator_deps(top: str, dirs: list[Path], params: dict[str, int], work: Path) -> set[str]:
    """The Verilog files Verilator itself read for ``top`` (its ``--MMD`` dependency file)."""
    (work / top).mkdir(parents=True)
    cmd = ["verilator", "--cc", "--MMD", "-Wno-fatal", "--Mdir", str(work / top),
           "--top-module", top, *[f"-G{k}={v}" for k, v in params.items()]]
    for d in dirs:
        cmd += ["-y", str(d), f"-I{d}"]
    subprocess.run([*cmd, str(rtlsim._find_top_file(top, dirs))], check=True,
                   capture_output=True)
    (dep,) = (work / top).glob("*__ver.d")
    return {Path(w).name for w in dep.read_text().split()
            if Path(w).suffix in (".v", ".vh", ".sv", ".svh")}


def _verilator_reads(tmp_path: Path) -> list[tuple[str, list[Path], dict[str, int], set[str]]]:
    """Every module of hdl/, the fused branches and the lanes wrappers, with the files Verilator
    read for each (run once, then held against each scan)."""
    cases: list[tuple[str, list[Path], dict[str, int]]] = [
        (p.stem, [rtlsim.HDL_DIR], {}) for p in sorted(rtlsim.HDL_DIR.glob("*.v"))]
    cases += [("mac_array", [rtlsim.HDL_DIR], {"DOT_K": 4, "ALIGN_BITS": 16}),
              ("dot_pe", [rtlsim.HDL_DIR], {"PIPELINE": 1})]
    cases += [(p.stem, [SIM_HDL, rtlsim.HDL_DIR], {}) for p in sorted(SIM_HDL.glob("*_lanes.v"))]
    return [(top, dirs, params, _verilator_deps(top, dirs, params, tmp_path / str(i)))
            for i, (top, dirs, params) in enumerate(cases)]


def _missing(scan: Callable[[str, list[Path]], list[Path]],
             reads: list[tuple[str, list[Path], dict[str, int], set[str]]]
             ) -> dict[str, set[str]]:
    """Files Verilator read that ``scan`` (a design_sources) leaves out, per design."""
    out = {}
    for top, dirs, params, read in reads:
        gap = read - {p.name for p in scan(top, dirs)}
        if gap:
            out[f"{top} {params}"] = gap
    return out


def test_design_sources_cover_every_file_verilator_reads(tmp_path: Path) -> None:
    """The build key is taken over design_sources: it must hold every file elaboration reads
    (checked against Verilator's own dependency list for every module of hdl/, the lanes
    wrappers and the fused branches), and a scan that misses the includes is caught."""
    reads = _verilator_reads(tmp_path)
    assert len(reads) > len(list(rtlsim.HDL_DIR.glob("*.v")))
    assert _missing(rtlsim.design_sources, reads) == {}

    def no_includes(top: str, dirs: list[Path]) -> list[Path]:
        return [p for p in rtlsim.design_sources(top, dirs) if p.suffix != ".vh"]

    gaps = _missing(no_includes, reads)
    assert gaps and all(g == {"lmul_defs.vh"} or "act_coef.vh" in g for g in gaps.values())


def test_build_key_ignores_files_the_design_does_not_use(tmp_path: Path) -> None:
    """An edit of a module lmul_core does not instantiate keeps its cached build; an edit of
    one it does (fp_classify.v) or of the shared header gives a new one."""
    copy = tmp_path / "hdl"
    shutil.copytree(rtlsim.HDL_DIR, copy)
    cpp = [rtlsim.BINOP_DRIVER]

    def key() -> str:
        return rtlsim.build_key("lmul_core", {"EXP_BITS": 4}, cpp, [copy])

    before = key()
    assert before == rtlsim.build_key("lmul_core", {"EXP_BITS": 4}, cpp, [rtlsim.HDL_DIR])
    for name, changes in (("dot_pe.v", False), ("fp_add.v", False), ("fp_classify.v", True),
                          ("lmul_defs.vh", True)):
        path = copy / name
        text = path.read_text()
        path.write_text(text + "// edited\n")
        assert (key() != before) is changes, name
        path.write_text(text)
    assert key() == before
