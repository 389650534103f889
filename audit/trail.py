"""The audit trail: the six JSONL streams and production.log in one log directory.

`record` stamps a record with the clock, writes it as one whole line to its stream and a readable
line to production.log. Live trails (`durable=True`) fdatasync order and trade lines before
returning and every other stream at each `checkpoint`; simulation trails buffer and flush at
checkpoints. It does not rotate files or keep hash chains.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Callable, Protocol, TextIO

import orjson

from audit.records import ORDERS, PRODUCTION_LOG, STREAMS, TRADES, Record
from audit.timestamps import format_timestamp
from audit.writer import BufferedFile, DurableFile, prepare_directory

_DUMPS = orjson.dumps
_NEWLINE = orjson.OPT_APPEND_NEWLINE
_SYNC_AT_ONCE = frozenset((ORDERS, TRADES))


class _Clock(Protocol):
    def now(self) -> datetime: ...


class AuditTrail:
    """Writes records to the log directory; all seven files exist from construction on."""

    def __init__(self, log_dir: Path, clock: _Clock, *, durable: bool,
                 echo: TextIO | None = None) -> None:
        self.log_dir = Path(log_dir)
        self.durable = durable
        self._now: Callable[[], datetime] = clock.now
        self._echo = echo
        prepare_directory(self.log_dir)
        opener = DurableFile if durable else BufferedFile
        self._files = {name: opener(self.log_dir / name) for name in STREAMS}
        self._text = opener(self.log_dir / PRODUCTION_LOG)
        self.counts = dict.fromkeys(STREAMS, 0)

    def record(self, rec: Record) -> str:
        """Write one record; returns its timestamp."""
        ts = format_timestamp(self._now())
        stream = rec.stream
        f = self._files[stream]
        f.append(_DUMPS(rec.to_dict(ts), option=_NEWLINE))
        if self.durable and stream in _SYNC_AT_ONCE:
            f.sync()
        self.counts[stream] += 1
        self._write_text(f"{ts} {rec.level:<5} {rec.event_type}: {rec.describe()}\n")
        return ts

    def log(self, level: str, message: str) -> None:
        """A production.log line only (start-up banner, tracebacks, schedule notes)."""
        ts = format_timestamp(self._now())
        self._write_text(f"{ts} {level:<5} {message}\n")

    def _write_text(self, line: str) -> None:
        self._text.append(line.encode("utf-8", "replace"))
        if self._echo is not None:
            self._echo.write(line)
            self._echo.flush()

    def checkpoint(self) -> None:
        """Live trails: fdatasync every stream. Simulation trails keep buffering (they flush
        whole lines each MiB and at `flush`/`close`): an fsync per simulated day costs 8-40x."""
        if self.durable:
            for f in self._files.values():
                f.sync()
            self._text.sync()

    def flush(self) -> None:
        """Hand everything buffered to the files (no fsync)."""
        for f in self._files.values():
            f.flush()
        self._text.flush()

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._text.close()
