"""`tradebot logs ...`: one subcommand per recipe of the guide's "Querying Logs with jq", giving
the recipe's answer (same numbers) from every file of the stream, rotated ones included, fast.

`--format table` (the default) is for reading in a terminal: aligned columns, money with two
decimals. The machine formats are exact: `json` is the recipe's JSON value (record lists are the
matching original lines, one per line; `nav` and `errors` give `jq -c '[...]'` rows), and the
csv/tsv of `nav` and `errors` are byte for byte the recipe's `jq -r ... | @csv` / `@tsv` output.
csv/tsv have no header line, like the recipes. Exit 0, or 2 for a bad argument or a missing log
directory (one line naming the problem and the fix), or 1 when `explain` finds no such order.
"""
from __future__ import annotations

import argparse
import os
import sys
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO, Callable, Container, Iterable, Mapping, Sequence

from bot.core.errors import ConfigError

FORMATS = ("table", "json", "csv", "tsv")
ORDER_COLUMNS = ("timestamp", "model", "symbol", "side", "quantity", "price", "status", "order_id")
MAX_WARNINGS = 5
EXIT_CODES = ("exit codes: 0 answered (also when nothing matches); 1 `explain` found no such "
              "order; 2 a bad argument, a filter that does not apply to the query, or a missing "
              "log directory")
_PROG = "tradebot logs"


# ---------------------------------------------------------------- parser

