"""Alpaca market data behind the `MarketData` port, and Alpaca's clock and calendar behind
`MarketCalendar` (alpaca-py `StockHistoricalDataClient` and `TradingClient`).

Daily bars (split- and dividend-adjusted) feed the models; the latest trade is the reference
price. `feed` defaults to `iex`: the free plan is refused recent SIP data. Bars are cached per
as-of day, prices for a few seconds, calendar months for the process; reads go through the
bounded retry of `bot.adapters.alpaca.edge.Reader`.
"""
from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Mapping, Sequence

from bot.adapters.alpaca.edge import Reader
from bot.core.calendar import NY
from bot.core.clock import Clock
from bot.core.errors import DataError, RetryLater
from models.base import History

_PRICE_TTL = timedelta(seconds=5)
_CLOCK_TTL = timedelta(seconds=30)


class AlpacaMarketData:
    def __init__(self, client: Any, feed: str, clock: Clock, read: Reader) -> None:
        self._client = client
        self._feed = feed
        self._clock = clock
        self._read = read
        self._bars: dict[tuple[date, str], list[tuple[date, float]]] = {}
        self._prices: dict[str, tuple[datetime, float]] = {}

    def history(self, symbols: Sequence[str], before: date,
                bars: int | Mapping[str, int]) -> History:
        want = {s: (bars if isinstance(bars, int) else bars[s]) for s in symbols}
        missing = [s for s in symbols if (before, s) not in self._bars]
        problems: dict[str, str] = {}
        if missing:
            try:
                self._fetch(missing, before, max(want.values()))
            except (RetryLater, DataError) as exc:
                return History(None, {}, {s: f"daily bars unavailable: {exc}" for s in symbols})
        closes: dict[str, Sequence[float]] = {}
        as_of: date | None = None
        for sym in symbols:
            series = self._bars.get((before, sym), [])
            n = want[sym]
            if not series:
                problems[sym] = f"Alpaca has no daily bars for {sym} before {before} (feed {self._feed})"
                continue
            if len(series) < n:
                continue  # listed too recently for this window: absent, like a fund not listed yet
            window = series[-n:]
            bad = [d for d, c in window if not (c > 0 and math.isfinite(c))]
            if bad:
                problems[sym] = f"bad close for {sym} on {bad[0]}"
                continue
            closes[sym] = tuple(c for _, c in window)
            as_of = max(as_of or window[-1][0], window[-1][0])
        return History(as_of, closes, problems)

    def _fetch(self, symbols: list[str], before: date, bars: int) -> None:
        from alpaca.data.enums import Adjustment, DataFeed
        from alpaca.data.requests import StockBarsRequest
        from alpaca.data.timeframe import TimeFrame

        start = before - timedelta(days=int(bars * 1.5) + 15)
        request = StockBarsRequest(
            symbol_or_symbols=symbols, timeframe=TimeFrame.Day,
            start=datetime.combine(start, time(), timezone.utc),
            end=datetime.combine(before, time(), NY).astimezone(timezone.utc),
            adjustment=Adjustment.ALL, feed=DataFeed(self._feed))
        barset = self._read("get daily bars", lambda: self._client.get_stock_bars(request))
        data = getattr(barset, "data", barset) or {}
        for sym in symbols:
            rows = sorted((b.timestamp.astimezone(NY).date(), float(b.close))
                          for b in data.get(sym, ()))
            self._bars[(before, sym)] = [(d, c) for d, c in rows if d < before]

    def price(self, symbol: str, at: datetime) -> float:
        cached = self._prices.get(symbol)
        if cached is not None and abs(at - cached[0]) < _PRICE_TTL:
            return cached[1]
        from alpaca.data.enums import DataFeed
        from alpaca.data.requests import StockLatestTradeRequest

        request = StockLatestTradeRequest(symbol_or_symbols=[symbol], feed=DataFeed(self._feed))
        try:
            trades = self._read("get latest trade",
                                lambda: self._client.get_stock_latest_trade(request))
        except RetryLater as exc:
            raise DataError(symbol, str(exc)) from exc
        trade = trades.get(symbol) if isinstance(trades, dict) else None
        if trade is None:
            raise DataError(symbol, f"Alpaca returned no latest trade (feed {self._feed})")
        price = float(trade.price)
        self._prices[symbol] = (at, price)
        return price


class AlpacaCalendar:
    """`MarketCalendar` from Alpaca: `get_clock()` answers "open now?", `get_calendar()` gives the
    sessions (with early closes) for scheduling."""

    def __init__(self, client: Any, clock: Clock, read: Reader) -> None:
        self._client = client
        self._clock = clock
        self._read = read
        self._months: dict[tuple[int, int], dict[date, tuple[datetime, datetime]]] = {}
        self._open_now: tuple[datetime, bool] | None = None

    def _month(self, d: date) -> dict[date, tuple[datetime, datetime]]:
        key = (d.year, d.month)
        if key not in self._months:
            from alpaca.trading.requests import GetCalendarRequest

            first = date(d.year, d.month, 1)
            last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
            days = self._read("get calendar", lambda: self._client.get_calendar(
                GetCalendarRequest(start=first, end=last)))
            self._months[key] = {
                c.date: (c.open.replace(tzinfo=NY).astimezone(timezone.utc),
                         c.close.replace(tzinfo=NY).astimezone(timezone.utc)) for c in days}
        return self._months[key]

    def session(self, d: date) -> tuple[datetime, datetime] | None:
        return self._month(d).get(d)

    def is_open(self, at: datetime) -> bool:
        now = self._clock.now()
        if abs((at - now).total_seconds()) < 60:  # "now": the broker's clock decides
            if self._open_now is None or now - self._open_now[0] > _CLOCK_TTL:
                clock = self._read("get clock", self._client.get_clock)
                self._open_now = (now, bool(clock.is_open))
            return self._open_now[1]
        s = self.session(at.astimezone(NY).date())
        return s is not None and s[0] <= at < s[1]

    def next_open(self, at: datetime) -> datetime:
        d = at.astimezone(NY).date()
        for _ in range(15):
            s = self.session(d)
            if s is not None and s[0] > at:
                return s[0]
            d += timedelta(days=1)
        raise DataError("calendar", f"no session within 15 days after {at}")

    def previous_trading_day(self, d: date) -> date:
        for i in range(1, 15):
            if self.session(d - timedelta(days=i)) is not None:
                return d - timedelta(days=i)
        raise DataError("calendar", f"no session within 15 days before {d}")
