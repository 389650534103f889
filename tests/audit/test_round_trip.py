"""Round trip: every record type decodes back from its own line, field for field, and reads what a
newer version, a damaged line or a later field puts in a line the way audit/records.py promises.

The records are drawn from the types themselves (tests/audit/record_strategies.py), so a record
type added to audit/records.py is covered here without editing this file.
"""
from __future__ import annotations

import dataclasses
import warnings
from datetime import timedelta

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit import records as record_module
from audit.files import iter_lines
from audit.records import (
    EVENTS,
    RECORD_KINDS,
    RECORD_TYPES,
    STREAMS,
    CycleCompleted,
    DamageFound,
    ModelDecided,
    OrderSubmitted,
    RecordError,
    SimulationFinished,
    SimulationStarted,
    TradeExecuted,
    UnknownRecord,
    decode,
    encode,
    record_type,
)
from audit.timestamps import format_timestamp
from tests.audit.record_strategies import (
    json_values,
    records,
    required_fields,
    stamps,
    time_fields,
)
from tests.fakes import at

ROUND_TRIP = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EXAMPLES = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TYPES = pytest.mark.parametrize("cls", RECORD_TYPES, ids=lambda cls: cls.__name__)


def test_the_strategies_cover_every_record_type():
    """Every type has at least one field a line sets, and a strategy for each (a type the
    strategies cannot build fails here, naming the hint to teach them)."""
    for cls in RECORD_TYPES:
        records(cls)  # raises TypeError for a hint it does not know
    assert len(RECORD_TYPES) == sum(len(kinds) for kinds in RECORD_KINDS.values())


@pytest.mark.slow
@TYPES
@ROUND_TRIP
@given(data=st.data())
def test_a_record_decodes_from_its_own_line(cls, data):
    """decode(encode(r)) == r, stamped by the trail or by the record itself, and from_dict reads
    what to_dict writes."""
    record = data.draw(records(cls, stamped=False))
    when = data.draw(stamps)
    line = encode(record, format_timestamp(when))
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    decoded = decode(cls.stream, line)
    stamped = dataclasses.replace(record, timestamp=when)
    assert type(decoded) is cls
    assert decoded == stamped
    assert decoded.timestamp == when and decoded.timestamp.utcoffset() == timedelta(0)
    assert encode(decoded) == line == encode(stamped)  # the same bytes again
    for version in (record, stamped):
        fields = version.to_dict()
        head = ["timestamp", "event_type"] if version.timestamp is not None else ["event_type"]
        assert list(fields)[:len(head)] == head
        assert cls.from_dict(fields) == version
        assert cls.from_dict(orjson.loads(orjson.dumps(fields))) == version


# ---------------------------------------------------------------- lines this version did not write
@pytest.mark.slow
@TYPES
@EXAMPLES
@given(data=st.data())
def test_fields_after_the_declared_ones_are_accepted(cls, data):
    record = data.draw(records(cls))
    fields = record.to_dict()
    later = data.draw(st.dictionaries(st.text(max_size=12).filter(lambda k: k not in fields),
                                      json_values, min_size=1, max_size=3))
    line = orjson.dumps({**fields, **later})
    assert decode(cls.stream, line) == record


@pytest.mark.slow
@TYPES
@EXAMPLES
@given(data=st.data())
def test_a_line_without_a_required_field_is_a_record_error_naming_it(cls, data):
    required = required_fields(cls)
    if not required:
        return
    fields = data.draw(records(cls)).to_dict()
    missing = data.draw(st.sampled_from(required))
    del fields[missing]
    with pytest.raises(RecordError, match=f"[`']{missing}[`']"):
        decode(cls.stream, orjson.dumps(fields))


NOT_TIMES = ["yesterday", "", "2026-02-30T14:30:00+00:00", "2026-02-30", "14:30", 20260102, 1.5,
             True, [], {}]


@pytest.mark.slow
@TYPES
@EXAMPLES
@given(data=st.data())
def test_a_malformed_time_is_a_record_error_naming_the_field(cls, data):
    fields = data.draw(records(cls)).to_dict()
    name = data.draw(st.sampled_from(time_fields(cls)))
    fields[name] = data.draw(st.sampled_from(NOT_TIMES))
    with pytest.raises(RecordError, match=f"[`']{name}[`']"):
        decode(cls.stream, orjson.dumps(fields))


def test_the_record_error_says_which_kind_lacks_what():
    line = encode(OrderSubmitted(order_id="tb-1", symbol="SPY", side="buy", quantity=1.0, price=2.0,
                                 order_type="market", status="accepted", nav=3.0, model="M",
                                 broker_order_id="b-1", cycle_timestamp=at("2026-01-02T14:30:00+00:00")),
                  "2026-01-02T14:30:00.000001+00:00")
    fields = orjson.loads(line)
    del fields["broker_order_id"]
    with pytest.raises(RecordError) as lacks:
        decode("orders.jsonl", orjson.dumps(fields))
    assert str(lacks.value) == "order_submitted lacks `broker_order_id`"
    fields = {**orjson.loads(line), "cycle_timestamp": "half past two"}
    with pytest.raises(RecordError) as malformed:
        decode("orders.jsonl", orjson.dumps(fields))
    assert str(malformed.value) == "`cycle_timestamp` is not a time: 'half past two'"


