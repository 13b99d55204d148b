"""The package's shape and API edges: layered imports, no import cycle, a cheap ``import lmul``,
the one documented fallback, strict configuration types, and torch/0-d edge cases.

The import graph is read from the sources with ``ast`` (every ``from . import x`` and
``from .x import y``, inside functions too), so a lazy import that hides a cycle is seen as well.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import lmul
from lmul import LMulConfig

PKG = Path(lmul.__file__).resolve().parent

#: The layers, lowest first: a module may import only from strictly lower layers.
LAYERS = [
    ["_formats", "_activations", "_kact"],
    ["_convert", "_act_hw"],
    ["_core", "_fpadd", "_dot"],
    ["_reference"],
    ["_kintrinsics"],
    ["_kscalar"],
    ["_kparams"],
    ["_kmatmul", "_kelementwise", "_kbits", "_kdot", "_kfp32"],
    ["_kernels"],
    ["_matmul"],
    ["_api"],
    ["__init__"],
    ["_torch_kernels"],
    ["_torch_ops"],
    ["_torch_cells"],
    ["_torch_layers"],
    ["_torch_swap"],
    ["torch"],
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def package_imports(source: str) -> set[str]:
    """Intra-package modules a module's source imports (relative or ``lmul.x`` imports)."""
    deps: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module is None:
                deps.update(a.name for a in node.names)
            elif node.level == 1:
                deps.add(node.module.split(".")[0])
            elif node.level == 0 and node.module and node.module.startswith("lmul."):
                deps.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            deps.update(a.name.split(".")[1] for a in node.names if a.name.startswith("lmul."))
    return deps


def import_graph(pkg: Path) -> dict[str, set[str]]:
    return {p.stem: package_imports(p.read_text()) for p in sorted(pkg.glob("*.py"))}


def layering_errors(graph: dict[str, set[str]]) -> list[str]:
    errors = [f"module {m} is in no layer" for m in graph if m not in RANK]
    for mod, deps in graph.items():
        for dep in sorted(deps):
            if dep not in RANK:
                errors.append(f"{mod} imports unknown module {dep}")
            elif mod in RANK and RANK[dep] >= RANK[mod]:
                errors.append(f"{mod} (layer {RANK[mod]}) imports {dep} (layer {RANK[dep]})")
    return errors


def test_import_graph_is_layered_and_acyclic() -> None:
    graph = import_graph(PKG)
    assert set(graph) == set(RANK), "update LAYERS when a module is added or removed"
    assert layering_errors(graph) == []  # strictly downward edges: a DAG


def test_layer_check_sees_a_lazy_import_cycle(tmp_path: Path) -> None:
    """The checker itself: the old layout (core importing matmul inside a function, matmul
    importing core) must be reported."""
    (tmp_path / "_core.py").write_text("def lmul():\n    from ._matmul import fast\n")
    (tmp_path / "_matmul.py").write_text("from ._core import lmul\n")
    errors = layering_errors(import_graph(tmp_path))
    assert any("_core (layer 2) imports _matmul" in e for e in errors), errors


def test_public_api_names() -> None:
    for name in lmul.__all__:
        assert hasattr(lmul, name), name
    for name in ("lmul_bits", "lmul", "exact_mul", "seed_lmul", "fp_add_bits", "matmul",
                 "matmul_reference", "elementwise_product", "LMulConfig", "Format", "PRESETS",
                 "FP_ADD_EXP_BITS_RANGE", "FP_ADD_MAN_BITS_RANGE"):
        assert name in lmul.__all__, name
    assert callable(lmul.matmul)
    # Implementation modules are private; no public name is also a module's name.
    public_modules = {p.stem for p in PKG.glob("*.py") if not p.stem.startswith("_")}
    assert public_modules == {"torch"}
    assert not public_modules & set(lmul.__all__)


_PROBE = """
import json, sys
import lmul
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("numba", "torch"))))
"""


