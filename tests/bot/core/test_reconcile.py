"""Reconciliation inside the cycle, on the in-memory trail and journal."""
import pytest

from bot.core.cycle import run_cycle
from bot.core.errors import Halt
from bot.core.reconcile import EXTERNAL
from tests.fakes import SLOT, make_bot, utc


def read(bot, name):
    return bot.deps.trail.lines(name)


def manual_trade(bot, symbol, qty, avg):
    """A trade made in the broker's dashboard, behind the bot's back."""
    bot.deps.broker.inner.positions[symbol] = [qty, avg]


def test_a_manual_trade_is_recorded_and_adopted():
    bot = make_bot()
    run_cycle(bot, SLOT)
    manual_trade(bot, "XLK", 7.0, 200.0)
    bot.deps.market.prices["XLK"] = 200.0
    spy = bot.deps.broker.inner.positions["SPY"][0]
    bot.deps.broker.inner.positions["SPY"][0] = spy - 5  # and sold 5 SPY by hand
    bot.deps.clock.t = utc(2025, 3, 3, 15, 15)
    run_cycle(bot, bot.deps.clock.t)
    (rec,) = [e for e in read(bot, "events.jsonl") if e["event_type"] == "reconciliation"]
    assert rec["positions"]["XLK"] == {"trail": 0.0, "broker": 7.0}
    assert rec["positions"]["SPY"]["broker"] == pytest.approx(spy - 5)
    assert rec["policy"] == "adopt"
    assert bot.deps.journal.sleeves()[EXTERNAL] == {"XLK": 7.0}
    assert bot.deps.journal.sleeves()["EqualWeightModel_v1"]["SPY"] == pytest.approx(spy - 5)
    # books match now: the next cycle finds nothing, and no model trades the adopted XLK
    bot.deps.clock.t = utc(2025, 3, 3, 15, 30)
    run_cycle(bot, bot.deps.clock.t)
    assert len([e for e in read(bot, "events.jsonl") if e["event_type"] == "reconciliation"]) == 1
    assert not any(o["symbol"] == "XLK" for o in read(bot, "orders.jsonl"))


def test_halt_policy_stops_trading():
    bot = make_bot(reconcile="halt")
    run_cycle(bot, SLOT)
    manual_trade(bot, "XLK", 7.0, 200.0)
    bot.deps.market.prices["XLK"] = 200.0
    before = len(read(bot, "orders.jsonl"))
    with pytest.raises(Halt, match="differ from the trail"):
        run_cycle(bot, utc(2025, 3, 3, 15, 15))
    assert len(read(bot, "orders.jsonl")) == before
    (rec,) = [e for e in read(bot, "events.jsonl") if e["event_type"] == "reconciliation"]
    assert rec["policy"] == "halt"


def test_an_open_order_the_trail_does_not_know_is_reported():
    from bot.core.domain import OrderRequest, OrderType, Side
    bot = make_bot()
    bot.deps.broker.inner.submit_order(OrderRequest("manual-1", "SPY", Side.BUY, 1.0, 500.0, "me",
                                               OrderType.LIMIT, 1.0))
    run_cycle(bot, SLOT)
    (rec,) = [e for e in read(bot, "events.jsonl") if e["event_type"] == "reconciliation"]
    assert rec["unknown_open_orders"] == ["manual-1"]
