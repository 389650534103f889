"""Read a stream of the trail across all its files, oldest first: `name.N[.gz]` from the highest
N down to `name.1`, then the active file. Reading only: nothing here writes or repairs.

`iter_lines` yields every line with its file and line number (for messages that point at it);
`iter_chunks` yields big blocks of whole lines for scans that skip lines before parsing them;
`iter_records` parses each line with orjson and reports an unreadable one instead of stopping.
"""
from __future__ import annotations

import gzip
import re
import sys
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import orjson

from audit.records import Record, RecordError, UnknownRecord, from_fields

_ROTATED = re.compile(r"^\.(\d+)(\.gz)?$")
CHUNK = 8 << 20
MAX_LINE = 8 << 20  # no record is near it; a longer line is skipped with a file:line warning


@dataclass(frozen=True, slots=True)
class Line:
    """Where a record came from: `file` (its name, e.g. `trades.jsonl.2.gz`) and 1-based `line`."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


def segments(log_dir: Path, name: str) -> list[Path]:
    """The files of stream `name`, oldest first (missing ones are simply absent)."""
    rotated = []
    for p in log_dir.glob(name + ".*"):
        m = _ROTATED.match(p.name[len(name):])
        if m and p.is_file():
            rotated.append((int(m.group(1)), p))
    files = [p for _n, p in sorted(rotated, reverse=True)]
    active = log_dir / name
    if active.is_file():
        files.append(active)
    return files


def _open(path: Path):
    return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")


def warn_long(where: Line) -> None:
    sys.stderr.write(f"warning: {where}: a line over {MAX_LINE >> 20} MiB skipped (not read into "
                     "memory): no record of the bot is that long; inspect the file\n")


def iter_chunks(path: Path, size: int = CHUNK,
                on_long: Callable[[Line], None] | None = warn_long) -> Iterator[bytes]:
    """Blocks of whole lines (each ends with b"\n", except an unterminated last line).

    A line longer than MAX_LINE is never held in memory: it is passed to `on_long(where)` and
    stands as an empty line in the blocks, so line numbers stay right. Memory stays within a
    block and MAX_LINE, whatever the file holds (a 50 MB line, a 2 GB file of zeros)."""
    size = min(size, MAX_LINE)  # a line wholly inside one read is then never over MAX_LINE
    with _open(path) as f:
        rest = b""
        n = 0  # lines yielded so far
        skipping = False  # inside a line over MAX_LINE: drop bytes up to its newline
        while True:
            block = f.read(size)
            if not block:
                break
            if skipping:
                cut = block.find(b"\n")
                if cut < 0:
                    continue
                skipping = False
                n += 1
                yield b"\n"
                block = block[cut + 1:]
            block = rest + block
            first = block.find(b"\n")
            if (first < 0 and len(block) > MAX_LINE) or first > MAX_LINE:
                if on_long is not None:
                    on_long(Line(path.name, n + 1))
                if first < 0:
                    rest, skipping = b"", True
                    continue
                n += 1
                yield b"\n"
                block = block[first + 1:]
            cut = block.rfind(b"\n") + 1
            if cut == 0:
                rest = block
                continue
            rest = block[cut:]
            out = block[:cut]
            n += out.count(b"\n")
            yield out
        if rest:
            yield rest


_CYCLE_SLOT = re.compile(rb'"cycle_timestamp":"([^"]+)"')  # as `audit.records.encode` writes it


def cycle_slots_in(block: bytes) -> Iterator[str]:
    """The `cycle_timestamp` texts of a block of lines, found without parsing them: a cheap
    scan for the cycles nearest to one that is not there (`tradebot replay --cycle`)."""
    for m in _CYCLE_SLOT.finditer(block):
        yield m.group(1).decode("ascii", "replace")


def iter_lines(log_dir: Path, name: str) -> Iterator[tuple[Line, bytes]]:
    """Every non-blank line of the stream (without its newline), oldest first."""
    for path in segments(log_dir, name):
        yield from iter_lines_of(path)


def iter_records(log_dir: Path, name: str,
                 on_bad: Callable[[Line, str], None] | None = None) -> Iterator[tuple[Line, dict]]:
    """Every record of the stream, oldest first. A line that is not a JSON object, or a record
    a reader cannot use (a declared field missing or of the wrong type, see
    `audit.check.reader_problems`), is passed to `on_bad(where, why)` and skipped; without
    `on_bad` it is a `warning: FILE:LINE: why` on stderr."""
    from audit.check import reader_problems
    loads = orjson.loads
    bad = on_bad if on_bad is not None else _warn_bad
    for where, raw in iter_lines(log_dir, name):
        try:
            rec = loads(raw)
        except orjson.JSONDecodeError as exc:
            if on_bad is not None:
                on_bad(where, f"not JSON ({exc})")
            continue
        if not isinstance(rec, dict):
            if on_bad is not None:
                on_bad(where, "not a JSON object")
            continue
        problems = reader_problems(name, rec)
        if problems:
            bad(where, "; ".join(problems) + ": the record is skipped")
            continue
        yield where, rec


def iter_typed(log_dir: Path, name: str, on_bad: Callable[[Line, str], None] | None = None,
               ) -> Iterator[tuple[Line, Record | UnknownRecord]]:
    """Every record of the stream as its type (`audit.records`), oldest first, with where it
    is. What `iter_records` skips is skipped here too, the same way; a kind this version does
    not know is an `UnknownRecord` (a warning, once per kind)."""
    bad = on_bad if on_bad is not None else _warn_bad
    for where, fields in iter_records(log_dir, name, on_bad):
        try:
            yield where, from_fields(name, fields)
        except (RecordError, TypeError) as exc:
            bad(where, f"{exc}: the record is skipped")


def cycle_of(record: Record | UnknownRecord) -> datetime | None:
    """The slot of the cycle a record belongs to (its `cycle_timestamp`), None for one that
    names none; a record of a kind this version lacks is asked its line's `cycle_timestamp`."""
    if isinstance(record, UnknownRecord):
        text = record.fields.get("cycle_timestamp")
        try:
            slot = datetime.fromisoformat(text) if isinstance(text, str) else None
        except ValueError:
            return None
        if slot is None or slot.tzinfo is None:
            return None
        return slot.astimezone(timezone.utc)
    slot = getattr(record, "cycle_timestamp", None)
    return slot if isinstance(slot, datetime) else None


