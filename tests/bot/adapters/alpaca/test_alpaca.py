"""Alpaca paper trading through the real alpaca-py SDK against the local server in
tests/alpaca_server.py: the guide's checks, then every fault of the issue, each asserting the
POSTs the server saw (never two for one order), the records, and that the bot goes on."""
from __future__ import annotations

import inspect
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.core.cycle import run_cycle
from bot.core.planning import client_order_id
from bot.settings import load_settings
from bot.wiring import build_bot
from tests.alpaca_server import FakeAlpaca
from tests.fakes import FakeClock, utc
from tests.trails import clean_env

PRICES = {"SPY": 500.0, "QQQ": 400.0, "TLT": 90.0}
SLOT = utc(2025, 3, 3, 15, 0)  # a Monday, in session
MODEL = "EqualWeightModel_v1"

pytestmark = pytest.mark.usefixtures("no_bot_env")


@pytest.fixture
def server():
    with FakeAlpaca(prices=dict(PRICES), api_key="PKCANARY0001", secret_key="SKCANARY0002") as fake:
        yield fake
        assert not fake.errors, fake.errors


def alpaca_bot(tmp_path, server, monkeypatch, **overrides):
    """Not a test bot: the production one, `build_bot` from settings (BOT_* as `overrides`), on
    Alpaca paper at the local server. What these tests check is that wiring too: the hardened
    SDK clients, the read retries told to the trail and the metrics, the durable state store.
    (Bots of fakes come from tests/fakes.make_bot.)"""
    monkeypatch.chdir(tmp_path)
    settings = load_settings(**{
        "broker": "alpaca", "alpaca_api_key": server.api_key, "alpaca_secret_key": server.secret_key,
        "alpaca_trading_url": server.url, "alpaca_data_url": server.url,
        "data_dir": tmp_path / "data", "log_dir": tmp_path / "logs", "http_timeout": 0.5,
        "fill_timeout": 5, "models": MODEL, "audit_key": "test-audit-key-0123456789", **overrides})
    clock = FakeClock(SLOT)
    server.now = clock.now
    naps: list[float] = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        clock.advance(seconds)

    (tmp_path / "data").mkdir(exist_ok=True)
    sleep.naps = naps  # type: ignore[attr-defined]
    return build_bot(settings, clock, live=True, sleep=sleep)


def read(tmp_path, name):
    path = tmp_path / "logs" / name
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def cid(symbol: str, side: str = "buy", slot=SLOT) -> str:
    return client_order_id(slot, MODEL, symbol, side)


# -- the SDK internals we rely on ------------------------------------------------------------
def test_sdk_retry_and_session_internals_are_where_we_expect():
    """Fails loudly when a new alpaca-py renames what `harden` sets."""
    from alpaca.common.rest import RESTClient
    from alpaca.data.historical import StockHistoricalDataClient
    from alpaca.trading.client import TradingClient

    from bot.adapters.alpaca.edge import SDK_ATTRIBUTES, harden

    source = inspect.getsource(RESTClient)
    assert "self._session.request(" in source and "self._retry_codes" in source
    assert "retry = self._retry" in source
    for client in (TradingClient("k", "s", paper=True), StockHistoricalDataClient("k", "s")):
        assert all(hasattr(client, a) for a in SDK_ATTRIBUTES)
        assert client._retry == 3 and 429 in client._retry_codes  # what we turn off
        harden(client, 1.5)
        assert client._retry == 0 and client._retry_codes == [] and client._session.timeout == 1.5


def test_check_sdk_names_what_is_missing():
    from bot.adapters.alpaca.edge import check_sdk

    with pytest.raises(RuntimeError, match="_retry, _retry_codes, _session"):
        check_sdk(object())


