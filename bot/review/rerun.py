"""Re-run a recorded cycle's model decisions with the current code and settings, and compare.

For each `model_decision` of the cycle, the model's inputs are rebuilt from the configured data
source exactly as `plan_cycle` builds them, their `input_sha256` is checked against the recorded
one, and `decide` runs again. The result says what changed (scores, target weights, reason,
hold, capital share) or that nothing did; a hash mismatch comes with its likely causes.

Read-only: no broker, no trail, no account, no state; the log directory is only read. Final
weights and orders are not re-planned (they depend on that moment's account and prices). The
configured models and data source come in as a `Configured` (built from the settings by
`bot.app.rerun`): a reader builds no adapter.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Protocol

from audit.files import Line
from audit.records import (
    DECISIONS,
    EVENTS,
    BotStarted,
    ModelDecided,
    Record,
    SimulationStarted,
    UnknownRecord,
)
from audit.timestamps import format_slot
from bot.core import calendar
from bot.core.ports import MarketData
from bot.review.explain import Neighbors, RecordEntry, parse_cycle, scan_records
from models.base import Decision, Model, input_sha256

_RUN_EVENTS = (SimulationStarted, BotStarted)
_EARLIEST = datetime.min.replace(tzinfo=timezone.utc)
Run = SimulationStarted | BotStarted
"""The start of the run that made a decision: where its data came from."""


class Sleeve(Protocol):
    """A configured model and the share of the account it manages (`bot.core.cycle.ModelShare`)."""

    @property
    def model(self) -> Model: ...

    @property
    def share(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Configured:
    """What the re-run runs with now, and the settings its hints compare with the run's."""

    models: tuple[Sleeve, ...]
    market: MarketData  # the configured data source
    models_setting: str  # BOT_MODELS
    csv_dir: str  # BOT_CSV_DIR, "" when unset
    broker: str  # BOT_BROKER
    seed: int  # BOT_SEED
    settings_sha256: str  # the settings' fingerprint, as BotStarted/SimulationStarted carry it


@dataclass(frozen=True, slots=True)
class _Found:
    """A record of the trail that the re-run reads, as its type, and where it is."""

    where: Line
    record: Record | UnknownRecord

    @property
    def time(self) -> datetime:
        return self.record.timestamp or _EARLIEST


@dataclass(frozen=True, slots=True)
class Change:
    """One difference between the recorded decision and the re-run: `before` -> `after`
    (None: absent on that side). `key` is the symbol for scores and weights."""

    what: str  # "score", "target weight", "reason", "hold" or "capital share"
    key: str | None
    before: Any
    after: Any


@dataclass(frozen=True, slots=True)
class RerunResult:
    """One model's decision in one cycle, then and now."""

    cycle: datetime
    model: str
    where: Line  # the recorded model_decision
    recorded_sha256: str | None
    rerun_sha256: str | None  # None: not re-run (the model is not configured now)
    changes: tuple[Change, ...] = ()
    hints: tuple[str, ...] = ()  # why the inputs differ, when they do
    problems: Mapping[str, str] = field(default_factory=dict)  # data problems of the rebuilt inputs
    note: str | None = None  # not configured now, or the model failed now

    @property
    def cycle_timestamp(self) -> str:
        """`cycle` as the trail writes it (for printing)."""
        return format_slot(self.cycle)

    @property
    def configured(self) -> bool:
        return self.rerun_sha256 is not None

    @property
    def inputs_match(self) -> bool:
        return self.configured and self.rerun_sha256 == self.recorded_sha256

    @property
    def unchanged(self) -> bool:
        return self.configured and not self.changes


