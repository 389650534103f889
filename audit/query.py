"""The query engine behind `tradebot logs`: the guide's jq recipes answered from the trail with
the same numbers, many times faster. Reading only.

Each query reads every file of one stream, oldest first (`name.N.gz` ... `name.1`, `name`), in
blocks of whole lines. A block is decoded at once by msgspec into small structs that hold only the
fields the query needs (the rest of each line is checked as JSON but never built into Python
objects), and columns are formatted in bulk (`audit.jqfmt`). A block where anything is unusual
(a line that is not a JSON object, a field of an unexpected type, an escape the bulk formatter
does not handle) is read again line by line by the exact path, which takes any JSON value the way
jq does and reports each bad line (file:line) to `on_bad`. Both paths give the same answer.
Big plain files are scanned by a pool of processes (one per core, at most 4), results in order.

jq's rules are kept: a missing field is null; values of different types compare in jq's order
(null < false < true < numbers < strings < arrays < objects), strings by code point; numbers are
doubles, added left to right. As for jq, a line holding several JSON values holds several records.
Kept on purpose from the guide's recipes: `--until` is exclusive. Changed on purpose: a win rate
with no closed trade is null (jq divides by zero), and a line that is not JSON is skipped with a
warning (jq stops there).
"""
from __future__ import annotations

import gzip
import json
import math
import multiprocessing
import os
import re
from array import array
from collections import Counter, deque
from dataclasses import dataclass
from datetime import date, datetime, timezone
from functools import cache, partial, reduce
from itertools import compress
from operator import add, attrgetter, eq, gt, le
from pathlib import Path
from types import GenericAlias
from typing import Any, Callable, Iterator, NamedTuple

import msgspec
import orjson
from msgspec import Raw

from audit.files import Line, iter_chunks, last_line, segments
from audit.jqfmt import RowError, jq_csv, jq_dumps, jq_key, jq_numbers, jq_tsv
from audit.records import ERRORS, ORDERS, PERFORMANCE, TRADES

CHUNK = 4 << 20  # bytes per block: measured best with 2 workers on 300-400 MB files
PARALLEL_MIN = 48 << 20  # bytes of plain files from which a pool pays for its start-up
MAX_JOBS = 4
FORMATS = ("csv", "tsv", "json")  # the row formats of `rows`: jq -r @csv, jq -r @tsv, jq -c

OnBad = Callable[[Line, str], None]
_NULL = Raw(b"null")
_SLOW = "slow"  # what a fast path returns when the block must be read line by line
FAST = True  # False reads every block the exact way (tests compare both ways)


# ---------------------------------------------------------------- filters and time bounds

def utc_bound(text: str) -> str:
    """A --since/--until value as the UTC text jq's string comparison needs: a date gives
    `YYYY-MM-DDT00:00:00`; a timestamp is taken as UTC unless it has an offset (`Z`, `+02:00`),
    and is then converted. Raises ValueError with a one-line fix."""
    t = text.strip()
    try:
        if len(t) == 10:
            return date.fromisoformat(t).isoformat() + "T00:00:00"
        dt = datetime.fromisoformat(t)
    except ValueError:
        raise ValueError(f"{text!r} is not a date or a timestamp: use YYYY-MM-DD or "
                         "YYYY-MM-DDTHH:MM[:SS[.ffffff]][+HH:MM] (UTC unless an offset is given)") from None
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc).replace(tzinfo=None)
    return dt.isoformat(timespec="microseconds" if dt.microsecond else "seconds")


