"""The trail's format (audit/format.py, generated from the record types of audit/records.py)
against what the code writes."""
from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import orjson
import pytest

from audit.check import check_trail, record_problems
from audit.format import GUIDE, RECORD_FORMATS, FieldSpec, event_types, guide_fields
from audit.records import (
    ERRORS,
    EVENTS,
    RECORD_TYPES,
    STREAMS,
    CycleCompleted,
    ModelDecided,
    OrderFailed,
    OrderSubmitted,
    TradeExecuted,
    encode,
    event_from_notice,
    record_type,
)
from audit.trail import AuditTrail
from bot.adapters import inbox
from tests.fakes import FakeClock, at, on, utc

ROOT = Path(__file__).resolve().parents[2]
KEY = b"test-audit-key-0123456789"
TS = "2025-11-18T14:30:00.123456+00:00"
SLOT = "2025-11-18T14:30:00+00:00"

# every field set (optional ones too), then only what must be there
FULL = {
    OrderSubmitted: OrderSubmitted(order_id="tb-1", symbol="SPY", side="buy", quantity=10.0,
                                   price=666.23, order_type="limit", status="accepted",
                                   nav=100000.0, model="M", broker_order_id="b-1",
                                   cycle_timestamp=at(SLOT), limit_price=667.0),
    TradeExecuted: TradeExecuted(order_id="tb-1", symbol="SPY", side="sell", quantity=5.0,
                                 price=670.0, value=3350.0, new_position=5.0, nav=100010.0,
                                 pnl=18.75, commission=1.0, model="M", fill_id="tb-1-1",
                                 cycle_timestamp=at(SLOT)),
    CycleCompleted: CycleCompleted(nav=1.0, cash=1.0, positions={"SPY": 1.0}, buying_power=1.0,
                                   cycle_timestamp=at(SLOT), orders=1, fills=1, errors=0,
                                   prices={"SPY": 2.0}),
    OrderFailed: OrderFailed(symbol="SPY", side="buy", quantity=1.0, error="refused",
                             order_data={"a": 1}, model="M", order_id="tb-1",
                             cycle_timestamp=at(SLOT)),
    ModelDecided: ModelDecided(model="M", cycle_timestamp=at(SLOT), capital_share=1.0,
                               as_of=on("2025-11-17"), symbols=("SPY",), input_sha256="ab" * 32,
                               scores={"SPY": 1.0}, target_weights={"SPY": 1.0},
                               final_weights={"SPY": 1.0}, risk_checks=({"check": "x"},),
                               reason="why", hold=False, model_version="1",
                               params_sha256="cd" * 32),
}
MINIMAL = {
    ModelDecided: dataclasses.replace(FULL[ModelDecided], model_version=None, params_sha256=None),
    OrderSubmitted: OrderSubmitted(order_id="tb-1", symbol="SPY", side="buy", quantity=10.0,
                                   price=666.23, order_type="market", status="accepted",
                                   nav=100000.0, model="M", broker_order_id="b-1",
                                   cycle_timestamp=at(SLOT)),
    TradeExecuted: TradeExecuted(order_id="tb-1", symbol="SPY", side="buy", quantity=10.0,
                                 price=666.25, value=6662.5, new_position=10.0, nav=99999.8,
                                 model="M", fill_id="tb-1-1", cycle_timestamp=at(SLOT)),
}


def written(rec) -> dict:
    return orjson.loads(encode(rec, TS))


def test_the_format_is_generated_from_the_record_types():
    assert {(c.stream, c.event_type) for c in RECORD_TYPES} == {
        (stream, kind) for stream, kinds in RECORD_FORMATS.items() for kind in kinds}
    for cls in RECORD_TYPES:
        names = [f.name for f in dataclasses.fields(cls)]
        assert [s.name for s in RECORD_FORMATS[cls.stream][cls.event_type]] == (
            ["timestamp", "event_type"] + names[1:]), cls.__name__


@pytest.mark.parametrize("cls", list(FULL), ids=lambda c: c.__name__)
def test_a_record_class_writes_exactly_its_declared_fields_in_order(cls):
    specs = RECORD_FORMATS[cls.stream][cls.event_type]
    full = written(FULL[cls])
    assert list(full) == [s.name for s in specs]
    assert record_problems(cls.stream, full) == []
    minimal = written(MINIMAL.get(cls, FULL[cls]))
    assert list(minimal) == [s.name for s in specs if not s.optional]
    assert record_problems(cls.stream, minimal) == []


def test_the_declaration_starts_each_record_with_timestamp_and_event_type():
    assert set(RECORD_FORMATS) == set(STREAMS)
    for stream, kinds in RECORD_FORMATS.items():
        assert kinds, stream
        for kind, specs in kinds.items():
            assert [s.name for s in specs[:2]] == ["timestamp", "event_type"], kind
            assert all(isinstance(s, FieldSpec) for s in specs)
            assert len({s.name for s in specs}) == len(specs), f"{kind}: a field declared twice"


