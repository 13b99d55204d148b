"""Command-line plumbing shared by the CLIs of sim/, syn/ and experiments/: argument types (one
message for one mistake) and :func:`run_main`, the one error epilogue of a ``main()``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

#: Exit status of an expected error (bad input, missing tool), as argparse uses for usage errors.
ERROR_STATUS = 2
#: Exit status after Ctrl-C (128 + SIGINT), as a shell reports it.
INTERRUPTED_STATUS = 130

ErrorTypes = type[BaseException] | tuple[type[BaseException], ...]


def run_main(name: str, fn: Callable[[], int],
             errors: ErrorTypes | Mapping[type[BaseException], int] = (),
             interrupted: str | None = None) -> int:
    """Run a command's body ``fn()`` and return its exit status.

    An exception of one of the expected ``errors`` becomes the one line
    ``<name>: error: <message>`` on stderr and the exit status :data:`ERROR_STATUS`; ``errors``
    may also map exception types to their own exit status (the first type the exception is an
    instance of wins). Any other exception propagates with its traceback: it is a bug, not bad
    input. With ``interrupted`` set, Ctrl-C prints ``<name>: interrupted; <interrupted>`` (what
    was kept, how to resume) and returns :data:`INTERRUPTED_STATUS`; without it, the
    KeyboardInterrupt propagates.
    """
    if isinstance(errors, Mapping):
        statuses = dict(errors)
    else:
        statuses = dict.fromkeys(errors if isinstance(errors, tuple) else (errors,),
                                 ERROR_STATUS)
    try:
        return fn()
    except KeyboardInterrupt:
        if interrupted is None:
            raise
        print(f"{name}: interrupted; {interrupted}", file=sys.stderr)
        return INTERRUPTED_STATUS
    except tuple(statuses) as err:
        print(f"{name}: error: {err}", file=sys.stderr)
        return next(s for t, s in statuses.items() if isinstance(err, t))


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
