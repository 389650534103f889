"""SectorRotationModel: ranking, trend filter, holds, parameters. Hand-made closes only."""
from __future__ import annotations

from array import array
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.base import History
from models.sector_rotation import SECTOR_ETFS, SectorRotationModel

AS_OF = date(2025, 11, 18)


def ramp(start: float, end: float, n: int = 201) -> tuple[float, ...]:
    """n closes from start to end in equal steps (oldest first)."""
    step = (end - start) / (n - 1)
    return tuple(start + i * step for i in range(n))


def sector_closes(returns: dict[str, float], n: int = 201) -> dict[str, tuple[float, ...]]:
    """Closes whose trailing return (any lookback < n) is exactly returns[sym]: flat 100, then a jump."""
    out = {}
    for sym, r in returns.items():
        out[sym] = (100.0,) * (n - 1) + (100.0 * (1.0 + r),)
    return out


RETURNS = {
    "XLB": 0.01, "XLC": 0.02, "XLE": 0.15, "XLF": 0.08, "XLI": 0.03, "XLK": 0.20,
    "XLP": -0.02, "XLRE": 0.00, "XLU": 0.04, "XLV": 0.05, "XLY": 0.06,
}


def history(returns: dict[str, float] = RETURNS, spy: tuple[float, ...] | None = None,
            tlt: bool = True, n: int = 201) -> History:
    closes = sector_closes(returns, n)
    closes["SPY"] = spy if spy is not None else ramp(100.0, 120.0, n)
    if tlt:
        closes["TLT"] = ramp(90.0, 95.0, n)
    return History(as_of=AS_OF, closes=closes)


def test_defaults_and_attributes() -> None:
    m = SectorRotationModel()
    assert m.name == "SectorRotationModel_v1"
    assert m.symbols == SECTOR_ETFS + ("SPY", "TLT")
    assert m.lookback == 200  # max(63 + 1, 200)
    assert SectorRotationModel(lookback=250).lookback == 251
    assert SectorRotationModel(universe=("XLK", "SPY", "XLE"), top_n=2).symbols == ("XLK", "SPY", "XLE", "TLT")


def test_risk_on_holds_top_three_equal_weight() -> None:
    d = SectorRotationModel().decide(history())
    assert not d.hold
    assert d.target_weights == {"XLK": pytest.approx(1 / 3), "XLE": pytest.approx(1 / 3), "XLF": pytest.approx(1 / 3)}
    assert list(d.target_weights) == ["XLK", "XLE", "XLF"]
    assert sum(d.target_weights.values()) == pytest.approx(1.0)
    for sym, r in RETURNS.items():
        assert d.scores[sym] == pytest.approx(r)
    spy = ramp(100.0, 120.0)
    sma = sum(spy[-200:]) / 200
    assert d.scores["SPY_vs_sma200"] == pytest.approx(120.0 / sma - 1.0)
    assert set(d.scores) == set(RETURNS) | {"SPY_vs_sma200"}
    gap = 120.0 / sma - 1.0
    assert d.reason == f"top 3 by 63-day return: XLK, XLE, XLF; SPY {gap:.1%} above its 200-day average"


def test_return_uses_close_lookback_days_back() -> None:
    # Only the close 63 sessions back counts, not older ones.
    closes = list(ramp(50.0, 250.0))
    h = history()
    c = dict(h.closes)
    c["XLB"] = tuple(closes)
    d = SectorRotationModel().decide(History(AS_OF, c))
    assert d.scores["XLB"] == pytest.approx(closes[-1] / closes[-64] - 1.0)


def test_ties_broken_by_symbol_name() -> None:
    rets = {s: 0.05 for s in RETURNS}
    rets["XLY"] = 0.10
    d = SectorRotationModel().decide(history(rets))
    assert list(d.target_weights) == ["XLY", "XLB", "XLC"]


