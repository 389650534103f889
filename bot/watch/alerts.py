"""Alerts to a webhook (`BOT_ALERT_WEBHOOK_URL`): a small JSON POST when something needs a human.

`WebhookAlerts` is a cycle observer and a trail listener. It alerts when trading halts, when the
kill switch engages (once per engagement: it re-arms after a completed cycle without it), when
the trail cannot be written (once, until a record is written again), when `after_failures`
cycles fail in a row (once per streak), and when the live trail's self-verify fails (once per
failure: it re-arms after a verify that passes). The body has a one-line `text`, so Slack- or
Mattermost-style incoming webhooks show it as is.

Sending happens on a daemon thread; a webhook that fails (refused, 5xx, timeout) never raises
into the bot. Its failures are passed to `log` on the bot's own thread, at the next cycle end or
at `close` (the trail is not written from two threads). The URL often holds a token: it is never
logged; messages say "the alert webhook".
"""
from __future__ import annotations

import json
import queue
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Protocol
from urllib.parse import urlsplit

from audit.records import KillSwitchEngaged, Record, UnknownRecord
from audit.timestamps import format_slot, format_timestamp
from bot.core.observers import CycleReport

Post = Callable[[str, bytes, float], None]
Log = Callable[[str, str], None]

TIMEOUT = 5.0
TRIES = 2
CLOSE_WAIT = 5.0
MAX_QUEUED = 100
MAX_TEXT = 500
_STOP = object()


class _Clock(Protocol):
    def now(self) -> datetime: ...


class _SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class WebhookFailed(Exception):
    """The webhook answered with an error status; `retry` says whether trying again may help."""

    def __init__(self, message: str, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


def post_json(url: str, body: bytes, timeout: float) -> None:
    """POST `body` as JSON with urllib; raises on a refused connection, a timeout or a non-2xx."""
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": "tradebot-alerts"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read(65536)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise WebhookFailed(f"HTTP {exc.code} {exc.reason}", retry=exc.code >= 500 or exc.code == 429) from None


def _stderr_log(level: str, message: str) -> None:
    print(f"{level} {message}", file=sys.stderr, flush=True)


def one_line(text: str, limit: int = MAX_TEXT) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit - 3] + "..."


