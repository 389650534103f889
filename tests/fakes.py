"""Hand-written fakes shared by the tests: a clock, a market with set prices, a failing broker."""
from __future__ import annotations

import errno
import os
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Mapping, Sequence

from bot.core.domain import AccountSnapshot, Fill, OrderAck, OrderRequest
from bot.core.errors import DataError, OrderRejected
from models.base import History


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def fill_disk(path: "os.PathLike[str] | str",
              setattr: Callable[[Any, str, Any], None] = setattr) -> None:  # noqa: A002 - monkeypatch.setattr or the builtin
    """A full disk for one file: every `os.write` to the file at `path` (found by its inode, so
    whichever descriptor the bot holds) fails with ENOSPC; other files are written as usual.
    In-process pass `monkeypatch.setattr`. (A link to /dev/full is refused by the bot now: it
    never follows a link where its own file should be.)"""
    real = os.write

    def write(fd: int, data: Any) -> int:
        try:
            st, target = os.fstat(fd), os.stat(path)
        except OSError:
            return real(fd, data)
        if (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data)
    setattr(os, "write", write)


class FakeClock:
    """Returns `t`, which the test moves; `advance` is also a `wait` for the runner."""

    def __init__(self, t: datetime) -> None:
        self.t = t

    def now(self) -> datetime:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=max(seconds, 0.001))


class FixedMarket:
    """Prices set by the test; history is a flat or rising series of `bars` closes."""

    def __init__(self, prices: dict[str, float], trend: float = 0.0) -> None:
        self.prices = dict(prices)
        self.trend = trend
        self.bad: dict[str, str] = {}

    def history(self, symbols: Sequence[str], before: date, bars: int | Mapping[str, int]) -> History:
        closes, problems = {}, {}
        for s in symbols:
            n = bars if isinstance(bars, int) else bars[s]
            if s in self.bad:
                problems[s] = self.bad[s]
            elif s in self.prices:
                p = self.prices[s]
                closes[s] = tuple(p * (1 + self.trend) ** (i - n) for i in range(n))
        return History(before - timedelta(days=1), closes, problems)

    def price(self, symbol: str, at: datetime) -> float:
        if symbol in self.bad:
            raise DataError(symbol, self.bad[symbol])
        if symbol not in self.prices:
            raise DataError(symbol, "unknown symbol")
        return self.prices[symbol]


class ScriptedBroker:
    """Wraps a real broker; refuses or raises for the symbols the test names. `reject_later`:
    the order is accepted ("new") and, when asked about, rejected for the reason given."""

    def __init__(self, inner, reject: dict[str, str] | None = None,
                 explode: dict[str, Exception] | None = None,
                 reject_later: dict[str, str] | None = None) -> None:
        self.inner = inner
        self.reject = reject or {}
        self.explode = explode or {}
        self.reject_later = reject_later or {}
        self.rejected_later: dict[str, str] = {}  # client order id -> reason
        self.submitted: list[str] = []

    def account(self) -> AccountSnapshot:
        return self.inner.account()

    def submit_order(self, order: OrderRequest) -> OrderAck:
        self.submitted.append(order.client_order_id)
        if order.symbol in self.reject:
            raise OrderRejected(self.reject[order.symbol])
        if order.symbol in self.explode:
            raise self.explode[order.symbol]
        if order.symbol in self.reject_later:
            self.rejected_later[order.client_order_id] = self.reject_later[order.symbol]
            return OrderAck(order.client_order_id, f"B-{order.client_order_id}", "new")
        return self.inner.submit_order(order)

    def fills(self, client_order_id: str, recorded_qty: float = 0.0,
              recorded_value: float = 0.0) -> list[Fill]:
        if client_order_id in self.rejected_later:
            return []
        return self.inner.fills(client_order_id, recorded_qty, recorded_value)

    def order_status(self, client_order_id: str) -> OrderAck | None:
        if client_order_id in self.rejected_later:
            return OrderAck(client_order_id, f"B-{client_order_id}", "rejected",
                            self.rejected_later[client_order_id])
        return self.inner.order_status(client_order_id)

    def open_orders(self) -> list[str]:
        return self.inner.open_orders()

    def cancel_order(self, client_order_id: str) -> None:
        self.inner.cancel_order(client_order_id)

    def close(self) -> None:
        self.inner.close()


def at(text: str) -> datetime:
    """A slot or a time stamp as the trail writes it, as the datetime the records carry."""
    return datetime.fromisoformat(text)


def on(text: str) -> date:
    """A day as the trail writes it (`2025-11-17`), as the date the records carry."""
    return date.fromisoformat(text)


class MemoryTrail:
    """The cycle's `Trail` port (bot/core/ports.py) in memory: records kept as typed values, stamped
    with the clock; `has` answers from them. `log` and `close` make it a `RunningTrail`."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.records: list[Any] = []
        self.logged: list[tuple[str, str]] = []
        self.checkpoints = 0
        self.closed = False

    def record(self, rec: Any) -> str:
        from dataclasses import replace

        from audit.timestamps import format_timestamp
        now = self.clock.now()
        self.records.append(replace(rec, timestamp=now))
        return format_timestamp(now)

    def checkpoint(self) -> None:
        self.checkpoints += 1

    def has(self, stream: str, **fields: object) -> bool:
        missing = object()
        return any(r.stream == stream and all(getattr(r, k, missing) == v for k, v in fields.items())
                   for r in self.records)

    def log(self, level: str, message: str, *, echo: bool = True) -> None:
        self.logged.append((level, message))

    def close(self) -> None:
        self.closed = True

    def of(self, cls: type) -> list[Any]:
        """The records of one type, in the order written."""
        return [r for r in self.records if isinstance(r, cls)]