def test_risk_off_goes_to_defensive_symbol() -> None:
    spy = (100.0,) * 200 + (90.0,)
    d = SectorRotationModel().decide(history(spy=spy))
    assert not d.hold
    assert d.target_weights == {"TLT": 1.0}
    sma = (199 * 100.0 + 90.0) / 200
    assert d.scores["SPY_vs_sma200"] == pytest.approx(90.0 / sma - 1.0)
    assert d.scores["XLK"] == pytest.approx(0.20)  # sectors are still scored
    assert d.reason.startswith("risk-off: SPY ")
    assert "below its 200-day average" in d.reason and "TLT" in d.reason


def test_close_equal_to_average_is_risk_on() -> None:
    d = SectorRotationModel().decide(history(spy=(100.0,) * 201))
    assert "TLT" not in d.target_weights
    assert len(d.target_weights) == 3
    assert d.scores["SPY_vs_sma200"] == 0.0


def test_trend_uses_only_the_last_window_closes() -> None:
    # Very high old closes outside the 200-day window must not matter.
    spy = (1000.0,) * 50 + (100.0,) * 200 + (101.0,)
    d = SectorRotationModel().decide(history(spy=spy, n=251))
    sma = (199 * 100.0 + 101.0) / 200
    assert d.scores["SPY_vs_sma200"] == pytest.approx(101.0 / sma - 1.0)
    assert "TLT" not in d.target_weights


def test_missing_sectors_are_not_scored() -> None:
    rets = {s: r for s, r in RETURNS.items() if s not in ("XLRE", "XLC")}
    d = SectorRotationModel().decide(history(rets))
    assert "XLRE" not in d.scores and "XLC" not in d.scores
    assert list(d.target_weights) == ["XLK", "XLE", "XLF"]


def test_sector_with_too_few_closes_is_not_scored() -> None:
    h = history()
    c = dict(h.closes)
    c["XLK"] = (100.0,) * 63 + (200.0,)  # 64 closes: enough
    c["XLE"] = (100.0,) * 62 + (200.0,)  # 63 closes: one short
    d = SectorRotationModel().decide(History(AS_OF, c))
    assert d.scores["XLK"] == pytest.approx(1.0)
    assert "XLE" not in d.scores
    assert list(d.target_weights) == ["XLK", "XLF", "XLY"]


def test_hold_when_too_few_sectors() -> None:
    d = SectorRotationModel().decide(history({"XLK": 0.1, "XLE": 0.2}))
    assert d.hold and d.target_weights == {}
    assert d.reason == "hold: only 2 sectors have 64 closes, 3 are needed"


def test_hold_when_trend_symbol_missing_or_short() -> None:
    h = history()
    c = dict(h.closes)
    del c["SPY"]
    d = SectorRotationModel().decide(History(AS_OF, c))
    assert d.hold and d.target_weights == {}
    assert "SPY" in d.reason
    c["SPY"] = (100.0,) * 199
    d = SectorRotationModel().decide(History(AS_OF, c))
    assert d.hold and d.target_weights == {}
    assert d.reason == "hold: SPY has 199 closes, the trend filter needs 200"


def test_hold_when_risk_off_and_defensive_missing() -> None:
    d = SectorRotationModel().decide(history(spy=(100.0,) * 200 + (50.0,), tlt=False))
    assert d.hold and d.target_weights == {}
    assert d.reason == ("hold: risk-off (SPY 49.9% below its 200-day average) but TLT has no "
                        "closes: the current holdings stay (v1's hold rule)")
    # the fact, for the cycle to record as a warning: the model itself writes nothing
    [warning] = d.warnings
    assert warning.kind == "risk_off_held"
    assert warning.message == ("risk-off (SPY 49.9% below its 200-day average) but TLT has no "
                               "closes: the current holdings stay, sectors included (v1's hold "
                               "rule)")
    assert warning.details == {"trend_symbol": "SPY", "defensive_symbol": "TLT"}


def test_no_warning_when_the_defensive_symbol_is_there_or_not_needed() -> None:
    assert SectorRotationModel().decide(history(spy=(100.0,) * 200 + (50.0,))).warnings == ()
    assert SectorRotationModel().decide(history(tlt=False)).warnings == ()
    assert SectorRotationModel().decide(history(n=10)).warnings == ()  # a hold for lack of data


