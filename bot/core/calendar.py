"""The NYSE trading calendar, 1990-2100: trading days, sessions (open/close in UTC), early closes.

Pure stdlib. Full-day holidays follow the NYSE rules (New Year's Day, MLK Day from 1998,
Washington's Birthday, Good Friday, Memorial Day, Juneteenth from 2022, Independence Day,
Labor Day, Thanksgiving, Christmas) plus the one-off closures listed in `SPECIAL_CLOSURES`.
A holiday on a Saturday is observed the Friday before, on a Sunday the Monday after, except
New Year's Day: when Jan 1 is a Saturday there is no Friday holiday.

Early (13:00) closes use one simple rule: July 3 when it is a trading day, the day after
Thanksgiving, and Dec 24 when it is a trading day. Older irregular early closes (some 1990s
years) are not modelled. Dates outside 1990-2100 raise ValueError rather than guess.

Sessions are numbered from 1990-01-01: `session_index` and `session_date` convert between a
date and that number, so data adapters can slice lists of daily bars without date arithmetic.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from datetime import date, datetime, time, timedelta, timezone
from functools import cache, lru_cache
from zoneinfo import ZoneInfo

NY = ZoneInfo("America/New_York")
FIRST_YEAR = 1990
LAST_YEAR = 2100
OPEN_TIME = time(9, 30)
CLOSE_TIME = time(16, 0)
EARLY_CLOSE_TIME = time(13, 0)

SPECIAL_CLOSURES: frozenset[date] = frozenset(
    {
        date(1994, 4, 27),  # President Nixon's funeral
        date(2001, 9, 11),
        date(2001, 9, 12),
        date(2001, 9, 13),
        date(2001, 9, 14),  # September 11 attacks
        date(2004, 6, 11),  # President Reagan's funeral
        date(2007, 1, 2),  # President Ford's funeral
        date(2012, 10, 29),
        date(2012, 10, 30),  # Hurricane Sandy
        date(2018, 12, 5),  # President G.H.W. Bush's funeral
        date(2025, 1, 9),  # President Carter's funeral
    }
)

_ONE_DAY = timedelta(days=1)


def _check(d: date) -> None:
    if not FIRST_YEAR <= d.year <= LAST_YEAR:
        raise ValueError(f"{d} is outside the trading calendar ({FIRST_YEAR}-{LAST_YEAR})")


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th (1-based) `weekday` (Mon=0) of the month."""
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def _last_weekday(year: int, month: int, weekday: int) -> date:
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - _ONE_DAY
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _easter(year: int) -> date:
    """Western (Gregorian) Easter Sunday, anonymous Gregorian algorithm."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (b - (b + 8) // 25 + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month, day = divmod(h + el - 7 * m + 114, 31)
    return date(year, month, day + 1)


def _observed(d: date) -> date:
    """Saturday -> Friday before, Sunday -> Monday after."""
    wd = d.weekday()
    if wd == 5:
        return d - _ONE_DAY
    if wd == 6:
        return d + _ONE_DAY
    return d


@cache
def holidays(year: int) -> frozenset[date]:
    """Every weekday of `year` on which the NYSE is closed (holidays and special closures)."""
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ValueError(f"{year} is outside the trading calendar ({FIRST_YEAR}-{LAST_YEAR})")
    days = {
        _nth_weekday(year, 2, 0, 3),  # Washington's Birthday
        _easter(year) - timedelta(days=2),  # Good Friday
        _last_weekday(year, 5, 0),  # Memorial Day
        _observed(date(year, 7, 4)),
        _nth_weekday(year, 9, 0, 1),  # Labor Day
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving
        _observed(date(year, 12, 25)),
    }
    new_year = date(year, 1, 1)
    if new_year.weekday() != 5:  # Saturday: no Friday holiday (that Friday ends the year)
        days.add(_observed(new_year))
    if year >= 1998:
        days.add(_nth_weekday(year, 1, 0, 3))  # Martin Luther King Jr. Day
    if year >= 2022:
        days.add(_observed(date(year, 6, 19)))  # Juneteenth
    days.update(d for d in SPECIAL_CLOSURES if d.year == year)
    return frozenset(d for d in days if d.year == year and d.weekday() < 5)


def is_trading_day(d: date) -> bool:
    """True when the NYSE has a session on `d` (a weekday that is not a holiday/closure)."""
    return d not in holidays(d.year) and d.weekday() < 5


def early_close(d: date) -> bool:
    """True when `d` is a trading day that closes at 13:00 New York time.

    Rule: July 3 when a trading day, the Friday after Thanksgiving, Dec 24 when a trading day.
    """
    if not is_trading_day(d):
        return False
    if (d.month, d.day) in ((7, 3), (12, 24)):
        return True
    return d.month == 11 and d - _ONE_DAY == _nth_weekday(d.year, 11, 3, 4)


@lru_cache(maxsize=8192)
def session(d: date) -> tuple[datetime, datetime] | None:
    """(open, close) of the session on `d` as UTC-aware datetimes, or None on a non-trading day."""
    if not is_trading_day(d):
        return None
    close = EARLY_CLOSE_TIME if early_close(d) else CLOSE_TIME
    return (
        datetime.combine(d, OPEN_TIME, NY).astimezone(timezone.utc),
        datetime.combine(d, close, NY).astimezone(timezone.utc),
    )


def _ny_date(at: datetime) -> date:
    if at.utcoffset() is None:
        raise ValueError(f"need a timezone-aware datetime, got naive {at!r}")
    return at.astimezone(NY).date()


def is_open(at: datetime) -> bool:
    """True when the NYSE is in session at instant `at` (open inclusive, close exclusive)."""
    s = session(_ny_date(at))
    return s is not None and s[0] <= at < s[1]


def next_open(at: datetime) -> datetime:
    """The first session open strictly after instant `at`, in UTC."""
    d = _ny_date(at)
    for _ in range(15):  # the longest closure run (Sept 2001 plus a weekend) is 6 days
        s = session(d)
        if s is not None and s[0] > at:
            return s[0]
        d += _ONE_DAY
    raise AssertionError(f"no session open within 15 days after {at}")  # pragma: no cover


@cache
def year_sessions(year: int) -> tuple[date, ...]:
    """Every trading day of `year`, in order."""
    d, end, out = date(year, 1, 1), date(year, 12, 31), []
    while d <= end:
        if is_trading_day(d):
            out.append(d)
        d += _ONE_DAY
    return tuple(out)


def trading_days(start: date, end: date) -> list[date]:
    """Every trading day from `start` to `end`, both inclusive (empty when start > end)."""
    if start > end:
        return []
    _check(start)
    _check(end)
    out: list[date] = []
    for year in range(start.year, end.year + 1):
        days = year_sessions(year)
        out.extend(days[bisect_left(days, start) : bisect_right(days, end)])
    return out


def previous_trading_day(d: date) -> date:
    """The last trading day strictly before `d`."""
    p = d - _ONE_DAY
    while not is_trading_day(p):
        p -= _ONE_DAY
    return p


@cache
def _sessions_before_year(year: int) -> int:
    if year <= FIRST_YEAR:
        return 0
    return _sessions_before_year(year - 1) + len(year_sessions(year - 1))


def session_index(d: date) -> int:
    """How many sessions there are from 1990-01-01 up to, not including, `d`.

    For a trading day this is its 0-based session number; for any other day it is the number
    of the next session. `session_index(b) - session_index(a)` counts sessions in [a, b).
    """
    return _sessions_before_year(d.year) + bisect_left(year_sessions(d.year), d)


def session_date(index: int) -> date:
    """The trading day numbered `index` (0 = the first session of 1990): session_index's inverse."""
    if index < 0:
        raise ValueError(f"session index {index} is negative")
    year = min(FIRST_YEAR + index // 262, LAST_YEAR)  # <= 262 weekdays a year: a lower bound
    while year < LAST_YEAR and _sessions_before_year(year + 1) <= index:
        year += 1
    k = index - _sessions_before_year(year)
    days = year_sessions(year)
    if k >= len(days):
        raise ValueError(f"session index {index} is after the calendar's end ({LAST_YEAR})")
    return days[k]
