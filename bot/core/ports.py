"""The ports the cycle talks through. Adapters live in bot/adapters."""
from __future__ import annotations

from datetime import date, datetime
from typing import AbstractSet, Any, Mapping, Protocol, Sequence

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


# An order's stages in the journal: INTENT before it is sent, SENT once its order line is
# written, DONE when it has reached a final status and every fill of it is in the trail.
INTENT, SENT, DONE = "intent", "sent", "done"


class OrderJournal(Protocol):
    """The bot's own memory of its progress (not the broker's), which makes each record
    exactly-once across a crash: the slots begun and completed, each model's holdings (its
    sleeve), every order's stage and every fill's, a fill stored with its trade line before the
    line is written (write-ahead). The SQLite state store is one; tests keep one in memory."""

    # -- slots
    @property
    def last_slot(self) -> datetime | None:
        """The latest slot whose cycle completed."""
        ...

    @property
    def started_slot(self) -> datetime | None:
        """The slot whose cycle began last (completed or not)."""
        ...

    def start_slot(self, slot: datetime) -> None: ...

    def complete_slot(self, slot: datetime) -> None:
        """Mark `slot` completed: it never runs again, whatever the clock says later."""
        ...

    def completed(self, slot: datetime) -> bool: ...

    # -- orders
    def stage_of(self, order_id: str) -> str | None:
        """INTENT, SENT or DONE; None for an order the journal does not know."""
        ...

    def open_orders(self) -> AbstractSet[str]:
        """The orders not DONE (INTENT or SENT): what a crash or a deadline left to settle."""
        ...

    def intent_of(self, order_id: str) -> Mapping[str, Any]:
        """The fields stored with an open order's intent (`recording.intent_data`); {} if none."""
        ...

    def record_intent(self, order_id: str, data: Mapping[str, Any]) -> None:
        """Before sending: the order is INTENT, with its fields for a late record."""
        ...

    def mark_sent(self, order_id: str) -> None:
        """Its order line is written."""
        ...

    def mark_done(self, order_id: str) -> None:
        """Final at the broker, every fill in the trail."""
        ...

    def forget_order(self, order_id: str) -> None:
        """An order the broker never placed: the same slot may send it again."""
        ...

    # -- fills and sleeves
    def knows_fill(self, fill_id: str) -> bool: ...

    def filled_so_far(self, order_id: str) -> tuple[float, float]:
        """The shares of the order whose fills are stored, and what they were worth."""
        ...

    def fills_writing(self) -> Mapping[str, Mapping[str, Any]]:
        """Fill id -> its stored trade line, for the fills not known written to the trail."""
        ...

    def fill_writing(self, fill_id: str, order_id: str, quantity: float,
                     record: Mapping[str, Any], price: float | None = None) -> None:
        """Store a fill and its trade line (`recording.trade_data`) before the line is written."""
        ...

    def fill_written(self, fill_id: str, order_id: str, model: str, symbol: str,
                     signed_quantity: float) -> None:
        """The fill's line is written: mark it, and move the model's sleeve, at once."""
        ...

    def sleeves(self) -> Mapping[str, Mapping[str, float]]:
        """Each model's holdings: model -> symbol -> shares."""
        ...

    def adjust_sleeve(self, model: str, symbol: str, delta: float) -> None:
        """Move a sleeve by `delta` shares outside any fill (reconciliation)."""
        ...

    def close(self) -> None: ...
