"""The cycle on the in-memory trail and journal (tests/fakes.py): nothing here touches the disk
but the tests whose point is the disk (a crash, a restart, production.log)."""
from dataclasses import replace

import orjson
import pytest

from audit.timestamps import format_slot
from bot.adapters.sim_broker import SimBrokerConfig
from bot.adapters.state_store import StateStore
from bot.core.cycle import KillSwitch, ModelShare, run_cycle
from bot.core.domain import Side
from bot.core.planning import RiskLimits
from bot.core.ports import INTENT
from tests.fakes import SLOT, make_bot, utc


def read(bot, name):
    """The lines of a stream as the file would hold them."""
    return bot.deps.trail.lines(name)


def read_file(tmp_path, name):
    return [orjson.loads(x) for x in (tmp_path / "logs" / name).read_bytes().splitlines()]


def test_a_cycle_records_decision_orders_fills_and_snapshot():
    bot = make_bot()
    out = run_cycle(bot, SLOT)
    orders, trades = read(bot, "orders.jsonl"), read(bot, "trades.jsonl")
    assert out.orders == 3 == len(orders) == len(trades)
    assert {o["symbol"] for o in orders} == {"QQQ", "SPY", "TLT"}
    assert all(o["model"] == "EqualWeightModel_v1" for o in orders)
    (perf,) = read(bot, "performance.jsonl")
    assert perf["cycle_timestamp"] == "2025-03-03T15:00:00+00:00"
    assert perf["positions"] == {t["symbol"]: t["new_position"] for t in trades}
    (dec,) = read(bot, "decisions.jsonl")
    assert dec["model"] == "EqualWeightModel_v1" and len(dec["input_sha256"]) == 64
    assert dec["risk_checks"][0]["check"] == "cash_buffer"
    assert bot.deps.journal.sleeves()["EqualWeightModel_v1"] == pytest.approx(
        {t["symbol"]: t["quantity"] for t in trades})
    assert bot.deps.journal.last_slot == SLOT


def test_a_rejected_order_is_recorded_and_the_others_go_on():
    bot = make_bot(reject={"QQQ": "Insufficient buying power"})
    out = run_cycle(bot, SLOT)
    (err,) = read(bot, "errors.jsonl")
    assert err["event_type"] == "order_error" and err["symbol"] == "QQQ"
    assert err["error"] == "Insufficient buying power"
    assert err["order_data"]["order_id"] == err["order_id"]
    assert out.orders == 2 and out.errors == 1
    assert "QQQ" not in out.positions and len(out.positions) == 2


def test_an_order_rejected_after_it_was_accepted_is_an_error_with_the_brokers_reason():
    bot = make_bot(reject_later={"TLT": "halted: trading suspended in TLT"})
    out = run_cycle(bot, SLOT)
    (err,) = read(bot, "errors.jsonl")
    assert err["event_type"] == "order_error" and err["symbol"] == "TLT"
    assert err["error"] == ("rejected by the broker after it accepted the order: "
                            "halted: trading suspended in TLT")
    assert err["order_data"]["order_id"] == err["order_id"]
    assert out.errors == 1 and out.orders == 3 and out.fills == 2
    assert read(bot, "performance.jsonl")[-1]["errors"] == 1
    assert err["order_id"] not in bot.deps.journal.open_orders()


def test_a_broker_exception_is_recorded_then_settled_next_cycle():
    bot = make_bot(explode={"SPY": ConnectionError("connection reset")})
    run_cycle(bot, SLOT)
    (err,) = read(bot, "errors.jsonl")
    assert "connection reset" in err["error"]
    assert INTENT in {bot.deps.journal.stage_of(cid) for cid in bot.deps.journal.open_orders()}
    bot.deps.broker.explode.clear()
    bot.deps.clock.advance(900)
    run_cycle(bot, utc(2025, 3, 3, 15, 15))
    events = [e["event_type"] for e in read(bot, "events.jsonl")]
    assert "order_not_placed" in events
    assert not bot.deps.journal.open_orders()
    assert "SPY" in bot.deps.broker.account().positions  # traded in the next cycle


