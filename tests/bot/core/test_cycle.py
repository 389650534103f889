import orjson
import pytest

from audit.timestamps import format_slot
from audit.trail import AuditTrail
from bot.adapters.sim_broker import SimBrokerConfig, SimulatedBroker
from bot.adapters.state_store import INTENT, StateStore
from bot.core.cycle import Bot, KillSwitch, ModelShare, run_cycle
from bot.core.domain import Side
from bot.core.planning import RiskLimits
from models.equal_weight import EqualWeightModel
from tests.fakes import FakeClock, FixedMarket, ScriptedBroker, utc

SLOT = utc(2025, 3, 3, 15, 0)
PRICES = {"SPY": 500.0, "QQQ": 400.0, "TLT": 90.0}


def make_bot(tmp_path, *, reject=None, explode=None, kill=False, persistent=False,
             reject_later=None):
    clock = FakeClock(SLOT)
    market = FixedMarket(PRICES)
    sim = SimulatedBroker(market, clock, SimBrokerConfig(),
                          tmp_path / "acct.sqlite" if persistent else None)
    broker = ScriptedBroker(sim, reject, explode, reject_later)
    trail = AuditTrail(tmp_path / "logs", clock, durable=True, key=b"test-audit-key-0123456789")
    state = StateStore(tmp_path / "state.sqlite" if persistent else None)
    models = (ModelShare(EqualWeightModel(), 1.0),)
    bot = Bot(clock, market, broker, trail, state, models, RiskLimits(),
              KillSwitch(kill, tmp_path / "KILL_SWITCH"))
    return bot


def read(tmp_path, name):
    return [orjson.loads(x) for x in (tmp_path / "logs" / name).read_bytes().splitlines()]


def test_a_cycle_records_decision_orders_fills_and_snapshot(tmp_path):
    bot = make_bot(tmp_path)
    out = run_cycle(bot, SLOT)
    orders, trades = read(tmp_path, "orders.jsonl"), read(tmp_path, "trades.jsonl")
    assert out.orders == 3 == len(orders) == len(trades)
    assert {o["symbol"] for o in orders} == {"QQQ", "SPY", "TLT"}
    assert all(o["model"] == "EqualWeightModel_v1" for o in orders)
    (perf,) = read(tmp_path, "performance.jsonl")
    assert perf["cycle_timestamp"] == "2025-03-03T15:00:00+00:00"
    assert perf["positions"] == {t["symbol"]: t["new_position"] for t in trades}
    (dec,) = read(tmp_path, "decisions.jsonl")
    assert dec["model"] == "EqualWeightModel_v1" and len(dec["input_sha256"]) == 64
    assert dec["risk_checks"][0]["check"] == "cash_buffer"
    assert bot.state.sleeves["EqualWeightModel_v1"] == pytest.approx(
        {t["symbol"]: t["quantity"] for t in trades})
    assert bot.state.last_slot == SLOT


def test_a_rejected_order_is_recorded_and_the_others_go_on(tmp_path):
    bot = make_bot(tmp_path, reject={"QQQ": "Insufficient buying power"})
    out = run_cycle(bot, SLOT)
    (err,) = read(tmp_path, "errors.jsonl")
    assert err["event_type"] == "order_error" and err["symbol"] == "QQQ"
    assert err["error"] == "Insufficient buying power"
    assert err["order_data"]["order_id"] == err["order_id"]
    assert out.orders == 2 and out.errors == 1
    assert "QQQ" not in out.positions and len(out.positions) == 2


def test_an_order_rejected_after_it_was_accepted_is_an_error_with_the_brokers_reason(tmp_path):
    bot = make_bot(tmp_path, reject_later={"TLT": "halted: trading suspended in TLT"})
    out = run_cycle(bot, SLOT)
    (err,) = read(tmp_path, "errors.jsonl")
    assert err["event_type"] == "order_error" and err["symbol"] == "TLT"
    assert err["error"] == ("rejected by the broker after it accepted the order: "
                            "halted: trading suspended in TLT")
    assert err["order_data"]["order_id"] == err["order_id"]
    assert out.errors == 1 and out.orders == 3 and out.fills == 2
    assert read(tmp_path, "performance.jsonl")[-1]["errors"] == 1
    assert err["order_id"] not in bot.state.open_orders


