"""Metrics: real cycles on a real (durable) trail, scraped over HTTP on 127.0.0.1, match the files."""
from __future__ import annotations

import socket
import urllib.request
from collections import Counter
from datetime import timedelta

import orjson
import pytest

from bot.app.runner import guarded_cycle
from bot.core.errors import ConfigError
from bot.settings import Settings
from bot.watch.prometheus import Metrics
from bot.wiring import build_bot
from tests.bot.watch.endpoints import scrape, value
from tests.fakes import SLOT, FakeClock, fill_disk, make_bot, utc

pytestmark = pytest.mark.usefixtures("no_bot_env")


@pytest.fixture
def metrics():
    m = Metrics()
    yield m
    m.close()


def lines(log_dir, name):
    return [orjson.loads(x) for x in (log_dir / name).read_bytes().splitlines()]


def attach(bot, m: Metrics) -> None:
    bot.deps.trail.listeners.append(m)
    bot.observers = (*bot.observers, m)


@pytest.mark.slow
def test_scraped_figures_match_the_trail(tmp_path, metrics):
    bot = make_bot(tmp_path, reject={"QQQ": "Insufficient buying power"})
    attach(bot, metrics)
    metrics.serve("127.0.0.1", 0)
    slots = [SLOT + timedelta(minutes=15 * i) for i in range(4)]

    guarded_cycle(bot, slots[0])  # SPY and TLT filled, QQQ rejected
    bot.deps.clock.t = slots[1]
    bot.deps.market.prices["QQQ"] = float("nan")  # QQQ, refused before, now has no price: price_error
    guarded_cycle(bot, slots[1])
    bot.deps.clock.t = slots[2]
    real_account = bot.deps.broker.account
    bot.deps.broker.account = lambda: (_ for _ in ()).throw(RuntimeError("broker fell over"))
    guarded_cycle(bot, slots[2])  # cycle_error, a failed cycle
    bot.deps.broker.account = real_account
    bot.deps.market.prices["QQQ"] = 400.0
    bot.deps.clock.t = slots[3]
    (tmp_path / "KILL_SWITCH").touch()
    guarded_cycle(bot, slots[3])  # kill switch blocks the QQQ buy

    s = scrape(metrics.port)
    logs = tmp_path / "logs"
    orders, trades = lines(logs, "orders.jsonl"), lines(logs, "trades.jsonl")
    errors, perf = lines(logs, "errors.jsonl"), lines(logs, "performance.jsonl")
    events = lines(logs, "events.jsonl")
    assert orders and trades and len(perf) == 3
    assert value(s, "tradebot_orders_total") == len(orders)
    assert value(s, "tradebot_fills_total") == len(trades)
    by_type = Counter(e["event_type"] for e in errors)
    assert set(by_type) == {"order_error", "price_error", "cycle_error"}
    for kind, n in by_type.items():
        assert value(s, "tradebot_errors_total", event_type=kind) == n, kind
    assert value(s, "tradebot_order_rejects_total") == by_type["order_error"]
    assert value(s, "tradebot_errors_total", event_type="data_error") == 0  # known, pre-set
    assert value(s, "tradebot_nav_dollars") == perf[-1]["nav"]
    assert value(s, "tradebot_cash_dollars") == perf[-1]["cash"]
    assert value(s, "tradebot_positions") == perf[-1]["positions_count"] == 2
    assert value(s, "tradebot_kill_switch_engaged_total") == sum(
        e["event_type"] == "kill_switch_engaged" for e in events) == 1
    assert value(s, "tradebot_cycles_total", outcome="completed") == 3
    assert value(s, "tradebot_cycles_total", outcome="failed") == 1
    duration = value(s, "tradebot_last_cycle_duration_seconds")
    assert duration > 0
    assert value(s, "tradebot_last_cycle_slot_timestamp_seconds") == slots[3].timestamp()
    assert value(s, "tradebot_last_cycle_timestamp_seconds") == pytest.approx(
        slots[3].timestamp() + duration)
    fsyncs = value(s, "tradebot_fsync_seconds_count")
    assert fsyncs > 0
    assert value(s, "tradebot_fsync_seconds_bucket", le="+Inf") == fsyncs
    assert value(s, "tradebot_fsync_seconds_bucket", le="0.0005") <= fsyncs
    assert value(s, "tradebot_audit_write_failures_total") == 0
    assert value(s, "tradebot_halted") == 0
    assert value(s, "tradebot_up") == 1


