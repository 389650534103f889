"""`tradebot report`: one self-contained HTML file about a trail (NAV and drawdown charts as inline
SVG, headline figures against buy-and-hold SPY, returns by month, P&L by model and by symbol,
trades, errors) and a PNG of the NAV curve.

Reads the trail only (through `bot.review.ledger.replay` and errors.jsonl); writes nothing else. The
HTML needs no network to view: no scripts, stylesheets, fonts or images from anywhere else.
"""
from __future__ import annotations

import html
import os
from collections import deque
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from audit.files import iter_typed, segments
from audit.records import (
    ERRORS,
    PERFORMANCE,
    TRADES,
    AccountChecked,
    CycleCompleted,
    Problem,
    TradeExecuted,
    UnknownRecord,
)
from audit.timestamps import format_timestamp
from bot.core.calendar import NY
from bot.core.domain import BENCHMARK
from bot.core.errors import TradebotError
from bot.review.ledger import EXTERNAL, replay
from bot.review.performance import CAGR_HELP, Performance, from_opening, performance
from bot.review.pruned import Pruned, pruned

MAX_TRADE_ROWS = 5000
MAX_CHART_POINTS = 10000  # beyond this the charts use one point per day
PRIVATE = 0o600  # the report's default mode: as private as the trail it summarizes


class NothingToReport(TradebotError):
    """The trail has no performance snapshot; the message says why, in one line."""