def rerun_cycle(now: Configured, log_dir: Path, cycle: str) -> list[RerunResult]:
    """Re-run every recorded model decision of the cycle(s) `cycle` names (see
    `bot.review.explain.parse_cycle`), in trail order, with the models and data source `now`.
    Raises ValueError for an unreadable TIMESTAMP, LookupError naming the nearest cycles when
    the trail has no decision for it."""
    query = parse_cycle(cycle)
    log_dir = Path(log_dir)
    near = Neighbors(query)
    decisions = [(found.where, found.record) for found in _found(
        scan_records(log_dir, DECISIONS, (query.needle,), _any, peek=near))
        if isinstance(found.record, ModelDecided)
        and query.start <= found.record.cycle_timestamp < query.end]
    if not decisions:
        raise near.error(log_dir)
    needles = tuple(f'"{kind.event_type}"'.encode() for kind in _RUN_EVENTS)
    runs = [found for found in _found(scan_records(log_dir, EVENTS, needles, _any))
            if isinstance(found.record, _RUN_EVENTS)]
    models = {ms.model.name: ms for ms in now.models}
    results = []
    for where, decision in sorted(decisions, key=lambda d: d[1].timestamp or _EARLIEST):
        decided = decision.timestamp or _EARLIEST
        run = next((r.record for r in reversed(runs) if r.time <= decided), None)
        results.append(_rerun_one(where, decision, now, models,
                                  run if isinstance(run, _RUN_EVENTS) else None))
    return results


def _any(_fields: object) -> bool:
    return True


def _found(entries: list[RecordEntry]) -> list[_Found]:
    return [_Found(entry.where, entry.record) for entry in entries]


def _rerun_one(where: Line, rec: ModelDecided, now: Configured, models: Mapping[str, Sleeve],
               run: Run | None) -> RerunResult:
    name, recorded = rec.model, rec.input_sha256
    if name not in models:
        return RerunResult(rec.cycle_timestamp, name, where, recorded, None, note=(
            f"not re-run: {name} is not configured now (BOT_MODELS={now.models_setting}); add it "
            "to BOT_MODELS to re-run it"))
    ms = models[name]
    model = ms.model
    before = rec.cycle_timestamp.astimezone(calendar.NY).date()
    history = now.market.history(model.symbols, before, model.bars)  # exactly as plan_cycle does
    sha = input_sha256(history)
    note = None
    try:
        decision = model.decide(history)
    except Exception as exc:  # as the cycle does: a failing model holds
        decision = Decision({}, {}, f"model failed: {exc!r}", hold=True)
        note = f"{name} failed now: {exc!r}"
    hints: tuple[str, ...] = ()
    if sha != recorded:
        hints = _hints(rec, history.as_of, tuple(model.symbols), dict(history.problems),
                       now, run)
    return RerunResult(rec.cycle_timestamp, name, where, recorded, sha,
                       _changes(rec, decision, ms.share), hints, dict(history.problems), note)


def _changes(rec: ModelDecided, now: Decision, share: float) -> tuple[Change, ...]:
    out: list[Change] = []
    then_share = rec.capital_share
    if isinstance(then_share, (int, float)) and not math.isclose(then_share, share, abs_tol=1e-12):
        out.append(Change("capital share", None, then_share, share))
    weighed: tuple[tuple[str, Mapping[str, float], Mapping[str, float]], ...] = (
        ("score", rec.scores or {}, now.scores),
        ("target weight", rec.target_weights or {}, now.target_weights))
    for what, then, after in weighed:
        for key in sorted(set(then) | set(after)):
            a, b = _value(then.get(key)), _value(after.get(key))
            if a != b:
                out.append(Change(what, key, a, b))
    if rec.reason != now.reason:
        out.append(Change("reason", None, rec.reason, now.reason))
    if bool(rec.hold) != now.hold:
        out.append(Change("hold", None, bool(rec.hold), now.hold))
    return tuple(out)


