"""What the runner tells the outside about cycles: the heartbeat file, metrics and alerts listen.

An observer must not raise and must not trade or write to the trail; it is told after the fact.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class CycleReport:
    """One cycle as the runner saw it: `error` is None when it completed."""

    slot: datetime
    started: datetime
    seconds: float
    error: str | None = None
    nav: float | None = None
    cash: float | None = None
    orders: int = 0
    fills: int = 0
    errors: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None


class CycleObserver(Protocol):
    def started(self) -> None:
        """The bot passed its start-up checks and is about to run cycles."""
        ...

    def cycle_finished(self, report: CycleReport) -> None:
        """After every cycle, completed or failed."""
        ...

    def waiting(self, next_slot: datetime) -> None:
        """Before the first cycle of this process: the slot the runner waits for."""
        ...

    def halted(self, reason: str) -> None:
        """Trading stopped for good in this process (a Halt, the trail cannot be written)."""
        ...

    def stopped(self, reason: str) -> None:
        """`run` is stopping cleanly (a signal, --max-cycles): called just before `close`."""
        ...

    def close(self) -> None:
        """The process is stopping: finish what is in flight (briefly) and let go."""
        ...