# ---------------------------------------------------------------- kinds a newer version writes
def test_an_unknown_kind_is_an_unknown_record_with_a_warning(monkeypatch):
    monkeypatch.setattr(record_module, "_warned", set())  # warned once per kind and process
    line = (b'{"timestamp":"2027-03-01T10:00:00.000001+00:00","event_type":"margin_call",'
            b'"message":"call","amount":1200.5}\n')
    with pytest.warns(UserWarning, match="margin_call"):
        record = decode(EVENTS, line)
    assert isinstance(record, UnknownRecord)
    assert (record.stream, record.event_type) == (EVENTS, "margin_call")
    assert record.timestamp == at("2027-03-01T10:00:00.000001+00:00")
    assert record.fields == orjson.loads(line)
    assert record.describe() == "call"
    assert encode(record) == line  # passed on as it was written
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        decode(EVENTS, line)  # once per kind: the second line of it is read without a warning


@EXAMPLES
@given(stream=st.sampled_from(STREAMS), data=st.data())
def test_an_unknown_kind_never_raises(stream, data):
    kind = data.draw(st.text(min_size=1, max_size=20).filter(lambda k: k not in RECORD_KINDS[stream]))
    timestamp = data.draw(st.none() | st.text(max_size=30) | stamps.map(format_timestamp))
    fields = data.draw(st.dictionaries(st.text(max_size=12), json_values, max_size=4))
    line = {**({} if timestamp is None else {"timestamp": timestamp}), "event_type": kind,
            **{k: v for k, v in fields.items() if k not in ("timestamp", "event_type")}}
    raw = orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        record = decode(stream, raw)
    assert isinstance(record, UnknownRecord) and record.event_type == kind
    assert record.fields == line
    assert encode(record) == raw


# ---------------------------------------------------------------- what the round trip found
def test_from_dict_reads_the_tuples_to_dict_leaves_as_tuples():
    """Found by test_from_dict_reads_what_to_dict_writes: `to_dict()` keeps a tuple field a tuple
    (orjson writes it as an array), and `from_dict` refused anything but a list ("`symbols` is
    tuple, not an array"), so no record with a tuple field came back from its own dict."""
    decided = ModelDecided(model="M", cycle_timestamp=at("2000-01-01T00:00:00+00:00"),
                           capital_share=0.0, as_of=None, symbols=("SPY",), input_sha256="",
                           scores={}, target_weights={}, final_weights={},
                           risk_checks=({"check": "x"},), reason="", hold=False)
    assert ModelDecided.from_dict(decided.to_dict()) == decided
    damage = DamageFound(message="m", file="orders.jsonl", lines=(3, 4))
    assert DamageFound.from_dict(damage.to_dict()) == damage
    with pytest.raises(RecordError, match="`lines` is str, not an array"):
        DamageFound.from_dict({**damage.to_dict(), "lines": "3,4"})


# ---------------------------------------------------------------- declaration order is file order
def declared_order(cls) -> list[str]:
    """`timestamp`, `event_type`, then the type's fields as declared."""
    return ["timestamp", "event_type"] + [f.name for f in dataclasses.fields(cls) if f.name != "timestamp"]


def out_of_order(stream: str, raw: bytes) -> tuple[type, str | None]:
    """(the line's type, what is wrong with its field order or None)."""
    fields = list(orjson.loads(raw))
    kind = orjson.loads(raw)["event_type"]
    cls = record_type(stream, kind)
    assert cls is not None, f"{stream}: {kind} is not a record type"
    declared = declared_order(cls)
    undeclared = [name for name in fields if name not in declared]
    if undeclared:
        return cls, f"fields the type does not declare: {undeclared}"
    if fields != [name for name in declared if name in fields]:
        return cls, f"{fields} is not in the order {declared}"
    return cls, None


def test_a_types_declaration_order_is_its_field_order_in_a_simulated_trail(sim_trail):
    seen, wrong, optional_written = set(), [], set()
    for stream in STREAMS:
        for where, raw in iter_lines(sim_trail, stream):
            cls, problem = out_of_order(stream, raw)
            seen.add(cls)
            optional_written.update((cls, name) for name in orjson.loads(raw)
                                    if name in ("pnl", "commission", "limit_price"))
            if problem:
                wrong.append(f"{where}: {problem}")
    assert not wrong, "\n".join(wrong[:10])
    assert {OrderSubmitted, TradeExecuted, CycleCompleted, ModelDecided, SimulationStarted,
            SimulationFinished} <= seen
    assert {(TradeExecuted, "pnl"), (TradeExecuted, "commission")} <= optional_written


def test_a_types_declaration_order_is_its_field_order_in_the_golden_lines():
    from tests.audit.golden_lines import EXPECTED
    seen, wrong = set(), []
    for key, (stream, line, _text) in sorted(EXPECTED.items()):
        cls, problem = out_of_order(stream, line.replace(b"<PID>", b"4242"))
        seen.add(cls)
        if problem:
            wrong.append(f"{key}: {problem}")
    assert not wrong, "\n".join(wrong)
    assert len(seen) >= 20
