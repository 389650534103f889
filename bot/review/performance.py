"""Pure performance figures of a value series (one value per trading day)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Sequence

TRADING_DAYS = 252
CAGR_HELP = ("Return and CAGR are measured from the account's opening NAV (the starting cash of a "
             "fresh account, before the first trade, so the first day's costs count) to the last "
             "cycle's NAV, over the calendar days from the first cycle's New York date to the "
             "last one's; `tradebot simulate` and `tradebot report` use this one definition.")


@dataclass(frozen=True, slots=True)
class Performance:
    total_return: float
    cagr: float
    volatility: float
    sharpe: float
    max_drawdown: float


def from_opening(opening: float | None, daily: Sequence[float], start: date,
                 end: date) -> Performance:
    """The strategy's figures as CAGR_HELP defines them: `daily` is the last NAV of each trading
    day from `start` to `end`, `opening` the account's NAV before the first trade (None: the
    first daily NAV is the base)."""
    return performance(([opening] if opening is not None else []) + list(daily), start, end)


def _annualised(ratio: float, years: float) -> float:
    try:
        return ratio ** (1 / years)
    except OverflowError:
        return math.inf


def performance(values: Sequence[float], start: date, end: date) -> Performance:
    """Total return, CAGR (calendar days), annualised volatility, Sharpe (risk-free 0) and the
    largest peak-to-trough drop, as fractions. Zeros when fewer than two values."""
    if len(values) < 2 or values[0] <= 0:
        return Performance(0.0, 0.0, 0.0, 0.0, 0.0)
    rets = [b / a - 1.0 for a, b in zip(values, values[1:]) if a > 0]
    total = values[-1] / values[0] - 1.0
    years = max((end - start).days, 1) / 365.25
    cagr = _annualised(values[-1] / values[0], years) - 1.0 if values[-1] > 0 else -1.0
    mean = sum(rets) / len(rets)
    # products, not `** 2`: an absurd value (a close of 1e308) gives inf, never OverflowError
    var = sum((r - mean) * (r - mean) for r in rets) / (len(rets) - 1) if len(rets) > 1 else 0.0
    sd = math.sqrt(var)
    peak, mdd = values[0], 0.0
    for v in values:
        peak = max(peak, v)
        mdd = min(mdd, v / peak - 1.0)
    return Performance(total, cagr, sd * math.sqrt(TRADING_DAYS),
                       mean / sd * math.sqrt(TRADING_DAYS) if sd > 0 else 0.0, mdd)
