"""Fixtures shared by the model tests."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

SEED_NOTEBOOK = Path(__file__).resolve().parents[3] / "shared" / "seed" / "lmul_lstm_notebook.txt"


@pytest.fixture(scope="session")
def seed_notebook_lmul_bits() -> Callable:
    """The original notebook's ``lmul_bits``, executed from its text in ../shared/seed/.

    This is the independent reference for ``lmul.seed_lmul``: the function is not copied into the
    project; the test reads it from the notebook at run time (skipped when the file is absent).
    """
    if not SEED_NOTEBOOK.is_file():
        pytest.skip(f"seed notebook not found at {SEED_NOTEBOOK}")
    text = SEED_NOTEBOOK.read_text()
    match = re.search(r"^def lmul_bits\(.*?^    return result\s*$", text, re.S | re.M)
    if match is None:
        pytest.fail("could not find lmul_bits in the seed notebook")
    import torch

    namespace: dict = {"torch": torch}
    exec(compile(match.group(0), str(SEED_NOTEBOOK), "exec"), namespace)
    return namespace["lmul_bits"]
