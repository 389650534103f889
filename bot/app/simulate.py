"""Fast-forward through history: one cycle per NYSE trading day, 15 minutes before its close.

That is 15:45 New York time, and 12:45 on early-close days (13:00 close): a slot after the day's
close is not a trading slot, and skipping the day would leave a trading day untraded.

The same `run_cycle`, broker fill model and audit files as `run`, on a fresh in-memory paper
account and a simulated clock. Refuses a log directory that already holds records.
"""
from __future__ import annotations

import hashlib
import sys
import time as timer
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TextIO

from audit.records import STREAMS, SimulationFinished, SimulationStarted
from bot import tradebot_version
from bot.app.directories import check_directories
from bot.app.runner import guarded_cycle
from bot.core import calendar
from bot.core.clock import SimulatedClock
from bot.core.cycle import CycleDeps, record_account
from bot.core.domain import BENCHMARK
from bot.core.errors import ConfigError, DataError
from bot.core.layout import key_path
from bot.core.scheduling import simulation_slots
from bot.review.performance import Performance, from_opening, performance
from bot.settings import Settings
from bot.wiring import build_bot, unusable_csv_symbols

MOSTLY_HELD = 0.5  # above this share of days held for lack of data, the summary warns


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
    held_days: int = 0  # days on which every model held for lack of data
    benchmark_start: date | None = None  # the first day with a SPY price
    benchmark_missing: str | None = None  # why there is no benchmark row
    first_day: date | None = None  # the first cycle's New York date
    last_day: date | None = None
    opening_nav: float | None = None  # the account before the first trade: the returns' base


def ensure_empty(log_dir: Path) -> None:
    """Refuse a directory that already holds records (two runs never mix)."""
    if not log_dir.exists():
        return
    for name in STREAMS:
        for f in sorted(log_dir.glob(name + "*")):
            if f.is_file() and f.stat().st_size > 0:
                raise ConfigError(f"{log_dir} already holds records ({f.name} is not empty): "
                                  "give --out an empty directory, or move the old logs away")


def check_inputs(settings: Settings, start: date, end: date,
                 csv_dir: Path | None = None) -> list[datetime]:
    """The simulation's slots, or a ConfigError for a range or CSV directory that cannot be
    simulated: called before anything is created or written."""
    first, last = date(calendar.FIRST_YEAR, 1, 1), date(calendar.LAST_YEAR, 12, 31)
    for flag, day in (("--start", start), ("--end", end)):
        if not first <= day <= last:
            raise ConfigError(f"{flag} {day} is outside the trading calendar: give dates from "
                              f"{first} to {last}")
    if end < start:
        raise ConfigError(f"--end {end} is before --start {start}: give an end on or after the start")
    days = simulation_slots(start, end)
    if not days:
        raise ConfigError(f"no NYSE trading day between {start} and {end}: widen the range")
    directory = csv_dir or settings.csv_dir
    if directory is not None:
        check_csv_dir(Path(directory), settings)
    return days


def check_csv_dir(directory: Path, settings: Settings) -> None:
    """A CSV directory that is missing or empty, or where no symbol of any model has a usable
    file, stops the simulation (it would only hold cash); a few missing symbols do not."""
    flag = "--csv-dir (or BOT_CSV_DIR)"
    if not directory.is_dir():
        raise ConfigError(f"the CSV directory {directory} does not exist or is not a directory: "
                          f"give {flag} a directory of SYMBOL.csv files, or unset both for the "
                          "synthetic market")
    if not any(directory.glob("*.csv")):
        raise ConfigError(f"the CSV directory {directory} holds no SYMBOL.csv file: add daily "
                          f"bars (Date,Open,High,Low,Close,Volume) for the models' symbols, or "
                          f"give {flag} another directory")
    symbols, reasons = unusable_csv_symbols(settings, directory)
    if len(reasons) == len(symbols):
        raise ConfigError(f"no symbol of the models ({', '.join(symbols)}) has usable data in the "
                          f"CSV directory {directory} (first: {reasons[0]}): add their "
                          f"SYMBOL.csv files, or give {flag} another directory")


def simulation_id(settings: Settings, start: date, end: date, csv_dir: Path | None) -> str:
    """The run id of a simulation, derived from all it depends on (version, settings, range,
    data): simulating the same thing again gives the same trail, byte for byte, id included."""
    inputs = "\n".join(("simulate", tradebot_version(), settings.fingerprint(), start.isoformat(),
                         end.isoformat(), str(csv_dir or settings.csv_dir or "")))
    return hashlib.sha256(inputs.encode()).hexdigest()[:32]


