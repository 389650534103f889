"""Time is injected: everything reads it from a `Clock`.

`SystemClock` is the wall clock (UTC, never going backwards within a process);
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
    """The wall clock in UTC; a backwards step of the system clock is held at the last reading."""

    def __init__(self) -> None:
        self._last = datetime(1970, 1, 1, tzinfo=timezone.utc)

    def now(self) -> datetime:
        t = datetime.now(timezone.utc)
        if t < self._last:
            t = self._last
        self._last = t
        return t


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
