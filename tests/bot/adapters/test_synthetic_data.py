"""SyntheticMarket: determinism, independence, correlations, vols, availability, contract."""
from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime, timedelta, timezone

import pytest

from bot.adapters.synthetic_data import PARAMS, SyntheticMarket, params_for
from bot.core.calendar import previous_trading_day, session, trading_days
from bot.core.errors import DataError

UTC = timezone.utc


def tuples(history) -> dict:
    """The closes of a History as tuples (adapters return array('d') slices)."""
    return {k: tuple(v) for k, v in history.closes.items()}


def log_returns(closes: tuple[float, ...]) -> list[float]:
    return [math.log(b / a) for a, b in zip(closes, closes[1:])]


def annual_vol(closes: tuple[float, ...]) -> float:
    r = log_returns(closes)
    mean = sum(r) / len(r)
    return math.sqrt(sum((x - mean) ** 2 for x in r) / (len(r) - 1) * 252)


def correlation(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ra, rb = log_returns(a), log_returns(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    return cov / math.sqrt(sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb))


def test_same_seed_same_numbers_whatever_the_call_order() -> None:
    a, b = SyntheticMarket(7), SyntheticMarket(7)
    b.history(["SPY", "TLT"], date(2060, 1, 1), 10)  # b generates far ahead first
    late_b = b.history(["SPY", "TLT"], date(2024, 6, 3), 300)
    late_a = a.history(["TLT", "SPY"], date(2024, 6, 3), 300)
    assert tuples(late_a) == tuples(late_b)
    assert late_a.as_of == late_b.as_of == date(2024, 5, 31)
    at = datetime(2024, 5, 31, 18, 7, tzinfo=UTC)
    assert a.price("SPY", at) == b.price("SPY", at)


def test_numbers_are_pinned() -> None:
    """Same numbers on any machine and Python version: a change here changes every simulation."""
    market = SyntheticMarket(42)
    h = market.history(["SPY", "TLT"], date(2024, 1, 2), 2)
    assert h.closes["SPY"] == pytest.approx((402.3118760826764, 398.9342859300001), rel=1e-9)
    assert h.closes["TLT"] == pytest.approx((54.3635634941872, 54.44613732184541), rel=1e-9)
    at = datetime(2023, 12, 29, 19, 0, tzinfo=UTC)
    assert market.price("SPY", at) == pytest.approx(402.92478330973563, rel=1e-9)
    assert tuple(market.history(["SPY"], date(1998, 1, 5), 1).closes["SPY"]) == (97.0,)


def test_different_seeds_differ() -> None:
    a = SyntheticMarket(1).history(["SPY"], date(2020, 1, 2), 5).closes["SPY"]
    b = SyntheticMarket(2).history(["SPY"], date(2020, 1, 2), 5).closes["SPY"]
    assert a != b


def test_adding_symbols_does_not_change_others() -> None:
    alone = SyntheticMarket(3).history(["XLK"], date(2023, 3, 1), 500).closes["XLK"]
    crowd = SyntheticMarket(3)
    crowd.history(["SPY", "QQQ", "FOO", "XLRE"], date(2030, 1, 1), 50)
    with_others = crowd.history(["AAA", "XLK", "TLT"], date(2023, 3, 1), 500).closes["XLK"]
    assert alone == with_others


def test_tlt_negatively_and_equities_positively_correlated_with_spy() -> None:
    h = SyntheticMarket(42).history(["SPY", "TLT", "QQQ", "IEF"], date(2024, 1, 1), 2500)
    assert correlation(h.closes["SPY"], h.closes["TLT"]) < -0.2
    assert correlation(h.closes["SPY"], h.closes["IEF"]) < -0.1
    assert correlation(h.closes["SPY"], h.closes["QQQ"]) > 0.6


@pytest.mark.parametrize("seed", [42, 5])
def test_realised_vols_in_range(seed: int) -> None:
    market = SyntheticMarket(seed)
    full = [s for s in PARAMS if s not in ("XLRE", "XLC")] + ["ZZZ"]
    h = market.history(full, date(2025, 1, 1), 6000)
    recent = market.history(["XLRE", "XLC"], date(2025, 1, 1), 1500)
    vols = {s: annual_vol(c) for s, c in {**h.closes, **recent.closes}.items()}
    assert set(vols) == set(PARAMS) | {"ZZZ"}
    for sym, vol in vols.items():
        assert 0.12 <= vol <= 0.30, (sym, vol)
    sectors = {s: vols[s] for s in ("XLB", "XLE", "XLF", "XLI", "XLK", "XLP", "XLU", "XLV", "XLY")}
    assert max(sectors, key=sectors.__getitem__) == "XLE"
    assert set(sorted(sectors, key=sectors.__getitem__)[:2]) == {"XLP", "XLU"}
    assert abs(vols["SPY"] - 0.16) < 0.015


def test_prices_positive_up_to_2100() -> None:
    market = SyntheticMarket(42)
    h = market.history(["SPY", "XLE", "TLT", "ZZZ"], date(2100, 12, 31), 25000)
    assert h.as_of == date(2100, 12, 30)
    assert all(min(c) > 0 and all(math.isfinite(x) for x in c) for c in h.closes.values())


def test_default_parameters_for_unknown_symbols() -> None:
    p = params_for("ABC.B")
    assert p is not None and p.vol == 0.20 and p.beta == 1.0 and p.first_day == date(1998, 1, 2)
    assert params_for("ABC.B") == p
    assert params_for("ABD") != p
    assert params_for("abc") is None and params_for("TOOLONGNAME") is None and params_for("") is None


def test_xlre_and_xlc_availability() -> None:
    market = SyntheticMarket(42)
    first = market.history(["XLRE", "XLC"], date(2015, 10, 9), 1)
    assert tuples(first) == {"XLRE": (31.0,)}
    assert first.as_of == date(2015, 10, 8)
    assert first.problems == {}  # XLC is not listed yet: absent, not a problem
    too_early = market.history(["XLRE"], date(2015, 10, 8), 1)
    assert tuples(too_early) == {} and too_early.as_of is None and too_early.problems == {}
    short = market.history(["XLRE", "SPY"], date(2016, 1, 4), 201)
    assert "XLRE" not in short.closes and short.problems == {}
    assert len(short.closes["SPY"]) == 201
    assert tuples(market.history(["XLC"], date(2018, 6, 20), 1)) == {"XLC": (50.0,)}
    assert "XLC" not in market.history(["XLC"], date(2018, 6, 19), 1).closes


def test_history_contract() -> None:
    market = SyntheticMarket(42)
    h = market.history(["SPY", "QQQ", "bad-name"], date(2024, 4, 1), 201)  # a Monday after Good Friday
    assert h.as_of == date(2024, 3, 28)
    assert set(h.closes) == {"SPY", "QQQ"} and set(h.problems) == {"bad-name"}
    assert all(len(c) == 201 and isinstance(c, Sequence) for c in h.closes.values())
    nxt = market.history(["SPY"], date(2024, 4, 2), 201)
    assert nxt.as_of == date(2024, 4, 1)
    assert list(nxt.closes["SPY"][:-1]) == list(h.closes["SPY"][1:])  # one session later, shifted by one
    weekend = market.history(["SPY"], date(2024, 3, 30), 201)
    assert list(weekend.closes["SPY"]) == list(h.closes["SPY"]) and weekend.as_of == h.as_of
    days = trading_days(date(2023, 1, 1), date(2024, 3, 28))
    assert len(market.history(["SPY"], date(2024, 3, 29), len(days)).closes["SPY"]) == len(days)


def test_history_nothing_usable() -> None:
    h = SyntheticMarket(42).history(["bad", "1AB"], date(2024, 1, 2), 5)
    assert tuples(h) == {} and h.as_of is None and set(h.problems) == {"bad", "1AB"}
    h = SyntheticMarket(42).history(["SPY"], date(1998, 1, 5), 5)
    assert tuples(h) == {} and h.problems == {}  # only one session exists before 1998-01-05
    with pytest.raises(ValueError):
        SyntheticMarket(42).history(["SPY"], date(2024, 1, 2), 0)


def test_price_before_during_after_session() -> None:
    market = SyntheticMarket(42)
    day = date(2024, 3, 28)
    opens, closes_at = session(day)  # type: ignore[misc]
    prev_close = market.history(["SPY"], day, 1).closes["SPY"][0]
    day_close = market.history(["SPY"], day + timedelta(days=1), 1).closes["SPY"][0]
    assert market.price("SPY", opens - timedelta(hours=3)) == prev_close
    assert market.price("SPY", opens) == prev_close
    assert market.price("SPY", closes_at) == day_close
    assert market.price("SPY", closes_at + timedelta(hours=5)) == day_close
    assert market.price("SPY", datetime(2024, 3, 29, 15, 0, tzinfo=UTC)) == day_close  # Good Friday
    assert market.price("SPY", datetime(2024, 3, 31, 15, 0, tzinfo=UTC)) == day_close  # Sunday
    # during the session: between the two closes up to the bridge noise, and not flat
    sigma = PARAMS["SPY"].vol / math.sqrt(252)
    lo, hi = min(prev_close, day_close), max(prev_close, day_close)
    path = [market.price("SPY", opens + timedelta(minutes=m)) for m in range(1, 390)]
    assert all(lo * math.exp(-2 * sigma) < p < hi * math.exp(2 * sigma) for p in path)
    assert len(set(path)) > 300
    move = abs(math.log(day_close / prev_close))
    assert abs(math.log(path[0] / prev_close)) <= move / 390 + 0.2 * sigma  # 09:31: near the open
    assert abs(math.log(path[-1] / day_close)) <= move / 390 + 0.2 * sigma  # 15:59: near the close


def test_price_constant_within_a_minute_and_deterministic() -> None:
    a, b = SyntheticMarket(42), SyntheticMarket(42)
    t = datetime(2024, 3, 28, 19, 45, 5, tzinfo=UTC)
    assert a.price("XLK", t) == a.price("XLK", t + timedelta(seconds=50))
    assert a.price("XLK", t) != a.price("XLK", t + timedelta(seconds=60))
    assert a.price("XLK", t) == b.price("XLK", t.astimezone(timezone(timedelta(hours=-4))))
    assert SyntheticMarket(43).price("XLK", t) != a.price("XLK", t)


def test_price_errors() -> None:
    market = SyntheticMarket(42)
    with pytest.raises(DataError, match="bad"):
        market.price("bad", datetime(2024, 3, 28, 19, 45, tzinfo=UTC))
    with pytest.raises(DataError, match="2015-10-08"):
        market.price("XLRE", datetime(2015, 10, 8, 15, 0, tzinfo=UTC))
    assert market.price("XLRE", datetime(2015, 10, 8, 21, 0, tzinfo=UTC)) == 31.0
    with pytest.raises(ValueError):
        market.price("SPY", datetime(2024, 3, 28, 15, 45))


def test_price_follows_previous_trading_day_on_weekends() -> None:
    market = SyntheticMarket(9)
    saturday = date(2024, 6, 8)
    friday = previous_trading_day(saturday)
    close = market.history(["IWM"], saturday, 1).closes["IWM"][0]
    assert friday == date(2024, 6, 7)
    assert market.price("IWM", datetime(2024, 6, 8, 16, 0, tzinfo=UTC)) == close
    assert market.price("IWM", datetime(2024, 6, 10, 13, 0, tzinfo=UTC)) == close  # Monday 09:00 NY


def test_history_takes_bars_per_symbol() -> None:
    market = SyntheticMarket(42)
    h = market.history(["SPY", "TLT"], date(2024, 3, 1), {"SPY": 200, "TLT": 3})
    assert len(h.closes["SPY"]) == 200 and len(h.closes["TLT"]) == 3
    full = market.history(["TLT"], date(2024, 3, 1), 200)
    assert list(h.closes["TLT"]) == list(full.closes["TLT"][-3:])
