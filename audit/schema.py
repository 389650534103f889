"""JSON Schema (draft 2020-12) of the trail's six streams, generated from the record types.

One schema per stream: a line is an object with `timestamp` and `event_type`, and `oneOf` the
stream's kinds, each told apart by its `event_type` (a `const`). Each kind lists its fields in
file order with their JSON types (`null` where the field may be null), the forms of its times
(a record's `timestamp`: six-digit microseconds; a slot: whole seconds; a day: YYYY-MM-DD), and
`required`: every field the kind always writes. `additionalProperties` is true: a record may
carry fields after its declared ones (a later version, or a host, adds them at the end).

Nothing here is declared by hand: the kinds come from `audit.records.RECORD_KINDS`, the fields and
their JSON types from `audit.format.type_fields`, and the forms and what an object or array holds
from the types' field metadata and hints. The checked-in files under docs/schema/ are these
schemas (tests/audit/test_schema.py fails when they differ); after a change of a record type:

    .venv/bin/python -m audit.schema --write docs/schema
"""
from __future__ import annotations

import argparse
import collections.abc
import dataclasses
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any

from audit.format import ARRAY, OBJECT, SLOT_FORM, TIMESTAMP_FORM, FieldSpec, type_fields
from audit.records import DAY, RECORD_KINDS, SLOT, STAMP, STREAMS, Record, Unset

DRAFT = "https://json-schema.org/draft/2020-12/schema"
DAY_FORM = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
REGENERATE = "python -m audit.schema --write docs/schema"

# what each time form's value looks like: (JSON Schema format, pattern, description)
_TIME_FORMS = {
    STAMP: ("date-time", TIMESTAMP_FORM, "UTC, six-digit microseconds, e.g. 2026-01-02T14:30:00.000000+00:00"),
    SLOT: ("date-time", SLOT_FORM, "a scheduled slot: UTC, whole seconds, e.g. 2026-01-02T14:30:00+00:00"),
    DAY: ("date", DAY_FORM, "a day, YYYY-MM-DD"),
}
_LEFT_OUT = {"none": "absent when it has no value", "zero": "absent when zero",
             "unset": "absent when there is none"}
_SCALARS = {bool: "boolean", int: "integer", float: "number", str: "string"}


def file_name(stream: str) -> str:
    """The schema's file name, e.g. `orders.jsonl.schema.json`."""
    return f"{stream}.schema.json"


def schema_for(stream: str) -> dict[str, Any]:
    """The JSON Schema of one line of `stream` (e.g. `schema_for("orders.jsonl")`)."""
    if stream not in RECORD_KINDS:
        raise ValueError(f"{stream!r} is not a stream of the trail; one of: {', '.join(STREAMS)}")
    kinds = RECORD_KINDS[stream]
    return {
        "$schema": DRAFT,
        "$id": f"urn:tradebot:audit-trail:{stream}",
        "title": f"A line of {stream}",
        "description": (f"One record of the tradebot audit trail's {stream}, a JSON object on one "
                        f"line. Generated from the record types (audit/records.py) by `{REGENERATE}`;"
                        " do not edit."),
        "type": "object",
        "properties": {"event_type": {"enum": list(kinds)}},
        "required": ["timestamp", "event_type"],
        "oneOf": [{"$ref": f"#/$defs/{kind}"} for kind in kinds],
        "$defs": {kind: _kind_schema(cls) for kind, cls in kinds.items()},
    }


def all_schemas() -> dict[str, str]:
    """file name -> its text (2-space indent, a trailing newline), for every stream."""
    return {file_name(stream): render(schema_for(stream)) for stream in STREAMS}


def render(schema: dict[str, Any]) -> str:
    """The schema as its file holds it: keys in the order they were built, 2-space indent."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def _kind_schema(cls: type[Record]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    properties: dict[str, Any] = {}
    for spec in type_fields(cls):
        if spec.name == "event_type":
            properties[spec.name] = {"const": cls.event_type}
        else:
            properties[spec.name] = _field_schema(spec, fields[spec.name], hints[spec.name])
    kind: dict[str, Any] = {"title": cls.event_type}
    description = _description(cls)
    if description:
        kind["description"] = description
    kind.update({
        "type": "object",
        "properties": properties,
        "required": [spec.name for spec in type_fields(cls) if not spec.optional],
        "additionalProperties": True,
    })
    return kind


def _description(cls: type[Record]) -> str:
    """The type's docstring, on one line; a dataclass without one has its signature there."""
    doc = cls.__doc__ or ""
    if doc.startswith(f"{cls.__name__}("):
        return ""
    return " ".join(doc.split())


