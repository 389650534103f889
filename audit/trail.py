"""The audit trail: the six JSONL streams and production.log in one log directory.

`record` stamps a record with the clock, writes it as one whole line to its stream and a readable
line to production.log. Live trails (`durable=True`) fdatasync order and trade lines before
returning, and at each `checkpoint` (every cycle, and at close) fdatasync every stream and sign
its chain; simulation trails buffer whole lines and sign as they flush. What the streams notice
(a torn tail repaired, a file rotated or truncated under us) is recorded in events.jsonl.

With `data_dir` the trail has an anchor there (`audit/anchor.py`), found by the trail id in its
chains' first records, and after each checkpoint round that signed something one anchor line
(every stream's signed head) goes where the bot's own user cannot rewrite it later: the console
(`anchor_console`; never production.log, which is chained itself), an append-only
`anchor_file` and `anchor_post` (the caller's, e.g. an HTTP POST on a background thread).
"""
from __future__ import annotations

import os
import stat
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Protocol, TextIO

import orjson

from audit.anchor import Anchor, format_anchor_line, key_id, new_trail_id
from audit.chain import CHAIN_SUFFIX
from audit.files import iter_chunks
from audit.records import (
    ORDERS,
    PRODUCTION_LOG,
    STREAMS,
    TRADES,
    Record,
    RecordError,
    UnknownRecord,
    decode,
    encode,
    event_from_notice,
)
from audit.stream import Stream
from audit.tail import tail_lines
from audit.timestamps import format_slot, format_timestamp
from audit.writer import AuditWriteFailed, prepare_directory, refuse_links

_SYNC_AT_ONCE = frozenset((ORDERS, TRADES))
_ANCHOR_POST_WAIT = 5.0  # seconds at close for the last anchor line to be posted


class _Clock(Protocol):
    def now(self) -> datetime: ...


class TrailListener(Protocol):
    """Told what the trail did (metrics, alerts). Must not raise; must not write to the trail."""

    def recorded(self, rec: Record | UnknownRecord, timestamp: str) -> None: ...

    def synced(self, seconds: float) -> None: ...

    def write_failed(self, error: str) -> None: ...