def test_defensive_missing_does_not_matter_when_risk_on() -> None:
    d = SectorRotationModel().decide(history(tlt=False))
    assert not d.hold and list(d.target_weights) == ["XLK", "XLE", "XLF"]


def test_custom_parameters() -> None:
    m = SectorRotationModel(lookback=5, top_n=1, trend_window=10, trend_symbol="QQQ",
                            defensive_symbol="IEF", universe=("AAA", "BBB"))
    closes = {
        "AAA": (1.0,) * 20 + (2.0,),
        "BBB": (1.0,) * 16 + (3.0,) * 5,  # 6 closes back is 1.0 -> +200%
        "QQQ": (10.0,) * 11,
        "IEF": (5.0,) * 11,
    }
    d = m.decide(History(AS_OF, closes))
    assert d.target_weights == {"BBB": 1.0}
    assert d.scores == {"AAA": pytest.approx(1.0), "BBB": pytest.approx(2.0), "QQQ_vs_sma10": 0.0}
    assert d.reason.startswith("top 1 by 5-day return: BBB; QQQ 0.0% above its 10-day average")


def test_array_closes_decide_like_tuples() -> None:
    h = history()
    as_arrays = History(AS_OF, {s: array("d", c) for s, c in h.closes.items()})
    m = SectorRotationModel()
    assert m.decide(as_arrays) == m.decide(h)
    risk_off = history(spy=(100.0,) * 200 + (90.0,))
    as_arrays = History(AS_OF, {s: array("d", c) for s, c in risk_off.closes.items()})
    assert m.decide(as_arrays).target_weights == {"TLT": 1.0}


def test_pure_same_input_same_output() -> None:
    h = history()
    m = SectorRotationModel()
    assert m.decide(h) == m.decide(h)
    assert SectorRotationModel().decide(h) == m.decide(h)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"lookback": 0}, "lookback"),
        ({"lookback": 2.5}, "lookback"),
        ({"top_n": 0}, "top_n"),
        ({"top_n": True}, "top_n"),
        ({"top_n": 12}, "top_n=12 is larger than the universe"),
        ({"trend_window": -1}, "trend_window"),
        ({"trend_symbol": ""}, "trend_symbol"),
        ({"defensive_symbol": " TLT"}, "defensive_symbol"),
        ({"universe": ()}, "universe"),
        ({"universe": "XLK"}, "universe"),
        ({"universe": ("XLK", "XLK", "XLE"), "top_n": 1}, "duplicate symbols: XLK"),
    ],
)
def test_invalid_parameters(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SectorRotationModel(**kwargs)


@settings(max_examples=200, deadline=None)
@given(
    rets=st.dictionaries(
        st.sampled_from(SECTOR_ETFS), st.floats(-0.5, 2.0, allow_nan=False), max_size=len(SECTOR_ETFS)
    ),
    spy_last=st.floats(50.0, 150.0),
    top_n=st.integers(1, 5),
)
def test_property_weights_are_the_best_scores(rets: dict[str, float], spy_last: float, top_n: int) -> None:
    spy = (100.0,) * 200 + (spy_last,)
    d = SectorRotationModel(top_n=top_n).decide(history(rets, spy=spy))
    if len(rets) < top_n:
        assert d.hold and d.target_weights == {}
        return
    assert not d.hold
    assert sum(d.target_weights.values()) == pytest.approx(1.0)
    sma = (199 * 100.0 + spy_last) / 200
    if spy_last < sma:
        assert d.target_weights == {"TLT": 1.0}
        return
    picked = list(d.target_weights)
    assert len(picked) == top_n and all(w == pytest.approx(1 / top_n) for w in d.target_weights.values())
    worst_picked = min(d.scores[s] for s in picked)
    for s in rets:
        if s not in picked:
            assert d.scores[s] <= worst_picked


def test_bars_ask_only_for_what_decide_reads() -> None:
    m = SectorRotationModel()
    assert m.bars["XLK"] == 64 and m.bars["SPY"] == 200 and m.bars["TLT"] == 1
    assert set(m.bars) == set(m.symbols) and max(m.bars.values()) == m.lookback
