"""Deterministic synthetic daily and intraday prices for simulations and tests.

`SyntheticMarket(seed)` gives every NYSE session from 1998-01-02 to 2100 a close for any
well-formed symbol. Daily log returns are `mu + beta * m + idio`: `m` is one market-factor
stream with a calm/stressed volatility regime, `idio` a per-symbol stream with occasional
fat-tailed days. Each stream is a `random.Random` seeded from sha256 of (seed, name), so
numbers depend only on (seed, symbol, date): never on the machine, the order of calls, or which
other symbols were asked for. Closes are generated lazily (up to the latest date asked) and kept.

It is not a model of real markets: parameters are round numbers with plausible vols and
correlations (TLT and IEF have a negative beta; every vol is 12-30% a year, so the bond funds
are far more volatile than the real ones). Intraday prices are a deterministic noisy path from
the previous close to the day's close, drawn per minute; consecutive minutes are independent
draws around that path, not a continuous Brownian bridge.
"""
from __future__ import annotations

import hashlib
import math
import random
import re
from array import array
from dataclasses import dataclass
from datetime import date, datetime, timezone
from functools import lru_cache
from typing import Mapping, Sequence

from bot.core.calendar import LAST_YEAR, NY, is_trading_day, session, session_date, session_index
from bot.core.errors import DataError
from models.base import History

FIRST_DAY = date(1998, 1, 2)
SYMBOL_RE = re.compile(r"[A-Z][A-Z.]{0,9}")
TRADING_DAYS_PER_YEAR = 252
MARKET_VOL = 0.15  # annual vol of the market factor
CHUNK = 512  # sessions generated at a time when a series is extended

# Market regime: calm most of the time, stressed ~1/6 of the time; E[mult^2] = 1.
_CALM, _STRESSED = 0.8, math.sqrt(2.8)
_TO_STRESS, _TO_CALM = 0.01, 0.05
# Idiosyncratic fat tails: 3% of days are 2.5x wider; scaled so the variance is unchanged.
_JUMP_P, _JUMP_MULT = 0.03, 2.5
_BASE_MULT = math.sqrt((1 - _JUMP_P * _JUMP_MULT**2) / (1 - _JUMP_P))
_TWO_PI = 2 * math.pi
_MASK64 = (1 << 64) - 1
_Z_SCALE = math.sqrt(3.0)  # 1 / sd of a sum of 4 uniforms


@dataclass(frozen=True, slots=True)
class SymbolParams:
    """How one symbol's closes are generated: annual vol and drift, market beta, first close."""

    vol: float
    beta: float
    drift: float
    start_price: float
    first_day: date = FIRST_DAY


PARAMS: dict[str, SymbolParams] = {
    "SPY": SymbolParams(0.16, 1.00, 0.070, 97.0),
    "QQQ": SymbolParams(0.22, 1.20, 0.090, 52.0),
    "IWM": SymbolParams(0.21, 1.15, 0.060, 44.0),
    "DIA": SymbolParams(0.155, 0.95, 0.065, 78.0),
    "XLB": SymbolParams(0.20, 1.05, 0.055, 21.0),
    "XLE": SymbolParams(0.28, 1.00, 0.050, 23.0),
    "XLF": SymbolParams(0.24, 1.20, 0.055, 19.0),
    "XLI": SymbolParams(0.19, 1.05, 0.065, 24.0),
    "XLK": SymbolParams(0.23, 1.20, 0.090, 30.0),
    "XLP": SymbolParams(0.135, 0.60, 0.060, 25.0),
    "XLU": SymbolParams(0.145, 0.50, 0.055, 27.0),
    "XLV": SymbolParams(0.165, 0.75, 0.070, 26.0),
    "XLY": SymbolParams(0.19, 1.10, 0.075, 25.0),
    "XLRE": SymbolParams(0.19, 0.80, 0.050, 31.0, date(2015, 10, 8)),
    "XLC": SymbolParams(0.20, 1.00, 0.060, 50.0, date(2018, 6, 19)),
    "TLT": SymbolParams(0.145, -0.35, 0.030, 85.0),
    "GLD": SymbolParams(0.16, 0.05, 0.045, 44.0),
    "IEF": SymbolParams(0.135, -0.25, 0.025, 80.0),
    "AGG": SymbolParams(0.13, -0.10, 0.025, 100.0),
}
DEFAULT_VOL, DEFAULT_BETA = 0.20, 1.0


