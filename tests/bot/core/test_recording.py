"""The one mapping from the domain to records (bot/core/recording.py)."""
from __future__ import annotations

from audit.records import TradeExecuted
from bot.core import recording
from bot.core.domain import Fill, OrderAck, OrderRequest, OrderType, Side
from tests.fakes import utc

SLOT = utc(2025, 3, 3, 15)


def test_a_trade_stored_by_the_previous_version_is_read_back():
    """The state store of a bot that crashed before an upgrade holds its write-ahead trade line
    in the old form (the record's fields, the slot as text, no event_type): it still loads."""
    old = {"order_id": "tb-1", "symbol": "SPY", "side": "sell", "quantity": 2.0, "price": 10.0,
           "value": 20.0, "new_position": 0.0, "nav": 100.0, "model": "M", "fill_id": "f-1",
           "cycle_timestamp": "2025-03-03T15:00:00+00:00", "pnl": 1.5, "commission": 0.0}
    trade = recording.stored_trade(old)
    assert trade == TradeExecuted(order_id="tb-1", symbol="SPY", side="sell", quantity=2.0,
                                  price=10.0, value=20.0, new_position=0.0, nav=100.0, pnl=1.5,
                                  model="M", fill_id="f-1", cycle_timestamp=SLOT)
    assert recording.signed_quantity(trade) == -2.0
    assert recording.stored_trade(recording.trade_data(trade)) == trade


def test_the_submit_path_and_recovery_build_the_same_order_record():
    order = OrderRequest("tb-1", "SPY", Side.BUY, 3.0, 10.0, "M", OrderType.LIMIT, 10.5)
    ack = OrderAck("tb-1", "b-1", "accepted")
    sent = recording.order_submitted(order, ack, 1000.0, SLOT)
    intent = recording.intent_order("tb-1", recording.intent_data(order, SLOT), utc(2030, 1, 1))
    assert intent is not None and intent.slot == SLOT
    assert recording.order_submitted(intent.order, ack, 1000.0, intent.slot) == sent
    assert recording.intent_order("tb-2", {"side": "buy"}, SLOT) is None  # not enough stored


def test_a_fill_maps_to_its_trade_line():
    fill = Fill("f-1", "tb-1", "SPY", Side.BUY, 3.0, 10.123, 0.5, 3.0, 999.5)
    trade = recording.trade_executed(fill, "M", SLOT)
    assert (trade.value, trade.commission, trade.pnl, trade.cycle_timestamp) == (30.37, 0.5, None, SLOT)
