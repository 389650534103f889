"""The trail's format, declared once: for each stream file, each `event_type` and its fields in
file order, with their JSON types. `tradebot audit check` checks a trail against it and the
writers' tests check what the writers write against it.

The fields of the typed records (`OrderSubmitted`, `TradeExecuted`, `CycleCompleted`,
`OrderFailed`, `ModelDecided`) come from the record classes themselves: their dataclass fields
and type hints, plus a short note per class of what `to_dict` does beyond them (a derived field
such as `positions_count`, a field placed elsewhere, a field written only when set) and which
fields are the audit-log guide's. The catch-all records (`ErrorRecorded(kind=...)` in
errors.jsonl, `EventRecorded(kind=...)` in events.jsonl) carry their details as a free mapping,
so each kind's detail fields are declared here; a test finds every kind the code writes and
fails on one that is missing.

Every record starts with `timestamp` (UTC, six-digit microseconds, `+00:00`) and `event_type`.
A record may carry fields beyond its declared ones, after them (hosts and later versions add
fields at the end).
"""
from __future__ import annotations

import collections.abc
import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any

from audit.records import (ERRORS, EVENTS, STREAMS, CycleCompleted, ModelDecided, OrderFailed,
                           OrderSubmitted, TradeExecuted)

STRING, NUMBER, INTEGER, BOOLEAN, OBJECT, ARRAY = (
    "string", "number", "integer", "boolean", "object", "array")
JSON_TYPES = (STRING, NUMBER, INTEGER, BOOLEAN, OBJECT, ARRAY)
GUIDE, TRADEBOT = "guide", "tradebot"

# `timestamp`: when the line was written; `cycle_timestamp`: the scheduled slot (ASCII digits)
TIMESTAMP_FORM = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}\+00:00"
SLOT_FORM = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\+00:00"


@dataclass(frozen=True)
class FieldSpec:
    """One field of a record: its JSON type; `nullable`: the value may be null; `optional`: the
    field may be absent; `origin`: "guide" (the audit-log guide's field) or "tradebot" (ours)."""

    name: str
    json_type: str
    nullable: bool = False
    optional: bool = False
    origin: str = TRADEBOT

    def __post_init__(self) -> None:
        if self.json_type not in JSON_TYPES:
            raise ValueError(f"{self.name}: unknown JSON type {self.json_type!r}")
        if self.origin not in (GUIDE, TRADEBOT):
            raise ValueError(f"{self.name}: origin must be {GUIDE!r} or {TRADEBOT!r}")


def _f(name: str, json_type: str, *, nullable: bool = False, optional: bool = False,
       origin: str = TRADEBOT) -> FieldSpec:
    return FieldSpec(name, json_type, nullable, optional, origin)


HEAD = (_f("timestamp", STRING, origin=GUIDE), _f("event_type", STRING, origin=GUIDE))


# ---------------------------------------------------------------- the typed record classes
@dataclass(frozen=True)
class _Note:
    """What a class's `to_dict` does beyond writing its dataclass fields in their order."""

    guide: tuple[str, ...]                                  # the guide's fields of this record
    derived: tuple[tuple[FieldSpec, str], ...] = ()         # (field, placed before this field)
    moved: tuple[tuple[str, str], ...] = ()                 # (field, placed right after this one)
    only_when_set: tuple[str, ...] = ()                     # absent when None (or 0): optional


_NOTES: dict[type, _Note] = {
    OrderSubmitted: _Note(guide=("order_id", "symbol", "side", "quantity", "price", "order_type",
                                 "status", "nav", "model"),
                          only_when_set=("limit_price",)),
    TradeExecuted: _Note(guide=("order_id", "symbol", "side", "quantity", "price", "value",
                                "new_position", "nav"),
                         moved=(("pnl", "nav"), ("commission", "pnl")),
                         only_when_set=("pnl", "commission")),
    CycleCompleted: _Note(guide=("nav", "cash", "positions_count", "positions", "buying_power",
                                 "cycle_timestamp"),
                          derived=((_f("positions_count", INTEGER, origin=GUIDE), "positions"),)),
    OrderFailed: _Note(guide=("symbol", "side", "quantity", "error", "order_data")),
    ModelDecided: _Note(guide=()),
}
RECORD_CLASSES = tuple(_NOTES)


