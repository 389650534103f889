"""The `tradebot` command: run, cycle, simulate, config, audit, logs, replay, report.

Parsers, printing and exit codes only: what a command does lives in `bot/app/` (start-up and
stop, the dry run, simulate, verify, health, backup, restore) and `bot/review/` (the readers).
Start-up problems (bad settings, a held lock, a non-empty --out) print one line on stderr and
exit 2 (3 for a held lock) before anything is traded.

A command imports its app module when it runs, and the settings when it needs them: `tradebot
--help` and `tradebot logs` never load pydantic, the wiring, the adapters or the models.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence, TextIO

from bot import tradebot_version
from bot.cli.logs import add_logs_parser, logs_main, trail_dir
from bot.cli.replay import add_replay_parser, replay_main
from bot.cli.report import add_report_parser, report_main
from bot.core.clock import SystemClock
from bot.core.errors import EXIT_CONFIG, EXIT_HALTED, EXIT_LOCKED, ConfigError, Halt, LockHeld, TradebotError
from bot.review.performance import CAGR_HELP

if TYPE_CHECKING:  # pragma: no cover
    from bot.app.dry_run import DryRun
    from bot.settings import Settings

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
    from bot.settings import INT64_MAX, INT64_MIN  # pydantic: only when --seed is given
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


def _settings(**overrides: Any) -> Settings:
    from bot.settings import load_settings  # pydantic: 0.2 s that `logs` and `--help` never pay
    return load_settings(**overrides)


def cmd_config(args: argparse.Namespace) -> int:
    s = _settings()
    for name, value in s.redacted(absolute_paths=True).items():
        print(f"BOT_{name.upper()}={'' if value is None else value}")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from bot.app.simulate import format_summary, simulate_command  # the wiring, adapters, models
    s = _settings(seed=args.seed, csv_dir=args.csv_dir)
    result, generated_key = simulate_command(s, args.start, args.end, args.out or s.log_dir,
                                             csv_dir=args.csv_dir)
    print(format_summary(result))
    if generated_key is not None:
        print(f"audit key generated: {generated_key} (keep it, and back it up apart from the "
              "logs: `tradebot audit verify` needs it)")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from bot.app import live  # start-up and stop: the wiring, adapters, models
    return live.run(_settings(), args.max_cycles)


def cmd_cycle(args: argparse.Namespace) -> int:
    s = _settings()
    if args.dry_run:
        return _dry_run(s)
    from bot.app import live  # start-up and stop: the wiring, adapters, models
    return live.run_one_cycle(s)


def _dry_run(s: Settings) -> int:
    from audit.timestamps import format_slot  # any audit module loads the record types (30 ms)
    from bot.app.dry_run import dry_run  # the wiring, adapters, models
    result = dry_run(s, SystemClock())
    _print_plan(result, format_slot(result.slot))
    return 0


def _print_plan(result: DryRun, slot_text: str) -> None:
    planned = result.planned
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
        print(f"  problem: {p.event_type}: {p.error}")
    if planned.kill_reason:
        print(f"kill switch engaged: {planned.kill_reason}")


def cmd_audit(args: argparse.Namespace) -> int:
    if args.audit_command == "check":
        return cmd_audit_check(args)
    from bot.app.verify import verify_main  # the trail's verifier and the anchors
    return verify_main(args, _settings())


def cmd_audit_check(args: argparse.Namespace) -> int:
    from audit.check import check_trail  # any audit module loads the record types (30 ms)
    logs = trail_dir(args)
    if not logs.is_dir():
        raise ConfigError(f"{logs} is not a directory: give the log directory with --logs-dir DIR "
                          "or BOT_LOG_DIR")
    report = check_trail(logs)
    for line in report.problems:
        print(line)
    print(report.summary())
    return report.exit_code


def cmd_health(args: argparse.Namespace) -> int:
    from bot.app.health import health_main  # the settings, the trail's file names
    try:
        s = _settings()
    except ConfigError as exc:  # exit 1 for Docker's HEALTHCHECK, not 2
        print(f"unhealthy: {exc}")
        return 1
    return health_main(s)


def cmd_backup(args: argparse.Namespace) -> int:
    from bot.app.backup import backup_main  # the settings, tarfile, sqlite3
    return backup_main(args, _settings())


def cmd_restore(args: argparse.Namespace) -> int:
    from bot.app.restore import restore_main  # the settings and the verifier
    return restore_main(args, _settings())


def cmd_logs(args: argparse.Namespace) -> int:
    return logs_main(args, trail_dir(args))


def cmd_replay(args: argparse.Namespace) -> int:
    return replay_main(args, trail_dir(args), _settings)


def cmd_report(args: argparse.Namespace) -> int:
    return report_main(args, trail_dir(args))


_COMMANDS = {"run": cmd_run, "cycle": cmd_cycle, "simulate": cmd_simulate, "config": cmd_config,
             "audit": cmd_audit, "logs": cmd_logs, "replay": cmd_replay, "report": cmd_report,
             "health": cmd_health, "backup": cmd_backup, "restore": cmd_restore}


if __name__ == "__main__":
    raise SystemExit(main())