def test_import_lmul_imports_neither_numba_nor_torch() -> None:
    proc = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                          check=True, timeout=120)
    assert json.loads(proc.stdout) == []


_NO_NUMBA = """
import sys, warnings
sys.modules["numba"] = None  # as if numba were not installed
import numpy as np
import lmul
from lmul._core import lmul_bits_numpy
a = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
b = np.arange(8, dtype=np.float32).reshape(4, 2) - 3
p = np.arange(1 << 16, dtype=np.uint16)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    y = lmul.matmul(a, b)
    z = lmul.lmul(a, a)
    u = lmul.lmul_bits(p, p[::-1])
    v = lmul.lmul_bits(p[::-1], p)
    assert not lmul.fast_path_enabled()
assert (y.view(np.uint32) == lmul.matmul_reference(a, b).view(np.uint32)).all()
assert u.dtype == np.uint16 and (u == lmul_bits_numpy(p, p[::-1])).all()
print(len(caught), caught[0].category.__name__, str(caught[0].message))
"""


def test_missing_numba_warns_once_and_gives_the_same_bits() -> None:
    """Without numba: one RuntimeWarning for matmul, the elementwise products and lmul_bits
    together, and the numpy model's bits."""
    env = {k: v for k, v in os.environ.items() if k != "LMUL_NO_NUMBA"}
    proc = subprocess.run([sys.executable, "-c", _NO_NUMBA], capture_output=True, text=True,
                          check=False, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    count, category, message = proc.stdout.strip().split(" ", 2)
    assert (count, category) == ("1", "RuntimeWarning")
    assert "numba is not installed" in message and "lmul_bits" in message


def test_lmul_no_numba_selects_numpy_without_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LMUL_NO_NUMBA", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not lmul.fast_path_enabled()


def test_no_import_error_is_swallowed() -> None:
    """No ``except ImportError`` (or ModuleNotFoundError) hides a failure in the package or the
    experiments' mode table."""
    root = PKG.parents[1]
    files = [*PKG.glob("*.py"), root / "experiments" / "modes.py"]
    offenders = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ExceptHandler) and node.type is not None:
                names = {n.id for n in ast.walk(node.type) if isinstance(n, ast.Name)}
                if names & {"ImportError", "ModuleNotFoundError"}:
                    offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def test_kernel_cache_tracks_helpers() -> None:
    """The kernels' on-disk cache stamp includes the helper modules (numba only checks the
    kernel's own file), so editing a helper, or the constants module, recompiles the kernels."""
    if not lmul.fast_path_enabled():
        pytest.skip("numba kernels not in use")
    from numba.core.registry import CPUDispatcher

    from lmul import (
        _kbits,
        _kdot,
        _kelementwise,
        _kfp32,
        _kintrinsics,
        _kmatmul,
        _kparams,
        _kscalar,
    )

    want = tuple((os.stat(m.__file__).st_mtime_ns, os.stat(m.__file__).st_size)
                 for m in (_kintrinsics, _kscalar, _kparams))
    for module in (_kmatmul, _kelementwise, _kbits, _kdot, _kfp32):
        # Every disk-cached kernel of the module is listed (none escapes the stamp).
        cached = {v for v in vars(module).values() if isinstance(v, CPUDispatcher)
                  and v.__module__ == module.__name__ and hasattr(v._cache, "_cache_file")}
        assert cached == set(module.KERNELS), module.__name__
        for kernel in module.KERNELS:
            stamp = kernel._cache._cache_file._source_stamp
            assert isinstance(stamp, tuple) and stamp[1] == want, kernel


