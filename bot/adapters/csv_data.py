"""Daily closes from user CSV files `DIR/SYMBOL.csv` (header `Date,Open,High,Low,Close,Volume`).

Only the Date (YYYY-MM-DD) and Close columns are read; the header match is case-insensitive and
other columns (Open, High, Low, Volume, Adj Close...) are ignored and not checked. Each file is
read once, on first use, and kept: edits made later need a new `CsvMarketData`.

Bad data never crashes and is never traded on silently. A row is dropped, and remembered, when
its date does not parse or is not an NYSE trading day, its close is not a positive finite
number, or its date is not after the previous row's (duplicates, unsorted rows). An NYSE
trading day between the file's first and last dates without a usable row is a gap. Any
`history` window or `price` lookup that touches a dropped row's date or a gap names the symbol
in `History.problems` (or raises `DataError`) with the file, line or date, and the fix; so does
a window reaching past either end of the file (a stale file is never read as current).

A close that moves more than `max_close_move` (BOT_MAX_CLOSE_MOVE, default 0.5 = 50%) from the
last accepted close of the file is refused: `price` raises a `data_error` naming the line, and in
`history` windows its session holds the last accepted close (the bad value never reaches a model).
Later closes are measured against the last accepted one, so trading resumes on the first close
within the limit of it (or once the setting is raised to accept the move).

Only a regular file (or a link to one) of at most MAX_CSV_BYTES is read: a FIFO, a device or a
bigger file is refused with one line naming it, never waited on or read whole.

Attribution is conservative: a duplicate date makes that session unusable (which row is right
is unknown), a row on a non-trading day counts against the next session, and a row with an
unreadable date against the session after the previous good row.
"""
from __future__ import annotations

import csv
import io
import math
import os
import re
import stat
from array import array
from dataclasses import dataclass
from datetime import date, datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Sequence

from bot.core.calendar import NY, is_trading_day, session, session_date, session_index
from bot.core.errors import DataError
from models.base import History

SYMBOL_RE = re.compile(r"[A-Z][A-Z.]{0,9}")
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_NAN = float("nan")
MAX_CSV_BYTES = 64 << 20  # 64 MiB: a daily file of a century is under 5 MiB
DEFAULT_MAX_CLOSE_MOVE = 0.5


@dataclass(frozen=True, slots=True)
class _Series:
    """One file's closes, indexed by NYSE session: closes[i] is session `start + i`.

    Sessions without a usable row hold NaN and have a line in `reasons`; `bad_prefix[i]` counts
    the unusable sessions in closes[:i], so a window is checked in O(1).
    """

    name: str
    start: int
    closes: array
    bad_prefix: tuple[int, ...]
    reasons: Mapping[int, str]
    rejected: Mapping[int, str]  # index -> why its close is refused

    @property
    def end(self) -> int:
        return self.start + len(self.closes)


def _parse_date(raw: str) -> date | None:
    if not _DATE_RE.fullmatch(raw):
        return None
    try:
        d = date.fromisoformat(raw)
    except ValueError:
        return None
    return d if 1990 <= d.year <= 2100 else None


def _move(close: float, before: float) -> str:
    """How far `close` is from `before`, readably at any size ('+62% from', '100x')."""
    ratio = close / before
    return f"{ratio - 1:+.0%} from" if 0.1 <= ratio <= 10 else f"{ratio:.3g} times"


def _day(index: int) -> str:
    """The date of session `index` for a message, even outside the calendar."""
    try:
        return str(session_date(index))
    except ValueError:
        return "a session before 1990" if index < 0 else "a session after 2100"


