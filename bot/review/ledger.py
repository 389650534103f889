"""Rebuild the portfolio from the audit trail alone: cash, positions, average cost, realized and
unrealized P&L and NAV after every fill and every cycle, per model and for the whole account.

The accounting is the simulated broker's: average cost with the commission in the cost of a buy
and deducted from the proceeds of a sell; cash moves by each trade's recorded `value` plus or
minus its commission. The account opens as the first `account_checked` event says (or empty,
with the first snapshot's cash, in a trail written before that event existed). Each model's book
opens with its `capital_share` of the opening NAV in cash; positions held at the opening belong
to the `EXTERNAL` book (they were not bought by a model). Marks are the latest prices the trail
knows: fill prices and the snapshots' `prices`.

A trail whose old segments retention removed (`bot/review/pruned.py`) is replayed from its first
snapshot after the removal: the account opens with that snapshot's cash, positions and prices,
and only the total book is kept (which model bought a position held then is in the removed part).

This module only computes; `bot/review/check.py` compares the result with what the trail says.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Mapping

from audit.files import Line, iter_typed
from audit.records import (
    DECISIONS,
    EVENTS,
    PERFORMANCE,
    TRADES,
    AccountChecked,
    CycleCompleted,
    ModelDecided,
    TradeExecuted,
)
from audit.timestamps import format_slot, format_timestamp
from bot.review.pruned import Pruned, pruned

EXTERNAL = "EXTERNAL"
FLAT = 1e-9
_EARLIEST = datetime.min.replace(tzinfo=timezone.utc)  # a record without a timestamp sorts first

Account = AccountChecked | CycleCompleted
"""A record of the whole account: the broker's at a start-up, or a snapshot."""
Replayed = TradeExecuted | CycleCompleted | AccountChecked
"""What the ledger replays: fills, snapshots and the account at a start-up."""


@dataclass(frozen=True, slots=True)
class Position:
    quantity: float
    avg_cost: float
    realized_pnl: float
    mark: float | None

    @property
    def unrealized_pnl(self) -> float:
        if self.mark is None or abs(self.quantity) < FLAT:
            return 0.0
        return (self.mark - self.avg_cost) * self.quantity


@dataclass(frozen=True, slots=True)
class Book:
    cash: float
    positions: Mapping[str, Position]
    nav: float | None
    realized_pnl: float
    unrealized_pnl: float
    commission: float


@dataclass(frozen=True, slots=True)
class Drift:
    """Where the trail's own account (a snapshot, or the broker at a restart) differs from the
    fills before it: symbol -> (rebuilt, recorded) quantities, and the cash the same way. The
    ledger carries on from the recorded account, the difference booked to `EXTERNAL`."""

    positions: Mapping[str, tuple[float, float]]
    cash: tuple[float, float] | None


@dataclass(frozen=True, slots=True)
class Step:
    """One replayed record (`record`: a TradeExecuted for a "fill", a CycleCompleted for a
    "cycle", an AccountChecked, or the CycleCompleted a pruned trail opens from, for an "open")
    and the books right after it."""

    kind: str  # "open", "fill" or "cycle"
    where: Line
    record: Replayed
    total: Book
    models: Mapping[str, Book]
    drift: Drift | None = None

    @property
    def time(self) -> datetime:
        """When the trail wrote the record."""
        return self.record.timestamp or _EARLIEST

    @property
    def timestamp(self) -> str:
        """The record's `timestamp` as the trail writes it (for printing)."""
        return format_timestamp(self.record.timestamp) if self.record.timestamp else ""

    @property
    def cycle(self) -> datetime | None:
        """The slot of the cycle that wrote the record (None for the account at a start-up)."""
        return None if isinstance(self.record, AccountChecked) else self.record.cycle_timestamp

    @property
    def cycle_timestamp(self) -> str | None:
        """`cycle` as the trail writes it (for printing)."""
        cycle = self.cycle
        return None if cycle is None else format_slot(cycle)


