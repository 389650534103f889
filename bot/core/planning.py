"""Order planning: sleeves' target weights + account + prices + risk limits -> orders.

Pure: no I/O, no clock, no broker. It does not net orders across sleeves (each model trades its
own sleeve), does not know fill prices (every value is at the reference price; the cash buffer
absorbs slippage) and does not send anything. Every limit that changes an order is returned as
a `RiskCheck`; a cash scale is noted only on the buys it cuts by at least 1 bp and a cent as
sent (`MIN_NOTED_FRACTION`, `MIN_NOTED_CUT`): a smaller cut is applied without a note.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from hashlib import sha256
from typing import Mapping, Sequence

from bot.core.domain import OrderRequest, OrderType, Side

MAX_CLIENT_ORDER_ID = 128
QTY_DECIMALS = 9            # brokers accept at most this many decimals of a fractional quantity
_QTY_SCALE = 10.0 ** QTY_DECIMALS
_QTY_EPS = 1e-9             # shares: float noise below this is not a trade and not a fraction
_TOL = 1e-9                 # relative tolerance for sums of weights and capital shares
_CASH_TOL = 1e-6            # dollars: float noise in a sum of buy costs is not a cash shortfall
MIN_NOTED_FRACTION = 1e-4   # a cash scale is noted on each buy it cuts by at least 1 bp...
MIN_NOTED_CUT = 0.01        # ...and at least a cent (dollars), as the buy is sent
_CLEAN_FIELD = re.compile(r"[A-Za-z0-9._]+")
_UNSAFE_CHAR = re.compile(r"[^A-Za-z0-9._]")
_isfinite = math.isfinite
_floor = math.floor
_BUY = Side.BUY
_SELL = Side.SELL


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """The limits every plan obeys. Validated on construction (ValueError). These defaults are
    the settings' defaults too (bot/settings.py reads them): one set, the one production uses."""

    min_trade_value: float = 100.0      # dollars; smaller orders are dropped (recorded)
    rebalance_band: float = 0.02        # skip |target-current| sleeve weight < band, unless either is 0
    cash_buffer: float = 0.02           # fraction of NAV kept in cash
    max_position_weight: float = 1.0    # of the sleeve; larger targets are clipped
    max_order_value: float = 250_000.0  # dollars; larger orders are cut to this value
    fractional: bool = True             # False: quantities floored to whole shares
    kill_switch: bool = False           # True: no orders at all, each blocked order recorded
    order_type: OrderType = OrderType.MARKET
    limit_offset_bps: float = 10.0      # limit orders: buy at ref*(1+bps), sell at ref*(1-bps)

    def __post_init__(self) -> None:
        def bad(name: str, rule: str) -> ValueError:
            return ValueError(f"RiskLimits.{name}={getattr(self, name)!r}: must be {rule}")

        def num(name: str) -> float:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not _isfinite(v):
                raise bad(name, "a finite number")
            return float(v)

        if num("min_trade_value") < 0:
            raise bad("min_trade_value", ">= 0")
        if not 0 <= num("rebalance_band") < 1:
            raise bad("rebalance_band", "in [0, 1)")
        if not 0 <= num("cash_buffer") < 1:
            raise bad("cash_buffer", "in [0, 1)")
        if not 0 < num("max_position_weight") <= 1:
            raise bad("max_position_weight", "in (0, 1]")
        if num("max_order_value") <= 0:
            raise bad("max_order_value", "> 0")
        if not 0 <= num("limit_offset_bps") < 10_000:
            raise bad("limit_offset_bps", "in [0, 10000)")
        for flag in ("fractional", "kill_switch"):
            if not isinstance(getattr(self, flag), bool):
                raise bad(flag, "True or False")
        try:
            object.__setattr__(self, "order_type", OrderType(self.order_type))
        except ValueError:
            raise bad("order_type", "'market' or 'limit'") from None


@dataclass(frozen=True, slots=True)
class RiskCheck:
    """One limit that changed the plan: which, for which model/symbol, wanted vs got."""

    check: str
    model: str
    symbol: str | None
    detail: str


@dataclass(frozen=True, slots=True)
class Sleeve:
    """One model's share of the account: its targets (None = hold) and its current quantities."""

    model: str
    capital_share: float
    target_weights: Mapping[str, float] | None
    holdings: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class Plan:
    """Orders (sells first, then buys), the checks that shaped them, and the resulting weights."""

    orders: tuple[OrderRequest, ...]
    checks: tuple[RiskCheck, ...]
    final_weights: Mapping[str, Mapping[str, float]]