# -- a normal run ----------------------------------------------------------------------------
@pytest.mark.slow
def test_cycles_on_alpaca_pass_the_guides_checks(tmp_path, server, monkeypatch):
    from tests import guide

    bot = alpaca_bot(tmp_path, server, monkeypatch)
    out = run_cycle(bot, SLOT)
    assert out.orders == 3 and out.fills == 3 and out.errors == 0
    orders = read(tmp_path, "orders.jsonl")
    for o in orders:
        assert server.post_count(o["order_id"]) == 1
        assert o["broker_order_id"] == server.order_by_client_id(o["order_id"])["id"]
    # prices move; the next cycles rebalance and sell with realised pnl
    server.prices.update(SPY=560.0, TLT=80.0)
    bot.deps.clock.t = utc(2025, 3, 3, 15, 15)
    run_cycle(bot, bot.deps.clock.t)
    trades = read(tmp_path, "trades.jsonl")
    assert any(t["side"] == "sell" and t["pnl"] > 0 for t in trades)
    perf = read(tmp_path, "performance.jsonl")[-1]
    assert perf["positions"] == pytest.approx({s: q for s, (q, _) in server.positions.items()})
    assert perf["nav"] == pytest.approx(server.cash + sum(
        q * server.prices[s] for s, (q, _) in server.positions.items()), abs=0.01)
    guide.check_format(tmp_path)
    guide.check_jq_recipes(tmp_path)
    guide.check_python_snippet(tmp_path)
    guide.check_pandas_snippet(tmp_path)
    guide.check_logs_equivalents(tmp_path)
    guide.check_trades_add_up(tmp_path)


def test_partial_fills_are_one_record_each_with_the_real_quantities(tmp_path, server, monkeypatch):
    server.fill_mode, server.partial_steps = "partial", 3
    bot = alpaca_bot(tmp_path, server, monkeypatch)
    run_cycle(bot, SLOT)
    trades = read(tmp_path, "trades.jsonl")
    for o in read(tmp_path, "orders.jsonl"):
        mine = [t for t in trades if t["order_id"] == o["order_id"]]
        assert len(mine) == 3
        assert sum(t["quantity"] for t in mine) == pytest.approx(o["quantity"])
        assert [t["new_position"] for t in mine] == pytest.approx(
            [sum(t["quantity"] for t in mine[:i + 1]) for i in range(3)])
    assert bot.deps.sleep.naps  # it polled, with the injected sleep


# -- faults ----------------------------------------------------------------------------------
def test_429_on_reads_is_retried_with_backoff(tmp_path, server, monkeypatch):
    bot = alpaca_bot(tmp_path, server, monkeypatch)
    server.fail_next("GET", "/v2/account", 429, {"code": 42910000, "message": "rate limit exceeded"},
                     count=2)
    out = run_cycle(bot, SLOT)
    assert out.orders == 3 and read(tmp_path, "errors.jsonl") == []
    assert len(bot.deps.sleep.naps) >= 2 and bot.deps.sleep.naps[1] > 0
    assert sum(1 for m, p in server.requests if m == "GET" and p.startswith("/v2/account")) >= 3


def _free_port() -> int:
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_each_retried_read_leaves_a_warn_line_and_a_counter(tmp_path, server, monkeypatch):
    """A 502, a 429 and a timeout that each succeed on retry leave a WARN line in production.log
    (what failed, the attempt, the wait; never a key) and count in the metrics by operation."""
    from bot.watch.prometheus import Metrics
    bot = alpaca_bot(tmp_path, server, monkeypatch, metrics_port=_free_port(),
                   metrics_host="127.0.0.1")
    try:
        server.fail_next("GET", "/v2/account", 502, "<html><h1>502 Bad Gateway</h1></html>")
        server.fail_next("GET", "/v2/positions", 429, {"code": 42910000,
                                                        "message": "rate limit exceeded"})
        server.hang_next("GET", "/v2/stocks/trades/latest", 1.0, then_process=False)
        out = run_cycle(bot, SLOT)
        assert out.orders == 3 and read(tmp_path, "errors.jsonl") == []
        warns = [line for line in (tmp_path / "logs" / "production.log").read_text().splitlines()
                 if " WARN " in line and "broker read retried" in line]
        assert len(warns) == 3, warns
        account, positions, trade = warns
        assert "get account: HTTP 502" in account and "attempt 1 of 4" in account
        assert "get positions: HTTP 429 rate limit exceeded" in positions
        assert "get latest trade: no answer within the timeout" in trade
        waits = [float(w.rsplit("next attempt in ", 1)[1].rstrip("s")) for w in warns]
        assert waits == pytest.approx(bot.deps.sleep.naps[:3], abs=0.006)
        (metrics,) = [o for o in bot.observers if isinstance(o, Metrics)]
        sample = metrics.registry.get_sample_value
        name = "tradebot_broker_read_retries_total"
        assert sample(name, {"operation": "get account"}) == 1
        assert sample(name, {"operation": "get positions"}) == 1
        assert sample(name, {"operation": "get latest trade"}) == 1
        assert sample(name, {"operation": "get order"}) is None
    finally:
        for observer in bot.observers:
            observer.close()
    assert_no_secret(tmp_path)