def _bound(text: str) -> str:
    from audit.query import utc_bound
    try:
        return utc_bound(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# the filters a query does not take, and why: given anyway, they are one line and exit 2
NOT_APPLICABLE = {
    "nav": (("--symbol", "--model"), "a snapshot's NAV is the whole account's, all symbols and "
            "models together; nav takes --since/--until"),
    "latest": (("--symbol", "--model", "--since", "--until"), "it is the last snapshot of the "
               "trail; use `nav --since/--until` for a period"),
    "explain": (("--symbol", "--model", "--since", "--until"), "it follows the one order named"),
}


class _NotApplicable(argparse.Action):
    """A filter that has no meaning for this query: the usage line and why, exit 2."""

    def __init__(self, option_strings, dest, why: str = "", **kw) -> None:
        super().__init__(option_strings, dest, nargs=None, default=argparse.SUPPRESS,
                         help=argparse.SUPPRESS, **kw)
        self.why = why

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        parser.error(f"{option_string} does not apply to this query: {self.why}")


def add_logs_parser(subparsers) -> argparse.ArgumentParser:
    """Add `logs` and its subcommands to a `tradebot` subparsers object."""
    logs = subparsers.add_parser(
        "logs", help="query the audit trail: the guide's jq recipes, answered fast",
        description="Answer the questions of the guide's 'Querying Logs with jq' from every file "
        "of the trail (rotated .N and .N.gz included, oldest first), with the same numbers as "
        "the guide's jq commands. --format table (default) is for reading; json, csv and tsv are "
        "exact (csv/tsv without a header, like the recipes).", epilog=EXIT_CODES)
    logs.add_argument("--logs-dir", type=Path, metavar="DIR",
                      help="log directory (default BOT_LOG_DIR, else ./logs)")
    sub = logs.add_subparsers(dest="logs_command", required=True, metavar="QUERY")

    where = argparse.ArgumentParser(add_help=False)
    where.add_argument("--logs-dir", type=Path, metavar="DIR", default=argparse.SUPPRESS,
                       help="log directory (default BOT_LOG_DIR, else ./logs)")
    when = argparse.ArgumentParser(add_help=False)
    when.add_argument("--since", type=_bound, metavar="WHEN",
                      help="from this UTC date or timestamp on (an offset like +02:00 is converted)")
    when.add_argument("--until", type=_bound, metavar="WHEN",
                      help="before this UTC date or timestamp (exclusive, like the guide's recipe)")
    who = argparse.ArgumentParser(add_help=False)
    who.add_argument("--symbol", help="only records of this symbol (e.g. SPY)")
    who.add_argument("--model", help="only records of this model (e.g. SectorRotationModel_v1)")

    def fmt(p, choices=FORMATS):
        p.add_argument("--format", choices=choices, default="table",
                       help="table (default, for reading), " + ", ".join(choices[1:]))

    def add(name, help, recipe, parents):
        p = sub.add_parser(name, help=help, parents=parents, epilog=EXIT_CODES,
                           description=f"{help[0].upper()}{help[1:]}. The guide's recipe: {recipe}")
        flags, why = NOT_APPLICABLE.get(name, ((), ""))
        for flag in flags:
            p.add_argument(flag, action=_NotApplicable, why=why)
        return p

    fmt(add("orders", "orders, oldest first", "jq 'select(.symbol == \"SPY\")' orders.jsonl; with "
            "--since/--until: select(.timestamp >= SINCE and .timestamp < UNTIL). --format json "
            "gives the matching lines as they are; csv/tsv give the columns "
            + ", ".join(ORDER_COLUMNS), [where, who, when]))
    fmt(add("sides", "order counts by side", "jq -s 'group_by(.side) | map({side: .[0].side, "
            "count: length})' orders.jsonl", [where, who, when]))
    fmt(add("traded-value", "total traded value of the fills",
            "jq -s 'map(.value) | add' trades.jsonl", [where, who, when]))
    fmt(add("nav", "NAV after each cycle", "jq -r '[.timestamp, .nav] | @csv' performance.jsonl "
            "(--format csv gives exactly that; json gives jq -c '[.timestamp, .nav]')", [where, when]))
    fmt(add("errors", "every error", "jq -r '[.timestamp, .event_type, .error] | @tsv' "
            "errors.jsonl (--format tsv gives exactly that)", [where, who, when]))
    fmt(add("latest", "the latest performance snapshot", "tail -1 performance.jsonl | jq '.' "
            "(only the end of the file is read)", [where]), ("table", "json"))
    fmt(add("win-rate", "fills with a realized pnl: total, wins, losses, win rate",
            "the guide's win-rate recipe on trades.jsonl; with no closed trade the rate is null",
            [where, who, when]))
    ex = add("explain", "why an order was placed: its decision, risk checks, fills",
             "none: this walks decisions, orders, trades and errors", [where])
    ex.add_argument("order_id", metavar="ORDER_ID", help="our order id (orders' order_id)")
    return logs


# ---------------------------------------------------------------- output helpers

class _Warnings:
    """Bad lines on stderr: one line each for the first few, then one count."""

    def __init__(self, err) -> None:
        self.err, self.count = err, 0

    def __call__(self, where, why: str) -> None:
        self.count += 1
        if self.count <= MAX_WARNINGS:
            print(f"{_PROG}: warning: {where}: {why}; skipped", file=self.err)

    def close(self) -> None:
        if self.count > MAX_WARNINGS:
            print(f"{_PROG}: warning: {self.count - MAX_WARNINGS} more bad lines skipped "
                  f"({self.count} in all)", file=self.err)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def money(v: Any) -> str:
    """Two decimals with thousands separators; empty for null."""
    if _is_num(v):
        return f"{v:,.2f}"
    return _text(v)


def _text(v: Any) -> str:
    """A cell: strings as they are (control characters escaped), numbers as jq, null empty."""
    from audit.jqfmt import jq_dumps, jq_number
    if v is None:
        return ""
    if isinstance(v, str):
        return v.translate(_CELL) if any(c < " " for c in v) else v
    if _is_num(v):
        return jq_number(v)
    return jq_dumps(v, None)


# how `logs orders --format table` shows each of ORDER_COLUMNS (the price as money)
_ORDER_CELLS: tuple[Callable[[Any], str], ...] = (_text, _text, _text, _text, _text, money, _text, _text)
_ORDER_ID = ORDER_COLUMNS.index("order_id")


_CELL = {c: "\\u%04x" % c for c in range(0x20)}
_CELL.update({9: "\\t", 10: "\\n", 13: "\\r"})


def table(out: BinaryIO, header: Sequence[str], rows: Iterable[Sequence[str]],
          right: Container[int] = ()) -> int:
    """Aligned columns (two spaces apart; `right` ones right-aligned). Widths come from the header
    and the first 1000 rows, so the output streams: a wider cell later only pushes its row."""
    it = iter(rows)
    first = list(islice(it, 1000))
    widths = [max([len(h)] + [len(r[i]) for r in first]) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> bytes:
        parts = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return ("  ".join(parts).rstrip() + "\n").encode()

    out.write(line(header))
    n = 0
    for r in first:
        out.write(line(r))
        n += 1
    buf = []
    for r in it:
        buf.append(line(r))
        n += 1
        if len(buf) >= 4096:
            out.write(b"".join(buf))
            buf.clear()
    out.write(b"".join(buf))
    return n


def _write_all(out: BinaryIO, blocks: Iterable[bytes]) -> int:
    n = 0
    for b in blocks:
        out.write(b)
        n += 1
    return n


def _filters(args):
    from audit.query import Filters
    return Filters(symbol=getattr(args, "symbol", None), model=getattr(args, "model", None),
                   since=getattr(args, "since", None), until=getattr(args, "until", None))


def _note_missing(log_dir: Path, stream: str, err) -> None:
    from audit.files import segments
    if not segments(log_dir, stream):
        print(f"{_PROG}: note: no {stream} in {log_dir}: nothing recorded yet", file=err)


# ---------------------------------------------------------------- subcommands

def _columns(record: Mapping[str, Any], columns: Sequence[str]) -> list[Any]:
    """The recipe's columns of a record as jq reads them (`[.a, .b]`: null when absent). The
    `logs` queries print what the guide's jq prints, for any line jq reads, so they take the
    query engine's JSON values, not typed records (which refuse some lines jq prints)."""
    return [record.get(c) for c in columns]


def _orders(args, log_dir: Path, out: BinaryIO, warn: _Warnings) -> int:
    from audit import query as q
    from audit.jqfmt import RowError, jq_csv, jq_tsv
    _note_missing(log_dir, q.ORDERS, sys.stderr)
    blocks = q.select(log_dir, q.ORDERS, _filters(args), on_bad=warn)
    if args.format == "json":
        _write_all(out, blocks)
        return 0
    recs = (r for block in blocks for line in block.splitlines()
            if (r := q.parse_record(line)) is not None)
    values = (_columns(rec, ORDER_COLUMNS) for rec in recs)
    if args.format in ("csv", "tsv"):
        fmt = jq_csv if args.format == "csv" else jq_tsv
        for row in values:
            try:
                out.write((fmt(row) + "\n").encode())
            except RowError as exc:
                warn(f"order {row[_ORDER_ID]}", str(exc))
        return 0
    rows = ([f(v) for f, v in zip(_ORDER_CELLS, row)] for row in values)
    n = table(out, [c.upper() for c in ORDER_COLUMNS], rows, right={4, 5})
    out.write(f"{n} order{'s' if n != 1 else ''}\n".encode())
    return 0


def _sides(args, log_dir: Path, out: BinaryIO, warn: _Warnings) -> int:
    from audit import query as q
    from audit.jqfmt import jq_csv, jq_dumps, jq_tsv
    _note_missing(log_dir, q.ORDERS, sys.stderr)
    groups = q.count_by(log_dir, "side", q.ORDERS, _filters(args), on_bad=warn)
    if args.format == "json":
        out.write((jq_dumps([{"side": v, "count": n} for v, n in groups]) + "\n").encode())
    elif args.format in ("csv", "tsv"):
        fmt = jq_csv if args.format == "csv" else jq_tsv
        for v, n in groups:
            out.write((fmt([v if isinstance(v, (str, int, float)) or v is None else jq_dumps(v, None), n])
                       + "\n").encode())
    else:
        rows = [[_text(v) if v is not None else "(none)", str(n)] for v, n in groups]
        rows.append(["total", str(sum(n for _v, n in groups))])
        table(out, ["SIDE", "COUNT"], rows, right={1})
    return 0


def _traded_value(args, log_dir: Path, out: BinaryIO, warn: _Warnings) -> int:
    from audit import query as q
    from audit.jqfmt import jq_number
    _note_missing(log_dir, q.TRADES, sys.stderr)
    total = q.total(log_dir, "value", q.TRADES, _filters(args), on_bad=warn)
    if args.format == "json":
        out.write(b"null\n" if total is None else (jq_number(total) + "\n").encode())
    elif args.format in ("csv", "tsv"):
        out.write(b"\n" if total is None else (jq_number(total) + "\n").encode())
    else:
        table(out, ["TRADED VALUE"], [[money(total) if total is not None else "(no fills)"]], right={0})
    return 0


def _rows(args, log_dir: Path, out: BinaryIO, warn: _Warnings, stream: str, columns: tuple,
          header: list[str], cell: Sequence[Callable[[Any], str]], right: set[int],
          noun: str | None = None, **kw) -> int:
    import orjson

    from audit import query as q
    _note_missing(log_dir, stream, sys.stderr)
    fmt = "json" if args.format == "table" else args.format
    blocks = q.rows(log_dir, stream, columns, fmt, _filters(args), on_bad=warn, **kw)
    if args.format != "table":
        _write_all(out, blocks)
        return 0
    rows = ([f(v) for f, v in zip(cell, orjson.loads(line))]
            for block in blocks for line in block.splitlines())
    n = table(out, header, rows, right)
    if noun:
        out.write(f"{n} {noun}{'s' if n != 1 else ''}\n".encode())
    return 0


def _nav(args, log_dir, out, warn) -> int:
    from audit import query as q
    return _rows(args, log_dir, out, warn, q.PERFORMANCE, q.NAV_COLUMNS, ["TIMESTAMP", "NAV"],
                 (_text, money), {1}, numeric=("nav",))


def _errors(args, log_dir, out, warn) -> int:
    from audit import query as q
    return _rows(args, log_dir, out, warn, q.ERRORS, q.ERROR_COLUMNS,
                 ["TIMESTAMP", "EVENT", "ERROR"], (_text, _text, _text), set(), noun="error")


_MONEY_FIELDS = {"nav", "cash", "buying_power", "value", "price"}


def _latest(args, log_dir: Path, out: BinaryIO, warn: _Warnings) -> int:
    from audit import query as q
    found = q.latest(log_dir, q.PERFORMANCE, on_bad=warn)
    if found is None:
        print(f"{_PROG}: note: no performance snapshot in {log_dir}: no cycle has completed yet",
              file=sys.stderr)
        return 0
    if args.format == "json":
        out.write(found.line.rstrip(b"\r") + b"\n")
        return 0
    rows: list[list[str]] = []
    for k, v in found.record.items():
        if isinstance(v, dict) and v and all(_is_num(x) for x in v.values()):
            rows.extend([f"{k}.{sym}", money(x) if k == "prices" else _text(x)] for sym, x in v.items())
        else:
            rows.append([k, money(v) if k in _MONEY_FIELDS else _text(v)])
    table(out, ["FIELD", "VALUE"], rows)
    out.write(f"({found.file}, last line)\n".encode())
    return 0


def _win_rate(args, log_dir: Path, out: BinaryIO, warn: _Warnings) -> int:
    from audit import query as q
    from audit.jqfmt import jq_csv, jq_dumps, jq_tsv
    _note_missing(log_dir, q.TRADES, sys.stderr)
    wr = q.win_rate(log_dir, _filters(args), on_bad=warn)
    row = [wr.total, wr.wins, wr.losses, wr.win_rate]
    if args.format == "json":
        out.write((jq_dumps(wr.as_jq()) + "\n").encode())
    elif args.format in ("csv", "tsv"):
        out.write(((jq_csv if args.format == "csv" else jq_tsv)(row) + "\n").encode())
    else:
        rate = "n/a (no closed trade)" if wr.win_rate is None else f"{wr.win_rate:.2f}%"
        table(out, ["TOTAL", "WINS", "LOSSES", "WIN RATE"],
              [[str(wr.total), str(wr.wins), str(wr.losses), rate]], right={0, 1, 2, 3})
    return 0


def _explain(args, log_dir: Path, out: BinaryIO, warn: _Warnings) -> int:
    from bot.review.explain import explain_order
    try:
        text = explain_order(log_dir, args.order_id)
    except LookupError as exc:
        print(f"{_PROG}: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 1
    out.write((text if text.endswith("\n") else text + "\n").encode())
    return 0


_HANDLERS = {"orders": _orders, "sides": _sides, "traded-value": _traded_value, "nav": _nav,
             "errors": _errors, "latest": _latest, "win-rate": _win_rate, "explain": _explain}


class _TextOut:
    """A binary writer over a text stream (a captured sys.stdout without .buffer)."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def write(self, b: bytes) -> None:
        self.stream.write(b.decode("utf-8", "surrogateescape"))


def logs_main(args: argparse.Namespace, default_log_dir: Path) -> int:
    """Run `tradebot logs <query>`: the log directory is args.logs_dir if given, else
    `default_log_dir` (BOT_LOG_DIR). Writes to sys.stdout; returns the exit code."""
    log_dir = Path(getattr(args, "logs_dir", None) or default_log_dir)
    if not log_dir.is_dir():
        print(f"{_PROG}: {log_dir} is not a directory: pass --logs-dir DIR or set BOT_LOG_DIR "
              "to the bot's log directory", file=sys.stderr)
        return 2
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    out = buffer if buffer is not None else _TextOut(sys.stdout)
    warn = _Warnings(sys.stderr)
    try:
        return _HANDLERS[args.logs_command](args, log_dir, out, warn)
    finally:
        if buffer is not None:
            buffer.flush()
        warn.close()


def trail_dir(args: argparse.Namespace) -> Path:
    """--logs-dir, else BOT_LOG_DIR as the settings read it (environment, then .env), else ./logs;
    the settings module is imported only when --logs-dir is not given (it costs 0.2 s)."""
    if getattr(args, "logs_dir", None):
        return args.logs_dir
    from bot.settings import trail_log_dir
    return trail_log_dir()


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m bot.cli.logs QUERY ...`: the same as `tradebot logs QUERY ...`."""
    p = argparse.ArgumentParser(prog="tradebot")
    add_logs_parser(p.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "logs":
        argv.insert(0, "logs")
    args = p.parse_args(argv)
    try:
        return logs_main(args, trail_dir(args))
    except ConfigError as exc:
        print(f"{_PROG}: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