def _stamp(slot: datetime) -> str:
    if slot.tzinfo is None or slot.utcoffset() is None:
        raise ValueError(f"slot must be timezone-aware, got {slot!r}")
    iso = slot.astimezone(timezone.utc).replace(tzinfo=None).isoformat()  # microseconds only if any
    return iso.replace("-", "").replace(":", "") + "Z"


def _order_id(stamp: str, model: str, symbol: str, side: str) -> str:
    if _CLEAN_FIELD.fullmatch(model) and _CLEAN_FIELD.fullmatch(symbol):
        cid = f"tb-{stamp}-{model}-{symbol}-{side}"
        if len(cid) <= MAX_CLIENT_ORDER_ID:
            return cid
    # A field with '-' or other characters, or too long: readable but sanitized and truncated,
    # plus a digest of the exact fields. The extra '-h...' part keeps it distinct from clean ids.
    digest = sha256(f"{len(model)}:{model}{symbol}".encode()).hexdigest()[:16]
    m = _UNSAFE_CHAR.sub("_", model)[:40]
    s = _UNSAFE_CHAR.sub("_", symbol)[:24]
    return f"tb-{stamp}-{m}-{s}-{side}-h{digest}"


def client_order_id(slot: datetime, model: str, symbol: str, side: Side) -> str:
    """Deterministic, <= 128 chars, [A-Za-z0-9._-] only.

    E.g. 'tb-20251118T140000Z-SectorRotationModel_v1-SPY-buy'. A model or symbol with other
    characters (or '-') is sanitized and followed by a digest of the exact fields. Distinct
    (slot, model, symbol, side) give distinct ids; `slot` must be timezone-aware (written in UTC).
    """
    return _order_id(_stamp(slot), model, symbol, Side(side).value)


def _q(x: float) -> str:
    return f"{x:.6g}"


def _usd(x: float) -> str:
    return f"${x:,.2f}"


class _Leg:
    """A would-be order while limits are applied (internal, mutable)."""

    __slots__ = ("model", "symbol", "side", "verb", "qty", "price", "whole")

    def __init__(self, model: str, symbol: str, side: Side, qty: float, price: float, whole: bool) -> None:
        self.model = model
        self.symbol = symbol
        self.side = side
        self.verb = "buy" if side is _BUY else "sell"
        self.qty = float(qty)
        self.price = float(price)
        self.whole = whole  # sells the sleeve's whole position: exact quantity, never floored


def _validate(sleeves: Sequence[Sleeve], nav: float, cash: float) -> None:
    if not (_isfinite(nav) and nav > 0):
        raise ValueError(f"nav must be a finite positive number, got {nav!r}")
    if not _isfinite(cash):
        raise ValueError(f"cash must be a finite number, got {cash!r}")
    seen: set[str] = set()
    total = 0.0
    for sl in sleeves:
        if not sl.model:
            raise ValueError("a sleeve has an empty model name")
        if sl.model in seen:
            raise ValueError(f"two sleeves for model {sl.model!r}")
        seen.add(sl.model)
        share = sl.capital_share
        if not (_isfinite(share) and 0 < share <= 1):
            raise ValueError(f"sleeve {sl.model}: capital_share must be in (0, 1], got {share!r}")
        total += share
        for sym, q in sl.holdings.items():
            if not _isfinite(q):
                raise ValueError(f"sleeve {sl.model}: holding of {sym} is {q!r}")
        if sl.target_weights is not None:
            wsum = 0.0
            for sym, w in sl.target_weights.items():
                if not (_isfinite(w) and w >= 0):
                    raise ValueError(f"sleeve {sl.model}: weight of {sym} must be finite and >= 0, got {w!r}")
                wsum += w
            if wsum > 1 + _TOL:
                raise ValueError(f"sleeve {sl.model}: target weights sum to {wsum:.6g} > 1")
    if total > 1 + _TOL:
        raise ValueError(f"capital shares sum to {total:.6g} > 1")


