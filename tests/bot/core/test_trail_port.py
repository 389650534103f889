"""The cycle's trail port (bot/core/ports.py): the in-memory fake and the real AuditTrail answer
`has` alike, whatever the key order of a line, and the cycle runs against the fake alone."""
from __future__ import annotations

import inspect

import pytest

from audit.records import (
    DECISIONS,
    ERRORS,
    ORDERS,
    PERFORMANCE,
    TRADES,
    CycleCompleted,
    ModelDecided,
    OrderSubmitted,
    TradeExecuted,
)
from audit.trail import AuditTrail
from bot.adapters.state_store import StateStore
from bot.core import recording
from bot.core.cycle import Bot, recover, run_cycle
from bot.core.domain import Side
from bot.core.ports import RunningTrail, Trail
from tests.fakes import FakeClock, MemoryTrail, make_bot, utc

SLOT = utc(2025, 3, 3, 15, 0)
KEY = b"test-audit-key-0123456789"


def _trade(fill_id: str = "f-1", slot=SLOT) -> TradeExecuted:
    return TradeExecuted(order_id="tb-1", symbol="SPY", side="buy", quantity=2.0, price=10.0,
                         value=20.0, new_position=2.0, nav=100.0, model="M", fill_id=fill_id,
                         cycle_timestamp=slot)


@pytest.fixture(params=["memory", "audit"])
def trail(request, tmp_path):
    clock = FakeClock(SLOT)
    if request.param == "memory":
        yield MemoryTrail(clock)
        return
    t = AuditTrail(tmp_path / "logs", clock, durable=True, key=KEY)
    yield t
    t.close()


@pytest.mark.parametrize("impl", [MemoryTrail, AuditTrail])
def test_both_trails_have_the_ports_methods_with_its_parameters(impl):
    for port in (Trail, RunningTrail):
        for name in ("record", "checkpoint", "has", "log", "close"):
            if not hasattr(port, name):
                continue
            wanted = list(inspect.signature(getattr(port, name)).parameters)
            got = list(inspect.signature(getattr(impl, name)).parameters)
            assert got[:len(wanted)] == wanted or got[1:len(wanted)] == wanted[1:], (impl, name)


def test_has_finds_a_record_by_its_fields_and_only_that_one(trail):
    trail.record(_trade("f-1"))
    assert trail.has(TRADES, fill_id="f-1")
    assert trail.has(TRADES, fill_id="f-1", cycle_timestamp=SLOT, model="M")
    assert not trail.has(TRADES, fill_id="f-2")
    assert not trail.has(TRADES, fill_id="f-1", model="other")
    assert not trail.has(TRADES, fill_id="f-1", cycle_timestamp=utc(2025, 3, 4, 15))
    assert not trail.has(ORDERS, order_id="tb-1")  # another stream


def test_has_compares_slots_as_times_not_as_text(trail):
    from datetime import timedelta, timezone
    trail.record(_trade("f-1"))
    new_york = SLOT.astimezone(timezone(timedelta(hours=-5)))
    assert trail.has(TRADES, fill_id="f-1", cycle_timestamp=new_york)


def test_audit_trail_has_does_not_depend_on_the_key_order_of_a_line(tmp_path):
    """A decision written by another version with its keys in another order is still found:
    recovery asks by field, not by a byte pattern of the serializer's layout."""
    logs = tmp_path / "logs"
    t = AuditTrail(logs, FakeClock(SLOT), durable=True, key=KEY)
    t.close()
    line = (b'{"cycle_timestamp":"2025-03-03T15:00:00+00:00","timestamp":"2025-03-03T15:00:01.0000'
            b'00+00:00","event_type":"model_decision","capital_share":1.0,"model":"M","as_of":null,'
            b'"symbols":[],"input_sha256":"x","scores":{},"target_weights":{},"final_weights":{},'
            b'"risk_checks":[],"reason":"r","hold":true}\n')
    with open(logs / DECISIONS, "ab") as f:
        f.write(line)
    t = AuditTrail(logs, FakeClock(SLOT), durable=True, key=KEY)
    try:
        assert t.has(DECISIONS, model="M", cycle_timestamp=SLOT)
        assert not t.has(DECISIONS, model="N", cycle_timestamp=SLOT)
    finally:
        t.close()


def test_audit_trail_has_looks_in_the_newest_rotated_segment_and_skips_a_torn_line(tmp_path):
    logs = tmp_path / "logs"
    t = AuditTrail(logs, FakeClock(SLOT), durable=True, key=KEY)
    t.record(_trade("f-1"))
    t.rotate()
    t.record(_trade("f-2"))
    assert t.has(TRADES, fill_id="f-1") and t.has(TRADES, fill_id="f-2")
    t.close()
    with open(logs / TRADES, "ab") as f:
        f.write(b'{"timestamp":"2025-03-03T15:00:00.000000+00:00","event_type":"trade_executed",'
                b'"fill_id":"f-3"')  # torn: the process died mid-line
    assert not AuditTrail.has(_Reader(logs), TRADES, fill_id="f-3")


class _Reader:
    """Just enough of an AuditTrail for `has` on a directory nobody writes."""

    def __init__(self, log_dir):
        self.log_dir = log_dir


def _bot(trail: MemoryTrail, state: StateStore) -> Bot:
    return make_bot(clock=trail.clock, trail=trail, journal=state)


def test_the_cycle_runs_against_the_in_memory_trail():
    trail = MemoryTrail(FakeClock(SLOT))
    out = run_cycle(_bot(trail, StateStore(None)), SLOT)
    assert out.orders == 3
    assert len(trail.of(OrderSubmitted)) == 3 == len(trail.of(TradeExecuted))
    (decision,) = trail.of(ModelDecided)
    (snapshot,) = trail.of(CycleCompleted)
    assert decision.cycle_timestamp == SLOT == snapshot.cycle_timestamp
    assert snapshot.positions_count == 3 and trail.checkpoints == 1


def test_recovery_writes_a_stored_fill_once_asking_the_trail():
    """A fill stored write-ahead whose line did reach the trail is not written again; one whose
    line did not is written, from the stored record, exactly as the cycle would have."""
    clock = FakeClock(SLOT)
    trail = MemoryTrail(clock)
    state = StateStore(None)
    written, lost = _trade("f-1"), _trade("f-2")
    for trade in (written, lost):
        state.record_intent("tb-1", recording.intent_data(_order(), SLOT))
        state.mark_sent("tb-1")
        state.fill_writing(trade.fill_id, "tb-1", trade.quantity, recording.trade_data(trade))
    trail.record(written)
    recover(_bot(trail, state).deps)
    trades = trail.of(TradeExecuted)
    assert [t.fill_id for t in trades] == ["f-1", "f-2"]
    assert trades[1].to_dict() == {**lost.to_dict(), "timestamp": trades[1].to_dict()["timestamp"]}
    assert not state.fills_writing()


def _order():
    from bot.core.domain import OrderRequest
    return OrderRequest("tb-1", "SPY", Side.BUY, 2.0, 10.0, "M")


def test_recovery_asks_for_a_completed_slot_by_time():
    clock = FakeClock(SLOT)
    trail = MemoryTrail(clock)
    state = StateStore(None)
    state.start_slot(SLOT)
    trail.record(CycleCompleted(nav=1.0, cash=1.0, positions={}, buying_power=1.0,
                                cycle_timestamp=SLOT))
    recover(_bot(trail, state).deps)
    assert state.last_slot == SLOT
    assert trail.has(PERFORMANCE, cycle_timestamp=SLOT) and not trail.has(ERRORS, order_id="x")
