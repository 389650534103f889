"""One writer per data directory and per log directory: an flock held for the life of the process.

The kernel drops the lock when the process dies, `kill -9` included, so a stale lock file never
blocks the next start. The lock file is opened without following a link: a link planted in its
place is refused, never truncated through.
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

from audit.writer import open_own
from bot.core.errors import LockHeld


class DataDirLock:
    what, setting = "data directory", "BOT_DATA_DIR"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = -1

    def acquire(self) -> None:
        fd = open_own(self.path, os.O_RDWR | os.O_CREAT, 0o600)  # a link: PlantedLink
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise LockHeld(f"another tradebot (pid {holder}) is already running on {self.what} "
                           f"{self.path.parent}: stop it first, or set {self.setting} to another "
                           "directory") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> "DataDirLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class LogDirLock(DataDirLock):
    """One writer per trail: two bots with their own data directories but one log directory
    would interleave two chains under two keys. Readers (audit, logs, replay, report) never take it."""

    what, setting = "log directory", "BOT_LOG_DIR"


class Locks:
    """Several locks released together (in reverse order)."""

    def __init__(self, *locks: DataDirLock) -> None:
        self.locks = locks

    def release(self) -> None:
        for lock in reversed(self.locks):
            lock.release()
