"""No code under bot/ or models/ reads a record's field by string key: readers get typed records
(`audit.files.iter_typed`, `audit.records.decode`) and use attributes, so a renamed field fails
the type check instead of showing up later as a silent gap. The serializer's side, where the keys
are the format, is audit/.

A read `x["name"]` or a call `x.get("name", ...)` whose constant key is the name of a field of
any record type (or `event_type`/`timestamp`) is a finding, and so is a comparison of an
`.event_type` with a string (use isinstance with the record type), unless it is in ALLOWED below:
a key that shares a name with a record field but belongs to something else (a settings dict, the
heartbeat, a broker's error body), with the reason.
"""
from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

from audit.records import RECORD_TYPES

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("bot", "models")


# (file, enclosing function) -> why the keys read there are not a record's fields
ALLOWED: dict[tuple[str, str], str] = {
    ("bot/__init__.py", "tradebot_version"): "pyproject.toml's [project] table",
    ("bot/adapters/alpaca/edge.py", "broker_words"): "the JSON body of an Alpaca API error",
    ("bot/app/live.py", "start_summary"): "the shown settings (Settings.redacted), for the start line",
    ("bot/adapters/inbox.py", "drain"): "a note another process left in the inbox (kind, message, details)",
    ("bot/app/health.py", "_starting"): "the heartbeat document (bot.heartbeat), not a trail record",
    ("bot/app/health.py", "_check_cycle"): "the heartbeat document (bot.heartbeat), not a trail record",
    ("bot/app/health.py", "check_health"): "the heartbeat document (bot.heartbeat), not a trail record",
    ("bot/core/recording.py", "intent_order"): "the state store's form of an order's intent "
                                          "(recording.intent_data, also an order_error's order_data)",
    ("bot/core/recording.py", "stored_slot"): "the state store's form of an order's intent",
    ("bot/core/recording.py", "unknown_order_failed"): "an order_error's order_data: the stored intent, "
                                                  "as much of it as the store still has",
    ("bot/core/recording.py", "stored_risk_check"): "one risk check inside a model_decision's "
                                               "risk_checks list (check, symbol, detail)",
}


def record_field_names() -> frozenset[str]:
    names = {"event_type", "timestamp"}
    for record_type in RECORD_TYPES:
        names.update(f.name for f in dataclasses.fields(record_type))
    return frozenset(names)


def constant_key(node: ast.AST) -> str | None:
    """The string key read by `x["key"]` or `x.get("key", ...)`, `event_type` for a comparison
    of `x.event_type` with a string; else None."""
    if isinstance(node, ast.Compare):
        sides = [node.left, *node.comparators]
        if (any(isinstance(s, ast.Attribute) and s.attr == "event_type" for s in sides)
                and any(isinstance(s, ast.Constant) and isinstance(s.value, str) for s in sides)):
            return "event_type"
        return None
    if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
        key = node.slice
    elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
          and node.func.attr == "get" and node.args):
        key = node.args[0]
    else:
        return None
    if isinstance(key, ast.Constant) and isinstance(key.value, str):
        return key.value
    return None


def findings_in(path: Path, fields: frozenset[str]) -> list[str]:
    relative = path.relative_to(ROOT).as_posix()
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=relative)
    found: list[str] = []

    def visit(node: ast.AST, function: str) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            function = node.name
        key = constant_key(node)
        if key in fields and (relative, function) not in ALLOWED:
            found.append(f"{relative}:{node.lineno} ({function}): reads the record field {key!r} "
                         f"by string key; read a typed record (audit.files.iter_typed, "
                         f"audit.records.decode) and use .{key} instead")
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(tree, "<module>")
    return found


def scanned_files() -> list[Path]:
    return [path for top in SCANNED for path in sorted((ROOT / top).rglob("*.py"))]


def test_no_string_key_access_to_record_fields() -> None:
    fields = record_field_names()
    findings = [f for path in scanned_files() for f in findings_in(path, fields)]
    assert not findings, f"{len(findings)} string-key reads of record fields:\n" + "\n".join(findings)


def test_the_scan_finds_a_string_key_read(tmp_path: Path) -> None:
    fields = record_field_names()
    sample = ROOT / "bot" / "_scan_sample.py"
    sample.write_text('def f(rec, out):\n'
                      '    out["nav"] = rec.nav\n'  # a store is not a read
                      '    return rec["order_id"], rec.get("nav", 0), rec.get(name)\n'
                      'def g(rec):\n'
                      '    return rec.event_type == "order_error", rec.kind == "x"\n')
    try:
        found = findings_in(sample, fields)
    finally:
        sample.unlink()
    assert [f.split(" ")[0] for f in found] == ["bot/_scan_sample.py:3", "bot/_scan_sample.py:3",
                                                "bot/_scan_sample.py:5"]
    assert "(f): reads the record field 'order_id' by string key" in found[0]
    assert "use .order_id instead" in found[0]


def test_every_allowance_is_still_needed() -> None:
    fields = record_field_names()
    used = set()
    for (relative, function) in ALLOWED:
        tree = ast.parse((ROOT / relative).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == function:
                if any(constant_key(n) in fields for n in ast.walk(node)):
                    used.add((relative, function))
    assert used == set(ALLOWED), f"allowances no longer needed: {set(ALLOWED) - used}"


def byte_patterns_in(path: Path, fields: frozenset[str], root: Path = ROOT) -> list[str]:
    """Text or bytes constants shaped like a piece of a record's line (`"fill_id":`): code that
    greps the files for the serializer's layout instead of asking audit/ (trail.has, decode)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
            text = node.value if isinstance(node.value, str) else node.value.decode("latin-1")
            found += [f"{path.relative_to(root)}:{node.lineno}: the byte pattern \"{name}\": of a "
                      "record line (ask audit/: trail.has, decode)"
                      for name in sorted(fields) if f'"{name}":' in text]
    return found


def test_no_byte_patterns_of_record_lines_outside_audit() -> None:
    fields = record_field_names()
    findings = [f for path in scanned_files() for f in byte_patterns_in(path, fields)]
    assert not findings, "\n".join(findings)


def test_the_byte_pattern_scan_finds_one(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("needle = b'\"fill_id\":\"' + fid.encode()\n")
    (found,) = byte_patterns_in(sample, record_field_names(), tmp_path)
    assert found.startswith("sample.py:1:") and '"fill_id":' in found
