"""Frozen value types shared by the cycle, the brokers, the data sources and planning.

Plain data only: no I/O and no behaviour beyond small derived values.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Mapping

from models.base import History  # noqa: F401  (re-exported: the cycle's view of history)

BENCHMARK = "SPY"  # its price goes into every snapshot, for buy-and-hold comparisons


class Side(str, Enum):
    BUY = "buy"
    SELL = "sell"


class OrderType(str, Enum):
    MARKET = "market"
    LIMIT = "limit"


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """An order the planner wants sent. `client_order_id` is deterministic per (slot, model, symbol, side)."""

    client_order_id: str
    symbol: str
    side: Side
    quantity: float
    reference_price: float
    model: str
    order_type: OrderType = OrderType.MARKET
    limit_price: float | None = None


@dataclass(frozen=True, slots=True)
class OrderAck:
    """An order the broker knows: its ids and its status in the broker's words (accepted, new,
    filled, rejected...); `reason` says why, for a rejected one, when the broker says."""

    client_order_id: str
    broker_order_id: str
    status: str
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of (part of) an order, as the broker reports it.

    `position_after` and `nav_after` are the account's position in the symbol and its NAV right
    after this fill; `realized_pnl` is set for fills that reduce a position (average cost basis).
    """

    fill_id: str
    client_order_id: str
    symbol: str
    side: Side
    quantity: float
    price: float
    commission: float
    position_after: float
    nav_after: float
    realized_pnl: float | None = None


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """Cash, buying power, NAV and positions (symbol -> signed quantity) at one instant."""

    nav: float
    cash: float
    buying_power: float
    positions: Mapping[str, float]
    prices: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Slot:
    """A scheduled cycle time (UTC, whole seconds) and the mode it runs in."""

    at: datetime
    send_orders: bool = True
