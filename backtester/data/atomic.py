"""Crash-safe file operations: write to a temp file, fsync, rename; one writer per series.

A rename within one directory is atomic on POSIX, so a reader (or a process restarted after kill -9)
sees either the old file or the complete new one. The directory is fsynced after the rename so the
new name survives a power loss too.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from backtester.data.errors import CatalogError

TEMP_SUFFIX = ".tmp"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # The pid keeps two writers of the same name from sharing one temp file.
    temp = path.with_name(f".{path.name}.{os.getpid()}{TEMP_SUFFIX}")
    try:
        with temp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        temp.replace(path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise naming(exc, path) from exc
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def naming(exc: OSError, path: Path) -> OSError:
    """`exc` with the path it concerns: a failed write (a full disk, a file-size limit) often
    carries none, and the user must know where it happened."""
    if exc.filename is not None:
        return exc
    return OSError(exc.errno, exc.strerror or str(exc), str(path))


def check_writable(directory: Path, what: str) -> None:
    """Fail before any work if `directory` cannot be created or written (a read-only file system,
    a file in the way, no permission), naming it. Nothing is left behind: the nearest existing
    ancestor is checked."""
    existing = directory
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise NotADirectoryError(
            errno.ENOTDIR, f"cannot write the {what} {directory}: {existing} is not a directory"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        reason = "read-only file system" if _read_only_fs(existing) else "no write permission"
        raise PermissionError(
            errno.EACCES, f"cannot write the {what} {directory}: {reason} at {existing}"
        )
    # Permission bits do not bind root, and some file systems refuse writes whatever the bits say
    # (/sys, a read-only bind mount): only a write proves a write, so a probe file comes and goes.
    try:
        handle, probe = tempfile.mkstemp(prefix=".write-probe-", dir=existing)
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise PermissionError(
            exc.errno or errno.EACCES,
            f"cannot write the {what} {directory}: {reason} at {existing}",
        ) from exc
    os.close(handle)
    os.unlink(probe)


def _read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def exclusive_lock(lock_path: Path, label: str) -> Iterator[None]:
    """Fail fast if another process writes the same series; the OS drops the lock if we die."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise CatalogError(f"{label}: another process is writing this series") from exc
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
