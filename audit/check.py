"""Check every line of a trail against its format: the field lists `audit/format.py` generates
from the record types of `audit/records.py`.

For each stream (every file: `name.N.gz`/`name.N` from the oldest, then the active file) and
each line: it is one JSON object; its `event_type` is known for its file; the declared fields
are present (optional ones may be absent), in the declared order, with the declared JSON types
(numbers finite, integers whole, a bool is not a number); fields beyond the declared ones come
after them; `timestamp` is UTC with six-digit microseconds and `+00:00`; `cycle_timestamp` (when
set) is a whole-second slot; the file ends with a newline. And the guide's own rules: `side` is
buy or sell and `quantity` positive (orders, trades); a trade's `value` is quantity x price
(within max(0.011, 1e-6 x value)); `positions_count` is the number of `positions`, each a number;
timestamps do not go backwards within a file. production.log must exist and be UTF-8.

Reading only. Most lines take a fast path: a line whose keys, value types and event type were
seen before reuses that verdict, and only its values are checked; any line that fails goes
through the exact checks, which name every problem. Big trails are checked one file per worker.
"""
from __future__ import annotations

import json
import math
import multiprocessing
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator, TypeGuard

import orjson

from audit.files import iter_chunks, segments
from audit.format import (
    ARRAY,
    BOOLEAN,
    GUIDE,
    INTEGER,
    NUMBER,
    OBJECT,
    RECORD_FORMATS,
    SLOT_FORM,
    STRING,
    TIMESTAMP_FORM,
    FieldSpec,
)
from audit.records import ORDERS, PERFORMANCE, PRODUCTION_LOG, STREAMS, TRADES

MAX_PER_FILE = 20          # problem lines printed per file; the rest are counted
PARALLEL_MIN = 32 << 20    # bytes of trail from which files are checked in parallel
_TIMESTAMP = re.compile(TIMESTAMP_FORM)  # used with fullmatch
_SLOT = re.compile(SLOT_FORM)
_SIDES = frozenset(("buy", "sell"))
_PY_TYPES = {STRING: (str,), NUMBER: (int, float), INTEGER: (int,), BOOLEAN: (bool,),
             OBJECT: (dict,), ARRAY: (list,)}
_A = {STRING: "a string", NUMBER: "a number", INTEGER: "an integer", BOOLEAN: "true or false",
      OBJECT: "an object", ARRAY: "an array"}


@dataclass
class FileResult:
    """One file's outcome: lines that passed and failed, and the problems to print (capped)."""

    name: str
    passed: int = 0
    failed: int = 0
    problems: list[str] = field(default_factory=list)
    more: int = 0  # problem lines beyond MAX_PER_FILE, counted only

    def add(self, where: str, message: str) -> None:
        if len(self.problems) < MAX_PER_FILE:
            self.problems.append(f"{where}: {message}")
        else:
            self.more += 1

    def lines(self) -> list[str]:
        tail = [f"{self.name}: ... {self.more} more problems"] if self.more else []
        return self.problems + tail


@dataclass
class CheckReport:
    """The whole trail's outcome. `passed`/`failed` count lines of the six streams, plus
    production.log and each missing stream as one item each."""

    files: list[FileResult] = field(default_factory=list)
    passed: int = 0
    failed: int = 0

    def add(self, result: FileResult) -> None:
        self.files.append(result)
        self.passed += result.passed
        self.failed += result.failed

    @property
    def problems(self) -> list[str]:
        return [line for f in self.files for line in f.lines()]

    @property
    def ok(self) -> bool:
        return self.failed == 0

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def summary(self) -> str:
        return f"{self.passed} passed, {self.failed} failed"


# ---------------------------------------------------------------- the exact checks of one record
def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)  # inf and nan show as Infinity and NaN
    return text if len(text) <= 40 else text[:37] + "..."


def _type_ok(value: Any, json_type: str) -> bool:
    if isinstance(value, bool):
        return json_type == BOOLEAN
    if not isinstance(value, _PY_TYPES[json_type]):
        return False
    return not isinstance(value, float) or math.isfinite(value)


def _type_problem(spec: FieldSpec, value: Any) -> str | None:
    if value is None:
        return None if spec.nullable else f"field {spec.name!r} is null, should be {_A[spec.json_type]}"
    if _type_ok(value, spec.json_type):
        return None
    if isinstance(value, float) and spec.json_type in (NUMBER, INTEGER) and not math.isfinite(value):
        return f"field {spec.name!r} is {_show(value)}, should be a finite number"
    return f"field {spec.name!r} should be {_A[spec.json_type]}, got {_show(value)}"


