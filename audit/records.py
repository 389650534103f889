"""One typed record per event. `to_dict` puts the guide's fields first, in the guide's order,
then our extra fields. The trail stamps `timestamp`; nothing here reads a clock."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

ORDERS, TRADES, PERFORMANCE, ERRORS, DECISIONS, EVENTS = (
    "orders.jsonl", "trades.jsonl", "performance.jsonl", "errors.jsonl",
    "decisions.jsonl", "events.jsonl")
STREAMS = (ORDERS, TRADES, PERFORMANCE, ERRORS, DECISIONS, EVENTS)
PRODUCTION_LOG = "production.log"


@dataclass(frozen=True, slots=True)
class OrderSubmitted:
    stream: ClassVar[str] = ORDERS
    event_type: ClassVar[str] = "order_submitted"
    level: ClassVar[str] = "INFO"
    order_id: str
    symbol: str
    side: str
    quantity: float
    price: float
    order_type: str
    status: str
    nav: float
    model: str
    broker_order_id: str
    cycle_timestamp: str
    limit_price: float | None = None

    def to_dict(self, ts: str) -> dict[str, Any]:
        d = {"timestamp": ts, "event_type": self.event_type, "order_id": self.order_id,
             "symbol": self.symbol, "side": self.side, "quantity": self.quantity,
             "price": self.price, "order_type": self.order_type, "status": self.status,
             "nav": self.nav, "model": self.model, "broker_order_id": self.broker_order_id,
             "cycle_timestamp": self.cycle_timestamp}
        if self.limit_price is not None:
            d["limit_price"] = self.limit_price
        return d

    def describe(self) -> str:
        return (f"{self.side} {self.quantity:g} {self.symbol} {self.order_type} ref {self.price:.2f} "
                f"[{self.model}] {self.order_id} {self.status}")


@dataclass(frozen=True, slots=True)
class TradeExecuted:
    stream: ClassVar[str] = TRADES
    event_type: ClassVar[str] = "trade_executed"
    level: ClassVar[str] = "INFO"
    order_id: str
    symbol: str
    side: str
    quantity: float
    price: float
    value: float
    new_position: float
    nav: float
    model: str
    fill_id: str
    cycle_timestamp: str
    pnl: float | None = None
    commission: float = 0.0

    def to_dict(self, ts: str) -> dict[str, Any]:
        d = {"timestamp": ts, "event_type": self.event_type, "order_id": self.order_id,
             "symbol": self.symbol, "side": self.side, "quantity": self.quantity,
             "price": self.price, "value": self.value, "new_position": self.new_position,
             "nav": self.nav}
        if self.pnl is not None:
            d["pnl"] = self.pnl
        if self.commission:
            d["commission"] = self.commission
        d["model"] = self.model
        d["fill_id"] = self.fill_id
        d["cycle_timestamp"] = self.cycle_timestamp
        return d

    def describe(self) -> str:
        pnl = f" pnl {self.pnl:.2f}" if self.pnl is not None else ""
        return (f"{self.side} {self.quantity:g} {self.symbol} @ {self.price:.4f} = {self.value:.2f}"
                f"{pnl}; position {self.new_position:g}, nav {self.nav:.2f} ({self.order_id})")


@dataclass(frozen=True, slots=True)
class CycleCompleted:
    stream: ClassVar[str] = PERFORMANCE
    event_type: ClassVar[str] = "cycle_complete"
    level: ClassVar[str] = "INFO"
    nav: float
    cash: float
    positions: Mapping[str, float]
    buying_power: float
    cycle_timestamp: str
    orders: int = 0
    fills: int = 0
    errors: int = 0
    prices: Mapping[str, float] = field(default_factory=dict)  # marks of the positions + benchmark

    def to_dict(self, ts: str) -> dict[str, Any]:
        return {"timestamp": ts, "event_type": self.event_type, "nav": self.nav, "cash": self.cash,
                "positions_count": len(self.positions), "positions": dict(self.positions),
                "buying_power": self.buying_power, "cycle_timestamp": self.cycle_timestamp,
                "orders": self.orders, "fills": self.fills, "errors": self.errors,
                "prices": dict(self.prices)}

    def describe(self) -> str:
        return (f"cycle {self.cycle_timestamp} done: nav {self.nav:.2f}, cash {self.cash:.2f}, "
                f"{len(self.positions)} positions, {self.orders} orders, {self.fills} fills, "
                f"{self.errors} errors")


@dataclass(frozen=True, slots=True)
class OrderFailed:
    """An order the broker refused, or that could not be sent (`order_error`)."""

    stream: ClassVar[str] = ERRORS
    event_type: ClassVar[str] = "order_error"
    level: ClassVar[str] = "ERROR"
    symbol: str
    side: str
    quantity: float
    error: str
    order_data: Mapping[str, Any]
    model: str
    order_id: str
    cycle_timestamp: str

    def to_dict(self, ts: str) -> dict[str, Any]:
        return {"timestamp": ts, "event_type": self.event_type, "symbol": self.symbol,
                "side": self.side, "quantity": self.quantity, "error": self.error,
                "order_data": dict(self.order_data), "model": self.model,
                "order_id": self.order_id, "cycle_timestamp": self.cycle_timestamp}

    def describe(self) -> str:
        return f"{self.side} {self.quantity:g} {self.symbol} [{self.model}] {self.order_id}: {self.error}"


@dataclass(frozen=True, slots=True)
class ErrorRecorded:
    """Any other failure: `kind` is the event type (`price_error`, `data_error`, `cycle_error`...)."""

    stream: ClassVar[str] = ERRORS
    level: ClassVar[str] = "ERROR"
    kind: str
    error: str
    cycle_timestamp: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def event_type(self) -> str:
        return self.kind

    def to_dict(self, ts: str) -> dict[str, Any]:
        d = {"timestamp": ts, "event_type": self.kind, "error": self.error}
        if self.cycle_timestamp is not None:
            d["cycle_timestamp"] = self.cycle_timestamp
        d.update(self.details)
        return d

    def describe(self) -> str:
        return self.error


@dataclass(frozen=True, slots=True)
class ModelDecided:
    """Why a model decided what it did (`model_decision`, in decisions.jsonl)."""

    stream: ClassVar[str] = DECISIONS
    event_type: ClassVar[str] = "model_decision"
    level: ClassVar[str] = "INFO"
    model: str
    cycle_timestamp: str
    capital_share: float
    as_of: str | None
    symbols: tuple[str, ...]
    input_sha256: str
    scores: Mapping[str, float]
    target_weights: Mapping[str, float]
    final_weights: Mapping[str, float]
    risk_checks: tuple[Mapping[str, Any], ...]
    reason: str
    hold: bool

    def to_dict(self, ts: str) -> dict[str, Any]:
        return {"timestamp": ts, "event_type": self.event_type, "model": self.model,
                "cycle_timestamp": self.cycle_timestamp, "capital_share": self.capital_share,
                "as_of": self.as_of, "symbols": list(self.symbols),
                "input_sha256": self.input_sha256, "scores": dict(self.scores),
                "target_weights": dict(self.target_weights),
                "final_weights": dict(self.final_weights), "risk_checks": list(self.risk_checks),
                "reason": self.reason, "hold": self.hold}

    def describe(self) -> str:
        checks = f"; {len(self.risk_checks)} risk checks changed the plan" if self.risk_checks else ""
        return f"{self.model}: {self.reason}{checks}"


@dataclass(frozen=True, slots=True)
class EventRecorded:
    """Everything else a machine should query (events.jsonl): start, stop, skips, settings..."""

    stream: ClassVar[str] = EVENTS
    kind: str
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)
    level: str = "INFO"

    @property
    def event_type(self) -> str:
        return self.kind

    def to_dict(self, ts: str) -> dict[str, Any]:
        d = {"timestamp": ts, "event_type": self.kind, "message": self.message}
        d.update(self.details)
        return d

    def describe(self) -> str:
        return self.message


Record = (OrderSubmitted | TradeExecuted | CycleCompleted | OrderFailed | ErrorRecorded
          | ModelDecided | EventRecorded)