def test_the_guides_fields_are_marked_as_the_guides():
    assert guide_fields("orders.jsonl", "order_submitted") == (
        "timestamp", "event_type", "order_id", "symbol", "side", "quantity", "price", "order_type",
        "status", "nav", "model")
    assert guide_fields("trades.jsonl", "trade_executed")[-3:] == ("value", "new_position", "nav")
    perf = {s.name: s for s in RECORD_FORMATS["performance.jsonl"]["cycle_complete"]}
    assert perf["positions_count"].json_type == "integer" and perf["positions_count"].origin == GUIDE
    assert perf["prices"].origin == "tradebot"
    assert guide_fields(ERRORS, "order_error") == (
        "timestamp", "event_type", "symbol", "side", "quantity", "error", "order_data")
    pnl = {s.name: s for s in RECORD_FORMATS["trades.jsonl"]["trade_executed"]}["pnl"]
    assert pnl.optional and pnl.json_type == "number" and pnl.origin == "tradebot"
    assert event_types("orders.jsonl") == ("order_submitted",)
    assert "cycle_error" in event_types(ERRORS) and "bot_started" in event_types(EVENTS)


def test_a_field_spec_refuses_an_unknown_type():
    with pytest.raises(ValueError, match="unknown JSON type"):
        FieldSpec("x", "float")


# ---------------------------------------------------------------- kinds handed over as text
# Everything is recorded as its type, but for what arrives as (kind, message, details): what
# the streams notice (audit/stream.py, audit/trail.py), notes other processes leave (bot/adapters/inbox.py)
# and the warnings of a model's decision (models/*). Each of those kinds must be a record type.
_SOURCES = [p for d in ("bot", "audit", "models") for p in sorted((ROOT / d).rglob("*.py"))]
_NOTICE = re.compile(r"\bnotices\.append\(\(\s*\"(\w+)\"")            # audit/stream.py, trail.py
# bot/adapters/inbox.py post(), bot/wiring.py post_note()
_INBOX = re.compile(r"(?<![\w.])(?:post|post_note|inbox\.post)\([^,()]+,\s*\"(\w+)\"")
_INBOX_NOTE = re.compile(r"\bnotes\.append\(\(\s*\"(\w+)\"")         # bot/adapters/inbox.py drain()
_WARNING = re.compile(r"\bDecisionWarning\(\s*\"(\w+)\"")            # models/*: a decision's warning


def _handed_over_kinds() -> set[str]:
    kinds: set[str] = set()
    for path in _SOURCES:
        text = path.read_text()
        kinds.update(_NOTICE.findall(text), _INBOX.findall(text), _INBOX_NOTE.findall(text),
                     _WARNING.findall(text))
    return kinds


def test_every_kind_handed_over_as_text_is_a_record_type():
    kinds = _handed_over_kinds()
    assert {"repair", "damage", "rotation", "lock_refused", "inbox_error",
            "risk_off_held"} <= kinds  # the scan works
    assert {k for k in kinds if record_type(EVENTS, k) is None} == set(), (
        "declare a record type for these in audit/records.py")


def test_no_catch_all_record_is_left():
    for path in _SOURCES:
        assert "EventRecorded(" not in path.read_text() and "ErrorRecorded(" not in path.read_text()


def test_what_the_streams_notice_follows_the_declaration(tmp_path):
    """repair, damage, rotation, integrity_warning and possible_loss, provoked for real."""
    clock = FakeClock(utc(2025, 3, 3, 15))
    err = OrderFailed(symbol="SPY", side="buy", quantity=1.0, error="refused", order_data={},
                      model="M", order_id="tb-1", cycle_timestamp=at("2025-03-03T15:00:00+00:00"))
    t = AuditTrail(tmp_path, clock, durable=True, key=KEY)
    for _ in range(3):
        t.record(err)
    t.checkpoint()
    t.close()
    with open(tmp_path / "orders.jsonl", "ab") as f:  # a torn tail
        f.write(b'{"timestamp":"2025-03-03T15:0')
    with open(tmp_path / "decisions.jsonl", "ab") as f:  # damage inside, then a whole line
        f.write(b"garbage\n{}\n")
    lines = (tmp_path / "errors.jsonl").read_bytes().splitlines(keepends=True)
    (tmp_path / "errors.jsonl").write_bytes(lines[0])  # fewer lines than the chain says
    clock.advance(60)
    t = AuditTrail(tmp_path, clock, durable=True, key=KEY)
    t.record(err)
    t.checkpoint()
    os.rename(tmp_path / "trades.jsonl", tmp_path / "trades.jsonl.1")  # external rotation
    t.record(TradeExecuted(order_id="tb-1", symbol="SPY", side="buy", quantity=1.0, price=2.0,
                           value=2.0, new_position=1.0, nav=3.0, model="M", fill_id="f",
                           cycle_timestamp=at("2025-03-03T15:00:00+00:00")))
    os.truncate(tmp_path / "errors.jsonl", 0)  # copytruncate
    t.record(err)
    t.close()
    events = [orjson.loads(x) for x in (tmp_path / "events.jsonl").read_bytes().splitlines()]
    kinds = {e["event_type"] for e in events}
    assert {"repair", "damage", "integrity_warning", "rotation", "possible_loss"} <= kinds
    for e in events:
        assert record_problems(EVENTS, e) == [], e


def test_notes_from_other_processes_follow_the_declaration(tmp_path):
    box = tmp_path / "inbox"
    inbox.post(box, "lock_refused", "another tradebot holds the lock", {"pid": 7, "refused_at": TS})
    (box / "broken.json").write_bytes(b"{")
    notes = inbox.drain(box)
    t = AuditTrail(tmp_path / "logs", FakeClock(utc(2025, 3, 3, 15)), durable=True, key=KEY)
    for kind, message, details in notes:
        t.record(event_from_notice(kind, message, details))
    t.close()
    assert sorted(k for k, _, _ in notes) == ["inbox_error", "lock_refused"]
    report = check_trail(tmp_path / "logs")
    assert report.ok, report.problems
