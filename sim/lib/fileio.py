"""Atomic file writes, writer locks, file hashes, and where results live.

A reader never sees a half-written results, weights or data file (:func:`atomic_write`), and
writers that merge into a shared file serialize on a sidecar lock (:func:`locked`), so two
processes extending one results file cannot lose each other's entries.

Results: every make target writes into ``results/`` (generated, git-ignored); the committed
snapshots live in ``docs/results/`` and are only replaced on purpose (``make snapshot``). A
reader of a result that another target produces asks :func:`snapshot_or_generated` for it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

REPO = Path(__file__).resolve().parents[2]
#: Where the make targets write (generated, git-ignored).
RESULTS_DIR = REPO / "results"
#: The committed snapshots of those results.
SNAPSHOT_DIR = REPO / "docs" / "results"


def snapshot_or_generated(name: str) -> Path:
    """``results/<name>`` when a run generated it, else the committed ``docs/results/<name>``.

    ``name`` is a file name relative to the results directory (``"precision_offsets.csv"``).
    The returned path may not exist (neither generated nor committed); callers say so.
    """
    generated = RESULTS_DIR / name
    return generated if generated.exists() else SNAPSHOT_DIR / name


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB chunks, so large files need no copy)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write(path: Path, writer: Callable[[BinaryIO], None]) -> None:
    """Write ``path`` through ``writer(fileobj)`` into a temporary file, then ``os.replace`` it.

    The temporary file lives in the same directory (so the rename is atomic on POSIX) and is
    removed if ``writer`` raises; an interrupted run leaves the previous file intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates 0600; results and data are meant to be shared like ordinary files.
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as f:
            writer(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Atomically replace ``path`` with ``data``."""
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: Path, text: str) -> None:
    """Atomically replace ``path`` with ``text`` encoded as UTF-8."""
    atomic_write_bytes(path, text.encode("utf-8"))


def lock_path(path: Path) -> Path:
    """The sidecar lock file of ``path``: ``<name>.lock`` in the same directory."""
    path = Path(path)
    return path.with_name(path.name + ".lock")


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive ``fcntl.flock`` on ``path``'s sidecar lock file for the ``with`` body.

    The lock is on a separate file because :func:`atomic_write` replaces ``path`` itself (a lock
    on the old inode would not exclude a writer that opened the new one). The lock file is left
    in place: removing it would let a third process lock a fresh inode while a second still
    holds the old one. Blocks until the lock is free; released on exit, also by the kernel if
    the process dies.
    """
    lock = lock_path(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def check_writable_file(path: Path) -> None:
    """Raise ``ValueError`` (one line) unless :func:`atomic_write` + :func:`locked` can write
    ``path``.

    Creates missing parent directories, then refuses: a path that exists but is not a regular
    file (a directory, ``/dev/full``, a fifo: reading one can block forever), a file without
    write permission bits (read-only on purpose: the atomic replace would bypass that), and a
    directory where no file can be created (probed with a real temporary file, since
    ``os.access`` says yes to root on any mode bits).
    """
    path = Path(path)
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError):  # the parent check below says why
        st = None
    except OSError as err:
        raise ValueError(f"cannot access it ({err.strerror})") from None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise ValueError("is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("is not a regular file (device, fifo or socket)")
        if not st.st_mode & 0o222 or not os.access(path, os.W_OK):
            raise ValueError("is read-only")
    try:
        check_writable_dir(path.parent)
    except ValueError as err:
        raise ValueError(f"cannot create its directory or write in it: {err}") from None
    lock = lock_path(path)
    try:
        os.close(os.open(lock, os.O_RDWR | os.O_CREAT, 0o644))
    except OSError as err:
        raise ValueError(f"cannot open its lock file {lock} ({err.strerror})") from None


def check_writable_dir(path: Path) -> None:
    """Raise ``ValueError`` (one line) unless ``path`` is, or can be created as, a directory
    where files can be created; creates it (and its parents) if missing.

    Probed with a real temporary file, removed again: ``os.access`` says yes to root whatever
    the mode bits, and no mode bits describe a read-only mount.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path} is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".probe.", suffix=".tmp", dir=path)
    except OSError as err:
        raise ValueError(f"{path}: {err.strerror}") from None
    os.close(fd)
    os.unlink(tmp)
