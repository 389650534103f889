"""Check a trail against itself: every inconsistency with its file and line.

Errors (the trail contradicts itself): a trade whose order is missing, or whose symbol, side or
model differ from its order; a fill recorded twice or more than its order's quantity; a `value`
that is not quantity x price; a `new_position` that does not follow from the earlier fills; a
snapshot whose positions disagree with the fills before it, or whose `nav` is not its cash plus
its positions at its own prices; a scheduled slot with no `cycle_complete` and nothing in the
trail that says why. Warnings (facts worth knowing, not contradictions): slots the trail says
were missed or failed, cash that moved without a fill (dividends, fees), an account that changed
while the bot was stopped. A trail whose old segments retention removed is checked from its
first snapshot after the removal (a warning says what was removed and from when). This reads the
trail; it never repairs it (see `audit verify` for tampering, which this does not detect).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from audit.files import Line, iter_typed
from audit.records import (
    ERRORS,
    EVENTS,
    ORDERS,
    BotStarted,
    ClockStepped,
    CycleCompleted,
    CycleFailed,
    OrderCanceled,
    OrderFailed,
    OrderNotPlaced,
    OrderOpenAtDeadline,
    OrderSkipped,
    OrderSubmitted,
    Record,
    SimulationFinished,
    SimulationStarted,
    SlotMissed,
    TradeExecuted,
    UnknownRecord,
)
from audit.timestamps import format_slot
from bot.core.scheduling import SlotPlanner, parse_schedule, simulation_slots
from bot.review.ledger import Drift, Step, replay
from bot.review.pruned import Pruned, pruned

ERROR, WARNING = "error", "warning"
MAX_SLOTS = 200_000  # slots enumerated per gap before giving up on listing them
_EARLIEST = datetime.min.replace(tzinfo=timezone.utc)

Run = SimulationStarted | BotStarted
"""The start of a run: the schedule its slots follow."""
ORDER_NOTES = (OrderFailed, OrderSkipped, OrderNotPlaced, OrderCanceled, OrderOpenAtDeadline)
"""The errors and events that say what became of an order (by its `order_id`)."""


@dataclass(frozen=True, slots=True)
class Finding:
    severity: str
    where: Line | None
    message: str

    def __str__(self) -> str:
        where = f"{self.where}: " if self.where else ""
        return f"{self.severity.upper():<7} {where}{self.message}"


@dataclass
class CheckResult:
    findings: list[Finding] = field(default_factory=list)
    fills: int = 0
    cycles: int = 0
    orders: int = 0
    first: str | None = None
    last: str | None = None
    final: Step | None = None
    removed: Pruned | None = None  # what retention removed (the check starts after it)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR]

    @property
    def consistent(self) -> bool:
        return not self.errors


@dataclass(frozen=True, slots=True)
class _Order:
    where: Line
    symbol: str
    side: str
    model: str | None
    quantity: float
    written: datetime = _EARLIEST  # the order's own timestamp


def check(log_dir: Path, keep_steps: list[Step] | None = None) -> CheckResult:
    """Replay the trail and report every inconsistency. `keep_steps` (a list) receives the steps."""
    out = CheckResult(removed=pruned(log_dir))

    def bad(where: Line, why: str) -> None:
        out.findings.append(Finding(ERROR, where, f"unreadable line: {why}"))

    orders = _orders(log_dir, out, bad)
    filled: dict[str, float] = {}
    fill_ids: dict[str, Line] = {}
    cycles: dict[datetime, _Cycle] = {}
    opens = since = 0
    start: Step | None = None  # the snapshot a pruned trail is replayed from
    for step in replay(log_dir, out.removed):
        rec, where = step.record, step.where
        if out.removed and start is None and isinstance(rec, CycleCompleted):
            start, opens = step, 1  # a start-up after it is a restart
            out.cycles += 1
            cycles.setdefault(rec.cycle_timestamp, _Cycle(where, step.time))
            _check_snapshot(step, rec, out)
        timestamp = step.timestamp
        out.first = out.first or timestamp
        out.last = timestamp
        if keep_steps is not None:
            keep_steps.append(step)
        if isinstance(rec, TradeExecuted):
            out.fills += 1
            since += 1
            _check_fill(step, rec, orders, filled, fill_ids, out)
        elif step.kind == "cycle" and isinstance(rec, CycleCompleted):
            out.cycles += 1
            slot = rec.cycle_timestamp
            if slot in cycles:
                out.findings.append(Finding(ERROR, where, f"a second cycle_complete for slot "
                                            f"{format_slot(slot)} (the first is at "
                                            f"{cycles[slot].where})"))
            cycles.setdefault(slot, _Cycle(where, step.time))
            _check_snapshot(step, rec, out)
            if isinstance(rec.fills, int) and since < rec.fills:
                out.findings.append(Finding(ERROR, where, f"the snapshot counts {rec.fills} fills "
                                            f"recorded in this cycle, the trail has {since}: a fill "
                                            "line is missing"))
            since = 0
        elif step is not start:
            opens += 1
            if step.drift is not None and opens > 1:
                out.findings.append(Finding(WARNING, where, "at this start-up the broker's account "
                                            "differed from the trail's: " + _describe(step.drift)
                                            + " (see the reconciliation event that follows)"))
        out.final = step
    if out.removed:
        out.findings.insert(0, Finding(WARNING, None, _removal(out.removed, start)))
        if start is not None:  # orders before the start may have had their fills removed
            orders = {oid: o for oid, o in orders.items() if o.written >= start.time}
    notes = _read_notes(log_dir)
    _check_unfilled(notes, orders, filled, out)
    _check_gaps(notes, cycles, out, start.cycle if start is not None else None)
    return out


def _removal(removed: Pruned, start: Step | None) -> str:
    if start is None:
        return (f"{removed.describe()}, and no snapshot was written after it: nothing to replay "
                "(the books are rebuilt from the first cycle_complete after the removal)")
    return (f"{removed.describe()}: replayed from the first snapshot after it, cycle "
            f"{start.cycle_timestamp} ({start.where}, {start.timestamp}), with that snapshot's "
            "cash, positions and prices; the books before it and the P&L per model (which model "
            "bought what was held then is in the removed part) are not rebuilt")


def _check_unfilled(notes: "_Notes", orders: dict[str, _Order], filled: dict[str, float],
                    out: CheckResult) -> None:
    """An order short of fills needs an error or an event (cancelled, expired...) saying why."""
    short = {oid for oid, o in orders.items() if filled.get(oid, 0.0) < o.quantity - 1e-6}
    short -= notes.order_ids
    for oid in sorted(short, key=lambda o: (orders[o].where.file, orders[o].where.line)):
        o = orders[oid]
        out.findings.append(Finding(WARNING, o.where, f"order {oid} has fills for "
                                    f"{filled.get(oid, 0.0):g} of {o.quantity:g} and nothing in the "
                                    "trail says why (no error, cancellation or expiry)"))


def _orders(log_dir: Path, out: CheckResult, bad) -> dict[str, _Order]:
    """Every order_submitted by its order_id (a kind this version lacks is left out)."""
    orders: dict[str, _Order] = {}
    for where, rec in iter_typed(log_dir, ORDERS, bad):
        if not isinstance(rec, OrderSubmitted):
            continue
        oid = rec.order_id
        out.orders += 1
        if oid in orders:
            out.findings.append(Finding(ERROR, where, f"order {oid} is recorded twice (first at "
                                        f"{orders[oid].where})"))
            continue
        orders[oid] = _Order(where, rec.symbol, rec.side, rec.model, float(rec.quantity or 0.0),
                             rec.timestamp or _EARLIEST)
    return orders


def _check_fill(step: Step, rec: TradeExecuted, orders: dict[str, _Order],
                filled: dict[str, float], fill_ids: dict[str, Line], out: CheckResult) -> None:
    where = step.where

    def add(msg: str) -> None:
        out.findings.append(Finding(ERROR, where, msg))

    oid, sym, side = rec.order_id, rec.symbol, rec.side
    if oid not in orders:
        add(f"trade of {side} {rec.quantity} {sym} has no order {oid} in {ORDERS}")
    else:
        order = orders[oid]
        for name, mine, theirs in (("symbol", sym, order.symbol), ("side", side, order.side),
                                   ("model", rec.model, order.model)):
            if mine != theirs:
                add(f"trade {name} {mine!r} differs from its order's {theirs!r} ({order.where})")
        filled[oid] = filled.get(oid, 0.0) + float(rec.quantity)
        if filled[oid] > order.quantity + 1e-6:
            add(f"fills of {oid} add up to {filled[oid]:g}, more than the order's "
                f"{order.quantity:g} ({order.where})")
    fid = rec.fill_id
    if isinstance(fid, str):
        if fid in fill_ids:
            add(f"fill {fid} is recorded twice (first at {fill_ids[fid]})")
        fill_ids.setdefault(fid, where)
    q, p, v = float(rec.quantity), float(rec.price), float(rec.value)
    if abs(v - q * p) > 0.0051 + 1e-12 * abs(v):
        add(f"value {v:.2f} is not quantity x price ({q:g} x {p:g} = {q * p:.2f})")
    expected = step.total.positions[sym].quantity  # the ledger applied the fill to it
    recorded = rec.new_position
    if not isinstance(recorded, (int, float)) or abs(float(recorded) - expected) > 1e-6:
        add(f"new_position {recorded} of {sym} does not follow from the earlier fills "
            f"(they give {expected:g})")


def _check_snapshot(step: Step, rec: CycleCompleted, out: CheckResult) -> None:
    """The snapshot against the fills before it, and its nav against its own cash and prices.
    (`positions_count` is derived from `positions` by the type: `audit check` compares the
    line's own count.)"""
    where = step.where

    def add(sev: str, msg: str) -> None:
        out.findings.append(Finding(sev, where, msg))

    drift = step.drift
    if drift is not None and drift.positions:
        add(ERROR, "snapshot positions disagree with the fills before it: " + _describe(
            Drift(drift.positions, None)) + " (the replay carries on from the snapshot)")
    if drift is not None and drift.cash is not None:
        rebuilt, recorded = drift.cash
        add(WARNING, f"cash {recorded:,.2f} differs from the fills' {rebuilt:,.2f} by "
            f"{recorded - rebuilt:+,.2f}: a dividend, fee or interest the trail does not record, "
            "or a missing fill")
    positions, prices, cash, nav = rec.positions, rec.prices, rec.cash, rec.nav
    if isinstance(nav, (int, float)) and isinstance(cash, (int, float)) \
            and all(s in prices for s in positions):
        valued = cash + sum(float(q) * float(prices[s]) for s, q in positions.items())
        if abs(valued - nav) > 0.0151:
            add(ERROR, f"nav {nav:,.2f} is not cash plus positions at the snapshot's prices "
                f"({valued:,.2f})")


def _describe(drift: Drift) -> str:
    parts = [f"{s} {rebuilt:g} from the fills, {recorded:g} recorded"
             for s, (rebuilt, recorded) in drift.positions.items()]
    if drift.cash is not None:
        parts.append(f"cash {drift.cash[0]:,.2f} from the fills, {drift.cash[1]:,.2f} recorded")
    return "; ".join(parts)


# -- gaps in cycles --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Cycle:
    where: Line
    written: datetime  # the snapshot's own timestamp


_FAILED, _MISSED, _GAP = "its cycle failed", "recorded as missed", "gap"
_STEPPED = "the system clock stepped over it (clock_step)"


@dataclass(frozen=True, slots=True)
class _Declared:
    """Slots a `slot_missed` event owns up to: (after, latest_due), `latest_due` too if skipped."""

    where: Line
    after: datetime | None
    latest_due: datetime
    skipped: bool
    reason: str = _MISSED

    def covers(self, slot: datetime, completed: list[datetime]) -> bool:
        if self.reason == _STEPPED:  # the slots between the two readings of a stepped clock
            return self.after is not None and self.after <= slot <= self.latest_due
        after = self.after
        if after is None:  # a cycle overran: the missed slots follow the last one completed
            before = [c for c in completed if c < self.latest_due]
            after = before[-1] if before else _EARLIEST
        return after < slot < self.latest_due or (self.skipped and slot == self.latest_due)


@dataclass
class _Notes:
    """What errors.jsonl and events.jsonl say that the checks need (both read once)."""

    order_ids: set[str] = field(default_factory=set)  # orders an error or event speaks of
    failed: dict[datetime, Line] = field(default_factory=dict)  # slot -> its cycle_error
    runs: list[tuple[Line, Run]] = field(default_factory=list)  # simulation_/bot_started
    declared: list["_Declared"] = field(default_factory=list)  # slot_missed
    finished: bool = False  # simulation_finished


def _read_notes(log_dir: Path) -> _Notes:
    notes = _Notes()
    for where, rec in iter_typed(log_dir, ERRORS):
        _note(notes, where, rec)
    for where, rec in iter_typed(log_dir, EVENTS):
        _note(notes, where, rec)
    return notes


def _note(notes: _Notes, where: Line, rec: Record | UnknownRecord) -> None:
    if isinstance(rec, ORDER_NOTES):
        notes.order_ids.add(rec.order_id)
    elif isinstance(rec, CycleFailed):
        notes.failed.setdefault(rec.cycle_timestamp, where)
    elif isinstance(rec, (SimulationStarted, BotStarted)):
        notes.runs.append((where, rec))
    elif isinstance(rec, SimulationFinished):
        notes.finished = True
    elif isinstance(rec, SlotMissed):
        notes.declared.append(_Declared(where, rec.last_completed, rec.latest_due,
                                        rec.policy == "skip"))
    elif isinstance(rec, ClockStepped):  # the two readings, in whole seconds like the slots
        low, high = sorted(t.replace(microsecond=0) for t in (rec.expected, rec.clock))
        notes.declared.append(_Declared(where, low, high, True, _STEPPED))




@dataclass
class _Stretch:
    """Consecutive scheduled slots without a cycle_complete, for one reason: one finding."""

    why: tuple  # (severity, where, reason)
    first: datetime
    last: datetime
    index: int  # of `last` among the expected slots
    count: int = 1

    def slots(self) -> str:
        if self.count == 1:
            return f"slot {format_slot(self.first)} has"
        return (f"slots {format_slot(self.first)} to {format_slot(self.last)} ({self.count} slots) "
                "have")


def _check_gaps(notes: _Notes, cycles: dict[datetime, _Cycle], out: CheckResult,
                first_slot: datetime | None = None) -> None:
    """Every scheduled slot needs a `cycle_complete`, or a record of why it has none (from
    `first_slot` on, when retention removed the cycles before it)."""
    failed, runs, declared, finished = notes.failed, notes.runs, notes.declared, notes.finished
    if not runs:
        if cycles:
            out.findings.append(Finding(WARNING, None, "no simulation_started or bot_started event: "
                                        "the schedule is unknown, so gaps in cycles are not checked"))
        return
    completed = sorted(cycles)
    seen: set[datetime] = set()

    def report(expected: list[datetime], schedule: str) -> None:
        stretches: list[_Stretch] = []
        for i, slot in enumerate(expected):
            if slot in cycles or slot in seen or (first_slot is not None and slot < first_slot):
                continue
            seen.add(slot)
            why: tuple[str, Line | None, str]
            if slot in failed:
                why = (WARNING, failed[slot], _FAILED)
            else:
                owner = next((d for d in declared if d.covers(slot, completed)), None)
                why = (WARNING, owner.where, owner.reason) if owner is not None else (ERROR, None, _GAP)
            last = stretches[-1] if stretches else None
            if last is not None and last.why == why and last.index == i - 1 and why[2] != _FAILED:
                last.last, last.index, last.count = slot, i, last.count + 1
            else:
                stretches.append(_Stretch(why, slot, slot, i))
        gaps = [s for s in stretches if s.why[2] == _GAP]
        for s in stretches:
            if s.why[2] != _GAP:
                out.findings.append(Finding(s.why[0], s.why[1], f"{s.slots()} no cycle_complete: "
                                            f"{s.why[2]}"))
        for s in gaps[:50]:
            out.findings.append(Finding(ERROR, None, f"gap in cycles: scheduled {s.slots()} no "
                                        f"cycle_complete in performance.jsonl ({schedule})"))
        if len(gaps) > 50:
            more = sum(s.count for s in gaps[50:])
            out.findings.append(Finding(ERROR, None, f"... and {more} more scheduled slots "
                                        "with no cycle_complete"))

    for i, (where, rec) in enumerate(runs):
        started = rec.timestamp or _EARLIEST
        next_started = (runs[i + 1][1].timestamp or _EARLIEST) if i + 1 < len(runs) else None
        mine = [c for c in completed if cycles[c].written >= started
                and (next_started is None or cycles[c].written < next_started)]
        if isinstance(rec, SimulationStarted):
            expected = simulation_slots(rec.start, rec.end)
            if not (finished and next_started is None):  # stopped early: up to its last cycle
                expected = [s for s in expected if mine and s <= mine[-1]]
            report(expected, "the simulation runs every NYSE trading day 15 minutes before its "
                             "close: 15:45 New York time, 12:45 on early-close days")
            continue
        if not mine:
            continue
        try:
            planner = SlotPlanner(parse_schedule(rec.schedule), rec.market_hours == "nyse")
        except ValueError as exc:
            out.findings.append(Finding(WARNING, where, f"schedule not understood ({exc}): gaps "
                                        "in this run are not checked"))
            continue
        # this run answers for the slots from the last cycle before it started to its own last one
        before = [c for c in completed if c < mine[0]]
        found = _slots_between(planner, before[-1] if before else mine[0], mine[-1])
        if found is None:
            out.findings.append(Finding(WARNING, where, f"more than {MAX_SLOTS:,} scheduled slots "
                                        "in this run: gaps are not checked"))
            continue
        report(found, f"BOT_SCHEDULE={rec.schedule!r}, BOT_MARKET_HOURS={rec.market_hours!r}")


def _slots_between(planner: SlotPlanner, first: datetime, last: datetime) -> list[datetime] | None:
    t = first
    out = [first]
    while len(out) <= MAX_SLOTS:
        t = planner.next_after(t)
        if t > last:
            return out
        out.append(t)
    return None