def _layout_problems(rec: dict, specs: tuple[FieldSpec, ...]) -> list[str]:
    """Missing fields, wrong types, declared fields out of order, extra fields before them."""
    problems = []
    declared = {s.name: s for s in specs}
    for spec in specs:
        if spec.name not in rec:
            if not spec.optional:
                problems.append(f"missing field {spec.name!r}")
            continue
        problem = _type_problem(spec, rec[spec.name])
        if problem:
            problems.append(problem)
    keys = list(rec)
    present = [k for k in keys if k in declared]
    expected = [s.name for s in specs if s.name in rec]
    for got, want in zip(present, expected):
        if got != want:
            problems.append(f"field {got!r} is out of order: {want!r} comes first "
                            f"(order: {', '.join(expected)})")
            break
    if present:
        last = keys.index(present[-1])
        extra = [k for k in keys[:last] if k not in declared]
        if extra:
            problems.append(f"extra field {extra[0]!r} before the documented ones "
                            f"(extra fields go after {present[-1]!r})")
    return problems


def _form_problems(rec: dict) -> list[str]:
    problems = []
    ts = rec.get("timestamp")
    if isinstance(ts, str):
        if not _TIMESTAMP.fullmatch(ts):
            problems.append(f"timestamp {ts!r} is not UTC with six-digit microseconds "
                            "(2025-11-18T14:30:00.123456+00:00)")
        elif not _real_time(ts):
            problems.append(f"timestamp {ts!r} is not a real date and time")
    cts = rec.get("cycle_timestamp")
    if isinstance(cts, str):
        if not _SLOT.fullmatch(cts):
            problems.append(f"cycle_timestamp {cts!r} is not a whole-second UTC slot "
                            "(2025-11-18T14:00:00+00:00)")
        elif not _real_time(cts):
            problems.append(f"cycle_timestamp {cts!r} is not a real date and time")
    return problems