def test_serial_and_parallel_kernels_are_two_cached_compilations() -> None:
    """Each serial/parallel pair comes from one loop body (``_kparams.serial_and_parallel``):
    the serial kernel releases the GIL and runs without threads, the parallel one holds it, and
    each has cache files of its own (numba keys a cache on name and bytecode, not on options)."""
    if not lmul.fast_path_enabled():
        pytest.skip("numba kernels not in use")
    from lmul import _kbits, _kelementwise

    for serial, parallel in ((_kelementwise.elementwise_serial, _kelementwise.elementwise),
                             (_kbits.lmul_bits_serial, _kbits.lmul_bits_parallel)):
        assert serial.targetoptions.get("nogil") and not serial.targetoptions.get("parallel")
        assert parallel.targetoptions.get("parallel") and not parallel.targetoptions.get("nogil")
        assert serial.py_func.__code__.co_code == parallel.py_func.__code__.co_code
        assert serial._cache._cache_file._index_path != parallel._cache._cache_file._index_path


# ------------------------------------------------------------------------------ formats


def test_format_covers_the_adder_widths_and_lmul_config_the_unit_limits() -> None:
    f64 = lmul.Format("fp64", 11, 52)
    assert f64.width == 64 and f64.uint_dtype == np.uint64 and f64.bias == 1023
    assert lmul.format_for(8, 23) is lmul.PRESETS["fp32"]
    assert lmul.Format("e9m7", 9, 7).uint_dtype == np.uint32
    for bad in ((1, 3), (12, 3), (4, 0), (4, 53)):
        with pytest.raises(ValueError, match="must be in"):
            lmul.Format("x", *bad)
    with pytest.raises(TypeError, match="exp_bits"):
        lmul.Format("x", 4.0, 3)
    # Conversions refuse what they cannot represent, with a message instead of garbage.
    with pytest.raises(ValueError, match="63 bits"):
        lmul.round_to_format_bits(np.ones(2), f64)
    with pytest.raises(ValueError, match="float32"):
        lmul.format_bits_to_float32(np.zeros(2, np.uint32), lmul.Format("e9m7", 9, 7))
    e10 = lmul.Format("e10m20", 10, 20)  # wider than float32, still converts from float64
    x = np.array([1.5, -(2.0**-500), 2.0**-530], np.float64)  # normal, normal, subnormal
    np.testing.assert_array_equal(lmul.format_bits_to_float64(lmul.round_to_format_bits(x, e10),
                                                              e10), x)
    assert lmul.LMUL_EXP_BITS_RANGE == (2, 8) and lmul.LMUL_MAN_BITS_RANGE == (1, 23)
    for bad in ((9, 7), (11, 52), (8, 24)):
        with pytest.raises(ValueError, match="LMulConfig"):
            LMulConfig(*bad)


