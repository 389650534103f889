"""Sector momentum rotation with a trend filter.

Holds the `top_n` sector ETFs with the best trailing `lookback`-day return, equal weight, while
the trend symbol closes at or above its `trend_window`-day simple average; otherwise ("risk-off")
holds 100% of the defensive symbol. Risk-off while the defensive symbol has no closes (TLT before
mid-2002) holds: the current holdings stay, sectors included (v1's hold rule), and the decision
carries a `risk_off_held` warning for the cycle to record. Pure: no I/O, no clock, no
numpy/pandas.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from models.base import Decision, DecisionWarning, History

SECTOR_ETFS: tuple[str, ...] = (
    "XLB", "XLC", "XLE", "XLF", "XLI", "XLK", "XLP", "XLRE", "XLU", "XLV", "XLY",
)

_isfinite = math.isfinite


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _symbol(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise ValueError(f"{name} must be a non-empty symbol without spaces, got {value!r}")
    return value


class SectorRotationModel:
    """Top-N sector momentum, equal weight, switched to a defensive symbol by a trend filter.

    Scores only; it does not size orders, look at prices beyond `History.closes`, or remember
    anything between calls.
    """

    name = "SectorRotationModel_v1"
    version = "1"

    def __init__(
        self,
        lookback: int = 63,
        top_n: int = 3,
        trend_window: int = 200,
        trend_symbol: str = "SPY",
        defensive_symbol: str = "TLT",
        universe: Sequence[str] = SECTOR_ETFS,
    ) -> None:
        self.return_window = _positive_int("lookback", lookback)
        self.top_n = _positive_int("top_n", top_n)
        self.trend_window = _positive_int("trend_window", trend_window)
        self.trend_symbol = _symbol("trend_symbol", trend_symbol)
        self.defensive_symbol = _symbol("defensive_symbol", defensive_symbol)
        if isinstance(universe, str):
            raise ValueError(f"universe must be a sequence of symbols, not the string {universe!r}")
        uni = tuple(_symbol("universe symbol", s) for s in universe)
        if not uni:
            raise ValueError("universe must name at least one symbol")
        if len(set(uni)) != len(uni):
            dupes = sorted({s for s in uni if uni.count(s) > 1})
            raise ValueError(f"universe has duplicate symbols: {', '.join(dupes)}")
        if self.top_n > len(uni):
            raise ValueError(f"top_n={self.top_n} is larger than the universe ({len(uni)} symbols)")
        self.universe = uni
        self.symbols: tuple[str, ...] = tuple(dict.fromkeys((*uni, trend_symbol, defensive_symbol)))
        self.lookback = max(self.return_window + 1, self.trend_window)
        # only what decide() reads: sectors their return window, the trend symbol its average
        need = {sym: self.return_window + 1 for sym in uni}
        need[trend_symbol] = max(need.get(trend_symbol, 1), self.trend_window)
        need.setdefault(defensive_symbol, 1)
        self.bars: Mapping[str, int] = {sym: need[sym] for sym in self.symbols}
        self._trend_key = f"{trend_symbol}_vs_sma{trend_window}"
        self._weight = 1.0 / self.top_n

    def params(self) -> Mapping[str, Any]:
        return {"lookback": self.return_window, "top_n": self.top_n,
                "trend_window": self.trend_window, "trend_symbol": self.trend_symbol,
                "defensive_symbol": self.defensive_symbol, "universe": list(self.universe)}

    def __repr__(self) -> str:
        return (
            f"SectorRotationModel(lookback={self.return_window}, top_n={self.top_n}, "
            f"trend_window={self.trend_window}, trend_symbol={self.trend_symbol!r}, "
            f"defensive_symbol={self.defensive_symbol!r}, universe={self.universe!r})"
        )

    def decide(self, history: History) -> Decision:
        """Target weights from the closes in `history`; `hold=True` when the data is not enough."""
        closes = history.closes
        tsym = self.trend_symbol
        window = self.trend_window
        trend = closes.get(tsym)
        if trend is None or len(trend) < window:
            have = 0 if trend is None else len(trend)
            return Decision(
                {}, {}, f"hold: {tsym} has {have} closes, the trend filter needs {window}", hold=True
            )

        n = self.return_window
        start = -1 - n
        scores: dict[str, float] = {}
        ranked: list[tuple[float, str]] = []
        for sym in self.universe:
            c = closes.get(sym)
            if c is not None and len(c) > n:
                base = c[start]
                if base > 0.0:
                    r = c[-1] / base - 1.0
                    if _isfinite(r):
                        scores[sym] = r
                        ranked.append((-r, sym))

        last = trend[-1]
        sma = (sum(trend) if len(trend) == window else sum(trend[-window:])) / window
        if not (sma > 0.0 and last > 0.0 and _isfinite(sma) and _isfinite(last)):
            return Decision(
                {}, scores, f"hold: {tsym} closes are not usable for the trend filter", hold=True
            )
        gap = last / sma - 1.0
        scores[self._trend_key] = gap

        top_n = self.top_n
        if len(ranked) < top_n:
            return Decision(
                {}, scores,
                f"hold: only {len(ranked)} sectors have {n + 1} closes, {top_n} are needed",
                hold=True,
            )
        trend_text = (
            f"{tsym} {abs(gap):.1%} {'below' if gap < 0.0 else 'above'} its {window}-day average"
        )
        if last < sma:
            dsym = self.defensive_symbol
            if not closes.get(dsym):
                return self._risk_off_held(scores, trend_text)
            return Decision({dsym: 1.0}, scores, f"risk-off: {trend_text}; 100% in {dsym}")

        ranked.sort()
        picks = [sym for _, sym in ranked[:top_n]]
        w = self._weight
        return Decision(
            dict.fromkeys(picks, w),
            scores,
            f"top {top_n} by {n}-day return: {', '.join(picks)}; {trend_text}",
        )

    def _risk_off_held(self, scores: dict[str, float], trend_text: str) -> Decision:
        """Risk-off with no closes of the defensive symbol: v1 holds what it has, sectors
        included, and says so (moving to cash instead is a later version's rule)."""
        why = f"risk-off ({trend_text}) but {self.defensive_symbol} has no closes"
        warning = DecisionWarning(
            "risk_off_held",
            f"{why}: the current holdings stay, sectors included (v1's hold rule)",
            {"trend_symbol": self.trend_symbol, "defensive_symbol": self.defensive_symbol},
        )
        return Decision({}, scores, f"hold: {why}: the current holdings stay (v1's hold rule)",
                        hold=True, warnings=(warning,))
