"""Fast-forward through history: one cycle per NYSE trading day, 15 minutes before its close.

That is 15:45 New York time, and 12:45 on early-close days (13:00 close): a slot after the day's
close is not a trading slot, and skipping the day would leave a trading day untraded.

The same `run_cycle`, broker fill model and audit files as `run`, on a fresh in-memory paper
account and a simulated clock. Refuses a log directory that already holds records.
"""
from __future__ import annotations

import sys
import time as timer
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TextIO

from audit.records import EventRecorded, STREAMS
from bot import calendar, tradebot_version
from bot.bootstrap import build_bot
from bot.clock import SimulatedClock
from bot.errors import ConfigError, DataError
from bot.metrics import Performance, performance
from bot.cycle import BENCHMARK, record_account
from bot.runner import guarded_cycle
from bot.settings import Settings

BEFORE_CLOSE = timedelta(minutes=15)  # each day's slot: 15:45 New York, 12:45 on early closes


@dataclass(frozen=True, slots=True)
class SimulationResult:
    days: int
    strategy: Performance
    benchmark: Performance | None
    orders: int
    trades: int
    errors: int
    log_dir: Path
    final_nav: float
    loop_seconds: float  # the cycle loop alone (no start-up, imports or data generation)


def ensure_empty(log_dir: Path) -> None:
    """Refuse a directory that already holds records (two runs never mix)."""
    if not log_dir.exists():
        return
    for name in STREAMS:
        for f in sorted(log_dir.glob(name + "*")):
            if f.is_file() and f.stat().st_size > 0:
                raise ConfigError(f"{log_dir} already holds records ({f.name} is not empty): "
                                  "give --out an empty directory, or move the old logs away")


def slots(start: date, end: date) -> list[datetime]:
    """Each trading day's slot, in UTC: 15 minutes before that session's close."""
    return [_session_close(d) - BEFORE_CLOSE for d in calendar.trading_days(start, end)]


def _session_close(d: date) -> datetime:
    session = calendar.session(d)
    assert session is not None, d  # trading_days gives only days with a session
    return session[1]


def simulate(settings: Settings, start: date, end: date, log_dir: Path,
             csv_dir: Path | None = None, progress: TextIO | None = sys.stderr) -> SimulationResult:
    if end < start:
        raise ConfigError(f"--end {end} is before --start {start}: give an end on or after the start")
    days = slots(start, end)
    if not days:
        raise ConfigError(f"no NYSE trading day between {start} and {end}: widen the range")
    ensure_empty(log_dir)
    clock = SimulatedClock(days[0])
    bot = build_bot(settings, clock, live=False, log_dir=log_dir, csv_dir=csv_dir)
    bot.trail.record(EventRecorded("simulation_started", f"simulating {start} to {end} "
                                   f"({len(days)} trading days)", {
                                       "start": start.isoformat(), "end": end.isoformat(),
                                       "days": len(days), "seed": settings.seed,
                                       "csv_dir": str(csv_dir or settings.csv_dir or ""),
                                       "settings_sha256": settings.fingerprint(),
                                       "version": tradebot_version()}))
    record_account(bot, bot.broker.account(), "simulated broker")
    _warm_up(bot, days[-1])
    navs: list[float] = []
    bench: list[float] = []
    bar = _Progress(len(days), progress)
    orders = trades = errors = 0
    started = timer.perf_counter()
    try:
        for i, slot in enumerate(days):
            clock.set(slot)
            out = guarded_cycle(bot, slot)
            if out is not None:
                navs.append(out.nav)
                orders += out.orders
                trades += out.fills
                errors += out.errors
            else:
                errors += 1
            try:
                bench.append(bot.market.price(BENCHMARK, slot))
            except DataError:
                pass
            bar.update(i + 1)
        loop_seconds = timer.perf_counter() - started
        bot.trail.record(EventRecorded("simulation_finished", f"simulated {len(days)} days", {
            "days": len(days), "orders": orders, "trades": trades}))
    finally:
        bar.close()
        bot.trail.close()
    return SimulationResult(
        len(days), performance(navs, start, end),
        performance(bench, start, end) if len(bench) == len(days) else None,
        orders, trades, errors, log_dir, navs[-1] if navs else 0.0, loop_seconds)


def _warm_up(bot, last_slot: datetime) -> None:
    """Generate or load every model's data up to the last day before the loop starts."""
    day = last_slot.astimezone(calendar.NY).date()
    for ms in bot.models:
        bot.market.history(ms.model.symbols, day, 1)


class _Progress:
    """A plain progress bar on stderr; a few lines only when it is not a terminal."""

    def __init__(self, total: int, out: TextIO | None) -> None:
        self.total, self.out = total, out
        self.tty = bool(out and out.isatty())
        self.step = max(1, total // (50 if self.tty else 4))

    def update(self, n: int) -> None:
        if self.out is None or (n % self.step and n != self.total):
            return
        frac = n / self.total
        bar = "#" * int(frac * 30)
        line = f"simulating [{bar:<30}] {frac:6.1%} {n}/{self.total} days"
        self.out.write(("\r" + line) if self.tty else line + "\n")
        self.out.flush()

    def close(self) -> None:
        if self.out is not None and self.tty:
            self.out.write("\n")
            self.out.flush()


def format_summary(r: SimulationResult) -> str:
    def row(name: str, p: Performance) -> str:
        return (f"  {name:<16}{p.total_return:>10.2%}{p.cagr:>9.2%}{p.volatility:>9.2%}"
                f"{p.sharpe:>8.2f}{p.max_drawdown:>10.2%}")
    lines = [f"simulated {r.days} trading days; final NAV {r.final_nav:,.2f}",
             f"  {'':<16}{'return':>10}{'CAGR':>9}{'vol':>9}{'Sharpe':>8}{'max DD':>10}",
             row("strategy", r.strategy)]
    if r.benchmark is not None:
        lines.append(row("buy&hold SPY", r.benchmark))
    lines.append(f"orders {r.orders}, trades {r.trades}, errors {r.errors}")
    lines.append(f"logs in {r.log_dir}")
    return "\n".join(lines)