def _json_type(hint: Any) -> tuple[str, bool]:
    """(JSON type, nullable) of a Python type hint of a record field."""
    nullable = False
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        nullable = len(args) < len(typing.get_args(hint))
        if len(args) != 1:
            raise TypeError(f"cannot map {hint!r} to one JSON type")
        hint = args[0]
    origin = typing.get_origin(hint) or hint
    if origin is bool:
        return BOOLEAN, nullable
    if origin is int:
        return INTEGER, nullable
    if origin is float:
        return NUMBER, nullable
    if origin is str:
        return STRING, nullable
    if isinstance(origin, type) and issubclass(origin, collections.abc.Mapping):
        return OBJECT, nullable
    if origin in (tuple, list):
        return ARRAY, nullable
    raise TypeError(f"cannot map {hint!r} to a JSON type")


def class_fields(cls: type) -> tuple[FieldSpec, ...]:
    """The fields `cls.to_dict` writes, in its order, from the class and its note."""
    note = _NOTES[cls]
    hints = typing.get_type_hints(cls)
    specs: dict[str, FieldSpec] = {}
    for f in dataclasses.fields(cls):
        json_type, nullable = _json_type(hints[f.name])
        when_set = f.name in note.only_when_set  # None is left out, never written as null
        specs[f.name] = _f(f.name, json_type, nullable=nullable and not when_set,
                           optional=when_set,
                           origin=GUIDE if f.name in note.guide else TRADEBOT)
    order = list(specs)
    for name, after in note.moved:
        order.remove(name)
        order.insert(order.index(after) + 1, name)
    for spec, before in note.derived:
        specs[spec.name] = spec
        order.insert(order.index(before), spec.name)
    return HEAD + tuple(specs[name] for name in order)


# ---------------------------------------------------------------- the catch-all records
# errors.jsonl: ErrorRecorded(kind, error, cycle_timestamp=None, details) -> these details.
ERROR_HEAD = (_f("error", STRING, origin=GUIDE), _f("cycle_timestamp", STRING, optional=True))
ERROR_DETAILS: dict[str, tuple[FieldSpec, ...]] = {
    "data_error": (_f("symbol", STRING), _f("model", STRING)),
    "model_error": (_f("model", STRING),),
    "price_error": (_f("symbol", STRING), _f("price", NUMBER, nullable=True, optional=True)),
    "cycle_error": (),
    "broker_unavailable": (_f("attempt", INTEGER), _f("retry_in_seconds", NUMBER, nullable=True)),
}