def _field_schema(spec: FieldSpec, declared: dataclasses.Field, hint: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": [spec.json_type, "null"] if spec.nullable else spec.json_type}
    notes = []
    if spec.name == "timestamp":
        notes.append("when the record was written")
    form = declared.metadata.get("form")
    if form is not None:
        time_format, pattern, said = _TIME_FORMS[form]
        schema["format"] = time_format
        schema["pattern"] = f"^{pattern}$"
        notes.append(said)
    inner = _inner(_without_none(hint))
    if spec.json_type == OBJECT and inner is not None:
        schema["additionalProperties"] = inner
    elif spec.json_type == ARRAY and inner is not None:
        schema["items"] = inner
    omit = declared.metadata.get("omit")
    if omit is not None:
        notes.append(_LEFT_OUT[omit])
    if spec.origin == "guide":
        notes.append("a field of the audit-log guide")
    if notes:
        schema["description"] = "; ".join(notes)
    return schema


def _without_none(hint: Any) -> Any:
    """`X` of `X | None` (and of `X | None | Unset`)."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        (hint,) = [a for a in typing.get_args(hint) if a is not type(None) and a is not Unset]
    return hint


def _inner(hint: Any) -> dict[str, Any] | None:
    """The schema of what a Mapping's values or a tuple's items are; None when anything goes."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is collections.abc.Mapping or origin is dict:
        return _value_schema(args[1]) if args else None
    if origin is tuple and args and args[-1] is not Ellipsis:
        raise TypeError(f"cannot map {hint!r} to a JSON Schema: only tuple[X, ...] is an array")
    if origin is tuple or origin is list:
        return _value_schema(args[0]) if args else None
    return None


def _value_schema(hint: Any) -> dict[str, Any] | None:
    """The schema of a value inside an object or array (None for `Any`)."""
    if hint is Any:
        return None
    if hint in _SCALARS:
        return {"type": _SCALARS[hint]}
    origin = typing.get_origin(hint) or hint
    if isinstance(origin, type) and issubclass(origin, collections.abc.Mapping):
        inner = _inner(hint)
        return {"type": "object"} if inner is None else {"type": "object", "additionalProperties": inner}
    if origin in (tuple, list):
        inner = _inner(hint)
        return {"type": "array"} if inner is None else {"type": "array", "items": inner}
    raise TypeError(f"cannot map {hint!r} to a JSON Schema")


# ---------------------------------------------------------------- python -m audit.schema
def write(directory: Path) -> list[str]:
    """Write every stream's schema into `directory`; the names of the files that changed."""
    directory.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, text in all_schemas().items():
        path = directory / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(name)
    return changed


def differences(directory: Path) -> list[str]:
    """The schema files of `directory` that are missing or differ from the generated ones."""
    return [name for name, text in all_schemas().items()
            if not (directory / name).is_file()
            or (directory / name).read_text(encoding="utf-8") != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m audit.schema",
        description="The JSON Schema (draft 2020-12) of each stream of the trail, generated from "
                    "the record types: print one, write them all, or check the written ones.")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", metavar="DIR", type=Path,
                        help="write one NAME.schema.json per stream into DIR (docs/schema)")
    action.add_argument("--check", metavar="DIR", type=Path,
                        help="exit 1 when the files in DIR differ from the generated schemas")
    action.add_argument("--print", metavar="STREAM", dest="stream",
                        help=f"print the schema of one stream ({', '.join(STREAMS)})")
    args = parser.parse_args(argv)
    if args.stream is not None:
        try:
            sys.stdout.write(render(schema_for(args.stream)))
        except ValueError as exc:
            sys.stderr.write(f"error: {exc}\n")
            return 2
        return 0
    if args.write is not None:
        if args.write.exists() and not args.write.is_dir():
            sys.stderr.write(f"error: {args.write} is not a directory; give the directory the "
                             "schemas go to, e.g. docs/schema\n")
            return 2
        changed = write(args.write)
        print(f"{len(changed)} of {len(STREAMS)} schema files written to {args.write}"
              + (f": {', '.join(changed)}" if changed else " (all were up to date)"))
        return 0
    stale = differences(args.check)
    if stale:
        sys.stderr.write(f"{args.check}: {', '.join(stale)} differ from the record types; "
                         f"regenerate them with `{REGENERATE}`\n")
        return 1
    print(f"{args.check}: the {len(STREAMS)} schema files match the record types")
    return 0


if __name__ == "__main__":
    sys.exit(main())
