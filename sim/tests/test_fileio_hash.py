"""sim.lib.fileio.sha256_file and sim.lib.progress: the helpers sim/ and experiments/ share."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from sim.lib import progress
from sim.lib.fileio import sha256_file


def test_sha256_file_over_several_chunks(tmp_path: Path) -> None:
    data = bytes(range(256)) * (3 * 4096 + 7)  # 3 MiB + 1792 bytes: four reads
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    path.write_bytes(data[:-1] + b"\x00")
    assert sha256_file(path) != hashlib.sha256(data).hexdigest()
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert sha256_file(empty) == hashlib.sha256(b"").hexdigest()


def test_bar_interval_follows_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class _Stream:
        def __init__(self, tty: bool) -> None:
            self.tty = tty

        def isatty(self) -> bool:
            return self.tty

    monkeypatch.setattr(progress.sys, "stderr", _Stream(True))
    assert progress.bar_interval() == 0.1
    monkeypatch.setattr(progress.sys, "stderr", _Stream(False))
    assert progress.bar_interval() == 30.0
