import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.adapters.sim_broker import SimBrokerConfig, SimulatedBroker
from bot.core.domain import OrderRequest, OrderType, Side
from bot.core.errors import OrderRejected
from tests.fakes import FakeClock, FixedMarket, utc

PRICES = {"SPY": 500.0, "TLT": 90.0, "XLK": 200.0}


def make(path=None, **cfg):
    market = FixedMarket(PRICES)
    clock = FakeClock(utc(2025, 3, 3, 15))
    return SimulatedBroker(market, clock, SimBrokerConfig(**cfg), path), market, clock


def order(cid, sym, side, qty, **kw):
    return OrderRequest(cid, sym, Side(side), qty, PRICES.get(sym, 1.0), "M", **kw)


def test_buy_fills_with_adverse_slippage_and_commission():
    b, _, _ = make(slippage_bps=10, commission=1.0)
    ack = b.submit_order(order("o1", "SPY", "buy", 10))
    assert ack.status == "accepted"
    (f,) = b.fills("o1")
    assert f.price == pytest.approx(500.5)
    assert b.cash == pytest.approx(100_000 - 5005.0 - 1.0)
    assert f.position_after == 10 and f.realized_pnl is None
    assert b.order_status("o1").status == "filled"


def test_sell_reports_realised_pnl_on_average_cost():
    b, market, _ = make(commission=1.0, slippage_bps=0)
    b.submit_order(order("o1", "SPY", "buy", 10))   # cost 5000 + 1 fee -> avg 500.1
    market.prices["SPY"] = 510.0
    b.submit_order(order("o2", "SPY", "sell", 4))
    (f,) = b.fills("o2")
    assert f.realized_pnl == pytest.approx(4 * (510 - 500.1) - 1.0)
    assert f.position_after == 6


def test_insufficient_buying_power_changes_nothing():
    b, _, _ = make()
    before = b.account()
    with pytest.raises(OrderRejected, match="Insufficient buying power"):
        b.submit_order(order("o1", "SPY", "buy", 1000))
    assert b.account() == before
    assert b.fills("o1") == [] and b.order_status("o1").status == "rejected"


def test_selling_more_than_held_is_refused_with_alpacas_words():
    b, _, _ = make()
    b.submit_order(order("o1", "TLT", "buy", 5))
    with pytest.raises(OrderRejected, match=r"insufficient qty available for order \(requested: 6, available: 5\)"):
        b.submit_order(order("o2", "TLT", "sell", 6))
    assert b.positions["TLT"][0] == 5


def test_same_client_order_id_never_fills_twice():
    b, _, _ = make()
    b.submit_order(order("o1", "SPY", "buy", 1))
    b.submit_order(order("o1", "SPY", "buy", 1))
    assert len(b.fills("o1")) == 1 and b.positions["SPY"][0] == 1


def test_whole_shares_only_when_fractional_is_off():
    b, _, _ = make(fractional=False)
    with pytest.raises(OrderRejected, match="fractional"):
        b.submit_order(order("o1", "SPY", "buy", 1.5))


def test_margin_multiplier_raises_buying_power():
    b, _, _ = make(margin_multiplier=2.0)
    assert b.account().buying_power == pytest.approx(200_000)
    b.submit_order(order("o1", "SPY", "buy", 300))  # 150k on a 100k account
    assert b.cash == pytest.approx(-50_000 - 300 * 500 * 0.0002, rel=1e-6)


def test_limit_order_waits_until_marketable_then_expires_at_the_close():
    b, market, clock = make(slippage_bps=0)
    ack = b.submit_order(order("o1", "SPY", "buy", 1, order_type=OrderType.LIMIT, limit_price=490.0))
    assert ack.status == "new" and b.fills("o1") == []
    market.prices["SPY"] = 489.0
    (f,) = b.fills("o1")
    assert f.price == 489.0 and b.order_status("o1").status == "filled"
    b.submit_order(order("o2", "SPY", "buy", 1, order_type=OrderType.LIMIT, limit_price=400.0))
    clock.t = utc(2025, 3, 3, 21, 1)  # after the 16:00 New York close
    b.account()
    assert b.order_status("o2").status == "expired"


def test_account_survives_a_restart(tmp_path):
    db = tmp_path / "acct.sqlite"
    b, _, _ = make(db)
    b.submit_order(order("o1", "SPY", "buy", 3))
    b.submit_order(order("o2", "XLK", "buy", 2))
    with pytest.raises(OrderRejected):
        b.submit_order(order("o3", "TLT", "sell", 1))
    snap = b.account()
    b.close()
    again, _, _ = make(db, starting_cash=5.0)  # a changed setting never resets the account
    assert again.account() == snap
    assert len(again.fills("o1")) == 1
    with pytest.raises(OrderRejected):
        again.submit_order(order("o3", "TLT", "sell", 1))
    again.submit_order(order("o1", "SPY", "buy", 3))  # idempotent across restarts
    assert again.positions["SPY"][0] == 3


trades = st.lists(st.tuples(st.sampled_from(sorted(PRICES)), st.sampled_from(["buy", "sell"]),
                            st.floats(0.001, 400), st.floats(0.5, 1.5)), max_size=30)


@settings(max_examples=150, deadline=None)
@given(trades, st.floats(0, 50), st.floats(0, 5))
def test_cash_plus_holdings_is_nav_and_rejects_change_nothing(ops, slip, fee):
    b, market, _ = make(slippage_bps=slip, commission=fee)
    for i, (sym, side, qty, move) in enumerate(ops):
        market.prices[sym] = PRICES[sym] * move
        before = (b.cash, {s: list(p) for s, p in b.positions.items()})
        try:
            b.submit_order(OrderRequest(f"o{i}", sym, Side(side), qty, market.prices[sym], "M"))
        except OrderRejected:
            assert (b.cash, {s: list(p) for s, p in b.positions.items()}) == before
        snap = b.account()
        holdings = sum(q * market.prices[s] for s, q in snap.positions.items())
        assert math.isclose(snap.nav, snap.cash + holdings, abs_tol=0.02)
        assert all(q > 0 for q in snap.positions.values())  # never short
        assert b.cash >= -1e-6  # a cash account never borrows