class AuditTrail:
    """Writes records to the log directory; all seven files exist from construction on.

    `listeners` hear of every record written, every fsync's duration and every write failure.
    """

    def __init__(self, log_dir: Path, clock: _Clock, *, durable: bool, key: bytes,
                 echo: TextIO | None = None, max_bytes: int = 0, backups: int = 5,
                 compress: bool = False, archive_dir: Path | None = None,
                 data_dir: Path | None = None, anchor_console: bool = True,
                 anchor_file: Path | None = None,
                 anchor_post: Callable[[bytes], None] | None = None) -> None:
        self.log_dir = Path(log_dir)
        if archive_dir is not None and Path(archive_dir).resolve() == self.log_dir.resolve():
            raise ValueError("BOT_LOG_ARCHIVE_DIR is the log directory: archive pruned segments "
                             "in another directory (or leave it unset to delete them)")
        self.durable = durable
        self._clock_now: Callable[[], datetime] = clock.now
        self._last_time = _last_time(self.log_dir)  # stamps never go back, across restarts too
        self._echo = echo
        self._anchor_console = anchor_console
        self._anchor_file = anchor_file
        self._anchor_post = anchor_post
        self.notices: list[tuple[str, str, dict]] = []
        prepare_directory(self.log_dir)
        refuse_links(self.log_dir)  # nothing is read or written through a planted link
        self.anchor, vouch_all = self._open_anchor(data_dir, key)

        def stream(name: str) -> Stream:
            return Stream(self.log_dir, name, key, durable=durable, stamp=self._stamp,
                          max_bytes=max_bytes, backups=backups, compress=compress,
                          archive_dir=None if archive_dir is None else Path(archive_dir),
                          anchor=self.anchor, vouch_all=vouch_all)
        self._files: dict[str, Stream] = {}
        try:
            for name in STREAMS:
                self._files[name] = stream(name)
            self._text = stream(PRODUCTION_LOG)
        except BaseException:
            for f in self._files.values():
                f.abandon()
            raise
        self._heads = self._signed_heads()
        self.counts = dict.fromkeys(STREAMS, 0)
        self.listeners: list[TrailListener] = []
        self._record_notices()

    def _open_anchor(self, data_dir: Path | None, key: bytes) -> tuple[Anchor | None, bool]:
        """The trail's anchor (made if need be) and whether the unsigned lines may be chained
        without evidence, once: only for a trail made before anchors existed."""
        if data_dir is None:
            return None, False
        paths = [self.log_dir / (n + CHAIN_SUFFIX) for n in (*STREAMS, PRODUCTION_LOG)]
        chains = [p for p in paths if p.is_file() and p.stat().st_size]
        trail_id = next((t for p in chains if (t := _trail_id_of(p)) is not None), None)
        if trail_id is not None:
            anchor = Anchor.find(data_dir, trail_id=trail_id)
            if anchor is not None:
                return anchor, False
            anchor = Anchor.create(data_dir, trail_id, key_id(key), self.log_dir)
            self.notices.append(("anchor_created", f"trail {trail_id} had no anchor in {data_dir} "
                                  "(a copy from another host?): one was made; lines not signed "
                                  "before now cannot be shown to be the bot's and are never signed",
                                  {"trail_id": trail_id, "legacy": False}))
            return anchor, False
        if self.durable:  # no trail record left: a signed trail of this directory lost them?
            known = Anchor.find(data_dir, log_dir=self.log_dir)
            if known is not None and known.heads():
                return known, False  # each stream records what is missing from its chain
        anchor = Anchor.create(data_dir, new_trail_id(), key_id(key), self.log_dir)
        legacy = bool(chains) or any((self.log_dir / n).is_file() and (self.log_dir / n).stat().st_size
                                     for n in (*STREAMS, PRODUCTION_LOG))
        if legacy:
            self.notices.append(("anchor_created", f"this trail predates anchors: trail "
                                  f"{anchor.trail_id} and its anchor in {data_dir} were made, and "
                                  "the lines not yet signed were signed this once without evidence",
                                  {"trail_id": anchor.trail_id, "legacy": True}))
        return anchor, legacy

    def _now(self) -> datetime:
        """The clock, or the last stamp written when the clock is behind it (stepped back)."""
        t = self._clock_now()
        if t < self._last_time:
            return self._last_time
        self._last_time = t
        return t

    def _stamp(self) -> str:
        return format_timestamp(self._now())

    def _record_notices(self) -> None:
        """Record what the streams noticed (repairs, rotations, truncations) in events.jsonl."""
        for _ in range(10):
            pending = [*self.notices,
                       *(n for f in (*self._files.values(), self._text) for n in f.notices)]
            if not pending:
                return
            self.notices = []
            for f in (*self._files.values(), self._text):
                f.notices = []
            for kind, message, details in pending:
                self.record(event_from_notice(kind, message, details), notices=False)

    def record(self, rec: Record | UnknownRecord, *, notices: bool = True) -> str:
        """Write one record, stamped with the clock; returns its timestamp."""
        ts = format_timestamp(self._now())
        stream = rec.stream
        f = self._files[stream]
        try:
            f.append(encode(rec, ts))
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

    def has(self, stream: str, **fields: object) -> bool:
        """True when a record among the newest of `stream` (crash recovery's window: the last
        4 MiB of the file and of its newest rotated segment) has all these field values, e.g.
        `has(TRADES, fill_id="f-1")` or `has(DECISIONS, model="m", cycle_timestamp=slot)`.
        Records are decoded and compared by field, whatever the order of the keys in the line."""
        if not fields:
            raise ValueError("has() needs at least one field to look for")
        for line in tail_lines(self.log_dir / stream, _needle(fields)):
            try:
                rec = decode(stream, line)
            except RecordError:
                continue  # a torn or damaged line holds nothing
            if all(getattr(rec, name, _MISSING) == value for name, value in fields.items()):
                return True
        return False

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
            self._send_anchor()

    def _signed_heads(self) -> dict[str, dict]:
        return {f.name: f.signed_head for f in (*self._files.values(), self._text)
                if f.signed_head is not None}

    def _send_anchor(self) -> None:
        """One anchor line per round that signed something; a sink that fails never stops
        trading (it is noted in production.log)."""
        if self.anchor is None:
            return
        heads = self._signed_heads()
        if heads == self._heads:
            return
        self._heads = heads
        line = format_anchor_line(self.anchor.trail_id, self._stamp(), heads)
        if self._anchor_console and self._echo is not None:
            self._echo.write(line + "\n")
            self._echo.flush()
        if self._anchor_file is not None:
            try:
                fd = os.open(self._anchor_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                             0o600)
                try:
                    os.write(fd, (line + "\n").encode())
                finally:
                    os.close(fd)
            except OSError as exc:
                self.log("WARN", f"cannot append the anchor line to BOT_ANCHOR_FILE "
                         f"{self._anchor_file}: {exc.strerror or exc}")
        if self._anchor_post is not None:
            try:
                self._anchor_post((line + "\n").encode())
            except Exception as exc:  # noqa: BLE001 - an anchor sink never stops trading
                self.log("WARN", f"cannot send the anchor line to BOT_ANCHOR_URL: {exc}")

    def flush(self) -> None:
        """Hand everything buffered to the files (no fsync)."""
        for f in self._files.values():
            f.flush()
        self._text.flush()

    def close(self) -> None:
        if self.durable:
            self.checkpoint()  # the last anchor line covers the trail as it stops
        for f in self._files.values():
            f.close()
        self._text.close()
        join = getattr(self._anchor_post, "join", None)
        if join is not None:
            join(_ANCHOR_POST_WAIT)

    def rotate(self) -> None:
        """Rotate every stream now (built-in rotation; used by tests and `max_bytes`)."""
        for f in (*self._files.values(), self._text):
            f.rotate("requested")
        self._record_notices()


