"""Argument types shared by the experiments' command lines (one message for one mistake)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path


def int_in_range(low: int, high: int | None = None) -> Callable[[str], int]:
    """argparse ``type=``: a decimal integer in ``low .. high`` (``high=None``: no upper bound)."""
    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low or (high is not None and value > high):
            rng = f">= {low}" if high is None else f"in {low}..{high}"
            raise argparse.ArgumentTypeError(f"{value} is out of range (must be {rng})")
        return value
    return parse


def json_path(text: str) -> Path:
    """argparse ``type=`` for a results ``--out``: a path ending in ``.json`` that is not a
    directory or special file (the table, CSV and plots go beside it)."""
    path = Path(text)
    if path.exists() and not path.is_file():
        kind = "a directory" if path.is_dir() else "not a regular file (device, fifo or socket)"
        raise argparse.ArgumentTypeError(f"{text!r} is {kind}")
    if path.suffix != ".json":
        raise argparse.ArgumentTypeError(
            f"{text!r} must end in .json (the table, CSV and plot are written beside it as "
            ".md, .csv and .png)")
    return path
