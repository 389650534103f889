"""Append-only files for the trail: one whole line per write, mode 0600.

`DurableFile` appends whole lines with one `os.write` each on an O_APPEND descriptor; `sync()`
fdatasyncs. The trail's streams (`stream.py`) add rotation and the hash chain on top of the
same rules.
"""
from __future__ import annotations

import os
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700
_BUFFER_LIMIT = 1 << 20


class AuditWriteFailed(OSError):
    """A line could not be written or synced: the trail is no longer trustworthy."""


def prepare_directory(path: Path) -> None:
    """Create the log directory with mode 0700 (tighten it if we own it and it is looser)."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    st = path.stat()
    if st.st_mode & 0o077 and st.st_uid == os.getuid():
        os.chmod(path, DIR_MODE)


def _open_append(path: Path) -> int:
    existed = path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    if os.fstat(fd).st_mode & 0o077:
        os.fchmod(fd, FILE_MODE)
    if not existed:
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    return fd


class DurableFile:
    """One O_APPEND descriptor; every `append` is a single os.write of a whole line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = _open_append(path)
        self._dirty = False

    def append(self, line: bytes) -> None:
        try:
            written = os.write(self._fd, line)
        except OSError as exc:
            raise AuditWriteFailed(exc.errno, f"cannot write {self.path}: {exc.strerror}") from exc
        if written != len(line):
            raise AuditWriteFailed(0, f"short write to {self.path}: {written} of {len(line)} bytes")
        self._dirty = True

    def sync(self) -> None:
        if not self._dirty:
            return
        try:
            os.fdatasync(self._fd)
        except OSError as exc:
            raise AuditWriteFailed(exc.errno, f"cannot sync {self.path}: {exc.strerror}") from exc
        self._dirty = False

    def flush(self) -> None:
        """Nothing is buffered here."""

    def close(self) -> None:
        if self._fd >= 0:
            self.sync()
            os.close(self._fd)
            self._fd = -1
