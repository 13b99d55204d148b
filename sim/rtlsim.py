"""Verilator models of the project's RTL as shared libraries, loaded with ctypes.

:func:`build` verilates one top module with one parameter set, links it with a C++ driver (for
example ``sim/verilator/binop.cpp``) and Verilator's runtime into ``lib<top>.so`` and caches it
under ``build/rtlsim/`` (``RTLSIM_BUILD_DIR`` overrides). The cache key is the SHA-256 of the top
name, the parameters, every Verilog source in the search directories (``hdl/`` by default), the
driver sources, the compiler flags and the Verilator version, so editing any of them rebuilds.
:func:`load` returns the ``ctypes.CDLL``. Wrappers with numpy arrays, each owning model instances
that threads take one at a time (ctypes releases the GIL, so two threads use both cores):
:class:`BinOp`, the two-operand driver for combinational ``a, b -> y`` modules (``lmul_core``,
``fp_mul``, ``fp_add``), chunked across threads; :class:`Unary`, the one-operand driver for
``x -> y`` modules (``fp_to_fmt``, ``fmt_to_fp32``, ``act_unit``); :class:`DotOp`, the fused
dot-product step. They share the library loading and the instance pool (:class:`ModelPool`).

Errors are one line: :class:`ToolMissingError` names the Debian package to install; a parameter set
the RTL rejects raises :class:`RtlBuildError` carrying the RTL's own ``$error`` message.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import os
import queue
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from sim.lib.fileio import sha256_file

REPO = Path(__file__).resolve().parents[1]
HDL_DIR = REPO / "hdl"
DRIVER_DIR = REPO / "sim" / "verilator"
BINOP_DRIVER = DRIVER_DIR / "binop.cpp"
UNARY_DRIVER = DRIVER_DIR / "unary_driver.cpp"

#: Oldest Verilator whose C++ model API (VerilatedContext, ports as members) the drivers use.
MIN_VERILATOR = (5, 0)
#: Bumped when the build recipe below changes, so cached libraries built the old way are not used.
_RECIPE = "rtlsim-3"
# The generated model is small straight-line code; -O2 runs it about twice as fast as
# Verilator's default -Os.
_OPT = ["OPT_FAST=-O2", "OPT_SLOW=-O1", "OPT_GLOBAL=-O2"]
# One compilation of all generated files (Verilator's __ALL.cpp) even when Verilator split a large
# model into many files for a parallel make: every file re-parses verilated.h (most of a second),
# so a 4 x 4 fused mac_array (18 files) takes half the compiler time this way. It only groups the
# same code differently (the split files compile at OPT_FAST instead of OPT_SLOW), so it is not
# part of the cache key. For the same reason the model and the driver include verilated.h
# precompiled (:func:`_precompiled_header`): about 0.6 s of the 1.6 s a small model takes.
_MAKE_ONE_UNIT = ["VM_PARALLEL_BUILDS=0"]
_CXXFLAGS = ["-O2", "-fPIC", "-std=c++17"]
# Every library carries its own Verilator runtime and a model class whose name does not depend on
# the parameters; -Bsymbolic binds each library to its own copies even when another one loaded
# into the same process exports the same symbols.
_RUNTIME_SOURCES = ("verilated.cpp", "verilated_threads.cpp")
_VERILOG_SUFFIXES = (".v", ".vh", ".sv", ".svh")


class ToolMissingError(RuntimeError):
    """A required program (Verilator, a C++ compiler) is missing or too old."""


class RtlBuildError(RuntimeError):
    """Verilator or the C++ compiler rejected the design; the message is the tool's first error."""


def build_root() -> Path:
    """Directory of cached builds: ``$RTLSIM_BUILD_DIR`` or ``<repo>/build/rtlsim``."""
    env = os.environ.get("RTLSIM_BUILD_DIR", "").strip()
    return Path(env) if env else REPO / "build" / "rtlsim"


def _which(program: str, package: str) -> str:
    path = shutil.which(program)
    if path is None:
        raise ToolMissingError(f"{program} not found on PATH: install the Debian package "
                               f"`{package}` (apt-get install {package})")
    return path


#: ``verilator --version`` per executable (resolved path, mtime, size): every build() asks for
#: the version (it is part of the cache key), and the wrapper script costs a Perl start-up per call.
_VERSIONS: dict[tuple[str, int, int], tuple[str, tuple[int, int]]] = {}


