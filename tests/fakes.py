"""Hand-written fakes shared by the tests: a clock, a market with set prices, a failing broker,
the trail and the order journal in memory."""
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

    def lines(self, stream: str) -> list[dict[str, Any]]:
        """The records of `stream` as the file's lines would read back (the real encoder)."""
        import orjson

        from audit.records import encode
        from audit.timestamps import format_timestamp
        return [orjson.loads(encode(r, format_timestamp(r.timestamp)))
                for r in self.records if r.stream == stream]


class MemoryJournal:
    """The cycle's `OrderJournal` port (bot/core/ports.py) in plain dicts: what the SQLite state
    store remembers, without a file (a test's process never dies halfway)."""

    def __init__(self) -> None:
        self.last_slot: datetime | None = None
        self.started_slot: datetime | None = None
        self.completed_slots: set[datetime] = set()
        self.stages: dict[str, str] = {}  # order id -> INTENT, SENT or DONE
        self.intents: dict[str, dict[str, Any]] = {}  # open order id -> its stored fields
        self.fills: dict[str, tuple[str, float, float]] = {}  # fill id -> (order id, qty, price)
        self.writing: dict[str, dict[str, Any]] = {}  # fill id -> trade line, not known written
        self.held: dict[str, dict[str, float]] = {}  # model -> symbol -> shares
        self.closed = False

    def start_slot(self, slot: datetime) -> None:
        self.started_slot = slot

    def complete_slot(self, slot: datetime) -> None:
        self.completed_slots.add(slot)
        if self.last_slot is None or slot > self.last_slot:
            self.last_slot = slot

    def completed(self, slot: datetime) -> bool:
        return slot in self.completed_slots

    def stage_of(self, order_id: str) -> str | None:
        return self.stages.get(order_id)

    def open_orders(self) -> frozenset[str]:
        from bot.core.ports import DONE
        return frozenset(cid for cid, stage in self.stages.items() if stage != DONE)

    def intent_of(self, order_id: str) -> Mapping[str, Any]:
        return self.intents.get(order_id, {})

    def record_intent(self, order_id: str, data: Mapping[str, Any]) -> None:
        from bot.core.ports import INTENT
        self.stages[order_id] = INTENT
        self.intents[order_id] = dict(data)

    def mark_sent(self, order_id: str) -> None:
        from bot.core.ports import SENT
        self.stages[order_id] = SENT

    def mark_done(self, order_id: str) -> None:
        from bot.core.ports import DONE
        self.stages[order_id] = DONE
        self.intents.pop(order_id, None)

    def forget_order(self, order_id: str) -> None:
        self.stages.pop(order_id, None)
        self.intents.pop(order_id, None)

    def knows_fill(self, fill_id: str) -> bool:
        return fill_id in self.fills

    def filled_so_far(self, order_id: str) -> tuple[float, float]:
        mine = [(qty, price) for cid, qty, price in self.fills.values() if cid == order_id]
        return sum(q for q, _ in mine), sum(q * p for q, p in mine)

    def fills_writing(self) -> Mapping[str, Mapping[str, Any]]:
        return dict(self.writing)

    def fill_writing(self, fill_id: str, order_id: str, quantity: float,
                     record: Mapping[str, Any], price: float | None = None) -> None:
        if price is None:
            from bot.core import recording
            price = recording.stored_trade(record).price
        self.fills[fill_id] = (order_id, quantity, price)
        self.writing[fill_id] = dict(record)

    def fill_written(self, fill_id: str, order_id: str, model: str, symbol: str,
                     signed_quantity: float) -> None:
        self.writing.pop(fill_id, None)
        self.adjust_sleeve(model, symbol, signed_quantity)

    def sleeves(self) -> Mapping[str, Mapping[str, float]]:
        return {model: dict(held) for model, held in self.held.items()}

    def adjust_sleeve(self, model: str, symbol: str, delta: float) -> None:
        sleeve = self.held.setdefault(model, {})
        shares = round(sleeve.get(symbol, 0.0) + delta, 9)
        if abs(shares) < 1e-9:
            sleeve.pop(symbol, None)
        else:
            sleeve[symbol] = shares

    def close(self) -> None:
        self.closed = True


