"""A small Alpaca-compatible HTTP server for tests, spoken to by the real alpaca-py SDK.

    with FakeAlpaca(cash=10_000, prices={"SPY": 500.0}) as fake:
        trading = TradingClient("PKTEST", "SKTEST", paper=True, url_override=fake.url)
        data = StockHistoricalDataClient("PKTEST", "SKTEST", url_override=fake.url)

Standard library only; binds 127.0.0.1 on an ephemeral port; one daemon thread serves requests
(each request in its own daemon thread); quiet (nothing is logged to stderr). Both the trading
API and the market-data API are served from the same base URL, because alpaca-py builds every
URL as ``base_url + "/v2" + path``.

What is simulated
-----------------
* Auth: every request needs ``APCA-API-KEY-ID`` / ``APCA-API-SECRET-KEY`` equal to the configured
  keys, else 401 ``{"code": 40110000, "message": "request is not authorized"}``.
* A cash account (multiplier 1, no margin, no shorting): ``buying_power`` is cash minus what open
  buy orders reserve. Orders: market and limit, ``day`` or ``gtc``, fractional qty (``day`` only),
  validation (422), insufficient buying power / qty (403, with Alpaca's extra fields), duplicate
  ``client_order_id`` (422), cancel (204), list/filter, lookup by id or client id.
* Fills at ``prices[symbol]`` (limit orders only when marketable), updating cash, position qty
  and average entry price, ``filled_qty``/``filled_avg_price`` and timestamps; see ``fill_mode``.
  Like the real API, the POST response shows the order as it was accepted (``filled_qty`` "0");
  a fill is visible only on a later read.
* Clock (``market_open`` decides ``is_open``), calendar (weekdays 09:30-16:00 unless overridden),
  daily bars (with ``next_page_token`` paging), latest trade and latest quote.
* Scripted faults: error responses, "accepted but the response failed", slow/hung responses,
  an order accepted and then rejected (``reject_after_accepting``).

What is not simulated
---------------------
Holidays and early closes (unless you set ``calendar``), order expiry at the close, notional,
stop, trailing, bracket/OCO/OTO and option orders, replace (PATCH), shorting, margin, PDT and
wash-trade checks, fees, intraday P/L (``change_today`` and the intraday fields are "0"), bar
timeframes other than 1Day, SIP-subscription errors, websockets, rate limiting (script a 429).

State is plain attributes guarded by one lock; tests may read it at any time and assign simple
values (``fake.prices["SPY"] = 510``, ``fake.market_open = False``) directly.
"""
from __future__ import annotations

import json
import math
import random
import threading
import traceback
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from datetime import time as dtime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")
OPEN_STATUSES = frozenset({"new", "accepted", "pending_new", "partially_filled", "accepted_for_bidding",
                           "pending_cancel", "pending_replace", "held"})
BarsFn = Callable[[str, date, date], "list[tuple[date, float]]"]
Reply = tuple[int, Any, str | None]   # status, body (dict/list -> JSON, str -> text, None -> empty), type


@dataclass
class _Script:
    """One scripted fault or hang: matches ``method`` and a path prefix, used ``count`` times."""
    method: str
    path_prefix: str
    count: int
    status: int = 0
    body: Any = None
    content_type: str | None = None
    seconds: float = 0.0
    then_process: bool = True

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method) and path.startswith(self.path_prefix)


