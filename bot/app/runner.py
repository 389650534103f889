"""The scheduler loop: waits for slots with the `schedule` library, runs cycles, never two at once.

Also the policy for a failing cycle (`guarded_cycle`): record it in errors.jsonl with the
traceback in production.log, then carry on. `Halt` (and a trail that cannot be written) stops.
And the start-up check of the broker (`check_broker_at_start`), which `run` repeats with backoff
while the broker is down.
"""
from __future__ import annotations

import threading
import time
import traceback
from datetime import datetime, timedelta
from typing import Callable

import schedule

from audit.records import (
    BrokerUnavailable,
    ClockStepped,
    CycleFailed,
    CycleSkipped,
    ManualCycle,
    SlotMissed,
    SlotResumed,
    event_from_notice,
)
from audit.timestamps import format_slot, format_timestamp
from audit.writer import AuditWriteFailed
from bot.core.cycle import Bot, CycleOutcome, record_account, recover, run_cycle
from bot.core.errors import AuditWriteError, Halt, RetryLater
from bot.core.observers import CycleReport
from bot.core.scheduling import SlotPlanner


def guarded_cycle(bot: Bot, slot: datetime, *, send_orders: bool = True) -> CycleOutcome | None:
    """Run a cycle; a failure is recorded and swallowed, except Halt and audit write failures."""
    started, clock = bot.deps.clock.now(), time.perf_counter()
    try:
        record_inbox(bot)
        out = run_cycle(bot, slot, send_orders=send_orders)
    except AuditWriteFailed as exc:
        _tell(bot, slot, started, clock, f"the audit trail cannot be written: {exc}")
        raise AuditWriteError(f"the audit trail cannot be written ({exc}); trading stopped") from exc
    except Halt as exc:
        _tell(bot, slot, started, clock, f"halted: {exc}")
        raise
    except Exception as exc:
        bot.deps.trail.log("ERROR", "cycle failed:\n" + traceback.format_exc().rstrip())
        bot.deps.trail.record(CycleFailed(error=f"{type(exc).__name__}: {exc}", cycle_timestamp=slot))
        bot.deps.trail.checkpoint()
        _tell(bot, slot, started, clock, f"{type(exc).__name__}: {exc}")
        return None
    _tell(bot, slot, started, clock, None, out)
    return out


def record_inbox(bot: Bot) -> None:
    """Record the notes other processes left for us (a refused second `run`): before each cycle,
    before recovery at start-up, and at stop."""
    for kind, message, details in bot.take_notes():
        bot.deps.trail.record(event_from_notice(kind, message, details))


def _tell(bot: Bot, slot: datetime, started: datetime, clock: float, error: str | None,
          out: CycleOutcome | None = None) -> None:
    """Tell the observers how the cycle went (they never raise into the cycle)."""
    if not bot.observers:
        return
    report = CycleReport(slot, started, time.perf_counter() - clock, error,
                         out.nav if out else None, out.cash if out else None,
                         out.orders if out else 0, out.fills if out else 0, out.errors if out else 0)
    for observer in bot.observers:
        try:
            observer.cycle_finished(report)
        except Exception as exc:  # an observer's bug must not stop trading
            bot.deps.trail.log("ERROR", f"{type(observer).__name__} failed: {exc!r}")


BROKER_RETRY_FIRST = 5.0  # seconds before the second start-up attempt; doubling from there
BROKER_RETRY_MAX = 300.0  # the longest wait between two start-up attempts


