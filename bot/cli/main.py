"""The `tradebot` command: run, cycle, simulate, config, audit, logs, replay, report.

Start-up problems (bad settings, a held lock, a non-empty --out) print one line on stderr and
exit 2 (3 for a held lock) before anything is traded. Heavy modules are imported per command.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import uuid
import warnings
from datetime import date
from pathlib import Path
from typing import Sequence, TextIO

from bot.core.errors import AuditWriteError, ConfigError, Halt, LockHeld, TradebotError
from bot.review.performance import CAGR_HELP

EXIT_CONFIG, EXIT_LOCKED, EXIT_HALTED = 2, 3, 1
_START_EXITS = ("exit codes: 0 done; 1 halted or stopped (the trail could not be written, the "
                "broker failed; a broker down at start-up stops `cycle`, while `run` waits for it "
                "and tries again); 2 a bad setting or argument; 3 another run/cycle holds the "
                "data directory's lock")
_MAX_PER_FILE = 20  # audit.check.MAX_PER_FILE, without importing it for every command


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: use YYYY-MM-DD") from None


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return n


def _seed(text: str) -> int:
    from bot.settings import INT64_MAX, INT64_MIN
    try:
        n = int(text)
    except ValueError:
        n = None
    if n is None or not INT64_MIN <= n <= INT64_MAX:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number that fits in 64 bits "
                                          f"({INT64_MIN} to {INT64_MAX})")
    return n


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tradebot", description="A paper-trading bot with a complete audit trail. "
        "Every setting comes from BOT_* environment variables or .env (see `tradebot config`).")
    from bot import tradebot_version
    p.add_argument("--version", action="version", version=f"tradebot {tradebot_version()}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    r = sub.add_parser("run", help="run cycles on the schedule until Ctrl-C or SIGTERM",
                       description="Run the scheduler loop (BOT_SCHEDULE). The first cycle runs at "
                       "once when a slot is due; Ctrl-C or SIGTERM finishes the cycle in flight and exits 0.",
                       epilog=_START_EXITS)
    r.add_argument("--max-cycles", type=_positive, help="stop after N cycles")
    c = sub.add_parser("cycle", help="run one cycle now and exit",
                       description="Run one cycle for the latest due slot and exit.",
                       epilog=_START_EXITS)
    c.add_argument("--dry-run", action="store_true",
                   help="print the plan (targets, orders, risk checks) and send nothing")
    s = sub.add_parser("simulate", help="fast-forward through history on a fresh paper account",
                       description="One cycle per NYSE trading day 15 minutes before its close "
                       "(15:45 New York time, 12:45 on early-close days), with the same cycle "
                       "code, fill model and audit files as `run`. " + CAGR_HELP,
                       epilog="exit codes: 0 simulated; 1 stopped (the trail could not be "
                       "written); 2 a bad setting or argument (the dates, a --csv-dir without "
                       "usable data, an --out that already holds records), before anything is "
                       "written")
    s.add_argument("--start", type=_date, required=True, help="first day, YYYY-MM-DD")
    s.add_argument("--end", type=_date, required=True, help="last day, YYYY-MM-DD")
    s.add_argument("--seed", type=_seed, help="synthetic market seed (default BOT_SEED)")
    s.add_argument("--csv-dir", type=Path, metavar="DIR", help="daily bars from SYMBOL.csv files (default BOT_CSV_DIR)")
    s.add_argument("--out", type=Path, metavar="DIR", help="log directory, must hold no records (default BOT_LOG_DIR)")
    sub.add_parser("config", help="print the effective settings (secrets hidden)",
                   description="Print every effective setting; secrets show as **********.",
                   epilog="exit codes: 0 printed; 2 a bad setting")
    a = sub.add_parser("audit", help="check the audit trail",
                       description="Tools that check the audit trail.",
                       epilog="exit codes: those of each audit command (see its --help)")
    asub = a.add_subparsers(dest="audit_command", required=True, metavar="AUDIT_COMMAND")
    v = asub.add_parser("verify", help="verify every file of the trail against its signed chain",
                        description="Check each segment of every stream (active, .N and .N.gz) "
                        "against its signed chain.",
                        epilog="exit codes: 0 valid (unsealed lines are a warning); 1 something "
                        "was altered or is missing; 2 the key is missing or wrong, the anchor is "
                        "missing (see --no-anchor), or bad arguments")
    v.add_argument("--logs-dir", type=Path, metavar="DIR", help="log directory (default BOT_LOG_DIR)")
    v.add_argument("--data-dir", type=Path, metavar="DIR",
                   help="data directory holding the trail's anchor (default BOT_DATA_DIR)")
    v.add_argument("--no-anchor", action="store_true",
                   help="check the chains alone (a trail copied to another host) and print what "
                   "that cannot rule out")
    v.add_argument("--anchors", type=Path, metavar="FILE",
                   help="also check the trail against anchor lines collected elsewhere (docker "
                   "logs, BOT_ANCHOR_FILE)")
    v.add_argument("--archive-dir", type=Path, metavar="DIR",
                   help="where archived segments are (default BOT_LOG_ARCHIVE_DIR, if set)")
    _add_audit_check(asub)
    sub.add_parser("health", help="exit 0 when the last cycle is recent and ok and the logs are writable",
                   description="Read the heartbeat the cycle writes in the data directory (the broker "
                   "is never called) and check that the last cycle finished within the schedule's "
                   "interval (plus BOT_HEALTH_GRACE), completed, reached the broker, did not halt, and "
                   "that the log and data directories can be written. Until the first cycle of a new "
                   "start it says `starting, first slot at ...`; after a clean stop (Ctrl-C, SIGTERM, "
                   "--max-cycles) `stopped: ...`. The Docker HEALTHCHECK runs it.",
                   epilog="exit codes: 0 healthy or starting; 1 unhealthy or stopped, with the "
                   "reasons on one line")
    b = sub.add_parser("backup", help="write one tar.gz of the logs and data directory (never the key)",
                       description="Archive the whole log directory (rotated segments, chains, "
                       "production.log) and the data directory (SQLite copied consistently, safe while "
                       "the bot runs) into one private tar.gz. The audit key is never included: back "
                       "it up separately.",
                       epilog="exit codes: 0 written; 1 stopped (a file could not be read); 2 a bad "
                       "setting, a missing log directory, or an --out that exists or whose "
                       "directory does not")
    b.add_argument("--out", type=Path, metavar="FILE", help="archive to write, or a directory for it "
                   "(default tradebot-backup-YYYYmmddTHHMMSSZ.tar.gz here); never overwritten")
    rs = sub.add_parser("restore", help="put a `tradebot backup` archive back, then verify it",
                        description="Extract a `tradebot backup` archive: logs/ into BOT_LOG_DIR and "
                        "data/ into BOT_DATA_DIR, both empty or absent (the data directory may hold "
                        "the audit key, which a backup never holds), then run `tradebot audit verify` "
                        "on the restored trail and print its report.",
                        epilog="exit codes: 0 restored and the trail verifies; 1 restored, but verify "
                        "found something altered or missing; 2 not a backup, a directory not empty, "
                        "no audit key, or bad arguments; 3 a tradebot holds the data directory's lock")
    rs.add_argument("archive", type=Path, metavar="FILE", help="the tar.gz `tradebot backup` wrote")
    _add_trail_tools(sub)
    return p


def _add_audit_check(asub) -> None:
    k = asub.add_parser(
        "check", help="check every line of the trail against the documented format",
        description="Check every line of every stream (active, .N and .N.gz, oldest first) "
        "against the format of docs/audit-trail.md: one JSON object per line ending in a "
        "newline; an event_type known for its file; the documented fields present, in order, "
        "with their JSON types, extra fields only after them; timestamps in UTC with six-digit "
        "microseconds, cycle_timestamp in whole seconds, not going backwards within a file; "
        "sides, positive quantities, value = quantity x price, positions_count; production.log "
        "present and UTF-8. Prints one line per problem (file:line: what is wrong; at most "
        f"{_MAX_PER_FILE} per file) and then 'N passed, M failed', where N and M count lines of "
        "the six streams (production.log and a missing stream count as one each). Empty streams "
        "are fine.",
        epilog="exit codes: 0 the trail conforms; 1 it does not (or there is no trail in DIR); "
        "2 bad arguments (DIR is not a directory)")
    k.add_argument("--logs-dir", dest="logs_dir", type=Path, metavar="DIR",
                   help="log directory (default BOT_LOG_DIR)")


def _add_trail_tools(sub) -> None:
    """`logs`, `replay` and `report`: they read the trail only (BOT_LOG_DIR or --logs-dir)."""
    from bot.cli.logs import add_logs_parser
    from bot.cli.replay import add_replay_parser
    from bot.cli.report import add_report_parser
    add_logs_parser(sub)
    add_replay_parser(sub)
    add_report_parser(sub)


def _chosen(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The (sub)subcommand's parser the arguments chose, e.g. `tradebot logs nav`'s."""
    for action in parser._actions:  # noqa: SLF001 - argparse has no public way to walk these
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001 - as above
            chosen = action.choices.get(getattr(args, action.dest, None) or "")
            return parser if chosen is None else _chosen(chosen, args)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Like parse_args, but an unknown argument is reported with its subcommand's usage line
    (`usage: tradebot replay ...`), not the top-level one."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        _chosen(parser, args).error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warning
        return _dispatch(args)


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                      file: TextIO | None = None, line: str | None = None) -> None:
    """A warning (e.g. a record of a kind this version lacks) as one line, without the code."""
    print(f"warning: {message}", file=sys.stderr if file is None else file)