class _Book:
    """A mutable book; `freeze` gives the immutable view a Step carries."""

    __slots__ = ("cash", "qty", "avg", "realized", "commission")

    def __init__(self, cash: float = 0.0) -> None:
        self.cash = cash
        self.qty: dict[str, float] = {}
        self.avg: dict[str, float] = {}
        self.realized: dict[str, float] = {}
        self.commission = 0.0

    def hold(self, symbol: str, quantity: float, cost: float) -> None:
        self.qty[symbol] = quantity
        self.avg[symbol] = cost
        self.realized.setdefault(symbol, 0.0)

    def fill(self, symbol: str, side: str, quantity: float, value: float, fee: float) -> float:
        """Apply one fill; returns the P&L it realized."""
        signed = quantity if side == "buy" else -quantity
        old = self.qty.get(symbol, 0.0)
        avg = self.avg.get(symbol, 0.0)
        price = value / quantity if quantity else 0.0
        self.cash += -value - fee if side == "buy" else value - fee
        self.commission += fee
        realized = 0.0
        if abs(old) < FLAT or (old > 0) == (signed > 0):  # opening or adding
            new = old + signed
            gross = abs(old) * avg + (value + fee if signed > 0 else value - fee)
            avg = gross / abs(new) if abs(new) >= FLAT else 0.0
        else:  # reducing, maybe through zero
            closed = min(abs(signed), abs(old))
            direction = 1.0 if old > 0 else -1.0
            realized = (price - avg) * closed * direction - fee
            new = old + signed
            if abs(new) < FLAT:
                new, avg = 0.0, 0.0
            elif (new > 0) != (old > 0):  # flipped: the rest opens at this price
                avg = price
        self.qty[symbol] = round(new, 9)
        self.avg[symbol] = avg
        self.realized[symbol] = self.realized.get(symbol, 0.0) + realized
        return realized

    def freeze(self, marks: Mapping[str, float]) -> Book:
        positions = {}
        nav: float | None = self.cash
        realized = unrealized = 0.0
        for sym in sorted(set(self.qty) | set(self.realized)):
            q = self.qty.get(sym, 0.0)
            p = Position(q, self.avg.get(sym, 0.0) if abs(q) >= FLAT else 0.0,
                         self.realized.get(sym, 0.0), marks.get(sym))
            positions[sym] = p
            realized += p.realized_pnl
            unrealized += p.unrealized_pnl
            if abs(q) >= FLAT:
                nav = None if nav is None or p.mark is None else nav + q * p.mark
        return Book(self.cash, positions, nav, realized, unrealized, self.commission)

    def held(self) -> dict[str, float]:
        return {s: q for s, q in self.qty.items() if abs(q) >= FLAT}


def capital_shares(log_dir: Path) -> dict[str, float]:
    """Each model's `capital_share`, from its first decision."""
    shares: dict[str, float] = {}
    for _where, rec in iter_typed(log_dir, DECISIONS):
        if isinstance(rec, ModelDecided) and rec.model not in shares:
            shares[rec.model] = _num(rec.capital_share) or 0.0
    return shares


def merged(log_dir: Path) -> Iterator[tuple[str, Line, Replayed]]:
    """(kind, where, record) of fills, snapshots and `account_checked` events, by timestamp.
    Records of other kinds in those streams (a kind a newer version wrote) are left out."""

    def tagged(kind: str, name: str, wanted: type[Replayed]):
        for where, rec in iter_typed(log_dir, name):
            if isinstance(rec, wanted):
                yield rec.timestamp or _EARLIEST, kind, where, rec

    streams = [tagged("fill", TRADES, TradeExecuted), tagged("cycle", PERFORMANCE, CycleCompleted),
               tagged("open", EVENTS, AccountChecked)]
    for _time, kind, where, rec in heapq.merge(*streams, key=lambda t: t[0]):
        yield kind, where, rec


