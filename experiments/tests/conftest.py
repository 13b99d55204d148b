"""Shared fixtures: keep torch on one thread so the tests stay light on the shared machine."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread() -> None:
    # Per test, not per session: tests that call a runner's main() set the thread count of this
    # process (``--threads``), and results record it (``host.threads``).
    torch.set_num_threads(1)
