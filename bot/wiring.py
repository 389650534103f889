"""The one place that builds the bot from settings: clock, market data, broker, trail, models.

No `if simulated:` below this module: the cycle only sees the ports.
"""
from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import Callable, TextIO

from audit.records import AuditKeyGenerated
from audit.trail import AuditTrail
from audit.writer import AuditKeyMismatch, PlantedLink, UnsafeDirectory
from bot.adapters import inbox
from bot.adapters.sim_broker import SimBrokerConfig, SimulatedBroker
from bot.adapters.state_store import StateStore
from bot.audit_key import is_generated, load_key
from bot.core import calendar as nyse
from bot.core.clock import Clock
from bot.core.cycle import Bot, CycleDeps, CyclePolicy, KillSwitch, ModelShare, no_notes
from bot.core.domain import OrderType
from bot.core.errors import ConfigError
from bot.core.layout import ACCOUNT_DB, KILL_SWITCH_FILE, STATE_DB, heartbeat_path, inbox_path
from bot.core.observers import CycleObserver
from bot.core.planning import RiskLimits
from bot.core.ports import MarketCalendar, MarketData
from bot.settings import Settings, parse_symbols
from models.registry import build_model


def post_note(data_dir: Path, kind: str, message: str, details: dict) -> None:
    """Leave a note in the data directory's inbox for the bot running there: the way a process
    that may not write the trail (one writer per file) gets a record into events.jsonl."""
    inbox.post(inbox_path(data_dir), kind, message, details)


def build_market(settings: Settings, csv_dir: Path | None = None) -> MarketData:
    directory = csv_dir or settings.csv_dir
    if directory is not None:
        from bot.adapters.csv_data import CsvMarketData
        return CsvMarketData(directory, settings.max_close_move)
    from bot.adapters.synthetic_data import SyntheticMarket
    return SyntheticMarket(settings.seed)


def unusable_csv_symbols(settings: Settings, directory: Path) -> tuple[list[str], list[str]]:
    """The models' symbols, and why each one the CSV directory cannot give is unusable."""
    from bot.adapters.csv_data import CsvMarketData
    market = CsvMarketData(directory)
    symbols = sorted({sym for share in build_models(settings) for sym in share.model.symbols})
    return symbols, [why for sym in symbols if (why := market.unusable(sym)) is not None]


def build_models(settings: Settings) -> tuple[ModelShare, ...]:
    params = dict(lookback=settings.sector_lookback, top_n=settings.sector_top_n,
                  trend_window=settings.sector_trend_window,
                  trend_symbol=settings.sector_trend_symbol,
                  defensive_symbol=settings.sector_defensive_symbol,
                  symbols=tuple(parse_symbols(settings.equal_weight_symbols)))
    return tuple(ModelShare(build_model(name, **params), share)
                 for name, share in settings.model_shares)


def build_limits(settings: Settings) -> RiskLimits:
    return RiskLimits(min_trade_value=settings.min_trade_value,
                      rebalance_band=settings.rebalance_band, cash_buffer=settings.cash_buffer,
                      max_position_weight=settings.max_position_weight,
                      max_order_value=settings.max_order_value, fractional=settings.fractional,
                      kill_switch=False, order_type=OrderType(settings.order_type),
                      limit_offset_bps=settings.limit_offset_bps)


def build_alpaca(settings: Settings, clock: Clock, sleep: Callable[[float], None] | None = None,
                 read_listeners: list | None = None,
                 give_up_reads: Callable[[], bool] | None = None):
    """Broker, market data and calendar on Alpaca paper, each SDK client hardened; their reads
    tell `read_listeners` of each retry (a list that may be filled later) and stop retrying
    when `give_up_reads()` says so."""
    from alpaca.trading.client import TradingClient

    from bot.adapters.alpaca.broker import AlpacaBroker
    from bot.adapters.alpaca.data import AlpacaCalendar, AlpacaMarketData
    from bot.adapters.alpaca.edge import Reader, harden

    key, secret = _alpaca_keys(settings)
    trading = harden(TradingClient(key, secret, paper=True, url_override=settings.alpaca_trading_url),
                     settings.http_timeout)
    data = _alpaca_data_client(settings)
    read = Reader(settings.read_retries, sleep, give_up=give_up_reads)
    if read_listeners is not None:
        read.listeners = read_listeners
    return (AlpacaBroker(trading, clock, read),
            AlpacaMarketData(data, settings.alpaca_feed, clock, read),
            AlpacaCalendar(trading, clock, read))


