"""The regressions' environment knobs, parsed in one place with one-line errors.

* ``COCOTB_RANDOM_SEED`` - seed of all random vectors, an integer 0..2^32-1 (default 1).
* ``LMUL_VECTORS``       - random operand vectors per configuration, a positive integer
  (default: each testbench's documented count).
* ``LMUL_TILES``         - random matrix tiles per MAC-array configuration, a positive integer.
* ``LMUL_FULL``          - the large variants: 1/true/yes/on or 0/false/no/off/empty (default off).
* ``WAVES``              - 1 dumps an FST waveform per simulation (0 or 1; default 0).

An empty value means "not set". Only the standard library is imported: the repository's
conftest checks these before collection, so a typo stops pytest with one line, not a traceback.
"""

from __future__ import annotations

import os
import re

SEED_MAX = 2**32 - 1
DEFAULT_SEED = 1
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")
_INTEGER = re.compile(r"\+?[0-9]+")


class KnobError(ValueError):
    """An environment knob with a value that cannot be used (the message is one line)."""


def _raw(name: str) -> str:
    return os.environ.get(name, "").strip()


def _integer(name: str, minimum: int, maximum: int | None, what: str) -> int | None:
    raw = _raw(name)
    if not raw:
        return None
    if not _INTEGER.fullmatch(raw) or int(raw) < minimum or (maximum is not None
                                                              and int(raw) > maximum):
        raise KnobError(f"{name} must be {what}, got {raw!r}")
    return int(raw)


def random_seed() -> int:
    """The regression seed: ``COCOTB_RANDOM_SEED`` or 1."""
    seed = _integer("COCOTB_RANDOM_SEED", 0, SEED_MAX, f"an integer from 0 to {SEED_MAX}")
    return DEFAULT_SEED if seed is None else seed


def vector_count(default: int) -> int:
    """Random vectors per configuration: ``LMUL_VECTORS`` if set, else ``default``."""
    n = _integer("LMUL_VECTORS", 1, None,
                 "a positive integer (random vectors per configuration)")
    return default if n is None else n


def tile_count(default: int) -> int:
    """Random matrix tiles per MAC-array configuration: ``LMUL_TILES`` if set, else ``default``."""
    n = _integer("LMUL_TILES", 1, None,
                 "a positive integer (random tiles per MAC-array configuration)")
    return default if n is None else n


def _flag(name: str, accepted: tuple[str, ...], what: str) -> bool:
    raw = _raw(name).lower()
    if raw in _TRUE and raw in accepted:
        return True
    if raw in _FALSE and raw in accepted:
        return False
    raise KnobError(f"{name} must be {what}, got {os.environ.get(name)!r}")


def full_run() -> bool:
    """True when ``LMUL_FULL`` asks for the large variants."""
    return _flag("LMUL_FULL", _TRUE + _FALSE, "one of 1/true/yes/on or 0/false/no/off (or empty)")


def waves() -> bool:
    """True when ``WAVES=1`` asks for a waveform dump per simulation."""
    # 0/1 only: cocotb-test itself reads WAVES with int().
    return _flag("WAVES", ("1", "0", ""), "0 or 1")


def check_all() -> dict[str, str]:
    """Parse every knob (raising :class:`KnobError` on the first bad one); return them for the
    report header."""
    return {
        "COCOTB_RANDOM_SEED": str(random_seed()),
        "LMUL_VECTORS": str(vector_count(0) or "(per-testbench default)"),
        "LMUL_TILES": str(tile_count(0) or "(default)"),
        "LMUL_FULL": str(int(full_run())),
        "WAVES": str(int(waves())),
    }
