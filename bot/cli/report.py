"""The `report` subcommand's arguments and handler. Light on purpose: `tradebot` builds every
parser at start-up, and matplotlib and the ledger load only when a report is written."""
from __future__ import annotations

import argparse
import stat
import sys
from pathlib import Path

from bot.review.performance import CAGR_HELP


def add_report_parser(subparsers) -> argparse.ArgumentParser:
    """The `report` subcommand: --logs-dir, -o/--out (required), --png."""
    p = subparsers.add_parser(
        "report", help="write an HTML report of a trail (NAV, drawdown, P&L, trades, errors)",
        description="Write one self-contained HTML file (viewable offline) with the NAV and "
        "drawdown charts, headline figures against buy-and-hold SPY, returns by month, P&L by "
        "model and by symbol, the trades and the errors; and a PNG of the NAV curve. " + CAGR_HELP,
        epilog="exit codes: 0 written; 1 the trail has nothing to report yet; 2 bad arguments "
        "(a missing log directory, an output directory that does not exist, a target that is not "
        "a regular file)")
    p.add_argument("--logs-dir", type=Path, metavar="DIR", help="log directory (default BOT_LOG_DIR)")
    p.add_argument("-o", "--out", type=Path, required=True, help="the HTML file to write")
    p.add_argument("--png", type=Path,
                   help="the NAV chart PNG to write (default: next to the HTML, as <stem>.png)")
    p.add_argument("--mode", type=_mode, default=0o600, metavar="OCTAL",
                   help="file mode of the HTML and the PNG (default 600: as private as the trail; "
                   "644 to share them with other users of this machine)")
    return p


def _mode(text: str) -> int:
    try:
        mode = int(text, 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o666:
        raise argparse.ArgumentTypeError(f"{text!r} is not a file mode: give octal digits such "
                                         "as 600 or 644")
    return mode


def _exists_and_is_not_a_regular_file(path: Path) -> bool:
    """The report is renamed onto its target: a device or a pipe there would be replaced."""
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError:
        return True
    return not stat.S_ISREG(st.st_mode)


def report_main(args: argparse.Namespace, default_log_dir: Path) -> int:
    """Run `tradebot report`; prints one line on success (stdout) or on failure (stderr)."""
    logs = args.logs_dir or default_log_dir
    if not logs.is_dir():
        print(f"tradebot: {logs} is not a directory: give the log directory to report on "
              "(--logs-dir)", file=sys.stderr)
        return 2
    png = args.png if args.png is not None else args.out.with_suffix(".png")
    for path, flag in ((args.out, "-o"), (png, "--png")):
        if _exists_and_is_not_a_regular_file(path):
            print(f"tradebot: {flag} {path} exists and is not a regular file (a directory, a "
                  "device or a pipe): it would be replaced; name a new or a regular file",
                  file=sys.stderr)
            return 2
        if not path.parent.is_dir():
            print(f"tradebot: {flag} {path}: the directory {path.parent} does not exist: create "
                  "it first, or write the report elsewhere", file=sys.stderr)
            return 2
    if png.resolve() == args.out.resolve():
        print(f"tradebot: the PNG would overwrite the HTML ({args.out}): name the HTML *.html "
              "or give --png", file=sys.stderr)
        return 2
    from bot.review.report import NothingToReport, write_report
    try:
        s = write_report(logs, args.out, png, mode=getattr(args, "mode", 0o600))
    except NothingToReport as exc:
        print(f"tradebot: {exc}", file=sys.stderr)
        return 1
    print(f"report {s.html} and {s.png}: {s.start} to {s.end}, {s.cycles:,} cycles, "
          f"{s.trades:,} trades, {s.errors:,} errors")
    return 0
