"""Fixtures shared by the verification tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sim.lib.seed_notebook import load_notebook_lmul_bits, notebook_path


@pytest.fixture(scope="session")
def seed_notebook_lmul_bits() -> Callable:
    """The original notebook's ``lmul_bits``, executed from its text in ../shared/seed/.

    This is the independent reference for ``lmul.seed_lmul``: the function is not copied into the
    project; the test reads it from the notebook at run time (skipped when the file is absent).
    """
    fn = load_notebook_lmul_bits()
    if fn is None:
        pytest.skip(f"seed notebook not found at {notebook_path()}")
    return fn