def _real_time(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _number(value: Any) -> TypeGuard[float]:
    return _type_ok(value, NUMBER)


def _rule_problems(stream: str, rec: dict) -> list[str]:
    """The guide's rules beyond types: sides, quantities, values, position counts."""
    problems = []
    if stream in (ORDERS, TRADES):
        side = rec.get("side")
        if isinstance(side, str) and side not in _SIDES:
            problems.append(f"side {side!r} is not 'buy' or 'sell'")
        q = rec.get("quantity")
        if _number(q) and q <= 0:
            problems.append(f"quantity {_show(q)} is not positive")
    if stream == TRADES:
        q, p, v = rec.get("quantity"), rec.get("price"), rec.get("value")
        if _number(q) and _number(p) and _number(v) and abs(q * p - v) > max(0.011, 1e-6 * abs(v)):
            problems.append(f"value {_show(v)} is not quantity x price ({q * p:.6f})")
    if stream == PERFORMANCE:
        positions, count = rec.get("positions"), rec.get("positions_count")
        if isinstance(positions, dict):
            if _type_ok(count, INTEGER) and count != len(positions):
                problems.append(f"positions_count {count} is not the number of positions ({len(positions)})")
            for sym, qty in positions.items():
                if not _number(qty):
                    problems.append(f"positions[{sym!r}] should be a number, got {_show(qty)}")
                    break
    return problems


def record_problems(stream: str, rec: Any) -> list[str]:
    """Every problem of one parsed line of `stream` (empty: it conforms)."""
    if not isinstance(rec, dict):
        return ["not a JSON object"]
    kinds = RECORD_FORMATS[stream]
    event_type = rec.get("event_type")
    if not isinstance(event_type, str):
        problems = ["missing field 'event_type'" if "event_type" not in rec
                    else f"field 'event_type' should be a string, got {_show(event_type)}"]
        if "timestamp" not in rec:
            problems.append("missing field 'timestamp'")
        return problems + _form_problems(rec)
    specs = kinds.get(event_type)
    if specs is None:
        known = ", ".join(kinds)
        return [f"event_type {event_type!r} does not belong in {stream} (known: {known})"] + \
            _form_problems(rec)
    return _layout_problems(rec, specs) + _form_problems(rec) + _rule_problems(stream, rec)


def parse(raw: bytes) -> tuple[Any, str | None]:
    """(record, None), or (None, why) for a line that is not JSON. A number too big for a
    double (orjson refuses it) still parses here, so the check can name the field."""
    try:
        return orjson.loads(raw), None
    except orjson.JSONDecodeError as exc:
        try:
            return json.loads(raw), None
        except (ValueError, UnicodeDecodeError):
            return None, f"not JSON ({exc})"


def line_problems(stream: str, raw: bytes) -> list[str]:
    """Every problem of one line (without its newline) of `stream`."""
    if not raw.strip():
        return ["blank line (every line is one JSON object)"]
    rec, why = parse(raw)
    if why:
        return [why]
    return record_problems(stream, rec)


# ---------------------------------------------------------------- the fast path
def _orders_ok(rec: dict) -> bool:
    return rec["side"] in _SIDES and rec["quantity"] > 0


def _trades_ok(rec: dict) -> bool:
    v = rec["value"]
    return (rec["side"] in _SIDES and rec["quantity"] > 0
            and abs(rec["quantity"] * rec["price"] - v) <= max(0.011, 1e-6 * abs(v)))


_NUMBER_TYPES = frozenset((int, float))  # bool is its own type: not a number here


def _performance_ok(rec: dict) -> bool:
    positions = rec["positions"]
    return (rec["positions_count"] == len(positions)
            and _NUMBER_TYPES.issuperset(map(type, positions.values())))


_RULES = {ORDERS: _orders_ok, TRADES: _trades_ok, PERFORMANCE: _performance_ok}


class _Layouts:
    """Whether a line of a given shape (event type, keys in order, value types) has the declared
    layout: decided once per shape by the exact checks, then looked up."""

    def __init__(self, stream: str) -> None:
        self.specs = RECORD_FORMATS[stream]
        self.known: dict[tuple, dict[tuple, bool]] = {}

    def decide(self, rec: dict, event_type: str, keys: tuple, types: tuple) -> bool:
        specs = self.specs.get(event_type)
        ok = specs is not None and not _layout_problems(rec, specs)
        self.known.setdefault((event_type, keys), {})[types] = ok
        return ok


def check_file(path: Path, stream: str) -> FileResult:
    """Check one file of `stream` (plain or .gz), line by line. A line takes the fast path when
    its shape is known to be right and its values pass; any other goes through the exact checks
    (the fast path only says yes when they would find nothing: floats from orjson are finite)."""
    result = FileResult(path.name)
    layouts = _Layouts(stream)
    known = layouts.known
    rule = _RULES.get(stream)
    loads, fullmatch_ts, fullmatch_slot = orjson.loads, _TIMESTAMP.fullmatch, _SLOT.fullmatch
    fromiso = datetime.fromisoformat
    last_ts = ""
    n = 0
    ended = last_ok = True
    for chunk in iter_chunks(path):
        ended = chunk.endswith(b"\n")
        for raw in chunk.splitlines():
            n += 1
            try:
                rec = loads(raw)
                event_type = rec["event_type"]
                keys = tuple(rec)
                types = tuple(map(type, rec.values()))
                ok = known.get((event_type, keys), {}).get(types)
                if ok is None:
                    ok = type(event_type) is str and layouts.decide(rec, event_type, keys, types)
                if ok:
                    ts = rec["timestamp"]
                    ok = fullmatch_ts(ts) is not None and (rule is None or rule(rec))
                    fromiso(ts)
                    cts = rec.get("cycle_timestamp")
                    if ok and cts is not None:
                        ok = fullmatch_slot(cts) is not None
                        fromiso(cts)
            except (orjson.JSONDecodeError, ValueError, TypeError, KeyError, IndexError):
                ok = False
            if ok:
                last_ok = ts >= last_ts
                if last_ok:
                    result.passed += 1
                else:
                    result.failed += 1
                    result.add(f"{path.name}:{n}", f"timestamp goes backwards ({ts} < {last_ts})")
                last_ts = ts
                continue
            problems, last_ts = _slow(stream, raw, last_ts)
            last_ok = not problems
            if last_ok:  # pragma: no cover  (the fast path is sound: this means it was too strict)
                result.passed += 1
            else:
                result.failed += 1
                result.add(f"{path.name}:{n}", "; ".join(problems))
    if not ended:
        result.add(f"{path.name}:{n}", "the last line has no newline (a torn write: the bot "
                   "moves it aside when it next starts)")
        if last_ok:
            result.passed -= 1
            result.failed += 1
    return result


def _slow(stream: str, raw: bytes, last_ts: str) -> tuple[list[str], str]:
    """(every problem of the line, the timestamp to compare the next line with)."""
    problems = line_problems(stream, raw)
    rec = parse(raw)[0] if raw.strip() else None
    ts = rec.get("timestamp") if isinstance(rec, dict) else None
    if isinstance(ts, str) and _TIMESTAMP.fullmatch(ts) and _real_time(ts):
        if ts < last_ts:
            problems.append(f"timestamp goes backwards ({ts} < {last_ts})")
        last_ts = ts
    return problems, last_ts


# ---------------------------------------------------------------- the whole trail
def _production_log(log_dir: Path) -> FileResult:
    result = FileResult(PRODUCTION_LOG)
    path = log_dir / PRODUCTION_LOG
    if not path.is_file():
        result.add(PRODUCTION_LOG, "missing (the bot writes it beside the streams)")
        result.failed = 1
        return result
    before = 0  # lines before the current block (blocks hold whole lines)
    for block in iter_chunks(path):
        try:
            block.decode("utf-8")
        except UnicodeDecodeError as exc:
            n = before + block.count(b"\n", 0, exc.start) + 1
            result.add(f"{PRODUCTION_LOG}:{n}", f"not UTF-8 text ({exc.reason})")
            result.failed = 1
            return result
        before += block.count(b"\n")
    result.passed = 1
    return result


def _jobs(paths: list[Path]) -> int:
    size = sum(p.stat().st_size for p in paths)
    if size < PARALLEL_MIN or len(paths) < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover  (not Linux)
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, len(paths)))