def simulate(settings: Settings, start: date, end: date, log_dir: Path,
             csv_dir: Path | None = None, progress: TextIO | None = sys.stderr) -> SimulationResult:
    days = check_inputs(settings, start, end, csv_dir)
    ensure_empty(log_dir)
    clock = SimulatedClock(days[0])
    bot = build_bot(settings, clock, live=False, log_dir=log_dir, csv_dir=csv_dir)
    bot.deps.trail.record(SimulationStarted(
        message=f"simulating {start} to {end} ({len(days)} trading days)", start=start, end=end,
        days=len(days), seed=settings.seed, csv_dir=str(csv_dir or settings.csv_dir or ""),
        settings_sha256=settings.fingerprint(), version=tradebot_version(),
        run_id=simulation_id(settings, start, end, csv_dir)))
    opening = bot.deps.broker.account()
    record_account(bot.deps.trail, opening, "simulated broker")
    _warm_up(bot.deps, days[-1])
    navs: list[float] = []
    bench: list[float] = []
    bench_start: date | None = None
    bench_missing: str | None = None
    bar = _Progress(len(days), progress)
    orders = trades = errors = held = 0
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
                held += out.held_for_data == len(bot.deps.models)
            else:
                errors += 1
            try:
                bench.append(bot.deps.market.price(BENCHMARK, slot))
                bench_start = bench_start or _day(slot)
            except DataError as exc:
                bench_missing = bench_missing or exc.reason
            bar.update(i + 1)
        loop_seconds = timer.perf_counter() - started
        bot.deps.trail.record(SimulationFinished(message=f"simulated {len(days)} days", days=len(days),
                                            orders=orders, trades=trades))
    finally:
        bar.close()
        bot.deps.trail.close()
    first, last = _day(days[0]), _day(days[-1])
    return SimulationResult(
        len(days), from_opening(opening.nav, navs, first, last),
        performance(bench, bench_start, last) if bench_start else None,
        orders, trades, errors, log_dir, navs[-1] if navs else 0.0, loop_seconds, held,
        bench_start, None if bench else f"{BENCHMARK} has no price in this range ({bench_missing})",
        first, last, opening.nav)


def _day(slot: datetime) -> date:
    return slot.astimezone(calendar.NY).date()


def _warm_up(deps: CycleDeps, last_slot: datetime) -> None:
    """Generate or load every model's data up to the last day before the loop starts."""
    day = last_slot.astimezone(calendar.NY).date()
    for ms in deps.models:
        deps.market.history(ms.model.symbols, day, 1)


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
    span = f" ({r.first_day} to {r.last_day})" if r.first_day else ""
    opening = f"opening NAV {r.opening_nav:,.2f}, " if r.opening_nav is not None else ""
    lines = [f"simulated {r.days} trading day{'s' if r.days != 1 else ''}{span}; {opening}final NAV {r.final_nav:,.2f} "
             "(return and CAGR from the opening NAV: see --help)",
             f"  {'':<16}{'return':>10}{'CAGR':>9}{'vol':>9}{'Sharpe':>8}{'max DD':>10}",
             row("strategy", r.strategy)]
    if r.benchmark is not None:
        lines.append(row(f"buy&hold {BENCHMARK}", r.benchmark))
        if r.benchmark_start is not None and r.benchmark_start != r.first_day:
            lines.append(f"  ({BENCHMARK} from {r.benchmark_start}, its first price in this range)")
    else:
        lines.append(f"  no buy&hold {BENCHMARK} row: {r.benchmark_missing}")
    lines.append(f"orders {r.orders}, trades {r.trades}, errors {r.errors}")
    if r.held_days:
        lines.append(f"the models held (not enough data to decide) on {r.held_days:,} of "
                     f"{r.days:,} days")
        if r.held_days > MOSTLY_HELD * r.days:
            lines.append("warning: that is most of the run, so return, CAGR and volatility are "
                         "diluted by days of holding cash: start the run where the data begins")
    lines.append(f"logs in {r.log_dir}")
    return "\n".join(lines)


def simulate_command(settings: Settings, start: date, end: date, log_dir: Path,
                     csv_dir: Path | None = None) -> tuple[SimulationResult, Path | None]:
    """`tradebot simulate`: the dates, data and directories checked before anything is created,
    then the simulation. Also the audit key's path when this run generated it (no key was set
    or kept), so that the user is told to keep it."""
    check_inputs(settings, start, end, csv_dir)  # before any directory is created
    check_directories(log_dir, settings.data_dir)  # the data directory may get the generated key
    key = key_path(settings.data_dir)
    generates_key = settings.audit_key is None and settings.audit_key_file is None and not key.exists()
    result = simulate(settings, start, end, log_dir, csv_dir=csv_dir)
    return result, key.resolve() if generates_key and key.exists() else None