@pytest.mark.slow
def test_a_bot_built_like_the_cli_reports_its_cycles(tmp_path, metrics):
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", log_dir=tmp_path / "logs",
                        models="EqualWeightModel_v1", audit_key="test-audit-key-0123456789")
    bot = build_bot(settings, FakeClock(utc(2025, 3, 3, 15, 0)), live=True,
                    sleep=lambda s: None)
    attach(bot, metrics)
    metrics.serve("127.0.0.1", 0)
    guarded_cycle(bot, utc(2025, 3, 3, 15, 0))
    bot.deps.clock.t = utc(2025, 3, 3, 15, 15)
    guarded_cycle(bot, utc(2025, 3, 3, 15, 15))
    s = scrape(metrics.port)
    logs = tmp_path / "logs"
    perf = lines(logs, "performance.jsonl")
    assert len(perf) == 2 == value(s, "tradebot_cycles_total", outcome="completed")
    assert value(s, "tradebot_orders_total") == len(lines(logs, "orders.jsonl")) > 0
    assert value(s, "tradebot_fills_total") == len(lines(logs, "trades.jsonl")) > 0
    assert value(s, "tradebot_nav_dollars") == perf[-1]["nav"]
    bot.deps.trail.close()
    bot.deps.journal.close()
    bot.deps.broker.close()


@pytest.mark.slow
def test_a_failing_write_and_a_halt_show(tmp_path, metrics, monkeypatch):
    bot = make_bot(tmp_path)
    attach(bot, metrics)
    fill_disk(tmp_path / "logs" / "decisions.jsonl", monkeypatch.setattr)  # every write: ENOSPC
    with pytest.raises(Exception, match="audit trail cannot be written"):
        guarded_cycle(bot, SLOT)
    metrics.halted("the audit trail cannot be written")
    metrics.serve("127.0.0.1", 0)
    s = scrape(metrics.port)
    assert value(s, "tradebot_audit_write_failures_total") == 1
    assert value(s, "tradebot_halted") == 1
    assert value(s, "tradebot_cycles_total", outcome="failed") == 1
    assert value(s, "tradebot_orders_total") == 0 == len(lines(tmp_path / "logs", "orders.jsonl"))


@pytest.mark.slow
def test_each_metrics_has_its_own_registry_and_close_stops_serving(tmp_path):
    a, b = Metrics(), Metrics()  # a global registry would refuse the second (duplicate names)
    a.serve("127.0.0.1", 0)
    port = a.port
    a.orders.inc()
    assert value(scrape(port), "tradebot_orders_total") == 1
    assert b.port is None  # not serving: nothing listens
    a.close()
    a.close()  # idempotent
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)


def test_a_port_in_use_is_one_clear_line(metrics):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"BOT_METRICS_PORT={port} cannot be used") as info:
            metrics.serve("127.0.0.1", port)
    assert "\n" not in str(info.value) and "unset BOT_METRICS_PORT" in str(info.value)


def test_metrics_are_off_by_default(tmp_path):
    """With default settings the bot has no Metrics anywhere, so no port is opened."""
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", log_dir=tmp_path / "logs",
                        audit_key="test-audit-key-0123456789")
    assert settings.metrics_port is None and settings.alert_webhook_url is None
    bot = build_bot(settings, FakeClock(utc(2025, 3, 3, 15, 0)), live=True)
    hooked = (*bot.observers, *bot.deps.trail.listeners)
    assert not any(isinstance(h, Metrics) for h in hooked)
    assert not any(type(h).__name__ == "WebhookAlerts" for h in hooked)
    bot.deps.trail.close()
    bot.deps.journal.close()
    bot.deps.broker.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_a_live_bot_with_a_metrics_port_serves_them_and_simulate_never_does(tmp_path):
    port = _free_port()
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", log_dir=tmp_path / "logs",
                        audit_key="test-audit-key-0123456789", metrics_port=port,
                        metrics_host="127.0.0.1")
    clock = FakeClock(utc(2025, 3, 3, 15, 0))
    bot = build_bot(settings, clock, live=True)
    try:
        [metrics] = [o for o in bot.observers if isinstance(o, Metrics)]
        assert metrics in bot.deps.trail.listeners
        out = guarded_cycle(bot, utc(2025, 3, 3, 15, 0))
        samples = scrape(port)
        assert value(samples, "tradebot_orders_total") == out.orders == len(
            lines(settings.log_dir, "orders.jsonl"))
        assert value(samples, "tradebot_nav_dollars") == pytest.approx(out.nav)
    finally:
        _close(bot)
    sim = build_bot(settings, clock, live=False, log_dir=tmp_path / "sim")
    assert sim.observers == () and sim.deps.trail.listeners == []
    sim.deps.trail.close()


@pytest.mark.slow
def test_metrics_listen_on_loopback_only_unless_a_host_is_given(tmp_path):
    """The endpoint has no authentication and shows NAV and positions: BOT_METRICS_PORT alone
    serves it on 127.0.0.1, not on every interface."""
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", log_dir=tmp_path / "logs",
                        audit_key="test-audit-key-0123456789", metrics_port=_free_port())
    bot = build_bot(settings, FakeClock(utc(2025, 3, 3, 15, 0)), live=True)
    try:
        [metrics] = [o for o in bot.observers if isinstance(o, Metrics)]
        assert metrics._server.server_address[0] == "127.0.0.1"
    finally:
        _close(bot)


def _close(bot) -> None:
    """Everything build_bot opened: observers (the metrics server), trail, state, broker."""
    for o in bot.observers:
        o.close()
    bot.deps.trail.close()
    bot.deps.journal.close()
    bot.deps.broker.close()