def test_a_reader_told_to_give_up_during_its_wait_makes_no_further_attempt():
    """`run` asked to stop while a start-up read waits to retry: the wait ends within 0.2 s and
    the last failure is raised, with no further request."""
    import requests

    from bot.adapters.alpaca.edge import Reader
    from bot.core.errors import RetryLater
    calls: list[int] = []
    naps: list[float] = []

    def call():
        calls.append(1)
        raise requests.ConnectionError("connection refused")

    def sleep(seconds: float) -> None:
        naps.append(seconds)  # the stop arrives during the first slice of the wait

    reader = Reader(3, sleep, give_up=lambda: bool(naps))
    with pytest.raises(RetryLater, match="get account: connection failed"):
        reader("get account", call)
    assert len(calls) == 1 and len(naps) == 1 and naps[0] <= 0.2


def test_504_after_the_order_was_accepted_adopts_it(tmp_path, server, monkeypatch):
    bot = alpaca_bot(tmp_path, server, monkeypatch)
    server.accept_then_fail(504)
    out = run_cycle(bot, SLOT)
    assert out.orders == 3 and read(tmp_path, "errors.jsonl") == []
    assert server.post_count() == 3 and all(server.post_count(cid(s)) == 1 for s in PRICES)


@pytest.mark.slow
def test_a_timeout_after_the_order_was_placed_adopts_it(tmp_path, server, monkeypatch):
    bot = alpaca_bot(tmp_path, server, monkeypatch)
    server.hang_next("POST", "/v2/orders", 1.5, then_process=True)
    out = run_cycle(bot, SLOT)
    assert out.orders == 3 and out.errors == 0
    assert server.post_count() == 3


@pytest.mark.slow
def test_a_timeout_before_the_order_was_placed_is_recorded_not_placed(tmp_path, server, monkeypatch):
    bot = alpaca_bot(tmp_path, server, monkeypatch)
    server.hang_next("POST", "/v2/orders", 1.5, then_process=False)
    out = run_cycle(bot, SLOT)
    (err,) = read(tmp_path, "errors.jsonl")
    assert err["event_type"] == "order_error" and "not placed" in err["error"]
    assert "timeout" in err["error"]
    assert out.orders == 2 and server.post_count() == 3
    assert server.post_count(err["order_id"]) == 1
    assert_no_secret(tmp_path)


def test_an_order_accepted_then_rejected_is_an_order_error_counted_in_the_cycle(tmp_path, server,
                                                                               monkeypatch):
    """Alpaca answers the POST with status "new" and rejects the order later: polled, it is
    "rejected". That is an order_error with what the broker said, and one of the cycle's errors."""
    server.reject_after_accepting("QQQ")
    bot = alpaca_bot(tmp_path, server, monkeypatch)
    out = run_cycle(bot, SLOT)
    (err,) = read(tmp_path, "errors.jsonl")
    assert err["event_type"] == "order_error" and err["order_id"] == cid("QQQ")
    assert "rejected by the broker after it accepted the order" in err["error"]
    assert "failed at 2025-03-03T15:00:00" in err["error"]
    assert f'Alpaca order {server.order_by_client_id(cid("QQQ"))["id"]}' in err["error"]
    assert out.errors == 1 and out.fills == 2
    assert read(tmp_path, "performance.jsonl")[-1]["errors"] == 1
    assert server.post_count(cid("QQQ")) == 1
    run_cycle(bot, utc(2025, 3, 3, 15, 15))  # recorded once, not again at the next cycle
    assert [e["order_id"] for e in read(tmp_path, "errors.jsonl")] == [cid("QQQ")]


