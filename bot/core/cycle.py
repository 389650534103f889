"""One cycle: account, market data, each model, plan, submit, fills, performance snapshot.

`plan_cycle` decides and writes nothing (it serves `cycle --dry-run`); `run_cycle` records and
trades. The error policy of a cycle lives here: one failing order never stops the others, a bad
price or bad data is recorded and its symbol left alone, a model that fails holds. Failures of the
whole cycle propagate to the runner, which records them and carries on.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Literal, Mapping

from audit.records import (
    DECISIONS,
    ERRORS,
    ORDERS,
    PERFORMANCE,
    TRADES,
    DataUnusable,
    KillSwitchEngaged,
    ModelFailed,
    OrderCanceled,
    OrderNotPlaced,
    OrderOpenAtDeadline,
    OrderSkipped,
    PriceUnusable,
    Problem,
    event_from_notice,
)
from bot.core import calendar, recording
from bot.core.clock import Clock
from bot.core.domain import BENCHMARK, AccountSnapshot
from bot.core.errors import DataError, Halt, OrderRejected, RetryLater, SkipAndRecord
from bot.core.observers import CycleObserver
from bot.core.planning import Plan, RiskLimits, Sleeve, plan_orders
from bot.core.ports import (
    INTENT,
    Broker,
    MarketCalendar,
    MarketData,
    OrderJournal,
    RunningTrail,
    Trail,
)
from bot.core.reconcile import reconcile
from models.base import Decision, History, Model, input_sha256, params_sha256

FINAL_STATUSES = frozenset(("filled", "rejected", "canceled", "expired", "done_for_day"))
Note = tuple[str, str, dict[str, Any]]  # (kind, message, details) left by another process


def no_notes() -> list[Note]:
    """The inbox of a bot that has none (simulate, tests)."""
    return []


@dataclass(frozen=True, slots=True)
class ModelShare:
    """A model and the fraction of the account's NAV it manages; `params_sha256` is the hash
    of its parameters, taken once (every decision carries it)."""

    model: Model
    share: float
    params_sha256: str = field(init=False, default="")

    def __post_init__(self) -> None:
        object.__setattr__(self, "params_sha256", params_sha256(self.model))


class KillSwitch:
    """Engaged by a setting or by a file (for example `data/KILL_SWITCH`) that an operator touches."""

    def __init__(self, setting: bool, path: Path | None) -> None:
        self.setting = setting
        self.path = path

    def reason(self) -> str | None:
        if self.setting:
            return "BOT_KILL_SWITCH=true"
        if self.path is not None and self.path.exists():
            return f"kill-switch file {self.path} exists (delete it to resume trading)"
        return None


@dataclass(slots=True)
class CycleDeps:
    """What a cycle talks to: the ports (bot/core/ports.py), the models, and how it waits
    between two looks at an order's fills. Only the clock, the data and the broker differ
    between `run`, `cycle` and `simulate`."""

    clock: Clock
    market: MarketData
    broker: Broker
    trail: RunningTrail  # the cycle writes through `Trail`; the app also logs and closes it
    journal: OrderJournal
    models: tuple[ModelShare, ...]
    calendar: MarketCalendar = calendar  # the module is one
    sleep: Callable[[float], object] = time.sleep  # between fill polls (tests inject their own)


ReconcilePolicy = Literal["adopt", "halt"]


@dataclass(frozen=True, slots=True)
class CyclePolicy:
    """How a cycle behaves, fixed for the process: the risk limits, the kill switch, what a
    difference with the broker does (BOT_RECONCILE), how long an order is followed."""

    limits: RiskLimits
    kill_switch: KillSwitch
    reconcile: ReconcilePolicy = "adopt"
    fill_timeout: float = 30.0  # seconds an order is followed within its cycle
    poll_interval: float = 1.0  # seconds between two looks at its fills


@dataclass(slots=True)
class Bot:
    """A built bot (bot/wiring.py): what its cycles need and how they behave, the process's
    plumbing around them, and the one thing a cycle hands to the next."""

    deps: CycleDeps
    policy: CyclePolicy
    # the process around the cycles (bot/app/): heartbeat, metrics and alerts, and the drain of
    # the notes other processes leave (bot/adapters/inbox.py)
    observers: tuple[CycleObserver, ...] = ()
    take_notes: Callable[[], list[Note]] = no_notes
    # lasting problems (kind, symbol or model) already recorded: recorded again once they clear
    reported_problems: set[tuple[str, str]] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class ModelRun:
    share: ModelShare
    history: History
    decision: Decision
    input_sha256: str


@dataclass(frozen=True, slots=True)
class CyclePlan:
    slot: datetime
    account: AccountSnapshot
    runs: tuple[ModelRun, ...]
    prices: dict[str, float]
    plan: Plan
    problems: tuple[DataUnusable | ModelFailed | PriceUnusable, ...]
    kill_reason: str | None


@dataclass(frozen=True, slots=True)
class CycleOutcome:
    slot: datetime
    nav: float
    cash: float
    positions: dict[str, float]
    orders: int
    fills: int
    errors: int
    held_for_data: int = 0  # models that held because their data was not enough to decide


def _held_for_data(planned: CyclePlan) -> int:
    """Models that held for lack of data (a model that failed holds too, but as an error)."""
    failed = {p.model for p in planned.problems if isinstance(p, ModelFailed)}
    return sum(1 for r in planned.runs if r.decision.hold and r.share.model.name not in failed)


def plan_cycle(deps: CycleDeps, policy: CyclePolicy, slot: datetime,
               account: AccountSnapshot | None = None) -> CyclePlan:
    """Everything up to the order list, with no side effects."""
    if account is None:
        account = deps.broker.account()
    before = slot.astimezone(calendar.NY).date()
    problems: list[DataUnusable | ModelFailed | PriceUnusable] = []
    runs = []
    for share in deps.models:
        model = share.model
        history = deps.market.history(model.symbols, before, model.bars)
        for sym, why in history.problems.items():
            problems.append(DataUnusable(error=f"{sym}: {why}", cycle_timestamp=slot, symbol=sym,
                                         model=model.name))
        try:
            decision = model.decide(history)
        except Exception as exc:  # a broken model holds; the others go on
            problems.append(ModelFailed(error=f"{model.name} failed: {exc!r}", cycle_timestamp=slot,
                                        model=model.name))
            decision = Decision({}, {}, f"model failed: {exc!r}", hold=True)
        runs.append(ModelRun(share, history, decision, input_sha256(history)))

    sleeves_held = deps.journal.sleeves()
    wanted: set[str] = set(account.positions)
    for run in runs:
        wanted.update(run.decision.target_weights)
        wanted.update(sleeves_held.get(run.share.model.name, ()))
    now = deps.clock.now()
    prices: dict[str, float] = {}
    for sym in sorted(wanted):
        try:
            p = round(deps.market.price(sym, now), 4)
        except DataError as exc:
            why = f"no usable price for {sym}: {exc.reason}"
            if exc.kind == "data_error":  # a refused close: name the models that wanted it
                wanting = ",".join(r.share.model.name for r in runs
                                   if sym in r.decision.target_weights
                                   or sym in sleeves_held.get(r.share.model.name, ()))
                problems.append(DataUnusable(error=why, cycle_timestamp=slot, symbol=sym,
                                             model=wanting))
            else:
                problems.append(PriceUnusable(error=why, cycle_timestamp=slot, symbol=sym))
            continue
        if not (p > 0 and math.isfinite(p)):
            problems.append(PriceUnusable(error=f"bad price for {sym}: {p!r}", cycle_timestamp=slot,
                                          symbol=sym, price=None))
            continue
        prices[sym] = p

    kill_reason = policy.kill_switch.reason()
    limits = policy.limits
    if kill_reason and not limits.kill_switch:
        limits = replace(limits, kill_switch=True)
    sleeves = [Sleeve(r.share.model.name, r.share.share,
                      None if r.decision.hold else r.decision.target_weights,
                      sleeves_held.get(r.share.model.name, {})) for r in runs]
    plan = plan_orders(sleeves, account.nav, account.cash, prices, limits, slot)
    return CyclePlan(slot, account, tuple(runs), prices, plan, tuple(problems), kill_reason)


def run_cycle(bot: Bot, slot: datetime, *, send_orders: bool = True) -> CycleOutcome:
    """Run one cycle for `slot` and record everything. `send_orders=False` records the plan only."""
    deps, policy = bot.deps, bot.policy
    trail, journal, broker = deps.trail, deps.journal, deps.broker
    rerun = journal.started_slot == slot  # this slot's cycle began before and was cut short
    journal.start_slot(slot)
    settled = bool(journal.open_orders() or journal.fills_writing())
    settling = _settle_open_orders(deps, slot)
    fills = settling.fills
    account = broker.account()
    settled |= reconcile(trail, journal, broker, account, slot, policy.reconcile)
    planned = plan_cycle(deps, policy, slot, account)
    errors = settling.rejected
    if not rerun:
        errors += _record_problems(trail, planned, bot.reported_problems)
        _record_warnings(trail, planned, slot)
    if planned.kill_reason:
        trail.record(KillSwitchEngaged(
            message=f"no new orders: {planned.kill_reason}", cycle_timestamp=slot,
            blocked_orders=sum(1 for c in planned.plan.checks if c.check == "kill_switch")))
    _record_decisions(trail, planned, slot, send_orders, rerun)
    sent = 0
    if send_orders:
        sent, new_fills, failed = _submit_all(deps, policy, planned, slot)
        fills += new_fills
        errors += failed
    # nothing sent and nothing settled: the account is as the cycle found it
    after = (broker.account() if (sent or fills or planned.plan.orders or settled)
             else planned.account)
    snapshot = recording.cycle_completed(after, slot, orders=sent, fills=fills, errors=errors,
                                         marks=_marks(deps, after, planned.prices))
    trail.record(snapshot)
    journal.complete_slot(slot)
    trail.checkpoint()
    return CycleOutcome(slot, after.nav, after.cash, dict(snapshot.positions), sent, fills, errors,
                        _held_for_data(planned))


def _marks(deps: CycleDeps, account: AccountSnapshot, planned: dict[str, float]) -> dict[str, float]:
    """The prices the snapshot's NAV used for each position, and the benchmark's price: replay
    and reports value the portfolio from the trail alone with them."""
    marks = {s: p for s, p in sorted(account.prices.items()) if s in account.positions}
    bench = account.prices.get(BENCHMARK) or planned.get(BENCHMARK)
    if bench is None:
        try:
            bench = deps.market.price(BENCHMARK, deps.clock.now())
        except (SkipAndRecord, RetryLater):  # the benchmark is a nicety: never fail a cycle for it
            bench = None
    if bench is not None and math.isfinite(bench) and bench > 0:
        marks[BENCHMARK] = bench
    return marks


def record_account(trail: Trail, account: AccountSnapshot, source: str) -> None:
    """Record the account as the broker reports it at start-up (`account_checked`): replay starts
    from it, and a later one shows what changed while the bot was stopped."""
    trail.record(recording.account_checked(account, source))


def _problem_key(problem: DataUnusable | ModelFailed | PriceUnusable) -> tuple[str, str]:
    """What a lasting problem is about: its kind and its symbol (a model's failure: the model)."""
    about = problem.model if isinstance(problem, ModelFailed) else problem.symbol
    return problem.event_type, about


def _record_problems(trail: Trail, planned: CyclePlan, reported: set[tuple[str, str]]) -> int:
    """Record data, price and model problems. A lasting one (a missing CSV file, a gap) is
    recorded when it appears, not every cycle; once it clears, a new appearance is recorded.
    `reported` (those of the cycle before) becomes this cycle's."""
    current, n = set(), 0
    for problem in planned.problems:
        key = _problem_key(problem)
        current.add(key)
        if key not in reported:
            trail.record(problem)
            n += 1
    reported.clear()
    reported.update(current)
    return n


def _record_warnings(trail: Trail, planned: CyclePlan, slot: datetime) -> None:
    """Record what the models' decisions warn of (risk-off held without its defensive symbol...)
    in every cycle it holds: a WARN record in events.jsonl named by the warning's kind."""
    for run in planned.runs:
        name = run.share.model.name
        for w in run.decision.warnings:
            trail.record(event_from_notice(w.kind, f"{name}: {w.message}",
                                               {"cycle_timestamp": slot, "model": name, **w.details}))


def _record_decisions(trail: Trail, planned: CyclePlan, slot: datetime, send_orders: bool,
                      rerun: bool) -> None:
    """One `model_decision` per model per slot: a resumed slot keeps the ones already written."""
    skip_note = None if send_orders else {
        "check": "missed_slot_policy", "symbol": None,
        "detail": "BOT_MISSED_SLOT=record: plan recorded, no order sent"}
    for run in planned.runs:
        name = run.share.model.name
        if rerun and trail.has(DECISIONS, model=name, cycle_timestamp=slot):
            continue
        checks = [{"check": c.check, "symbol": c.symbol, "detail": c.detail}
                  for c in planned.plan.checks if c.model == name]
        if skip_note and any(o.model == name for o in planned.plan.orders):
            checks.append(skip_note)
        trail.record(recording.model_decided(
            run.share.model, slot, capital_share=run.share.share,
            params_sha256=run.share.params_sha256, history=run.history,
            input_sha256=run.input_sha256, decision=run.decision,
            final_weights=planned.plan.final_weights.get(name, {}), risk_checks=tuple(checks)))


def _submit_all(deps: CycleDeps, policy: CyclePolicy, planned: CyclePlan,
                slot: datetime) -> tuple[int, int, int]:
    """Send the plan's orders (sells first), one failure never stopping the others; follow
    their fills. Returns (orders sent, fill lines written, errors recorded)."""
    trail, journal = deps.trail, deps.journal
    sent = fills = errors = 0
    sent_ids: list[tuple[str, str]] = []
    for order in planned.plan.orders:
        cid = order.client_order_id
        if journal.stage_of(cid) is not None:
            trail.record(OrderSkipped(message=f"{cid} was already sent for this slot",
                                      order_id=cid, cycle_timestamp=slot))
            continue
        journal.record_intent(cid, recording.intent_data(order, slot))
        try:
            ack = deps.broker.submit_order(order)
        except OrderRejected as exc:
            trail.record(recording.order_failed(order, exc.reason, slot))
            journal.mark_done(cid)
            errors += 1
            continue
        except SkipAndRecord as exc:  # verified not placed: nothing at the broker
            trail.record(recording.order_failed(order, str(exc), slot))
            journal.forget_order(cid)
            errors += 1
            continue
        except Halt:
            raise
        except Exception as exc:  # outcome unknown: stays INTENT, settled next cycle
            trail.record(recording.order_failed(order, f"{type(exc).__name__}: {exc}", slot))
            errors += 1
            continue
        trail.record(recording.order_submitted(order, ack, planned.account.nav, slot))
        journal.mark_sent(cid)
        sent += 1
        sent_ids.append((cid, order.model))
        followed = _record_fills(deps, cid, order.model, slot)
        fills, errors = fills + followed.fills, errors + followed.rejected
    followed = _await_fills(deps, policy, sent_ids, slot)
    return sent, fills + followed.fills, errors + followed.rejected


@dataclass(slots=True)
class Followed:
    """What following orders wrote: trade lines, and orders the broker rejected after accepting."""

    fills: int = 0
    rejected: int = 0

    def __iadd__(self, other: Followed) -> Followed:
        self.fills += other.fills
        self.rejected += other.rejected
        return self


def _record_fills(deps: CycleDeps, cid: str, model: str, slot: datetime) -> Followed:
    """Write a trade line for every fill of `cid` not yet in the trail (write-ahead through the
    journal); mark the order DONE once it is final. An order the broker accepted and then
    rejected is an `order_error` with the broker's words, like a rejection at submission."""
    journal, trail = deps.journal, deps.trail
    n = 0
    for f in deps.broker.fills(cid, *journal.filled_so_far(cid)):
        if journal.knows_fill(f.fill_id):
            continue
        trade = recording.trade_executed(f, model, slot)
        journal.fill_writing(f.fill_id, cid, f.quantity, recording.trade_data(trade), f.price)
        trail.record(trade)
        journal.fill_written(f.fill_id, cid, model, f.symbol, recording.signed_quantity(trade))
        n += 1
    ack = deps.broker.order_status(cid)
    rejected = 0
    if ack is not None and ack.status == "rejected":
        rejected = _record_late_rejection(trail, journal, cid, ack.reason, slot)
    if ack is not None and ack.status in FINAL_STATUSES:
        journal.mark_done(cid)
    return Followed(n, rejected)


def _record_late_rejection(trail: Trail, journal: OrderJournal, cid: str, reason: str | None,
                           slot: datetime) -> int:
    """Record, once, that the broker rejected `cid` after accepting it; 1 if recorded now."""
    if trail.has(ERRORS, order_id=cid):
        return 0  # recorded before a crash cut the cycle short
    data = journal.intent_of(cid)
    error = f"rejected by the broker after it accepted the order: {reason or 'no reason given'}"
    trail.record(_order_failed_from_store(cid, error, data, slot))
    return 1


def _order_failed_from_store(cid: str, error: str, data: Mapping[str, Any],
                             slot: datetime) -> Problem:
    intent = recording.intent_order(cid, data, slot)
    if intent is None:
        return recording.unknown_order_failed(cid, error, recording.stored_slot(data, slot), data)
    return recording.order_failed(intent.order, error, intent.slot, data)


def _finish_interrupted_fills(trail: Trail, journal: OrderJournal) -> int:
    """Fills stored but not known written when the process died: write the ones the trail lacks."""
    n = 0
    for fill_id, data in sorted(journal.fills_writing().items()):
        trade = recording.stored_trade(data)
        if not trail.has(TRADES, fill_id=fill_id):
            trail.record(trade)
            n += 1
        journal.fill_written(fill_id, trade.order_id, trade.model, trade.symbol,
                           recording.signed_quantity(trade))
    return n


def recover(deps: CycleDeps) -> None:
    """At start-up, before anything compares or trades: finish what a crash interrupted (fill
    and order lines, orders sent but not recorded), then close a slot whose cycle had in fact
    completed (its snapshot is in the trail; only the mark was lost)."""
    _settle_open_orders(deps, None)
    journal = deps.journal
    started = journal.started_slot
    if started is not None and (journal.last_slot is None or journal.last_slot < started):
        if deps.trail.has(PERFORMANCE, cycle_timestamp=started):
            journal.complete_slot(started)
    deps.trail.checkpoint()


def _settle_open_orders(deps: CycleDeps, slot: datetime | None) -> Followed:
    """Finish what an earlier cycle or a crash left open: fill lines written halfway, orders sent
    but not recorded, fills that came after a cycle's deadline. An order still working now is
    cancelled, so the new plan starts from what is really held. Returns the fills written and
    the rejections recorded."""
    journal, trail, broker = deps.journal, deps.trail, deps.broker
    done = Followed(_finish_interrupted_fills(trail, journal))
    for cid in sorted(journal.open_orders()):
        data = journal.intent_of(cid)
        order_slot = recording.stored_slot(data, slot or deps.clock.now())
        intent = recording.intent_order(cid, data, order_slot)
        model = intent.order.model if intent is not None else "unknown"
        ack = broker.order_status(cid)
        if journal.stage_of(cid) == INTENT:
            if ack is None:
                trail.record(OrderNotPlaced(message=f"{cid} never reached the broker; the plan "
                                            "is made again", order_id=cid,
                                            cycle_timestamp=order_slot))
                journal.forget_order(cid)
                continue
            if ack.status == "rejected":  # refused before we could record it: record it now
                if not trail.has(ERRORS, order_id=cid):
                    trail.record(_order_failed_from_store(
                        cid, ack.reason or "rejected by the broker", data, order_slot))
                    done.rejected += 1
                journal.mark_done(cid)
                continue
            if intent is not None and not trail.has(ORDERS, order_id=cid):
                trail.record(recording.order_submitted(intent.order, ack, broker.account().nav,
                                                       intent.slot))
            journal.mark_sent(cid)
        done += _record_fills(deps, cid, model, order_slot)
        if cid in journal.open_orders():  # still working since its own cycle: cancel the rest
            broker.cancel_order(cid)
            trail.record(OrderCanceled(message=f"{cid} was still open at the next cycle: the rest "
                                       "of it is cancelled before planning again", order_id=cid,
                                       cycle_timestamp=order_slot))
            done += _record_fills(deps, cid, model, order_slot)
    return done


def _still_open(journal: OrderJournal, orders: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The (order id, model) pairs whose order the journal still has open (one read of the set)."""
    open_now = journal.open_orders()
    return [(cid, model) for cid, model in orders if cid in open_now]


def _await_fills(deps: CycleDeps, policy: CyclePolicy, sent: list[tuple[str, str]],
                 slot: datetime) -> Followed:
    """Follow this cycle's orders until each is final or the fill deadline passes; an order still
    open then is recorded, and settled at the next cycle."""
    journal = deps.journal
    deadline = deps.clock.now().timestamp() + policy.fill_timeout
    n = Followed()
    waiting = _still_open(journal, sent)
    while waiting:
        for cid, model in waiting:
            n += _record_fills(deps, cid, model, slot)
        waiting = _still_open(journal, waiting)
        if not waiting or deps.clock.now().timestamp() >= deadline:
            break
        deps.sleep(policy.poll_interval)
    for cid, _model in waiting:
        ack = deps.broker.order_status(cid)
        deps.trail.record(OrderOpenAtDeadline(
            message=f"{cid} is still {ack.status if ack else 'unknown'} after "
                    f"{policy.fill_timeout:g}s: its fills are recorded at the next cycle",
            order_id=cid, status=ack.status if ack else None, cycle_timestamp=slot))
    return n