@dataclass(frozen=True, slots=True)
class ReportSummary:
    html: Path
    png: Path
    start: date
    end: date
    cycles: int
    trades: int
    errors: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One `cycle_complete`: when (the cycle's slot), its New York trading day, NAV, SPY price."""

    at: datetime
    day: date
    nav: float
    spy: float | None


@dataclass(frozen=True, slots=True)
class ReportData:
    """Everything the report shows, read from the trail in one pass."""

    log_dir: Path
    snapshots: Sequence[Snapshot]
    trades: Sequence[TradeExecuted]  # the newest `max_trades` trade records, oldest first
    trade_count: int                # all trades in the trail
    errors: Sequence[Problem | UnknownRecord]  # every record of errors.jsonl
    unreadable: Sequence[str]       # "file:line: why" for lines of errors.jsonl that are not JSON
    last_step: object | None        # the last bot.ledger.Step (its books give the P&L)
    drifts: Sequence[str] = ()      # "file:line" of each step whose account differs from the fills
    opening: float | None = None    # the account's NAV when the trail opens (account_checked)
    removed: Pruned | None = None   # what retention removed (the figures start after it)


# ---------------------------------------------------------------- reading

def _snapshot(rec: CycleCompleted) -> Snapshot:
    at = rec.cycle_timestamp
    spy = rec.prices.get(BENCHMARK)
    spy = float(spy) if isinstance(spy, (int, float)) and spy > 0 else None
    return Snapshot(at, at.astimezone(NY).date(), float(rec.nav), spy)


def nothing_to_report(log_dir: Path) -> str | None:
    """Why the trail has nothing to report (one line), or None when it has snapshots' files."""
    if not segments(log_dir, PERFORMANCE):
        return (f"nothing to report: {log_dir} has no {PERFORMANCE}, so no cycle has completed "
                "there; give the log directory of a bot that has run (--logs-dir) or run "
                "`tradebot simulate` first")
    return None


def collect(log_dir: Path, max_trades: int = MAX_TRADE_ROWS) -> ReportData:
    """Replay the trail once; keep the snapshots, the newest `max_trades` trades, the last step,
    and read every error. Raises NothingToReport when there is no snapshot."""
    why = nothing_to_report(log_dir)
    if why:
        raise NothingToReport(why)
    snapshots: list[Snapshot] = []
    trades: deque[TradeExecuted] = deque(maxlen=max_trades)
    trade_count, last, drifts, opening = 0, None, [], None
    removed = pruned(log_dir)
    for step in replay(log_dir, removed):
        last = step
        record = step.record
        if step.kind == "open" and opening is None:
            nav = record.nav if isinstance(record, (AccountChecked, CycleCompleted)) else None
            opening = float(nav) if nav is not None and nav > 0 else None
        if getattr(step, "drift", None) is not None:
            drifts.append(str(step.where))
        if isinstance(record, CycleCompleted):
            snapshots.append(_snapshot(record))
        elif step.kind == "fill" and isinstance(record, TradeExecuted):
            trades.append(record)
            trade_count += 1
    if not snapshots and removed:
        raise NothingToReport(
            f"nothing to report: {removed.describe()} in {log_dir}, and no cycle_complete "
            "snapshot was written after it; run the report again after the next cycle")
    if not snapshots:
        raise NothingToReport(
            f"nothing to report: {PERFORMANCE} in {log_dir} holds no cycle_complete snapshot "
            "yet; run the report again after the first cycle has completed")
    unreadable: list[str] = []
    errors = [rec for _where, rec in iter_typed(
        log_dir, ERRORS, lambda where, why: unreadable.append(f"{where}: {why}"))
        if isinstance(rec, (Problem, UnknownRecord))]
    return ReportData(log_dir, snapshots, list(trades), trade_count, errors, unreadable, last,
                      drifts, opening, removed or None)


# ---------------------------------------------------------------- figures

def daily(snapshots: Sequence[Snapshot]) -> list[Snapshot]:
    """The last snapshot of each New York trading day, in order (metrics want one per day)."""
    out: list[Snapshot] = []
    for s in snapshots:
        if out and out[-1].day == s.day:
            out[-1] = s
        else:
            out.append(s)
    return out


def benchmark_values(snapshots: Sequence[Snapshot]) -> list[tuple[Snapshot, float]]:
    """Buy-and-hold SPY from the first snapshot that prices it: (snapshot, SPY price), a missing
    price carried forward from the one before. Empty when no snapshot has a SPY price."""
    out: list[tuple[Snapshot, float]] = []
    price = None
    for s in snapshots:
        price = s.spy if s.spy is not None else price
        if price is not None:
            out.append((s, price))
    return out


@dataclass(frozen=True, slots=True)
class MonthRow:
    month: str              # "2024-01"
    strategy: float         # return over the month, a fraction
    benchmark: float | None  # None before the first SPY price
    nav: float              # NAV at the month's last snapshot


def monthly_returns(days: Sequence[Snapshot], opening: float | None = None) -> list[MonthRow]:
    """Return of each calendar month (New York dates): last NAV of the month over the last NAV of
    the month before; the first month starts from the opening NAV (else the first snapshot's).
    SPY's first month starts from its first price."""
    bench = {s.day: p for s, p in benchmark_values(days)}
    first_spy = next(iter(bench.values()), None)
    rows: list[MonthRow] = []
    prev_nav, prev_spy = opening if opening is not None else days[0].nav, None
    for i, s in enumerate(days):
        month = s.day.strftime("%Y-%m")
        if i + 1 < len(days) and days[i + 1].day.strftime("%Y-%m") == month:
            continue
        spy = bench.get(s.day)
        base = prev_spy if prev_spy is not None else first_spy
        rows.append(MonthRow(month, s.nav / prev_nav - 1 if prev_nav else 0.0,
                             None if spy is None or base is None else spy / base - 1, s.nav))
        prev_nav, prev_spy = s.nav, spy
    return rows


@dataclass(frozen=True, slots=True)
class Headline:
    strategy: Performance
    benchmark: Performance | None
    start: date
    end: date
    bench_start: date | None
    first_nav: float
    last_nav: float


def headline(snapshots: Sequence[Snapshot], opening: float | None = None) -> Headline:
    """Total return, CAGR, volatility, Sharpe, max drawdown of the daily NAVs from the opening NAV
    (CAGR_HELP: the same definition as `tradebot simulate`), and of SPY from its first price."""
    days = daily(snapshots)
    start, end = days[0].day, days[-1].day
    bench = benchmark_values(days)
    bperf = performance([p for _s, p in bench], bench[0][0].day, end) if bench else None
    return Headline(from_opening(opening, [s.nav for s in days], start, end), bperf, start, end,
                    bench[0][0].day if bench else None,
                    opening if opening is not None else days[0].nav, days[-1].nav)


# ---------------------------------------------------------------- HTML helpers

def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _money(v: float | None) -> str:
    return "" if v is None else f"{v:,.2f}"


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v:.2%}"


