"""Time is injected: everything reads it from a `Clock`.

`SystemClock` is the wall clock (UTC; the audit trail keeps record time stamps from going back);
`SimulatedClock` is set by `simulate` and advances one microsecond per read so records stay in
order and deterministic.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Protocol

ONE_MICROSECOND = timedelta(microseconds=1)


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    """The wall clock in UTC, as it is: a step of the system clock shows (the scheduler detects
    it against a monotonic clock and schedules from the real time again). Record time stamps
    never go backwards all the same: the audit trail stamps the later of this and its last one."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class SimulatedClock:
    """A clock the caller sets; each read returns a time one microsecond after the previous one."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("SimulatedClock needs a timezone-aware start")
        self._t = start.astimezone(timezone.utc)

    def set(self, t: datetime) -> None:
        """Jump to `t` (never backwards)."""
        if t > self._t:
            self._t = t

    def now(self) -> datetime:
        self._t += ONE_MICROSECOND
        return self._t