def _alpaca_keys(settings: Settings) -> tuple[str, str]:
    assert settings.alpaca_api_key is not None and settings.alpaca_secret_key is not None
    return settings.alpaca_api_key.get_secret_value(), settings.alpaca_secret_key.get_secret_value()


def _alpaca_data_client(settings: Settings):
    from alpaca.data.historical import StockHistoricalDataClient

    from bot.adapters.alpaca.edge import harden
    key, secret = _alpaca_keys(settings)
    return harden(StockHistoricalDataClient(key, secret, url_override=settings.alpaca_data_url),
                  settings.http_timeout)


def build_market_data(settings: Settings) -> MarketData:
    """The market data the configured bot reads, and nothing else (no broker, trail or account):
    CSV files or the synthetic market as `build_bot` does, or Alpaca's data API."""
    if settings.broker != "alpaca":
        return build_market(settings)
    from bot.adapters.alpaca.data import AlpacaMarketData
    from bot.adapters.alpaca.edge import Reader
    from bot.core.clock import SystemClock
    return AlpacaMarketData(_alpaca_data_client(settings), settings.alpaca_feed, SystemClock(),
                            Reader(settings.read_retries))


def build_bot(settings: Settings, clock: Clock, *, live: bool, log_dir: Path | None = None,
              csv_dir: Path | None = None, echo: TextIO | None = None,
              sleep: Callable[[float], None] = time.sleep,
              give_up_reads: Callable[[], bool] | None = None) -> Bot:
    """`live=True`: the configured broker (a durable simulated account in the data directory, or
    Alpaca paper) and a fsynced trail (run, cycle). `live=False`: a fresh in-memory simulated
    account and a buffered trail (simulate never touches a live account). `give_up_reads()`
    true: Alpaca reads stop retrying (`run` asked to stop while it starts)."""
    data_dir = settings.data_dir
    calendar: MarketCalendar = nyse
    read_listeners: list = []  # told of each retried broker read, once the trail exists
    if live and settings.broker == "alpaca":
        broker, market, calendar = build_alpaca(settings, clock, sleep, read_listeners,
                                                give_up_reads)
    else:
        market = build_market(settings, csv_dir)
        broker = SimulatedBroker(market, clock, SimBrokerConfig(
            starting_cash=settings.starting_cash, slippage_bps=settings.slippage_bps,
            commission=settings.commission, fractional=settings.fractional,
            margin_multiplier=settings.margin_multiplier,
            nyse_hours=settings.effective_market_hours == "nyse"),
            data_dir / ACCOUNT_DB if live else None)
    journal = StateStore(data_dir / STATE_DB if live else None)
    key, origin = load_key(settings, create=True)
    trail = build_trail(settings, clock, key, live=live, log_dir=log_dir, echo=echo)
    observers = build_observers(settings, trail, clock, key) if live else ()
    read_listeners.extend(read_retry_listeners(trail, observers))
    if is_generated(origin):
        key_file = Path(origin.removeprefix("generated ")).resolve()
        trail.record(AuditKeyGenerated(
            message=f"no BOT_AUDIT_KEY or BOT_AUDIT_KEY_FILE: an audit key was generated in "
                    f"{key_file}; keep it, and back it up apart from the logs: it verifies this "
                    "trail", key_file=str(key_file)))
    kill = KillSwitch(settings.kill_switch, data_dir / KILL_SWITCH_FILE if live else None)
    deps = CycleDeps(clock, market, broker, trail, journal, build_models(settings),
                     calendar=calendar, sleep=sleep)
    policy = CyclePolicy(build_limits(settings), kill, reconcile=settings.reconcile,
                         fill_timeout=settings.fill_timeout)
    return Bot(deps, policy, observers=observers,
               take_notes=partial(inbox.drain, inbox_path(data_dir)) if live else no_notes)