_MISSING = object()


def _needle(fields: dict[str, object]) -> bytes:
    """Bytes every matching line holds: the first value of a kind the lines write as it is
    (a text, a number), else the date and time of a slot (common to both time forms)."""
    for name, value in fields.items():
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return b'"' + name.encode() + b'":' + orjson.dumps(value)
    for value in fields.values():
        if isinstance(value, datetime):
            return format_slot(value)[:19].encode()
    return b""


def _is_trail_id(value: object) -> bool:
    return (isinstance(value, str) and len(value) == 32
            and all(c in "0123456789abcdef" for c in value))


def _trail_id_of(chain: Path) -> str | None:
    """The trail id of a chain's first trail record (its first line, but for a chain made
    before anchors); read in blocks up to it (a line over MAX_LINE is skipped, never held)."""
    for chunk in iter_chunks(chain, size=1 << 16, on_long=None):
        for raw in chunk.splitlines():
            try:
                rec = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if isinstance(rec, dict) and rec.get("type") == "trail" and _is_trail_id(rec.get("trail_id")):
                return rec["trail_id"]
    return None


_TAIL = 1 << 16  # bytes read from the end of each file for its last time stamp
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _last_time(log_dir: Path) -> datetime:
    """The latest time stamp at the end of the trail's files (streams, production.log, chains;
    the newest rotated file when the active one has none yet): the trail never stamps earlier."""
    latest = _EPOCH
    for name in (*STREAMS, PRODUCTION_LOG):
        for base in (name, name + CHAIN_SUFFIX):
            for path in (log_dir / base, log_dir / f"{base}.1"):
                t = _tail_time(path)
                if t is not None:
                    latest = max(latest, t)
                    break
    return latest


def _tail_time(path: Path) -> datetime | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        size = os.fstat(fd).st_size
        tail = os.pread(fd, _TAIL, max(0, size - _TAIL))
    finally:
        os.close(fd)
    for line in reversed(tail.split(b"\n")):
        t = _time_of(line)
        if t is not None:
            return t
    return None


def _time_of(line: bytes) -> datetime | None:
    """The time stamp of a JSONL line (`timestamp`, or a chain record's `ts`) or of a
    production.log line (its first word); None when it has none."""
    text: object = None
    if line.startswith(b"{"):
        try:
            rec = orjson.loads(line)
        except orjson.JSONDecodeError:
            return None
        if isinstance(rec, dict):
            text = rec.get("timestamp", rec.get("ts"))
    elif line[:4].isdigit():
        text = line.split(b" ", 1)[0].decode("ascii", "replace")
    if not isinstance(text, str):
        return None
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return None
    return t.astimezone(timezone.utc) if t.tzinfo else None