def verilator_version() -> tuple[str, tuple[int, int]]:
    """The ``verilator --version`` line and its (major, minor); raises :class:`ToolMissingError`.

    Asked once per process and executable: another ``verilator`` first on ``PATH``, or the same
    one reinstalled, is asked again."""
    exe = _which("verilator", "verilator")
    try:
        st = os.stat(exe)
        key = (os.path.realpath(exe), st.st_mtime_ns, st.st_size)
    except OSError:
        key = None
    if key is not None and key in _VERSIONS:
        return _VERSIONS[key]
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    line = (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else ""
    match = re.search(r"Verilator (\d+)\.(\d+)", line)
    if out.returncode != 0 or match is None:
        raise ToolMissingError(f"`verilator --version` failed ({line or out.returncode}): "
                               "reinstall the Debian package `verilator`")
    version = (int(match.group(1)), int(match.group(2)))
    if version < MIN_VERILATOR:
        need = ".".join(map(str, MIN_VERILATOR))
        raise ToolMissingError(f"{line} is too old (need >= {need}): install the Debian package "
                               "`verilator` from bookworm or later")
    if key is not None:
        _VERSIONS[key] = (line, version)
    return line, version


def _verilator_include() -> Path:
    """Verilator's runtime include directory (``verilated.h`` and friends)."""
    root = os.environ.get("VERILATOR_ROOT", "").strip()
    candidates = [Path(root) / "include"] if root else []
    candidates.append(Path("/usr/share/verilator/include"))
    exe = shutil.which("verilator")
    if exe:
        candidates.append(Path(exe).resolve().parents[1] / "share" / "verilator" / "include")
    for path in candidates:
        if (path / "verilated.h").is_file():
            return path
    raise ToolMissingError("verilated.h not found (VERILATOR_ROOT, /usr/share/verilator/include): "
                           "install the Debian package `verilator`")


def verilog_sources(dirs: Sequence[Path]) -> list[Path]:
    """Every Verilog file (``.v``, ``.vh``, ``.sv``, ``.svh``) directly in ``dirs``, sorted."""
    files: list[Path] = []
    for d in dirs:
        files.extend(sorted(p for p in Path(d).iterdir()
                            if p.is_file() and p.suffix in _VERILOG_SUFFIXES))
    return files


def source_hashes(dirs: Sequence[Path] = (HDL_DIR,)) -> dict[str, str]:
    """SHA-256 of each Verilog file in ``dirs``, keyed by its path relative to the repo (or
    absolute, for directories outside it)."""
    out = {}
    for path in verilog_sources(dirs):
        try:
            key = str(path.resolve().relative_to(REPO))
        except ValueError:
            key = str(path.resolve())
        out[key] = sha256_file(path)
    return out


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_INCLUDE = re.compile(r'`include\s+"([^"]+)"')
_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)


def design_sources(top: str, dirs: Sequence[Path]) -> list[Path]:
    """The Verilog files a build of ``top`` can read, as Verilator resolves them from ``dirs``
    (``-y``/``-I`` in order, first match wins): ``<top>.v``, then every ``<name>.v`` or
    ``.sv`` whose name appears as a word outside comments in a file already taken (module
    instantiations; a word in a string or an unused branch only adds a file), and every file
    named by an `` `include ``. An over-approximation
    of the files elaboration reads (one module per file, named like it), so a cache key over
    them changes whenever the design can; files the design never names do not enter it."""
    found: dict[str, Path] = {}
    for d in dirs:
        for path in sorted(Path(d).iterdir()):
            if path.is_file() and path.suffix in _VERILOG_SUFFIXES:
                found.setdefault(path.name, path)
    todo, taken = [_find_top_file(top, dirs)], {}
    while todo:
        path = todo.pop()
        if path.name in taken:
            continue
        taken[path.name] = path
        text = _COMMENT.sub(" ", path.read_text(errors="replace"))
        names = [f"{w}{ext}" for w in set(_WORD.findall(text)) for ext in (".v", ".sv")]
        todo.extend(found[n] for n in (*names, *_INCLUDE.findall(text))
                    if n in found and n not in taken)
    return sorted(taken.values(), key=lambda p: p.name)


