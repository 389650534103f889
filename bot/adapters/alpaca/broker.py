"""Alpaca paper trading behind the `Broker` port (alpaca-py `TradingClient(paper=True)`).

Orders are idempotent by client order id: one POST per order, never repeated. After a timeout,
a 5xx, a 429 or a "client_order_id must be unique" 422, the order is looked up with
`get_order_by_client_id`: found means it was placed (adopted); 404 means it was not, and the
order is reported not placed (the next cycle plans again, with a new slot and a new id).

Fills are followed by polling the order (see `fills`): Alpaca reports a running `filled_qty` and
`filled_avg_price`, so each poll that sees the quantity grow yields one fill for the increment,
its price derived from the two averages. Alpaca's strings become floats here, once.
"""
from __future__ import annotations

from typing import Any

from bot.adapters.alpaca.edge import BrokerRefused, Reader, once
from bot.core.clock import Clock
from bot.core.domain import AccountSnapshot, Fill, OrderAck, OrderRequest, OrderType, Side
from bot.core.errors import OrderRejected, RetryLater, SkipAndRecord

_EPS = 1e-9
_DUPLICATE = "client_order_id must be unique"


class OrderNotPlaced(SkipAndRecord):
    """The POST failed and the broker has no such order: nothing was placed."""


def _f(value: Any, default: float = 0.0) -> float:
    return default if value in (None, "") else float(value)