def _value(v: object) -> object:
    """A score or weight as the trail stores it: JSON has no NaN or infinity (they become null)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _hints(rec: ModelDecided, as_of: date | None, symbols: tuple[str, ...],
           problems: dict[str, str], now: Configured, run: Run | None) -> tuple[str, ...]:
    """The likely causes of an input hash mismatch, the specific ones first."""
    out: list[str] = []
    now_csv = now.csv_dir
    if isinstance(run, SimulationStarted):
        then_csv = str(run.csv_dir or "")
        if then_csv != now_csv:
            out.append(f"the run read {_source(then_csv)}, now {_source(now_csv)}: set "
                       f"BOT_CSV_DIR={then_csv or '(unset)'} as the run had it")
        elif not now_csv and now.broker == "sim" and run.seed != now.seed:
            out.append(f"the run simulated with seed {run.seed}, now BOT_SEED={now.seed}: "
                       f"set BOT_SEED={run.seed} as the run had it")
    elif isinstance(run, BotStarted) and run.broker not in (None, now.broker):
        out.append(f"the run used BOT_BROKER={run.broker}, now BOT_BROKER={now.broker}: "
                   "another data source")
    if run is not None and run.settings_sha256 == now.settings_sha256:
        out.append("the settings are the run's own (settings_sha256 matches): the data itself "
                   "changed since")
    then_symbols = tuple(rec.symbols or ())
    if then_symbols and set(then_symbols) != set(symbols):
        added = sorted(set(symbols) - set(then_symbols))
        gone = sorted(set(then_symbols) - set(symbols))
        out.append("the model reads other symbols now (" + "; ".join(
            p for p in (f"added {', '.join(added)}" if added else "",
                        f"dropped {', '.join(gone)}" if gone else "") if p)
                   + "): BOT_EQUAL_WEIGHT_SYMBOLS or a BOT_SECTOR_* symbol changed")
    if rec.as_of != as_of:
        out.append(f"the data then ended on {rec.as_of or 'no date (no data)'}, now on "
                   f"{as_of or 'no date (no data)'}")
    for sym, why in sorted(problems.items()):
        out.append(f"{sym} is unusable now: {why}")
    generic = ("a different BOT_SEED, BOT_CSV_DIR or data source (BOT_BROKER) than the run; "
               "CSV files edited since; a model setting that changes how many closes it reads "
               "(BOT_SECTOR_LOOKBACK, BOT_SECTOR_TREND_WINDOW)")
    if now.broker == "alpaca":
        generic += "; Alpaca adjusts past daily bars for later splits and dividends"
    out.append(("other " if out else "") + "likely causes: " + generic)
    return tuple(out)


def _source(csv_dir: str) -> str:
    return f"CSV files from {csv_dir}" if csv_dir else "the synthetic market"


def format_rerun(results: list[RerunResult]) -> str:
    """The re-run as text: per cycle, per model, whether the inputs match and what changed."""
    lines: list[str] = []
    cycle = None
    for r in results:
        if r.cycle != cycle:
            cycle = r.cycle
            if lines:
                lines.append("")
            lines.append(f"re-run of cycle {r.cycle_timestamp} with the current code and settings "
                         "(nothing written, no order placed):")
        if not r.configured:
            lines.append(f"{r.model} ({r.where}): {r.note}")
            continue
        if r.inputs_match:
            lines.append(f"{r.model} ({r.where}): inputs match (sha256 {r.rerun_sha256})")
        else:
            lines.append(f"{r.model} ({r.where}): INPUTS DIFFER: recorded sha256 "
                         f"{r.recorded_sha256}, rebuilt {r.rerun_sha256}; the comparison below "
                         "is not of the same inputs")
            lines.extend(f"  {h}" for h in r.hints)
        if r.note:
            lines.append(f"  {r.note}")
        if not r.changes:
            lines.append("  no change")
        for c in r.changes:
            label = f"{c.what} {c.key}" if c.key is not None else c.what
            lines.append(f"  {label}: {_show(c, c.before)} -> {_show(c, c.after)}")
    if lines:
        lines.append("")
        lines.append("(final weights and orders are not re-planned: they depend on the account "
                     "and prices of that moment)")
    return "\n".join(lines)


def _show(c: Change, v: Any) -> str:
    if v is None:
        return "(none)"
    if c.what in ("target weight", "capital share") and isinstance(v, (int, float)):
        return f"{v:.2%}"
    if c.what == "score" and isinstance(v, (int, float)):
        return repr(v)  # every digit: a change in the last one shows
    if c.what == "reason":
        return repr(v)
    return str(v)