def test_a_bad_price_skips_that_symbol_only():
    bot = make_bot()
    bot.deps.market.prices["TLT"] = float("nan")
    out = run_cycle(bot, SLOT)
    errs = read(bot, "errors.jsonl")
    assert [e["event_type"] for e in errs] == ["price_error"]
    assert set(out.positions) == {"QQQ", "SPY"}
    (dec,) = read(bot, "decisions.jsonl")
    assert any(c["check"] == "no_price" and c["symbol"] == "TLT" for c in dec["risk_checks"])


def test_the_kill_switch_file_blocks_orders_but_logging_goes_on(tmp_path):
    bot = make_bot(kill_switch=KillSwitch(False, tmp_path / "KILL_SWITCH"))
    (tmp_path / "KILL_SWITCH").touch()
    out = run_cycle(bot, SLOT)
    assert out.orders == 0 and read(bot, "orders.jsonl") == []
    (ev,) = read(bot, "events.jsonl")
    assert ev["event_type"] == "kill_switch_engaged" and ev["blocked_orders"] == 3
    (dec,) = read(bot, "decisions.jsonl")
    assert sum(c["check"] == "kill_switch" for c in dec["risk_checks"]) == 3
    assert len(read(bot, "performance.jsonl")) == 1


def test_record_only_sends_nothing():
    bot = make_bot()
    out = run_cycle(bot, SLOT, send_orders=False)
    assert out.orders == 0 and bot.deps.broker.submitted == []
    (dec,) = read(bot, "decisions.jsonl")
    assert dec["risk_checks"][-1]["check"] == "missed_slot_policy"


@pytest.mark.parametrize("line_written", [True, False])
def test_a_crash_between_fill_and_mark_writes_the_line_exactly_once(tmp_path, line_written):
    from bot.core import recording
    from bot.core.domain import OrderRequest
    bot = make_bot(tmp_path, persistent=True)
    cid = "tb-20250303T150000Z-EqualWeightModel_v1-SPY-buy"
    order = OrderRequest(cid, "SPY", Side.BUY, 10.0, 500.0, "EqualWeightModel_v1")
    bot.deps.journal.record_intent(cid, {"model": "EqualWeightModel_v1", "symbol": "SPY",
                                    "cycle_timestamp": "2025-03-03T15:00:00+00:00"})
    bot.deps.broker.submit_order(order)
    bot.deps.journal.mark_sent(cid)
    (fill,) = bot.deps.broker.fills(cid)
    rec = recording.trade_executed(fill, "EqualWeightModel_v1", SLOT)
    bot.deps.journal.fill_writing(fill.fill_id, cid, fill.quantity, recording.trade_data(rec))
    if line_written:
        bot.deps.trail.record(rec)
    bot.deps.journal.close()  # the process dies here
    again = make_bot(tmp_path, persistent=True)
    assert fill.fill_id in again.deps.journal.fills_writing()
    again.deps.clock.t = utc(2025, 3, 3, 15, 15)
    run_cycle(again, again.deps.clock.t)
    lines = [t for t in read_file(tmp_path, "trades.jsonl") if t["fill_id"] == fill.fill_id]
    assert len(lines) == 1 and lines[0]["quantity"] == 10.0
    assert again.deps.journal.sleeves()["EqualWeightModel_v1"]["SPY"] >= 10.0
    assert not again.deps.journal.fills_writing() and cid not in again.deps.journal.open_orders()


def test_state_survives_a_restart(tmp_path):
    bot = make_bot(tmp_path, persistent=True)
    run_cycle(bot, SLOT)
    sleeves = dict(bot.deps.journal.sleeves()["EqualWeightModel_v1"])
    bot.deps.journal.close()
    again = StateStore(tmp_path / "state.sqlite")
    assert again.last_slot == SLOT
    assert again.sleeves()["EqualWeightModel_v1"] == pytest.approx(sleeves)
    assert not again.open_orders()


def test_a_lasting_data_problem_is_recorded_once_then_again_after_it_clears():
    bot = make_bot()
    bot.deps.market.bad["QQQ"] = "QQQ.csv has no row for 2025-03-03: add it"
    for minute in (0, 15, 30):
        bot.deps.clock.t = utc(2025, 3, 3, 15, minute)
        run_cycle(bot, bot.deps.clock.t)
    kinds = [(e["event_type"], e["symbol"]) for e in read(bot, "errors.jsonl")]
    assert kinds == [("data_error", "QQQ")]  # QQQ left out of the targets: no price needed
    del bot.deps.market.bad["QQQ"]
    bot.deps.clock.t = utc(2025, 3, 3, 15, 45)
    run_cycle(bot, bot.deps.clock.t)
    bot.deps.market.bad["QQQ"] = "QQQ.csv has no row for 2025-03-04: add it"
    bot.deps.clock.t = utc(2025, 3, 3, 16, 0)
    run_cycle(bot, bot.deps.clock.t)
    kinds = [(e["event_type"], e["symbol"]) for e in read(bot, "errors.jsonl")]
    # now QQQ is held, so its missing price matters too
    assert kinds == [("data_error", "QQQ"), ("data_error", "QQQ"), ("price_error", "QQQ")]


