"""One `run` or `cycle` per data directory: an flock held for the life of the process.

The kernel drops the lock when the process dies, `kill -9` included, so a stale lock file never
blocks the next start.
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

from audit.writer import open_own
from bot.errors import LockHeld


class DataDirLock:
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
            raise LockHeld(f"another tradebot (pid {holder}) is already running on data directory "
                           f"{self.path.parent}: stop it first, or set BOT_DATA_DIR to another directory") from None
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
