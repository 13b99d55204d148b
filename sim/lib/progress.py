"""Progress bars of the long runs (proof, co-simulation, training): one policy for all.

A bar goes to stderr. On a terminal it refreshes every 0.1 s; written to a file or a pipe (a
``make`` log, CI) it refreshes every 30 s, so a log gets a line per half minute instead of
thousands of carriage-return updates.
"""

from __future__ import annotations

import sys
from typing import Any

#: Seconds between refreshes on a terminal, and in a log.
TERMINAL_INTERVAL_S = 0.1
LOG_INTERVAL_S = 30.0


def bar_interval() -> float:
    """tqdm's ``mininterval`` for a bar on stderr (see the module docstring)."""
    return TERMINAL_INTERVAL_S if sys.stderr.isatty() else LOG_INTERVAL_S


def progress_bar(total: int | None, desc: str, unit: str, enabled: bool = True,
                 **options: Any) -> Any:
    """A tqdm bar on stderr with :func:`bar_interval` (``enabled=False``: a bar whose
    ``update`` and ``close`` do nothing). ``options`` go to tqdm (``unit_scale``, ``leave``)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, dynamic_ncols=True,
                mininterval=bar_interval(), file=sys.stderr, **options)