def _check_one(job: tuple[Path, str]) -> FileResult:
    return check_file(*job)


def _results(jobs: list[tuple[Path, str]]) -> Iterator[FileResult]:
    workers = _jobs([p for p, _ in jobs])
    if workers <= 1:
        yield from map(_check_one, jobs)
        return
    # biggest first, so one big file does not start last; results come back in trail order
    order = sorted(range(len(jobs)), key=lambda i: -jobs[i][0].stat().st_size)
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        pending = {i: pool.apply_async(_check_one, (jobs[i],)) for i in order}
        for i in range(len(jobs)):
            yield pending[i].get()


def has_trail(log_dir: Path) -> bool:
    """Whether the directory holds any file of a trail (a stream segment or production.log)."""
    return (log_dir / PRODUCTION_LOG).exists() or any(segments(log_dir, s) for s in STREAMS)


def check_trail(log_dir: Path) -> CheckReport:
    """Check every stream file and production.log of `log_dir` (which must be a directory)."""
    report = CheckReport()
    if not has_trail(log_dir):
        empty = FileResult(str(log_dir), failed=1)
        empty.add(str(log_dir), "no audit trail here (none of " + ", ".join(STREAMS)
                  + f", {PRODUCTION_LOG}): give the bot's log directory")
        report.add(empty)
        return report
    jobs: list[tuple[Path, str]] = []
    for stream in STREAMS:
        files = segments(log_dir, stream)
        if not files:
            missing = FileResult(stream, failed=1)
            missing.add(stream, "missing (the bot creates all six streams when it starts)")
            report.add(missing)
        jobs.extend((p, stream) for p in files)
    for result in _results(jobs):
        report.add(result)
    report.add(_production_log(log_dir))
    return report


# The insides the readers (replay, report, logs explain) use: (stream, event_type) -> field ->
# the JSON type of each value of that object or item of that array.
_INSIDES: dict[tuple[str, str], dict[str, str]] = {
    (PERFORMANCE, "cycle_complete"): {"positions": NUMBER, "prices": NUMBER},
    ("events.jsonl", "account_checked"): {"positions": NUMBER, "prices": NUMBER},
    ("decisions.jsonl", "model_decision"): {"symbols": STRING, "scores": NUMBER,
                                            "target_weights": NUMBER, "final_weights": NUMBER,
                                            "risk_checks": OBJECT},
}


def reader_problems(stream: str, rec: dict) -> list[str]:
    """Why a reader cannot use this record: a field of the audit-log guide missing, a declared
    field of the wrong type, or a value inside one of the wrong type (empty: it can be read).
    An error record is listed whatever fields it lacks (its `error` says what happened). Order,
    extra fields, tradebot's own fields missing and the form of timestamps are `audit check`'s
    business, not a reader's; an unknown event type is left to the reader (it skips
    what it does not know)."""
    kinds = RECORD_FORMATS.get(stream)
    event_type = rec.get("event_type")
    if kinds is None or not isinstance(event_type, str) or event_type not in kinds:
        return []
    problems = []
    for spec in kinds[event_type]:
        if spec.name not in rec:
            if not spec.optional and spec.origin == GUIDE and stream != "errors.jsonl":
                problems.append(f"missing field {spec.name!r}")
            continue
        problem = _type_problem(spec, rec[spec.name])
        if problem:
            problems.append(problem)
    for name, json_type in _INSIDES.get((stream, event_type), {}).items():
        value = rec.get(name)
        items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        if any(not _type_ok(v, json_type) for v in items):
            problems.append(f"field {name!r} holds a value that is not {_A[json_type]}")
    return problems
