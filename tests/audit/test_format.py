"""The one declaration of the trail's format (audit/format.py) against what the code writes."""
from __future__ import annotations

import os
import re
from pathlib import Path

import orjson
import pytest

from audit.check import check_trail, record_problems
from audit.format import GUIDE, RECORD_CLASSES, RECORD_FORMATS, FieldSpec, event_types, guide_fields
from audit.records import (
    ERRORS,
    EVENTS,
    STREAMS,
    CycleCompleted,
    ModelDecided,
    OrderFailed,
    OrderSubmitted,
    TradeExecuted,
)
from audit.trail import AuditTrail
from bot import inbox
from tests.fakes import FakeClock, utc

ROOT = Path(__file__).resolve().parents[2]
KEY = b"test-audit-key-0123456789"
TS = "2025-11-18T14:30:00.123456+00:00"
SLOT = "2025-11-18T14:30:00+00:00"

# every field set (optional ones too), then only what must be there
FULL = {
    OrderSubmitted: OrderSubmitted("tb-1", "SPY", "buy", 10.0, 666.23, "limit", "accepted",
                                   100000.0, "M", "b-1", SLOT, limit_price=667.0),
    TradeExecuted: TradeExecuted("tb-1", "SPY", "sell", 5.0, 670.0, 3350.0, 5.0, 100010.0, "M",
                                 "tb-1-1", SLOT, pnl=18.75, commission=1.0),
    CycleCompleted: CycleCompleted(1.0, 1.0, {"SPY": 1.0}, 1.0, SLOT, 1, 1, 0, {"SPY": 2.0}),
    OrderFailed: OrderFailed("SPY", "buy", 1.0, "refused", {"a": 1}, "M", "tb-1", SLOT),
    ModelDecided: ModelDecided("M", SLOT, 1.0, "2025-11-17", ("SPY",), "ab" * 32, {"SPY": 1.0},
                               {"SPY": 1.0}, {"SPY": 1.0}, ({"check": "x"},), "why", False),
}
MINIMAL = {
    OrderSubmitted: OrderSubmitted("tb-1", "SPY", "buy", 10.0, 666.23, "market", "accepted",
                                   100000.0, "M", "b-1", SLOT),
    TradeExecuted: TradeExecuted("tb-1", "SPY", "buy", 10.0, 666.25, 6662.5, 10.0, 99999.8, "M",
                                 "tb-1-1", SLOT),
}


def written(rec) -> dict:
    return orjson.loads(orjson.dumps(rec.to_dict(TS)))


def test_every_record_class_is_declared_and_has_an_example():
    assert set(RECORD_CLASSES) == set(FULL)


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


# ---------------------------------------------------------------- every kind the code writes
_SOURCES = [p for d in ("bot", "audit", "models") for p in sorted((ROOT / d).rglob("*.py"))
            if p != ROOT / "audit" / "format.py"]  # the declaration names the classes in prose
_LITERAL = re.compile(r"\b(EventRecorded|ErrorRecorded)\(\s*\"(\w+)\"")
_ANY = re.compile(r"\b(EventRecorded|ErrorRecorded)\(")
_NOTICE = re.compile(r"\bnotices\.append\(\(\s*\"(\w+)\"")            # audit/stream.py
_INBOX = re.compile(r"(?<![\w.])(?:post|inbox\.post)\([^,()]+,\s*\"(\w+)\"")  # bot/inbox.py post()
_INBOX_NOTE = re.compile(r"\bnotes\.append\(\(\s*\"(\w+)\"")         # bot/inbox.py drain()
_WARNING = re.compile(r"\bDecisionWarning\(\s*\"(\w+)\"")            # models/*: a decision's warning
# the only places that record a kind they were handed, and where those kinds come from
FORWARDERS = {"audit/trail.py": ("stream notices",), "bot/cycle.py": ("inbox notes", "model warnings")}


def _written_kinds() -> tuple[set[str], set[str], dict[str, int]]:
    errors, events, forwarding = set(), set(), {}
    for path in _SOURCES:
        text = path.read_text()
        rel = path.relative_to(ROOT).as_posix()
        for cls, kind in _LITERAL.findall(text):
            (errors if cls == "ErrorRecorded" else events).add(kind)
        others = len(_ANY.findall(text)) - len(_LITERAL.findall(text))
        if others:
            forwarding[rel] = others
        events.update(_NOTICE.findall(text), _INBOX.findall(text), _INBOX_NOTE.findall(text),
                      _WARNING.findall(text))
    return errors, events, forwarding


def test_every_kind_the_code_writes_is_declared():
    errors, events, forwarding = _written_kinds()
    assert {"cycle_error", "price_error"} <= errors and {"bot_started", "repair", "lock_refused",
                                                          "inbox_error"} <= events  # the scan works
    assert errors - set(event_types(ERRORS)) == set(), "declare these in audit/format.py ERROR_DETAILS"
    assert events - set(event_types(EVENTS)) == set(), "declare these in audit/format.py EVENT_DETAILS"
    # a record built from a kind held in a variable is one of the known forwarders
    assert forwarding == {path: len(kinds) for path, kinds in FORWARDERS.items()}, (
        "a new place records a kind it was handed: scan its sources in this test too")


def test_every_declared_kind_is_written_somewhere():
    errors, events, _ = _written_kinds()
    typed = {cls.event_type for cls in RECORD_CLASSES}
    assert set(event_types(ERRORS)) - typed - errors == set(), "declared but never written"
    assert set(event_types(EVENTS)) - events == set(), "declared but never written"


def test_what_the_streams_notice_follows_the_declaration(tmp_path):
    """repair, damage, rotation, integrity_warning and possible_loss, provoked for real."""
    clock = FakeClock(utc(2025, 3, 3, 15))
    err = OrderFailed("SPY", "buy", 1.0, "refused", {}, "M", "tb-1", "2025-03-03T15:00:00+00:00")
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
    t.record(TradeExecuted("tb-1", "SPY", "buy", 1.0, 2.0, 2.0, 1.0, 3.0, "M", "f", "2025-03-03T15:00:00+00:00"))
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
    from audit.records import EventRecorded
    for kind, message, details in notes:
        t.record(EventRecorded(kind, message, details, level="WARN"))
    t.close()
    assert sorted(k for k, _, _ in notes) == ["inbox_error", "lock_refused"]
    report = check_trail(tmp_path / "logs")
    assert report.ok, report.problems