def check_broker_at_start(bot: Bot, source: str, policy: str,
                          wait: Callable[[float], bool] | None) -> bool:
    """Before the first cycle: finish what a crash left, read the account (`account_checked`),
    reconcile. A broker that cannot be reached (timeout, connection, 429, 5xx, after the read
    retries) is a `broker_unavailable` error for each attempt. With `wait` (`run`), it waits
    5 s, 10 s, 20 s... up to 5 minutes between attempts, until the broker answers (True) or the
    wait says a stop was asked (False); without (`cycle`), the failure is raised."""
    from bot.core.reconcile import reconcile
    attempt = 0
    while True:
        attempt += 1
        try:
            record_inbox(bot)
            recover(bot.deps)  # crash leftovers first, so they are not mistaken for differences
            account = bot.deps.broker.account()
        except RetryLater as exc:
            if wait is not None and wait(0):  # a stop was asked during this attempt
                _record_unavailable(bot, str(exc), attempt, None, "a stop was asked, stopping")
                return False
            delay = None if wait is None else min(BROKER_RETRY_FIRST * 2 ** (attempt - 1),
                                                  BROKER_RETRY_MAX)
            _record_unavailable(bot, str(exc), attempt, delay)
            if wait is None or delay is None:
                raise
            if wait(delay):
                return False
            continue
        if attempt > 1:
            bot.deps.trail.log("INFO", f"the broker answered at start-up attempt {attempt}")
        deps = bot.deps
        record_account(deps.trail, account, source)
        reconcile(deps.trail, deps.journal, deps.broker, account, None, policy)
        return True


def _record_unavailable(bot: Bot, why: str, attempt: int, delay: float | None,
                        then: str = "nothing traded, stopping") -> None:
    if delay is not None:
        then = f"trying again in {delay:g}s"
    bot.deps.trail.record(BrokerUnavailable(
        error=f"the broker cannot be reached at start-up ({why}); {then}", attempt=attempt,
        retry_in_seconds=delay))
    bot.deps.trail.checkpoint()


_SKIP_COMPLETED_LIMIT = 1_000_000
CLOCK_STEP_SECONDS = 30.0  # wall clock minus monotonic clock between two looks, beyond: a step
MANUAL_WAIT_LIMIT = 5.0  # seconds a manual cycle waits for a slot after the trail's last one


def manual_slot(bot: Bot, planner: SlotPlanner,
                sleep: Callable[[float], object] = time.sleep) -> datetime | None:
    """The slot `tradebot cycle` runs: the latest due slot when it has not run yet, else the later
    of this very second and one second after the last slot begun (an off-schedule manual cycle,
    recorded as such; it waits for that second, so cycles in a row never share a slot). None,
    recorded, when NYSE hours are asked for and the market is closed. Halt when the clock is
    behind the trail's last slot by more than a moment (a clock stepped back): nothing runs."""
    now = bot.deps.clock.now()
    if planner.nyse_hours and not planner.cal.is_open(now):
        nxt = planner.next_after(now)
        bot.deps.trail.record(CycleSkipped(
            message=f"market closed (NYSE regular hours): nothing sent; next slot {format_slot(nxt)}",
            reason="market_closed", next_slot=nxt, policy="skip"))
        return None
    slot = planner.latest_due(now)
    last = bot.deps.journal.last_slot
    if slot is None or (last is not None and last >= slot):
        slot = _after_last_begun(bot, now, sleep)
        bot.deps.trail.record(ManualCycle(
            message=f"the latest scheduled slot already ran: manual cycle at {format_slot(slot)}",
            cycle_timestamp=slot))
    return slot


def _after_last_begun(bot: Bot, now: datetime, sleep: Callable[[float], object]) -> datetime:
    """max(this second, one second after the last slot begun or completed), waited for."""
    begun = [t for t in (bot.deps.journal.last_slot, bot.deps.journal.started_slot) if t is not None]
    slot = now.replace(microsecond=0)
    if begun:
        slot = max(slot, max(begun).replace(microsecond=0) + timedelta(seconds=1))
    ahead = (slot - now).total_seconds()
    if ahead > MANUAL_WAIT_LIMIT:
        raise Halt(f"the clock ({format_slot(now)}) is {ahead:.0f} s behind the trail's last slot "
                   f"{format_slot(max(begun))} (was it stepped back?): nothing was run; correct "
                   "the clock, or run `tradebot cycle` again after that slot")
    while (left := (slot - bot.deps.clock.now()).total_seconds()) > 0:
        sleep(left)
    return slot


