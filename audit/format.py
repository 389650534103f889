"""The trail's format as field lists, generated from the record types of `audit/records.py`:
for each stream file, each `event_type` and its fields in file order, with their JSON types.
`tradebot audit check`, the JSON Schema in docs/schema/ and the tables of docs/audit-trail.md
all come from (or are checked against) these lists; nothing is declared here by hand.

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
from datetime import date, datetime
from typing import Any

from audit.records import RECORD_TYPES, STREAMS, Record, Unset

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


def _json_type(hint: Any) -> tuple[str, bool, bool]:
    """(JSON type, nullable, may be unset) of a Python type hint of a record field."""
    nullable = unset = False
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = list(typing.get_args(hint))
        nullable = type(None) in args
        unset = Unset in args
        args = [a for a in args if a is not type(None) and a is not Unset]
        if len(args) != 1:
            raise TypeError(f"cannot map {hint!r} to one JSON type")
        hint = args[0]
    origin = typing.get_origin(hint) or hint
    if origin is bool:
        return BOOLEAN, nullable, unset
    if origin is int:
        return INTEGER, nullable, unset
    if origin is float:
        return NUMBER, nullable, unset
    if origin in (str, datetime, date):
        return STRING, nullable, unset
    if isinstance(origin, type) and issubclass(origin, collections.abc.Mapping):
        return OBJECT, nullable, unset
    if origin in (tuple, list):
        return ARRAY, nullable, unset
    raise TypeError(f"cannot map {hint!r} to a JSON type")


def type_fields(cls: type[Record]) -> tuple[FieldSpec, ...]:
    """The fields a record type writes, in file order: `timestamp`, `event_type`, then its
    fields in declaration order. A field left out when it has no value is optional (never null)."""
    hints = typing.get_type_hints(cls)
    specs = list(HEAD)
    for f in dataclasses.fields(cls):
        if f.name == "timestamp":
            continue
        json_type, nullable, _unset = _json_type(hints[f.name])
        omit = f.metadata.get("omit")
        specs.append(_f(f.name, json_type, nullable=nullable and omit != "none",
                        optional=omit is not None,
                        origin=GUIDE if f.metadata.get("guide") else TRADEBOT))
    return tuple(specs)


def _declare() -> dict[str, dict[str, tuple[FieldSpec, ...]]]:
    formats: dict[str, dict[str, tuple[FieldSpec, ...]]] = {name: {} for name in STREAMS}
    for cls in RECORD_TYPES:
        formats[cls.stream][cls.event_type] = type_fields(cls)
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