def _find_top_file(top: str, dirs: Sequence[Path]) -> Path:
    for d in dirs:
        path = Path(d) / f"{top}.v"
        if path.is_file():
            return path
    raise FileNotFoundError(f"no {top}.v in {', '.join(str(d) for d in dirs)}")


def _first_error(text: str) -> str:
    """The first line of a tool's output that states an error (the RTL's own $error, if any)."""
    lines = text.splitlines()
    for pattern in (r"%Warning-USERERROR|%Error-USERERROR|\$error", r"%Error(?!: Exiting)",
                    r"error:", r"%Warning"):
        for line in lines:
            if re.search(pattern, line):
                return line.strip()
    tail = [line.strip() for line in lines if line.strip()]
    return tail[-1] if tail else "(no output)"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Exclusive lock on ``path`` (created), so concurrent processes build each key once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run(cmd: list[str], cwd: Path, what: str) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RtlBuildError(f"{what}: {_first_error(proc.stderr + chr(10) + proc.stdout)}")


def _runtime_objects(include: Path, version_line: str) -> list[Path]:
    """Verilator's runtime compiled once per Verilator version and flags (shared by all builds)."""
    cxx = _which("g++", "g++")
    key = hashlib.sha256("\0".join([_RECIPE, version_line, str(include), *_CXXFLAGS]).encode())
    out_dir = build_root() / f"runtime-{key.hexdigest()[:16]}"
    objs = [out_dir / (Path(src).stem + ".o") for src in _RUNTIME_SOURCES]
    if all(o.is_file() for o in objs):
        return objs
    with _locked(build_root() / ".runtime.lock"):
        if all(o.is_file() for o in objs):
            return objs
        out_dir.mkdir(parents=True, exist_ok=True)
        for src, obj in zip(_RUNTIME_SOURCES, objs, strict=True):
            tmp = obj.with_suffix(".o.tmp")
            _run([cxx, *_CXXFLAGS, f"-I{include}", f"-I{include / 'vltstd'}", "-c",
                  str(include / src), "-o", str(tmp)], out_dir, f"compiling {src}")
            os.replace(tmp, obj)
    return objs


def _precompiled_header(cxx: str, flags: Sequence[str], version_line: str) -> list[str]:
    """Options that include ``verilated.h`` precompiled (GCC ``.gch``) for a compile with ``flags``.

    Built once per compiler, flags and Verilator version under ``build_root()/pch-<hash>/``. GCC
    uses a ``.gch`` only where the compile's options match the ones it was made with and reads the
    header's text otherwise, so the result is the same library either way; where the header
    cannot be made (or its path holds a space, which make would split), no options: the compile
    reads the text, as without this.
    """
    key = hashlib.sha256("\0".join([_RECIPE, version_line, cxx, *flags]).encode()).hexdigest()
    out_dir = build_root() / f"pch-{key[:16]}"
    header = out_dir / "rtlsim_pch.h"
    gch = out_dir / "rtlsim_pch.h.gch"
    if " " in str(header):
        return []
    if not gch.is_file():
        with _locked(build_root() / ".pch.lock"):
            if not gch.is_file():
                out_dir.mkdir(parents=True, exist_ok=True)
                header.write_text('#include "verilated.h"\n')
                tmp = out_dir / ".rtlsim_pch.h.gch.tmp"
                proc = subprocess.run([cxx, *flags, "-x", "c++-header", str(header), "-o",
                                       str(tmp)], cwd=out_dir, capture_output=True, check=False)
                if proc.returncode != 0:
                    tmp.unlink(missing_ok=True)
                    return []
                os.replace(tmp, gch)
    return ["-include", str(header)]


