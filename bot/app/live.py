"""The process around the cycle for `run` and `cycle`: start-up (directories, locks, the bot,
`bot_started`, the broker check), the stop (observers, `bot_stopped`, the trail signed and
closed, everything released), SIGINT/SIGTERM, and the audit-failure policy.

The functions take the settings and plain values and return an exit code or raise a
TradebotError (a ConfigError, LockHeld, Halt...) that the command line turns into one line.
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import time
import uuid
from types import FrameType
from typing import TextIO

from audit.records import BotStarted, BotStopped
from audit.timestamps import format_timestamp
from audit.writer import AuditWriteFailed
from bot import tradebot_version
from bot.app.console import open_console
from bot.app.directories import check_directories, prepare_data_dir
from bot.app.locking import DataDirLock, Locks, LogDirLock
from bot.app.runner import Runner, StopFlag, check_broker_at_start, guarded_cycle, manual_slot, record_inbox
from bot.core.clock import SystemClock
from bot.core.cycle import Bot
from bot.core.errors import EXIT_HALTED, AuditWriteError, ConfigError, Halt, LockHeld
from bot.core.layout import lock_path, log_lock_path
from bot.core.scheduling import SlotPlanner, parse_schedule
from bot.settings import Settings
from bot.wiring import build_bot, post_note


def start(settings: Settings, echo: TextIO | None, stop: StopFlag | None = None,
          command: str | None = None) -> tuple[Bot, Locks]:
    """Lock the data directory and build the live bot; records a refused lock in events.jsonl.
    With `stop` (`run`), a broker down at start-up is waited for until it answers or a stop is
    asked; a stop asked meanwhile also ends the read retries of the start-up check. `command`
    is what `bot_started` says was run (default: this process's arguments, else "run")."""
    os.umask(0o077)  # the account, state and lock are private like the logs
    check_metrics_address(settings)
    check_directories(settings.log_dir, settings.data_dir)
    prepare_data_dir(settings.data_dir)
    data_lock = DataDirLock(lock_path(settings.data_dir))
    try:
        data_lock.acquire()
    except LockHeld as exc:
        record_refused_lock(settings, str(exc))
        raise
    log_lock = LogDirLock(log_lock_path(settings.log_dir))
    try:
        log_lock.acquire()
    except BaseException as exc:
        data_lock.release()
        if isinstance(exc, LockHeld):
            record_refused_lock(settings, str(exc))
        raise
    lock = Locks(data_lock, log_lock)
    clock = SystemClock()
    starting = [True]  # cleared once the start-up check is done
    bot = build_bot(settings, clock, live=True, echo=echo, give_up_reads=None if stop is None
                    else lambda: starting[0] and stop.is_set())
    if settings.log_level == "debug":
        debug_logging(bot)
    bot.deps.trail.record(BotStarted(
        message=f"tradebot {tradebot_version()} started (pid {os.getpid()})", pid=os.getpid(),
        command=process_command() if command is None else command, broker=settings.broker,
        schedule=settings.schedule, market_hours=settings.effective_market_hours,
        models=settings.models, settings_sha256=settings.fingerprint(),
        version=tradebot_version(), run_id=uuid.uuid4().hex))
    shown = settings.redacted(absolute_paths=True)
    bot.deps.trail.log("INFO", "settings: " + ", ".join(
        f"BOT_{k.upper()}={v}" for k, v in shown.items()), echo=False)
    bot.deps.trail.log("INFO", start_summary(shown))
    try:  # check the broker before the first cycle: bad keys stop here, with one clear line
        check_broker_at_start(bot, f"broker {settings.broker}", settings.reconcile,
                              stop.wait if stop is not None else None)
        starting[0] = False
        for observer in bot.observers:
            observer.started()
    except Exception as exc:
        stop_bot(bot, lock, f"start-up check failed: {exc}", halted=True)
        raise
    return bot, lock


def process_command() -> str:
    """The words after `tradebot` that started this process (`bot_started`'s `command`)."""
    return " ".join(sys.argv[1:]) or "run"


def check_metrics_address(settings: Settings) -> None:
    """A metrics port that is taken stops start-up before anything is created; when the port is
    taken by the tradebot already running on this data directory, that is what is said (exit 3)."""
    if settings.metrics_port is None:
        return
    from bot.watch.prometheus import Metrics  # prometheus_client: only when BOT_METRICS_PORT is set
    try:
        Metrics.check_address(settings.metrics_host, settings.metrics_port)
    except ConfigError:
        lock = DataDirLock(lock_path(settings.data_dir))
        if lock.path.exists():
            try:
                lock.acquire()
            except LockHeld as exc:
                record_refused_lock(settings, str(exc))
                raise
            lock.release()
        raise


def start_summary(shown: dict) -> str:
    """The console's start line: what a newcomer needs to see, paths absolute (a bot started from
    another directory opens another account); every setting is in production.log."""
    return (f"started: broker {shown['broker']}, models {shown['models']}, schedule "
            f"{shown['schedule']} ({shown['market_hours']} market hours), logs {shown['log_dir']}, "
            f"data {shown['data_dir']}")


def debug_logging(bot: Bot) -> None:
    """BOT_LOG_LEVEL=debug: the libraries' own log lines (urllib3, alpaca-py...) go to
    production.log too. Keys travel in HTTP headers, which these libraries do not log."""

    class ToTrail(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            try:
                bot.deps.trail.log(record.levelname, f"{record.name}: {record.getMessage()}")
            except Exception:  # noqa: BLE001 - logging must never break a cycle
                self.handleError(record)

    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    root.addHandler(ToTrail())


def record_refused_lock(settings: Settings, message: str) -> None:
    """Leave a note for the running bot, which records it in events.jsonl (one writer per file)."""
    try:
        post_note(settings.data_dir, "lock_refused", message,
             {"pid": os.getpid(), "refused_at": format_timestamp(SystemClock().now())})
    except OSError:
        pass


def notify_halted(bot: Bot, reason: str) -> None:
    """Tell the observers (an alert goes out) that trading stopped on its own."""
    for observer in bot.observers:
        try:
            observer.halted(reason)
        except Exception as exc:  # an observer never keeps the bot from stopping cleanly
            print(f"tradebot: {type(observer).__name__} failed: {exc!r}", file=sys.stderr)


def stop_bot(bot: Bot, lock: Locks, reason: str, *, halted: bool = False,
             ends_run: bool = False) -> None:
    """Record the stop, sign and close the trail, release everything; a trail that can no
    longer be written does not keep the rest from being released. `ends_run`: the end of
    `run` (health then says "stopped"); a one-shot `cycle` leaves health to the schedule."""
    if halted:
        notify_halted(bot, reason)
    for observer in bot.observers if ends_run else ():
        try:
            observer.stopped(reason)
        except Exception as exc:
            print(f"tradebot: {type(observer).__name__} failed at stop: {exc!r}", file=sys.stderr)
    for observer in bot.observers:
        try:
            observer.close()
        except Exception as exc:
            print(f"tradebot: {type(observer).__name__} failed at stop: {exc!r}", file=sys.stderr)
    try:
        record_inbox(bot)
        bot.deps.trail.record(BotStopped(message=f"tradebot stopped: {reason}", pid=os.getpid(),
                                    reason=reason))
        bot.deps.trail.close()
    except OSError as exc:
        print(f"tradebot: could not record the stop in the trail: {exc}", file=sys.stderr)
    finally:
        bot.deps.journal.close()
        bot.deps.broker.close()
        lock.release()


def stop_on_signals(stop: StopFlag) -> list[str]:
    """SIGINT and SIGTERM ask `stop` (the cycle in flight finishes); the list gets the names of
    the signals received, in order."""
    received: list[str] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    return received


def run(settings: Settings, max_cycles: int | None = None, command: str | None = None) -> int:
    """`tradebot run`: cycles on the schedule until a signal or `max_cycles`; the exit code."""
    stop = StopFlag()
    received = stop_on_signals(stop)
    console = open_console()
    try:
        return _run(settings, stop, received, console, max_cycles, command)
    finally:
        console.close()


def _run(settings: Settings, stop: StopFlag, received: list[str], console: TextIO,
         max_cycles: int | None, command: str | None) -> int:
    bot, lock = start(settings, console, stop=stop, command=command)
    planner = SlotPlanner(parse_schedule(settings.schedule), settings.effective_market_hours == "nyse",
                          bot.deps.calendar)
    bot.deps.trail.log("INFO", f"schedule: {settings.schedule} ({settings.effective_market_hours} market "
                  f"hours); missed slots: {settings.missed_slot}")
    reason = "max cycles reached"
    try:
        Runner(bot, planner, settings.missed_slot, stop, monotonic=time.monotonic).run(max_cycles)
        if received:
            reason = f"{received[0]} received"
    except (AuditWriteError, AuditWriteFailed) as exc:
        return _audit_failed(bot, lock, settings, stop, exc)
    except Halt as exc:
        reason = f"halted: {exc}"
        stop_bot(bot, lock, reason, halted=True, ends_run=True)
        raise
    except BaseException as exc:
        stop_bot(bot, lock, f"stopped by {type(exc).__name__}", ends_run=True)
        raise
    stop_bot(bot, lock, reason, ends_run=True)
    return 0


def _audit_failed(bot: Bot, lock: Locks, settings: Settings, stop: StopFlag,
                  exc: AuditWriteError | AuditWriteFailed) -> int:
    """The audit-failure policy: trading stops; with BOT_ON_AUDIT_FAILURE=wait the process stays
    up (trading nothing) until a signal, so an orchestrator does not restart it in a loop."""
    why = str(exc) if isinstance(exc, AuditWriteError) else \
        f"the audit trail cannot be written ({exc}); trading stopped"
    reason = f"halted: {why}"
    print(f"tradebot: {reason}", file=sys.stderr, flush=True)
    _try_log(bot, reason)
    notify_halted(bot, reason)
    if settings.on_audit_failure == "wait":  # stay up for the operator; trade nothing
        print("tradebot: BOT_ON_AUDIT_FAILURE=wait: trading stopped; waiting for SIGTERM",
              file=sys.stderr, flush=True)
        stop.wait(float("inf"))
    stop_bot(bot, lock, reason, ends_run=True)
    return EXIT_HALTED


def _try_log(bot: Bot, message: str) -> None:
    """Write to whatever log still works."""
    try:
        bot.deps.trail.log("ERROR", message)
        bot.deps.trail.checkpoint()
    except OSError:
        pass


def run_one_cycle(settings: Settings, command: str | None = None) -> int:
    """`tradebot cycle`: one cycle for the latest due slot (none when it is done already)."""
    console = open_console()
    try:
        bot, lock = start(settings, console, command=command)
        planner = SlotPlanner(parse_schedule(settings.schedule),
                              settings.effective_market_hours == "nyse", bot.deps.calendar)
        try:
            slot = manual_slot(bot, planner)
            if slot is not None:
                guarded_cycle(bot, slot)
        finally:
            stop_bot(bot, lock, "one cycle done")
    finally:
        console.close()
    return 0