def seed_int(seed: int, name: str) -> int:
    """A 64-bit integer from sha256 of (seed, name): stable across processes and machines."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:8], "little")


def params_for(symbol: str) -> SymbolParams | None:
    """`symbol`'s parameters: from the table, else derived from the name; None if invalid."""
    known = PARAMS.get(symbol)
    if known is not None or not SYMBOL_RE.fullmatch(symbol):
        return known
    h = seed_int(0, "params:" + symbol)
    drift = 0.03 + 0.06 * ((h & 0xFFFF) / 0xFFFF)
    start = 10.0 + 190.0 * (((h >> 16) & 0xFFFF) / 0xFFFF)
    return SymbolParams(DEFAULT_VOL, DEFAULT_BETA, round(drift, 4), round(start, 2))


def _normal(rng: random.Random) -> float:
    """One standard normal by Box-Muller; always consumes exactly two draws."""
    return math.sqrt(-2.0 * math.log(1.0 - rng.random())) * math.cos(_TWO_PI * rng.random())


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


_BASE = session_index(FIRST_DAY)  # calendar session number of the first synthetic close


@lru_cache(maxsize=1)
def _end() -> int:
    """How many synthetic sessions there are (to the end of 2100); lazy: it scans every year."""
    last = date(LAST_YEAR, 12, 31)
    return session_index(last) + is_trading_day(last) - _BASE


@lru_cache(maxsize=4096)
def _minute_info(minute: int) -> tuple[int, float, float, int]:
    """What a UTC minute (since the epoch) means for every symbol: (k, f, sqrt(f(1-f)), mix).

    k is the index (from FIRST_DAY) of the session whose close ends the current move and f the
    elapsed fraction of it: f == 0 means the close of session k-1 applies, f == 1 the close of
    session k. `mix` is splitmix64(minute), combined with each symbol's key for its noise.
    """
    at = datetime.fromtimestamp(minute * 60, timezone.utc)
    d = at.astimezone(NY).date()
    k = session_index(d) - _BASE
    s = session(d)
    if s is None or at < s[0]:
        f = 0.0
    elif at >= s[1]:
        f = 1.0
    else:
        f = (at - s[0]) / (s[1] - s[0])
    return k, f, math.sqrt(f * (1.0 - f)), _splitmix64(minute)


class _Series:
    """One symbol's closes: closes[i] is the close of synthetic session `start + i`.

    `closes` is an array of float64 (rebuilt on each extension): `history` slices it in one
    memcpy and the decision hash reads its bytes directly.
    """

    __slots__ = (
        "params", "start", "closes", "log_p", "rng", "mu", "beta", "idio", "daily_vol", "key"
    )

    def __init__(self, seed: int, symbol: str, params: SymbolParams) -> None:
        self.params = params
        self.start = session_index(params.first_day) - _BASE
        self.closes: array = array("d")
        self.log_p = math.log(params.start_price)  # log of the last close, carried exactly
        self.rng = random.Random(seed_int(seed, symbol))
        self.daily_vol = params.vol / math.sqrt(TRADING_DAYS_PER_YEAR)
        m_vol = params.beta * MARKET_VOL / math.sqrt(TRADING_DAYS_PER_YEAR)
        self.idio = math.sqrt(self.daily_vol**2 - m_vol**2)
        self.mu = params.drift / TRADING_DAYS_PER_YEAR - 0.5 * self.daily_vol**2
        self.beta = params.beta
        self.key = seed_int(seed, "intraday:" + symbol)