def test_a_rejection_seen_only_at_the_next_cycle_is_recorded_there(tmp_path, server, monkeypatch):
    server.fill_mode = "never"
    bot = alpaca_bot(tmp_path, server, monkeypatch, fill_timeout=1)
    run_cycle(bot, SLOT)  # the orders stay open past the deadline
    assert read(tmp_path, "errors.jsonl") == []
    with server.lock:
        order = server.order_by_client_id(cid("SPY"))
        order["status"], order["failed_at"] = "rejected", server.now()
    server.fill_mode = "immediate"
    bot.deps.clock.t = utc(2025, 3, 3, 15, 15)
    out = run_cycle(bot, bot.deps.clock.t)
    (err,) = read(tmp_path, "errors.jsonl")
    assert err["order_id"] == cid("SPY") and err["cycle_timestamp"] == "2025-03-03T15:00:00+00:00"
    assert "rejected by the broker after it accepted the order" in err["error"]
    assert out.errors == 1


def test_insufficient_buying_power_is_recorded_with_the_brokers_words(tmp_path, server, monkeypatch):
    server.cash = 50_000.0
    bot = alpaca_bot(tmp_path, server, monkeypatch, cash_buffer=0.0)
    server.fail_next("POST", "/v2/orders", 403, {"code": 40310000, "message": "insufficient buying power"})
    out = run_cycle(bot, SLOT)
    (err,) = read(tmp_path, "errors.jsonl")
    assert err["error"] == "insufficient buying power (HTTP 403)"
    assert err["symbol"] == "QQQ" and err["order_data"]["order_id"] == cid("QQQ")
    assert out.orders == 2 and server.post_count(cid("QQQ")) == 1


def test_insufficient_qty_available_on_a_sell(tmp_path, server, monkeypatch):
    bot = alpaca_bot(tmp_path, server, monkeypatch)
    run_cycle(bot, SLOT)
    held = server.positions["TLT"][0]
    server.change_position("TLT", held / 2)  # sold by hand...
    book = bot.deps.journal.sleeves()[MODEL].get("TLT", 0.0)
    bot.deps.journal.adjust_sleeve(MODEL, "TLT", held - book)  # ...and our books did not notice yet
    assert bot.policy.reconcile == "adopt"
    from bot.core.domain import OrderRequest, Side
    order = OrderRequest("manual-sell-1", "TLT", Side.SELL, held, 90.0, MODEL)
    from bot.core.errors import OrderRejected
    with pytest.raises(OrderRejected, match=r"insufficient qty available for order .*\(HTTP 403\)"):
        bot.deps.broker.submit_order(order)
    assert server.post_count("manual-sell-1") == 1


def test_a_duplicate_client_order_id_is_looked_up_not_sent_again(tmp_path, server, monkeypatch):
    bot = alpaca_bot(tmp_path, server, monkeypatch)
    server.add_open_order(cid("SPY"), "SPY", "buy", 1.0)  # a POST of ours that got through earlier
    out = run_cycle(bot, SLOT)
    spy = [o for o in read(tmp_path, "orders.jsonl") if o["symbol"] == "SPY"]
    assert len(spy) == 1 and spy[0]["broker_order_id"] == server.order_by_client_id(cid("SPY"))["id"]
    assert server.post_count(cid("SPY")) == 1  # the one 422 answered; no second attempt
    assert out.orders == 3


def assert_no_secret(tmp_path: Path) -> None:
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert b"CANARY" not in path.read_bytes(), path