def _model_compile_flags(make_cmd: list[str], obj: Path, model: str) -> list[str] | None:
    """The compiler and flags make would compile ``<model>__ALL.cpp`` with (a dry run of the
    generated makefile), without the file names and dependency output; None if not found."""
    proc = subprocess.run([*make_cmd, "-n", "-B", f"{model}__ALL.o"], cwd=obj,
                          capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        words = line.split()
        if f"{model}__ALL.o" in words and "-c" in words and f"{model}__ALL.cpp" in words:
            drop = {"-c", "-o", f"{model}__ALL.o", f"{model}__ALL.cpp", "-MMD", "-MP"}
            return [w for w in words if w not in drop]
    return None


def build_key(top: str, params: Mapping[str, int], cpp_sources: Sequence[Path],
              hdl_dirs: Sequence[Path], defines: Sequence[str] = ()) -> str:
    """The cache key of a build: SHA-256 over everything that determines the library."""
    version_line, _ = verilator_version()
    h = hashlib.sha256()
    for part in (_RECIPE, version_line, top, repr(sorted(params.items())), repr(list(defines)),
                 repr(_OPT), repr(_CXXFLAGS)):
        h.update(part.encode() + b"\0")
    for path in [*design_sources(top, hdl_dirs), *driver_files(cpp_sources)]:
        h.update(path.name.encode() + b"\0" + sha256_file(path).encode() + b"\0")
    return h.hexdigest()


def driver_files(cpp_sources: Sequence[Path | str]) -> list[Path]:
    """The C++ drivers and the headers beside them (``*.h``, e.g. ``rtlsim_model.h``): every
    C++ file a build compiles, for cache keys and source hashes."""
    cpp = [Path(c) for c in cpp_sources]
    headers = sorted({h for c in cpp for h in Path(c).parent.glob("*.h")})
    return [*cpp, *headers]


def build(top: str, params: Mapping[str, int], cpp_sources: Sequence[Path | str] = (BINOP_DRIVER,),
          hdl_dirs: Sequence[Path | str] | None = None, defines: Sequence[str] = ()) -> Path:
    """Verilate ``top`` with ``params`` and link it with ``cpp_sources`` into a shared library.

    Args:
        top: top module name; ``<top>.v`` is looked up in ``hdl_dirs``.
        params: Verilog parameters (``-G<name>=<int>``).
        cpp_sources: C++ driver files exporting the C API. They are compiled with
            ``-DRTLSIM_TOP=V<top> -include V<top>.h`` and the model's directory on the include path.
        hdl_dirs: Verilog search directories (``-y``/``-I``), default ``[hdl/]``; put a directory
            of test wrappers or of a modified copy of ``hdl/`` first to override files.
        defines: extra ``-D`` options for the C++ compiler (``NAME`` or ``NAME=VALUE``).

    Returns:
        Path of the cached ``lib<top>.so`` (built now if the key is new).

    Raises:
        ToolMissingError: verilator or g++ missing (names the Debian package).
        RtlBuildError: Verilator rejected the design (e.g. the RTL's ``$error`` on an illegal
            parameter) or the driver does not compile.
    """
    dirs = [Path(d).resolve() for d in (hdl_dirs or [HDL_DIR])]
    cpp = [Path(c).resolve() for c in cpp_sources]
    params = {str(k): int(v) for k, v in params.items()}
    version_line, _ = verilator_version()
    key = build_key(top, params, cpp, dirs, defines)
    out_dir = build_root() / f"{top}-{key[:20]}"
    lib = out_dir / f"lib{top}.so"
    if lib.is_file():
        return lib
    include = _verilator_include()
    _which("make", "make")  # the generated makefile compiles the model
    runtime = _runtime_objects(include, version_line)
    cxx = _which("g++", "g++")
    with _locked(build_root() / f".{top}-{key[:20]}.lock"):
        if lib.is_file():
            return lib
        build_root().mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{top}-", dir=build_root()))
        try:
            top_file = _find_top_file(top, dirs)
            obj = work / "obj"
            cmd = [_which("verilator", "verilator"), "--cc", "--top-module", top,
                   "--Mdir", str(obj), "-CFLAGS", "-fPIC"]
            for d in dirs:
                cmd += ["-y", str(d), f"-I{d}"]
            cmd += [f"-G{k}={v}" for k, v in sorted(params.items())]
            cmd.append(str(top_file))
            _run(cmd, work, f"verilator {top} {params}")
            model = f"V{top}"
            # What `verilator --build` runs, with verilated.h precompiled for the model's flags.
            make = [_which("make", "make"), "-f", f"{model}.mk", *_OPT, *_MAKE_ONE_UNIT]
            flags = _model_compile_flags(make, obj, model)
            pch = _precompiled_header(flags[0], flags[1:], version_line) if flags else []
            _run([*make, f"USER_CPPFLAGS={' '.join(pch)}"] if pch else make, obj,
                 f"compiling the model of {top} {params}")
            archive = obj / f"{model}__ALL.a"
            tmp_lib = work / lib.name
            driver_flags = [*_CXXFLAGS, "-pthread", f"-I{include}", f"-I{include / 'vltstd'}"]
            _run([cxx, *_CXXFLAGS, *_precompiled_header(cxx, driver_flags, version_line),
                  "-shared", f"-DRTLSIM_TOP={model}", "-include", f"{model}.h",
                  *[f"-D{d}" for d in defines], f"-I{work / 'obj'}", f"-I{include}",
                  f"-I{include / 'vltstd'}", *map(str, cpp), str(archive), *map(str, runtime),
                  "-o", str(tmp_lib), "-pthread", "-Wl,-Bsymbolic"], work,
                 f"linking {lib.name}")
            final = work / "final"
            final.mkdir()
            os.replace(tmp_lib, final / lib.name)
            (final / "build.txt").write_text(
                f"top={top}\nparams={params}\nkey={key}\n{version_line}\n"
                + "".join(f"{p}\n" for p in [*design_sources(top, dirs), *cpp]))
            os.replace(final, out_dir)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return lib


def load(top: str, params: Mapping[str, int], cpp_sources: Sequence[Path | str] = (BINOP_DRIVER,),
         hdl_dirs: Sequence[Path | str] | None = None, defines: Sequence[str] = ()) -> ctypes.CDLL:
    """:func:`build` (cached) and load the library with ctypes."""
    return ctypes.CDLL(str(build(top, params, cpp_sources, hdl_dirs, defines)))


class ModelPool:
    """Model instances of one driver library (``rtlsim_new`` / ``rtlsim_free``,
    ``sim/verilator/rtlsim_model.h``), lent to one thread at a time.

    Args:
        lib_path: the library (:func:`build`).
        run: name of its C entry point, ``void run(void* handle, <pointers> x pointers,
            size_t n)``; its ctypes signature is set here.
        pointers: array arguments of ``run`` after the handle.
        threads: model instances, i.e. how many threads may evaluate at once.
        name: what error messages call it.
    """

    def __init__(self, lib_path: Path, run: str, pointers: int, threads: int, name: str) -> None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        lib = ctypes.CDLL(str(lib_path))
        lib.rtlsim_new.restype = ctypes.c_void_p
        lib.rtlsim_free.argtypes = [ctypes.c_void_p]
        fn = getattr(lib, run)
        fn.argtypes = [ctypes.c_void_p] * (1 + pointers) + [ctypes.c_size_t]
        fn.restype = None
        self.lib, self.lib_path, self.name, self.threads = lib, Path(lib_path), name, threads
        self._run = fn
        self._handles: list[int] = [lib.rtlsim_new() for _ in range(threads)]
        self._pool: queue.Queue[int] = queue.Queue()
        for h in self._handles:
            self._pool.put(h)

    def call(self, n: int, *arrays: np.ndarray) -> None:
        """``run(handle, arrays..., n)`` on a free instance; the arrays must be C-contiguous and
        of the driver's types, long enough for ``n`` elements (no checks: the hot path)."""
        if not self._handles:
            raise RuntimeError(f"{self.name} is closed")
        h = self._pool.get()
        try:
            self._run(h, *[a.ctypes.data for a in arrays], n)
        finally:
            self._pool.put(h)

    def close(self) -> None:
        """Free the model instances (the library stays loaded)."""
        while self._handles:
            self.lib.rtlsim_free(self._handles.pop())


_DTYPES = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}
_CTYPES = {1: "uint8_t", 2: "uint16_t", 4: "uint32_t", 8: "uint64_t"}
#: Bits of operands per eval() when lanes are used: 16 BF16 lanes, 32 E4M3 lanes, 8 binary32.
_LANE_BITS = 256