class FakeAlpaca:
    """In-process fake of Alpaca's trading + market-data REST APIs (see the module docstring).

    Attributes (state; read freely, mutate under ``with fake.lock:`` if you do more than assign):
        url: ``"http://127.0.0.1:PORT"`` once started.
        prices: last trade price per symbol; used for fills, latest trade/quote and default bars.
            Symbols missing here are "unknown assets" (orders for them get a 422).
        market_open: what ``/v2/clock`` reports; orders fill only while it is True.
        calendar: ``None`` (weekdays, 09:30-16:00 New York, no holidays) or a list of
            ``(date, "HH:MM", "HH:MM")`` sessions served by ``/v2/calendar`` and used by the clock
            and the default bars. /v2/calendar without start/end covers a year either side of today.
        now: callable giving the current aware datetime (defaults to the real UTC time); used for
            the clock, order timestamps and the end of the default bar history.
        cash: account cash in dollars (floats; rendered as JSON strings like Alpaca does).
        positions: ``symbol -> (qty, avg_entry_price)``; qty < 0 is shown as a short.
        orders: ``order id -> record`` with Python values: id, client_order_id, symbol, side, qty,
            type, limit_price, time_in_force, extended_hours, status, filled_qty,
            filled_avg_price, created_at, updated_at, submitted_at, filled_at, canceled_at
            (datetimes), hold (True: never filled automatically), parts (partial steps done).
        fill_mode: "immediate" (fill everything fillable on every request, including the POST
            itself), "partial" (fill ``partial_steps`` equal parts, one per later GET of that
            order by id / client id or per GET /v2/orders), "never" (orders stay open; use
            ``fill_order``).
        partial_steps: number of parts in "partial" mode (default 2).
        bars_page_size: most bars per /v2/stocks/bars page (default 10 000, as Alpaca); lower it
            to make the SDK follow ``next_page_token``.
        requests: ``(method, raw path with query)`` of every request received, in order.
        auth_failures: number of requests rejected with 401.
        errors: tracebacks of exceptions inside the fake (answered as 500); should stay empty.
    """

    def __init__(self, *, cash: float = 100_000.0, prices: dict[str, float] | None = None,
                 api_key: str = "PKTEST", secret_key: str = "SKTEST", bars: BarsFn | None = None) -> None:
        self.api_key, self.secret_key, self.bars = api_key, secret_key, bars
        self.lock = threading.RLock()
        self.url = ""
        self.prices: dict[str, float] = dict(prices or {})
        self.market_open = True
        self.calendar: list[tuple[date, str, str]] | None = None
        self.now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
        self.cash = float(cash)
        self.last_equity = float(cash)
        self.positions: dict[str, tuple[float, float]] = {}
        self.orders: dict[str, dict] = {}
        self.fill_mode = "immediate"
        self.partial_steps = 2
        self.bars_page_size = 10_000
        self.requests: list[tuple[str, str]] = []
        self.auth_failures = 0
        self.errors: list[str] = []
        self._posts: list[str | None] = []          # client_order_id of each POST /v2/orders seen
        self._faults: list[_Script] = []
        self._hangs: list[_Script] = []
        self._accept_fail: list[_Script] = []
        self._reject_later: list[str] = []          # symbols whose next accepted order is rejected
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "FakeAlpaca":
        """Bind 127.0.0.1 on an ephemeral port, serve in a daemon thread, set ``url``."""
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="FakeAlpaca", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket; wakes hung handlers (their replies are dropped)."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = self._thread = None

    def __enter__(self) -> "FakeAlpaca":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ scripting
    def fail_next(self, method: str, path_prefix: str, status: int, body: str | dict, *, count: int = 1,
                  content_type: str | None = None) -> None:
        """Answer the next ``count`` requests matching ``method`` ("*" = any) and a path prefix
        (e.g. "/v2/orders") with ``status`` and ``body`` instead of processing them. Checked before
        auth, like a gateway. Content type defaults to JSON for dict/list bodies, text/html for
        strings starting with "<", text/plain otherwise."""
        with self.lock:
            self._faults.append(_Script(method.upper(), path_prefix, count, status, body, content_type))

    def accept_then_fail(self, status: int = 504, *, count: int = 1, body: str | dict | None = None) -> None:
        """The next ``count`` POST /v2/orders that would succeed create the order (and may fill
        it), but the client gets ``status`` (default body: an nginx-style HTML error page).
        Rejected POSTs (422/403) are answered normally and do not use this up."""
        with self.lock:
            self._accept_fail.append(_Script("POST", "/v2/orders", count, status, body))

    def reject_after_accepting(self, symbol: str, *, count: int = 1) -> None:
        """The next ``count`` orders for ``symbol`` that pass validation are accepted (the POST
        answers 200, status "new" or "accepted") and rejected right after, as Alpaca does when
        its checks or the venue refuse an order asynchronously: a later read shows status
        "rejected" and a ``failed_at``, nothing filled. (Alpaca's order object carries no reason.)"""
        with self.lock:
            self._reject_later.extend([symbol] * count)

    def hang_next(self, method: str, path_prefix: str, seconds: float, *, count: int = 1,
                  then_process: bool = True) -> None:
        """Hold the reply to the next ``count`` matching requests for ``seconds`` (so a client
        timeout fires). ``then_process=True``: the request is processed at once (a POST order
        exists immediately) and the reply is sent late; ``then_process=False``: after the wait
        the connection is closed with no reply and nothing is processed."""
        with self.lock:
            self._hangs.append(_Script(method.upper(), path_prefix, count, seconds=seconds,
                                       then_process=then_process))

    def change_position(self, symbol: str, qty: float, avg_price: float | None = None, *,
                        adjust_cash: bool = True) -> None:
        """A manual trade in the dashboard: set the position in ``symbol`` to ``qty`` (0 removes
        it) behind the bot's back. The traded difference is valued at ``prices[symbol]`` (or
        ``avg_price``) and, with ``adjust_cash``, moves cash. ``avg_price`` sets the average entry
        price; otherwise it is updated as a fill would."""
        with self.lock:
            old_qty, old_avg = self.positions.get(symbol, (0.0, 0.0))
            price = self.prices.get(symbol, avg_price if avg_price is not None else old_avg)
            delta = qty - old_qty
            if adjust_cash:
                self.cash -= delta * price
            if abs(qty) < 1e-9:
                self.positions.pop(symbol, None)
                return
            if avg_price is None:
                avg_price = (old_qty * old_avg + delta * price) / qty if abs(qty) > abs(old_qty) else old_avg
            self.positions[symbol] = (float(qty), float(avg_price))

    def add_open_order(self, client_order_id: str, symbol: str, side: str, qty: float, *,
                       limit_price: float | None = None) -> dict:
        """An open order the bot did not place (market, or limit if ``limit_price``). It is never
        filled automatically (only by ``fill_order``) and can be canceled. Returns its JSON."""
        with self.lock:
            order = self._new_order(client_order_id, symbol, side, float(qty),
                                    "limit" if limit_price is not None else "market", limit_price, "day", False)
            order["hold"] = True
            return self._order_json(order)

    def fill_order(self, order_or_client_id: str, qty: float | None = None, price: float | None = None) -> dict:
        """Fill an open order now (by id or client id): ``qty`` shares (default: the rest) at
        ``price`` (default ``prices[symbol]``), whatever ``fill_mode``/``market_open`` say."""
        with self.lock:
            order = self.orders.get(order_or_client_id) or self._by_client_id(order_or_client_id)
            if order is None or order["status"] not in OPEN_STATUSES:
                raise KeyError(f"no open order {order_or_client_id!r}")
            left = order["qty"] - order["filled_qty"]
            self._fill(order, left if qty is None else min(qty, left),
                       self.prices[order["symbol"]] if price is None else price)
            return self._order_json(order)

    # ------------------------------------------------------------------ inspection
    def post_count(self, client_order_id: str | None = None) -> int:
        """POST /v2/orders received (including faulted/hung ones), optionally for one client id."""
        with self.lock:
            return sum(1 for c in self._posts if client_order_id is None or c == client_order_id)

    def order_by_client_id(self, client_order_id: str) -> dict | None:
        """The stored record of the order with that client id, or None."""
        with self.lock:
            return self._by_client_id(client_order_id)

    # ------------------------------------------------------------------ request handling
    def _handle(self, h: "_Handler") -> None:
        method, raw = h.command, h.path
        parts = urlsplit(raw)
        path = parts.path
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        with self.lock:
            self.requests.append((method, raw))
            if method == "POST" and path == "/v2/orders":
                try:
                    cid = json.loads(body or b"{}").get("client_order_id")
                except (ValueError, AttributeError):
                    cid = None
                self._posts.append(cid)
            hang = self._take(self._hangs, method, path)
            vanish = hang is not None and not hang.then_process
            fault = None if vanish else self._take(self._faults, method, path)
        if vanish:
            self._stopping.wait(hang.seconds)
            h.close_connection = True
            return
        if fault is not None:
            reply: Reply = (fault.status, fault.body, fault.content_type)
        else:
            try:
                with self.lock:
                    reply = self._dispatch(method, path, query, body, h.headers)
            except Exception:   # a bug in the fake: answer 500 and keep the traceback
                self.errors.append(traceback.format_exc())
                reply = (500, {"code": 50010000, "message": "FakeAlpaca internal error"}, None)
        if hang is not None:
            if self._stopping.wait(hang.seconds):
                return
        _send(h, *reply)

    @staticmethod
    def _take(scripts: list[_Script], method: str, path: str) -> _Script | None:
        for s in scripts:
            if s.matches(method, path):
                s.count -= 1
                if s.count <= 0:
                    scripts.remove(s)
                return s
        return None

    def _dispatch(self, method: str, path: str, q: dict[str, str], body: bytes, headers: Any) -> Reply:
        if (headers.get("APCA-API-KEY-ID") != self.api_key
                or headers.get("APCA-API-SECRET-KEY") != self.secret_key):
            self.auth_failures += 1
            return _error(401, 40110000, "request is not authorized")
        if self.fill_mode == "immediate":
            self._fill_all()
        route = (method, path)
        if route == ("GET", "/v2/account"):
            return 200, self._account_json(), None
        if route == ("GET", "/v2/positions"):
            return 200, [self._position_json(s) for s in sorted(self.positions)], None
        if method == "GET" and path.startswith("/v2/positions/"):
            symbol = path.rsplit("/", 1)[1]
            if symbol not in self.positions:
                return _error(404, 40410000, "position does not exist")
            return 200, self._position_json(symbol), None
        if route == ("POST", "/v2/orders"):
            return self._post_order(body)
        if route == ("GET", "/v2/orders"):
            return self._list_orders(q)
        if route == ("DELETE", "/v2/orders"):
            return self._cancel_all()
        if route == ("GET", "/v2/orders:by_client_order_id"):
            return self._read_order(self._by_client_id(q.get("client_order_id", "")))
        if path.startswith("/v2/orders/") and method in ("GET", "DELETE"):
            order = self.orders.get(path.rsplit("/", 1)[1])
            return self._read_order(order) if method == "GET" else self._cancel(order)
        if route == ("GET", "/v2/clock"):
            return 200, self._clock_json(), None
        if route == ("GET", "/v2/calendar"):
            return self._calendar(q)
        if route == ("GET", "/v2/stocks/bars"):
            return self._bars(q)
        if route == ("GET", "/v2/stocks/trades/latest"):
            return 200, {"trades": {s: self._trade_json(s) for s in _symbols(q) if s in self.prices}}, None
        if route == ("GET", "/v2/stocks/quotes/latest"):
            return 200, {"quotes": {s: self._quote_json(s) for s in _symbols(q) if s in self.prices}}, None
        return _error(404, 40410000, f"endpoint not found (FakeAlpaca does not simulate {method} {path})")

    # ------------------------------------------------------------------ account and positions
    def _reserved(self) -> float:
        return sum((o["qty"] - o["filled_qty"]) * (o["limit_price"] or self.prices.get(o["symbol"], 0.0))
                   for o in self.orders.values() if o["side"] == "buy" and o["status"] in OPEN_STATUSES)

    def _held_for_sells(self, symbol: str) -> tuple[float, list[str]]:
        open_sells = [o for o in self.orders.values()
                      if o["symbol"] == symbol and o["side"] == "sell" and o["status"] in OPEN_STATUSES]
        return sum(o["qty"] - o["filled_qty"] for o in open_sells), [o["id"] for o in open_sells]

    def _account_json(self) -> dict:
        values = {s: q * self.prices.get(s, avg) for s, (q, avg) in self.positions.items()}
        long_mv = sum(v for v in values.values() if v > 0)
        short_mv = sum(v for v in values.values() if v < 0)
        equity = self.cash + long_mv + short_mv
        bp = _s(max(self.cash - self._reserved(), 0.0))
        return {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"fake-alpaca/account/{self.api_key}")),
            "account_number": "PA3FAKE00001", "status": "ACTIVE", "crypto_status": "ACTIVE",
            "currency": "USD", "buying_power": bp, "regt_buying_power": bp, "daytrading_buying_power": "0",
            "effective_buying_power": bp, "non_marginable_buying_power": bp, "options_buying_power": bp,
            "bod_dtbp": "0", "cash": _s(self.cash), "accrued_fees": "0", "pending_transfer_in": "0",
            "portfolio_value": _s(equity), "pattern_day_trader": False, "trading_blocked": False,
            "transfers_blocked": False, "account_blocked": False, "created_at": "2024-01-02T14:30:00.000000Z",
            "trade_suspended_by_user": False, "multiplier": "1", "shorting_enabled": False,
            "equity": _s(equity), "last_equity": _s(self.last_equity), "long_market_value": _s(long_mv),
            "short_market_value": _s(short_mv), "position_market_value": _s(long_mv - short_mv),
            "initial_margin": "0", "maintenance_margin": "0", "last_maintenance_margin": "0", "sma": "0",
            "daytrade_count": 0, "balance_asof": self.now().astimezone(NEW_YORK).date().isoformat(),
            "options_approved_level": 0, "options_trading_level": 0, "intraday_adjustments": "0",
            "pending_reg_taf_fees": "0",
        }

    def _position_json(self, symbol: str) -> dict:
        qty, avg = self.positions[symbol]
        price = self.prices.get(symbol, avg)
        cost, value = qty * avg, qty * price
        pl = value - cost
        plpc = _s(pl / abs(cost)) if cost else "0"
        held, _ = self._held_for_sells(symbol)
        money = {"avg_entry_price": _s(avg), "market_value": _s(value), "cost_basis": _s(cost),
                 "unrealized_pl": _s(pl), "unrealized_plpc": plpc, "unrealized_intraday_pl": "0",
                 "unrealized_intraday_plpc": "0", "current_price": _s(price), "lastday_price": _s(price),
                 "change_today": "0"}
        return {"asset_id": _asset_id(symbol), "symbol": symbol, "exchange": "NASDAQ",
                "asset_class": "us_equity", "asset_marginable": True, "qty": _s(qty),
                "side": "long" if qty >= 0 else "short", "qty_available": _s(qty - held),
                **money, "usd": money}

    # ------------------------------------------------------------------ orders
    def _post_order(self, body: bytes) -> Reply:
        try:
            req = json.loads(body or b"null")
            assert isinstance(req, dict)
        except (ValueError, AssertionError):
            return _error(400, 40010000, "request body format is invalid")
        symbol, side = req.get("symbol"), req.get("side")
        otype, tif = req.get("type", "market"), req.get("time_in_force")
        cid = req.get("client_order_id") or str(uuid.uuid4())
        if req.get("notional") is not None:
            return _error(422, 40010001, "notional orders are not simulated by FakeAlpaca")
        if not symbol or symbol not in self.prices:
            return _error(422, 40010001, f'asset "{symbol}" not found')
        if side not in ("buy", "sell"):
            return _error(422, 40010001, "side must be buy or sell")
        qty = _float(req.get("qty"))
        if qty is None or qty <= 0:
            return _error(422, 40010001, "qty must be > 0")
        if otype not in ("market", "limit"):
            return _error(422, 40010001, f"order type {otype!r} is not simulated by FakeAlpaca")
        limit = _float(req.get("limit_price"))
        if otype == "limit" and (limit is None or limit <= 0):
            return _error(422, 40010001, "limit_price is required for limit orders")
        if otype == "market" and req.get("limit_price") is not None:
            return _error(422, 40010001, "limit_price must not be set for market orders")
        if tif not in ("day", "gtc"):
            return _error(422, 40010001, f"time_in_force {tif!r} is not simulated by FakeAlpaca")
        if qty != int(qty) and tif != "day":
            return _error(422, 40010001, "fractional orders must be DAY orders")
        if len(cid) > 128:
            return _error(422, 40010001, "client_order_id must be no more than 128 characters")
        if self._by_client_id(cid) is not None:
            return _error(422, 40010001, "client_order_id must be unique")
        if side == "buy":
            cost, bp = qty * (limit or self.prices[symbol]), self.cash - self._reserved()
            if cost > bp + 1e-9:
                return 403, {"buying_power": _s(max(bp, 0.0)), "code": 40310000, "cost_basis": _s(cost),
                             "message": "insufficient buying power"}, None
        else:
            have = self.positions.get(symbol, (0.0, 0.0))[0]
            held, related = self._held_for_sells(symbol)
            available = max(have - held, 0.0)
            if qty > available + 1e-9:
                return 403, {"available": _s(available), "code": 40310000, "existing_qty": _s(have),
                             "held_for_orders": _s(held), "related_orders": related, "symbol": symbol,
                             "message": f"insufficient qty available for order "
                                        f"(requested: {_s(qty)}, available: {_s(available)})"}, None
        order = self._new_order(cid, symbol, side, qty, otype, limit, tif, bool(req.get("extended_hours")))
        accepted = self._order_json(order)          # the reply shows the order as accepted
        if symbol in self._reject_later:
            self._reject_later.remove(symbol)
            order["status"], order["hold"] = "rejected", True
            order["failed_at"] = order["updated_at"] = self.now()
        if self.fill_mode == "immediate":
            self._advance(order)
        fail = self._take(self._accept_fail, "POST", "/v2/orders")
        if fail is not None:
            return fail.status, fail.body if fail.body is not None else _html_error(fail.status), None
        return 200, accepted, None

    def _new_order(self, cid: str, symbol: str, side: str, qty: float, otype: str, limit: float | None,
                   tif: str, extended_hours: bool) -> dict:
        now = self.now()
        order = {"id": str(uuid.uuid4()), "client_order_id": cid, "symbol": symbol, "side": side,
                 "qty": qty, "type": otype, "limit_price": limit, "time_in_force": tif,
                 "extended_hours": extended_hours, "status": "new" if self.market_open else "accepted",
                 "filled_qty": 0.0, "filled_avg_price": None, "created_at": now, "updated_at": now,
                 "submitted_at": now, "filled_at": None, "canceled_at": None, "failed_at": None,
                 "hold": False, "parts": 0}
        self.orders[order["id"]] = order
        return order

    def _by_client_id(self, cid: str) -> dict | None:
        return next((o for o in self.orders.values() if o["client_order_id"] == cid), None)

    def _fillable(self, o: dict) -> bool:
        if o["hold"] or o["status"] not in OPEN_STATUSES or not self.market_open or o["symbol"] not in self.prices:
            return False
        price = self.prices[o["symbol"]]
        return (o["type"] == "market" or (o["side"] == "buy" and price <= o["limit_price"])
                or (o["side"] == "sell" and price >= o["limit_price"]))

    def _advance(self, o: dict) -> None:
        """One fill step for ``o`` if it can fill: all of it, or one part in "partial" mode."""
        if self.fill_mode == "never" or not self._fillable(o):
            return
        left = o["qty"] - o["filled_qty"]
        if self.fill_mode == "partial":
            o["parts"] += 1
            if o["parts"] < self.partial_steps:
                left = min(left, o["qty"] / self.partial_steps)
        self._fill(o, left, self.prices[o["symbol"]])

    def _fill_all(self) -> None:
        for o in list(self.orders.values()):
            self._advance(o)

    def _fill(self, o: dict, qty: float, price: float) -> None:
        if qty <= 0:
            return
        done = o["filled_qty"] + qty
        o["filled_avg_price"] = ((o["filled_avg_price"] or 0.0) * o["filled_qty"] + price * qty) / done
        o["filled_qty"] = round(done, 9)
        o["status"] = "filled" if o["filled_qty"] >= o["qty"] - 1e-9 else "partially_filled"
        o["updated_at"] = self.now()
        if o["status"] == "filled":
            o["filled_at"] = o["updated_at"]
        signed = qty if o["side"] == "buy" else -qty
        self.cash -= signed * price
        old_qty, old_avg = self.positions.get(o["symbol"], (0.0, 0.0))
        new_qty = round(old_qty + signed, 9)
        if abs(new_qty) < 1e-9:
            self.positions.pop(o["symbol"], None)
        elif old_qty == 0 or (old_qty > 0) != (new_qty > 0):
            self.positions[o["symbol"]] = (new_qty, price)
        elif abs(new_qty) > abs(old_qty):
            self.positions[o["symbol"]] = (new_qty, (old_qty * old_avg + signed * price) / new_qty)
        else:
            self.positions[o["symbol"]] = (new_qty, old_avg)

    def _read_order(self, order: dict | None) -> Reply:
        if order is None:
            return _error(404, 40410000, "order not found")
        if self.fill_mode == "partial":
            self._advance(order)
        return 200, self._order_json(order), None

    def _list_orders(self, q: dict[str, str]) -> Reply:
        status = q.get("status", "open")
        if status not in ("open", "closed", "all"):
            return _error(422, 40010001, "status must be open, closed or all")
        if self.fill_mode == "partial":
            self._fill_all()
        try:
            limit = min(int(q.get("limit", 50)), 500)
            after = _when(q["after"]) if q.get("after") else None
            until = _when(q["until"]) if q.get("until") else None
        except ValueError as e:
            return _error(422, 40010001, str(e))
        symbols = set(q["symbols"].split(",")) if q.get("symbols") else None
        picked = [o for o in self.orders.values()
                  if (status == "all" or (o["status"] in OPEN_STATUSES) == (status == "open"))
                  and (symbols is None or o["symbol"] in symbols)
                  and (not q.get("side") or o["side"] == q["side"])
                  and (after is None or o["submitted_at"] > after)
                  and (until is None or o["submitted_at"] < until)]
        if q.get("direction", "desc") == "desc":
            picked.reverse()                     # dicts keep insertion (= submission) order
        return 200, [self._order_json(o) for o in picked[:limit]], None

    def _cancel(self, order: dict | None) -> Reply:
        if order is None:
            return _error(404, 40410000, "order not found")
        if order["status"] not in OPEN_STATUSES:
            return _error(422, 42210000, f'order is already in "{order["status"]}" state')
        order["status"], order["canceled_at"] = "canceled", self.now()
        order["updated_at"] = order["canceled_at"]
        return 204, None, None

    def _cancel_all(self) -> Reply:
        out = []
        for o in list(self.orders.values()):
            if o["status"] in OPEN_STATUSES:
                self._cancel(o)
                out.append({"id": o["id"], "status": 200, "body": self._order_json(o)})
        return 207, out, None

    def _order_json(self, o: dict) -> dict:
        expires = datetime.combine(o["created_at"].astimezone(NEW_YORK).date(), dtime(16), NEW_YORK)
        return {
            "id": o["id"], "client_order_id": o["client_order_id"], "created_at": _ts(o["created_at"]),
            "updated_at": _ts(o["updated_at"]), "submitted_at": _ts(o["submitted_at"]),
            "filled_at": _ts(o["filled_at"]), "expired_at": None, "canceled_at": _ts(o["canceled_at"]),
            "failed_at": _ts(o.get("failed_at")), "replaced_at": None, "replaced_by": None, "replaces": None,
            "asset_id": _asset_id(o["symbol"]), "symbol": o["symbol"], "asset_class": "us_equity",
            "notional": None, "qty": _s(o["qty"]), "filled_qty": _s(o["filled_qty"]),
            "filled_avg_price": _s(o["filled_avg_price"]), "order_class": "", "order_type": o["type"],
            "type": o["type"], "side": o["side"],
            "position_intent": "buy_to_open" if o["side"] == "buy" else "sell_to_close",
            "time_in_force": o["time_in_force"], "limit_price": _s(o["limit_price"]), "stop_price": None,
            "status": o["status"], "extended_hours": o["extended_hours"], "legs": None,
            "trail_percent": None, "trail_price": None, "hwm": None, "subtag": None, "source": None,
            "expires_at": _ts(expires) if o["time_in_force"] == "day" else None,
        }

    # ------------------------------------------------------------------ clock and calendar
    def _sessions(self, first: date, last: date) -> list[tuple[date, str, str]]:
        if self.calendar is not None:
            return sorted(c for c in self.calendar if first <= c[0] <= last)
        days = (first + timedelta(n) for n in range((last - first).days + 1))
        return [(d, "09:30", "16:00") for d in days if d.weekday() < 5]

    def _clock_json(self) -> dict:
        now = self.now().astimezone(NEW_YORK)
        bounds = [(datetime.combine(d, dtime.fromisoformat(o), NEW_YORK),
                   datetime.combine(d, dtime.fromisoformat(c), NEW_YORK))
                  for d, o, c in self._sessions(now.date() - timedelta(7), now.date() + timedelta(60))]
        fallback = now + timedelta(days=1)
        if self.market_open:
            next_close = next((c for _, c in bounds if c > now), fallback)
            next_open = next((o for o, _ in bounds if o > next_close), next_close + timedelta(hours=17.5))
        else:
            next_open = next((o for o, _ in bounds if o > now), fallback)
            next_close = next((c for _, c in bounds if c > next_open), next_open + timedelta(hours=6.5))
        return {"timestamp": now.isoformat(), "is_open": self.market_open,
                "next_open": next_open.isoformat(), "next_close": next_close.isoformat()}

    def _calendar(self, q: dict[str, str]) -> Reply:
        today = self.now().astimezone(NEW_YORK).date()
        try:
            first = date.fromisoformat(q["start"][:10]) if q.get("start") else today - timedelta(365)
            last = date.fromisoformat(q["end"][:10]) if q.get("end") else today + timedelta(365)
        except ValueError as e:
            return _error(422, 40010001, str(e))
        return 200, [{"date": d.isoformat(), "open": o, "close": c, "session_open": "0400",
                      "session_close": "2000"} for d, o, c in self._sessions(first, last)], None

    # ------------------------------------------------------------------ market data
    def _bars(self, q: dict[str, str]) -> Reply:
        symbols = _symbols(q)
        if not symbols:
            return _error(400, 40010001, "symbols is required")
        if q.get("timeframe") not in ("1Day", "1D"):
            return _error(422, 42210000, "FakeAlpaca only simulates timeframe=1Day")
        if q.get("feed") and q["feed"] not in ("iex", "sip", "delayed_sip", "otc", "boats", "overnight"):
            return _error(400, 40010001, "invalid feed")
        now = self.now()
        try:
            start = _when(q["start"]) if q.get("start") else datetime.combine(
                now.astimezone(NEW_YORK).date(), dtime(), NEW_YORK)
            end = _when(q["end"]) if q.get("end") else now
            offset = int(q.get("page_token") or 0)
            limit = int(q.get("limit") or 10_000)
        except ValueError as e:
            return _error(422, 42210000, str(e))
        items: list[tuple[str, dict]] = []
        for symbol in sorted(symbols):
            series = (self.bars(symbol, start.astimezone(timezone.utc).date(), end.astimezone(timezone.utc).date())
                      if self.bars is not None else self._walk(symbol, start, end))
            bars = [b for b in _ohlc(symbol, series) if start <= _bar_time(b["_d"]) <= end]
            if q.get("sort") == "desc":
                bars.reverse()
            items += [(symbol, {k: v for k, v in b.items() if k != "_d"}) for b in bars]
        page = items[offset:offset + min(limit, self.bars_page_size)]
        out: dict[str, list[dict]] = {}
        for symbol, bar in page:
            out.setdefault(symbol, []).append(bar)
        more = offset + len(page) < len(items)
        return 200, {"bars": out, "next_page_token": str(offset + len(page)) if more else None}, None

    def _walk(self, symbol: str, start: datetime, end: datetime) -> list[tuple[date, float]]:
        """Deterministic gentle random walk over the sessions, ending at prices[symbol] on the
        last session up to today (the same history for every request)."""
        if symbol not in self.prices:
            return []
        today = self.now().astimezone(NEW_YORK).date()
        days = [d for d, _, _ in self._sessions(start.astimezone(NEW_YORK).date() - timedelta(7), today)]
        close, out = float(self.prices[symbol]), []
        for d in reversed(days):
            out.append((d, round(close, 4) if out else close))
            close /= 1 + random.Random(f"{symbol}/{d}").uniform(-0.01, 0.01)
        return out[::-1]

    def _trade_json(self, symbol: str) -> dict:
        return {"t": _ts(self.now()), "x": "V", "p": self.prices[symbol], "s": 100, "c": ["@"],
                "i": 52983525029461, "z": "C"}

    def _quote_json(self, symbol: str) -> dict:
        p = self.prices[symbol]
        return {"t": _ts(self.now()), "ax": "V", "ap": round(p + 0.01, 4), "as": 2, "bx": "V",
                "bp": round(p - 0.01, 4), "bs": 3, "c": ["R"], "z": "C"}


