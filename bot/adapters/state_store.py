"""The bot's own durable memory (not the broker's): the completed slots, each model's holdings
(its sleeve), and the progress of every order and fill through the audit trail.

The progress marks make records exactly-once across a crash: a fill is stored with its whole
trade record and marked `writing` before its line is written, and `written` after; a restart
finds the `writing` ones and writes them unless the trail's tail already has them (a write-ahead
log). Orders go INTENT (before sending) -> SENT (order line written) -> DONE. With `path=None`
everything stays in memory (simulate). This module does not talk to the broker or write the trail.
It is the cycle's `OrderJournal` (bot/core/ports.py).
"""
from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import AbstractSet, Any, Mapping

import orjson

from audit.records import RecordError
from audit.timestamps import format_slot
from audit.writer import refuse_links, sqlite_files
from bot.core import recording
from bot.core.ports import DONE, INTENT, SENT

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sleeves (model TEXT, symbol TEXT, qty REAL NOT NULL, PRIMARY KEY (model, symbol));
CREATE TABLE IF NOT EXISTS orders (cid TEXT PRIMARY KEY, stage TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS fills (fill_id TEXT PRIMARY KEY, cid TEXT NOT NULL, stage TEXT NOT NULL,
  qty REAL NOT NULL, record TEXT NOT NULL);
"""
_SLOTS = "CREATE TABLE completed_slots (slot TEXT PRIMARY KEY) WITHOUT ROWID"
# completed slots kept: those within 12 days of the newest, and at least the newest 100,000 (2.8
# years of 15-minute slots); every slot before the oldest kept counts as completed
_KEEP_SLOTS = timedelta(days=12)
_KEEP_AT_LEAST = 100_000
_PRUNE_EVERY = 1_000  # completions between two prunings

WRITING, WRITTEN = "writing", "written"
__all__ = ["DONE", "INTENT", "SENT", "WRITING", "WRITTEN", "StateStore"]  # the order stages too


class StateStore:
    """Dicts in memory, written through to SQLite (one transaction per change) when persistent."""

    def __init__(self, path: Path | None) -> None:
        self._db: sqlite3.Connection | None = None
        self.last_slot: datetime | None = None  # the latest completed slot
        self._completed: set[str] = set()  # in memory only (simulate); else the database's table
        self._floor: str | None = None  # it and every slot before it count as completed
        self._completions = 0
        self.started_slot: datetime | None = None  # the slot whose cycle began last
        self._sleeves: dict[str, dict[str, float]] = {}
        self._order_stage: dict[str, str] = {}
        self._order_data: dict[str, dict] = {}
        self._open_orders: set[str] = set()
        self._fill_stage: dict[str, str] = {}
        self._filled_qty: dict[str, float] = {}  # per order: the shares whose fills are recorded
        self._filled_value: dict[str, float] = {}  # ... and what they were worth
        self._writing: dict[str, dict] = {}  # fill id -> its trade record, not yet known written
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            refuse_links(path.parent, sqlite_files(path.name))  # SQLite would follow a link
            self._db = sqlite3.connect(path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            self._load()
            self._load_completed()

    def _load(self) -> None:
        db = self._db
        assert db is not None
        meta = dict(db.execute("SELECT key, value FROM meta"))
        self.last_slot = datetime.fromisoformat(meta["last_slot"]) if "last_slot" in meta else None
        self.started_slot = (datetime.fromisoformat(meta["started_slot"])
                             if "started_slot" in meta else None)
        for model, symbol, qty in db.execute("SELECT model, symbol, qty FROM sleeves"):
            self._sleeves.setdefault(model, {})[symbol] = qty
        for cid, stage, data in db.execute("SELECT cid, stage, data FROM orders"):
            self._order_stage[cid] = stage
            if stage != DONE:
                self._open_orders.add(cid)
                self._order_data[cid] = orjson.loads(data)
        for fill_id, cid, stage, qty, record in db.execute(
                "SELECT fill_id, cid, stage, qty, record FROM fills"):
            self._fill_stage[fill_id] = stage
            data = orjson.loads(record)
            self._count(cid, qty, _stored_price(data))
            if stage == WRITING:
                self._writing[fill_id] = data

    def _exec(self, *statements: tuple[str, tuple]) -> None:
        if self._db is None:
            return
        with self._db:  # one transaction
            self._db.execute("BEGIN IMMEDIATE")
            for sql, args in statements:
                self._db.execute(sql, args)

    # -- slots ---------------------------------------------------------------------------
    def start_slot(self, slot: datetime) -> None:
        self.started_slot = slot
        self._exec(("INSERT OR REPLACE INTO meta VALUES ('started_slot', ?)", (slot.isoformat(),)))

    def complete_slot(self, slot: datetime) -> None:
        """Mark `slot` completed: it never runs again, whatever the clock says later."""
        if self.last_slot is None or slot > self.last_slot:
            self.last_slot = slot
        key = format_slot(slot)
        if self._db is None:
            self._completed.add(key)
            return
        self._exec(("INSERT OR REPLACE INTO meta VALUES ('last_slot', ?)", (self.last_slot.isoformat(),)),
                   ("INSERT OR IGNORE INTO completed_slots VALUES (?)", (key,)))
        self._completions += 1
        if self._completions % _PRUNE_EVERY == 0:
            self._prune()

    def _prune(self) -> None:
        """Forget the completed slots beyond those kept; the latest forgotten becomes the floor
        (it and every slot before it count as completed)."""
        db = self._db
        assert db is not None and self.last_slot is not None
        where = ("slot < ? AND slot < (SELECT slot FROM completed_slots ORDER BY slot DESC "
                 "LIMIT 1 OFFSET ?)")
        args = (format_slot(self.last_slot - _KEEP_SLOTS), _KEEP_AT_LEAST)
        dropped = db.execute(f"SELECT MAX(slot) FROM completed_slots WHERE {where}", args).fetchone()[0]
        if dropped is None:
            return
        self._floor = max(self._floor or dropped, dropped)
        self._exec(("INSERT OR REPLACE INTO meta VALUES ('slots_floor', ?)", (self._floor,)),
                   (f"DELETE FROM completed_slots WHERE {where}", args))

    def completed(self, slot: datetime) -> bool:
        """Whether `slot`'s cycle completed (every slot up to the floor counts as completed)."""
        key = format_slot(slot)
        if self._floor is not None and key <= self._floor:
            return True
        if self._db is None:
            return key in self._completed
        return self._db.execute("SELECT 1 FROM completed_slots WHERE slot = ?", (key,)).fetchone() is not None

    def _load_completed(self) -> None:
        """The completed slots and the floor. A store made before they were kept knows only its
        last slot: that one and every slot before it count as completed."""
        db = self._db
        assert db is not None
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'completed_slots'").fetchone():
            with db:
                db.execute("BEGIN IMMEDIATE")
                db.execute(_SLOTS)
                if self.last_slot is not None:
                    db.execute("INSERT OR REPLACE INTO meta VALUES ('slots_floor', ?)",
                               (format_slot(self.last_slot),))
        row = db.execute("SELECT value FROM meta WHERE key = 'slots_floor'").fetchone()
        self._floor = row[0] if row else None
        if self.last_slot is not None:
            self._prune()

    # -- orders --------------------------------------------------------------------------
    def stage_of(self, order_id: str) -> str | None:
        return self._order_stage.get(order_id)

    def open_orders(self) -> AbstractSet[str]:
        return frozenset(self._open_orders)

    def intent_of(self, order_id: str) -> Mapping[str, Any]:
        return self._order_data.get(order_id, {})

    def record_intent(self, order_id: str, data: Mapping[str, Any]) -> None:
        self._set_stage(order_id, INTENT, dict(data))

    def mark_sent(self, order_id: str) -> None:
        self._set_stage(order_id, SENT)

    def mark_done(self, order_id: str) -> None:
        self._set_stage(order_id, DONE)

    def _set_stage(self, cid: str, stage: str, data: dict | None = None) -> None:
        """Record an order's progress; `data` (its fields, for a late record) comes with INTENT."""
        self._order_stage[cid] = stage
        if data is not None:
            self._order_data[cid] = data
        if stage == DONE:
            self._open_orders.discard(cid)
            data = self._order_data.pop(cid, None)
        else:
            self._open_orders.add(cid)
            data = self._order_data.get(cid)
        self._exec(("INSERT OR REPLACE INTO orders VALUES (?, ?, ?)",
                    (cid, stage, orjson.dumps(data or {}).decode())))

    def forget_order(self, order_id: str) -> None:
        """An order the broker never placed: drop it, so the same slot may send it again."""
        self._order_stage.pop(order_id, None)
        self._order_data.pop(order_id, None)
        self._open_orders.discard(order_id)
        self._exec(("DELETE FROM orders WHERE cid=?", (order_id,)))

    # -- fills and sleeves ---------------------------------------------------------------
    def knows_fill(self, fill_id: str) -> bool:
        return fill_id in self._fill_stage

    def filled_so_far(self, order_id: str) -> tuple[float, float]:
        return self._filled_qty.get(order_id, 0.0), self._filled_value.get(order_id, 0.0)

    def fills_writing(self) -> Mapping[str, Mapping[str, Any]]:
        return dict(self._writing)

    def fill_writing(self, fill_id: str, order_id: str, quantity: float,
                     record: Mapping[str, Any], price: float | None = None) -> None:
        """Store a fill and its trade record before the line is written (write-ahead); `price`
        is the fill's (read from `record` when not given)."""
        record = dict(record)
        self._fill_stage[fill_id] = WRITING
        self._count(order_id, quantity, _stored_price(record) if price is None else price)
        self._writing[fill_id] = record
        self._exec(("INSERT OR REPLACE INTO fills VALUES (?, ?, ?, ?, ?)",
                    (fill_id, order_id, WRITING, quantity, orjson.dumps(record).decode())))

    def _count(self, cid: str, qty: float, price: float) -> None:
        self._filled_qty[cid] = self._filled_qty.get(cid, 0.0) + qty
        self._filled_value[cid] = self._filled_value.get(cid, 0.0) + qty * price

    def fill_written(self, fill_id: str, order_id: str, model: str, symbol: str,
                     signed_quantity: float) -> None:
        """Mark the fill's trade line written and move the model's sleeve, atomically."""
        self._fill_stage[fill_id] = WRITTEN
        self._writing.pop(fill_id, None)
        self._exec(("UPDATE fills SET stage=? WHERE fill_id=?", (WRITTEN, fill_id)),
                   *self._move(model, symbol, signed_quantity))

    def sleeves(self) -> Mapping[str, Mapping[str, float]]:
        return {model: dict(held) for model, held in self._sleeves.items()}

    def adjust_sleeve(self, model: str, symbol: str, delta: float) -> None:
        """Move a sleeve by `delta` shares outside any fill (reconciliation)."""
        self._exec(*self._move(model, symbol, delta))

    def _move(self, model: str, symbol: str, delta: float) -> list[tuple[str, tuple]]:
        """Change a sleeve in memory; the statements that store the change."""
        sleeve = self._sleeves.setdefault(model, {})
        qty = round(sleeve.get(symbol, 0.0) + delta, 9)
        statements: list[tuple[str, tuple]] = [
            ("DELETE FROM sleeves WHERE model=? AND symbol=?", (model, symbol))]
        if abs(qty) < 1e-9:
            sleeve.pop(symbol, None)
        else:
            sleeve[symbol] = qty
            statements.append(("INSERT INTO sleeves VALUES (?, ?, ?)", (model, symbol, qty)))
        return statements

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def _stored_price(data: Mapping[str, Any]) -> float:
    """The price of a fill's stored trade line (`recording.trade_data`, or an older version's
    form); 0.0 when the stored line is not a trade record, as when it had no price."""
    try:
        return recording.stored_trade(data).price
    except (RecordError, TypeError):
        return 0.0