def lanes_wrapper(top: str, params: Mapping[str, int], width: int, lanes: int) -> str:
    """Verilog of ``rtlsim_<top>_lanes``: ``lanes`` instances of ``top`` on packed a, b, y
    (lane i in bits ``[i*width +: width]``), parameters fixed to ``params``."""
    plist = ", ".join(f".{k}({int(v)})" for k, v in sorted(params.items()))
    bus = lanes * width
    return (
        "`resetall\n`timescale 1ns/1ps\n`default_nettype none\n"
        f"// Generated by sim/rtlsim.py: {lanes} lanes of {top} {dict(params)}.\n"
        f"module rtlsim_{top}_lanes (\n"
        f"    input  wire [{bus - 1}:0] a,\n"
        f"    input  wire [{bus - 1}:0] b,\n"
        f"    output wire [{bus - 1}:0] y\n"
        ");\n"
        "  genvar i;\n"
        "  generate\n"
        f"    for (i = 0; i < {lanes}; i = i + 1) begin : g_lane\n"
        f"      {top} #({plist}) u_dut (\n"
        f"          .a(a[i*{width} +: {width}]),\n"
        f"          .b(b[i*{width} +: {width}]),\n"
        f"          .y(y[i*{width} +: {width}])\n"
        "      );\n"
        "    end\n"
        "  endgenerate\n"
        "endmodule\n"
        "`default_nettype wire\n"
    )


