"""The ports the cycle talks through. Adapters live in bot/brokers and bot/data."""
from __future__ import annotations

from datetime import date, datetime
from typing import Mapping, Protocol, Sequence

from audit.records import Record, UnknownRecord
from bot.core.domain import AccountSnapshot, Fill, History, OrderAck, OrderRequest


class Trail(Protocol):
    """The audit trail as the cycle sees it: records go in, and it answers whether it already
    holds one (crash recovery asks instead of writing a record twice)."""

    def record(self, rec: Record | UnknownRecord) -> str:
        """Write one record (stamped with the trail's clock); returns its `timestamp`."""
        ...

    def checkpoint(self) -> None:
        """Make everything recorded so far durable (a live trail syncs and signs)."""
        ...

    def has(self, stream: str, **fields: object) -> bool:
        """True when a recent record of `stream` has all these field values (e.g.
        `has("trades.jsonl", fill_id="f-1")`, `has("decisions.jsonl", model="m",
        cycle_timestamp=slot)`); the newest records are looked at, crash recovery's window."""
        ...


class RunningTrail(Trail, Protocol):
    """What the process around the cycle needs of the trail besides: production.log lines and
    closing it."""

    def log(self, level: str, message: str, *, echo: bool = True) -> None: ...

    def close(self) -> None: ...


class MarketData(Protocol):
    def history(self, symbols: Sequence[str], before: date, bars: int | Mapping[str, int]) -> History:
        """The last `bars` daily closes of each symbol from sessions strictly before `before`
        (`bars` one number for all, or a number per symbol).

        Symbols with fewer bars, a gap or bad values in that window are left out of `closes`
        and named in `problems`. Never raises for one bad symbol.
        """
        ...

    def price(self, symbol: str, at: datetime) -> float:
        """The price of `symbol` at instant `at` (UTC). Raises `DataError` when there is none."""
        ...


class Broker(Protocol):
    def account(self) -> AccountSnapshot:
        """Cash, buying power, NAV and positions now."""
        ...

    def submit_order(self, order: OrderRequest) -> OrderAck:
        """Send one order. Idempotent per `client_order_id`: a repeat returns the first ack.

        Raises `OrderRejected` with the broker's reason when refused.
        """
        ...

    def fills(self, client_order_id: str, recorded_qty: float = 0.0,
              recorded_value: float = 0.0) -> list[Fill]:
        """The order's fills beyond its first `recorded_qty` shares (those already in the trail,
        worth `recorded_value` at their fill prices), oldest first. Fill ids are stable."""
        ...

    def order_status(self, client_order_id: str) -> OrderAck | None:
        """The order's ids and status now, or None when the broker has no such order."""
        ...

    def open_orders(self) -> list[str]:
        """Client order ids of every order still working at the broker."""
        ...

    def cancel_order(self, client_order_id: str) -> None:
        """Cancel what is left of a working order (no error if it is already final)."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...


class MarketCalendar(Protocol):
    """When the market trades. The `bot.core.calendar` module (built-in NYSE rules) is one;
    the Alpaca adapter, which asks the broker's clock and calendar, is another."""

    def is_open(self, at: datetime) -> bool: ...

    def session(self, d: date) -> tuple[datetime, datetime] | None: ...

    def next_open(self, at: datetime) -> datetime: ...

    def previous_trading_day(self, d: date) -> date: ...