def plan_orders(
    sleeves: Sequence[Sleeve],
    nav: float,
    cash: float,
    prices: Mapping[str, float],
    limits: RiskLimits,
    slot: datetime,
) -> Plan:
    """Orders that move each sleeve toward its targets within `limits`; see the module docstring.

    Raises ValueError for inconsistent inputs (nav <= 0, shares or weights summing above 1,
    negative or non-finite weights, duplicate models, a naive `slot`).
    """
    _validate(sleeves, nav, cash)
    stamp = _stamp(slot)
    checks: list[RiskCheck] = []
    sells: list[_Leg] = []
    buys: list[_Leg] = []
    max_w = limits.max_position_weight
    invest_cap = 1.0 - limits.cash_buffer
    band = limits.rebalance_band
    whole_only = not limits.fractional

    for sl in sleeves:
        targets = sl.target_weights
        if targets is None:
            continue
        model = sl.model
        budget = sl.capital_share * nav
        holdings = sl.holdings

        # Weight limits: clip each position, then scale the sleeve under the cash buffer.
        weights: dict[str, float] = {}
        for sym, w in targets.items():
            if w > max_w:
                checks.append(RiskCheck(
                    "max_position_weight", model, sym, f"wanted weight {w:.4f}, clipped to {max_w:.4f}",
                ))
                w = max_w
            weights[sym] = w
        wsum = sum(weights.values())
        if wsum > invest_cap:
            k = invest_cap / wsum
            checks.append(RiskCheck(
                "cash_buffer", model, None,
                f"target weights sum to {wsum:.4f}, scaled by {k:.4f} to {invest_cap:.4f}",
            ))
            for sym in weights:
                weights[sym] *= k

        for sym in sorted(weights.keys() | holdings.keys()):
            w = weights.get(sym, 0.0)
            held = holdings.get(sym, 0.0)
            if w <= 0.0 and held == 0.0:
                continue
            price = prices.get(sym)
            if price is None or not (_isfinite(price) and price > 0.0):
                checks.append(RiskCheck(
                    "no_price", model, sym,
                    f"no usable price ({price!r}); wanted weight {w:.4f}, holds {_q(held)}: no order",
                ))
                continue
            target_qty = w * budget / price
            delta = target_qty - held
            if -_QTY_EPS < delta < _QTY_EPS:
                continue
            if w > 0.0 and held != 0.0:
                cur = held * price / budget
                if abs(w - cur) < band:
                    checks.append(RiskCheck(
                        "rebalance_band", model, sym,
                        f"weight {cur:.4f} -> {w:.4f} is within the {band:.4f} band: no order",
                    ))
                    continue
            if delta > 0.0:
                buys.append(_Leg(model, sym, _BUY, delta, price, False))
            elif held > 0.0:
                whole = w <= 0.0
                sells.append(_Leg(model, sym, _SELL, held if whole else min(-delta, held), price, whole))

    # Per-order limits on sells, then the cash they free; buys share what is available.
    _cap(sells, limits.max_order_value, checks)
    sells = _finish(sells, limits, checks, whole_only)
    proceeds = sum(leg.qty * leg.price for leg in sells)
    available = cash + proceeds - limits.cash_buffer * nav
    _cap(buys, limits.max_order_value, checks)
    cost = sum(leg.qty * leg.price for leg in buys)
    if buys and cost > available + _CASH_TOL:
        k = max(available, 0.0) / cost
        why = f"{_usd(max(available, 0.0))} available for {_usd(cost)} of buys"
        for leg in buys:
            new = leg.qty * k
            if _changes_order(leg, new, limits.min_trade_value, whole_only):
                checks.append(RiskCheck(
                    "cash_available", leg.model, leg.symbol,
                    f"buy {_q(leg.qty)} scaled by {_factor(k)} to {_q(new)} "
                    f"({_usd(new * leg.price)}): {why}",
                ))
            leg.qty = new
        buys = [leg for leg in buys if leg.qty > 0.0]
    buys = _finish(buys, limits, checks, whole_only)

    legs = sorted(sells, key=_leg_key) + sorted(buys, key=_leg_key)
    if limits.kill_switch:
        blocked = [
            RiskCheck("kill_switch", leg.model, leg.symbol,
                      f"{leg.verb} {_q(leg.qty)} ({_usd(leg.qty * leg.price)}) blocked by the kill switch")
            for leg in legs
        ]
        return Plan((), tuple(blocked), _final_weights(sleeves, nav, prices, ()))

    order_type = limits.order_type
    limit = order_type is OrderType.LIMIT
    bps = limits.limit_offset_bps
    orders = tuple(
        OrderRequest(
            _order_id(stamp, leg.model, leg.symbol, leg.verb), leg.symbol, leg.side, leg.qty, leg.price,
            leg.model, order_type, limit_price_for(leg.side, leg.price, bps) if limit else None,
        )
        for leg in legs
    )
    return Plan(orders, tuple(checks), _final_weights(sleeves, nav, prices, legs))


def _leg_key(leg: _Leg) -> tuple[str, str]:
    return (leg.model, leg.symbol)


def _cap(legs: list[_Leg], max_value: float, checks: list[RiskCheck]) -> None:
    """Cut orders worth more than `max_value` down to it (a capped whole-position sell is partial)."""
    for leg in legs:
        value = leg.qty * leg.price
        if value > max_value:
            new = max_value / leg.price
            checks.append(RiskCheck(
                "max_order_value", leg.model, leg.symbol,
                f"{leg.verb} {_q(leg.qty)} ({_usd(value)}) cut to {_q(new)} ({_usd(max_value)})",
            ))
            leg.qty = new
            leg.whole = False


