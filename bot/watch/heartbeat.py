"""The heartbeat file: after every cycle, a small JSON document in the data directory that says
how the last cycle went; also when the bot starts (`process_started`, then the `next_slot` it
waits for) and when it stops cleanly (`stopped`, `stopped_at`). `tradebot health` reads it;
nothing else does.

It is written atomically (temporary file, fsync, rename; mode 0600), so a reader sees the old
document or the new one, never half of one. It is not part of the audit trail and is never
signed. A heartbeat that cannot be written never stops the bot: it says so on stderr, once.
"""
from __future__ import annotations

import os
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import orjson

from audit.timestamps import format_slot, format_timestamp
from audit.writer import open_own
from bot.core.observers import CycleReport

FILE_MODE = 0o600


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def cycle_document(report: CycleReport, summary: dict[str, Any], pid: int) -> dict[str, Any]:
    """The heartbeat of one cycle: what `tradebot health` needs and nothing more."""
    finished = report.started + timedelta(seconds=report.seconds)
    return {**summary,
            "slot": format_slot(report.slot),
            "started": format_timestamp(report.started),
            "finished": format_timestamp(finished),
            "seconds": round(report.seconds, 3),
            "ok": report.ok,
            "error": report.error,
            # a cycle completes only after the broker answered its account reads
            "broker_ok": report.ok,
            "nav": report.nav,
            "cash": report.cash,
            "pid": pid}


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data`: temporary file beside it, fsync, rename (mode 0600)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = open_own(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)  # never through a link
    try:
        os.write(fd, data)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class Heartbeat:
    """A CycleObserver that writes its file (`bot.core.layout.HEARTBEAT_FILE`) after each cycle and on a halt.

    `settings_summary` (e.g. schedule, market_hours, broker) is copied into every document.
    `now` only stamps a halt; cycle times come from the report.
    """

    def __init__(self, path: Path, settings_summary: dict[str, Any], *,
                 now: Callable[[], datetime] = _utcnow) -> None:
        self.path = path
        self.summary = dict(settings_summary)
        self.now = now
        self.last: dict[str, Any] | None = None
        self.process_started: str | None = None
        self._warned = False

    def cycle_finished(self, report: CycleReport) -> None:
        self.last = cycle_document(report, self.summary, os.getpid())
        if self.process_started is not None:
            self.last["process_started"] = self.process_started
        self._write(self.last)

    def waiting(self, next_slot: datetime) -> None:
        """Before this process's first cycle: the slot it waits for (health says "starting")."""
        base = self.last if self.last is not None else self._read_previous()
        self._write({**base, "next_slot": format_slot(next_slot)})

    def stopped(self, reason: str) -> None:
        """A clean stop (a signal, --max-cycles): health says "stopped" at once instead of
        "healthy" until the schedule makes the last cycle stale."""
        base = self.last if self.last is not None else self._read_previous()
        self._write({**base, "pid": os.getpid(), "stopped": reason,
                     "stopped_at": format_timestamp(self.now())})

    def halted(self, reason: str) -> None:
        """Keep the last cycle's figures (this process's, else the file's) and add the halt."""
        base = self.last if self.last is not None else self._read_previous()
        doc = {**self.summary, **base, "pid": os.getpid(), "halted": reason,
               "halted_at": format_timestamp(self.now())}
        self._write(doc)

    def started(self) -> None:
        """A new process passed its start-up checks: an earlier halt or stop no longer holds;
        the start is recorded (until its first cycle, health reads it as "starting")."""
        self.process_started = format_timestamp(self.now())
        previous = self._read_previous()
        for key in ("halted", "halted_at", "stopped", "stopped_at", "next_slot"):
            previous.pop(key, None)
        self._write({**self.summary, **previous, "pid": os.getpid(),
                     "process_started": self.process_started})

    def close(self) -> None:
        """Nothing to let go of: every document is already on disk."""

    def _read_previous(self) -> dict[str, Any]:
        try:
            doc = orjson.loads(self.path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return {}
        return doc if isinstance(doc, dict) else {}

    def _write(self, doc: dict[str, Any]) -> None:
        try:
            write_atomically(self.path, orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
        except Exception as exc:  # noqa: BLE001 - the heartbeat never stops trading
            if not self._warned:
                self._warned = True
                print(f"tradebot: cannot write the heartbeat {self.path} ({exc}); trading goes "
                      "on, but `tradebot health` will report the bot as unhealthy",
                      file=sys.stderr, flush=True)