@dataclass(frozen=True, slots=True)
class Filters:
    """What `--symbol`, `--model`, `--since` and `--until` keep, as jq's
    `select(.symbol == S and .model == M and .timestamp >= SINCE and .timestamp < UNTIL)`;
    `since`/`until` are texts from `utc_bound`."""

    symbol: str | None = None
    model: str | None = None
    since: str | None = None
    until: str | None = None

    @property
    def fields(self) -> tuple[str, ...]:
        """The record fields the filters read."""
        out = []
        if self.symbol is not None:
            out.append("symbol")
        if self.model is not None:
            out.append("model")
        if self.since is not None or self.until is not None:
            out.append("timestamp")
        return tuple(out)

    def keeps(self, get: Callable[[str], Any]) -> bool:
        """Whether a record passes, `get(field)` giving its values (any JSON value; None = null)."""
        if self.symbol is not None and get("symbol") != self.symbol:
            return False
        if self.model is not None and get("model") != self.model:
            return False
        if self.since is not None or self.until is not None:
            ts = get("timestamp")
            key = (4, ts) if isinstance(ts, str) else jq_key(ts)
            if self.since is not None and not key >= (4, self.since):
                return False
            if self.until is not None and not key < (4, self.until):
                return False
        return True

    def passes(self, rec: Any) -> bool:
        """Whether one decoded record passes (its filter fields typed `str | None`)."""
        if self.symbol is not None and rec.symbol != self.symbol:
            return False
        if self.model is not None and rec.model != self.model:
            return False
        if self.since is not None or self.until is not None:
            ts = rec.timestamp
            if ts is None:
                return self.since is None
            if self.since is not None and ts < self.since:
                return False
            if self.until is not None and not ts < self.until:
                return False
        return True

    def mask(self, recs: list, typed_time: bool = True) -> list[bool] | None:
        """Which decoded records pass (their filter fields typed `str | None`), or None when
        nothing is filtered. With typed_time=False the time bounds are left to the caller."""
        masks = []
        if self.symbol is not None:
            masks.append(list(map(partial(eq, self.symbol), map(attrgetter("symbol"), recs))))
        if self.model is not None:
            masks.append(list(map(partial(eq, self.model), map(attrgetter("model"), recs))))
        if typed_time and (self.since is not None or self.until is not None):
            masks.append(_time_mask(list(map(attrgetter("timestamp"), recs)), self.since, self.until))
        if not masks:
            return None
        return reduce(lambda a, b: list(map(min, a, b)), masks)


def _time_mask(ts: list, since: str | bytes | None, until: str | bytes | None) -> list[bool]:
    """`ts >= since and ts < until` for texts or None (null: below any text, as in jq); for
    quoted raw texts (bytes, no escapes) the caller passes quoted bounds."""
    if None in ts:
        return [(since is None or (t is not None and t >= since))
                and (until is None or t is None or t < until) for t in ts]
    m: list[bool] | None = None
    if since is not None:
        m = list(map(partial(le, since), ts))
    if until is not None:
        m2 = list(map(partial(gt, until), ts))
        m = m2 if m is None else list(map(min, m, m2))
    return m if m is not None else [True] * len(ts)  # no bounds: every record passes


# ---------------------------------------------------------------- decoding

@cache
def _struct(fields: tuple[tuple[str, str], ...]) -> type:
    """A struct of `fields`: (name, "str" | "float" | "raw"); a missing field is null."""
    kinds = {"str": (str | None, None), "float": (float | None, None), "raw": (Raw, _NULL)}
    return msgspec.defstruct("Rec", [(name, *kinds[kind]) for name, kind in fields], kw_only=True)


@cache
def _decoder(fields: tuple[tuple[str, str], ...]) -> msgspec.json.Decoder:
    """A decoder of records (`decode_lines` for a block) into the struct of `fields`."""
    return msgspec.json.Decoder(_struct(fields))


@cache
def _array_decoder(fields: tuple[tuple[str, str], ...]) -> msgspec.json.Decoder:
    """A decoder of a JSON array of records into structs of `fields`."""
    return msgspec.json.Decoder(GenericAlias(list, _struct(fields)))  # list[that struct]


def _raw_decoder(names: tuple[str, ...]) -> msgspec.json.Decoder:
    return _decoder(tuple((n, "raw") for n in names))


_FLOATS = msgspec.json.Decoder(list[float | None])
_ANY_LINES = msgspec.json.Decoder()


def value(raw: Raw | bytes) -> Any:
    """The Python value of a raw JSON value, as jq reads it: numbers beyond the doubles become
    +-inf, bytes that are not UTF-8 become U+FFFD."""
    try:
        return msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        return json.loads(bytes(raw).decode("utf-8", "replace"))


def _fast_fields(query_fields: dict[str, str], filters: Filters,
                 time_raw: bool = False) -> tuple[tuple[str, str], ...]:
    out = dict(query_fields)
    for f in filters.fields:
        if f == "timestamp" and time_raw:
            continue
        out.setdefault(f, "str")
    return tuple(out.items())


class _Item(NamedTuple):
    line_index: int  # line index in the block (0-based)
    line: bytes     # the whole line
    rec: Any        # its record as a struct of raw fields
    values_in_line: int  # how many JSON values the line holds
    nth: int        # which of them this is