def _changes_order(leg: _Leg, new_qty: float, min_value: float, whole_only: bool) -> bool:
    """True when a buy cut from `leg.qty` to `new_qty` is sent for at least 1 bp and a cent less
    (its value as sent: whole shares or broker precision, nothing under the minimum trade value).
    A smaller cut is applied but not noted: it is under the 4 decimals a scale is noted with,
    under the simulated fills' default slippage (2 bp), or under the cent values are recorded in."""
    def sent_value(qty: float) -> float:
        value = _sendable(qty, whole_only) * leg.price
        return value if value >= min_value else 0.0
    before = sent_value(leg.qty)
    cut = before - sent_value(new_qty)
    return cut >= MIN_NOTED_CUT and cut >= MIN_NOTED_FRACTION * before * (1.0 - 1e-9)


def _sendable(qty: float, whole_only: bool) -> float:
    """A buy's quantity as sent: floored to whole shares, or to the broker's precision."""
    if whole_only:
        return float(_floor(qty + _QTY_EPS))
    return _floor(qty * _QTY_SCALE + 1e-6) / _QTY_SCALE


def _factor(k: float) -> str:
    """A scale factor below 1 with 4 decimals, or as many as it takes not to read as 1.0000."""
    for digits in range(4, 10):
        text = f"{k:.{digits}f}"
        if float(text) < 1.0:
            return text
    return repr(k)


def _finish(legs: list[_Leg], limits: RiskLimits, checks: list[RiskCheck], whole_only: bool) -> list[_Leg]:
    """Floor to whole shares (or broker precision), then drop orders under the minimum value."""
    min_value = limits.min_trade_value
    kept: list[_Leg] = []
    for leg in legs:
        q = leg.qty
        if not leg.whole:
            fq = _sendable(q, whole_only)
            if whole_only:
                if fq > q and leg.side is _SELL:  # never round a sell above what is held
                    fq = float(_floor(q))
                if q - fq > _QTY_EPS:
                    checks.append(RiskCheck(
                        "whole_shares", leg.model, leg.symbol,
                        f"{leg.verb} {_q(q)} floored to {fq:.0f} shares"
                        + ("" if fq > 0 else ": no order"),
                    ))
            if leg.side is _SELL and fq > q:
                fq = q
            q = leg.qty = fq
            if q <= 0.0:
                continue
        value = q * leg.price
        if value < min_value:
            checks.append(RiskCheck(
                "min_trade_value", leg.model, leg.symbol,
                f"{leg.verb} {_q(q)} ({_usd(value)}) is under {_usd(min_value)}: no order",
            ))
            continue
        kept.append(leg)
    return kept


def limit_price_for(side: Side, reference: float, offset_bps: float) -> float:
    """ref*(1+bps) for buys, ref*(1-bps) for sells, rounded away from the reference to the tick
    (a cent, or 0.0001 under $1) so the offset is never smaller than asked."""
    off = offset_bps / 10_000.0
    if side is _BUY:
        raw = reference * (1.0 + off)
        scale = 100.0 if raw >= 1.0 else 10_000.0
        return math.ceil(raw * scale - 1e-6) / scale
    raw = reference * (1.0 - off)
    scale = 100.0 if raw >= 1.0 else 10_000.0
    return max(math.floor(raw * scale + 1e-6), 1) / scale


def _final_weights(
    sleeves: Sequence[Sleeve], nav: float, prices: Mapping[str, float], legs: Sequence[_Leg]
) -> dict[str, dict[str, float]]:
    """Each sleeve's weights if every order filled at its reference price (priced symbols only)."""
    moved: dict[tuple[str, str], float] = {}
    for leg in legs:
        moved[(leg.model, leg.symbol)] = leg.qty if leg.side is _BUY else -leg.qty
    out: dict[str, dict[str, float]] = {}
    for sl in sleeves:
        budget = sl.capital_share * nav
        model = sl.model
        weights: dict[str, float] = {}
        syms = sl.holdings.keys() | (sl.target_weights.keys() if sl.target_weights else set())
        for sym in sorted(syms):
            price = prices.get(sym)
            if price is None or not (_isfinite(price) and price > 0.0):
                continue
            qty = sl.holdings.get(sym, 0.0) + moved.get((model, sym), 0.0)
            if qty != 0.0:
                weights[sym] = qty * price / budget
        out[model] = weights
    return out
