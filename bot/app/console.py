"""The console (stdout of `run` and `cycle`) is a convenience; the trail is the record.

Lines go through a bounded queue to a writer thread, so a stdout nobody reads (a full pipe)
never blocks a cycle or a stop: when the queue is full, lines are dropped and counted. A closed
stdout (`tradebot run | head`: EPIPE) disables the console for good; trading goes on.
"""
from __future__ import annotations

import os
import queue
import sys
import threading
from typing import TextIO, cast

MAX_QUEUED = 1000  # console lines waiting for a slow reader; beyond, they are dropped


class Console:
    """A text sink for `AuditTrail(echo=...)`: `write` and `flush` never block or raise."""

    def __init__(self, fd: int, max_queued: int = MAX_QUEUED) -> None:
        self._fd = fd
        self._queue: queue.Queue[str | None] = queue.Queue(max_queued)
        self.dropped = 0  # lines not shown: the queue was full or the console closed
        self.closed = False
        self._thread = threading.Thread(target=self._drain, name="console", daemon=True)
        self._thread.start()

    def write(self, text: str) -> None:
        if self.closed:
            self.dropped += 1
            return
        try:
            self._queue.put_nowait(text)
        except queue.Full:
            self.dropped += 1

    def flush(self) -> None:
        """Lines are written by the console's thread as soon as it can."""

    def close(self, timeout: float = 2.0) -> None:
        """Give the reader up to `timeout` seconds to take the lines still queued."""
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)

    def _drain(self) -> None:
        while (text := self._queue.get()) is not None:
            data = text.encode("utf-8", "replace")
            try:
                while data:
                    data = data[os.write(self._fd, data):]
            except OSError:  # EPIPE (the reader left), EBADF: nobody will read the console
                self.closed = True
                return


class _Plain:
    """stdout without a descriptor (a test's capture): written as it is, closed by nobody."""

    def __init__(self, out: TextIO) -> None:
        self.write, self.flush = out.write, out.flush

    def close(self) -> None:
        pass


def open_console() -> TextIO:
    """The console of `run` and `cycle`: stdout through a queue that never blocks or raises (a
    stdout nobody reads or a closed one must not stop trading); stdout itself when it has no
    file descriptor. Both write, flush and close text, which is all the trail and the stop ask
    of a TextIO (hence the cast)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):
        return cast(TextIO, _Plain(sys.stdout))
    sys.stdout.flush()
    return cast(TextIO, Console(fd))