def _warn_bad(where: Line, why: str) -> None:
    sys.stderr.write(f"warning: {where}: {why}\n")


def last_line(log_dir: Path, name: str) -> tuple[str, bytes] | None:
    """(file name, newest line) of the stream, read from the end of the newest non-empty file:
    it costs the same on a file of a million lines as on one of ten."""
    for path in reversed(segments(log_dir, name)):
        if path.name.endswith(".gz"):
            newest = deque(iter_lines_of(path), maxlen=1)  # read to the end, keep the last
            if newest:
                return path.name, newest[0][1]
            continue
        with open(path, "rb") as f:
            pos = f.seek(0, 2)
            tail = b""
            while pos > 0:
                step = min(65536, pos)
                pos -= step
                f.seek(pos)
                tail = f.read(step) + tail
                if tail.strip() and tail.rstrip().rfind(b"\n") >= 0:
                    break
            line = tail.rstrip().rsplit(b"\n", 1)[-1]
            if line.strip():
                return path.name, line
    return None


def iter_lines_of(path: Path) -> Iterator[tuple[Line, bytes]]:
    """Every non-blank line of one file, with its line number."""
    n = 0
    for chunk in iter_chunks(path):
        for raw in chunk.splitlines():
            n += 1
            if raw.strip():
                yield Line(path.name, n), raw
