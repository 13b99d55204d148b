"""Deliberately broken copies of the RTL, for the tests that show a checker catches a bug."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

from .common import HDL_DIR

#: fp_classify reading the finite-only code S.1111.000 (256) as Inf, as an IEEE-style classifier
#: would: (file, pattern, replacement) for :func:`broken_hdl`.
E4M3FN_CODE_AS_INF = ("fp_classify.v", r"wire special = e_ones & \(~fn \| \(&m\)\);",
                      "wire special = e_ones & (~fn | (&m) | m_zero);")


def broken_hdl(tmp: Path, file: str, pattern: str, repl: str | Callable[[re.Match[str]], str],
               *, src: Path = HDL_DIR, name: str = "hdl_broken") -> Path:
    """Copy ``src`` (default ``hdl/``) to ``tmp/<name>`` with one deliberate bug: the single
    match of the regular expression ``pattern`` in ``file`` replaced by ``repl`` (a string taken
    literally, or a function of the match). Returns the copy's directory.

    Raises:
        AssertionError: ``pattern`` matches ``file`` other than exactly once, so a test whose
            mutation no longer applies fails instead of quietly testing the good design.
    """
    hdl = tmp / name
    shutil.copytree(src, hdl)
    path = hdl / file
    text, count = re.subn(pattern, repl if callable(repl) else lambda _m: repl, path.read_text())
    assert count == 1, (f"the mutation {pattern!r} matches {file} {count} times, not once: "
                        "update the test")
    path.write_text(text)
    return hdl
