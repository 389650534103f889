"""`BOT_ANCHOR_URL`: each anchor line POSTed from a background thread, never blocking a cycle.

The trail hands each anchor line to an `AnchorPoster` (a callable); it is queued and sent by a
daemon thread with a short timeout. A failure never raises into the bot where it happened: it
is raised, as one line without the URL (often a secret), at the next line handed over, which
the trail notes in production.log. When the endpoint is behind, the oldest queued line is
dropped (a newer head covers it).
"""
from __future__ import annotations

import queue
import threading
from typing import Callable

from bot.watch.alerts import failure_without_url, post_json

TIMEOUT = 5.0
MAX_QUEUED = 20

Post = Callable[[str, bytes, float], None]


class AnchorPostFailed(Exception):
    """What went wrong sending earlier anchor lines (the URL is never in it)."""


class AnchorPoster:
    def __init__(self, url: str, post: Post | None = None, timeout: float = TIMEOUT) -> None:
        self._url = url
        self._post = post or post_json
        self.timeout = timeout
        self._queue: queue.Queue[bytes] = queue.Queue(MAX_QUEUED)
        self._failures: list[str] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.sent = 0

    def __repr__(self) -> str:  # never show the URL
        return "AnchorPoster(BOT_ANCHOR_URL)"

    def __call__(self, body: bytes) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="tradebot-anchor", daemon=True)
            self._thread.start()
        while True:
            try:
                self._queue.put_nowait(body)
                break
            except queue.Full:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    pass
        with self._lock:
            failures, self._failures = self._failures, []
        if failures:
            raise AnchorPostFailed(f"{len(failures)} line(s) not taken; last: {failures[-1]}")

    def join(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for the queued lines (tests, stop)."""
        done = threading.Event()

        def wait() -> None:
            self._queue.join()
            done.set()
        threading.Thread(target=wait, daemon=True).start()
        done.wait(timeout)

    def _loop(self) -> None:
        while True:
            body = self._queue.get()
            try:
                self._post(self._url, body, self.timeout)
                self.sent += 1
            except Exception as exc:  # noqa: BLE001 - reported at the next line, never raised here
                with self._lock:
                    self._failures.append(self._clean(exc))
            finally:
                self._queue.task_done()

    def _clean(self, exc: BaseException) -> str:
        return failure_without_url(exc, self._url, "the anchor URL")
