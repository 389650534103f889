"""Hypothesis strategies for the trail's records, built from each record type's fields (their type
hints and metadata), so a new record type is covered without editing a test.

- a slot (`slot()`): a UTC datetime in whole seconds; a stamp (`stamp()`, the `timestamp`): a UTC
  datetime with microseconds; a day (`day()`): a date;
- str, int (64-bit, what orjson writes), bool, float (finite), `X | None` (and `| Unset`);
- `Mapping[str, X]`: a dict of short text keys; `tuple[X, ...]`: a tuple; `Any`: a JSON value as
  a line decodes it (None, bool, int, float, text, lists and dicts of those).
"""
from __future__ import annotations

import collections.abc
import dataclasses
import types
import typing
from datetime import timezone
from typing import Any

from hypothesis import strategies as st

from audit.records import DAY, SLOT, STAMP, UNSET, Record, Unset

UTC = timezone.utc
INT64 = st.integers(min_value=-(2 ** 63), max_value=2 ** 63 - 1)
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
KEYS = st.text(max_size=12)

stamps = st.datetimes(timezones=st.just(UTC))
slots = stamps.map(lambda moment: moment.replace(microsecond=0))
days = st.dates()
json_values = st.recursive(
    st.none() | st.booleans() | INT64 | FLOATS | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=8)

_FORMS = {SLOT: slots, STAMP: stamps, DAY: days}
_SCALARS = {str: st.text(max_size=40), int: INT64, bool: st.booleans(), float: FLOATS}


def value_of(hint: Any, form: str | None = None) -> st.SearchStrategy[Any]:
    """Values of a field typed `hint` (written in `form`, if it has one)."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return st.one_of([st.none() if arg is type(None) else st.just(UNSET) if arg is Unset
                          else value_of(arg, form) for arg in typing.get_args(hint)])
    if form is not None:
        return _FORMS[form]
    if hint is Any:
        return json_values
    if hint in _SCALARS:
        return _SCALARS[hint]
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is collections.abc.Mapping or origin is dict:
        return st.dictionaries(KEYS, value_of(args[1]), max_size=4)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return st.lists(value_of(args[0]), max_size=4).map(tuple)
    raise TypeError(f"no strategy for {hint!r}: teach tests/audit/record_strategies.py about it")


def records(cls: type[Record], *, stamped: bool = True) -> st.SearchStrategy[Record]:
    """Records of `cls` with every field it takes drawn from its type (`timestamp` set when
    `stamped`, else None as before the trail writes the record)."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: value_of(hints[f.name], f.metadata.get("form"))
              for f in dataclasses.fields(cls) if f.init and f.name != "timestamp"}
    fields["timestamp"] = stamps if stamped else st.none()
    return st.builds(cls, **fields)


def required_fields(cls: type[Record]) -> list[str]:
    """The fields a line must have to decode as `cls` (those without a default)."""
    return [f.name for f in dataclasses.fields(cls)
            if f.init and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]


def time_fields(cls: type[Record]) -> list[str]:
    """The fields of `cls` written as a slot, a stamp or a day (`timestamp` first)."""
    return [f.name for f in dataclasses.fields(cls) if f.metadata.get("form")]