def _dispatch(args: argparse.Namespace) -> int:
    try:
        return _COMMANDS[args.command](args)
    except LockHeld as exc:
        print(f"tradebot: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    except ConfigError as exc:
        print(f"tradebot: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except Halt as exc:
        print(f"tradebot: halted: {exc}", file=sys.stderr)
        return EXIT_HALTED
    except TradebotError as exc:  # e.g. the broker cannot be reached at start-up
        print(f"tradebot: stopped: {exc}", file=sys.stderr)
        return EXIT_HALTED
    except BrokenPipeError:  # `tradebot logs ... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # a log or data directory that cannot be used: one line, no trace
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"tradebot: stopped: {exc.strerror or exc}{where}: check that the log and data "
              "directories exist, are writable and have free space", file=sys.stderr)
        return EXIT_HALTED


def _settings(**overrides):
    from bot.settings import load_settings
    return load_settings(**overrides)


def cmd_config(args: argparse.Namespace) -> int:
    s = _settings()
    for name, value in s.redacted(absolute_paths=True).items():
        print(f"BOT_{name.upper()}={'' if value is None else value}")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from bot.app.audit_key import key_path_hint
    from bot.app.simulate import check_inputs, format_summary, simulate
    s = _settings(seed=args.seed, csv_dir=args.csv_dir)
    out = args.out or s.log_dir
    check_inputs(s, args.start, args.end, args.csv_dir)  # before any directory is created
    _check_directories(out, s.data_dir)  # the data directory may get the generated audit key
    key = key_path_hint(s.data_dir)
    generates_key = s.audit_key is None and s.audit_key_file is None and not key.exists()
    result = simulate(s, args.start, args.end, out, csv_dir=args.csv_dir)
    print(format_summary(result))
    if generates_key and key.exists():
        print(f"audit key generated: {key.resolve()} (keep it, and back it up apart from the "
              "logs: `tradebot audit verify` needs it)")
    return 0


def _check_directories(log_dir: Path, data_dir: Path) -> None:
    """A directory this user cannot write, a link or a world-writable one, or a symbolic link
    where the bot keeps a file, stops start-up with one line naming it (and the UID)."""
    from audit.writer import PlantedLink, UnsafeDirectory, check_directory, refuse_links
    from bot.app.health import check_writable
    from bot.wiring import data_files
    try:
        check_directory(log_dir, f"the log directory {log_dir}")
        check_directory(data_dir, f"the data directory {data_dir}")
        refuse_links(log_dir)  # the trail's own directory: no link in it is the bot's
        refuse_links(data_dir, data_files())
    except (UnsafeDirectory, PlantedLink) as exc:
        raise ConfigError(str(exc)) from None
    check_writable(log_dir, "log directory")
    check_writable(data_dir, "data directory")


def _prepare_data_dir(path: Path) -> None:
    from audit.writer import UnsafeDirectory, prepare_directory
    try:
        prepare_directory(path, f"the data directory {path}")
    except UnsafeDirectory as exc:
        raise ConfigError(str(exc)) from None


def _live(settings, echo, stop=None):
    """Lock the data directory and build the live bot; records a refused lock in events.jsonl.
    With `stop` (`run`), a broker down at start-up is waited for until it answers or a stop is
    asked; a stop asked meanwhile also ends the read retries of the start-up check."""
    from audit.records import BotStarted
    from bot import tradebot_version
    from bot.app.locking import LOG_LOCK_FILE, DataDirLock, Locks, LogDirLock
    from bot.core.clock import SystemClock
    from bot.wiring import LOCK_FILE, build_bot

    os.umask(0o077)  # the account, state and lock are private like the logs
    _check_metrics_address(settings)
    _check_directories(settings.log_dir, settings.data_dir)
    _prepare_data_dir(settings.data_dir)
    data_lock = DataDirLock(settings.data_dir / LOCK_FILE)
    try:
        data_lock.acquire()
    except LockHeld as exc:
        _record_refused_lock(settings, str(exc))
        raise
    log_lock = LogDirLock(settings.log_dir / LOG_LOCK_FILE)
    try:
        log_lock.acquire()
    except BaseException as exc:
        data_lock.release()
        if isinstance(exc, LockHeld):
            _record_refused_lock(settings, str(exc))
        raise
    lock = Locks(data_lock, log_lock)
    clock = SystemClock()
    starting = [True]  # cleared once the start-up check is done
    bot = build_bot(settings, clock, live=True, echo=echo, give_up_reads=None if stop is None
                    else lambda: starting[0] and stop.is_set())
    if settings.log_level == "debug":
        _debug_logging(bot)
    bot.deps.trail.record(BotStarted(
        message=f"tradebot {tradebot_version()} started (pid {os.getpid()})", pid=os.getpid(),
        command=" ".join(sys.argv[1:]) or "run", broker=settings.broker,
        schedule=settings.schedule, market_hours=settings.effective_market_hours,
        models=settings.models, settings_sha256=settings.fingerprint(),
        version=tradebot_version(), run_id=uuid.uuid4().hex))
    shown = settings.redacted(absolute_paths=True)
    bot.deps.trail.log("INFO", "settings: " + ", ".join(
        f"BOT_{k.upper()}={v}" for k, v in shown.items()), echo=False)
    bot.deps.trail.log("INFO", start_summary(shown))
    try:  # check the broker before the first cycle: bad keys stop here, with one clear line
        from bot.app.runner import check_broker_at_start
        check_broker_at_start(bot, f"broker {settings.broker}", settings.reconcile,
                              stop.wait if stop is not None else None)
        starting[0] = False
        for observer in bot.observers:
            observer.started()
    except Exception as exc:
        _stop(bot, lock, f"start-up check failed: {exc}", halted=True)
        raise
    return bot, lock


def _check_metrics_address(settings) -> None:
    """A metrics port that is taken stops start-up before anything is created; when the port is
    taken by the tradebot already running on this data directory, that is what is said (exit 3)."""
    if settings.metrics_port is None:
        return
    from bot.app.locking import DataDirLock
    from bot.watch.prometheus import Metrics
    from bot.wiring import LOCK_FILE
    try:
        Metrics.check_address(settings.metrics_host, settings.metrics_port)
    except ConfigError:
        lock = DataDirLock(settings.data_dir / LOCK_FILE)
        if lock.path.exists():
            try:
                lock.acquire()
            except LockHeld as exc:
                _record_refused_lock(settings, str(exc))
                raise
            lock.release()
        raise


def start_summary(shown: dict) -> str:
    """The console's start line: what a newcomer needs to see, paths absolute (a bot started from
    another directory opens another account); every setting is in production.log."""
    return (f"started: broker {shown['broker']}, models {shown['models']}, schedule "
            f"{shown['schedule']} ({shown['market_hours']} market hours), logs {shown['log_dir']}, "
            f"data {shown['data_dir']}")


def _debug_logging(bot) -> None:
    """BOT_LOG_LEVEL=debug: the libraries' own log lines (urllib3, alpaca-py...) go to
    production.log too. Keys travel in HTTP headers, which these libraries do not log."""
    import logging

    class ToTrail(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            try:
                bot.deps.trail.log(record.levelname, f"{record.name}: {record.getMessage()}")
            except Exception:  # noqa: BLE001 - logging must never break a cycle
                self.handleError(record)

    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    root.addHandler(ToTrail())


def _record_refused_lock(settings, message: str) -> None:
    """Leave a note for the running bot, which records it in events.jsonl (one writer per file)."""
    from audit.timestamps import format_timestamp
    from bot.adapters.inbox import post
    from bot.core.clock import SystemClock
    from bot.wiring import INBOX_DIR
    try:
        post(settings.data_dir / INBOX_DIR, "lock_refused", message,
             {"pid": os.getpid(), "refused_at": format_timestamp(SystemClock().now())})
    except OSError:
        pass


def _halted(bot, reason: str) -> None:
    """Tell the observers (an alert goes out) that trading stopped on its own."""
    for observer in bot.observers:
        try:
            observer.halted(reason)
        except Exception as exc:  # an observer never keeps the bot from stopping cleanly
            print(f"tradebot: {type(observer).__name__} failed: {exc!r}", file=sys.stderr)


def _stop(bot, lock, reason: str, *, halted: bool = False, ends_run: bool = False) -> None:
    """Record the stop, sign and close the trail, release everything; a trail that can no
    longer be written does not keep the rest from being released. `ends_run`: the end of
    `run` (health then says "stopped"); a one-shot `cycle` leaves health to the schedule."""
    from audit.records import BotStopped
    from bot.app.runner import record_inbox
    if halted:
        _halted(bot, reason)
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


def cmd_run(args: argparse.Namespace) -> int:
    from bot.app.runner import StopFlag

    s = _settings()
    stop = StopFlag()
    received: list[str] = []

    def on_signal(signum, _frame):
        received.append(signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    console = _console()
    try:
        return _run(args, s, stop, received, console)
    finally:
        console.close()


def _run(args, s, stop, received: list[str], console) -> int:
    from audit.writer import AuditWriteFailed
    from bot.app.runner import Runner
    from bot.core.scheduling import SlotPlanner, parse_schedule

    bot, lock = _live(s, console, stop=stop)
    planner = SlotPlanner(parse_schedule(s.schedule), s.effective_market_hours == "nyse", bot.deps.calendar)
    bot.deps.trail.log("INFO", f"schedule: {s.schedule} ({s.effective_market_hours} market hours); "
                  f"missed slots: {s.missed_slot}")
    reason = "max cycles reached"
    try:
        Runner(bot, planner, s.missed_slot, stop, monotonic=time.monotonic).run(args.max_cycles)
        if received:
            reason = f"{received[0]} received"
    except (AuditWriteError, AuditWriteFailed) as exc:
        why = str(exc) if isinstance(exc, AuditWriteError) else \
            f"the audit trail cannot be written ({exc}); trading stopped"
        reason = f"halted: {why}"
        print(f"tradebot: {reason}", file=sys.stderr, flush=True)
        _try_log(bot, reason)
        _halted(bot, reason)
        if s.on_audit_failure == "wait":  # stay up for the operator; trade nothing
            print("tradebot: BOT_ON_AUDIT_FAILURE=wait: trading stopped; waiting for SIGTERM",
                  file=sys.stderr, flush=True)
            stop.wait(float("inf"))
        _stop(bot, lock, reason, ends_run=True)
        return EXIT_HALTED
    except Halt as exc:
        reason = f"halted: {exc}"
        _stop(bot, lock, reason, halted=True, ends_run=True)
        raise
    except BaseException as exc:
        _stop(bot, lock, f"stopped by {type(exc).__name__}", ends_run=True)
        raise
    _stop(bot, lock, reason, ends_run=True)
    return 0


def _try_log(bot, message: str) -> None:
    """Write to whatever log still works."""
    try:
        bot.deps.trail.log("ERROR", message)
        bot.deps.trail.checkpoint()
    except OSError:
        pass


def cmd_cycle(args: argparse.Namespace) -> int:
    from bot.app.runner import guarded_cycle, manual_slot
    from bot.core.scheduling import SlotPlanner, parse_schedule

    s = _settings()
    if args.dry_run:
        return _dry_run(s)
    console = _console()
    try:
        bot, lock = _live(s, console)
        planner = SlotPlanner(parse_schedule(s.schedule), s.effective_market_hours == "nyse",
                              bot.deps.calendar)
        try:
            slot = manual_slot(bot, planner)
            if slot is not None:
                guarded_cycle(bot, slot)
        finally:
            _stop(bot, lock, "one cycle done")
    finally:
        console.close()
    return 0


def _console():
    """The console of `run` and `cycle`: stdout through a queue that never blocks or raises (a
    stdout nobody reads or a closed one must not stop trading); stdout itself when it has no
    file descriptor (a test's capture)."""
    from bot.app.console import Console

    class _Plain:  # stdout without a descriptor: written as it is, closed by nobody
        def __init__(self, out) -> None:
            self.write, self.flush = out.write, out.flush

        def close(self) -> None:
            pass

    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):
        return _Plain(sys.stdout)
    sys.stdout.flush()
    return Console(fd)


def _dry_run(s) -> int:
    """Plan the latest due slot on a scratch copy of the account and state; send and record nothing."""
    import tempfile
    from dataclasses import replace

    from audit.timestamps import format_slot
    from bot.core.clock import SystemClock
    from bot.core.cycle import KillSwitch, plan_cycle
    from bot.core.scheduling import SlotPlanner, parse_schedule
    from bot.wiring import ACCOUNT_DB, KILL_SWITCH_FILE, STATE_DB, build_bot

    clock = SystemClock()
    planner = SlotPlanner(parse_schedule(s.schedule), s.effective_market_hours == "nyse")
    slot = planner.latest_due(clock.now()) or clock.now().replace(microsecond=0)
    with tempfile.TemporaryDirectory() as scratch:
        data = Path(scratch) / "data"
        data.mkdir()
        for name in (ACCOUNT_DB, STATE_DB):
            if (s.data_dir / name).exists():
                _copy_db(s.data_dir / name, data / name)
        bot = build_bot(s.model_copy(update={"data_dir": data, "metrics_port": None,
                                             "alert_webhook_url": None}), clock, live=True,
                        log_dir=Path(scratch) / "logs")
        # the operator's own file, read where it is: its message names the file to delete
        bot.policy = replace(bot.policy, kill_switch=KillSwitch(
            s.kill_switch, (s.data_dir / KILL_SWITCH_FILE).absolute()))
        planned = plan_cycle(bot.deps, bot.policy, slot)
        bot.deps.journal.close()
        bot.deps.broker.close()
    _print_plan(planned, format_slot(slot))
    return 0


def _print_plan(planned, slot_text: str) -> None:
    print(f"dry run for slot {slot_text} (nothing is sent or recorded)")
    print(f"account: nav {planned.account.nav:,.2f}  cash {planned.account.cash:,.2f}  "
          f"positions {dict(planned.account.positions)}")
    for run in planned.runs:
        d = run.decision
        print(f"\nmodel {run.share.model.name} (share {run.share.share:.0%}), data as of {run.history.as_of}")
        print(f"  {d.reason}")
        for sym, w in sorted(planned.plan.final_weights.get(run.share.model.name, {}).items()):
            print(f"  target {sym:<6} {w:7.2%}")
    print("\norders:" if planned.plan.orders else "\norders: none")
    for o in planned.plan.orders:
        print(f"  {o.side.value:<4} {o.quantity:>12.4f} {o.symbol:<6} ~{o.reference_price:>10.2f} "
              f"[{o.model}] {o.client_order_id}")
    print("risk checks:" if planned.plan.checks else "risk checks: none changed the plan")
    for c in planned.plan.checks:
        print(f"  {c.check:<20} {c.symbol or '-':<6} {c.detail} [{c.model}]")
    for p in planned.problems:
        print(f"  problem: {p.kind}: {p.error}")
    if planned.kill_reason:
        print(f"kill switch engaged: {planned.kill_reason}")


def _copy_db(path: Path, dst: Path) -> None:
    """A consistent copy of a live SQLite database (the running bot may be writing it)."""
    import sqlite3
    src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    with sqlite3.connect(dst) as out:
        src.backup(out)
    src.close()


def cmd_audit(args: argparse.Namespace) -> int:
    if args.audit_command == "check":
        return cmd_audit_check(args)
    from bot.app.verify import verify_main
    return verify_main(args, _settings())


def cmd_audit_check(args: argparse.Namespace) -> int:
    from audit.check import check_trail
    logs = _trail_dir(args)
    if not logs.is_dir():
        raise ConfigError(f"{logs} is not a directory: give the log directory with --logs-dir DIR "
                          "or BOT_LOG_DIR")
    report = check_trail(logs)
    for line in report.problems:
        print(line)
    print(report.summary())
    return report.exit_code


def cmd_health(args: argparse.Namespace) -> int:
    from bot.app.health import health_main
    try:
        s = _settings()
    except ConfigError as exc:  # exit 1 for Docker's HEALTHCHECK, not 2
        print(f"unhealthy: {exc}")
        return 1
    return health_main(s)


def cmd_backup(args: argparse.Namespace) -> int:
    from bot.app.backup import backup_main
    return backup_main(args, _settings())


def cmd_restore(args: argparse.Namespace) -> int:
    from bot.app.restore import restore_main
    return restore_main(args, _settings())


def _trail_dir(args: argparse.Namespace) -> Path:
    """--logs-dir, else BOT_LOG_DIR (settings are loaded only then: they cost 0.2 s)."""
    if getattr(args, "logs_dir", None):
        return args.logs_dir
    from bot.settings import trail_log_dir
    return trail_log_dir()


def cmd_logs(args: argparse.Namespace) -> int:
    from bot.cli.logs import logs_main
    return logs_main(args, _trail_dir(args))


def cmd_replay(args: argparse.Namespace) -> int:
    from bot.cli.replay import replay_main
    return replay_main(args, _trail_dir(args), _settings)


def cmd_report(args: argparse.Namespace) -> int:
    from bot.cli.report import report_main
    return report_main(args, _trail_dir(args))


_COMMANDS = {"run": cmd_run, "cycle": cmd_cycle, "simulate": cmd_simulate, "config": cmd_config,
             "audit": cmd_audit, "logs": cmd_logs, "replay": cmd_replay, "report": cmd_report,
             "health": cmd_health, "backup": cmd_backup, "restore": cmd_restore}


if __name__ == "__main__":
    raise SystemExit(main())
