import os
import stat

import orjson
import pytest

from audit.check import check_trail
from audit.format import guide_fields
from audit.records import ORDERS, STREAMS, TRADES, CycleCompleted, OrderFailed, OrderSubmitted, TradeExecuted
from audit.trail import AuditTrail
from audit.writer import UnsafeDirectory
from tests.fakes import FakeClock, at, utc

KEY = b"test-audit-key-0123456789"

GUIDE_ORDER = ["timestamp", "event_type", "order_id", "symbol", "side", "quantity", "price",
               "order_type", "status", "nav", "model"]
GUIDE_TRADE = ["timestamp", "event_type", "order_id", "symbol", "side", "quantity", "price",
               "value", "new_position", "nav"]


@pytest.mark.parametrize("durable", [True, False])
def test_all_files_exist_private_from_the_start(tmp_path, durable):
    trail = AuditTrail(tmp_path / "logs", FakeClock(utc(2025, 1, 2)), durable=durable, key=KEY)
    d = tmp_path / "logs"
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    for name in (*STREAMS, "production.log"):
        assert (d / name).exists(), name
        assert stat.S_IMODE((d / name).stat().st_mode) == 0o600
    trail.close()


def test_loose_files_are_tightened_but_a_directory_the_bot_did_not_create_keeps_its_mode(tmp_path):
    d = tmp_path / "logs"
    d.mkdir(mode=0o755)
    os.chmod(d, 0o755)
    (d / "orders.jsonl").touch()
    os.chmod(d / "orders.jsonl", 0o644)
    AuditTrail(d, FakeClock(utc(2025, 1, 2)), durable=True, key=KEY).close()
    assert stat.S_IMODE(d.stat().st_mode) == 0o755
    assert stat.S_IMODE((d / "orders.jsonl").stat().st_mode) == 0o600


def test_a_world_writable_log_directory_is_refused_and_left_alone(tmp_path):
    d = tmp_path / "world_writable"
    d.mkdir()
    os.chmod(d, 0o1777)
    with pytest.raises(UnsafeDirectory, match="world-writable"):
        AuditTrail(d, FakeClock(utc(2025, 1, 2)), durable=True, key=KEY)
    assert stat.S_IMODE(d.stat().st_mode) == 0o1777 and list(d.iterdir()) == []


def test_a_log_directory_that_is_a_link_is_refused(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "logs").symlink_to(real)
    with pytest.raises(UnsafeDirectory, match="symbolic link"):
        AuditTrail(tmp_path / "logs", FakeClock(utc(2025, 1, 2)), durable=True, key=KEY)
    assert list(real.iterdir()) == []


def _lines(path):
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


@pytest.mark.parametrize("durable", [True, False])
def test_records_follow_the_guide_field_order(tmp_path, durable):
    clock = FakeClock(utc(2025, 11, 18, 14, 30))
    trail = AuditTrail(tmp_path, clock, durable=durable, key=KEY)
    trail.record(OrderSubmitted(order_id="tb-1", symbol="SPY", side="buy", quantity=10.0,
                                price=666.23, order_type="market", status="accepted", nav=100000.0,
                                model="M", broker_order_id="b-1",
                                cycle_timestamp=at("2025-11-18T14:30:00+00:00")))
    trail.record(TradeExecuted(order_id="tb-1", symbol="SPY", side="buy", quantity=10.0,
                               price=666.25, value=6662.5, new_position=10.0, nav=99999.8,
                               model="M", fill_id="tb-1-1",
                               cycle_timestamp=at("2025-11-18T14:30:00+00:00")))
    trail.record(TradeExecuted(order_id="tb-2", symbol="SPY", side="sell", quantity=5.0,
                               price=670.0, value=3350.0, new_position=5.0, nav=100010.0, model="M",
                               fill_id="tb-2-1", cycle_timestamp=at("2025-11-18T14:30:00+00:00"),
                               pnl=18.75, commission=1.0))
    trail.close()
    (order,) = _lines(tmp_path / "orders.jsonl")
    assert list(order)[:len(GUIDE_ORDER)] == GUIDE_ORDER
    # the format generated from the record types (audit/format.py) says the same as the guide, and what was written
    assert list(guide_fields(ORDERS, "order_submitted")) == GUIDE_ORDER
    assert list(guide_fields(TRADES, "trade_executed")) == GUIDE_TRADE
    assert check_trail(tmp_path).ok
    assert order["timestamp"] == "2025-11-18T14:30:00.000000+00:00"
    buy, sell = _lines(tmp_path / "trades.jsonl")
    assert list(buy)[:len(GUIDE_TRADE)] == GUIDE_TRADE
    assert "pnl" not in buy and "commission" not in buy
    assert sell["pnl"] == 18.75 and sell["commission"] == 1.0
    text = (tmp_path / "production.log").read_text()
    assert "order_submitted" in text and "trade_executed" in text


def test_positions_count_is_derived(tmp_path):
    trail = AuditTrail(tmp_path, FakeClock(utc(2025, 1, 2)), durable=False, key=KEY)
    trail.record(CycleCompleted(nav=1.0, cash=1.0, positions={"SPY": 1.0, "TLT": 2.0},
                                buying_power=1.0, cycle_timestamp=at("2025-01-02T00:00:00+00:00")))
    trail.close()
    (rec,) = _lines(tmp_path / "performance.jsonl")
    assert rec["positions_count"] == 2 == len(rec["positions"])


def test_buffered_trail_writes_nothing_until_flushed(tmp_path):
    trail = AuditTrail(tmp_path, FakeClock(utc(2025, 1, 2)), durable=False, key=KEY)
    trail.record(OrderFailed(symbol="SPY", side="buy", quantity=1.0,
                             error="Insufficient buying power", order_data={"a": 1}, model="M",
                             order_id="tb-1", cycle_timestamp=at("2025-01-02T00:00:00+00:00")))
    trail.checkpoint()
    assert (tmp_path / "errors.jsonl").stat().st_size == 0
    trail.flush()
    (rec,) = _lines(tmp_path / "errors.jsonl")
    assert rec["event_type"] == "order_error" and rec["error"] == "Insufficient buying power"
    trail.close()


def test_durable_trail_writes_each_line_at_once(tmp_path):
    trail = AuditTrail(tmp_path, FakeClock(utc(2025, 1, 2)), durable=True, key=KEY)
    trail.record(OrderFailed(symbol="SPY", side="buy", quantity=1.0, error="x", order_data={},
                             model="M", order_id="tb-1",
                             cycle_timestamp=at("2025-01-02T00:00:00+00:00")))
    assert (tmp_path / "errors.jsonl").read_bytes().endswith(b"\n")
    trail.close()
