"""Access to the original notebook's ``lmul_bits`` (../shared/seed/), as an external reference.

The project does not copy the notebook's code. Tests and the benchmark read the function from the
notebook's text at run time, when the file is there, to check ``lmul.seed_lmul`` against it bit
for bit and to time it beside the project's kernels.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

#: Where the notebook lies beside a checkout (override with LMUL_SEED_NOTEBOOK).
DEFAULT_PATH = Path(__file__).resolve().parents[3] / "shared" / "seed" / "lmul_lstm_notebook.txt"


def notebook_path() -> Path:
    """The notebook file: ``$LMUL_SEED_NOTEBOOK`` or ``../shared/seed/lmul_lstm_notebook.txt``."""
    return Path(os.environ.get("LMUL_SEED_NOTEBOOK", DEFAULT_PATH))


def load_notebook_lmul_bits(path: Path | None = None) -> Callable | None:
    """Return the notebook's ``lmul_bits(a, b)`` (torch float32 in and out), or None if absent.

    Raises:
        ValueError: the file exists but holds no ``lmul_bits`` definition.
    """
    path = notebook_path() if path is None else path
    if not path.is_file():
        return None
    text = path.read_text()
    match = re.search(r"^def lmul_bits\(.*?^    return result\s*$", text, re.S | re.M)
    if match is None:
        raise ValueError(f"no lmul_bits definition found in {path}")
    import torch

    namespace: dict = {"torch": torch}
    exec(compile(match.group(0), str(path), "exec"), namespace)
    return namespace["lmul_bits"]