def read_retry_listeners(trail: AuditTrail, observers: tuple) -> list:
    """A retried broker read leaves a WARN line in production.log and counts in the metrics."""
    def log(retry) -> None:
        trail.log("WARN", retry.describe())
    counters = [o.broker_read_retried for o in observers if hasattr(o, "broker_read_retried")]
    return [log, *(lambda retry, count=count: count(retry.operation) for count in counters)]


def build_trail(settings: Settings, clock: Clock, key: bytes, *, live: bool,
                log_dir: Path | None = None, echo: TextIO | None = None) -> AuditTrail:
    """The trail, anchored in the data directory (simulate too); live trails also send each
    checkpoint's anchor line to the console, BOT_ANCHOR_FILE and BOT_ANCHOR_URL. A trail signed
    with another key stops here with one line (exit 2)."""
    post = None
    if live and settings.anchor_url is not None:
        from bot.watch.anchor_post import AnchorPoster
        post = AnchorPoster(settings.anchor_url.get_secret_value())
    try:
        return AuditTrail(log_dir or settings.log_dir, clock, durable=live, key=key, echo=echo,
                          max_bytes=settings.log_max_bytes, backups=settings.log_backups,
                          compress=settings.log_compress, data_dir=settings.data_dir,
                          archive_dir=settings.log_archive_dir if live else None,
                          anchor_console=settings.anchor_console,
                          anchor_file=settings.anchor_file if live else None, anchor_post=post)
    except (AuditKeyMismatch, UnsafeDirectory, PlantedLink) as exc:
        raise ConfigError(str(exc)) from None


def build_observers(settings: Settings, trail: AuditTrail, clock: Clock,
                    key: bytes | None = None) -> tuple[CycleObserver, ...]:
    """What watches a live bot: the heartbeat `tradebot health` reads (always), metrics
    (BOT_METRICS_PORT) and alerts (BOT_ALERT_WEBHOOK_URL), both off by default; these two hear
    every record the trail writes and every cycle. Last, the trail's self-verify
    (BOT_SELF_VERIFY_INTERVAL, with `key`), which tells the metrics and the alerts."""
    observers: list = []
    if settings.metrics_port is not None:
        from bot.watch.prometheus import Metrics
        metrics = Metrics()
        metrics.serve(settings.metrics_host, settings.metrics_port)  # one-line ConfigError if taken
        observers.append(metrics)
    if settings.alert_webhook_url is not None:
        from bot.watch.alerts import WebhookAlerts
        observers.append(WebhookAlerts(settings.alert_webhook_url.get_secret_value(),
                                       settings.alert_after_failures, clock=clock, log=trail.log))
    trail.listeners.extend(observers)
    if key is not None and settings.self_verify_interval > 0:
        from functools import partial

        from bot.watch.selfcheck import SelfVerify, verify_trail
        self_verify = SelfVerify(trail.log_dir, key, settings.self_verify_interval, trail,
                                 clock.now, targets=list(observers),
                                 verify=partial(verify_trail, anchor=trail.anchor,
                                                archive_dir=settings.log_archive_dir))
        trail.listeners.append(self_verify)  # no verify while the trail cannot be written
        observers.append(self_verify)
    from bot.watch.heartbeat import Heartbeat
    heartbeat = Heartbeat(heartbeat_path(settings.data_dir), {
        "schedule": settings.schedule, "market_hours": settings.effective_market_hours,
        "broker": settings.broker}, now=clock.now)
    return (heartbeat, *observers)
