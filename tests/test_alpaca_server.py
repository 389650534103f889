"""The fake Alpaca server, checked through the real alpaca-py SDK (every shape parsed by its models).

Trading clients here set ``client._retry = 0``: alpaca-py retries 429 and 504 answers by itself
(3 more tries, 3 s apart), which would make fault tests slow and hide the status we script. The
tests that show the SDK's own retrying set ``client._retry_wait = 0`` instead.
"""
from __future__ import annotations

import json
import socket
import time
from datetime import date, datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest
import requests
from alpaca.common.exceptions import APIError
from alpaca.data.enums import DataFeed
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.requests import StockBarsRequest, StockLatestQuoteRequest, StockLatestTradeRequest
from alpaca.data.timeframe import TimeFrame
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, OrderStatus, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import GetCalendarRequest, GetOrdersRequest, LimitOrderRequest, MarketOrderRequest

from tests.alpaca_server import FakeAlpaca

PRICES = {"SPY": 500.0, "TLT": 90.0}


@pytest.fixture
def fake():
    with FakeAlpaca(cash=10_000.0, prices=PRICES) as server:
        yield server
    assert server.errors == []


def trading(fake: FakeAlpaca, key: str = "PKTEST", secret: str = "SKTEST") -> TradingClient:
    client = TradingClient(key, secret, paper=True, url_override=fake.url)
    client._retry = 0   # no SDK retries of 429/504 (they would sleep 3 s each); see module docstring
    return client


def data(fake: FakeAlpaca, key: str = "PKTEST", secret: str = "SKTEST") -> StockHistoricalDataClient:
    client = StockHistoricalDataClient(key, secret, url_override=fake.url)
    client._retry = 0
    return client


def buy(symbol: str, qty: float, cid: str, side: OrderSide = OrderSide.BUY) -> MarketOrderRequest:
    return MarketOrderRequest(symbol=symbol, qty=qty, side=side, time_in_force=TimeInForce.DAY, client_order_id=cid)


