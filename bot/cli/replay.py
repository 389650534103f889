"""`tradebot replay`: rebuild the portfolio from the trail, check the trail against itself,
explain one cycle, or re-run a cycle's models with the current code.

Exit codes: 0 the trail is consistent (warnings are printed, they do not fail it); 1 it is not,
or the cycle asked for is not in the trail; 2 a bad argument or log directory.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable, TextIO

import orjson

if TYPE_CHECKING:  # the parser is built at every start of `tradebot`: keep its imports light
    from bot.review.check import CheckResult
    from bot.review.ledger import Book, Step


EXIT_CODES = ("exit codes: 0 the trail is consistent (warnings do not fail it), or the cycle was "
              "explained; 1 an inconsistency, or no such cycle in the trail; 2 a bad argument "
              "or log directory")


def _cycle_arg(text: str) -> str:
    """--cycle is checked while the arguments are read: a bad one is the usage line and exit 2."""
    from bot.review.explain import parse_cycle
    try:
        parse_cycle(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--cycle ")) from None
    return text


def add_replay_parser(sub) -> None:
    r = sub.add_parser(
        "replay", help="rebuild the portfolio from the trail and check it; explain or re-run a cycle",
        description="Rebuild cash, positions, average cost and NAV after every fill and every cycle, "
        "per model and in total, from the trail alone, and report every inconsistency with its "
        "file and line (exit 0 only when consistent). With --cycle, print that cycle's timeline "
        "instead; add --rerun to run its models again on data rebuilt from the configured source "
        "and show what they decide now against what they decided then.", epilog=EXIT_CODES)
    r.add_argument("--logs-dir", type=Path, metavar="DIR", help="log directory (default BOT_LOG_DIR)")
    r.add_argument("--steps", action="store_true",
                   help="print the books after every fill and every cycle, not only at the end")
    r.add_argument("--format", choices=("table", "json", "csv", "tsv"), default="table",
                   help="table (default), json, csv or tsv (csv/tsv: one row per step and book, "
                   "with a header)")
    r.add_argument("--cycle", metavar="TIMESTAMP", type=_cycle_arg,
                   help="explain this cycle (its cycle_timestamp, a time, or a date: UTC)")
    r.add_argument("--rerun", action="store_true",
                   help="with --cycle: re-run the cycle's models on rebuilt inputs (BOT_* settings "
                   "choose the data source and models) and compare; nothing is traded or written")


def replay_main(args: argparse.Namespace, log_dir: Path, settings: Callable[[], object],
                out: TextIO | None = None) -> int:
    """Run `tradebot replay`; `settings` loads the full settings (only --rerun needs them).
    `out` is sys.stdout as it is at the call (not as it was when this module was imported)."""
    from bot.core.errors import ConfigError
    out = sys.stdout if out is None else out
    from bot.review.check import check
    if not log_dir.is_dir():
        raise ConfigError(f"{log_dir} is not a directory: give the log directory with --logs-dir "
                          "DIR or BOT_LOG_DIR")
    if args.rerun and not args.cycle:
        raise ConfigError("--rerun needs --cycle TIMESTAMP: say which cycle to re-run")
    if args.cycle:
        return _cycle(args, log_dir, settings, out)
    steps: list[Step] | None = [] if args.steps else None
    result = check(log_dir, steps)
    if args.format == "json":
        out.write(orjson.dumps(_json(result, steps), option=orjson.OPT_INDENT_2).decode() + "\n")
    elif args.format in ("csv", "tsv"):
        _csv(steps if steps is not None else ([result.final] if result.final else []), out,
             "\t" if args.format == "tsv" else ",")
        for f in result.findings:
            print(f, file=sys.stderr)
    else:
        out.write(format_replay(log_dir, result, steps))
    return 0 if result.consistent else 1


def _cycle(args, log_dir: Path, settings, out: TextIO) -> int:
    from bot.review import explain
    try:
        if args.rerun:
            from bot.app.rerun import rerun_configured
            from bot.review import rerun
            results = rerun_configured(settings(), log_dir, args.cycle)
            out.write(rerun.format_rerun(results).rstrip("\n") + "\n")
        else:
            out.write(explain.explain_cycle(log_dir, args.cycle).rstrip("\n") + "\n")
    except LookupError as exc:
        print(f"tradebot: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 1
    return 0


# -- output -----------------------------------------------------------------------------------

def _money(x: float | None) -> str:
    """Two decimals; never "-0.00" (a tiny negative rounds to 0.00)."""
    if x is None:
        return "-"
    text = f"{x:,.2f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.,") else text


def _fixed(x: float) -> str:
    """Two decimals without separators, never "-0.00"."""
    return _money(x).replace(",", "")


STEPS_NOTE = ("(after a fill, the filled symbol is marked at its fill price, the only price the "
              "trail gives until the cycle's snapshot; trades.jsonl's nav is the broker's, at the "
              "market price: the two agree again at each cycle row)")


def format_replay(log_dir: Path, r: CheckResult, steps: list[Step] | None) -> str:
    from audit.records import CycleCompleted
    lines = [f"replay of {log_dir}: {r.orders} orders, {r.fills} fills, {r.cycles} cycles"
             + (f", {r.first} to {r.last}" if r.first else "")]
    if steps:
        lines.append("")
        lines.append(STEPS_NOTE)
        lines.append(f"{'timestamp':<32} {'step':<6} {'where':<24} {'book':<24} {'cash':>14} "
                     f"{'NAV':>14} {'realized':>12} {'unrealized':>12}")
        for s in steps:
            for name, book in [("total", s.total), *s.models.items()]:
                lines.append(f"{s.timestamp:<32} {s.kind:<6} {str(s.where):<24} {name:<24} "
                             f"{_money(book.cash):>14} {_money(book.nav):>14} "
                             f"{_money(book.realized_pnl):>12} {_money(book.unrealized_pnl):>12}")
    if r.final is not None:
        f = r.final
        lines += ["", f"books after the last step ({f.timestamp}, {f.where}):",
                  f"  {'book':<24} {'cash':>14} {'NAV':>14} {'realized':>12} {'unrealized':>12} "
                  f"{'commission':>11}"]
        for name, book in [*f.models.items(), ("total", f.total)]:
            lines.append(f"  {name:<24} {_money(book.cash):>14} {_money(book.nav):>14} "
                         f"{_money(book.realized_pnl):>12} {_money(book.unrealized_pnl):>12} "
                         f"{_money(book.commission):>11}")
        for name, book in [*f.models.items(), ("total", f.total)]:
            held = {s: p for s, p in book.positions.items() if abs(p.quantity) >= 1e-9}
            if not held:
                continue
            lines += ["", f"  positions of {name}:",
                      f"    {'symbol':<8} {'quantity':>16} {'avg cost':>12} {'mark':>12} "
                      f"{'value':>14} {'unrealized':>12}"]
            for sym, p in held.items():
                value = None if p.mark is None else p.quantity * p.mark
                lines.append(f"    {sym:<8} {p.quantity:>16,.6f} {p.avg_cost:>12,.4f} "
                             f"{_money(p.mark):>12} {_money(value):>14} {_money(p.unrealized_pnl):>12}")
        from audit.records import CycleCompleted
        recorded = f.record if f.kind == "cycle" else None
        if isinstance(recorded, CycleCompleted):
            lines.append(f"\n  the trail's own NAV at that snapshot: {_money(recorded.nav)}")
    errors, warnings = len(r.errors), len(r.findings) - len(r.errors)
    lines.append("")
    lines += [str(x) for x in r.findings]
    lines.append(("consistent" if r.consistent else "INCONSISTENT")
                 + f": {errors} error(s), {warnings} warning(s)")
    return "\n".join(lines) + "\n"


def _book_json(book: Book) -> dict:
    return {"cash": book.cash, "nav": book.nav, "realized_pnl": book.realized_pnl,
            "unrealized_pnl": book.unrealized_pnl, "commission": book.commission,
            "positions": {s: {"quantity": p.quantity, "avg_cost": p.avg_cost,
                              "realized_pnl": p.realized_pnl, "mark": p.mark}
                          for s, p in book.positions.items()}}


def _step_json(s: Step) -> dict:
    return {"timestamp": s.timestamp, "kind": s.kind, "where": str(s.where),
            "cycle_timestamp": s.cycle_timestamp, "total": _book_json(s.total),
            "models": {m: _book_json(b) for m, b in s.models.items()}}


def _json(r: CheckResult, steps: list[Step] | None) -> dict:
    out = {"consistent": r.consistent, "orders": r.orders, "fills": r.fills, "cycles": r.cycles,
           "first": r.first, "last": r.last,
           "findings": [{"severity": f.severity, "where": str(f.where) if f.where else None,
                         "message": f.message} for f in r.findings],
           "final": _step_json(r.final) if r.final else None,
           "removed": ({"segments": dict(r.removed.segments), "since": r.removed.since}
                       if r.removed else None)}
    if steps is not None:
        out["steps"] = [_step_json(s) for s in steps]
    return out


def _csv(steps: list[Step], out: TextIO, delimiter: str = ",") -> None:
    w = csv.writer(out, lineterminator="\n", delimiter=delimiter)
    w.writerow(["timestamp", "step", "where", "cycle_timestamp", "book", "cash", "nav",
                "realized_pnl", "unrealized_pnl", "commission", "positions"])
    for s in steps:
        for name, book in [("total", s.total), *s.models.items()]:
            held = {sym: p.quantity for sym, p in book.positions.items() if abs(p.quantity) >= 1e-9}
            w.writerow([s.timestamp, s.kind, str(s.where), s.cycle_timestamp or "", name,
                        _fixed(book.cash), "" if book.nav is None else _fixed(book.nav),
                        _fixed(book.realized_pnl), _fixed(book.unrealized_pnl),
                        _fixed(book.commission), orjson.dumps(held).decode()])