# ---------------------------------------------------------------------- HTTP plumbing
class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeAlpaca

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass   # quiet: clients that timed out and went away are expected here


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _serve(self) -> None:
        self.server.fake._handle(self)

    do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _send(h: BaseHTTPRequestHandler, status: int, body: Any, content_type: str | None) -> None:
    if body is None:
        data = b""
    elif isinstance(body, (dict, list)):
        data, content_type = json.dumps(body).encode(), content_type or "application/json; charset=utf-8"
    else:
        data = str(body).encode()
        content_type = content_type or ("text/html" if str(body).lstrip().startswith("<") else "text/plain")
    try:
        h.send_response(status)
        if data:
            h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)
    except OSError:
        pass   # the client gave up (timeout) before the reply


# ---------------------------------------------------------------------- JSON helpers
def _error(status: int, code: int, message: str) -> Reply:
    return status, {"code": code, "message": message}, None


def _html_error(status: int) -> str:
    text = f"{status} {HTTPStatus(status).phrase}"
    return (f"<html>\r\n<head><title>{text}</title></head>\r\n<body>\r\n<center><h1>{text}</h1></center>\r\n"
            f"<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")


def _s(x: float | None) -> str | None:
    """Alpaca's decimal strings: "100000", "1.5", "-0.25" (None stays null)."""
    if x is None:
        return None
    text = f"{round(float(x), 9):.9f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _float(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _ts(dt: datetime | None) -> str | None:
    """RFC 3339 in UTC with nanoseconds, as Alpaca writes order and market-data timestamps."""
    if dt is None:
        return None
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def _when(text: str) -> datetime:
    """A query timestamp: RFC 3339 (naive = UTC) or a bare YYYY-MM-DD (midnight UTC)."""
    dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _symbols(q: dict[str, str]) -> list[str]:
    return [s for s in q.get("symbols", "").split(",") if s]


def _asset_id(symbol: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"fake-alpaca/asset/{symbol}"))


def _bar_time(d: date) -> datetime:
    """Alpaca stamps a daily bar at midnight New York time (05:00Z or 04:00Z)."""
    return datetime.combine(d, dtime(), NEW_YORK)


def _ohlc(symbol: str, closes: list[tuple[date, float]]) -> list[dict]:
    """Deterministic daily bars around the given closes; open = previous close."""
    out, prev = [], None
    for d, close in sorted(closes):
        rnd = random.Random(f"{symbol}/{d}/bar")
        opened = close if prev is None else prev
        high = max(opened, close) * (1 + rnd.uniform(0, 0.005))
        low = min(opened, close) * (1 - rnd.uniform(0, 0.005))
        volume = rnd.randint(500_000, 5_000_000)
        out.append({"_d": d, "t": _bar_time(d).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "o": round(opened, 4), "h": round(high, 4), "l": round(low, 4), "c": close,
                    "v": volume, "n": volume // 120, "vw": round((high + low + close) / 3, 4)})
        prev = close
    return out