# -- the one bot builder of the tests ------------------------------------------------------------
SLOT = utc(2025, 3, 3, 15, 0)  # a Monday, 10:00 New York: the slot most tests run
PRICES = {"SPY": 500.0, "QQQ": 400.0, "TLT": 90.0}
TEST_KEY = b"test-audit-key-0123456789"


def make_bot(tmp_path: "os.PathLike[str] | None" = None, *, persistent: bool = False,
             key: bytes = TEST_KEY, data_dir: bool = False, reject: dict[str, str] | None = None,
             explode: dict[str, Exception] | None = None,
             reject_later: dict[str, str] | None = None, kill: bool = False,
             **overrides: Any) -> Any:
    """A bot of one EqualWeightModel on `FixedMarket(PRICES)`, a simulated broker wrapped in a
    `ScriptedBroker` (`reject`, `explode`, `reject_later`), at `SLOT` on a `FakeClock`.

    Without `tmp_path` nothing touches the disk: `MemoryTrail` and `MemoryJournal`. With it, the
    real trail (durable, signed with `key`) in `tmp_path/logs` (`data_dir`: its anchors in
    `tmp_path/data`), the kill-switch file `tmp_path/KILL_SWITCH` (`kill`: the setting on), and
    with `persistent` the account and the state store in SQLite files under `tmp_path`.
    `overrides` replace any part by name: a port or the models (`journal=StateStore(None)`,
    `sleep=clock.advance`), a policy value (`limits=...`, `reconcile="halt"`, `fill_timeout=5`),
    or the plumbing (`observers=...`, `take_notes=...`)."""
    from dataclasses import fields
    from pathlib import Path

    from bot.adapters.sim_broker import SimBrokerConfig, SimulatedBroker
    from bot.core.cycle import Bot, CycleDeps, CyclePolicy, KillSwitch, ModelShare
    from bot.core.planning import RiskLimits
    from models.equal_weight import EqualWeightModel

    root = Path(tmp_path) if tmp_path is not None else None
    clock = overrides.pop("clock", None) or FakeClock(SLOT)
    market = overrides.pop("market", None) or FixedMarket(PRICES)
    if "broker" not in overrides:
        account = root / "acct.sqlite" if root is not None and persistent else None
        overrides["broker"] = ScriptedBroker(
            SimulatedBroker(market, clock, SimBrokerConfig(), account), reject, explode,
            reject_later)
    if "trail" not in overrides:
        overrides["trail"] = MemoryTrail(clock) if root is None else _disk_trail(
            root, clock, key, data_dir)
    if "journal" not in overrides:
        overrides["journal"] = _journal(root, persistent)
    parts: dict[str, Any] = dict(
        clock=clock, market=market, models=(ModelShare(EqualWeightModel(), 1.0),),
        limits=RiskLimits(),
        kill_switch=KillSwitch(kill, root / "KILL_SWITCH" if root is not None else None))
    parts.update(overrides)

    def take(cls: type) -> dict[str, Any]:
        return {f.name: parts.pop(f.name) for f in fields(cls) if f.name in parts}
    deps, policy = CycleDeps(**take(CycleDeps)), CyclePolicy(**take(CyclePolicy))
    return Bot(deps, policy, **parts)  # a name that is none of these fails here


def _disk_trail(root: Any, clock: Any, key: bytes, data_dir: bool) -> Any:
    from audit.trail import AuditTrail
    return AuditTrail(root / "logs", clock, durable=True, key=key,
                      data_dir=root / "data" if data_dir else None)


def _journal(root: Any, persistent: bool) -> Any:
    if root is not None and persistent:
        from bot.adapters.state_store import StateStore
        return StateStore(root / "state.sqlite")
    return MemoryJournal()
