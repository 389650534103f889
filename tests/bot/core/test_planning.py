"""Order planning: each limit on hand-made accounts, then invariants with hypothesis."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.domain import OrderType, Side
from bot.core.planning import Plan, RiskLimits, Sleeve, client_order_id, plan_orders

SLOT = datetime(2025, 11, 18, 14, 0, tzinfo=timezone.utc)
PRICES = {"SPY": 500.0, "QQQ": 400.0, "TLT": 90.0, "XLK": 250.0, "XLE": 80.0}
# Limits that change nothing unless a test turns one on.
OPEN = RiskLimits(min_trade_value=0.0, rebalance_band=0.0, cash_buffer=0.0, max_position_weight=1.0,
                  max_order_value=1e12)


def plan(sleeves: list[Sleeve], limits: RiskLimits = OPEN, nav: float = 100_000.0,
         cash: float | None = None, prices: dict[str, float] = PRICES) -> Plan:
    return plan_orders(sleeves, nav, nav if cash is None else cash, prices, limits, SLOT)


def orders_by_key(p: Plan) -> dict[tuple[str, str, str], float]:
    return {(o.model, o.symbol, o.side.value): o.quantity for o in p.orders}


def checks_of(p: Plan, name: str) -> list[tuple[str, str | None]]:
    return [(c.model, c.symbol) for c in p.checks if c.check == name]


# --- basics --------------------------------------------------------------------------------


def test_buys_from_cash_at_target_quantities() -> None:
    p = plan([Sleeve("M", 1.0, {"SPY": 0.4, "TLT": 0.4}, {})])
    assert orders_by_key(p) == {("M", "SPY", "buy"): pytest.approx(80.0),
                                ("M", "TLT", "buy"): pytest.approx(40_000 / 90)}
    spy = p.orders[0]
    assert spy.symbol == "SPY" and spy.reference_price == 500.0 and spy.model == "M"
    assert spy.order_type is OrderType.MARKET and spy.limit_price is None
    assert spy.client_order_id == "tb-20251118T140000Z-M-SPY-buy"
    assert p.checks == ()
    assert p.final_weights == {"M": {"SPY": pytest.approx(0.4), "TLT": pytest.approx(0.4)}}


def test_sleeve_budget_is_its_capital_share() -> None:
    p = plan([Sleeve("A", 0.25, {"SPY": 1.0}, {}), Sleeve("B", 0.75, {"TLT": 0.5}, {})])
    assert orders_by_key(p) == {("A", "SPY", "buy"): pytest.approx(50.0),
                                ("B", "TLT", "buy"): pytest.approx(37_500 / 90)}


def test_order_is_target_minus_holdings() -> None:
    p = plan([Sleeve("M", 1.0, {"SPY": 0.5, "QQQ": 0.25}, {"SPY": 60.0, "QQQ": 100.0})])
    assert orders_by_key(p) == {("M", "SPY", "buy"): pytest.approx(40.0), ("M", "QQQ", "sell"): pytest.approx(37.5)}


def test_held_symbol_absent_from_targets_is_sold_entirely() -> None:
    p = plan([Sleeve("M", 1.0, {"SPY": 0.5}, {"XLE": 12.345, "SPY": 100.0})])
    assert orders_by_key(p) == {("M", "XLE", "sell"): 12.345}
    assert p.final_weights["M"] == {"SPY": pytest.approx(0.5)}


def test_hold_sleeve_gets_no_orders() -> None:
    p = plan([Sleeve("H", 0.5, None, {"SPY": 10.0}), Sleeve("M", 0.5, {"TLT": 0.9}, {})])
    assert orders_by_key(p) == {("M", "TLT", "buy"): pytest.approx(500.0)}
    assert p.final_weights["H"] == {"SPY": pytest.approx(0.1)}


def test_sells_first_then_buys_each_sorted_by_model_and_symbol() -> None:
    sleeves = [
        Sleeve("Z", 0.5, {"XLK": 0.5, "SPY": 0.4}, {"TLT": 5.0, "QQQ": 5.0}),
        Sleeve("A", 0.5, {"XLE": 0.5, "QQQ": 0.3}, {"SPY": 5.0, "TLT": 5.0}),
    ]
    p = plan(sleeves)
    assert [(o.side.value, o.model, o.symbol) for o in p.orders] == [
        ("sell", "A", "SPY"), ("sell", "A", "TLT"), ("sell", "Z", "QQQ"), ("sell", "Z", "TLT"),
        ("buy", "A", "QQQ"), ("buy", "A", "XLE"), ("buy", "Z", "SPY"), ("buy", "Z", "XLK"),
    ]


def test_sleeves_are_not_netted_against_each_other() -> None:
    p = plan([Sleeve("A", 0.5, {}, {"SPY": 10.0}), Sleeve("B", 0.5, {"SPY": 0.5}, {})])
    assert orders_by_key(p) == {("A", "SPY", "sell"): 10.0, ("B", "SPY", "buy"): pytest.approx(50.0)}


# --- each limit ----------------------------------------------------------------------------


def test_max_position_weight_clips() -> None:
    p = plan([Sleeve("M", 1.0, {"SPY": 0.9, "TLT": 0.1}, {})],
             RiskLimits(max_position_weight=0.4, min_trade_value=0, cash_buffer=0))
    assert orders_by_key(p) == {("M", "SPY", "buy"): pytest.approx(80.0),
                                ("M", "TLT", "buy"): pytest.approx(10_000 / 90)}
    assert checks_of(p, "max_position_weight") == [("M", "SPY")]
    assert "0.9000" in p.checks[0].detail and "0.4000" in p.checks[0].detail


def test_cash_buffer_scales_the_sleeve() -> None:
    limits = RiskLimits(max_position_weight=1.0, cash_buffer=0.02, min_trade_value=0, rebalance_band=0)
    p = plan([Sleeve("M", 1.0, {"SPY": 0.5, "TLT": 0.5}, {})], limits)
    assert orders_by_key(p) == {("M", "SPY", "buy"): pytest.approx(98.0),
                                ("M", "TLT", "buy"): pytest.approx(49_000 / 90)}
    assert checks_of(p, "cash_buffer") == [("M", None)]
    assert checks_of(p, "cash_available") == []  # 100k cash - 2k buffer covers 98k


def test_rebalance_band_skips_small_adjustments_only() -> None:
    limits = RiskLimits(rebalance_band=0.02, min_trade_value=0, cash_buffer=0, max_position_weight=1)
    # SPY 79 sh = 0.395 -> 0.40 (inside band); QQQ 50 sh = 0.20 -> 0.30 (outside); TLT new; XLE sold out
    holdings = {"SPY": 79.0, "QQQ": 50.0, "XLE": 1.0}
    p = plan([Sleeve("M", 1.0, {"SPY": 0.4, "QQQ": 0.3, "TLT": 0.01}, holdings)], limits)
    assert orders_by_key(p) == {
        ("M", "XLE", "sell"): 1.0,
        ("M", "QQQ", "buy"): pytest.approx(25.0),
        ("M", "TLT", "buy"): pytest.approx(1000 / 90),
    }
    assert checks_of(p, "rebalance_band") == [("M", "SPY")]


def test_exact_target_records_nothing() -> None:
    limits = RiskLimits(rebalance_band=0.02, min_trade_value=0, cash_buffer=0)
    p = plan([Sleeve("M", 1.0, {"SPY": 0.4}, {"SPY": 80.0})], limits)
    assert p.orders == () and p.checks == ()


@pytest.mark.parametrize("bad", [None, 0.0, -5.0, float("nan"), float("inf")])
def test_no_price_means_no_order(bad: float | None) -> None:
    prices = dict(PRICES)
    if bad is None:
        del prices["SPY"]
    else:
        prices["SPY"] = bad
    p = plan([Sleeve("M", 1.0, {"SPY": 0.4, "TLT": 0.4}, {"SPY": 3.0})], prices=prices)
    assert orders_by_key(p) == {("M", "TLT", "buy"): pytest.approx(40_000 / 90)}
    assert checks_of(p, "no_price") == [("M", "SPY")]
    assert "SPY" not in p.final_weights["M"]


def test_cash_available_scales_buys_together() -> None:
    # 80k of buys, 10k cash, 2k buffer -> 8k: every buy scaled by 0.1.
    limits = RiskLimits(cash_buffer=0.02, max_position_weight=1, min_trade_value=0, rebalance_band=0)
    p = plan([Sleeve("M", 1.0, {"SPY": 0.4, "TLT": 0.4}, {})], limits, cash=10_000.0)
    assert orders_by_key(p) == {("M", "SPY", "buy"): pytest.approx(8.0), ("M", "TLT", "buy"): pytest.approx(4_000 / 90)}
    assert sum(o.quantity * o.reference_price for o in p.orders) == pytest.approx(8_000.0)
    assert checks_of(p, "cash_available") == [("M", "SPY"), ("M", "TLT")]
    assert p.final_weights["M"] == {"SPY": pytest.approx(0.04), "TLT": pytest.approx(0.04)}


def test_a_cash_shortfall_of_a_cent_scales_the_buys_without_a_note() -> None:
    # 100k of buys, 99,999.99 available: each buy shrinks by half a cent, under the cent of
    # value an order is recorded in; the buys still fit the cash, and nothing says "1.0000".
    limits = RiskLimits(cash_buffer=0.0, max_position_weight=1, min_trade_value=0, rebalance_band=0)
    p = plan([Sleeve("M", 1.0, {"SPY": 0.5, "TLT": 0.5}, {})], limits, cash=99_999.99)
    assert [o.symbol for o in p.orders] == ["SPY", "TLT"]
    assert sum(o.quantity * o.reference_price for o in p.orders) <= 99_999.99
    assert p.orders[0].quantity < 100.0
    assert p.checks == ()


def test_a_cash_scale_under_a_basis_point_of_each_order_is_not_noted() -> None:
    # $0.90 short on $100k of buys: SPY loses $0.89, 0.9 bp of its value, less than its own
    # fill's slippage; the buys still fit the cash.
    limits = RiskLimits(cash_buffer=0.0, max_position_weight=1, min_trade_value=0, rebalance_band=0,
                        max_order_value=1e6)
    p = plan([Sleeve("M", 1.0, {"SPY": 0.99, "TLT": 0.01}, {})], limits, cash=99_999.10)
    assert sum(o.quantity * o.reference_price for o in p.orders) <= 99_999.10
    assert p.checks == ()


def test_a_cash_scale_is_noted_on_the_orders_it_cuts_by_a_basis_point_and_a_cent() -> None:
    # $20 short on $100k: every buy is cut by 2 bp; SPY by $20, TLT ($20 of it) by under a cent.
    limits = RiskLimits(cash_buffer=0.0, max_position_weight=1, min_trade_value=0, rebalance_band=0,
                        max_order_value=1e6)
    p = plan([Sleeve("M", 1.0, {"SPY": 0.9998, "TLT": 0.0002}, {})], limits, cash=99_980.0)
    assert sum(o.quantity * o.reference_price for o in p.orders) <= 99_980.0
    [note] = [c for c in p.checks if c.check == "cash_available"]
    assert note.symbol == "SPY"
    assert note.detail.startswith("buy 199.96 scaled by 0.9998 to 199.92 ($99,960.00): ")


def test_a_cash_scale_that_costs_a_whole_share_is_noted() -> None:
    # Whole shares: 100 SPY at $500 is $50,000, a cent more than the cash; the scale floors
    # the order to 99 shares, a change of $500 that the note explains.
    limits = RiskLimits(cash_buffer=0.0, max_position_weight=1, min_trade_value=0, rebalance_band=0,
                        fractional=False)
    p = plan([Sleeve("M", 1.0, {"SPY": 0.5}, {})], limits, cash=49_999.99)
    assert orders_by_key(p) == {("M", "SPY", "buy"): 99.0}
    assert checks_of(p, "cash_available") == [("M", "SPY")]
    assert "scaled by 0.9999998 to " in p.checks[0].detail


def test_a_cash_scale_that_drops_an_order_under_the_minimum_is_noted() -> None:
    limits = RiskLimits(cash_buffer=0.0, max_position_weight=1, min_trade_value=100.0,
                        rebalance_band=0)
    p = plan([Sleeve("M", 1.0, {"SPY": 0.001}, {})], limits, cash=99.999)  # $100 of SPY
    assert p.orders == ()
    assert checks_of(p, "cash_available") == [("M", "SPY")]
    assert checks_of(p, "min_trade_value") == [("M", "SPY")]


def test_sell_proceeds_fund_buys() -> None:
    limits = RiskLimits(cash_buffer=0.0, max_position_weight=1, min_trade_value=0, rebalance_band=0)
    p = plan([Sleeve("M", 1.0, {"SPY": 0.5}, {"TLT": 500.0})], limits, cash=5_000.0)
    # 45k proceeds + 5k cash = 50k: exactly the SPY target, no scaling.
    assert orders_by_key(p) == {("M", "TLT", "sell"): 500.0, ("M", "SPY", "buy"): pytest.approx(100.0)}
    assert p.checks == ()


def test_no_cash_no_buys_never_negative() -> None:
    limits = RiskLimits(cash_buffer=0.05, max_position_weight=1, min_trade_value=0, rebalance_band=0)
    p = plan([Sleeve("M", 1.0, {"SPY": 0.5}, {})], limits, cash=1_000.0)  # 1k - 5k buffer < 0
    assert p.orders == ()
    assert checks_of(p, "cash_available") == [("M", "SPY")]


def test_max_order_value_cuts_buys_and_sells() -> None:
    limits = RiskLimits(max_order_value=50_000.0, max_position_weight=1, cash_buffer=0, min_trade_value=0,
                        rebalance_band=0)
    p = plan([Sleeve("M", 1.0, {"SPY": 0.8}, {"TLT": 2_000.0})], limits, nav=1_000_000.0)
    assert orders_by_key(p) == {("M", "TLT", "sell"): pytest.approx(50_000 / 90),
                                ("M", "SPY", "buy"): pytest.approx(100.0)}
    assert sorted(checks_of(p, "max_order_value")) == [("M", "SPY"), ("M", "TLT")]


def test_min_trade_value_drops_small_orders() -> None:
    limits = RiskLimits(min_trade_value=100.0, rebalance_band=0, cash_buffer=0, max_position_weight=1)
    p = plan([Sleeve("M", 1.0, {"SPY": 0.0009, "TLT": 0.5}, {"XLE": 1.0})], limits)  # $90 SPY, $80 XLE
    assert orders_by_key(p) == {("M", "TLT", "buy"): pytest.approx(50_000 / 90)}
    assert sorted(checks_of(p, "min_trade_value")) == [("M", "SPY"), ("M", "XLE")]


def test_whole_shares_floor_but_whole_position_sells_all() -> None:
    limits = RiskLimits(fractional=False, min_trade_value=0, rebalance_band=0, cash_buffer=0, max_position_weight=1)
    p = plan([Sleeve("M", 1.0, {"SPY": 0.4, "QQQ": 0.2}, {"XLE": 3.7, "QQQ": 60.5})], limits, nav=100_100.0)
    # SPY 80.08 -> 80; QQQ 60.5 - 50.05 = 10.45 -> 10; XLE all 3.7.
    assert orders_by_key(p) == {("M", "SPY", "buy"): 80.0, ("M", "QQQ", "sell"): 10.0, ("M", "XLE", "sell"): 3.7}
    assert sorted(checks_of(p, "whole_shares")) == [("M", "QQQ"), ("M", "SPY")]


def test_whole_shares_can_drop_an_order() -> None:
    limits = RiskLimits(fractional=False, min_trade_value=0, rebalance_band=0, cash_buffer=0, max_position_weight=1)
    p = plan([Sleeve("M", 1.0, {"SPY": 0.004}, {})], limits)  # 0.8 share
    assert p.orders == ()
    assert checks_of(p, "whole_shares") == [("M", "SPY")]


def test_kill_switch_blocks_every_order() -> None:
    sleeves = [Sleeve("M", 1.0, {"SPY": 0.4}, {"TLT": 10.0, "QQQ": 1.0})]
    limits = RiskLimits(kill_switch=True, min_trade_value=0, rebalance_band=0)
    p = plan(sleeves, limits)
    assert p.orders == ()
    assert [(c.check, c.symbol) for c in p.checks] == [("kill_switch", "QQQ"), ("kill_switch", "TLT"),
                                                       ("kill_switch", "SPY")]
    assert p.final_weights["M"] == {"TLT": pytest.approx(0.009), "QQQ": pytest.approx(0.004)}


def test_limit_orders_carry_offset_prices() -> None:
    limits = RiskLimits(order_type=OrderType.LIMIT, limit_offset_bps=10.0, min_trade_value=0, rebalance_band=0)
    p = plan([Sleeve("M", 1.0, {"SPY": 0.4}, {"TLT": 10.0})], limits)
    by_symbol = {o.symbol: o for o in p.orders}
    assert by_symbol["SPY"].order_type is OrderType.LIMIT
    assert by_symbol["SPY"].limit_price == 500.5
    assert by_symbol["TLT"].limit_price == 89.91


def test_limit_order_type_given_as_string() -> None:
    assert RiskLimits(order_type="limit").order_type is OrderType.LIMIT  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "field, value",
    [
        ("min_trade_value", -1.0), ("rebalance_band", 1.0), ("cash_buffer", -0.1), ("cash_buffer", float("nan")),
        ("max_position_weight", 0.0), ("max_position_weight", 1.5), ("max_order_value", 0.0),
        ("limit_offset_bps", -1.0), ("order_type", "stop"), ("kill_switch", 1),
    ],
)
def test_invalid_limits(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"RiskLimits.{field}="):
        RiskLimits(**{field: value})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "sleeves, nav, message",
    [
        ([Sleeve("M", 1.0, {}, {})], 0.0, "nav"),
        ([Sleeve("M", 0.6, {}, {}), Sleeve("N", 0.6, {}, {})], 1e5, "capital shares"),
        ([Sleeve("M", 0.5, {}, {}), Sleeve("M", 0.5, {}, {})], 1e5, "two sleeves"),
        ([Sleeve("M", 1.0, {"SPY": -0.1}, {})], 1e5, "weight of SPY"),
        ([Sleeve("M", 1.0, {"SPY": 0.7, "TLT": 0.7}, {})], 1e5, "sum to 1.4"),
        ([Sleeve("M", 0.0, {}, {})], 1e5, "capital_share"),
    ],
)
def test_invalid_inputs(sleeves: list[Sleeve], nav: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan_orders(sleeves, nav, nav, PRICES, OPEN, SLOT)


# --- client order ids ----------------------------------------------------------------------


def test_client_order_id_format() -> None:
    assert client_order_id(SLOT, "SectorRotationModel_v1", "SPY", Side.BUY) == \
        "tb-20251118T140000Z-SectorRotationModel_v1-SPY-buy"
    eastern = SLOT.astimezone(timezone(timedelta(hours=-5)))
    assert client_order_id(eastern, "M", "BRK.B", Side.SELL) == "tb-20251118T140000Z-M-BRK.B-sell"
    with pytest.raises(ValueError, match="timezone-aware"):
        client_order_id(SLOT.replace(tzinfo=None), "M", "SPY", Side.BUY)


def test_client_order_id_unsafe_fields_stay_distinct() -> None:
    a = client_order_id(SLOT, "a-b", "c", Side.BUY)
    b = client_order_id(SLOT, "a", "b-c", Side.BUY)
    c = client_order_id(SLOT, "BRK/B", "X", Side.BUY)
    d = client_order_id(SLOT, "BRK_B", "X", Side.BUY)
    assert len({a, b, c, d}) == 4
    assert d == "tb-20251118T140000Z-BRK_B-X-buy"
    long = client_order_id(SLOT, "M" * 300, "S" * 300, Side.SELL)
    assert len(long) <= 128 and long != client_order_id(SLOT, "M" * 299, "S" * 300, Side.SELL)


# --- invariants ----------------------------------------------------------------------------

SYMBOLS = ("AAA", "BBB", "CCC", "DDD", "EEE")


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[Sleeve], float, float, dict[str, float], RiskLimits]:
    prices = draw(st.dictionaries(st.sampled_from(SYMBOLS), st.floats(0.5, 2_000.0), min_size=1))
    n = draw(st.integers(1, 3))
    shares = draw(st.lists(st.floats(0.01, 1.0), min_size=n, max_size=n))
    total = sum(shares)
    if total > 1:
        shares = [s / total * 0.999 for s in shares]
    sleeves = []
    for i, share in enumerate(shares):
        holdings = draw(st.dictionaries(
            st.sampled_from(SYMBOLS),
            st.one_of(st.integers(0, 500).map(float), st.floats(0.0, 500.0)),
        ))
        raw = draw(st.one_of(st.none(), st.dictionaries(st.sampled_from(SYMBOLS), st.floats(0.0, 1.0))))
        targets = None
        if raw is not None:
            s = sum(raw.values())
            targets = {k: v / s * draw(st.floats(0.0, 1.0)) for k, v in raw.items()} if s > 1 else raw
        sleeves.append(Sleeve(f"Model{i}_v1", share, targets, holdings))
    nav = draw(st.floats(1_000.0, 5_000_000.0))
    cash = draw(st.floats(-10_000.0, 2_000_000.0))
    limits = RiskLimits(
        min_trade_value=draw(st.floats(0.0, 500.0)),
        rebalance_band=draw(st.floats(0.0, 0.1)),
        cash_buffer=draw(st.floats(0.0, 0.2)),
        max_position_weight=draw(st.floats(0.05, 1.0)),
        max_order_value=draw(st.floats(100.0, 200_000.0)),
        fractional=draw(st.booleans()),
        order_type=draw(st.sampled_from(OrderType)),
    )
    return sleeves, nav, cash, prices, limits


@pytest.mark.slow
@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_plan_invariants(case: tuple[list[Sleeve], float, float, dict[str, float], RiskLimits]) -> None:
    sleeves, nav, cash, prices, limits = case
    p = plan_orders(sleeves, nav, cash, prices, limits, SLOT)
    assert p == plan_orders(sleeves, nav, cash, prices, limits, SLOT)  # deterministic
    holdings = {sl.model: sl.holdings for sl in sleeves}
    held_models = {sl.model for sl in sleeves if sl.target_weights is None}
    seen = set()
    proceeds = buys = 0.0
    for o in p.orders:
        key = (o.model, o.symbol, o.side)
        assert key not in seen
        seen.add(key)
        assert o.model not in held_models
        assert o.quantity > 0
        assert o.reference_price == prices[o.symbol]
        value = o.quantity * o.reference_price
        assert value >= limits.min_trade_value
        assert value <= limits.max_order_value * (1 + 1e-9)
        held = holdings[o.model].get(o.symbol, 0.0)
        if o.side is Side.SELL:
            assert o.quantity <= held
            proceeds += value
        else:
            buys += value
        if not limits.fractional and not (o.side is Side.SELL and o.quantity == held):
            assert o.quantity == int(o.quantity)
        if limits.order_type is OrderType.LIMIT:
            assert o.limit_price is not None
            if o.side is Side.BUY:
                highest = o.reference_price * (1 + limits.limit_offset_bps / 1e4) + 0.01
                assert o.reference_price <= o.limit_price <= highest
            else:
                assert o.limit_price <= o.reference_price
        else:
            assert o.limit_price is None
    available = max(0.0, cash + proceeds - limits.cash_buffer * nav)
    assert buys <= available + 1e-6 * max(1.0, available)
    sides = [o.side for o in p.orders]
    assert sides == sorted(sides, key=lambda s: s is Side.BUY)  # sells first
    for side in Side:
        keys = [(o.model, o.symbol) for o in p.orders if o.side is side]
        assert keys == sorted(keys)
    assert len({o.client_order_id for o in p.orders}) == len(p.orders)

    killed = plan_orders(sleeves, nav, cash, prices, _with_kill(limits), SLOT)
    assert killed.orders == ()
    assert [(c.check, c.model, c.symbol) for c in killed.checks] == [
        ("kill_switch", o.model, o.symbol) for o in p.orders
    ]


def _with_kill(limits: RiskLimits) -> RiskLimits:
    from dataclasses import replace

    return replace(limits, kill_switch=True)


ID_CHARS = re.compile(r"[A-Za-z0-9._-]+")
keys = st.tuples(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(timezone.utc)),
    st.text(min_size=1, max_size=80),
    st.text(min_size=1, max_size=40),
    st.sampled_from(Side),
)


@pytest.mark.slow
@settings(max_examples=500, deadline=None)
@given(keys, keys)
def test_client_order_id_deterministic_unique_and_safe(a: tuple, b: tuple) -> None:
    ida, idb = client_order_id(*a), client_order_id(*b)
    assert ida == client_order_id(*a)
    assert len(ida) <= 128 and ID_CHARS.fullmatch(ida)
    assert (ida == idb) == (a == b)


@given(keys)
def test_client_order_id_differs_by_each_field(a: tuple) -> None:
    slot, model, symbol, side = a
    other_side = Side.SELL if side is Side.BUY else Side.BUY
    variants = {
        client_order_id(slot, model, symbol, side),
        client_order_id(slot + timedelta(seconds=1), model, symbol, side),
        client_order_id(slot, model + "x", symbol, side),
        client_order_id(slot, model, symbol + "x", side),
        client_order_id(slot, model, symbol, other_side),
    }
    assert len(variants) == 5