class TimeoutSession(requests.Session):
    """alpaca-py passes no timeout to requests; this session adds one (test-only)."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def request(self, *args, **kwargs):
        kwargs.setdefault("timeout", self.timeout)
        return super().request(*args, **kwargs)


# ---------------------------------------------------------------------- lifecycle, auth
def test_binds_loopback_only_and_stops_cleanly():
    fake = FakeAlpaca().start()
    host, port = urlsplit(fake.url).hostname, urlsplit(fake.url).port
    assert host == "127.0.0.1" and port > 0
    assert trading(fake).get_account().status == "ACTIVE"
    fake.stop()
    with pytest.raises(OSError):
        socket.create_connection((host, port), timeout=0.5).close()


def test_wrong_keys_get_401_and_are_counted(fake):
    with pytest.raises(APIError) as err:
        trading(fake, secret="WRONG").get_account()
    assert err.value.status_code == 401 and err.value.code == 40110000
    with pytest.raises(APIError) as err:
        data(fake, key="WRONG").get_stock_latest_trade(StockLatestTradeRequest(symbol_or_symbols="SPY"))
    assert err.value.status_code == 401
    assert fake.auth_failures == 2
    assert trading(fake).get_account().cash == "10000"


# ---------------------------------------------------------------------- account, positions, clock
def test_account_and_positions_parse(fake):
    fake.change_position("SPY", 4, avg_price=450.0, adjust_cash=False)
    client = trading(fake)
    account = client.get_account()
    assert (account.cash, account.buying_power, account.equity) == ("10000", "10000", "12000")
    assert account.long_market_value == "2000" and account.multiplier == "1"
    [pos] = client.get_all_positions()
    assert (pos.symbol, pos.qty, pos.avg_entry_price, pos.side) == ("SPY", "4", "450", "long")
    assert (pos.market_value, pos.cost_basis, pos.unrealized_pl, pos.current_price) == ("2000", "1800", "200", "500")
    assert client.get_open_position("SPY").qty_available == "4"
    with pytest.raises(APIError) as err:
        client.get_open_position("TLT")
    assert err.value.status_code == 404 and err.value.message == "position does not exist"


def test_clock_and_calendar(fake):
    client = trading(fake)
    clock = client.get_clock()
    assert clock.is_open and clock.next_close < clock.next_open
    fake.market_open = False
    clock = client.get_clock()
    assert not clock.is_open and clock.next_open < clock.next_close
    assert clock.next_open.hour == 9 and clock.next_open.minute == 30 and clock.next_open.weekday() < 5

    days = client.get_calendar(GetCalendarRequest(start=date(2024, 7, 1), end=date(2024, 7, 7)))
    assert [d.date.day for d in days] == [1, 2, 3, 4, 5]          # weekdays; holidays not simulated
    assert days[0].open == datetime(2024, 7, 1, 9, 30)             # SDK gives naive New York times
    fake.calendar = [(date(2024, 7, 3), "09:30", "13:00"), (date(2024, 7, 5), "09:30", "16:00")]
    days = client.get_calendar(GetCalendarRequest(start=date(2024, 7, 1), end=date(2024, 7, 7)))
    assert [(d.date.day, d.close.hour) for d in days] == [(3, 13), (5, 16)]


# ---------------------------------------------------------------------- orders
def test_market_order_fills_and_moves_cash_and_position(fake):
    client = trading(fake)
    placed = client.submit_order(buy("SPY", 2.5, "c-1"))
    assert placed.status == OrderStatus.NEW and placed.filled_qty == "0"      # reply = as accepted
    assert placed.client_order_id == "c-1" and placed.qty == "2.5" and placed.order_class == "simple"
    order = client.get_order_by_client_id("c-1")
    assert order.id == placed.id and order.status == OrderStatus.FILLED
    assert (order.filled_qty, order.filled_avg_price) == ("2.5", "500")
    assert order.filled_at is not None and order.filled_at.tzinfo is not None
    assert client.get_order_by_id(placed.id).status == OrderStatus.FILLED
    assert client.get_open_position("SPY").qty == "2.5"
    assert client.get_account().cash == "8750"
    assert fake.cash == 8750 and fake.positions == {"SPY": (2.5, 500.0)}
    assert fake.post_count("c-1") == 1 and fake.post_count() == 1

    fake.prices["SPY"] = 520.0
    client.submit_order(buy("SPY", 2.5, "c-2"))
    client.submit_order(buy("SPY", 1, "c-3", side=OrderSide.SELL))
    assert fake.positions["SPY"] == (4.0, 510.0)                          # average entry price
    assert fake.cash == pytest.approx(8750 - 1300 + 520)


def test_orders_wait_for_the_open_and_limit_prices(fake):
    client = trading(fake)
    fake.market_open = False
    placed = client.submit_order(buy("TLT", 10, "closed"))
    assert placed.status == OrderStatus.ACCEPTED
    assert client.get_order_by_client_id("closed").status == OrderStatus.ACCEPTED
    fake.market_open = True
    assert client.get_order_by_client_id("closed").status == OrderStatus.FILLED

    limit = client.submit_order(LimitOrderRequest(symbol="TLT", qty=5, side=OrderSide.BUY, limit_price=88.0,
                                                  time_in_force=TimeInForce.GTC, client_order_id="lim"))
    assert limit.limit_price == "88" and limit.type == "limit"
    assert client.get_order_by_client_id("lim").status == OrderStatus.NEW
    assert client.get_account().buying_power == str(10_000 - 900 - 440)        # reserved by the order
    fake.prices["TLT"] = 87.5
    order = client.get_order_by_client_id("lim")
    assert order.status == OrderStatus.FILLED and order.filled_avg_price == "87.5"


def test_partial_fill_mode_fills_one_part_per_read(fake):
    fake.fill_mode = "partial"
    client = trading(fake)
    placed = client.submit_order(buy("SPY", 4, "p-1"))
    assert placed.status == OrderStatus.NEW and fake.positions == {}
    first = client.get_order_by_client_id("p-1")
    assert first.status == OrderStatus.PARTIALLY_FILLED and first.filled_qty == "2"
    assert fake.positions == {"SPY": (2.0, 500.0)}
    [second] = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))
    assert second.status == OrderStatus.FILLED and second.filled_qty == "4"
    assert client.get_order_by_id(placed.id).filled_qty == "4"


def test_never_mode_cancel_and_order_listing(fake):
    fake.fill_mode = "never"
    client = trading(fake)
    a = client.submit_order(buy("SPY", 1, "a"))
    client.submit_order(buy("TLT", 1, "b"))
    assert client.get_order_by_id(a.id).status == OrderStatus.NEW
    assert client.cancel_order_by_id(a.id) is None                       # 204, empty body
    assert client.get_order_by_id(a.id).status == OrderStatus.CANCELED
    with pytest.raises(APIError) as err:
        client.cancel_order_by_id(a.id)
    assert err.value.status_code == 422 and "canceled" in err.value.message
    fake.fill_order("b")
    c = client.submit_order(buy("SPY", 1, "c"))
    assert [o.client_order_id for o in client.get_orders()] == ["c"]     # default: open
    closed = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.CLOSED, direction="asc"))
    assert [o.client_order_id for o in closed] == ["a", "b"]
    every = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, symbols=["SPY"], limit=1))
    assert [o.id for o in every] == [c.id]
    assert "/v2/orders?status=all&limit=1&symbols=SPY" in [p for _, p in fake.requests]
    [cancelled] = client.cancel_orders()
    assert (cancelled.id, cancelled.status) == (c.id, 200)


def test_rejections_are_api_errors_with_alpaca_bodies(fake):
    client = trading(fake)
    with pytest.raises(APIError) as err:
        client.submit_order(buy("SPY", 21, "big"))
    assert (err.value.status_code, err.value.code, err.value.message) == (403, 40310000, "insufficient buying power")
    fake.change_position("TLT", 3, adjust_cash=False)
    fake.add_open_order("manual", "TLT", "sell", 1)
    with pytest.raises(APIError) as err:
        client.submit_order(buy("TLT", 5, "s", side=OrderSide.SELL))
    assert err.value.status_code == 403
    assert err.value.message == "insufficient qty available for order (requested: 5, available: 2)"
    assert json.loads(str(err.value))["held_for_orders"] == "1"
    client.submit_order(buy("SPY", 1, "dup"))
    with pytest.raises(APIError) as err:
        client.submit_order(buy("SPY", 1, "dup"))
    assert (err.value.status_code, err.value.code, err.value.message) == (422, 40010001,
                                                                          "client_order_id must be unique")
    with pytest.raises(APIError) as err:
        client.submit_order(buy("NOPE", 1, "x"))
    assert err.value.status_code == 422
    for bad in ({"qty": "0", "side": "buy"}, {"qty": "1", "side": "hold"}):
        with pytest.raises(APIError) as err:   # shapes the SDK's request models would not build
            client.post("/orders", {"symbol": "SPY", "type": "market", "time_in_force": "day", **bad})
        assert err.value.status_code == 422
    assert fake.post_count() == 7 and fake.post_count("dup") == 2
    assert len(fake.orders) == 2      # "dup" and the manual order


def test_unknown_client_order_id_is_404(fake):
    with pytest.raises(APIError) as err:
        trading(fake).get_order_by_client_id("never-sent")
    assert (err.value.status_code, err.value.code, err.value.message) == (404, 40410000, "order not found")


def test_orders_the_bot_does_not_know_and_manual_position_changes(fake):
    client = trading(fake)
    client.submit_order(buy("SPY", 2, "bot-1"))
    fake.change_position("SPY", 5)                                       # bought 3 more by hand
    foreign = fake.add_open_order("dashboard-1", "TLT", "buy", 3)
    assert fake.cash == pytest.approx(10_000 - 1000 - 1500)
    assert client.get_open_position("SPY").qty == "5"
    [open_order] = client.get_orders()
    assert open_order.client_order_id == "dashboard-1" and str(open_order.id) == foreign["id"]
    fake.change_position("SPY", 0)                                       # sold everything by hand
    assert client.get_all_positions() == []


# ---------------------------------------------------------------------- scripted faults
def test_scripted_error_statuses_surface_as_api_errors(fake):
    client = trading(fake)
    fake.fail_next("GET", "/v2/account", 429, {"code": 42910000, "message": "rate limit exceeded"})
    with pytest.raises(APIError) as err:
        client.get_account()
    assert (err.value.status_code, err.value.code) == (429, 42910000)
    fake.fail_next("POST", "/v2/orders", 403, {"code": 40310000, "message": "insufficient buying power"})
    with pytest.raises(APIError) as err:
        client.submit_order(buy("SPY", 1, "f-1"))
    assert (err.value.status_code, err.value.message) == (403, "insufficient buying power")
    assert fake.order_by_client_id("f-1") is None
    fake.fail_next("GET", "/v2/orders", 502, "<html><body><h1>502 Bad Gateway</h1></body></html>", count=2)
    for _ in range(2):
        with pytest.raises(APIError) as err:
            client.get_orders()
        assert err.value.status_code == 502 and "Bad Gateway" in str(err.value)
        assert err.value.response.headers["Content-Type"] == "text/html"
        with pytest.raises(json.JSONDecodeError):   # .code/.message parse the body as JSON
            _ = err.value.code
    assert client.get_orders() == [] and client.get_account().cash == "10000"


def test_sdk_retries_429_by_itself(fake):
    client = trading(fake)
    client._retry, client._retry_wait = 3, 0
    fake.fail_next("GET", "/v2/clock", 429, {"code": 42910000, "message": "rate limit exceeded"}, count=3)
    assert client.get_clock().is_open
    assert [p for _, p in fake.requests].count("/v2/clock") == 4


def test_accept_then_fail_creates_the_order(fake):
    client = trading(fake)
    fake.accept_then_fail(504)
    with pytest.raises(APIError) as err:
        client.submit_order(buy("SPY", 1, "lost-reply"))
    assert err.value.status_code == 504 and "504 Gateway Timeout" in str(err.value)
    assert client.get_order_by_client_id("lost-reply").status == OrderStatus.FILLED
    assert fake.post_count("lost-reply") == 1 and len(fake.orders) == 1


def test_reject_after_accepting_answers_the_post_then_shows_rejected(fake):
    client = trading(fake)
    fake.reject_after_accepting("SPY")
    placed = client.submit_order(buy("SPY", 2, "late-reject"))
    assert placed.status == OrderStatus.NEW and placed.failed_at is None
    later = client.get_order_by_client_id("late-reject")
    assert later.status == OrderStatus.REJECTED and later.failed_at is not None
    assert float(later.filled_qty) == 0 and fake.positions == {} and fake.cash == 10_000.0
    assert float(client.get_account().buying_power) == 10_000.0  # nothing reserved
    client.submit_order(buy("SPY", 1, "the-next-one"))  # only the next order for SPY
    assert client.get_order_by_client_id("the-next-one").status == OrderStatus.FILLED


def test_sdk_retry_of_a_504_post_meets_the_duplicate_client_id(fake):
    client = trading(fake)
    client._retry, client._retry_wait = 3, 0
    fake.accept_then_fail(504)
    with pytest.raises(APIError) as err:
        client.submit_order(buy("SPY", 1, "retried"))
    assert (err.value.status_code, err.value.message) == (422, "client_order_id must be unique")
    assert fake.post_count("retried") == 2 and len(fake.orders) == 1


def test_hang_with_client_timeout_still_creates_the_order(fake):
    client = trading(fake)
    client._session = TimeoutSession(0.2)
    fake.hang_next("POST", "/v2/orders", 0.5)
    t0 = time.monotonic()
    with pytest.raises(requests.exceptions.Timeout):      # not an APIError: the SDK lets it through
        client.submit_order(buy("SPY", 1, "slow"))
    assert time.monotonic() - t0 < 0.45
    assert client.get_order_by_client_id("slow").status == OrderStatus.FILLED


def test_hang_without_processing_drops_the_request(fake):
    client = trading(fake)
    client._session = TimeoutSession(0.2)
    fake.hang_next("POST", "/v2/orders", 0.5, then_process=False)
    with pytest.raises(requests.exceptions.Timeout):
        client.submit_order(buy("SPY", 1, "gone"))
    assert fake.post_count("gone") == 1 and fake.order_by_client_id("gone") is None
    with pytest.raises(APIError):
        client.get_order_by_client_id("gone")


# ---------------------------------------------------------------------- market data
def test_daily_bars_default_walk(fake):
    client = data(fake)
    today = datetime.now(timezone.utc)
    req = StockBarsRequest(symbol_or_symbols=["SPY", "TLT", "NOPE"], timeframe=TimeFrame.Day,
                           start=today - timedelta(days=30), end=today, feed=DataFeed.IEX)
    bars = client.get_stock_bars(req)
    assert set(bars.data) == {"SPY", "TLT"}                     # unknown symbols are left out
    spy = bars["SPY"]
    assert 19 <= len(spy) <= 23 and all(b.timestamp.weekday() < 5 for b in spy)
    assert spy[-1].close == 500.0 and bars["TLT"][-1].close == 90.0
    assert all(b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high for b in spy)
    assert all(b.trade_count and b.vwap for b in spy)
    assert spy[0].timestamp.hour in (4, 5) and spy[0].timestamp.tzinfo is not None   # midnight New York
    assert [b.close for b in client.get_stock_bars(req)["SPY"]] == [b.close for b in spy]
    query = [p for _, p in fake.requests if p.startswith("/v2/stocks/bars")][0]
    assert "timeframe=1Day" in query and "feed=iex" in query and "symbols=SPY%2CTLT%2CNOPE" in query


def test_bars_from_a_callable_and_paging(fake):
    seen = []

    def closes(symbol, first, last):
        seen.append((symbol, first, last))
        return [(date(2024, 3, d), 100.0 + d) for d in (4, 5, 6, 7, 8)]

    fake.bars = closes
    fake.bars_page_size = 3
    bars = data(fake).get_stock_bars(StockBarsRequest(
        symbol_or_symbols=["SPY", "TLT"], timeframe=TimeFrame.Day,
        start=datetime(2024, 3, 5), end=datetime(2024, 3, 8), feed=DataFeed.IEX))
    assert [b.close for b in bars["SPY"]] == [105.0, 106.0, 107.0]          # the Mar 8 bar is 05:00Z, after end
    assert [b.open for b in bars["TLT"]] == [104.0, 105.0, 106.0]
    assert ("SPY", date(2024, 3, 5), date(2024, 3, 8)) in seen
    pages = [p for _, p in fake.requests if p.startswith("/v2/stocks/bars")]
    assert len(pages) == 2 and "page_token=3" in pages[1]


def test_latest_trade_and_quote(fake):
    client = data(fake)
    trades = client.get_stock_latest_trade(StockLatestTradeRequest(symbol_or_symbols=["SPY", "TLT"], feed=DataFeed.IEX))
    assert trades["SPY"].price == 500.0 and trades["TLT"].price == 90.0 and trades["SPY"].timestamp.tzinfo
    fake.prices["SPY"] = 501.0
    quote = client.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols="SPY"))["SPY"]
    assert quote.bid_price < 501.0 < quote.ask_price and quote.bid_size > 0