class StopFlag:
    """What a signal handler sets: a plain attribute. (`threading.Event.set` takes a lock, and a
    handler that runs while the main thread holds it inside `Event.wait` deadlocks.)"""

    def __init__(self) -> None:
        self.requested = False

    def set(self) -> None:
        self.requested = True

    def is_set(self) -> bool:
        return self.requested

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds` (forever for inf), waking within 0.2 s of a stop request."""
        deadline = time.monotonic() + seconds
        while not self.requested:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(left, 0.2))
        return True


class Runner:
    """Runs the cycles of a `SlotPlanner` until `stop` is set or `max_cycles` have run.

    `wait(seconds)` is injected (tests pass one that advances a fake clock); it returns early
    when `stop` is set.
    """

    def __init__(self, bot: Bot, planner: SlotPlanner, missed_slot: str,
                 stop: StopFlag | threading.Event, wait: Callable[[float], object] | None = None,
                 poll_seconds: float = 1.0, max_wait: float = 1.0,
                 monotonic: Callable[[], float] | None = None,
                 step_seconds: float = CLOCK_STEP_SECONDS) -> None:
        self.bot = bot
        self.planner = planner
        self.missed_slot = missed_slot
        self.stop = stop
        self.wait = wait or stop.wait
        self.poll_seconds = poll_seconds  # how often the schedule job looks at the clock
        self.max_wait = max_wait  # the longest single wait, so a stop or clock jump is seen soon
        self.cycles = 0
        self.next_slot: datetime | None = None
        self.max_cycles: int | None = None
        self.monotonic = monotonic  # None: no clock step detection (a test's fake wait)
        self.step_seconds = step_seconds
        self._mark: tuple[datetime, float] | None = None  # (wall, monotonic) at the last look

    def run(self, max_cycles: int | None = None) -> int:
        self.max_cycles = max_cycles
        if self.stop.is_set():
            return 0
        self._start()
        self._watch_clock()  # the first look
        ticker = schedule.Scheduler()
        ticker.every(self.poll_seconds).seconds.do(self._tick)  # type: ignore[arg-type]  # float seconds work; schedule annotates int
        while not self._done():
            now = self.bot.deps.clock.now()
            until_slot = (self.next_slot - now).total_seconds() if self.next_slot else self.max_wait
            # sleep until both the slot and the ticker are due (never spin on a due slot)
            idle = ticker.idle_seconds or 0.0
            self.wait(max(0.0, min(self.max_wait, max(until_slot, idle))))
            if self.stop.is_set():
                break
            self._watch_clock()
            ticker.run_pending()
        return self.cycles

    def _watch_clock(self) -> None:
        """Compare the wall clock with the monotonic one since the last look: a difference beyond
        `step_seconds` is a step of the system clock. Record it and schedule from the real time
        again (a slot scheduled before a backward step would freeze trading until then)."""
        if self.monotonic is None:
            return
        wall, mono = self.bot.deps.clock.now(), self.monotonic()
        mark, self._mark = self._mark, (wall, mono)
        if mark is None:
            return
        offset = (wall - mark[0]).total_seconds() - (mono - mark[1])
        if abs(offset) <= self.step_seconds:
            return
        expected = wall - timedelta(seconds=offset)
        self.bot.deps.trail.record(ClockStepped(
            message=f"the system clock stepped {'forward' if offset > 0 else 'back'} by "
                    f"{abs(offset):.0f} s (from about {format_timestamp(expected)} to "
                    f"{format_timestamp(wall)}): scheduling from the real time again",
            offset_seconds=round(offset, 3), expected=expected, clock=wall))
        if self.next_slot is not None and self.next_slot > wall:  # stepped back
            latest = self.planner.latest_due(wall)
            if latest is not None and not self.bot.deps.journal.completed(latest):
                self.next_slot = latest  # due now by the real time, never run: run it
            else:
                self._schedule_after(latest or wall)

    def _done(self) -> bool:
        return self.stop.is_set() or (self.max_cycles is not None and self.cycles >= self.max_cycles)

    def _start(self) -> None:
        """The first cycle: the latest due slot, with the missed-slot policy after downtime."""
        bot = self.bot
        now = bot.deps.clock.now()
        latest = self.planner.latest_due(now)
        last = bot.deps.journal.last_slot
        if latest is None or bot.deps.journal.completed(latest):
            self._schedule_after(latest or now)
            return
        if last is None:
            bot.deps.trail.log("INFO", f"first start on this data directory: running slot {format_slot(latest)} now")
            self._run(latest, send_orders=True)
            return
        if bot.deps.journal.started_slot == latest:  # a cycle cut short (a crash): finish it now
            bot.deps.trail.record(SlotResumed(
                message=f"the cycle for {format_slot(latest)} was interrupted: resuming it",
                cycle_timestamp=latest))
            self._run(latest, send_orders=True)
            return
        if last > latest:  # the clock is behind the trail: run real time's slot, as due
            bot.deps.trail.log("WARN", f"the last completed slot {format_slot(last)} is ahead of the "
                          f"clock ({format_slot(now)}): running slot {format_slot(latest)}, which "
                          "has not run; completed slots never run again")
            self._run(latest, send_orders=True)
            return
        missed = self.planner.count_between(last, latest, cap=10_000)
        policy = self.missed_slot
        bot.deps.trail.record(SlotMissed(
            message=f"{missed} slot(s) missed while stopped (last completed {format_slot(last)}, "
                    f"latest due {format_slot(latest)}); BOT_MISSED_SLOT={policy}: "
                    + {"run": "running the latest one now", "skip": "skipping it",
                       "record": "recording its plan without sending orders"}[policy],
            missed=missed, last_completed=last, latest_due=latest, policy=policy))
        if policy == "skip":
            self._schedule_after(latest)
            return
        self._run(latest, send_orders=(policy == "run"))

    def _tick(self) -> None:
        if self._done() or self.next_slot is None:
            return
        now = self.bot.deps.clock.now()
        if now < self.next_slot:
            return
        slot = self.planner.latest_due(now) or self.next_slot
        if slot > self.next_slot:  # a long cycle overran a slot: say so, run the latest
            skipped = self.planner.count_between(self.next_slot, slot, cap=10_000)
            self.bot.deps.trail.record(SlotMissed(
                message=f"{skipped} slot(s) passed during the previous cycle; running "
                        f"{format_slot(slot)}", missed=skipped, latest_due=slot, policy="run"))
        self._run(slot, send_orders=True)

    def _run(self, slot: datetime, *, send_orders: bool) -> None:
        if self.bot.deps.journal.completed(slot):  # never twice, whatever the clock says
            self._schedule_after(slot)
            return
        guarded_cycle(self.bot, slot, send_orders=send_orders)
        self.cycles += 1
        self._schedule_after(slot)

    def _schedule_after(self, t: datetime) -> None:
        raw = self.planner.raw_next_after(t)
        nxt = self.planner.next_after(t)
        for _ in range(_SKIP_COMPLETED_LIMIT):  # slots completed before a clock stepped back
            if not self.bot.deps.journal.completed(nxt):
                break
            nxt = self.planner.next_after(nxt)
        if nxt != raw:
            self.bot.deps.trail.record(CycleSkipped(
                message=f"market closed (NYSE regular hours): slots from {format_slot(raw)} are "
                        f"skipped; next cycle at {format_slot(nxt)}",
                reason="market_closed", from_slot=raw, next_slot=nxt, policy="skip"))
        self.next_slot = nxt
        if self.cycles == 0:  # nothing run yet in this process: health says "starting"
            self._tell_waiting(nxt)
        if not self._done():
            self.bot.deps.trail.log("INFO", f"next cycle at {format_slot(nxt)}")

    def _tell_waiting(self, slot: datetime) -> None:
        for observer in self.bot.observers:
            try:
                observer.waiting(slot)
            except Exception as exc:  # an observer's bug must not stop trading
                self.bot.deps.trail.log("ERROR", f"{type(observer).__name__} failed: {exc!r}")