def _qty(v: object) -> str:
    return f"{v:,.4f}" if isinstance(v, (int, float)) else _e(v)


def _num(text: str, value: float | None = None) -> str:
    neg = " neg" if value is not None and value < 0 else ""
    return f'<td class="num{neg}">{_e(text)}</td>'


def _table(table_id: str, head: Iterable[str], rows: Iterable[str], foot: str = "") -> str:
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    tfoot = f"<tfoot>{foot}</tfoot>" if foot else ""
    return (f'<table id="{table_id}"><thead><tr>{th}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody>{tfoot}</table>")


def _stamp(ts: object) -> str:
    if isinstance(ts, datetime):
        ts = format_timestamp(ts)
    return str(ts).replace("T", " ").removesuffix("+00:00") if ts else ""


# ---------------------------------------------------------------- sections

def _headline_section(h: Headline, bench_note: str) -> str:
    def row(name: str, p: Performance, first: str, last: str) -> str:
        return (f"<tr><th>{_e(name)}</th>{_num(_pct(p.total_return), p.total_return)}"
                f"{_num(_pct(p.cagr), p.cagr)}{_num(_pct(p.volatility))}"
                f"{_num(f'{p.sharpe:.2f}', p.sharpe)}{_num(_pct(p.max_drawdown), p.max_drawdown)}"
                f"{_num(first)}{_num(last)}</tr>")
    rows = [row("Strategy", h.strategy, _money(h.first_nav), _money(h.last_nav))]
    if h.benchmark is not None:
        rows.append(row("Buy-and-hold SPY", h.benchmark, "", ""))
    table = _table("headline-table", ["", "Total return", "CAGR", "Volatility", "Sharpe",
                                      "Max drawdown", "Opening NAV", "Last NAV"], rows)
    return (f'<section id="summary"><h2>Headline figures</h2>{table}'
            f'<p class="note">{bench_note} Figures use the last snapshot of each New York '
            "trading day; volatility and Sharpe are annualised over 252 days, risk-free rate 0. "
            f"{_e(CAGR_HELP)}</p></section>")


def _bench_note(h: Headline) -> str:
    if h.bench_start is None:
        return ('<strong class="warn">No benchmark: no snapshot of this trail has a SPY price '
                "(prices[\"SPY\"]), so buy-and-hold SPY is not shown.</strong>")
    if h.bench_start != h.start:
        return (f"Benchmark: buy-and-hold SPY from {_e(h.bench_start)}, the first snapshot with a "
                f"SPY price (the strategy starts {_e(h.start)}).")
    return f"Benchmark: buy-and-hold SPY from the first snapshot, {_e(h.start)}, to {_e(h.end)}."


def _monthly_section(rows: Sequence[MonthRow]) -> str:
    body = []
    for r in rows:
        diff = None if r.benchmark is None else r.strategy - r.benchmark
        body.append(f"<tr><td>{_e(r.month)}</td>{_num(_pct(r.strategy), r.strategy)}"
                    f"{_num(_pct(r.benchmark), r.benchmark)}{_num(_pct(diff), diff)}"
                    f"{_num(_money(r.nav))}</tr>")
    table = _table("monthly-table", ["Month", "Strategy", "SPY", "Difference", "NAV at month end"],
                   body)
    return (f'<section id="monthly"><h2>Returns by month</h2>{table}<p class="note">Each month: its '
            "last NAV over the last NAV of the month before (the first month starts from the "
            "first snapshot).</p></section>")


def _pnl_cells(realized: float, unrealized: float) -> str:
    total = realized + unrealized
    return (f"{_num(_money(realized), realized)}{_num(_money(unrealized), unrealized)}"
            f"{_num(_money(total), total)}")


def _model_label(name: str) -> str:
    return f"{name} (not bought by a model)" if name == EXTERNAL else name


def _drift_note(drifts: Sequence[str]) -> str:
    if not drifts:
        return ""
    return (f' <strong class="warn">{len(drifts):,} snapshot(s) or restart(s) disagree with the '
            f"fills before them (first: {_e(drifts[0])}); the ledger carries on from the recorded "
            f"account and books the difference to {EXTERNAL}.</strong>")


def _models_section(step, drifts: Sequence[str] = ()) -> str:
    if step is None:
        return ""
    rows = [f"<tr><td>{_e(_model_label(name))}</td>{_pnl_cells(b.realized_pnl, b.unrealized_pnl)}"
            f"{_num(_money(b.commission))}{_num(_money(b.nav))}</tr>"
            for name, b in sorted(step.models.items())]
    t = step.total
    foot = (f"<tr><th>Total</th>{_pnl_cells(t.realized_pnl, t.unrealized_pnl)}"
            f"{_num(_money(t.commission))}{_num(_money(t.nav))}</tr>")
    table = _table("models-table", ["Model", "Realized", "Unrealized", "P&L", "Commission",
                                    "NAV"], rows, foot)
    return (f'<section id="models"><h2>P&amp;L by model</h2>{table}<p class="note">From the ledger '
            f"replayed to the end of the trail ({_e(_stamp(step.timestamp))} UTC). P&amp;L is "
            "after commission; unrealized P&amp;L uses the latest price the trail knows."
            f"{_drift_note(drifts)}</p>"
            "</section>")


def _symbols_section(step) -> str:
    if step is None:
        return ""
    models = sorted(step.models)
    symbols = sorted(set(step.total.positions).union(*(b.positions for b in step.models.values())))

    def pnl(positions: Mapping, sym: str) -> float | None:
        p = positions.get(sym)
        return None if p is None else p.realized_pnl + p.unrealized_pnl

    rows, col_sums = [], [0.0] * len(models)
    for sym in symbols:
        cells = []
        for i, m in enumerate(models):
            v = pnl(step.models[m].positions, sym)
            col_sums[i] += v or 0.0
            cells.append(_num(_money(v), v))
        p = step.total.positions.get(sym)
        qty = _qty(p.quantity) if p is not None else ""
        mark = _money(p.mark) if p is not None else ""
        tot = _pnl_cells(p.realized_pnl, p.unrealized_pnl) if p is not None else "<td></td>" * 3
        rows.append(f"<tr><td>{_e(sym)}</td>{_num(qty)}{_num(mark)}{''.join(cells)}{tot}</tr>")
    t = step.total
    foot = ("<tr><th>Total</th><td></td><td></td>"
            + "".join(_num(_money(v), v) for v in col_sums)
            + _pnl_cells(t.realized_pnl, t.unrealized_pnl) + "</tr>")
    head = ["Symbol", "Position", "Mark", *(f"{_model_label(m)} P&L" for m in models),
            "Realized", "Unrealized", "P&L"]
    return (f'<section id="symbols"><h2>P&amp;L by symbol</h2><div class="scroll-x">'
            f"{_table('symbols-table', head, rows, foot)}</div><p class=\"note\">Model columns: "
            "realized + unrealized P&amp;L of that model's sleeve in the symbol. The last three "
            "columns are the whole account's; its realized/unrealized split can differ from the "
            "sum of the sleeves' (one average cost for the account), their sum does not.</p>"
            "</section>")


def _trades_section(data: ReportData) -> str:
    rows = []
    for r in data.trades:
        rows.append(
            f"<tr><td>{_e(_stamp(r.timestamp))}</td><td>{_e(r.model)}</td>"
            f"<td>{_e(r.symbol)}</td><td>{_e(r.side)}</td>"
            f"{_num(_qty(r.quantity))}{_num(_money(r.price))}"
            f"{_num(_money(r.value))}{_num(_money(r.commission or None))}"
            f"{_num(_money(r.pnl), r.pnl)}{_num(_qty(r.new_position))}"
            f"<td class=\"id\">{_e(r.order_id)}</td></tr>")
    shown = len(data.trades)
    if data.trade_count > shown:
        note = (f"Showing the last {shown:,} of {data.trade_count:,} trades (from "
                f"{_e(_stamp(data.trades[0].timestamp))} UTC); all of them are in "
                f"{TRADES}.")
    else:
        note = f"All {data.trade_count:,} trades, oldest first."
    table = _table("trades-table", ["Time (UTC)", "Model", "Symbol", "Side", "Quantity", "Price",
                                    "Value", "Commission", "Realized P&L", "New position",
                                    "Order id"], rows)
    return (f'<section id="trades"><h2>Trades</h2><p class="note">{note} New position: the '
            f'account\'s, all models together.</p><div class="scroll">{table}</div></section>')


def _error_symbol(record: Problem | UnknownRecord) -> object:
    """The symbol an error names (None for one about the whole cycle, the broker, or of a kind
    this version does not know)."""
    return getattr(record, "symbol", None)


def _error_text(record: Problem | UnknownRecord) -> str:
    return record.describe() if isinstance(record, UnknownRecord) else record.error


def _errors_section(data: ReportData) -> str:
    rows = [f"<tr><td>{_e(_stamp(r.timestamp))}</td><td>{_e(r.event_type)}</td>"
            f"<td>{_e(_error_symbol(r))}</td><td class=\"msg\">{_e(_error_text(r))}</td></tr>"
            for r in data.errors]
    note = f"All {len(data.errors):,} records of {ERRORS}." if data.errors else \
        f"No errors: {ERRORS} is empty."
    if data.unreadable:
        note += (f' <strong class="warn">{len(data.unreadable):,} unreadable line(s) skipped, '
                 f"first: {_e(data.unreadable[0])}.</strong>")
    table = _table("errors-table", ["Time (UTC)", "Event type", "Symbol", "Error"], rows) \
        if rows else ""
    return (f'<section id="errors"><h2>Errors</h2><p class="note">{note}</p>'
            f'<div class="scroll">{table}</div></section>')


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
 margin:0 auto;max-width:1180px;padding:16px 24px;color:#222;background:#fff}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;margin:1.4em 0 .5em;
 border-bottom:1px solid #ddd;padding-bottom:.2em}
nav a{margin-right:1em}.meta{color:#555}.note{color:#555;font-size:.9em}
.warn{color:#b71c1c}table{border-collapse:collapse;font-size:.86em}
th,td{padding:3px 8px;border-bottom:1px solid #eee;text-align:left;white-space:nowrap}
thead th{background:#f5f5f5;position:sticky;top:0}tfoot th,tfoot td{border-top:2px solid #999;
 font-weight:bold}td.num{text-align:right;font-variant-numeric:tabular-nums}td.neg{color:#b71c1c}
td.msg{white-space:normal;max-width:640px}td.id{font-family:monospace;font-size:.9em}
.scroll{max-height:560px;overflow:auto;border:1px solid #eee}.scroll-x{overflow-x:auto}
figure{margin:0}figure svg{width:100%;height:auto}
"""


def _short_run_note(snapshots: Sequence[Snapshot]) -> str:
    """A run of one or two snapshots has no curve to speak of: say so above the charts."""
    if len(snapshots) > 2:
        return ""
    what = "one snapshot" if len(snapshots) == 1 else "two snapshots"
    return (f'<p class="note" id="short-run">Only {what} so far ({_e(_stamp(snapshots[-1].at.isoformat()))} '
            "UTC): the charts show each as a point, centred on its time; a curve appears as "
            "more cycles complete.</p>")


def _removed_note(data: ReportData) -> str:
    """On a trail retention pruned: the figures start at its first retained snapshot."""
    if not data.removed:
        return ""
    first = data.snapshots[0].at.isoformat() if data.snapshots else "-"
    return (f'<p class="meta warn" id="removed"><strong>{_e(data.removed.describe())}: every '
            f"figure starts at the first snapshot after it ({_e(_stamp(first))} UTC), with its "
            "NAV as the opening NAV; P&amp;L by model needs the removed history and is not "
            "shown.</strong></p>")


def render_html(data: ReportData, nav_svg: str, dd_svg: str, h: Headline,
                months: Sequence[MonthRow]) -> str:
    """The whole page. Every text from the trail goes through html.escape."""
    title = f"tradebot report {h.start} to {h.end}"
    links = " ".join(f'<a href="#{i}">{t}</a>' for i, t in [
        ("summary", "Headline"), ("nav", "NAV"), ("drawdown", "Drawdown"),
        ("monthly", "Monthly"), ("models", "By model"), ("symbols", "By symbol"),
        ("trades", "Trades"), ("errors", "Errors")])
    meta = (f"{_e(h.start)} to {_e(h.end)} (New York dates) &middot; {len(data.snapshots):,} "
            f"cycles &middot; {data.trade_count:,} trades &middot; {len(data.errors):,} errors "
            f"&middot; trail: <code>{_e(data.log_dir)}</code>")
    return "".join([
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f'<header><h1>{_e(title)}</h1><p class="meta">{meta}</p>{_removed_note(data)}'
        f"<nav>{links}</nav></header>",
        _headline_section(h, _bench_note(h)),
        f'<section id="nav"><h2>NAV</h2>{_short_run_note(data.snapshots)}'
        f'<figure id="nav-chart">{nav_svg}</figure></section>',
        f'<section id="drawdown"><h2>Drawdown</h2><figure id="drawdown-chart">{dd_svg}</figure>'
        "</section>",
        _monthly_section(months), _models_section(data.last_step, data.drifts),
        _symbols_section(data.last_step), _trades_section(data), _errors_section(data),
        "</body></html>\n"])


# ---------------------------------------------------------------- writing

def _chart_series(data: ReportData):
    from bot.review.charts import Series
    snaps = data.snapshots if len(data.snapshots) <= MAX_CHART_POINTS else daily(data.snapshots)
    strategy = Series("Strategy NAV", [s.at for s in snaps], [s.nav for s in snaps])
    bench = benchmark_values(snaps)
    if not bench:
        return strategy, None
    scale = bench[0][0].nav / bench[0][1]  # SPY bought with the NAV of its first snapshot
    return strategy, Series("Buy-and-hold SPY", [s.at for s, _p in bench],
                            [p * scale for _s, p in bench])


def _write_atomically(path: Path, write, mode: int = PRIVATE) -> None:
    """Write through a temporary file created with `mode` (never wider, whatever the umask),
    then rename it into place."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.unlink(missing_ok=True)
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode))
        os.chmod(tmp, mode)  # os.open's mode is narrowed by the umask; the user's choice is not
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_report(log_dir: Path, out_html: Path, png: Path | None = None, *,
                 max_trades: int = MAX_TRADE_ROWS, mode: int = PRIVATE) -> ReportSummary:
    """Write the HTML report of the trail in `log_dir` and the NAV chart PNG (default: next to
    the HTML as `<stem>.png`), both with `mode` (0600: as private as the trail), into existing
    directories. Raises NothingToReport when the trail has no snapshot."""
    png = png if png is not None else out_html.with_suffix(".png")
    data = collect(log_dir, max_trades)
    from bot.review.charts import drawdown_figure, nav_figure, save_png, titled, to_svg

    h = headline(data.snapshots, data.opening)
    strategy, bench = _chart_series(data)
    nav_fig = nav_figure(strategy, bench)
    page = render_html(data, to_svg(nav_fig), to_svg(drawdown_figure(strategy, bench)), h,
                       monthly_returns(daily(data.snapshots), data.opening))
    _write_atomically(out_html, lambda p: p.write_text(page, encoding="utf-8"), mode)
    spy = "" if h.benchmark is None else f", SPY {h.benchmark.total_return:+.2%}"
    titled(nav_fig, f"NAV {h.start} to {h.end}: {h.strategy.total_return:+.2%}{spy}")
    _write_atomically(png, lambda p: save_png(nav_fig, p), mode)
    return ReportSummary(out_html, png, h.start, h.end, len(data.snapshots), data.trade_count,
                         len(data.errors))