def test_risk_off_without_the_defensive_symbol_holds_with_a_warning_each_cycle(tmp_path):
    from models.sector_rotation import SectorRotationModel
    bot = make_bot(tmp_path)
    model = SectorRotationModel(lookback=5, top_n=1, trend_window=10, universe=("QQQ",))
    bot.deps.models = (ModelShare(model, 1.0),)
    bot.deps.market.trend = 0.01  # rising: risk-on, QQQ bought
    run_cycle(bot, SLOT)
    held = bot.deps.broker.account().positions["QQQ"]
    bot.deps.market.trend = -0.01  # falling: risk-off, and TLT has no data
    bot.deps.market.bad["TLT"] = "TLT.csv starts 2002-07-30: add earlier rows"
    slots = [utc(2025, 3, 3, 15, 15), utc(2025, 3, 3, 15, 30)]
    for slot in slots:
        bot.deps.clock.t = slot
        run_cycle(bot, slot)
    warnings = [e for e in read_file(tmp_path, "events.jsonl") if e["event_type"] == "risk_off_held"]
    assert [w["cycle_timestamp"] for w in warnings] == [format_slot(s) for s in slots]
    assert all(w["model"] == "SectorRotationModel_v1" and w["defensive_symbol"] == "TLT"
               and "the current holdings stay" in w["message"] for w in warnings)
    assert bot.deps.broker.account().positions == {"QQQ": held}  # v1's hold rule: nothing sold
    decisions = read_file(tmp_path, "decisions.jsonl")[1:]
    assert all(d["hold"] and "TLT has no closes" in d["reason"] for d in decisions)
    log = (tmp_path / "logs" / "production.log").read_text()
    assert log.count("WARN  risk_off_held: SectorRotationModel_v1: risk-off (") == 2
    assert [e["event_type"] for e in read_file(tmp_path, "errors.jsonl")] == ["data_error"]  # once
    del bot.deps.market.bad["TLT"]  # TLT back: the model moves to it, and warns no more
    bot.deps.clock.t = utc(2025, 3, 3, 15, 45)
    run_cycle(bot, bot.deps.clock.t)
    assert "TLT" in bot.deps.broker.account().positions
    assert len([e for e in read_file(tmp_path, "events.jsonl") if e["event_type"] == "risk_off_held"]) == 2


def test_an_order_open_at_the_deadline_is_recorded_then_cancelled_next_cycle():
    from bot.core.domain import OrderType
    bot = make_bot()
    # limit orders 10 bps through the reference, fills 50 bps worse: they never cross
    bot.deps.broker.inner.config = SimBrokerConfig(slippage_bps=50)
    bot.deps.broker.inner._slip = 0.005
    bot.policy = replace(bot.policy, limits=RiskLimits(order_type=OrderType.LIMIT,
                                                       limit_offset_bps=10),
                         fill_timeout=5.0, poll_interval=1.0)
    naps = []
    bot.deps.sleep = lambda s: (naps.append(s), bot.deps.clock.advance(s))
    out = run_cycle(bot, SLOT)
    assert out.orders == 3 and out.fills == 0
    assert len(naps) == 5  # polled until the deadline, with the injected sleep
    events = read(bot, "events.jsonl")
    assert [e["event_type"] for e in events] == ["order_open_at_deadline"] * 3
    assert all(e["status"] == "new" for e in events)
    bot.deps.clock.advance(900)
    run_cycle(bot, utc(2025, 3, 3, 15, 15))
    canceled = [e for e in read(bot, "events.jsonl") if e["event_type"] == "order_canceled"]
    assert {e["order_id"] for e in canceled} == {e["order_id"] for e in events}
    assert all(bot.deps.broker.order_status(e["order_id"]).status == "canceled" for e in canceled)