class BinOp:
    """A combinational ``a, b -> y`` module (``lmul_core``, ``fp_mul``, ``fp_add``) in Verilator.

    Args:
        top: module name (ports ``a``, ``b``, ``y`` of equal width, at most 64 bits).
        params: Verilog parameters; the width is ``1 + EXP_BITS + MAN_BITS``.
        threads: model instances, i.e. how many threads may evaluate at once.
        hdl_dirs: Verilog search directories (default ``hdl/``).
        lanes: pairs per ``eval()``. Default: 256 operand bits' worth (16 for 16-bit formats)
            through a generated wrapper when the width is 8, 16, 32 or 64 bits, else 1 (the
            module itself is the top). Lanes make the model several times faster.

    Operands and results are unsigned bit patterns in numpy arrays of :attr:`dtype`
    (uint8/16/32/64 by width); :meth:`run` is thread-safe.
    """

    def __init__(self, top: str, params: Mapping[str, int], threads: int = 2,
                 hdl_dirs: Sequence[Path | str] | None = None, lanes: int | None = None) -> None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.top = top
        self.params = {str(k): int(v) for k, v in params.items()}
        self.width = 1 + self.params["EXP_BITS"] + self.params["MAN_BITS"]
        if not 2 <= self.width <= 64:
            raise ValueError(f"{top}: operand width {self.width} not in 2..64")
        nbytes = next(n for n in (1, 2, 4, 8) if self.width <= 8 * n)
        full = self.width == 8 * nbytes
        if lanes is None:
            lanes = max(1, _LANE_BITS // self.width) if full else 1
        if lanes < 1 or (lanes > 1 and not full):
            raise ValueError(f"lanes must be >= 1, and 1 unless the width ({self.width}) is 8, "
                             f"16, 32 or 64 bits; got {lanes}")
        self.lanes = lanes
        dirs = [Path(d) for d in (hdl_dirs or [HDL_DIR])]
        defines = [f"RTLSIM_ELEM={_CTYPES[nbytes]}", f"RTLSIM_LANES={lanes}"]
        if lanes == 1:
            self.lib_path = build(top, self.params, (BINOP_DRIVER,), dirs, defines)
        else:
            text = lanes_wrapper(top, self.params, self.width, lanes)
            wrap_dir = build_root() / "wrappers" / hashlib.sha256(text.encode()).hexdigest()[:20]
            wrap_file = wrap_dir / f"rtlsim_{top}_lanes.v"
            if not wrap_file.is_file():
                wrap_dir.mkdir(parents=True, exist_ok=True)
                tmp = wrap_file.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(text)
                os.replace(tmp, wrap_file)
            self.lib_path = build(f"rtlsim_{top}_lanes", {}, (BINOP_DRIVER,), [wrap_dir, *dirs],
                                  defines)
        self._models = ModelPool(self.lib_path, "rtlsim_run", 3, threads, f"{top} BinOp")
        lib = self._models.lib
        self.dtype = np.dtype(_DTYPES[nbytes])
        if int(lib.rtlsim_elem_bytes()) != nbytes or int(lib.rtlsim_lanes()) != lanes:
            self._models.close()
            raise RtlBuildError(f"{self.lib_path} does not match its build options")
        self.threads = threads

    def close(self) -> None:
        """Free the model instances (the library stays loaded)."""
        self._models.close()

    def __enter__(self) -> BinOp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _operand(self, x: object, name: str, n: int | None = None) -> np.ndarray:
        arr = np.asarray(x)
        if not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"{name} must be an integer array of bit patterns, got {arr.dtype}")
        if arr.size and (arr.min() < 0 or int(arr.max()) >> self.width):
            raise ValueError(f"{name} has values outside 0..2**{self.width}-1")
        arr = np.ascontiguousarray(arr.reshape(-1), dtype=self.dtype)
        if n is not None and arr.size != n:
            raise ValueError(f"{name} has {arr.size} elements, expected {n}")
        return arr

    def run_unchecked(self, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
        """Evaluate on one model instance: contiguous ``a``, ``b``, ``out`` of :attr:`dtype`,
        equal length, operands already in range (the hot path of the proof; no copies)."""
        self._models.call(a.size, a, b, out)

    def run(self, a: object, b: object, chunk: int = 1 << 16) -> np.ndarray:
        """``y[i] = top(a[i], b[i])``: 1-D arrays of bit patterns in, :attr:`dtype` array out,
        split into ``chunk``-sized pieces over the model instances."""
        av = self._operand(a, "a")
        bv = self._operand(b, "b", av.size)
        out = np.empty(av.size, dtype=self.dtype)
        pieces = [(s, min(s + chunk, av.size)) for s in range(0, av.size, chunk)]
        if len(pieces) <= 1 or self.threads == 1:
            for s, e in pieces:
                self.run_unchecked(av[s:e], bv[s:e], out[s:e])
            return out
        with ThreadPoolExecutor(self.threads) as ex:
            list(ex.map(lambda se: self.run_unchecked(av[se[0]:se[1]], bv[se[0]:se[1]],
                                                      out[se[0]:se[1]]), pieces))
        return out


class Unary:
    """A combinational ``x -> y`` module (``fp_to_fmt``, ``fmt_to_fp32``, ``act_unit``) in
    Verilator, through ``sim/verilator/unary_driver.cpp`` (one ``eval()`` per element).

    Args:
        top: module name (ports ``x`` and ``y``, each at most 64 bits; they may differ in width).
        params: Verilog parameters.
        threads: model instances, i.e. how many threads may evaluate at once.
        hdl_dirs: Verilog search directories (default ``hdl/``; a modified copy first overrides).

    :attr:`in_dtype` / :attr:`out_dtype` are the ports' integer types (uint8/16/32/64 by width);
    :meth:`run` is thread-safe.
    """

    def __init__(self, top: str, params: Mapping[str, int], threads: int = 1,
                 hdl_dirs: Sequence[Path | str] | None = None) -> None:
        self.top = top
        self.lib_path = build(top, params, (UNARY_DRIVER,), hdl_dirs)
        self._models = ModelPool(self.lib_path, "rtlsim_run", 2, threads, f"{top} Unary")
        lib = self._models.lib
        self.in_dtype = np.dtype(_DTYPES[int(lib.rtlsim_in_bytes())])
        self.out_dtype = np.dtype(_DTYPES[int(lib.rtlsim_out_bytes())])

    def run(self, x: np.ndarray) -> np.ndarray:
        """``y[i] = top(x[i])`` for any-shaped ``x`` (converted to :attr:`in_dtype`; values are
        taken modulo its width, the port's width being the caller's business); ``y`` has ``x``'s
        shape and :attr:`out_dtype`."""
        xv = np.ascontiguousarray(x, dtype=self.in_dtype)
        out = np.empty(xv.shape, dtype=self.out_dtype)
        self._models.call(xv.size, xv, out)
        return out

    def close(self) -> None:
        """Free the model instances (the library stays loaded)."""
        self._models.close()

    def __enter__(self) -> Unary:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


DOT_DRIVER = DRIVER_DIR / "dot_driver.cpp"
SIM_HDL_DIR = REPO / "sim" / "hdl"
#: Fused steps per eval() of the dot-product model (the wrapper's LANES).
_DOT_LANES = 8


class DotOp:
    """The fused dot-product step ``dot_datapath`` (``y = dot(acc, a[0..K-1], b[0..K-1])``) in
    Verilator, through the lanes wrapper ``sim/hdl/dot_datapath_lanes.v``.

    Args:
        params: Verilog parameters of dot_datapath (``K``, ``ALIGN_BITS``, ``EXP_BITS``,
            ``MAN_BITS``, ``MULTIPLIER``, ...); the operand width ``1 + EXP_BITS + MAN_BITS``
            must be 8 or 16 bits.
        threads: model instances, i.e. how many threads may evaluate at once.
        hdl_dirs: design search directories (default ``hdl/``; ``sim/hdl/`` is added for the
            wrapper).
        lanes: steps per ``eval()``.

    Operands: :attr:`dtype` arrays ``a``, ``b`` of shape [n, K] (format bit patterns), ``acc``
    uint32 [n] (binary32); results uint32 [n]. :meth:`run_unchecked` is thread-safe.
    """

    def __init__(self, params: Mapping[str, int], threads: int = 2,
                 hdl_dirs: Sequence[Path | str] | None = None, lanes: int = _DOT_LANES) -> None:
        if threads < 1 or lanes < 1:
            raise ValueError(f"threads and lanes must be >= 1, got {threads} and {lanes}")
        self.params = {str(k): int(v) for k, v in params.items()}
        self.k = self.params["K"]
        self.width = 1 + self.params["EXP_BITS"] + self.params["MAN_BITS"]
        if self.width not in (8, 16):
            raise ValueError(f"dot_datapath: operand width {self.width} must be 8 or 16 bits")
        nbytes = self.width // 8
        dirs = [SIM_HDL_DIR, *[Path(d) for d in (hdl_dirs or [HDL_DIR])]]
        defines = [f"RTLSIM_ELEM={_CTYPES[nbytes]}", f"RTLSIM_K={self.k}",
                   f"RTLSIM_LANES={lanes}"]
        self.lib_path = build("dot_datapath_lanes", {**self.params, "LANES": lanes},
                              (DOT_DRIVER,), dirs, defines)
        self._models = ModelPool(self.lib_path, "rtlsim_dot_run", 4, threads, "DotOp")
        lib = self._models.lib
        if (int(lib.rtlsim_elem_bytes()) != nbytes or int(lib.rtlsim_k()) != self.k
                or int(lib.rtlsim_lanes()) != lanes):
            self._models.close()
            raise RtlBuildError(f"{self.lib_path} does not match its build options")
        self.dtype = np.dtype(_DTYPES[nbytes])

    def close(self) -> None:
        """Free the model instances (the library stays loaded)."""
        self._models.close()

    def __enter__(self) -> DotOp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run_unchecked(self, a: np.ndarray, b: np.ndarray, acc: np.ndarray,
                      out: np.ndarray) -> None:
        """Evaluate on one model instance: C-contiguous ``a``, ``b`` [n, K] of :attr:`dtype`,
        ``acc`` and ``out`` uint32 [n] (the proof's hot path; no checks, no copies)."""
        self._models.call(acc.size, a, b, acc, out)

    def run(self, a: object, b: object, acc: object) -> np.ndarray:
        """``y[s] = dot(acc[s], a[s], b[s])``: checked arrays in, uint32 [n] out."""
        av = np.asarray(a)
        if av.ndim != 2 or av.shape[1] != self.k or np.shape(b) != av.shape:
            raise ValueError(f"a and b must have shape [n, {self.k}], got {av.shape} and "
                             f"{np.shape(b)}")
        for name, arr, bits in (("a", av, self.width), ("b", np.asarray(b), self.width),
                                ("acc", np.asarray(acc), 32)):
            if not np.issubdtype(arr.dtype, np.integer):
                raise TypeError(f"{name} must be an integer array of bit patterns")
            if arr.size and (int(arr.min()) < 0 or int(arr.max()) >> bits):
                raise ValueError(f"{name} has values outside 0..2**{bits}-1")
        accv = np.ascontiguousarray(np.asarray(acc).reshape(-1), dtype=np.uint32)
        if accv.size != av.shape[0]:
            raise ValueError(f"acc has {accv.size} elements, expected {av.shape[0]}")
        out = np.empty(accv.size, dtype=np.uint32)
        self.run_unchecked(np.ascontiguousarray(av, dtype=self.dtype),
                           np.ascontiguousarray(b, dtype=self.dtype), accv, out)
        return out