def _read_regular(path: Path) -> bytes | str:
    """The bytes of a regular file of at most MAX_CSV_BYTES, or a one-line reason. Opened
    without blocking, so a FIFO is refused instead of waited on."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return (f"{path} is not a regular file (a FIFO, device or directory): "
                    "give a SYMBOL.csv file")
        limit = MAX_CSV_BYTES >> 20
        if st.st_size > MAX_CSV_BYTES:
            return f"{path} is over {limit} MiB: a file of daily bars is far smaller; fix the file"
        data = f.read(MAX_CSV_BYTES + 1)
        if len(data) > MAX_CSV_BYTES:
            return f"{path} is over {limit} MiB: a file of daily bars is far smaller; fix the file"
        return data


def _load(path: Path, max_move: float = DEFAULT_MAX_CLOSE_MOVE) -> _Series | str:
    """Parse one file into a session-indexed series, or a one-line reason it cannot be used."""
    name = path.name
    try:
        data = _read_regular(path)
        if isinstance(data, str):
            return data
        text = data.decode("utf-8-sig")
        return _parse(name, csv.reader(io.StringIO(text, newline="")), max_move)
    except FileNotFoundError:
        return f"no file {name} in {path.parent}: add it or remove the symbol"
    except UnicodeDecodeError:
        return f"{path} is not UTF-8 text: save it as UTF-8 CSV"
    except csv.Error as e:
        return f"{path} is not valid CSV ({e}): fix the file"
    except OSError as e:
        return f"cannot read {path} ({e.strerror}): check the file and its permissions"


def _parse(name: str, rows: Any, max_move: float = DEFAULT_MAX_CLOSE_MOVE) -> _Series | str:
    """`rows` is a csv.reader (its `line_num` gives each row's line for the messages)."""
    header = next(rows, None)
    cols: dict[str, int] = {}
    for i, col in enumerate(header or ()):
        cols.setdefault(col.strip().lower(), i)
    if "date" not in cols or "close" not in cols:
        return (
            f"{name} line 1: header {','.join(header or ())!r} lacks Date or Close: "
            "start the file with Date,Open,High,Low,Close,Volume"
        )
    di, ci = cols["date"], cols["close"]
    good: list[tuple[int, float, int]] = []  # (session index, close, line)
    marks: dict[int, str] = {}  # session index -> why it is unusable (first reason wins)
    pending: list[str] = []  # rows with an unreadable date before the first good row
    seen: dict[date, int] = {}  # date -> line of its accepted row
    last: tuple[date, int] | None = None  # (date, line) of the last accepted row
    rejected: dict[int, str] = {}  # session index -> why its close is refused (the price guard)

    for row in rows:
        if not "".join(row).strip():  # blank line
            continue
        line = rows.line_num
        raw_date = row[di].strip() if di < len(row) else ""
        d = _parse_date(raw_date)
        if d is None:
            reason = (
                f"{name} line {line}: date {raw_date!r} is not a YYYY-MM-DD date in 1990-2100: "
                "fix or delete the row"
            )
            if good:  # it may be the row of the next session: that session is suspect
                marks.setdefault(good[-1][0] + 1, reason)
            else:
                pending.append(reason)
            continue
        idx = session_index(d)
        if not is_trading_day(d):
            why = "not an NYSE trading day: delete the row"
            marks.setdefault(idx, f"{name} line {line} ({d}): {why}")
            continue
        if last is not None and d <= last[0]:
            if d in seen:
                why = f"duplicate date (also line {seen[d]}): keep one row per date"
            else:
                why = f"date is not after line {last[1]} ({last[0]}): sort the rows by date"
            marks.setdefault(idx, f"{name} line {line} ({d}): {why}")
            continue
        raw_close = row[ci].strip() if ci < len(row) else ""
        try:
            close = float(raw_close)
        except ValueError:
            close = _NAN
        if not (math.isfinite(close) and close > 0):
            marks.setdefault(
                idx,
                f"{name} line {line} ({d}): close {raw_close!r} is not a positive number: "
                "fix or delete the row",
            )
            seen[d] = line
            last = (d, line)
            continue
        if pending:
            marks.setdefault(idx, pending[0])
            pending.clear()
        if good and abs(close / good[-1][1] - 1) > max_move:
            before = good[-1][1]
            rejected[idx] = (
                f"{name} line {line} ({d}): close {raw_close} is {_move(close, before)} the last "
                f"accepted close {before:g}, beyond BOT_MAX_CLOSE_MOVE={max_move:g}: fix the row, "
                "or raise BOT_MAX_CLOSE_MOVE if the move is real"
            )
            close = before  # models see the last accepted close, never the refused one
        good.append((idx, close, line))
        seen[d] = line
        last = (d, line)

    if not good:
        first = pending[0] if pending else (min(marks.items())[1] if marks else "")
        return f"{name} has no usable rows" + (f"; first problem: {first}" if first else "")
    start = min(good[0][0], min(marks, default=good[0][0]))
    stop = max(good[-1][0], max(marks, default=good[-1][0])) + 1
    closes = [_NAN] * (stop - start)
    reasons = {idx - start: why for idx, why in marks.items() if start <= idx < stop}
    prev: tuple[int, float, int] | None = None
    for idx, close, line in good:
        closes[idx - start] = close
        if prev is not None:
            for g in range(prev[0] + 1, idx):
                reasons.setdefault(
                    g - start,
                    f"{name} has no row for NYSE trading day {_day(g)} "
                    f"(between lines {prev[2]} and {line}): add it",
                )
        prev = (idx, close, line)
    for i, c in enumerate(closes):
        if c != c and i not in reasons:  # NaN: an edge session with no row at all
            reasons[i] = f"{name} has no row for NYSE trading day {_day(start + i)}: add it"
    bad_prefix = [0]
    for i in range(len(closes)):
        bad_prefix.append(bad_prefix[-1] + (i in reasons))
    return _Series(name, start, array("d", closes), tuple(bad_prefix), reasons,
                   {idx - start: why for idx, why in rejected.items()})


@lru_cache(maxsize=4096)
def _applicable_session(minute: int) -> int:
    """Session index whose close is the price during the UTC minute `minute` (since the epoch):
    that day's once its session has opened, else the previous session's."""
    at = datetime.fromtimestamp(minute * 60, timezone.utc)
    d = at.astimezone(NY).date()
    s = session(d)
    idx = session_index(d)
    return idx if s is not None and at >= s[0] else idx - 1


class CsvMarketData:
    """`MarketData` from `DIR/SYMBOL.csv` daily bars; see the module docstring.

    `price` has daily bars only: from a session's open on, it returns that day's Close, so a
    15:45 cycle sees the 16:00 close 15 minutes early (look-ahead that flatters backtests);
    before the open, and on non-trading days, it returns the previous session's Close.
    """

    def __init__(self, directory: Path | str,
                 max_close_move: float = DEFAULT_MAX_CLOSE_MOVE) -> None:
        self.directory = Path(directory)
        self.max_close_move = max_close_move
        self._files: dict[str, _Series | str] = {}
        self._before: dict[date, tuple[int, date | None]] = {}
        self._last_price: dict[str, tuple[int, float]] = {}

    def _series(self, symbol: str) -> _Series | str:
        s = self._files.get(symbol)
        if s is None:
            if SYMBOL_RE.fullmatch(symbol):
                s = _load(self.directory / f"{symbol}.csv", self.max_close_move)
            else:
                s = f"invalid symbol {symbol!r}: expected 1-10 of A-Z and '.' (the file name)"
            self._files[symbol] = s
        return s

    def unusable(self, symbol: str) -> str | None:
        """Why `symbol` has no usable file (one line), or None when its file has closes."""
        s = self._files.get(symbol) or self._series(symbol)
        return s if isinstance(s, str) else None

    def history(self, symbols: Sequence[str], before: date,
                bars: int | Mapping[str, int]) -> History:
        """The last `bars` closes of each symbol from the NYSE sessions strictly before `before`.

        Every symbol's window is the same `bars` sessions. A file that starts after the window
        starts is simply absent (not listed yet); a missing file, one that ends before the
        window does, or a gap or dropped row in the window leaves the symbol out of `closes` and
        names it in `problems`. Raises ValueError for bars < 1 or dates outside 1990-2100.
        """
        every, per_symbol = (bars, None) if isinstance(bars, int) else (0, bars)
        if (every if per_symbol is None else min(per_symbol.values(), default=1)) < 1:
            raise ValueError(f"bars must be >= 1, got {bars}")
        info = self._before.get(before)
        if info is None:
            n = session_index(before)
            info = self._before[before] = (n, session_date(n - 1) if n > 0 else None)
        n, last = info
        closes: dict[str, Sequence[float]] = {}
        problems: dict[str, str] = {}
        for sym in symbols:
            want = every if per_symbol is None else per_symbol[sym]
            lo = n - want
            s = self._files.get(sym) or self._series(sym)
            if isinstance(s, str):
                problems[sym] = s
            elif lo < s.start:
                continue  # the file starts later (a fund not listed yet): absent, not a problem
            elif n > s.end:
                problems[sym] = self._coverage(s, before, want, lo, n)
            elif s.bad_prefix[n - s.start] != s.bad_prefix[lo - s.start]:
                problems[sym] = self._first_bad(s, lo, n)
            else:
                closes[sym] = s.closes[lo - s.start : n - s.start]
        return History(as_of=last if closes else None, closes=closes, problems=problems)

    @staticmethod
    def _coverage(s: _Series, before: date, bars: int, lo: int, n: int) -> str:
        if lo < s.start:
            return (
                f"{s.name} starts {_day(s.start)}: the {bars} sessions before {before} need rows "
                f"from {_day(lo)}: add older rows or use a shorter lookback"
            )
        return (
            f"{s.name} ends {_day(s.end - 1)}: the {bars} sessions before {before} need rows "
            f"through {_day(n - 1)}: add the newer rows"
        )

    @staticmethod
    def _first_bad(s: _Series, lo: int, n: int) -> str:
        bad = [i for i in range(lo - s.start, n - s.start) if i in s.reasons]
        more = f" (and {len(bad) - 1} more unusable sessions in the window)" if len(bad) > 1 else ""
        return s.reasons[bad[0]] + more

    def price(self, symbol: str, at: datetime) -> float:
        """The Close that applies at instant `at` (UTC-aware): the day's from its open on, else
        the previous session's. Raises DataError naming the file and date when that bar is
        missing or unusable, or the file is missing."""
        if at.utcoffset() is None:
            raise ValueError(f"need a timezone-aware datetime, got naive {at!r}")
        minute = int(at.timestamp()) // 60
        last = self._last_price.get(symbol)
        if last is not None and last[0] == minute:
            return last[1]
        s = self._files.get(symbol) or self._series(symbol)
        if isinstance(s, str):
            raise DataError(symbol, s)
        idx = _applicable_session(minute)
        i = idx - s.start
        if not 0 <= i < len(s.closes):
            raise DataError(
                symbol,
                f"{s.name} has no row for {_day(idx)} (it covers "
                f"{_day(s.start)} to {_day(s.end - 1)}): add it",
            )
        if s.bad_prefix[i + 1] != s.bad_prefix[i]:
            raise DataError(symbol, s.reasons[i])
        if i in s.rejected:
            raise DataError(symbol, s.rejected[i], kind="data_error")
        value = s.closes[i]
        self._last_price[symbol] = (minute, value)
        return value
