"""The embedded simulated paper broker: cash, positions, market and limit orders.

Fills at the market price at submission plus adverse slippage, minus a per-order commission;
fractional quantities when enabled; a cash account (or a margin multiplier). Refuses what it
cannot fill with the broker's words (`Insufficient buying power`,
`insufficient qty available for order ...`) and changes nothing then. Limit orders that do not
cross stay open until their session closes (day orders). With a `path` the account lives in
SQLite and every order is one atomic transaction, so a restart or `kill -9` never resets or
forks it; without one (simulate) it lives in memory. It does not decide what to trade.
"""
from __future__ import annotations

import math
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from audit.writer import refuse_links, sqlite_files
from bot.core import calendar
from bot.core.clock import Clock
from bot.core.domain import AccountSnapshot, Fill, OrderAck, OrderRequest, OrderType, Side
from bot.core.errors import DataError, OrderRejected
from bot.core.ports import MarketData

_NAMESPACE = uuid.UUID("6f1c8a52-3d0e-4f57-9a51-2f0f5f2b7a10")
_EPS = 1e-9

_SCHEMA = """
CREATE TABLE IF NOT EXISTS account (id INTEGER PRIMARY KEY CHECK (id = 1), cash REAL NOT NULL, created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS positions (symbol TEXT PRIMARY KEY, qty REAL NOT NULL, avg_cost REAL NOT NULL);
CREATE TABLE IF NOT EXISTS orders (cid TEXT PRIMARY KEY, broker_id TEXT NOT NULL, symbol TEXT NOT NULL,
  side TEXT NOT NULL, qty REAL NOT NULL, order_type TEXT NOT NULL, limit_price REAL, ref_price REAL NOT NULL,
  model TEXT NOT NULL, status TEXT NOT NULL, reason TEXT, created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS fills (fill_id TEXT PRIMARY KEY, cid TEXT NOT NULL, symbol TEXT NOT NULL,
  side TEXT NOT NULL, qty REAL NOT NULL, price REAL NOT NULL, commission REAL NOT NULL,
  position_after REAL NOT NULL, nav_after REAL NOT NULL, pnl REAL, at TEXT NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class SimBrokerConfig:
    starting_cash: float = 100_000.0
    slippage_bps: float = 2.0
    commission: float = 0.0
    fractional: bool = True
    margin_multiplier: float = 1.0
    nyse_hours: bool = False  # refuse orders outside NYSE regular sessions


@dataclass(slots=True)
class _Order:
    request: OrderRequest
    broker_id: str
    status: str
    reason: str | None
    created: datetime


class SimulatedBroker:
    """The paper account; one instance per process, the only writer of its database."""

    def __init__(self, market: MarketData, clock: Clock, config: SimBrokerConfig,
                 path: Path | None = None) -> None:
        self._market = market
        self._clock = clock
        self.config = config
        self._slip = config.slippage_bps / 10_000.0
        self.cash = config.starting_cash
        self.positions: dict[str, list[float]] = {}  # symbol -> [qty, avg_cost]
        self._last_price: dict[str, float] = {}
        self._orders: dict[str, _Order] = {}
        self._working: set[str] = set()  # limit orders still working
        self._fills: dict[str, list[Fill]] = {}
        self._db: sqlite3.Connection | None = None
        if path is not None:
            self._open(path)

    # -- persistence ---------------------------------------------------------------------
    def _open(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        refuse_links(path.parent, sqlite_files(path.name))  # SQLite would follow a link
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(_SCHEMA)
        self._db = db
        row = db.execute("SELECT cash FROM account WHERE id=1").fetchone()
        if row is None:
            db.execute("INSERT INTO account VALUES (1, ?, ?)",
                       (self.cash, self._clock.now().isoformat()))
            return
        self.cash = row[0]
        for sym, qty, avg in db.execute("SELECT symbol, qty, avg_cost FROM positions"):
            self.positions[sym] = [qty, avg]
            self._last_price[sym] = avg
        for (cid, bid, sym, side, qty, otype, limit, ref, model, status, reason,
             created) in db.execute("SELECT * FROM orders"):
            req = OrderRequest(cid, sym, Side(side), qty, ref, model, OrderType(otype), limit)
            self._orders[cid] = _Order(req, bid, status, reason, datetime.fromisoformat(created))
            if status == "new":
                self._working.add(cid)
        for (fid, cid, sym, side, qty, price, comm, pos_after, nav_after, pnl,
             _at) in db.execute("SELECT * FROM fills ORDER BY rowid"):
            self._fills.setdefault(cid, []).append(
                Fill(fid, cid, sym, Side(side), qty, price, comm, pos_after, nav_after, pnl))
            self._last_price[sym] = price

    def _persist(self, order: _Order, fill: Fill | None) -> None:
        db = self._db
        if db is None:
            return
        r = order.request
        with db:
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT OR REPLACE INTO orders VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                       (r.client_order_id, order.broker_id, r.symbol, r.side.value, r.quantity,
                        r.order_type.value, r.limit_price, r.reference_price, r.model,
                        order.status, order.reason, order.created.isoformat()))
            if fill is not None:
                db.execute("INSERT INTO fills VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                           (fill.fill_id, fill.client_order_id, fill.symbol, fill.side.value,
                            fill.quantity, fill.price, fill.commission, fill.position_after,
                            fill.nav_after, fill.realized_pnl, self._clock.now().isoformat()))
                db.execute("UPDATE account SET cash=? WHERE id=1", (self.cash,))
                pos = self.positions.get(fill.symbol)
                if pos is None:
                    db.execute("DELETE FROM positions WHERE symbol=?", (fill.symbol,))
                else:
                    db.execute("INSERT OR REPLACE INTO positions VALUES (?,?,?)",
                               (fill.symbol, pos[0], pos[1]))

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    # -- the Broker port -----------------------------------------------------------------
    def account(self) -> AccountSnapshot:
        now = self._clock.now()
        if self._working:
            self._work_open_orders(now)
        price = self._price_or_last
        prices, positions, nav = {}, {}, self.cash
        for sym, (qty, _avg) in self.positions.items():
            prices[sym] = p = price(sym, now)
            positions[sym] = qty
            nav += qty * p
        return AccountSnapshot(round(nav, 2), round(self.cash, 2),
                               round(self._buying_power(nav), 2), positions, prices)

    def submit_order(self, order: OrderRequest) -> OrderAck:
        existing = self._orders.get(order.client_order_id)
        if existing is not None:  # idempotent: the first answer stands
            if existing.status == "rejected":
                raise OrderRejected(existing.reason or "rejected")
            return OrderAck(order.client_order_id, existing.broker_id, existing.status)
        now = self._clock.now()
        rec = _Order(order, str(uuid.uuid5(_NAMESPACE, order.client_order_id)), "accepted", None, now)
        self._orders[order.client_order_id] = rec
        try:
            self._validate(order, now)
            fill = self._try_fill(rec, now)
        except OrderRejected as exc:
            rec.status, rec.reason = "rejected", exc.reason
            self._persist(rec, None)
            raise
        if fill is None:
            rec.status = "new"
            self._working.add(order.client_order_id)
            self._persist(rec, None)
            return OrderAck(order.client_order_id, rec.broker_id, "new")
        self._persist(rec, fill)
        return OrderAck(order.client_order_id, rec.broker_id, "accepted")

    def fills(self, client_order_id: str, recorded_qty: float = 0.0,
              recorded_value: float = 0.0) -> list[Fill]:
        if self._working:
            self._work_open_orders(self._clock.now())
        out, done = [], 0.0
        for f in self._fills.get(client_order_id, ()):
            done += f.quantity
            if done > recorded_qty + _EPS:
                out.append(f)
        return out

    def order_status(self, client_order_id: str) -> OrderAck | None:
        rec = self._orders.get(client_order_id)
        return OrderAck(client_order_id, rec.broker_id, rec.status, rec.reason) if rec else None

    def open_orders(self) -> list[str]:
        if self._working:
            self._work_open_orders(self._clock.now())
        return sorted(self._working)

    def cancel_order(self, client_order_id: str) -> None:
        rec = self._orders.get(client_order_id)
        if rec is not None and rec.status == "new":
            rec.status = "canceled"
            self._working.discard(client_order_id)
            self._persist(rec, None)

    # -- internals -----------------------------------------------------------------------
    def _buying_power(self, nav: float) -> float:
        return max(0.0, self.cash + (self.config.margin_multiplier - 1.0) * nav)

    def _price_or_last(self, symbol: str, now: datetime) -> float:
        try:
            price = self._market.price(symbol, now)
        except DataError:
            return self._last_price.get(symbol, 0.0)
        self._last_price[symbol] = price
        return price

    def _validate(self, order: OrderRequest, now: datetime) -> None:
        q = order.quantity
        if not (q > 0 and math.isfinite(q)):
            raise OrderRejected(f"qty must be > 0, got {q}")
        if not self.config.fractional and abs(q - round(q)) > _EPS:
            raise OrderRejected(f"fractional orders are not enabled (qty {q}); set BOT_FRACTIONAL=true")
        if order.order_type is OrderType.LIMIT and not (order.limit_price and order.limit_price > 0):
            raise OrderRejected("limit orders need a limit price > 0")
        if self.config.nyse_hours and not calendar.is_open(now):
            raise OrderRejected("market is closed")
        if order.side is Side.SELL:
            held = self.positions.get(order.symbol, (0.0, 0.0))[0]
            if q > held + _EPS:
                raise OrderRejected(
                    f"insufficient qty available for order (requested: {q:g}, available: {held:g})")

    def _try_fill(self, rec: _Order, now: datetime) -> Fill | None:
        """Fill now when marketable; None leaves a limit order open. Raises OrderRejected."""
        order = rec.request
        try:
            market = self._market.price(order.symbol, now)
        except DataError as exc:
            raise OrderRejected(f"no price for {order.symbol}: {exc.reason}") from exc
        self._last_price[order.symbol] = market
        buy = order.side is Side.BUY
        price = round(market * (1 + self._slip) if buy else market * (1 - self._slip), 4)
        if order.order_type is OrderType.LIMIT:
            limit = order.limit_price or 0.0
            if (buy and price > limit) or (not buy and price < limit):
                return None
        q = order.quantity
        value = round(q * price, 2)
        fee = self.config.commission
        pos = self.positions.get(order.symbol)
        if buy:
            nav = self.cash + sum(p[0] * self._last_price.get(s, p[1]) for s, p in self.positions.items())
            if value + fee > self._buying_power(nav) + 0.005:
                raise OrderRejected("Insufficient buying power")
            self.cash -= value + fee
            if pos is None:
                self.positions[order.symbol] = [q, (value + fee) / q]
            else:
                total = pos[0] + q
                pos[1] = (pos[0] * pos[1] + value + fee) / total
                pos[0] = total
            pnl = None
        else:
            assert pos is not None  # _validate checked the quantity
            self.cash += value - fee
            pnl = round(value - q * pos[1] - fee, 2)
            pos[0] = round(pos[0] - q, 9)
            if abs(pos[0]) < _EPS:
                del self.positions[order.symbol]
        rec.status = "filled"
        after = self.positions.get(order.symbol)
        nav_after = self.cash + sum(p[0] * self._last_price.get(s, p[1]) for s, p in self.positions.items())
        fills = self._fills.setdefault(order.client_order_id, [])
        fill = Fill(f"{order.client_order_id}-{len(fills) + 1}", order.client_order_id,
                    order.symbol, order.side, q, price, fee, after[0] if after else 0.0,
                    round(nav_after, 2), pnl)
        fills.append(fill)
        return fill

    def _work_open_orders(self, now: datetime) -> None:
        if not self._working:
            return
        for cid in sorted(self._working):
            rec = self._orders[cid]
            if rec.status != "new":
                self._working.discard(cid)
                continue
            day = rec.created.astimezone(calendar.NY).date()
            session = calendar.session(day)
            # day orders: they end at their session's close, or with the day when it had none
            ended = now >= session[1] if session else now.astimezone(calendar.NY).date() > day
            if ended:
                rec.status = "expired"
                self._working.discard(cid)
                self._persist(rec, None)
                continue
            try:
                fill = self._try_fill(rec, now)
            except OrderRejected as exc:
                rec.status, rec.reason = "rejected", exc.reason
                self._working.discard(cid)
                self._persist(rec, None)
                continue
            if fill is not None:
                self._working.discard(cid)
                self._persist(rec, fill)
