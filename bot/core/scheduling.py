"""When cycles run: `BOT_SCHEDULE` in words, slots computed from the injected clock.

Slots are aligned to the clock (every 15 minutes means :00, :15, :30, :45 UTC-aligned), so a
restart keeps the same slots and therefore the same client order ids. `nyse` market hours keep
only slots inside NYSE regular sessions. This module computes slots; `runner.py` waits for them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Protocol

from bot.core import calendar
from bot.core.ports import MarketCalendar

_EVERY = re.compile(r"^every\s+(?:(\d+)\s+)?(second|minute|hour)s?$")
_DAILY = re.compile(r"^daily\s+at\s+(\d{1,2}):(\d{2})$")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_TICK = timedelta(microseconds=1)
BEFORE_CLOSE = timedelta(minutes=15)  # a simulated day's slot: 15:45 New York, 12:45 on early closes


class Schedule(Protocol):
    @property
    def text(self) -> str:
        """The schedule as the user wrote it (BOT_SCHEDULE)."""
        ...

    def latest_at_or_before(self, t: datetime, cal: MarketCalendar = calendar) -> datetime | None:
        """The latest slot <= t (ignoring market hours; `cal` only for market-bound schedules)."""
        ...

    def next_after(self, t: datetime, cal: MarketCalendar = calendar) -> datetime:
        """The first slot > t (ignoring market hours)."""
        ...


@dataclass(frozen=True)
class Every:
    text: str
    seconds: int

    def latest_at_or_before(self, t: datetime, cal: MarketCalendar = calendar) -> datetime:
        n = int((t - _EPOCH).total_seconds()) // self.seconds
        return _EPOCH + timedelta(seconds=n * self.seconds)

    def next_after(self, t: datetime, cal: MarketCalendar = calendar) -> datetime:
        return self.latest_at_or_before(t) + timedelta(seconds=self.seconds)


@dataclass(frozen=True)
class DailyAt:
    """Every calendar day at a New York wall-clock time."""

    text: str
    at: time

    def _on(self, d: date) -> datetime:
        return datetime.combine(d, self.at, tzinfo=calendar.NY).astimezone(timezone.utc)

    def latest_at_or_before(self, t: datetime, cal: MarketCalendar = calendar) -> datetime:
        d = t.astimezone(calendar.NY).date()
        slot = self._on(d)
        return slot if slot <= t else self._on(d - timedelta(days=1))

    def next_after(self, t: datetime, cal: MarketCalendar = calendar) -> datetime:
        d = t.astimezone(calendar.NY).date()
        slot = self._on(d)
        return slot if slot > t else self._on(d + timedelta(days=1))


@dataclass(frozen=True)
class AtMarketOpen:
    """The opening bell of each NYSE session."""

    text: str

    def latest_at_or_before(self, t: datetime, cal: MarketCalendar = calendar) -> datetime | None:
        d = t.astimezone(calendar.NY).date()
        for _ in range(15):
            s = cal.session(d)
            if s and s[0] <= t:
                return s[0]
            d -= timedelta(days=1)
        return None

    def next_after(self, t: datetime, cal: MarketCalendar = calendar) -> datetime:
        return cal.next_open(t)


def parse_schedule(text: str) -> Schedule:
    """Parse the words of BOT_SCHEDULE; ValueError names what is accepted."""
    words = " ".join(text.lower().split())
    m = _EVERY.match(words)
    if m:
        n = int(m.group(1) or 1)
        seconds = n * {"second": 1, "minute": 60, "hour": 3600}[m.group(2)]
        if not 1 <= seconds <= 86400:
            raise ValueError(f"{text!r} must be between 1 second and 24 hours")
        return Every(text, seconds)
    m = _DAILY.match(words)
    if m:
        hour, minute = int(m.group(1)), int(m.group(2))
        if hour > 23 or minute > 59:
            raise ValueError(f"{text!r} is not a time of day")
        return DailyAt(text, time(hour, minute))
    if words in ("at market open", "market open"):
        return AtMarketOpen(text)
    raise ValueError(f"{text!r} is not a schedule I understand")


@dataclass(frozen=True)
class SlotPlanner:
    """Slots of a schedule, restricted to market sessions when `nyse_hours`."""

    schedule: Schedule
    nyse_hours: bool
    cal: MarketCalendar = calendar  # the module is a MarketCalendar

    def allowed(self, slot: datetime) -> bool:
        return not self.nyse_hours or self.cal.is_open(slot)

    def latest_due(self, now: datetime) -> datetime | None:
        """The latest allowed slot <= now, looking back at most 10 days."""
        cal, sched = self.cal, self.schedule
        slot = sched.latest_at_or_before(now, cal)
        limit = now - timedelta(days=10)
        while slot is not None and slot >= limit:
            if self.allowed(slot):
                return slot
            if self.nyse_hours:  # jump back to the last slot before the previous close
                d = slot.astimezone(calendar.NY).date()
                s = cal.session(d)
                if not (s and slot >= s[1]):
                    s = cal.session(cal.previous_trading_day(d))
                    assert s is not None, "a trading day has a session"
                close = s[1]
                slot = sched.latest_at_or_before(close - _TICK, cal)
            else:
                slot = sched.latest_at_or_before(slot - _TICK, cal)
        return None

    def next_after(self, t: datetime) -> datetime:
        """The first allowed slot > t."""
        cal, sched = self.cal, self.schedule
        slot = sched.next_after(t, cal)
        for _ in range(10_000):
            if self.allowed(slot):
                return slot
            slot = sched.next_after(cal.next_open(slot) - _TICK, cal)
        raise RuntimeError(f"no allowed slot found after {t}")

    def raw_next_after(self, t: datetime) -> datetime:
        """The schedule's next slot > t, open market or not."""
        return self.schedule.next_after(t, self.cal)

    def count_between(self, after: datetime, until: datetime, cap: int = 100_000) -> int:
        """How many allowed slots lie in (after, until]."""
        n, slot = 0, after
        while n < cap:
            slot = self.next_after(slot)
            if slot > until:
                break
            n += 1
        return n


def simulation_slots(start: date, end: date) -> list[datetime]:
    """`tradebot simulate`'s slots, in UTC: each trading day's, 15 minutes before that session's
    close (here so that `simulate` and the trail check, a reader, share them)."""
    return [_session_close(d) - BEFORE_CLOSE for d in calendar.trading_days(start, end)]


def _session_close(d: date) -> datetime:
    session = calendar.session(d)
    assert session is not None, d  # trading_days gives only days with a session
    return session[1]
