"""EqualWeightModel: 1/n over the symbols present, hold when none."""
from __future__ import annotations

from array import array
from datetime import date

import pytest

from models.base import History
from models.equal_weight import EqualWeightModel

AS_OF = date(2025, 11, 18)


def test_defaults() -> None:
    m = EqualWeightModel()
    assert m.name == "EqualWeightModel_v1"
    assert m.symbols == ("SPY", "QQQ", "TLT")
    assert m.lookback == 1


def test_equal_weight_over_all_symbols() -> None:
    d = EqualWeightModel().decide(History(AS_OF, {"SPY": (500.0,), "QQQ": (400.0,), "TLT": (90.0,), "XLK": (1.0,)}))
    assert not d.hold
    assert d.target_weights == {"SPY": pytest.approx(1 / 3), "QQQ": pytest.approx(1 / 3), "TLT": pytest.approx(1 / 3)}
    assert d.reason == "equal weight 33.3% each in SPY, QQQ, TLT"


def test_missing_symbol_reweights_the_rest() -> None:
    d = EqualWeightModel().decide(History(AS_OF, {"SPY": (500.0,), "TLT": array("d", [90.0, 91.0])}, {"QQQ": "gap"}))
    assert d.target_weights == {"SPY": 0.5, "TLT": 0.5}
    assert d.reason == "equal weight 50.0% each in SPY, TLT; no closes for QQQ"


def test_hold_when_no_symbol_present() -> None:
    d = EqualWeightModel().decide(History(AS_OF, {"XLK": (1.0,), "SPY": (), "QQQ": array("d")}))
    assert d.hold and d.target_weights == {}
    assert d.reason == "hold: none of SPY, QQQ, TLT has closes"


def test_custom_symbols_keep_their_order() -> None:
    m = EqualWeightModel(symbols=["GLD", "IEF"])
    assert m.symbols == ("GLD", "IEF")
    d = m.decide(History(AS_OF, {"IEF": (1.0,), "GLD": (2.0,)}))
    assert list(d.target_weights) == ["GLD", "IEF"]
    assert d.target_weights["GLD"] == 0.5


@pytest.mark.parametrize("symbols", [(), "SPY", ("SPY", "SPY"), ("SPY", ""), ("SPY", 3)])
def test_invalid_symbols(symbols: object) -> None:
    with pytest.raises(ValueError, match="symbols"):
        EqualWeightModel(symbols=symbols)  # type: ignore[arg-type]