def _exact(query: "_Query", data: bytes) -> tuple[Any, list[tuple[int, str]]]:
    """The exact path: one line at a time, any JSON values, each bad line reported."""
    dec = _raw_decoder(query.raw_fields())
    items: list[_Item] = []
    bad: list[tuple[int, str]] = []
    for i, line in enumerate(data.split(b"\n")):
        if not line.strip():
            continue
        try:
            got = dec.decode_lines(line)
        except msgspec.ValidationError:
            bad.append((i, "not a JSON object"))
            continue
        except (msgspec.DecodeError, RecursionError):
            bad.append((i, "not JSON"))
            continue
        for k, rec in enumerate(got):
            items.append(_Item(i, line, rec, len(got), k))
    result, more = query.exact(items)
    return result, sorted(bad + more)


def _work(query: "_Query", piece: "_Piece") -> tuple[Any, list[tuple[int, str]]]:
    """One block: the fast path, or the exact one when the fast one declines."""
    data = piece.read()
    if not FAST:
        return _exact(query, data)
    try:
        got = query.fast(data)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):  # incl. ValidationError
        got = _SLOW
    if got is _SLOW:
        return _exact(query, data)
    return got, []


def _get(rec: Any) -> Callable[[str], Any]:
    return lambda name: value(getattr(rec, name))


# ---------------------------------------------------------------- bulk columns

def _plain_strings(raws: list) -> list[bytes] | None:
    """The raw texts (quotes included) when every value is a string without any escape."""
    j = b"\n".join(raws)
    if (j.count(b"\n") != len(raws) - 1 or j.count(b'\n"') + (j[:1] == b'"') != len(raws)
            or b"\\" in j):
        return None
    return j.split(b"\n")


_BAD_ESC = {"json": re.compile(rb'\\[^"\\tnrbf]'), "csv": re.compile(rb'\\[^"\\tnr]')}
_BAD_ESC["tsv"] = _BAD_ESC["csv"]


def _str_column(raws: list, fmt: str) -> list[bytes] | None:
    """Raw JSON strings (or nulls) formatted as jq does in `fmt`, or None when some value needs
    the exact path (another type, an escape whose text jq would change: \\u, \\/ ...)."""
    n = len(raws)
    j = b"\n".join(raws)
    # `"\n"` cannot be inside a JSON value (no raw newline in a string; two strings need a comma
    # between them), so n-1 of them plus a quote at both ends means every value is a string
    if j[:1] == b'"' and j[-1:] == b'"' and j.count(b'"\n"') == n - 1:
        return _strings(j, fmt)
    if j.count(b"\n") != n - 1:  # a value spread over lines
        return None
    nulls = j.count(b"\nnull") + (j[:4] == b"null")  # a raw value starting so is `null`
    if j.count(b'\n"') + (j[:1] == b'"') + nulls != n:
        return None
    if fmt == "json":
        return _strings(j, fmt)
    filled = j.replace(b"\nnull", b'\n""')
    if filled[:4] == b"null":
        filled = b'""' + filled[4:]
    out = _strings(filled, fmt)
    if out is None:
        return None
    return [b"" if r == b"null" else o for r, o in zip(j.split(b"\n"), out)]


def _strings(j: bytes, fmt: str) -> list[bytes] | None:
    """Raw JSON strings joined by newlines, as jq prints them in `fmt` (None: exact path)."""
    if not j.isascii():
        try:
            j.decode()
        except UnicodeDecodeError:  # jq would print U+FFFD there
            return None
    esc = b"\\" in j
    # `\\` followed by a letter may be an escaped backslash then that letter: a false alarm
    # only sends the block the exact way
    if esc and _BAD_ESC[fmt].search(j) is not None:
        return None
    if fmt == "json":
        return None if b"\x7f" in j else j.split(b"\n")
    if fmt == "tsv":  # jq's @tsv escapes \\ \t \n \r as JSON does: only \" changes
        inner = j[1:-1].split(b'"\n"')
        if esc:
            inner = b"\n".join(inner).replace(b'\\"', b'"').split(b"\n")
        return inner
    if not esc:
        return j.split(b"\n")
    return [b'"' + c.replace(b"\\\\", b"\x00").replace(b'\\"', b'""').replace(b"\\t", b"\t")
            .replace(b"\\n", b"\n").replace(b"\\r", b"\r").replace(b"\x00", b"\\") + b'"'
            for c in j[1:-1].split(b'"\n"')]