@pytest.mark.parametrize("status,body,words", [
    (502, "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>",
     "HTTP 502 non-JSON error page: 502 Bad Gateway"),
    (429, {"code": 42910000, "message": "rate limit exceeded"}, "HTTP 429 rate limit exceeded"),
    (500, {"code": 50010000, "message": "internal server error"}, "HTTP 500 internal server error"),
])
def test_a_failed_post_is_looked_up_and_recorded_not_placed(tmp_path, server, monkeypatch,
                                                            status, body, words):
    bot = alpaca_bot(tmp_path, server, monkeypatch)
    server.fail_next("POST", "/v2/orders", status, body)
    out = run_cycle(bot, SLOT)
    (err,) = read(tmp_path, "errors.jsonl")
    assert words in err["error"] and "<" not in err["error"] and "not placed" in err["error"]
    assert server.post_count(err["order_id"]) == 1 and out.orders == 2
    assert_no_secret(tmp_path)


def test_5xx_on_every_read_fails_the_cycle_cleanly_and_the_next_one_runs(tmp_path, server, monkeypatch):
    from bot.app.runner import guarded_cycle
    bot = alpaca_bot(tmp_path, server, monkeypatch)
    server.fail_next("GET", "/v2/account", 503, {"code": 50300000, "message": "service unavailable"},
                     count=10)
    assert guarded_cycle(bot, SLOT) is None
    (err,) = read(tmp_path, "errors.jsonl")
    assert err["event_type"] == "cycle_error" and "503" in err["error"]
    server._faults.clear()
    bot.deps.clock.t = utc(2025, 3, 3, 15, 15)
    assert guarded_cycle(bot, bot.deps.clock.t) is not None
    assert_no_secret(tmp_path)


def test_an_order_open_at_the_deadline_fills_into_the_next_cycle(tmp_path, server, monkeypatch):
    server.fill_mode = "never"
    bot = alpaca_bot(tmp_path, server, monkeypatch, fill_timeout=3)
    out = run_cycle(bot, SLOT)
    assert out.orders == 3 and out.fills == 0
    opened = [e for e in read(tmp_path, "events.jsonl") if e["event_type"] == "order_open_at_deadline"]
    assert len(opened) == 3
    server.fill_order(cid("SPY"))  # fills while the bot waits for its next slot
    bot.deps.clock.t = utc(2025, 3, 3, 15, 15)
    run_cycle(bot, bot.deps.clock.t)
    spy = [t for t in read(tmp_path, "trades.jsonl") if t["order_id"] == cid("SPY")]
    assert len(spy) == 1 and spy[0]["cycle_timestamp"] == "2025-03-03T15:00:00+00:00"
    canceled = {e["order_id"] for e in read(tmp_path, "events.jsonl") if e["event_type"] == "order_canceled"}
    assert canceled == {cid("QQQ"), cid("TLT")}
    assert server.order_by_client_id(cid("QQQ"))["status"] == "canceled"


def test_a_position_changed_behind_our_back_is_reconciled(tmp_path, server, monkeypatch):
    bot = alpaca_bot(tmp_path, server, monkeypatch)
    run_cycle(bot, SLOT)
    server.prices["XLK"] = 200.0
    server.change_position("XLK", 5.0, 200.0)
    bot.deps.clock.t = utc(2025, 3, 3, 15, 15)
    run_cycle(bot, bot.deps.clock.t)
    (rec,) = [e for e in read(tmp_path, "events.jsonl") if e["event_type"] == "reconciliation"]
    assert rec["positions"] == {"XLK": {"trail": 0.0, "broker": 5.0}}


def test_a_restart_in_the_middle_of_a_rebalance_sends_nothing_twice(tmp_path, server, monkeypatch):
    bot = alpaca_bot(tmp_path, server, monkeypatch)
    real_submit, calls = bot.deps.broker.submit_order, []

    def dies_after_second_post(order):
        calls.append(order.client_order_id)
        ack = real_submit(order)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed right after the POST")
        return ack

    bot.deps.broker.submit_order = dies_after_second_post
    with pytest.raises(KeyboardInterrupt):
        run_cycle(bot, SLOT)
    bot.deps.journal.close()
    again = alpaca_bot(tmp_path, server, monkeypatch)
    run_cycle(again, SLOT)  # the restart takes the same slot
    orders = read(tmp_path, "orders.jsonl")
    assert sorted(o["order_id"] for o in orders) == sorted(cid(s) for s in PRICES)
    assert all(server.post_count(cid(s)) == 1 for s in PRICES)
    trades = read(tmp_path, "trades.jsonl")
    assert sorted(t["order_id"] for t in trades) == sorted(cid(s) for s in PRICES)