class AlpacaBroker:
    """The Alpaca paper account. Keeps a small cache of positions for fill records."""

    def __init__(self, client: Any, clock: Clock, read: Reader) -> None:
        self._client = client
        self._clock = clock
        self._read = read
        self._positions: dict[str, tuple[float, float]] = {}  # symbol -> (qty, avg entry)
        self._nav = 0.0
        self._just_read: tuple[str, Any, Any] | None = None  # (cid, order, when) `fills` read

    # -- account -------------------------------------------------------------------------
    def account(self) -> AccountSnapshot:
        acct = self._read("get account", self._client.get_account)
        raw_positions = self._read("get positions", self._client.get_all_positions)
        positions, prices = {}, {}
        self._positions = {}
        for p in raw_positions:
            qty = _f(p.qty)
            if p.side is not None and str(getattr(p.side, "value", p.side)) == "short":
                qty = -abs(qty)
            positions[p.symbol] = qty
            prices[p.symbol] = _f(p.current_price, _f(p.avg_entry_price))
            self._positions[p.symbol] = (qty, _f(p.avg_entry_price))
        self._nav = _f(acct.equity)
        return AccountSnapshot(round(self._nav, 2), round(_f(acct.cash), 2),
                               round(_f(acct.buying_power), 2), positions, prices)

    # -- orders --------------------------------------------------------------------------
    def submit_order(self, order: OrderRequest) -> OrderAck:
        from alpaca.trading.enums import OrderSide, TimeInForce
        from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest

        common = dict(symbol=order.symbol, qty=order.quantity, client_order_id=order.client_order_id,
                      side=OrderSide.BUY if order.side is Side.BUY else OrderSide.SELL,
                      time_in_force=TimeInForce.DAY)
        request = (LimitOrderRequest(limit_price=order.limit_price, **common)
                   if order.order_type is OrderType.LIMIT else MarketOrderRequest(**common))
        try:
            placed = once("submit order", lambda: self._client.submit_order(request))
        except BrokerRefused as exc:
            if _DUPLICATE not in exc.message:
                raise OrderRejected(f"{exc.message} (HTTP {exc.status})") from exc
            return self._adopt(order.client_order_id, f"duplicate client order id: {exc.message}")
        except RetryLater as exc:  # timeout, 5xx, 429: placed or not? ask, never re-POST
            return self._adopt(order.client_order_id, str(exc))
        return OrderAck(order.client_order_id, str(placed.id), _status(placed))

    def _adopt(self, cid: str, why: str) -> OrderAck:
        ack = self.order_status(cid)
        if ack is None:
            raise OrderNotPlaced(f"not placed ({why}); the next cycle plans again")
        return ack

    def order_status(self, client_order_id: str) -> OrderAck | None:
        """Asked right after `fills` for the same order, it answers from that same read."""
        memo, self._just_read = self._just_read, None
        fresh = memo is not None and memo[0] == client_order_id and \
            (self._clock.now() - memo[2]).total_seconds() < 1.0
        o = memo[1] if fresh else self._lookup(client_order_id)  # type: ignore[index]
        if o is None:
            return None
        status = _status(o)
        return OrderAck(client_order_id, str(o.id), status,
                        _rejection(o) if status == "rejected" else None)

    def _lookup(self, cid: str) -> Any | None:
        try:
            return self._read("get order", lambda: self._client.get_order_by_client_id(cid))
        except BrokerRefused as exc:
            if exc.status == 404:
                return None
            raise

    def open_orders(self) -> list[str]:
        from alpaca.trading.enums import QueryOrderStatus
        from alpaca.trading.requests import GetOrdersRequest

        orders = self._read("list open orders", lambda: self._client.get_orders(
            GetOrdersRequest(status=QueryOrderStatus.OPEN, limit=500)))
        return sorted(o.client_order_id for o in orders)

    def cancel_order(self, client_order_id: str) -> None:
        o = self._lookup(client_order_id)
        if o is None or _status(o) in ("filled", "canceled", "expired", "rejected"):
            return
        try:
            once("cancel order", lambda: self._client.cancel_order_by_id(o.id))
        except BrokerRefused as exc:  # 422: no longer cancelable (it filled meanwhile)
            if exc.status not in (404, 422):
                raise

    # -- fills ---------------------------------------------------------------------------
    def fills(self, client_order_id: str, recorded_qty: float = 0.0,
              recorded_value: float = 0.0) -> list[Fill]:
        """One fill for what the order filled beyond `recorded_qty` shares (worth
        `recorded_value`), priced from the running averages; id `<cid>@<filled qty>`."""
        o = self._lookup(client_order_id)
        self._just_read = (client_order_id, o, self._clock.now())
        if o is None:
            return []
        filled = _f(o.filled_qty)
        if filled <= recorded_qty + _EPS:
            return []
        qty = round(filled - recorded_qty, 9)
        total = _f(o.filled_avg_price) * filled
        price = round((total - recorded_value) / qty, 4) if recorded_qty > _EPS else \
            round(_f(o.filled_avg_price), 4)
        side = Side.BUY if str(getattr(o.side, "value", o.side)) == "buy" else Side.SELL
        held, avg = self._positions.get(o.symbol, (0.0, 0.0))
        after = round(held + (qty if side is Side.BUY else -qty), 9)
        pnl = round((price - avg) * qty, 2) if side is Side.SELL and held > _EPS else None
        new_avg = avg if side is Side.SELL else ((held * avg + qty * price) / after if after else 0.0)
        self._positions[o.symbol] = (after, new_avg)
        try:
            self._nav = _f(self._read("get account", self._client.get_account).equity)
        except RetryLater:
            pass  # keep the last known NAV; the fill itself is what matters
        return [Fill(f"{client_order_id}@{filled:g}", client_order_id, o.symbol, side, qty, price,
                     0.0, after, round(self._nav, 2), pnl)]

    def close(self) -> None:
        session = getattr(self._client, "_session", None)
        if session is not None:
            session.close()


def _status(o: Any) -> str:
    return str(getattr(o.status, "value", o.status))


def _rejection(o: Any) -> str:
    """What Alpaca says of an order it rejected: its order object has a status and a
    `failed_at`, and no reason field (the reason reaches only the dashboard and trade streams)."""
    when = o.failed_at.isoformat() if getattr(o, "failed_at", None) else "an unknown time"
    return f"Alpaca order {o.id} is rejected, failed at {when} (Alpaca gives no reason in the order)"
