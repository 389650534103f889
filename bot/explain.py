"""Explain one cycle, or one order, from the trail alone: a timeline merged from every stream.

`explain_cycle` tells what each model saw and decided, the risk checks that changed its plan,
each order with its fills or error, the cycle's other errors and events, and the snapshot that
closed it. `explain_order` tells the same story for a single order. Every line starts with the
record's `timestamp` and where it came from (`file:line`).

Reading only: each stream is read once, in blocks; a block without the cycle (or order id)
bytes is skipped unparsed, so a large trail costs a byte search. Nothing here recomputes a
decision (that is `bot.rerun`) or checks the trail's integrity (that is `audit verify`). On a
trail whose old segments retention removed, a cycle or order from before the removal's end is
told with a note that some of its records are gone.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import orjson

from audit.check import reader_problems
from audit.files import Line, iter_chunks, segments
from audit.records import DECISIONS, ERRORS, EVENTS, ORDERS, PERFORMANCE, TRADES
from audit.timestamps import format_slot
from bot.pruned import Pruned, pruned

_UTC = timezone.utc
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ](\d{2})(:\d{2})?(:\d{2}(?:[.,]\d+)?)?"
                       r"(Z|[+-]\d{2}(?::?\d{2})?)?")
_CTS = re.compile(rb'"cycle_timestamp":"([^"]+)"')
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

    def matches(self, cts: object) -> bool:
        return isinstance(cts, str) and self.first <= cts <= self.last

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
class Entry:
    """One record of the trail and where it is."""

    timestamp: str
    where: Line
    stream: str
    record: dict


def scan(log_dir: Path, name: str, needles: Iterable[bytes], keep: Callable[[dict], bool],
         peek: Callable[[bytes], None] | None = None) -> list[Entry]:
    """The records of stream `name` (all its files, oldest first) that contain one of `needles`
    as bytes and that `keep` accepts. Blocks without a needle are counted, not parsed;
    unreadable lines are skipped (`audit verify` reports them). `peek` sees every block."""
    needles = tuple(needles)
    loads = orjson.loads
    out: list[Entry] = []
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
                if isinstance(rec, dict) and keep(rec):
                    problems = reader_problems(name, rec)
                    if problems:  # named and left out: the rest of the story still reads
                        sys.stderr.write(f"warning: {path.name}:{n}: {'; '.join(problems)}: "
                                         "the record is skipped\n")
                        continue
                    out.append(Entry(str(rec.get("timestamp", "")), Line(path.name, n), name, rec))
    return out


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
        for m in _CTS.finditer(chunk):
            cts = m.group(1).decode("ascii", "replace")
            if cts < first:
                if self.before is None or cts > self.before:
                    self.before = cts
            elif cts > last:
                if self.after is None or cts < self.after:
                    self.after = cts

    def error(self, log_dir: Path) -> LookupError:
        near = [f"{c} ({w})" for c, w in ((self.before, "before"), (self.after, "after")) if c]
        if not near:
            return LookupError(f"no {self.query.describe()} in {log_dir}: it holds no cycle")
        return LookupError(f"no {self.query.describe()} in {log_dir}: the nearest cycles are "
                           + " and ".join(near))


def _cycle_of(rec: dict) -> object:
    return rec.get("cycle_timestamp")


# --- explain a cycle ----------------------------------------------------------------------------

def explain_cycle(log_dir: Path, cycle: str) -> str:
    """The timeline of the cycle(s) `cycle` names (see `parse_cycle`), oldest record first.
    Raises ValueError for an unreadable TIMESTAMP, LookupError (naming the nearest cycles)
    when no record belongs to it."""
    query = parse_cycle(cycle)
    log_dir = Path(log_dir)
    needle = (query.needle,)

    def in_cycle(rec: dict) -> bool:
        return query.matches(rec.get("cycle_timestamp"))

    def event_in_cycle(rec: dict) -> bool:  # slot_missed names the slot it then ran
        return in_cycle(rec) or query.matches(rec.get("latest_due"))

    near = Neighbors(query)
    entries = scan(log_dir, PERFORMANCE, needle, in_cycle, peek=near)
    for name in (DECISIONS, ORDERS, TRADES, ERRORS):
        entries += scan(log_dir, name, needle, in_cycle)
    entries += scan(log_dir, EVENTS, needle, event_in_cycle)
    if not entries:
        raise near.error(log_dir)
    by_cycle: dict[str, list[Entry]] = {}
    for e in entries:
        cts = e.record.get("cycle_timestamp")
        if not query.matches(cts):
            cts = e.record.get("latest_due")
        by_cycle.setdefault(str(cts), []).append(e)
    cycles = sorted(by_cycle)
    removed = pruned(log_dir)
    parts = []
    for i, cts in enumerate(cycles, 1):
        of = f" ({i} of {len(cycles)})" if len(cycles) > 1 else ""
        group = sorted(by_cycle[cts], key=lambda e: e.timestamp)
        streams = sorted({e.stream for e in group})
        head = f"cycle {cts}{of}: {len(group)} records from {', '.join(streams)} in {log_dir}"
        parts.append(head + "\n" + _timeline(group, None) + _removed_note(removed, group, "cycle"))
    return "\n\n".join(parts)


def _removed_note(removed: Pruned, entries: list[Entry], what: str) -> str:
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

    def names(rec: dict) -> bool:
        for value in rec.values():
            if value == oid or (isinstance(value, list) and oid in value):
                return True
            if isinstance(value, dict) and value.get("order_id") == oid:
                return True
        return False

    entries: list[Entry] = []
    for name in (ORDERS, TRADES, ERRORS, EVENTS):
        entries += scan(log_dir, name, needle, names)
    if not entries:
        removed = pruned(log_dir)
        gone = (f"; {removed.describe()}, so the trail is whole only from {removed.since} on"
                if removed else "")
        raise LookupError(f"no order {oid!r} in {log_dir}: no record names it{gone} (list the "
                          f"ids with: jq -r .order_id {log_dir / ORDERS})")
    cts = next((c for e in entries if isinstance(c := e.record.get("cycle_timestamp"), str)), None)
    facts = _order_facts(entries)
    model, symbol = facts.get("model"), facts.get("symbol")
    if cts is not None:
        def in_cycle(rec: dict) -> bool:
            return rec.get("cycle_timestamp") == cts
        entries += [e for e in scan(log_dir, DECISIONS, (cts.encode(),), in_cycle)
                    if model is None or e.record.get("model") == model]
        entries += scan(log_dir, PERFORMANCE, (cts.encode(),), in_cycle)
    entries.sort(key=lambda e: e.timestamp)
    what = " ".join(str(x) for x in (facts.get("side"), _qty(facts.get("quantity")), symbol)
                    if x is not None and x != "")
    head = (f"order {oid}: {what or 'details unknown'} [{model or 'model unknown'}], "
            f"cycle {cts or 'unknown'}, {len(entries)} records in {log_dir}")
    return head + "\n" + _timeline(entries, symbol) + _removed_note(pruned(log_dir), entries, "order")


def _order_facts(entries: list[Entry]) -> dict[str, Any]:
    """Model, symbol, side and quantity of the order, from whichever record states them."""
    facts: dict[str, Any] = {}
    for e in sorted(entries, key=lambda e: (e.stream != ORDERS, e.timestamp)):
        for src in (e.record, e.record.get("order_data") or {}):
            if not isinstance(src, dict):
                continue
            for k in ("model", "symbol", "side", "quantity"):
                if k not in facts and src.get(k) is not None:
                    facts[k] = src[k]
    return facts


# --- rendering --------------------------------------------------------------------------------

def _timeline(entries: list[Entry], focus: str | None) -> str:
    rows = [(e, text) for e in entries for text in _describe(e, focus)]
    width = max((len(str(e.where)) for e, _ in rows), default=0)
    return "\n".join(f"{e.timestamp}  {str(e.where):<{width}}  {text}" for e, text in rows)


def _describe(e: Entry, focus: str | None) -> list[str]:
    r = e.record
    kind = r.get("event_type")
    if e.stream == DECISIONS:
        return _decision(r, focus)
    if e.stream == ORDERS:
        limit = f" limit {_px(r['limit_price'])}" if r.get("limit_price") is not None else ""
        return [f"order {r.get('order_id')}: {r.get('side')} {_qty(r.get('quantity'))} "
                f"{r.get('symbol')} {r.get('order_type')}{limit}, reference price "
                f"{_px(r.get('price'))}, [{r.get('model')}] {r.get('status')} "
                f"(broker id {r.get('broker_order_id')}, nav {_money(r.get('nav'))})"]
    if e.stream == TRADES:
        extra = ""
        if r.get("pnl") is not None:
            extra += f", realized pnl {_signed(r['pnl'])}"
        if r.get("commission"):
            extra += f", commission {_money(r['commission'])}"
        return [f"fill {r.get('fill_id')} of {r.get('order_id')}: {r.get('side')} "
                f"{_qty(r.get('quantity'))} {r.get('symbol')} @ {_px(r.get('price'))} = "
                f"{_money(r.get('value'))}{extra}; account position now "
                f"{_qty(r.get('new_position'))}, nav {_money(r.get('nav'))}"]
    if e.stream == PERFORMANCE:
        return _snapshot(r, focus)
    if e.stream == ERRORS and kind == "order_error":
        return [f"order_error {r.get('order_id')}: {r.get('side')} {_qty(r.get('quantity'))} "
                f"{r.get('symbol')} [{r.get('model')}] failed: {r.get('error')}"]
    if e.stream == ERRORS:
        return [f"{kind}: {r.get('error')}"]
    return [f"{kind}: {r.get('message', '')}"]


def _decision(r: dict, focus: str | None) -> list[str]:
    model = r.get("model")
    symbols = r.get("symbols") or []
    share = r.get("capital_share")
    share_txt = f" ({_pct(share)} of NAV)" if isinstance(share, (int, float)) else ""
    out = [f"{model}{share_txt} saw {len(symbols)} symbols ({', '.join(symbols)}) with closes "
           f"up to {r.get('as_of') or 'no date (no data)'}; input sha256 {r.get('input_sha256')}"]
    scores = r.get("scores") or {}
    ranked = sorted(scores.items(), key=lambda kv: (-_num(kv[1]), kv[0]))
    targets = r.get("target_weights") or {}
    finals = r.get("final_weights") or {}
    hold = bool(r.get("hold"))
    if focus is None:
        out.append("scores: " + (", ".join(f"{k} {_score(v)}" for k, v in ranked) or "none"))
        out.append(f"reason: {r.get('reason')}")
        out.append("target weights: " + _weights(targets, hold))
    else:
        rank = next((i for i, (k, _) in enumerate(ranked, 1) if k == focus), None)
        score = (f"score {_score(scores[focus])} (rank {rank} of {len(ranked)})"
                 if rank is not None else "no score")
        out.append(f"reason: {r.get('reason')}")
        weights = ("no target: it holds" if hold and not targets else
                   f"target weight {_pct(targets.get(focus, 0.0))}, final weight "
                   f"{_pct(finals.get(focus, 0.0))}")
        out.append(f"{focus}: {score}, {weights}")
        out.append("all target weights: " + _weights(targets, hold))
    checks = r.get("risk_checks") or []
    shown = [c for c in checks if focus is None or c.get("symbol") in (focus, None)]
    for c in shown:
        on = c.get("symbol") or "the whole sleeve"
        out.append(f"risk check {c.get('check')} on {on}: {c.get('detail')}")
    if not checks:
        out.append("risk checks: none changed the plan")
    elif not shown:
        out.append(f"risk checks: none on {focus} ({len(checks)} on other symbols)")
    if focus is None:
        out.append("final weights: " + _weights(finals, hold))
    return out


def _snapshot(r: dict, focus: str | None) -> list[str]:
    positions = r.get("positions") or {}
    prices = r.get("prices") or {}
    out = [f"cycle complete: nav {_money(r.get('nav'))}, cash {_money(r.get('cash'))}, buying "
           f"power {_money(r.get('buying_power'))}; {r.get('orders', '?')} orders, "
           f"{r.get('fills', '?')} fills, {r.get('errors', '?')} errors"]

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


def _weights(w: dict, hold: bool = False) -> str:
    if not w:
        return "none: the model holds, its current holdings stay" if hold else "none (all cash)"
    return ", ".join(f"{k} {_pct(v)}" for k, v in sorted(w.items(), key=lambda kv: (-_num(kv[1]), kv[0])))
