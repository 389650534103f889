"""The audit trail: the six JSONL streams and production.log in one log directory.

`record` stamps a record with the clock, writes it as one whole line to its stream and a readable
line to production.log. Live trails (`durable=True`) fdatasync order and trade lines before
returning, and at each `checkpoint` (every cycle, and at close) fdatasync every stream and sign
its chain; simulation trails buffer whole lines and sign as they flush. What the streams notice
(a torn tail repaired, a file rotated or truncated under us) is recorded in events.jsonl.
"""
from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Callable, Protocol, TextIO

import orjson

from audit.records import ORDERS, PRODUCTION_LOG, STREAMS, TRADES, EventRecorded, Record
from audit.stream import Stream
from audit.timestamps import format_timestamp
from audit.writer import AuditWriteFailed, prepare_directory

_DUMPS = orjson.dumps
_NEWLINE = orjson.OPT_APPEND_NEWLINE
_SYNC_AT_ONCE = frozenset((ORDERS, TRADES))


class _Clock(Protocol):
    def now(self) -> datetime: ...


class TrailListener(Protocol):
    """Told what the trail did (metrics, alerts). Must not raise; must not write to the trail."""

    def recorded(self, rec: Record, timestamp: str) -> None: ...

    def synced(self, seconds: float) -> None: ...

    def write_failed(self, error: str) -> None: ...


class AuditTrail:
    """Writes records to the log directory; all seven files exist from construction on.

    `listeners` hear of every record written, every fsync's duration and every write failure.
    """

    def __init__(self, log_dir: Path, clock: _Clock, *, durable: bool, key: bytes,
                 echo: TextIO | None = None, max_bytes: int = 0, backups: int = 5,
                 compress: bool = False, archive_dir: Path | None = None) -> None:
        self.log_dir = Path(log_dir)
        if archive_dir is not None and Path(archive_dir).resolve() == self.log_dir.resolve():
            raise ValueError("BOT_LOG_ARCHIVE_DIR is the log directory: archive pruned segments "
                             "in another directory (or leave it unset to delete them)")
        self.durable = durable
        self._now: Callable[[], datetime] = clock.now
        self._echo = echo
        prepare_directory(self.log_dir)

        def stream(name: str) -> Stream:
            return Stream(self.log_dir, name, key, durable=durable, stamp=self._stamp,
                          max_bytes=max_bytes, backups=backups, compress=compress,
                          archive_dir=None if archive_dir is None else Path(archive_dir))
        self._files = {name: stream(name) for name in STREAMS}
        self._text = stream(PRODUCTION_LOG)
        self.counts = dict.fromkeys(STREAMS, 0)
        self.listeners: list[TrailListener] = []
        self._record_notices()

    def _stamp(self) -> str:
        return format_timestamp(self._now())

    def _record_notices(self) -> None:
        """Record what the streams noticed (repairs, rotations, truncations) in events.jsonl."""
        for _ in range(10):
            pending = [(n, f) for f in (*self._files.values(), self._text) for n in f.notices]
            if not pending:
                return
            for f in (*self._files.values(), self._text):
                f.notices = []
            for (kind, message, details), _f in pending:
                level = "INFO" if kind in ("rotation", "expired") else "WARN"
                self.record(EventRecorded(kind, message, details, level=level), notices=False)

    def record(self, rec: Record, *, notices: bool = True) -> str:
        """Write one record; returns its timestamp."""
        ts = format_timestamp(self._now())
        stream = rec.stream
        f = self._files[stream]
        try:
            f.append(_DUMPS(rec.to_dict(ts), option=_NEWLINE))
            if self.durable and stream in _SYNC_AT_ONCE:
                self._timed(f.sync)
        except AuditWriteFailed as exc:
            self._failed(exc)
            raise
        self.counts[stream] += 1
        self._write_text(f"{ts} {rec.level:<5} {rec.event_type}: {rec.describe()}\n")
        for listener in self.listeners:
            listener.recorded(rec, ts)
        if notices and self.durable and (f.notices or self._text.notices):
            self._record_notices()
        return ts

    def _timed(self, sync: Callable[[], None]) -> None:
        if not self.listeners:
            sync()
            return
        started = time.perf_counter()
        sync()
        seconds = time.perf_counter() - started
        for listener in self.listeners:
            listener.synced(seconds)

    def _failed(self, exc: AuditWriteFailed) -> None:
        for listener in self.listeners:
            listener.write_failed(str(exc))

    def log(self, level: str, message: str, *, echo: bool = True) -> None:
        """A production.log line only (start-up banner, tracebacks, schedule notes); `echo=False`
        keeps it off the console (the full settings line)."""
        ts = format_timestamp(self._now())
        self._write_text(f"{ts} {level:<5} {message}\n", echo=echo)

    def _write_text(self, line: str, *, echo: bool = True) -> None:
        self._text.append(line.encode("utf-8", "replace"))
        if echo and self._echo is not None:
            self._echo.write(line)
            self._echo.flush()

    def checkpoint(self) -> None:
        """Live trails: fdatasync every stream and sign its chain. Simulation trails keep
        buffering (they flush whole lines and sign each MiB and at close): an fsync per simulated
        day costs 8-40x."""
        if self.durable:
            try:
                for f in (*self._files.values(), self._text):
                    self._timed(f.checkpoint)
            except AuditWriteFailed as exc:
                self._failed(exc)
                raise
            self._record_notices()

    def flush(self) -> None:
        """Hand everything buffered to the files (no fsync)."""
        for f in self._files.values():
            f.flush()
        self._text.flush()

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._text.close()

    def rotate(self) -> None:
        """Rotate every stream now (built-in rotation; used by tests and `max_bytes`)."""
        for f in (*self._files.values(), self._text):
            f.rotate("requested")
        self._record_notices()