# events.jsonl: EventRecorded(kind, message, details) -> these details.
_ORDER_NOTE = (_f("order_id", STRING), _f("cycle_timestamp", STRING))
EVENT_DETAILS: dict[str, tuple[FieldSpec, ...]] = {
    # start and stop (bot/cli.py, bot/simulate.py)
    "bot_started": (_f("pid", INTEGER), _f("command", STRING), _f("broker", STRING),
                    _f("schedule", STRING), _f("market_hours", STRING), _f("models", STRING),
                    _f("settings_sha256", STRING), _f("version", STRING)),
    "bot_stopped": (_f("pid", INTEGER), _f("reason", STRING)),
    "simulation_started": (_f("start", STRING), _f("end", STRING), _f("days", INTEGER),
                           _f("seed", INTEGER), _f("csv_dir", STRING),
                           _f("settings_sha256", STRING), _f("version", STRING)),
    "simulation_finished": (_f("days", INTEGER), _f("orders", INTEGER), _f("trades", INTEGER)),
    "audit_key_generated": (_f("key_file", STRING),),
    # the account and the broker (bot/cycle.py, bot/reconcile.py)
    "account_checked": (_f("nav", NUMBER), _f("cash", NUMBER), _f("buying_power", NUMBER),
                        _f("positions", OBJECT), _f("prices", OBJECT)),
    "reconciliation": (_f("positions", OBJECT), _f("unknown_open_orders", ARRAY),
                       _f("policy", STRING), _f("cycle_timestamp", STRING, optional=True)),
    # cycles and slots (bot/runner.py, bot/cycle.py)
    "cycle_skipped": (_f("reason", STRING), _f("from_slot", STRING, optional=True),
                      _f("next_slot", STRING), _f("policy", STRING)),
    "manual_cycle": (_f("cycle_timestamp", STRING),),
    "slot_resumed": (_f("cycle_timestamp", STRING),),
    "slot_missed": (_f("missed", INTEGER), _f("last_completed", STRING, optional=True),
                    _f("latest_due", STRING), _f("policy", STRING)),
    "clock_step": (_f("offset_seconds", NUMBER), _f("expected", STRING), _f("clock", STRING)),
    "kill_switch_engaged": (_f("cycle_timestamp", STRING), _f("blocked_orders", INTEGER)),
    # what a model's decision warns of (models/*: DecisionWarning, recorded by bot/cycle.py)
    "risk_off_held": (_f("cycle_timestamp", STRING), _f("model", STRING),
                      _f("trend_symbol", STRING), _f("defensive_symbol", STRING)),
    # orders (bot/cycle.py)
    "order_skipped": _ORDER_NOTE,
    "order_not_placed": _ORDER_NOTE,
    "order_canceled": _ORDER_NOTE,
    "order_open_at_deadline": (_f("order_id", STRING), _f("status", STRING, nullable=True),
                               _f("cycle_timestamp", STRING)),
    # notes from other processes (bot/inbox.py: a refused second `run`, an unreadable note)
    "lock_refused": (_f("pid", INTEGER), _f("refused_at", STRING)),
    "inbox_error": (_f("file", STRING),),
    # what the streams notice at start-up or while writing (audit/stream.py)
    "repair": (_f("file", STRING), _f("moved_to", STRING), _f("bytes", INTEGER),
               _f("kept_bytes", INTEGER)),
    "damage": (_f("file", STRING), _f("lines", ARRAY), _f("at", STRING, optional=True),
               _f("reason", STRING, optional=True)),
    "write_lost": (_f("file", STRING), _f("line", INTEGER), _f("segment", INTEGER)),
    "anchor_created": (_f("trail_id", STRING), _f("legacy", BOOLEAN)),
    "rotation": (_f("file", STRING),),
    "integrity_warning": (_f("file", STRING),),
    "possible_loss": (_f("file", STRING), _f("bytes_cut", INTEGER)),
    # the live trail's periodic self-verify failed (bot/selfcheck.py)
    "trail_verify_failed": (_f("problems", INTEGER), _f("summary", STRING)),
}


def _declare() -> dict[str, dict[str, tuple[FieldSpec, ...]]]:
    formats: dict[str, dict[str, tuple[FieldSpec, ...]]] = {name: {} for name in STREAMS}
    for cls in RECORD_CLASSES:
        formats[cls.stream][cls.event_type] = class_fields(cls)
    for kind, details in ERROR_DETAILS.items():
        formats[ERRORS][kind] = HEAD + ERROR_HEAD + details
    message = (_f("message", STRING),)
    for kind, details in EVENT_DETAILS.items():
        formats[EVENTS][kind] = HEAD + message + details
    return formats


RECORD_FORMATS: dict[str, dict[str, tuple[FieldSpec, ...]]] = _declare()
"""stream file name -> event_type -> its fields in file order (starting with timestamp, event_type)."""


def event_types(stream: str) -> tuple[str, ...]:
    """The event types a stream may hold, e.g. `event_types("orders.jsonl")`."""
    return tuple(RECORD_FORMATS[stream])


def fields_of(stream: str, event_type: str) -> tuple[FieldSpec, ...]:
    """The declared fields of one kind of record (KeyError for an unknown one)."""
    return RECORD_FORMATS[stream][event_type]


def guide_fields(stream: str, event_type: str) -> tuple[str, ...]:
    """The names of the guide's fields of one kind of record, in file order."""
    return tuple(f.name for f in RECORD_FORMATS[stream][event_type] if f.origin == GUIDE)


