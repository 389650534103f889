"""Explain one cycle, or one order, from the trail alone: a timeline merged from every stream.

`explain_cycle` tells what each model saw and decided, the risk checks that changed its plan,
each order with its fills or error, the cycle's other errors and events, and the snapshot that
closed it. `explain_order` tells the same story for a single order. Every line starts with the
record's `timestamp` and where it came from (`file:line`).

Reading only: each stream is read once, in blocks; a block without the cycle (or order id)
bytes is skipped unparsed, so a large trail costs a byte search. Nothing here recomputes a
decision (that is `bot.review.rerun`) or checks the trail's integrity (that is `audit verify`). On a
trail whose old segments retention removed, a cycle or order from before the removal's end is
told with a note that some of its records are gone.
"""
from __future__ import annotations

import dataclasses
import re
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping

import orjson

from audit.check import reader_problems
from audit.files import Line, cycle_of, cycle_slots_in, iter_chunks, segments
from audit.records import (
    DECISIONS,
    ERRORS,
    EVENTS,
    ORDERS,
    PERFORMANCE,
    TRADES,
    CycleCompleted,
    Event,
    ModelDecided,
    OrderFailed,
    OrderSubmitted,
    Problem,
    Record,
    RecordError,
    SlotMissed,
    TradeExecuted,
    UnknownRecord,
    from_fields,
)
from audit.timestamps import format_slot, format_timestamp
from bot.core.recording import stored_risk_check
from bot.review.pruned import Pruned, pruned

_UTC = timezone.utc
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ](\d{2})(:\d{2})?(:\d{2}(?:[.,]\d+)?)?"
                       r"(Z|[+-]\d{2}(?::?\d{2})?)?")
FORMS = ("the cycle_timestamp (2024-03-28T19:45:00+00:00), a minute (2024-03-28T19:45, UTC "
         "unless an offset is given) or a UTC date (2024-03-28)")


# --- which cycles ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CycleQuery:
    """The cycles a TIMESTAMP argument names: cycle_timestamps in [`first`, `end`) (UTC)."""

    text: str
    start: datetime
    end: datetime

    @property
    def first(self) -> str:
        return format_slot(self.start)

    @property
    def last(self) -> str:
        return format_slot(self.end - timedelta(seconds=1))

    @property
    def needle(self) -> bytes:
        """What every matching cycle_timestamp starts with: the cheap byte prefilter."""
        a, b = self.first, self.last
        n = 0
        while n < min(len(a), len(b)) and a[n] == b[n]:
            n += 1
        return a[:n].encode()

    def matches(self, slot: object) -> bool:
        """Whether `slot` (a datetime; bot.rerun still gives the slot's text) is one of them."""
        if isinstance(slot, str):
            return self.first <= slot <= self.last
        return isinstance(slot, datetime) and self.start <= slot < self.end

    def describe(self) -> str:
        if self.end - self.start == timedelta(seconds=1):
            return f"cycle {self.first}"
        if self.end - self.start == timedelta(days=1) and self.first.endswith("T00:00:00+00:00"):
            return f"cycles of {self.first[:10]} (UTC)"
        return f"cycle matching {self.text.strip()!r} ({self.first} to {self.last})"