class SyntheticMarket:
    """`MarketData` with deterministic synthetic prices; see the module docstring.

    Unknown but well-formed symbols (^[A-Z][A-Z.]{0,9}$) get vol 20%, beta 1 and a drift and
    start price derived from the name; other names are problems / DataError.
    """

    def __init__(self, seed: int = 42) -> None:
        self.seed = seed
        self._market: list[float] = []  # market factor return of each synthetic session
        self._market_rng = random.Random(seed_int(seed, "market"))
        self._stressed = False
        self._series: dict[str, _Series] = {}
        self._before: dict[date, tuple[int, date | None]] = {}
        self._last_price: dict[str, tuple[int, float]] = {}

    # -- generation -------------------------------------------------------------------------

    def _extend_market(self, n: int) -> None:
        rng, out = self._market_rng, self._market
        daily = MARKET_VOL / math.sqrt(TRADING_DAYS_PER_YEAR)
        stressed = self._stressed
        while len(out) < n:
            u = rng.random()
            stressed = u >= _TO_CALM if stressed else u < _TO_STRESS
            out.append(daily * (_STRESSED if stressed else _CALM) * _normal(rng))
        self._stressed = stressed

    def _extend(self, s: _Series, n: int) -> None:
        """Generate closes of `s` up to (not including) synthetic session `n`, in chunks."""
        n = min(max(n, s.start + len(s.closes) + CHUNK), _end())
        self._extend_market(n)
        closes, market, rng = list(s.closes), self._market, s.rng
        mu, beta, idio = s.mu, s.beta, s.idio
        log_p = s.log_p
        if not closes:
            closes.append(s.params.start_price)
        for i in range(s.start + len(closes), n):
            jump = _JUMP_MULT if rng.random() < _JUMP_P else _BASE_MULT
            log_p += mu + beta * market[i] + idio * jump * _normal(rng)
            closes.append(math.exp(log_p))
        s.closes = array("d", closes)
        s.log_p = log_p

    def _get(self, symbol: str) -> _Series | None:
        s = self._series.get(symbol)
        if s is None:
            params = params_for(symbol)
            if params is None:
                return None
            s = self._series[symbol] = _Series(self.seed, symbol, params)
        return s

    # -- MarketData -------------------------------------------------------------------------

    def history(self, symbols: Sequence[str], before: date,
                bars: int | Mapping[str, int]) -> History:
        """The last `bars` closes of each symbol from sessions strictly before `before`.

        A symbol whose data starts too late for the window is simply absent (a fund not listed
        yet); an invalid name is left out and named in `problems`. Raises ValueError for bars < 1 or dates past 2100.
        """
        every, per_symbol = (bars, None) if isinstance(bars, int) else (0, bars)
        if (every if per_symbol is None else min(per_symbol.values(), default=1)) < 1:
            raise ValueError(f"bars must be >= 1, got {bars}")
        info = self._before.get(before)
        if info is None:
            n = min(session_index(before) - _BASE, _end())
            info = self._before[before] = (n, session_date(_BASE + n - 1) if n > 0 else None)
        n, last = info
        closes: dict[str, Sequence[float]] = {}
        problems: dict[str, str] = {}
        for sym in symbols:
            s = self._series.get(sym) or self._get(sym)
            if s is None:
                problems[sym] = f"invalid symbol {sym!r}: expected 1-10 of A-Z and '.'"
                continue
            lo = n - (every if per_symbol is None else per_symbol[sym]) - s.start
            if lo < 0:  # not listed long enough yet (XLRE, XLC): absent, which is no problem
                continue
            if n - s.start > len(s.closes):
                self._extend(s, n)
            closes[sym] = s.closes[lo : n - s.start]
        return History(as_of=last if closes else None, closes=closes, problems=problems)

    def price(self, symbol: str, at: datetime) -> float:
        """The price at instant `at` (UTC-aware), constant within each minute.

        Before the session's open, or on a non-trading day: the previous close; during the
        session: a noisy path from the previous close to the day's close; after: the close.
        Raises DataError for an invalid symbol or an instant outside the symbol's data.
        """
        if at.utcoffset() is None:
            raise ValueError(f"need a timezone-aware datetime, got naive {at!r}")
        minute = int(at.timestamp()) // 60
        last = self._last_price.get(symbol)
        if last is not None and last[0] == minute:
            return last[1]
        s = self._series.get(symbol) or self._get(symbol)
        if s is None:
            raise DataError(symbol, f"invalid symbol {symbol!r}: expected 1-10 of A-Z and '.'")
        k, f, g, mix = _minute_info(minute)
        i = k - s.start
        if f == 1.0:
            lo = hi = i
        else:
            lo, hi = i - 1, (i if f > 0.0 else i - 1)
        if lo < 0:
            raise DataError(symbol, f"no synthetic data before {s.params.first_day}")
        if hi >= len(s.closes):
            if s.start + hi >= _end():
                raise DataError(symbol, f"synthetic data ends {session_date(_BASE + _end() - 1)}")
            self._extend(s, s.start + hi + 1)
        closes = s.closes
        if f == 0.0 or f == 1.0:
            value = closes[hi]
        else:
            p0 = closes[lo]
            h = ((s.key ^ mix) * 0xBF58476D1CE4E5B9) & _MASK64
            h ^= h >> 31
            z = (h & 0xFFFF) + ((h >> 16) & 0xFFFF) + ((h >> 32) & 0xFFFF) + (h >> 48) + 2.0
            z = (z / 65536.0 - 2.0) * _Z_SCALE  # sum of 4 uniforms, standardised: ~N(0, 1)
            value = p0 * math.exp(f * math.log(closes[hi] / p0) + s.daily_vol * g * z)
        self._last_price[symbol] = (minute, value)
        return value