class Ledger:
    """Replays fills and snapshots in time order, keeping every book up to date. With
    `total_only` (a pruned trail) the per-model books are not kept."""

    def __init__(self, shares: Mapping[str, float], total_only: bool = False) -> None:
        self.shares = {} if total_only else dict(shares)
        self.total_only = total_only
        self.total = _Book()
        self.books: dict[str, _Book] = {}
        self.marks: dict[str, float] = {}
        self.opened = False

    def open(self, cash: float, positions: Mapping[str, float], prices: Mapping[str, float]) -> None:
        """Start from the account the broker reported at the first start-up."""
        self.marks.update({s: float(p) for s, p in prices.items()})
        nav = cash + sum(float(q) * self.marks.get(s, 0.0) for s, q in positions.items())
        self.total = _Book(cash)
        self.books = {m: _Book(share * nav) for m, share in self.shares.items()}
        ext = _Book(cash - sum(b.cash for b in self.books.values()))
        for sym, q in positions.items():
            self.total.hold(sym, float(q), self.marks.get(sym, 0.0))
            ext.hold(sym, float(q), self.marks.get(sym, 0.0))
        if not self.total_only and (positions or abs(ext.cash) >= 0.005):
            self.books[EXTERNAL] = ext
        self.opened = True

    def resync(self, cash: float | None, positions: Mapping[str, float],
               cash_tolerance: float) -> Drift | None:
        """Compare with an account the trail records; carry on from it if it differs."""
        held = self.total.held()
        diffs = {}
        for sym in sorted(set(held) | set(positions)):
            rebuilt, recorded = held.get(sym, 0.0), float(positions.get(sym, 0.0))
            if abs(rebuilt - recorded) > 1e-6:
                diffs[sym] = (rebuilt, recorded)
        cash_diff = None
        if cash is not None and abs(self.total.cash - cash) > cash_tolerance:
            cash_diff = (self.total.cash, cash)
        if not diffs and cash_diff is None:
            return None
        ext = _Book() if self.total_only else self.books.setdefault(EXTERNAL, _Book())
        for sym, (rebuilt, recorded) in diffs.items():
            delta = recorded - rebuilt
            for book in (self.total, ext):
                q = book.qty.get(sym, 0.0)
                if abs(q) < FLAT:
                    book.avg[sym] = self.marks.get(sym, 0.0)
                book.qty[sym] = round(q + delta, 9)
                book.realized.setdefault(sym, 0.0)
        if cash_diff is not None:
            rebuilt_cash, recorded_cash = cash_diff
            ext.cash += recorded_cash - rebuilt_cash
            self.total.cash = recorded_cash
        return Drift(diffs, cash_diff)

    def fill(self, rec: TradeExecuted) -> None:
        sym, side = rec.symbol, rec.side
        qty, value = float(rec.quantity), float(rec.value)
        fee = float(rec.commission or 0.0)
        self.marks[sym] = float(rec.price)
        self.total.fill(sym, side, qty, value, fee)
        if not self.total_only:
            model = rec.model or EXTERNAL
            self.books.setdefault(model, _Book()).fill(sym, side, qty, value, fee)

    def snapshot(self, rec: Account) -> None:
        """Take the snapshot's marks."""
        self.marks.update(_prices(rec))

    def step(self, kind: str, where: Line, rec: Replayed, drift: Drift | None = None) -> Step:
        return Step(kind, where, rec, self.total.freeze(self.marks),
                    {m: b.freeze(self.marks) for m, b in sorted(self.books.items())}, drift)


def replay(log_dir: Path, removed: Pruned | None = None) -> Iterator[Step]:
    """Every fill, snapshot and start-up of the trail with the books right after it, oldest
    first. A snapshot or start-up that disagrees with the fills before it carries a `drift`.
    When retention removed old segments (`removed`, read from the trail when not given), the
    replay opens at the first snapshot from `removed.since` on: a step of kind "open" whose
    record is that `cycle_complete`; everything before it is skipped."""
    removed = pruned(log_dir) if removed is None else removed
    since = _removal_end(removed)
    ledger = Ledger(capital_shares(log_dir), total_only=bool(removed))
    fills_since = 0
    for kind, where, rec in merged(log_dir):
        drift = None
        if removed and not ledger.opened:
            if not isinstance(rec, CycleCompleted) or (rec.timestamp or _EARLIEST) < since:
                continue  # before the removal's end some of the books' history is gone
            ledger.open(_num(rec.cash) or 0.0, _positions(rec), _prices(rec))
            yield ledger.step("open", where, rec)
            continue
        if isinstance(rec, AccountChecked) and not ledger.opened:
            ledger.open(_num(rec.cash) or 0.0, _positions(rec), _prices(rec))
        else:
            if not ledger.opened:  # an older trail: open empty, with the cash the trail implies
                ledger.open(_implied_cash(log_dir), {}, {})
            if isinstance(rec, TradeExecuted):
                ledger.fill(rec)
                fills_since += 1
            else:  # a snapshot, or the broker's account at a restart
                ledger.snapshot(rec)
                drift = ledger.resync(_num(rec.cash), _positions(rec),
                                      0.015 + 0.005 * fills_since)
                fills_since = 0
        yield ledger.step(kind, where, rec, drift)


def _removal_end(removed: Pruned) -> datetime:
    """When what retention removed ends (`Pruned.since`, as the trail wrote it or as a time)."""
    since: object = removed.since
    if isinstance(since, datetime):
        return since
    if isinstance(since, str) and since:
        parsed = datetime.fromisoformat(since)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    return _EARLIEST


def _num(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _positions(rec: Account) -> dict[str, float]:
    return {s: float(q) for s, q in rec.positions.items() if isinstance(q, (int, float))}


def _prices(rec: Account) -> dict[str, float]:
    return {s: float(p) for s, p in rec.prices.items() if isinstance(p, (int, float))}


def _implied_cash(log_dir: Path) -> float:
    """Opening cash of a trail without `account_checked`: the first snapshot's cash plus what the
    fills before it cost."""
    flows = 0.0
    for _kind, _where, rec in merged(log_dir):
        if isinstance(rec, CycleCompleted):
            return float(rec.cash or 0.0) - flows
        if isinstance(rec, TradeExecuted):
            value, fee = float(rec.value or 0.0), float(rec.commission or 0.0)
            flows += -value - fee if rec.side == "buy" else value - fee
    return -flows