def test_a_closed_market_skips_the_cycle_and_says_so(tmp_path, server, monkeypatch):
    from bot.app.runner import manual_slot
    from bot.core.scheduling import SlotPlanner, parse_schedule
    server.market_open = False
    bot = alpaca_bot(tmp_path, server, monkeypatch)
    assert manual_slot(bot, SlotPlanner(parse_schedule("every 15 minutes"), True, bot.deps.calendar)) is None
    (ev,) = read(tmp_path, "events.jsonl")
    assert ev["event_type"] == "cycle_skipped" and ev["reason"] == "market_closed"
    assert ev["next_slot"] == "2025-03-03T15:15:00+00:00"


# -- start-up with bad keys, and secrets -----------------------------------------------------
@pytest.mark.slow
def test_bad_keys_stop_start_up_with_one_clear_line_and_no_secret_anywhere(tmp_path, server):
    env = clean_env()
    env.update(BOT_BROKER="alpaca", BOT_ALPACA_API_KEY="PKWRONGCANARY9",
               BOT_ALPACA_SECRET_KEY="SKWRONGCANARY9", BOT_ALPACA_TRADING_URL=server.url,
               BOT_ALPACA_DATA_URL=server.url, BOT_LOG_DIR=str(tmp_path / "logs"),
               BOT_DATA_DIR=str(tmp_path / "data"), BOT_READ_RETRIES="0")
    proc = subprocess.run([sys.executable, "-m", "bot", "run", "--max-cycles", "1"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Alpaca refused the API keys (401" in proc.stderr and proc.stderr.count("\n") == 1
    assert server.post_count() == 0
    texts = [proc.stdout, proc.stderr] + [p.read_text(errors="replace")
                                          for p in (tmp_path / "logs").iterdir()]
    assert not any("CANARY" in t for t in texts)
    assert "bot_stopped" in (tmp_path / "logs" / "events.jsonl").read_text()


def test_config_shows_the_alpaca_settings_without_secrets(tmp_path, server):
    env = clean_env()
    env.update(BOT_BROKER="alpaca", BOT_ALPACA_API_KEY="PKCANARY", BOT_ALPACA_SECRET_KEY="SKCANARY")
    proc = subprocess.run([sys.executable, "-m", "bot", "config"], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert "BOT_ALPACA_FEED=iex" in proc.stdout and "BOT_MARKET_HOURS=nyse" in proc.stdout
    assert "CANARY" not in proc.stdout


@pytest.mark.live
@pytest.mark.skipif(not (os.environ.get("ALPACA_LIVE_API_KEY") and os.environ.get("ALPACA_LIVE_SECRET_KEY")),
                    reason="set ALPACA_LIVE_API_KEY and ALPACA_LIVE_SECRET_KEY (paper keys) to run")
def test_one_cycle_against_real_alpaca_paper(tmp_path):
    env = clean_env()
    env.update(BOT_BROKER="alpaca", BOT_ALPACA_API_KEY=os.environ["ALPACA_LIVE_API_KEY"],
               BOT_ALPACA_SECRET_KEY=os.environ["ALPACA_LIVE_SECRET_KEY"],
               BOT_LOG_DIR=str(tmp_path / "logs"), BOT_DATA_DIR=str(tmp_path / "data"),
               BOT_MODELS="EqualWeightModel_v1", BOT_EQUAL_WEIGHT_SYMBOLS="SPY")
    proc = subprocess.run([sys.executable, "-m", "bot", "cycle"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    events = (tmp_path / "logs" / "events.jsonl").read_text()
    assert "bot_started" in events and "bot_stopped" in events


def cli_env(tmp_path: Path, server: FakeAlpaca, **extra: str) -> dict[str, str]:
    """The environment of a `python -m bot` subprocess trading on the local server."""
    env = clean_env()
    env.update(BOT_BROKER="alpaca", BOT_ALPACA_API_KEY=server.api_key,
               BOT_ALPACA_SECRET_KEY=server.secret_key, BOT_ALPACA_TRADING_URL=server.url,
               BOT_ALPACA_DATA_URL=server.url, BOT_LOG_DIR=str(tmp_path / "logs"),
               BOT_DATA_DIR=str(tmp_path / "data"), BOT_MARKET_HOURS="always", BOT_MODELS=MODEL)
    env.update(extra)
    return env


@pytest.mark.slow
def test_tradebot_run_on_alpaca_end_to_end(tmp_path, server):
    env = cli_env(tmp_path, server, BOT_FILL_TIMEOUT="5")
    proc = subprocess.run([sys.executable, "-m", "bot", "run", "--max-cycles", "1"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    orders = read(tmp_path, "orders.jsonl")
    assert len(orders) == 3 and len(read(tmp_path, "trades.jsonl")) == 3
    assert all(server.post_count(o["order_id"]) == 1 for o in orders)
    assert "broker alpaca answered" in (tmp_path / "logs" / "production.log").read_text()
    assert_no_secret(tmp_path)


@pytest.mark.slow
def test_a_canary_key_never_leaks_with_debug_logging_on(tmp_path, server):
    """Debug logging on, then failures: a 500 on the order POST, a timeout, a 503 on reads."""
    env = cli_env(tmp_path, server, BOT_FILL_TIMEOUT="2", BOT_LOG_LEVEL="debug",
                  BOT_HTTP_TIMEOUT="0.5", BOT_READ_RETRIES="1")
    server.fail_next("POST", "/v2/orders", 500, {"code": 50010000, "message": "internal error"})
    server.hang_next("POST", "/v2/orders", 1.5, then_process=False)
    server.fail_next("GET", "/v2/stocks/trades/latest", 503, "<html>503</html>", count=2)
    proc = subprocess.run([sys.executable, "-m", "bot", "run", "--max-cycles", "1"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    log = (tmp_path / "logs" / "production.log").read_text()
    assert "urllib3" in log and "DEBUG" in log  # debug logging was really on
    assert read(tmp_path, "errors.jsonl")  # and failures were really provoked
    assert "CANARY" not in proc.stdout + proc.stderr
    assert_no_secret(tmp_path)


# -- the broker down at start-up -------------------------------------------------------------
BAD_GATEWAY = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


def test_run_waits_for_a_broker_down_at_start_up_with_backoff(tmp_path, server, monkeypatch):
    """Three 502s, then the broker answers: each attempt is a broker_unavailable error with the
    wait before the next (5 s, doubling), through the injected wait; then start-up goes on."""
    from bot.app.runner import check_broker_at_start
    bot = alpaca_bot(tmp_path, server, monkeypatch, read_retries=0)
    server.fail_next("GET", "/v2/account", 502, BAD_GATEWAY, count=3)
    waits: list[float] = []

    def wait(seconds: float) -> bool:  # StopFlag.wait: True when a stop was asked
        if seconds:
            waits.append(seconds)
        return False

    assert check_broker_at_start(bot, "broker alpaca", "adopt", wait) is True
    errors = read(tmp_path, "errors.jsonl")
    assert [e["event_type"] for e in errors] == ["broker_unavailable"] * 3
    assert [e["attempt"] for e in errors] == [1, 2, 3]
    assert [e["retry_in_seconds"] for e in errors] == waits == [5, 10, 20]
    assert "HTTP 502 non-JSON error page" in errors[0]["error"]
    assert "trying again in 5s" in errors[0]["error"]
    assert [e["event_type"] for e in read(tmp_path, "events.jsonl")][-1] == "account_checked"


def test_the_wait_for_the_broker_is_capped_and_ends_when_a_stop_is_asked(tmp_path, server,
                                                                         monkeypatch):
    from bot.app.runner import check_broker_at_start
    bot = alpaca_bot(tmp_path, server, monkeypatch, read_retries=0)
    server.fail_next("GET", "/v2/account", 503, {"code": 50310000, "message": "unavailable"},
                     count=100)
    waits: list[float] = []

    def wait(seconds: float) -> bool:
        if seconds:
            waits.append(seconds)
        return len(waits) == 9  # SIGTERM during the ninth wait

    assert check_broker_at_start(bot, "broker alpaca", "adopt", wait) is False
    assert waits == [5, 10, 20, 40, 80, 160, 300, 300, 300]
    assert len(read(tmp_path, "errors.jsonl")) == 9
    assert not any(e["event_type"] == "account_checked" for e in read(tmp_path, "events.jsonl"))


def _run_then_sigterm(tmp_path, env, file: str, words: str):
    """`tradebot run`, a SIGTERM as soon as `words` appear in logs/`file`: (the process, its
    stderr, seconds from the signal to its exit)."""
    proc = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    path = tmp_path / "logs" / file
    try:
        deadline = time.monotonic() + 60
        while not (path.exists() and words in path.read_text()):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
        return proc, err, time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.slow
def test_a_sigterm_stops_run_promptly_while_it_waits_for_the_broker(tmp_path, server):
    server.fail_next("GET", "/v2/account", 502, BAD_GATEWAY, count=1000)
    env = cli_env(tmp_path, server, BOT_READ_RETRIES="0")
    proc, err, took = _run_then_sigterm(tmp_path, env, "errors.jsonl", "broker_unavailable")
    assert proc.returncode == 0, err
    assert took < 3, took  # the first wait is 5 s: the stop did not wait it out
    events = read(tmp_path, "events.jsonl")
    assert events[-1]["event_type"] == "bot_stopped" and events[-1]["reason"] == "SIGTERM received"
    assert read(tmp_path, "performance.jsonl") == [] and server.post_count() == 0
    assert_no_secret(tmp_path)


@pytest.mark.slow
def test_a_sigterm_during_the_read_retries_at_start_up_does_not_wait_them_out(tmp_path, server):
    """A broker that never answers: each read waits BOT_HTTP_TIMEOUT (2 s) and 3 retries follow.
    A SIGTERM after the first timeout stops the bot once the read in flight ends, not after the
    three retries left (about 8 s more)."""
    server.hang_next("GET", "/v2/account", 30, count=1000, then_process=False)
    env = cli_env(tmp_path, server, BOT_READ_RETRIES="3", BOT_HTTP_TIMEOUT="2")
    proc, err, took = _run_then_sigterm(tmp_path, env, "production.log", "broker read retried")
    assert proc.returncode == 0, err
    assert took < 4, took  # at most the read in flight (2 s), never the retries left
    (error,) = read(tmp_path, "errors.jsonl")
    assert error["event_type"] == "broker_unavailable" and "timeout" in error["error"]
    assert error["error"].endswith("; a stop was asked, stopping") and error["retry_in_seconds"] is None
    assert read(tmp_path, "events.jsonl")[-1]["reason"] == "SIGTERM received"


@pytest.mark.slow
def test_cycle_exits_1_on_a_broker_down_at_start_up_and_records_the_error(tmp_path, server):
    server.fail_next("GET", "/v2/account", 502, BAD_GATEWAY, count=1000)
    env = cli_env(tmp_path, server, BOT_READ_RETRIES="0")
    proc = subprocess.run([sys.executable, "-m", "bot", "cycle"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "HTTP 502" in proc.stderr, proc.stderr
    (error,) = read(tmp_path, "errors.jsonl")
    assert error["event_type"] == "broker_unavailable" and error["attempt"] == 1
    assert error["retry_in_seconds"] is None
    assert read(tmp_path, "events.jsonl")[-1]["event_type"] == "bot_stopped"
    from tests import guide
    guide.check_format(tmp_path, allow_empty=("orders.jsonl", "trades.jsonl", "performance.jsonl"))