def test_a_broker_exception_is_recorded_then_settled_next_cycle(tmp_path):
    bot = make_bot(tmp_path, explode={"SPY": ConnectionError("connection reset")})
    run_cycle(bot, SLOT)
    (err,) = read(tmp_path, "errors.jsonl")
    assert "connection reset" in err["error"]
    assert INTENT in bot.state.order_stage.values()
    bot.broker.explode.clear()
    bot.clock.advance(900)
    run_cycle(bot, utc(2025, 3, 3, 15, 15))
    events = [e["event_type"] for e in read(tmp_path, "events.jsonl")]
    assert "order_not_placed" in events
    assert not bot.state.open_orders
    assert "SPY" in bot.broker.account().positions  # traded in the next cycle


def test_a_bad_price_skips_that_symbol_only(tmp_path):
    bot = make_bot(tmp_path)
    bot.market.prices["TLT"] = float("nan")
    out = run_cycle(bot, SLOT)
    errs = read(tmp_path, "errors.jsonl")
    assert [e["event_type"] for e in errs] == ["price_error"]
    assert set(out.positions) == {"QQQ", "SPY"}
    (dec,) = read(tmp_path, "decisions.jsonl")
    assert any(c["check"] == "no_price" and c["symbol"] == "TLT" for c in dec["risk_checks"])


def test_the_kill_switch_file_blocks_orders_but_logging_goes_on(tmp_path):
    bot = make_bot(tmp_path)
    (tmp_path / "KILL_SWITCH").touch()
    out = run_cycle(bot, SLOT)
    assert out.orders == 0 and read(tmp_path, "orders.jsonl") == []
    (ev,) = read(tmp_path, "events.jsonl")
    assert ev["event_type"] == "kill_switch_engaged" and ev["blocked_orders"] == 3
    (dec,) = read(tmp_path, "decisions.jsonl")
    assert sum(c["check"] == "kill_switch" for c in dec["risk_checks"]) == 3
    assert len(read(tmp_path, "performance.jsonl")) == 1


def test_record_only_sends_nothing(tmp_path):
    bot = make_bot(tmp_path)
    out = run_cycle(bot, SLOT, send_orders=False)
    assert out.orders == 0 and bot.broker.submitted == []
    (dec,) = read(tmp_path, "decisions.jsonl")
    assert dec["risk_checks"][-1]["check"] == "missed_slot_policy"


@pytest.mark.parametrize("line_written", [True, False])
def test_a_crash_between_fill_and_mark_writes_the_line_exactly_once(tmp_path, line_written):
    from bot.adapters.state_store import SENT
    from bot.core import recording
    from bot.core.domain import OrderRequest
    bot = make_bot(tmp_path, persistent=True)
    cid = "tb-20250303T150000Z-EqualWeightModel_v1-SPY-buy"
    order = OrderRequest(cid, "SPY", Side.BUY, 10.0, 500.0, "EqualWeightModel_v1")
    bot.state.set_order_stage(cid, INTENT, {"model": "EqualWeightModel_v1", "symbol": "SPY",
                                            "cycle_timestamp": "2025-03-03T15:00:00+00:00"})
    bot.broker.submit_order(order)
    bot.state.set_order_stage(cid, SENT)
    (fill,) = bot.broker.fills(cid)
    rec = recording.trade_executed(fill, "EqualWeightModel_v1", SLOT)
    bot.state.fill_writing(fill.fill_id, cid, fill.quantity, recording.trade_data(rec))
    if line_written:
        bot.trail.record(rec)
    bot.state.close()  # the process dies here
    again = make_bot(tmp_path, persistent=True)
    assert fill.fill_id in again.state.writing
    again.clock.t = utc(2025, 3, 3, 15, 15)
    run_cycle(again, again.clock.t)
    lines = [t for t in read(tmp_path, "trades.jsonl") if t["fill_id"] == fill.fill_id]
    assert len(lines) == 1 and lines[0]["quantity"] == 10.0
    assert again.state.sleeves["EqualWeightModel_v1"]["SPY"] >= 10.0
    assert not again.state.writing and cid not in again.state.open_orders


def test_state_survives_a_restart(tmp_path):
    bot = make_bot(tmp_path, persistent=True)
    run_cycle(bot, SLOT)
    sleeves = dict(bot.state.sleeves["EqualWeightModel_v1"])
    bot.state.close()
    again = StateStore(tmp_path / "state.sqlite")
    assert again.last_slot == SLOT
    assert again.sleeves["EqualWeightModel_v1"] == pytest.approx(sleeves)
    assert not again.open_orders


