"""The repository's dependency direction, read from the sources: model (the package ``lmul`` and
its tests) imports nothing of sim, syn or experiments; sim nothing of syn or experiments; syn
nothing of experiments; and no Python file of the project edits ``sys.path``.

Imports are read with ``ast`` from every ``.py`` file (inside functions too, and
``importlib.import_module`` / ``__import__`` calls with a literal name), so a lazy import is seen
as well as a top-level one. The checker is tested on a small tree with one forbidden import of
each kind.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

#: The project's code directories, lowest first: files in one may import only from those before
#: it (model/ is the package ``lmul``; sim, syn and experiments import by their own names).
LAYERS = ("model", "sim", "syn", "experiments")
#: Directories that hold no project source: generated outputs, caches (hidden ones are skipped
#: too: .venv, .git).
SKIP_DIRS = frozenset({"__pycache__", "build", "data", "results", "sim_build"})
_SYS_PATH_EDITS = frozenset({"insert", "append", "extend", "remove", "pop", "clear"})


def python_files(root: Path) -> list[Path]:
    """Every ``.py`` file below ``root`` outside hidden and :data:`SKIP_DIRS` directories."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in SKIP_DIRS)
        found += [Path(dirpath, f) for f in sorted(filenames) if f.endswith(".py")]
    return found


def _dotted(node: ast.AST) -> str:
    """``a.b.c`` for a chain of names and attributes, else ``""``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


def imported_modules(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, module) of every absolute import in ``tree``, and of every
    ``importlib.import_module`` / ``__import__`` call whose name is a string literal."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
        elif (isinstance(node, ast.Call)
              and _dotted(node.func) in ("importlib.import_module", "import_module", "__import__")
              and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)):
            yield node.lineno, node.args[0].value


def sys_path_edits(tree: ast.AST) -> Iterator[int]:
    """Lines that change ``sys.path``: a mutating method call, an assignment to it or to a slice
    of it, an augmented assignment."""
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in _SYS_PATH_EDITS and _dotted(node.func.value) == "sys.path"):
            yield node.lineno
        elif isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                inner = target.value if isinstance(target, ast.Subscript) else target
                if _dotted(inner) == "sys.path":
                    yield node.lineno


def layout_errors(root: Path) -> list[str]:
    """One line per forbidden import or ``sys.path`` edit in the tree at ``root``."""
    errors = []
    for path in python_files(root):
        rel = path.relative_to(root)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(rel))
        layer = rel.parts[0] if len(rel.parts) > 1 else None
        if layer in LAYERS:
            above = LAYERS[LAYERS.index(layer) + 1:]
            for line, module in imported_modules(tree):
                if module.split(".")[0] in above:
                    errors.append(f"{rel.as_posix()}:{line}: {layer} imports {module}")
        errors += [f"{rel.as_posix()}:{line}: edits sys.path" for line in sys_path_edits(tree)]
    return errors


def test_dependencies_point_one_way_and_nothing_edits_sys_path() -> None:
    files = python_files(REPO)
    # The walk saw the project (every layer, the tests), not an empty or wrong tree.
    for layer in LAYERS:
        assert any(f.relative_to(REPO).parts[0] == layer for f in files), layer
    assert REPO / "model" / "tests" / "test_package.py" in files
    assert not any(".venv" in f.parts for f in files)
    assert layout_errors(REPO) == []


def test_checker_reports_each_kind_of_violation(tmp_path: Path) -> None:
    """A tree with one forbidden import per rule (lazy, dotted, dynamic), sys.path edits, and
    allowed imports that must stay silent."""
    files = {
        "model/lmul/_x.py": "def f():\n    from sim.lib import knobs\n    return knobs\n",
        "model/tests/test_x.py": "import lmul\nimport experiments.data as d\n",
        "sim/a.py": "import lmul\nimport syn.cost\n",
        "sim/lib/b.py": "from experiments import store\n",
        "syn/c.py": "import importlib, sim.lib\n\nimportlib.import_module('experiments.x')\n",
        "experiments/d.py": "import sys\nimport lmul, sim, syn\nsys.path.insert(0, 'x')\n",
        "experiments/e.py": "import sys\nsys.path += ['y']\nsys.path[:0] = ['z']\n",
        "conftest.py": "from sim.lib import knobs\n",  # the root may import anything
        ".venv/lib/f.py": "import experiments\nimport sys\nsys.path.append('v')\n",
        "results/g.py": "import sys\nsys.path.append('r')\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert sorted(layout_errors(tmp_path)) == sorted([
        "model/lmul/_x.py:2: model imports sim.lib",
        "model/tests/test_x.py:2: model imports experiments.data",
        "sim/a.py:2: sim imports syn.cost",
        "sim/lib/b.py:1: sim imports experiments",
        "syn/c.py:3: syn imports experiments.x",
        "experiments/d.py:3: edits sys.path",
        "experiments/e.py:2: edits sys.path",
        "experiments/e.py:3: edits sys.path",
    ])