def _text_column(vals: list, fmt: str) -> list[bytes] | None:
    """Decoded strings (or None) as jq's @csv or @tsv fields, in bulk; None when a value holds
    a NUL (the separator used here)."""
    filled = [v if v is not None else "" for v in vals] if None in vals else vals
    j = "\0".join(filled)
    if j.count("\0") != len(vals) - 1:
        return None
    if fmt == "tsv":
        for c, e in (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r")):
            if c in j:
                j = j.replace(c, e)
        return j.encode().split(b"\0")
    if '"' in j:
        j = j.replace('"', '""')
    out = (b'"' + j.encode().replace(b"\0", b'"\0"') + b'"').split(b"\0")
    if filled is not vals:  # null is an empty field, "" a quoted empty string
        out = [b"" if v is None else o for v, o in zip(vals, out)]
    return out


def _num_column(raws: list, fmt: str) -> list[bytes] | None:
    """Raw JSON numbers (or nulls) as jq prints them, or None for anything else."""
    try:
        nums = _FLOATS.decode(b"[" + b",".join(raws) + b"]")
    except msgspec.DecodeError:
        return None
    return _floats_column(nums, fmt)


def _floats_column(nums: list, fmt: str) -> list[bytes]:
    """Doubles (or None) as jq prints them (null is empty in @csv/@tsv)."""
    out = jq_numbers(nums)
    if fmt != "json" and None in nums:
        out = [b"" if x is None else t for x, t in zip(nums, out)]
    return out


def _column(raws: list, fmt: str) -> list[bytes] | None:
    if not raws:
        return []
    got = _str_column(raws, fmt)
    return got if got is not None else _num_column(raws, fmt)


# ---------------------------------------------------------------- the queries

def _plus_filter_fields(own: tuple[str, ...], filters) -> tuple[str, ...]:
    """The fields a query reads: its own, then those its filters need that it does not read."""
    return own + tuple(f for f in filters.fields if f not in own)


@dataclass(frozen=True, slots=True)
class _Query:
    stream: str
    filters: Filters

    def raw_fields(self) -> tuple[str, ...]:
        return self.filters.fields

    def fast(self, data: bytes) -> Any:
        return _SLOW

    def exact(self, items: list[_Item]) -> tuple[Any, list[tuple[int, str]]]:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class _Select(_Query):
    """The records the filters keep: their original lines (a line holding several values gives
    each kept value as `jq -c` prints it)."""

    def fast(self, data: bytes) -> Any:
        f = self.filters
        # the field whose text finds a kept record's line: one the filter fixes, else the time
        key = "symbol" if f.symbol is not None else "model" if f.model is not None else "timestamp"
        fields = _fast_fields({key: "str"}, f)
        recs = _decoder(fields).decode_lines(data)
        keep = f.mask(recs)
        if keep is None:  # every record: the block itself, once it is known to be all JSON
            if data.startswith(b"\n") or b"\n\n" in data:
                return _SLOW
            return data if data.endswith(b"\n") else data + b"\n"
        # Find each kept record's line by the text `"key":value`, in order, and check the lines:
        # each must hold one record, that passes. m distinct such lines for m kept records are
        # exactly the kept lines (each line holding a kept record is one of them), so the answer
        # is exact; anything else (an escaped value, the text in a nested object of a line that
        # does not pass, a line holding two records) sends the block the exact way.
        out = []
        wanted = []
        pos = 0
        find, rfind = data.find, data.rfind
        prefix = b'"' + key.encode() + b'":'
        needles: dict[str, bytes] = {}
        for rec in compress(recs, keep):
            v = getattr(rec, key)
            if v is None:
                return _SLOW
            needle = needles.get(v)
            if needle is None:
                needle = needles[v] = prefix + orjson.dumps(v)
            hit = find(needle, pos)
            if hit < 0:
                return _SLOW
            start = rfind(b"\n", 0, hit) + 1
            end = find(b"\n", hit)
            if end < 0:
                end = len(data)
            out.append(data[start:end])
            wanted.append(v)
            pos = end + 1
        if not out:
            return b""
        # the lines found, checked all at once: as the items of an array, each must be one value
        got = _array_decoder(fields).decode(b"[" + b",".join(out) + b"]")
        if len(got) != len(out) or list(map(attrgetter(key), got)) != wanted \
                or not all(map(f.passes, got)):
            return _SLOW
        return b"\n".join(out) + b"\n"

    def exact(self, items):
        out = []
        values: dict[int, list] = {}
        for it in items:
            if not self.filters.keeps(_get(it.rec)):
                continue
            if it.values_in_line == 1:
                out.append(it.line)
            else:
                vals = values.get(it.line_index)
                if vals is None:
                    vals = values[it.line_index] = _ANY_LINES.decode_lines(it.line)
                out.append(jq_dumps(vals[it.nth], None).encode())
        return (b"\n".join(out) + b"\n" if out else b""), []


@dataclass(frozen=True, slots=True)
class _Groups(_Query):
    """Counts by the value of `field`, as `group_by(.field) | map({field: .[0].field, count:
    length})`: {jq sort key: [first value, count]} in first-seen order."""

    field: str = "side"

    def raw_fields(self):
        return _plus_filter_fields((self.field,), self.filters)

    def fast(self, data):
        fields = _fast_fields({self.field: "str"}, self.filters)
        recs = _decoder(fields).decode_lines(data)
        vals: Iterator[Any] = map(attrgetter(self.field), recs)
        keep = self.filters.mask(recs)
        if keep is not None:
            vals = compress(vals, keep)
        return {jq_key(v): [v, n] for v, n in Counter(vals).items()}

    def exact(self, items):
        out: dict = {}
        for it in items:
            get = _get(it.rec)
            if not self.filters.keeps(get):
                continue
            v = get(self.field)
            k = jq_key(v)
            if k in out:
                out[k][1] += 1
            else:
                out[k] = [v, 1]
        return out, []


def _as_double(v: Any) -> float | None:
    """A JSON number as jq's double, or None for anything else (bools are not numbers)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    try:
        return float(v)
    except OverflowError:
        return math.inf if v > 0 else -math.inf


def _numbers(data: bytes, field: str, filters) -> list[float]:
    """The non-null numbers of `field` in the block's records that pass `filters`, in order."""
    recs = _decoder(_fast_fields({field: "float"}, filters)).decode_lines(data)
    vals: Iterator[Any] = map(attrgetter(field), recs)
    keep = filters.mask(recs)
    if keep is not None:
        vals = compress(vals, keep)
    return [v for v in vals if v is not None]


@dataclass(frozen=True, slots=True)
class _Values(_Query):
    """The numbers of `field` in order, nulls left out (what `map(.field) | add` adds)."""

    field: str = "value"

    def raw_fields(self):
        return _plus_filter_fields((self.field,), self.filters)

    def fast(self, data):
        return array("d", _numbers(data, self.field, self.filters))

    def exact(self, items):
        out = array("d")
        bad = []
        for it in items:
            get = _get(it.rec)
            if not self.filters.keeps(get):
                continue
            v = get(self.field)
            if v is None:
                continue
            x = _as_double(v)
            if x is None:
                bad.append((it.line_index, f"{self.field} is not a number ({jq_dumps(v, None)[:40]}): left out"))
                continue
            out.append(x)
        return out, bad


@dataclass(frozen=True, slots=True)
class _Signs(_Query):
    """(non-null, > 0, < 0) counts of `field` in jq's order of values (the win-rate recipe)."""

    field: str = "pnl"

    def raw_fields(self):
        return _plus_filter_fields((self.field,), self.filters)

    def fast(self, data):
        vals = _numbers(data, self.field, self.filters)
        return len(vals), sum(map((0.0).__lt__, vals)), sum(map((0.0).__gt__, vals))

    def exact(self, items):
        total = wins = losses = 0
        zero = jq_key(0)
        for it in items:
            get = _get(it.rec)
            if not self.filters.keeps(get):
                continue
            v = get(self.field)
            if v is None:
                continue
            total += 1
            k = jq_key(v)
            wins += k > zero
            losses += k < zero
        return (total, wins, losses), []


@dataclass(frozen=True, slots=True)
class _Rows(_Query):
    """`[.a, .b, ...]` of each kept record, one per line, in `fmt`: csv (`@csv`), tsv (`@tsv`)
    or json (`jq -c`). A row jq refuses (an object or array in @csv/@tsv) is reported, left out."""

    columns: tuple[str, ...] = ()
    fmt: str = "csv"
    numeric: tuple[str, ...] = ()  # columns expected to hold numbers (decoded as doubles at once)

    def raw_fields(self):
        return _plus_filter_fields(self.columns, self.filters)

    def fast(self, data):
        f = self.filters
        # @csv/@tsv take decoded strings (msgspec undoes the escapes in C); jq -c rows take the
        # raw texts, which jq prints unchanged when they hold no escape it would write otherwise
        text = "raw" if self.fmt == "json" else "str"
        time_raw = "timestamp" in self.columns and text == "raw"
        fields = _fast_fields({c: "float" if c in self.numeric else text for c in self.columns},
                              f, time_raw=time_raw)
        recs = _decoder(fields).decode_lines(data)
        if not recs:
            return b""
        keep = f.mask(recs, typed_time=not time_raw)
        cols = [list(map(attrgetter(c), recs)) for c in self.columns]
        if keep is not None:
            cols = [list(compress(c, keep)) for c in cols]
        if time_raw and (f.since is not None or f.until is not None) and cols[0]:
            ts = _plain_strings(cols[self.columns.index("timestamp")])
            if ts is None:
                return _SLOW
            m = _time_mask(ts, None if f.since is None else b'"' + f.since.encode(),
                           None if f.until is None else b'"' + f.until.encode())
            cols = [list(compress(c, m)) for c in cols]
        if not cols[0]:
            return b""
        texts = []
        for name, c in zip(self.columns, cols):
            t = (_floats_column(c, self.fmt) if name in self.numeric
                 else _column(c, self.fmt) if text == "raw" else _text_column(c, self.fmt))
            if t is None:
                return _SLOW
            texts.append(t)
        if self.fmt == "json":
            rows = map(b",".join, zip(*texts))
            return b"[" + b"]\n[".join(rows) + b"]\n"
        sep = b"," if self.fmt == "csv" else b"\t"
        return b"\n".join(map(sep.join, zip(*texts))) + b"\n"

    def exact(self, items):
        fmt = {"csv": jq_csv, "tsv": jq_tsv, "json": lambda row: jq_dumps(row, None)}[self.fmt]
        out = []
        bad = []
        for it in items:
            get = _get(it.rec)
            if not self.filters.keeps(get):
                continue
            try:
                out.append(fmt([get(c) for c in self.columns]).encode())
            except RowError as exc:
                bad.append((it.line_index, str(exc)))
        return (b"\n".join(out) + b"\n" if out else b""), bad


# ---------------------------------------------------------------- reading blocks, maybe in parallel

@dataclass(frozen=True, slots=True)
class _Piece:
    """A block of whole lines of one file: bytes [start, end) of a plain file, or `data` (the
    decompressed bytes of a .gz segment from `start`)."""

    path: str
    start: int
    end: int
    data: bytes | None = None

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        fd = os.open(self.path, os.O_RDONLY)
        try:
            return os.pread(fd, self.end - self.start, self.start)
        finally:
            os.close(fd)

    def light(self) -> "_Piece":
        return self if self.data is None else _Piece(self.path, self.start, self.end)


def _pieces(paths: list[Path], size: int) -> Iterator[_Piece]:
    for path in paths:
        if path.name.endswith(".gz"):
            yield from _gz_pieces(path, size)
            continue
        with open(path, "rb") as f:
            total = os.fstat(f.fileno()).st_size
            start = 0
            while start < total:
                if start + size >= total:
                    end = total
                else:
                    f.seek(start + size)
                    f.readline()
                    end = min(f.tell(), total)
                yield _Piece(str(path), start, end)
                start = end


def _gz_pieces(path: Path, size: int) -> Iterator[_Piece]:
    pos = 0
    for block in iter_chunks(path, size):
        yield _Piece(str(path), pos, pos + len(block), block)
        pos += len(block)


def _jobs(paths: list[Path], jobs: int | None) -> int:
    if jobs is not None:
        return max(1, jobs)
    plain = sum(p.stat().st_size for p in paths if not p.name.endswith(".gz"))
    if plain < PARALLEL_MIN or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover  (not Linux)
        cpus = os.cpu_count() or 1
    return min(cpus, MAX_JOBS)


def _run(query: _Query, pieces: Iterator[_Piece], jobs: int) -> Iterator[tuple[_Piece, Any, list]]:
    """Each block's (piece, result, bad lines), in order; at most 2 blocks per worker in flight,
    so memory stays flat whatever the reader of our output does."""
    if jobs <= 1:
        for p in pieces:
            yield (p.light(), *_work(query, p))
        return
    pool = multiprocessing.get_context("fork").Pool(jobs)
    try:
        pending: deque = deque()
        for p in pieces:
            pending.append((p.light(), pool.apply_async(_work, (query, p))))
            if len(pending) > 2 * jobs:
                q, fut = pending.popleft()
                yield (q, *fut.get())
        while pending:
            q, fut = pending.popleft()
            yield (q, *fut.get())
    finally:
        pool.terminate()
        pool.join()


class _LineCounter:
    """Line numbers for reports: newlines before a block, counted only when a block has one."""

    def __init__(self) -> None:
        self._at: dict[str, tuple[int, int]] = {}  # path -> (offset, newlines before it)

    def before(self, piece: _Piece) -> int:
        pos, n = self._at.get(piece.path, (0, 0))
        if piece.start < pos:
            pos, n = 0, 0
        opener = gzip.open if piece.path.endswith(".gz") else open
        with opener(piece.path, "rb") as f:
            f.seek(pos)
            left = piece.start - pos
            while left > 0:
                block = f.read(min(left, CHUNK))
                if not block:
                    break
                n += block.count(b"\n")
                left -= len(block)
        self._at[piece.path] = (piece.start, n)
        return n


def _scan(log_dir: Path, query: _Query, on_bad: OnBad | None, jobs: int | None,
          chunk: int) -> Iterator[Any]:
    paths = segments(Path(log_dir), query.stream)
    counter = _LineCounter()
    for piece, result, bad in _run(query, _pieces(paths, chunk), _jobs(paths, jobs)):
        if bad and on_bad is not None:
            base = counter.before(piece)
            name = Path(piece.path).name
            for i, why in bad:
                on_bad(Line(name, base + i + 1), why)
        yield result


# ---------------------------------------------------------------- public queries

def select(log_dir: Path, stream: str = ORDERS, filters: Filters = Filters(), *,
           on_bad: OnBad | None = None, jobs: int | None = None, chunk: int = CHUNK) -> Iterator[bytes]:
    """The records of `stream` that the filters keep, as blocks of their original lines (each
    ending with a newline): `jq -c 'select(...)'` with the input's own bytes."""
    for block in _scan(log_dir, _Select(stream, filters), on_bad, jobs, chunk):
        if block:
            yield block


def count_by(log_dir: Path, field: str = "side", stream: str = ORDERS, filters: Filters = Filters(),
             *, on_bad: OnBad | None = None, jobs: int | None = None,
             chunk: int = CHUNK) -> list[tuple[Any, int]]:
    """[(value, count)] in jq's order of values: `group_by(.field) | map({field: .[0].field,
    count: length})` (the value shown is the group's first, as jq's)."""
    total: dict = {}
    for part in _scan(log_dir, _Groups(stream, filters, field), on_bad, jobs, chunk):
        for k, (v, n) in part.items():
            if k in total:
                total[k][1] += n
            else:
                total[k] = [v, n]
    return [(v, n) for _k, (v, n) in sorted(total.items(), key=lambda kv: kv[0])]


def total(log_dir: Path, field: str = "value", stream: str = TRADES, filters: Filters = Filters(),
          *, on_bad: OnBad | None = None, jobs: int | None = None, chunk: int = CHUNK) -> float | None:
    """`map(.field) | add`: the numbers added left to right in doubles, None when there are none.
    A value that is not a number is reported and left out (jq would stop with an error)."""
    acc: float | None = None
    for part in _scan(log_dir, _Values(stream, filters, field), on_bad, jobs, chunk):
        if not part:
            continue
        if acc is None:
            acc = reduce(add, part)
        else:
            acc = reduce(add, part, acc)
    return acc


@dataclass(frozen=True, slots=True)
class WinRate:
    """The guide's win-rate recipe: fills with a `pnl`, those above and below 0, and
    wins / total * 100 (None when total is 0, where jq would divide by zero)."""

    total: int
    wins: int
    losses: int

    @property
    def win_rate(self) -> float | None:
        return self.wins / self.total * 100 if self.total else None

    def as_jq(self) -> dict[str, Any]:
        return {"total": self.total, "wins": self.wins, "losses": self.losses,
                "win_rate": self.win_rate}


def win_rate(log_dir: Path, filters: Filters = Filters(), *, field: str = "pnl",
             on_bad: OnBad | None = None, jobs: int | None = None, chunk: int = CHUNK) -> WinRate:
    t = w = lo = 0
    for a, b, c in _scan(log_dir, _Signs(TRADES, filters, field), on_bad, jobs, chunk):
        t, w, lo = t + a, w + b, lo + c
    return WinRate(t, w, lo)


def rows(log_dir: Path, stream: str, columns: tuple[str, ...], fmt: str = "csv",
         filters: Filters = Filters(), *, numeric: tuple[str, ...] = (), on_bad: OnBad | None = None,
         jobs: int | None = None, chunk: int = CHUNK) -> Iterator[bytes]:
    """Blocks of `jq -r '[.a, .b] | @csv'` (fmt csv), `@tsv` (tsv) or `jq -c '[.a, .b]'` (json)
    output for the kept records, byte for byte. `numeric` names columns that should hold numbers:
    they are decoded straight to doubles (a block where one does not goes the exact way)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown row format {fmt!r}: use one of {', '.join(FORMATS)}")
    for block in _scan(log_dir, _Rows(stream, filters, tuple(columns), fmt, tuple(numeric)), on_bad, jobs, chunk):
        if block:
            yield block


NAV_COLUMNS = ("timestamp", "nav")
ERROR_COLUMNS = ("timestamp", "event_type", "error")


def nav_rows(log_dir: Path, fmt: str = "csv", filters: Filters = Filters(), **kw) -> Iterator[bytes]:
    """The guide's NAV recipe: `jq -r '[.timestamp, .nav] | @csv'` on performance.jsonl."""
    return rows(log_dir, PERFORMANCE, NAV_COLUMNS, fmt, filters, numeric=("nav",), **kw)


def error_rows(log_dir: Path, fmt: str = "tsv", filters: Filters = Filters(), **kw) -> Iterator[bytes]:
    """The guide's errors recipe: `jq -r '[.timestamp, .event_type, .error] | @tsv'`."""
    return rows(log_dir, ERRORS, ERROR_COLUMNS, fmt, filters, **kw)


@dataclass(frozen=True, slots=True)
class Latest:
    """The newest record of a stream: the file it is in, its line, and the record."""

    file: str
    line: bytes
    record: dict


def latest(log_dir: Path, stream: str = PERFORMANCE, *, on_bad: OnBad | None = None) -> Latest | None:
    """The last record of `stream` (`tail -1 FILE | jq .`), read from the end of the newest file
    (audit.files.last_line), so it costs the same on any size. A last line that is not a JSON
    object is reported and the line before it is taken."""
    log_dir = Path(log_dir)
    found = last_line(log_dir, stream)
    if found is None:
        return None
    name, line = found
    rec = parse_record(line)
    if rec is not None:
        return Latest(name, line, rec)
    for path in reversed(segments(log_dir, stream)):
        n = _count_lines(path)
        for line in _lines_backwards(path):
            if line.strip():
                rec = parse_record(line)
                if rec is not None:
                    return Latest(path.name, line, rec)
                if on_bad is not None:
                    on_bad(Line(path.name, n), "not a JSON object")
            n -= 1
    return None


def parse_record(line: bytes) -> dict | None:
    """A line's JSON object, as jq reads it (huge numbers, bytes that are not UTF-8), or None."""
    try:
        rec = orjson.loads(line)
    except orjson.JSONDecodeError:
        try:
            rec = json.loads(line.decode("utf-8", "replace"))
        except (ValueError, RecursionError):
            return None
    return rec if isinstance(rec, dict) else None


def _count_lines(path: Path) -> int:
    """How many lines a file has (an unterminated last line counts)."""
    n = 0
    last = b"\n"
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as f:
        while block := f.read(CHUNK):
            n += block.count(b"\n")
            last = block[-1:]
    return n + (last != b"\n")


def _lines_backwards(path: Path, step: int = 1 << 16) -> Iterator[bytes]:
    """The lines of a file, last first (a .gz segment is read whole: segments are small)."""
    if path.name.endswith(".gz"):
        with gzip.open(path, "rb") as f:
            lines = f.read().split(b"\n")
        if lines[-1] == b"":
            lines.pop()
        yield from reversed(lines)
        return
    with open(path, "rb") as f:
        pos = f.seek(0, 2)
        rest = b""
        first = True
        while pos > 0:
            n = min(step, pos)
            pos -= n
            f.seek(pos)
            parts = (f.read(n) + rest).split(b"\n")
            rest = parts.pop(0)
            if first:
                first = False
                if parts and parts[-1] == b"":
                    parts.pop()
            yield from reversed(parts)
        if not first:
            yield rest