def test_a_lasting_data_problem_is_recorded_once_then_again_after_it_clears(tmp_path):
    bot = make_bot(tmp_path)
    bot.market.bad["QQQ"] = "QQQ.csv has no row for 2025-03-03: add it"
    for minute in (0, 15, 30):
        bot.clock.t = utc(2025, 3, 3, 15, minute)
        run_cycle(bot, bot.clock.t)
    kinds = [(e["event_type"], e["symbol"]) for e in read(tmp_path, "errors.jsonl")]
    assert kinds == [("data_error", "QQQ")]  # QQQ left out of the targets: no price needed
    del bot.market.bad["QQQ"]
    bot.clock.t = utc(2025, 3, 3, 15, 45)
    run_cycle(bot, bot.clock.t)
    bot.market.bad["QQQ"] = "QQQ.csv has no row for 2025-03-04: add it"
    bot.clock.t = utc(2025, 3, 3, 16, 0)
    run_cycle(bot, bot.clock.t)
    kinds = [(e["event_type"], e["symbol"]) for e in read(tmp_path, "errors.jsonl")]
    # now QQQ is held, so its missing price matters too
    assert kinds == [("data_error", "QQQ"), ("data_error", "QQQ"), ("price_error", "QQQ")]


def test_risk_off_without_the_defensive_symbol_holds_with_a_warning_each_cycle(tmp_path):
    from models.sector_rotation import SectorRotationModel
    bot = make_bot(tmp_path)
    model = SectorRotationModel(lookback=5, top_n=1, trend_window=10, universe=("QQQ",))
    bot.models = (ModelShare(model, 1.0),)
    bot.market.trend = 0.01  # rising: risk-on, QQQ bought
    run_cycle(bot, SLOT)
    held = bot.broker.account().positions["QQQ"]
    bot.market.trend = -0.01  # falling: risk-off, and TLT has no data
    bot.market.bad["TLT"] = "TLT.csv starts 2002-07-30: add earlier rows"
    slots = [utc(2025, 3, 3, 15, 15), utc(2025, 3, 3, 15, 30)]
    for slot in slots:
        bot.clock.t = slot
        run_cycle(bot, slot)
    warnings = [e for e in read(tmp_path, "events.jsonl") if e["event_type"] == "risk_off_held"]
    assert [w["cycle_timestamp"] for w in warnings] == [format_slot(s) for s in slots]
    assert all(w["model"] == "SectorRotationModel_v1" and w["defensive_symbol"] == "TLT"
               and "the current holdings stay" in w["message"] for w in warnings)
    assert bot.broker.account().positions == {"QQQ": held}  # v1's hold rule: nothing sold
    decisions = read(tmp_path, "decisions.jsonl")[1:]
    assert all(d["hold"] and "TLT has no closes" in d["reason"] for d in decisions)
    log = (tmp_path / "logs" / "production.log").read_text()
    assert log.count("WARN  risk_off_held: SectorRotationModel_v1: risk-off (") == 2
    assert [e["event_type"] for e in read(tmp_path, "errors.jsonl")] == ["data_error"]  # once
    del bot.market.bad["TLT"]  # TLT back: the model moves to it, and warns no more
    bot.clock.t = utc(2025, 3, 3, 15, 45)
    run_cycle(bot, bot.clock.t)
    assert "TLT" in bot.broker.account().positions
    assert len([e for e in read(tmp_path, "events.jsonl") if e["event_type"] == "risk_off_held"]) == 2


def test_an_order_open_at_the_deadline_is_recorded_then_cancelled_next_cycle(tmp_path):
    from bot.core.domain import OrderType
    bot = make_bot(tmp_path)
    # limit orders 10 bps through the reference, fills 50 bps worse: they never cross
    bot.broker.inner.config = SimBrokerConfig(slippage_bps=50)
    bot.broker.inner._slip = 0.005
    bot.limits = RiskLimits(order_type=OrderType.LIMIT, limit_offset_bps=10)
    naps = []
    bot.sleep = lambda s: (naps.append(s), bot.clock.advance(s))
    bot.fill_timeout, bot.poll_interval = 5.0, 1.0
    out = run_cycle(bot, SLOT)
    assert out.orders == 3 and out.fills == 0
    assert len(naps) == 5  # polled until the deadline, with the injected sleep
    events = read(tmp_path, "events.jsonl")
    assert [e["event_type"] for e in events] == ["order_open_at_deadline"] * 3
    assert all(e["status"] == "new" for e in events)
    bot.clock.advance(900)
    run_cycle(bot, utc(2025, 3, 3, 15, 15))
    canceled = [e for e in read(tmp_path, "events.jsonl") if e["event_type"] == "order_canceled"]
    assert {e["order_id"] for e in canceled} == {e["order_id"] for e in events}
    assert all(bot.broker.order_status(e["order_id"]).status == "canceled" for e in canceled)