def test_e4m3_ieee_is_not_ocp_e4m3fn() -> None:
    """``e4m3_ieee`` has Inf (largest finite 240), unlike OCP E4M3FN (no Inf, largest 448)."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    fmt = lmul.PRESETS["e4m3_ieee"]
    assert "e4m3" not in lmul.PRESETS
    assert fmt.max_finite == 240.0
    assert lmul.format_bits_to_float32(np.array([fmt.inf_bits], np.uint8), fmt)[0] == np.inf
    assert float(ml_dtypes.finfo(ml_dtypes.float8_e4m3fn).max) == 448.0


# ------------------------------------------------------------------------------ LMulConfig


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"exp_bits": 8.0}, "exp_bits"),
    ({"man_bits": 7.0}, "man_bits"),
    ({"exp_bits": True}, "exp_bits"),
    ({"man_bits": np.float32(7)}, "man_bits"),
    ({"man_bits": "7"}, "man_bits"),
    ({"offset": 8.0}, "offset"),
    ({"offset": True}, "offset"),
    ({"saturate": 1.0}, "saturate"),
    ({"saturate": "yes"}, "saturate"),
])
def test_config_rejects_wrong_types(kwargs: dict, field: str) -> None:
    with pytest.raises(TypeError, match=field):
        LMulConfig(**kwargs)


def test_config_accepts_ints_and_normalizes() -> None:
    cfg = LMulConfig(np.int64(4), np.int32(3), offset=np.int16(1), saturate=1)
    params = cfg.verilog_parameters()
    assert params == {"EXP_BITS": 4, "MAN_BITS": 3, "OFFSET": 1, "SATURATE": 1, "FINITE_ONLY": 0}
    assert all(type(v) is int for v in params.values())
    assert LMulConfig(saturate=np.bool_(True)).saturate is True
    assert LMulConfig(saturate=0).saturate is False
    with pytest.raises(ValueError, match="saturate"):
        LMulConfig(saturate=2)


@pytest.mark.parametrize(("text", "key"), [
    ("fmt=bf16,e=5", "'e=5'"),
    ("e=8,e=5", "'e=5'"),
    ("e=8,exp_bits=8", "'exp_bits=8'"),
    ("m=3,fmt=e4m3_ieee", "'fmt=e4m3_ieee'"),
    ("offset=1,offset=paper", "'offset=paper'"),
    ("saturate=1,saturate=0", "'saturate=0'"),
])
def test_parse_rejects_repeated_and_contradicting_keys(text: str, key: str) -> None:
    with pytest.raises(ValueError, match="again") as err:
        LMulConfig.parse(text)
    assert key in str(err.value)


def test_parse_needs_a_string() -> None:
    with pytest.raises(TypeError, match="string"):
        LMulConfig.parse(None)  # type: ignore[arg-type]
    assert LMulConfig.parse("fmt=e4m3_ieee,offset=0") == LMulConfig(4, 3, offset=0)


# ------------------------------------------------------------------------------ float API


@pytest.mark.parametrize("fn", [lmul.lmul, lmul.exact_mul])
def test_zero_dim_numpy_keeps_shape(fn) -> None:
    r = fn(np.array(5.0, np.float32), np.array(5.0, np.float32))
    assert isinstance(r, np.ndarray) and r.shape == () and float(r) == 25.0
    assert lmul.seed_lmul(np.array(5.0, np.float32), np.array(5.0, np.float32)).shape == ()


def test_zero_dim_torch_keeps_shape() -> None:
    torch = pytest.importorskip("torch")
    five = torch.tensor(5.0)
    for fn in (lmul.lmul, lmul.exact_mul):
        r = fn(five, five)
        assert isinstance(r, torch.Tensor) and r.shape == () and r.item() == 25.0
    assert lmul.seed_lmul(five, five).shape == ()
    assert lmul.lmul(five, torch.ones(3)).shape == (3,)
    from lmul.torch import lmul_mul

    g = torch.tensor(5.0, requires_grad=True)
    r = lmul_mul(g, five)
    assert r.shape == () and r.item() == 25.0
    r.backward()
    assert g.grad.shape == () and g.grad.item() == 5.0


@pytest.mark.parametrize("name", ["lmul", "exact_mul", "seed_lmul"])
def test_tensor_requiring_grad_is_refused(name: str) -> None:
    torch = pytest.importorskip("torch")
    fn = getattr(lmul, name)
    x = torch.ones(3, requires_grad=True)
    with pytest.raises(TypeError, match=r"^x is a torch tensor that requires grad.*lmul_mul"):
        fn(x, torch.ones(3))
    with pytest.raises(TypeError, match=r"^y is a torch tensor that requires grad"):
        fn(torch.ones(3), x)
    assert fn(x.detach(), torch.ones(3)).shape == (3,)


@pytest.mark.parametrize("arg", ["A", "B", "bias"])
def test_matmul_on_tensor_requiring_grad_names_the_argument(arg: str) -> None:
    torch = pytest.importorskip("torch")
    ops = {"A": torch.ones(2, 3), "B": torch.ones(3, 4), "bias": torch.ones(4)}
    ops[arg] = ops[arg].requires_grad_(True)
    for fn in (lmul.matmul, lmul.matmul_reference):
        with pytest.raises(TypeError, match=rf"^{arg} is a torch tensor that requires grad.*"
                                            r"lmul_linear"):
            fn(ops["A"], ops["B"], ops["bias"])