def parse_cycle(text: str) -> CycleQuery:
    """`2024-03-28T19:45:00+00:00` (one cycle), `2024-03-28T19:45` (that minute, UTC), with any
    offset (converted to UTC), or `2024-03-28` (every cycle of that UTC date).
    Raises ValueError (one line) for anything else."""
    raw = text.strip()
    if _DATE.fullmatch(raw):
        try:
            day = datetime.fromisoformat(raw).replace(tzinfo=_UTC)
        except ValueError:
            raise ValueError(f"--cycle {text!r} is not a date: give {FORMS}") from None
        return CycleQuery(text, day, day + timedelta(days=1))
    m = _DATETIME.fullmatch(raw)
    try:
        if m is None:
            raise ValueError
        dt = datetime.fromisoformat(raw.replace(",", "."))
    except ValueError:
        raise ValueError(f"--cycle {text!r} is not a time: give {FORMS}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=_UTC)
    start = dt.astimezone(_UTC).replace(microsecond=0)
    step = (timedelta(seconds=1) if m.group(3) else
            timedelta(minutes=1) if m.group(2) else timedelta(hours=1))
    return CycleQuery(text, start, start + step)


# --- reading ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RecordEntry:
    """One record of the trail, typed, and where it is."""

    timestamp: str  # as the line has it (six-digit microseconds)
    where: Line
    stream: str
    record: Record | UnknownRecord


def scan_records(log_dir: Path, name: str, needles: Iterable[bytes],
                 keep: Callable[[Record | UnknownRecord], bool],
                 peek: Callable[[bytes], None] | None = None) -> list[RecordEntry]:
    """The records of stream `name` (all its files, oldest first) that contain one of `needles`
    as bytes and that `keep` accepts, as their types. Blocks without a needle are counted, not
    parsed; unreadable lines are skipped (`audit verify` reports them), a line that is no record
    of its kind with a warning. `peek` sees every block."""
    out: list[RecordEntry] = []
    for where, fields in _matching_lines(log_dir, name, needles, peek):
        problems = reader_problems(name, fields)
        record = None
        if not problems:
            try:
                record = from_fields(name, fields)
            except (RecordError, TypeError) as exc:
                problems = [str(exc)]
        if record is None:  # named and left out: the rest of the story still reads
            sys.stderr.write(f"warning: {where}: {'; '.join(problems)}: the record is skipped\n")
        elif keep(record):
            out.append(RecordEntry(_stamp_text(record), where, name, record))
    return out


def _matching_lines(log_dir: Path, name: str, needles: Iterable[bytes],
                    peek: Callable[[bytes], None] | None) -> Iterator[tuple[Line, dict]]:
    """(where, fields) of every JSON object line of stream `name` holding one of `needles`."""
    needles = tuple(needles)
    loads = orjson.loads
    for path in segments(log_dir, name):
        n = 0
        for chunk in iter_chunks(path):
            if peek is not None:
                peek(chunk)
            if not any(nd in chunk for nd in needles):
                n += chunk.count(b"\n") + (not chunk.endswith(b"\n"))
                continue
            for raw in chunk.splitlines():
                n += 1
                if not any(nd in raw for nd in needles):
                    continue
                try:
                    rec = loads(raw)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(rec, dict):
                    yield Line(path.name, n), rec


def _stamp_text(record: Record | UnknownRecord) -> str:
    return "" if record.timestamp is None else format_timestamp(record.timestamp)


class Neighbors:
    """Watches the blocks of a stream for the cycles nearest to a query that matched nothing."""

    def __init__(self, query: CycleQuery) -> None:
        self.query = query
        self.before: str | None = None
        self.after: str | None = None

    def __call__(self, chunk: bytes) -> None:
        if self.after is not None:
            return
        first, last = self.query.first, self.query.last
        for slot in cycle_slots_in(chunk):
            if slot < first:
                if self.before is None or slot > self.before:
                    self.before = slot
            elif slot > last:
                if self.after is None or slot < self.after:
                    self.after = slot

    def error(self, log_dir: Path) -> LookupError:
        near = [f"{c} ({w})" for c, w in ((self.before, "before"), (self.after, "after")) if c]
        if not near:
            return LookupError(f"no {self.query.describe()} in {log_dir}: it holds no cycle")
        return LookupError(f"no {self.query.describe()} in {log_dir}: the nearest cycles are "
                           + " and ".join(near))


def _cycle_of(record: Record | UnknownRecord) -> datetime | None:
    """The slot of the cycle a record belongs to (None for one that names none)."""
    return cycle_of(record)


def _latest_due(record: Record | UnknownRecord) -> datetime | None:
    """The slot a `slot_missed` event then ran."""
    return record.latest_due if isinstance(record, SlotMissed) else None


# --- explain a cycle ----------------------------------------------------------------------------

def explain_cycle(log_dir: Path, cycle: str) -> str:
    """The timeline of the cycle(s) `cycle` names (see `parse_cycle`), oldest record first.
    Raises ValueError for an unreadable TIMESTAMP, LookupError (naming the nearest cycles)
    when no record belongs to it."""
    query = parse_cycle(cycle)
    log_dir = Path(log_dir)
    needle = (query.needle,)

    def in_cycle(record: Record | UnknownRecord) -> bool:
        return query.matches(_cycle_of(record))

    def event_in_cycle(record: Record | UnknownRecord) -> bool:  # slot_missed names the slot it ran
        return in_cycle(record) or query.matches(_latest_due(record))

    near = Neighbors(query)
    entries = scan_records(log_dir, PERFORMANCE, needle, in_cycle, peek=near)
    for name in (DECISIONS, ORDERS, TRADES, ERRORS):
        entries += scan_records(log_dir, name, needle, in_cycle)
    entries += scan_records(log_dir, EVENTS, needle, event_in_cycle)
    if not entries:
        raise near.error(log_dir)
    by_cycle: dict[datetime | None, list[RecordEntry]] = {}
    for e in entries:
        slot = _cycle_of(e.record)
        if not query.matches(slot):
            slot = _latest_due(e.record)
        by_cycle.setdefault(slot, []).append(e)
    cycles = sorted(by_cycle, key=lambda slot: "None" if slot is None else format_slot(slot))
    removed = pruned(log_dir)
    parts = []
    for i, slot in enumerate(cycles, 1):
        of = f" ({i} of {len(cycles)})" if len(cycles) > 1 else ""
        group = sorted(by_cycle[slot], key=lambda e: e.timestamp)
        streams = sorted({e.stream for e in group})
        named = "None" if slot is None else format_slot(slot)
        head = f"cycle {named}{of}: {len(group)} records from {', '.join(streams)} in {log_dir}"
        parts.append(head + "\n" + _timeline(group, None) + _removed_note(removed, group, "cycle"))
    return "\n\n".join(parts)


def _removed_note(removed: Pruned, entries: list[RecordEntry], what: str) -> str:
    """A last line when retention removed records this story may lack (else "")."""
    if not removed or (entries and removed.since is not None
                       and min(e.timestamp for e in entries) >= removed.since):
        return ""
    return (f"\nNOTE {removed.describe()}: the trail is whole from {removed.since} on; this "
            f"{what}'s records written before then may be gone")


# --- explain an order ------------------------------------------------------------------------------

def explain_order(log_dir: Path, order_id: str) -> str:
    """Why order `order_id` was sent and what became of it: its model's decision in its cycle,
    the risk checks on its symbol, the order, its fills or error, the events naming it and the
    cycle's snapshot. Raises LookupError (one line) when no record names the order id."""
    log_dir = Path(log_dir)
    oid = order_id.strip()
    needle = (orjson.dumps(oid),)  # with its quotes: `tb-...-buy` never matches a fill id

    def names(record: Record | UnknownRecord) -> bool:
        for value in _values(record):
            if value == oid or (isinstance(value, (list, tuple)) and oid in value):
                return True
            if isinstance(value, Mapping) and oid in value.values():  # an order_error's order_data
                return True
        return False

    entries: list[RecordEntry] = []
    for name in (ORDERS, TRADES, ERRORS, EVENTS):
        entries += scan_records(log_dir, name, needle, names)
    if not entries:
        removed = pruned(log_dir)
        gone = (f"; {removed.describe()}, so the trail is whole only from {removed.since} on"
                if removed else "")
        raise LookupError(f"no order {oid!r} in {log_dir}: no record names it{gone} (list the "
                          f"ids with: jq -r .order_id {log_dir / ORDERS})")
    slot = next((s for e in entries if (s := _cycle_of(e.record)) is not None), None)
    facts = _order_facts(entries)
    model, symbol = facts.model, facts.symbol
    if slot is not None:
        def in_cycle(record: Record | UnknownRecord) -> bool:
            return _cycle_of(record) == slot
        needle = (format_slot(slot).encode(),)
        entries += [e for e in scan_records(log_dir, DECISIONS, needle, in_cycle)
                    if model is None or (isinstance(e.record, ModelDecided) and e.record.model == model)]
        entries += scan_records(log_dir, PERFORMANCE, needle, in_cycle)
    entries.sort(key=lambda e: e.timestamp)
    what = " ".join(str(x) for x in (facts.side, _qty(facts.quantity), symbol)
                    if x is not None and x != "")
    cycle = "unknown" if slot is None else format_slot(slot)
    head = (f"order {oid}: {what or 'details unknown'} [{model or 'model unknown'}], "
            f"cycle {cycle}, {len(entries)} records in {log_dir}")
    return head + "\n" + _timeline(entries, symbol) + _removed_note(pruned(log_dir), entries, "order")


def _values(record: Record | UnknownRecord) -> list[object]:
    """The values of a record's fields."""
    if isinstance(record, UnknownRecord):
        return list(record.fields.values())
    return [getattr(record, f.name) for f in dataclasses.fields(record)]


@dataclass(frozen=True, slots=True)
class OrderFacts:
    model: str | None = None
    symbol: str | None = None
    side: str | None = None
    quantity: float | None = None


def _order_facts(entries: list[RecordEntry]) -> OrderFacts:
    """Model, symbol, side and quantity of the order, from the first record that states them:
    the order, else its fills or its error."""
    for e in sorted(entries, key=lambda e: (e.stream != ORDERS, e.timestamp)):
        r = e.record
        if isinstance(r, (OrderSubmitted, TradeExecuted, OrderFailed)):
            return OrderFacts(r.model, r.symbol, r.side, r.quantity)
    return OrderFacts()


# --- rendering --------------------------------------------------------------------------------

def _timeline(entries: list[RecordEntry], focus: str | None) -> str:
    rows = [(e, text) for e in entries for text in _describe(e, focus)]
    width = max((len(str(e.where)) for e, _ in rows), default=0)
    return "\n".join(f"{e.timestamp}  {str(e.where):<{width}}  {text}" for e, text in rows)


def _describe(e: RecordEntry, focus: str | None) -> list[str]:
    r = e.record
    if isinstance(r, ModelDecided):
        return _decision(r, focus)
    if isinstance(r, OrderSubmitted):
        limit = f" limit {_px(r.limit_price)}" if r.limit_price is not None else ""
        return [f"order {r.order_id}: {r.side} {_qty(r.quantity)} "
                f"{r.symbol} {r.order_type}{limit}, reference price "
                f"{_px(r.price)}, [{r.model}] {r.status} "
                f"(broker id {r.broker_order_id}, nav {_money(r.nav)})"]
    if isinstance(r, TradeExecuted):
        extra = ""
        if r.pnl is not None:
            extra += f", realized pnl {_signed(r.pnl)}"
        if r.commission:
            extra += f", commission {_money(r.commission)}"
        return [f"fill {r.fill_id} of {r.order_id}: {r.side} "
                f"{_qty(r.quantity)} {r.symbol} @ {_px(r.price)} = "
                f"{_money(r.value)}{extra}; account position now "
                f"{_qty(r.new_position)}, nav {_money(r.nav)}"]
    if isinstance(r, CycleCompleted):
        return _snapshot(r, focus)
    if isinstance(r, OrderFailed):
        return [f"order_error {r.order_id}: {r.side} {_qty(r.quantity)} "
                f"{r.symbol} [{r.model}] failed: {r.error}"]
    if isinstance(r, Problem):
        return [f"{r.event_type}: {r.error}"]
    if isinstance(r, Event):
        return [f"{r.event_type}: {r.message}"]
    return [f"{r.event_type}: {r.describe()}"]


def _decision(r: ModelDecided, focus: str | None) -> list[str]:
    symbols = r.symbols
    share_txt = f" ({_pct(r.capital_share)} of NAV)"
    out = [f"{r.model}{share_txt} saw {len(symbols)} symbols ({', '.join(symbols)}) with closes "
           f"up to {r.as_of or 'no date (no data)'}; input sha256 {r.input_sha256}"]
    scores = r.scores
    ranked = sorted(scores.items(), key=lambda kv: (-_num(kv[1]), kv[0]))
    targets = r.target_weights
    finals = r.final_weights
    hold = r.hold
    if focus is None:
        out.append("scores: " + (", ".join(f"{k} {_score(v)}" for k, v in ranked) or "none"))
        out.append(f"reason: {r.reason}")
        out.append("target weights: " + _weights(targets, hold))
    else:
        rank = next((i for i, (k, _) in enumerate(ranked, 1) if k == focus), None)
        score = (f"score {_score(scores[focus])} (rank {rank} of {len(ranked)})"
                 if rank is not None else "no score")
        out.append(f"reason: {r.reason}")
        weights = ("no target: it holds" if hold and not targets else
                   f"target weight {_pct(targets.get(focus, 0.0))}, final weight "
                   f"{_pct(finals.get(focus, 0.0))}")
        out.append(f"{focus}: {score}, {weights}")
        out.append("all target weights: " + _weights(targets, hold))
    checks = [stored_risk_check(r.model, c) for c in r.risk_checks]
    shown = [c for c in checks if focus is None or c.symbol in (focus, None)]
    for c in shown:
        on = c.symbol or "the whole sleeve"
        out.append(f"risk check {c.check} on {on}: {c.detail}")
    if not checks:
        out.append("risk checks: none changed the plan")
    elif not shown:
        out.append(f"risk checks: none on {focus} ({len(checks)} on other symbols)")
    if focus is None:
        out.append("final weights: " + _weights(finals, hold))
    return out


def _snapshot(r: CycleCompleted, focus: str | None) -> list[str]:
    positions = r.positions
    prices = r.prices
    out = [f"cycle complete: nav {_money(r.nav)}, cash {_money(r.cash)}, buying "
           f"power {_money(r.buying_power)}; {r.orders} orders, "
           f"{r.fills} fills, {r.errors} errors"]

    def pos(sym: str) -> str:
        q = positions.get(sym, 0.0)
        mark = prices.get(sym)
        return f"{sym} {_qty(q)}" + (f" @ {_px(mark)}" if mark is not None and q else "")

    if focus is not None:
        out.append(f"account position in {focus}: {pos(focus)}; {len(positions)} positions held")
    else:
        out.append("positions: " + (", ".join(pos(s) for s in sorted(positions)) or "none"))
    return out


def _num(v: object) -> float:
    return float(v) if isinstance(v, (int, float)) else float("-inf")


def _qty(q: object) -> str:
    if not isinstance(q, (int, float)):
        return str(q)
    text = repr(float(q))
    return text[:-2] if text.endswith(".0") else text


def _px(p: object) -> str:
    """A price: four decimals at most (marks are unrounded floats), trailing zeros dropped."""
    if isinstance(p, (int, float)) and not isinstance(p, bool):
        return f"{p:.4f}".rstrip("0").rstrip(".")
    return _qty(p)


def _money(v: object) -> str:
    return _no_negative_zero(f"{v:,.2f}") if isinstance(v, (int, float)) else str(v)


def _signed(v: object) -> str:
    return _no_negative_zero(f"{v:+,.2f}") if isinstance(v, (int, float)) else str(v)


def _no_negative_zero(text: str) -> str:
    """A tiny negative rounds to "-0.00", which reads as a loss: print it as 0.00."""
    return text[1:] if text.startswith("-") and not text.strip("-0.,") else text


def _score(v: object) -> str:
    return f"{v:.6g}" if isinstance(v, (int, float)) else str(v)


def _pct(v: object) -> str:
    return f"{v:.2%}" if isinstance(v, (int, float)) else str(v)


def _weights(w: Mapping[str, float], hold: bool = False) -> str:
    if not w:
        return "none: the model holds, its current holdings stay" if hold else "none (all cash)"
    return ", ".join(f"{k} {_pct(v)}" for k, v in sorted(w.items(), key=lambda kv: (-_num(kv[1]), kv[0])))