def failure_without_url(exc: BaseException, url: str, name: str) -> str:
    """A failed POST as one line, every part of `url` (a secret) replaced by `name`."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        text = str(exc.reason)
    parts = urlsplit(url)
    for secret in (url, parts.path if len(parts.path) > 1 else "", parts.query,
                   parts.password or ""):
        if secret:
            text = text.replace(secret, name)
    return one_line(text, 200)


class WebhookAlerts:
    """Posts `{"text", "event", "bot", "timestamp", "details"}` to `url` for the four alerts.

    `post(url, body, timeout)` sends one request (default: urllib); `clock.now()` stamps alerts;
    `log(level, message)` hears of webhook failures (default: stderr). `tries` is at most 2 by
    design; `retry_pause` seconds separate them.
    """

    def __init__(self, url: str, after_failures: int, post: Post | None = None,
                 clock: _Clock | None = None, log: Log | None = None, *,
                 timeout: float = TIMEOUT, tries: int = TRIES, retry_pause: float = 1.0) -> None:
        if after_failures < 1:
            raise ValueError("after_failures must be at least 1")
        self._url = url
        self.after_failures = after_failures
        self._post = post or post_json
        self._clock = clock or _SystemClock()
        self._log = log or _stderr_log
        self.timeout = timeout
        self.tries = max(1, min(tries, TRIES))
        self.retry_pause = retry_pause
        self._queue: queue.Queue[Any] = queue.Queue(MAX_QUEUED)
        self._notes: list[tuple[str, str]] = []  # sender thread -> log, on the bot thread
        self._notes_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        # arming state (touched by the bot's thread only)
        self._halt_sent = False
        self._kill_armed = True
        self._kill_this_cycle = False
        self._write_armed = True
        self._failures = 0
        self._verify_armed = True
        self.sent = 0  # alerts handed to the webhook successfully (for tests and status)

    def __repr__(self) -> str:  # never show the URL
        return f"WebhookAlerts(the alert webhook, after_failures={self.after_failures})"

    # --- CycleObserver ---------------------------------------------------------------------
    def started(self) -> None:
        """Nothing to do at start-up."""

    def cycle_finished(self, report: CycleReport) -> None:
        if report.ok:
            if not self._kill_this_cycle:
                self._kill_armed = True
            self._failures = 0
        else:
            self._failures += 1
            if self._failures == self.after_failures:
                self._alert("cycles_failing", f"{self._failures} cycles failed in a row; last: "
                            f"{report.error}", {"failures": self._failures,
                                                "error": one_line(report.error or ""),
                                                "cycle_timestamp": format_slot(report.slot)})
        self._kill_this_cycle = False
        self._flush_notes()

    def waiting(self, next_slot: datetime) -> None:
        """Nothing to do before the first cycle."""

    def stopped(self, reason: str) -> None:
        """A clean stop is not an alert (`close` follows)."""

    def halted(self, reason: str) -> None:
        if not self._halt_sent:
            self._halt_sent = True
            self._alert("halted", f"trading halted: {reason}", {"reason": one_line(reason)})
        self._flush_notes()

    def close(self) -> None:
        """Wait up to 5 s in all for queued alerts to go out, then let go (the thread is a daemon)."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            deadline = time.monotonic() + CLOSE_WAIT
            try:
                self._queue.put(_STOP, timeout=CLOSE_WAIT)
            except queue.Full:
                pass
            self._thread.join(timeout=max(0.0, deadline - time.monotonic()))
            if self._thread.is_alive():
                self._note("WARN", "the alert webhook did not answer in time: alerts still "
                                   "queued at stop were not sent")
        self._flush_notes()

    # --- SelfVerify target (bot/watch/selfcheck.py) ---------------------------------------------
    def trail_verified(self, verdict) -> None:
        if verdict.ok:
            self._verify_armed = True
        elif self._verify_armed:
            self._verify_armed = False
            self._alert("trail_verify_failed", f"the audit trail does not verify: "
                        f"{verdict.describe()}", {"problems": len(verdict.problems),
                                                  "summary": one_line(verdict.summary)})
        self._flush_notes()

    # --- TrailListener ---------------------------------------------------------------------
    def recorded(self, rec: Record | UnknownRecord, timestamp: str) -> None:
        self._write_armed = True
        if isinstance(rec, KillSwitchEngaged):
            self._kill_this_cycle = True
            if self._kill_armed:
                self._kill_armed = False
                self._alert("kill_switch", f"kill switch engaged: {rec.message}",
                            {"cycle_timestamp": format_slot(rec.cycle_timestamp),
                             "blocked_orders": rec.blocked_orders})

    def synced(self, seconds: float) -> None:
        pass

    def write_failed(self, error: str) -> None:
        if self._write_armed:
            self._write_armed = False
            self._alert("audit_write_failed", f"the audit trail cannot be written: {error}",
                        {"error": one_line(error)})

    # --- sending ---------------------------------------------------------------------------
    def _alert(self, event: str, text: str, details: Mapping[str, Any]) -> None:
        """Queue one alert; never raises, never blocks."""
        if self._closed:
            return
        try:
            body = json.dumps({"text": one_line(f"tradebot: {text}"), "event": event,
                               "bot": "tradebot", "timestamp": format_timestamp(self._clock.now()),
                               "details": dict(details)}, default=str).encode()
            self._start()
            self._queue.put_nowait((event, body))
        except queue.Full:
            self._note("WARN", f"the alert webhook is behind: {event} alert dropped")
        except Exception as exc:  # a bug here must not stop trading
            self._note("ERROR", f"alert {event} not sent: {type(exc).__name__}: {self._clean(exc)}")

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._send_loop, name="tradebot-alerts",
                                            daemon=True)
            self._thread.start()

    def _send_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            event, body = item
            self._send(event, body)

    def _send(self, event: str, body: bytes) -> None:
        for attempt in range(1, self.tries + 1):
            try:
                self._post(self._url, body, self.timeout)
                self.sent += 1
                return
            except Exception as exc:
                retry = getattr(exc, "retry", True) and attempt < self.tries
                if not retry:
                    self._note("WARN", f"the alert webhook did not take the {event} alert after "
                                       f"{attempt} tr{'y' if attempt == 1 else 'ies'}: "
                                       f"{self._clean(exc)} (trading goes on)")
                    return
                time.sleep(self.retry_pause)

    def _clean(self, exc: BaseException) -> str:
        return failure_without_url(exc, self._url, "the alert webhook")

    def _note(self, level: str, message: str) -> None:
        with self._notes_lock:
            self._notes.append((level, message))

    def _flush_notes(self) -> None:
        """Hand the sender's notes to `log`, on the bot's thread; a failing log goes to stderr."""
        with self._notes_lock:
            notes, self._notes = self._notes, []
        for level, message in notes:
            try:
                self._log(level, message)
            except Exception:
                _stderr_log(level, message)
