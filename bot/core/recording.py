"""The one mapping from the bot's domain to the trail's records: an order, an ack, a fill, an
account become `OrderSubmitted`, `TradeExecuted`, `CycleCompleted`... here and nowhere else. The
submit path and crash recovery both build their records with these functions, so a record
written after a crash is the record the cycle would have written.

An order's intent (the order and its slot) is kept in the state store before it is sent, as
`intent_data`; recovery turns it back into the order with `intent_order`.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

from audit.records import AccountChecked, CycleCompleted, ModelDecided, OrderFailed, OrderSubmitted, TradeExecuted
from audit.timestamps import format_slot
from bot.core.domain import AccountSnapshot, Fill, OrderAck, OrderRequest, OrderType, Side
from bot.core.planning import RiskCheck
from models.base import Decision, History, Model


@dataclass(frozen=True, slots=True)
class Intent:
    """An order as the state store keeps it between intent and record: the order and its slot."""

    order: OrderRequest
    slot: datetime


def intent_data(order: OrderRequest, slot: datetime) -> dict[str, Any]:
    """The state store's form of an order about to be sent (JSON; also an order_error's
    `order_data`)."""
    return {"order_id": order.client_order_id, "symbol": order.symbol, "side": order.side.value,
            "quantity": order.quantity, "order_type": order.order_type.value,
            "limit_price": order.limit_price, "reference_price": order.reference_price,
            "model": order.model, "cycle_timestamp": format_slot(slot)}


def intent_order(client_order_id: str, data: Mapping[str, Any], slot: datetime) -> Intent | None:
    """The order and slot stored by `intent_data`; None when the store lacks them (`slot` is
    used when the stored one is missing)."""
    try:
        order = OrderRequest(
            client_order_id=client_order_id, symbol=data["symbol"], side=Side(data["side"]),
            quantity=data["quantity"], reference_price=data["reference_price"],
            model=data.get("model", "unknown"),
            order_type=OrderType(data.get("order_type", OrderType.MARKET.value)),
            limit_price=data.get("limit_price"))
    except (KeyError, TypeError, ValueError):
        return None
    return Intent(order, stored_slot(data, slot))


def stored_slot(data: Mapping[str, Any], default: datetime) -> datetime:
    """The slot an order's stored intent names, else `default`."""
    stored = data.get("cycle_timestamp")
    if isinstance(stored, str):
        try:
            return datetime.fromisoformat(stored).astimezone(timezone.utc)
        except ValueError:
            pass
    return default


def order_submitted(order: OrderRequest, ack: OrderAck, nav: float, slot: datetime) -> OrderSubmitted:
    return OrderSubmitted(
        order_id=order.client_order_id, symbol=order.symbol, side=order.side.value,
        quantity=order.quantity, price=order.reference_price, order_type=order.order_type.value,
        status=ack.status, nav=nav, model=order.model, broker_order_id=ack.broker_order_id,
        cycle_timestamp=slot, limit_price=order.limit_price)


def order_failed(order: OrderRequest, error: str, slot: datetime,
                 order_data: Mapping[str, Any] | None = None) -> OrderFailed:
    """An order refused or not sent; `order_data` is what was stored for it (its intent)."""
    return OrderFailed(
        symbol=order.symbol, side=order.side.value, quantity=order.quantity, error=error,
        order_data=intent_data(order, slot) if order_data is None else order_data,
        model=order.model, order_id=order.client_order_id, cycle_timestamp=slot)


def unknown_order_failed(client_order_id: str, error: str, slot: datetime,
                         order_data: Mapping[str, Any]) -> OrderFailed:
    """An order the broker rejected whose intent the state store no longer has in full."""
    return OrderFailed(
        symbol=str(order_data.get("symbol", "")), side=str(order_data.get("side", "")),
        quantity=float(order_data.get("quantity", 0.0)), error=error, order_data=order_data,
        model=str(order_data.get("model", "unknown")), order_id=client_order_id,
        cycle_timestamp=slot)


def trade_executed(fill: Fill, model: str, slot: datetime) -> TradeExecuted:
    return TradeExecuted(
        order_id=fill.client_order_id, symbol=fill.symbol, side=fill.side.value,
        quantity=fill.quantity, price=fill.price, value=round(fill.quantity * fill.price, 2),
        new_position=round(fill.position_after, 9), nav=fill.nav_after, pnl=fill.realized_pnl,
        commission=fill.commission, model=model, fill_id=fill.fill_id, cycle_timestamp=slot)


def trade_data(trade: TradeExecuted) -> dict[str, Any]:
    """The state store's form of a trade line about to be written (write-ahead)."""
    return trade.to_dict()


def stored_trade(data: Mapping[str, Any]) -> TradeExecuted:
    """The trade line the state store kept by `trade_data` (or by an older version: the same
    fields, without `event_type`)."""
    record = TradeExecuted.from_dict(data)
    assert isinstance(record, TradeExecuted)
    return record


def signed_quantity(trade: TradeExecuted) -> float:
    return trade.quantity if trade.side == Side.BUY.value else -trade.quantity


def positions_of(account: AccountSnapshot) -> dict[str, float]:
    """The account's positions as the trail writes them: sorted, rounded to 1e-9 shares."""
    return {s: round(q, 9) for s, q in sorted(account.positions.items())}


def cycle_completed(account: AccountSnapshot, slot: datetime, *, orders: int, fills: int,
                    errors: int, marks: Mapping[str, float]) -> CycleCompleted:
    return CycleCompleted(nav=account.nav, cash=account.cash, positions=positions_of(account),
                          buying_power=account.buying_power, cycle_timestamp=slot,
                          orders=orders, fills=fills, errors=errors, prices=marks)


def account_checked(account: AccountSnapshot, source: str) -> AccountChecked:
    positions = positions_of(account)
    return AccountChecked(
        message=f"{source} answered: nav {account.nav:,.2f}, cash {account.cash:,.2f}, "
                f"{len(positions)} positions",
        nav=account.nav, cash=account.cash, buying_power=account.buying_power,
        positions=positions,
        prices={s: p for s, p in sorted(account.prices.items()) if s in positions})


def model_decided(model: Model, slot: datetime, *, capital_share: float, params_sha256: str,
                  history: History, input_sha256: str, decision: Decision,
                  final_weights: Mapping[str, float],
                  risk_checks: tuple[Mapping[str, Any], ...]) -> ModelDecided:
    """`params_sha256`: `models.base.params_sha256(model)`, taken once per model (ModelShare)."""
    return ModelDecided(
        model=model.name, cycle_timestamp=slot, capital_share=capital_share, as_of=history.as_of,
        symbols=tuple(model.symbols), input_sha256=input_sha256, scores=decision.scores,
        target_weights=decision.target_weights, final_weights=final_weights,
        risk_checks=risk_checks, reason=decision.reason, hold=decision.hold,
        model_version=model.version, params_sha256=params_sha256)


def stored_risk_check(model: str, data: Mapping[str, Any]) -> RiskCheck:
    """A `model_decision`'s risk check as the line holds it (`check`, `symbol`, `detail`); a
    missing part reads as None, as the trail shows it."""
    symbol = data.get("symbol")
    return RiskCheck(check=str(data.get("check")), model=model,
                     symbol=None if symbol is None else str(symbol), detail=str(data.get("detail")))
