"""Model registry: names, building from a common bag of params, errors."""
from __future__ import annotations

import pytest

from models.equal_weight import EqualWeightModel
from models.registry import MODEL_FACTORIES, accepted_params, available_models, build_model
from models.sector_rotation import SectorRotationModel


def test_available_models_sorted() -> None:
    assert available_models() == ["EqualWeightModel_v1", "SectorRotationModel_v1"]


def test_each_factory_builds_a_model_named_like_its_key() -> None:
    for name in MODEL_FACTORIES:
        m = build_model(name)
        assert m.name == name
        assert isinstance(m.symbols, tuple) and m.symbols
        assert m.lookback >= 1


def test_registry_is_read_only() -> None:
    with pytest.raises(TypeError):
        MODEL_FACTORIES["x"] = EqualWeightModel  # type: ignore[index]


def test_build_passes_only_accepted_params() -> None:
    bag = {"lookback": 20, "top_n": 2, "symbols": ("GLD", "IEF"), "not_a_param": 1}
    sr = build_model("SectorRotationModel_v1", **bag)
    assert isinstance(sr, SectorRotationModel)
    assert sr.return_window == 20 and sr.top_n == 2
    assert sr.lookback == 200
    ew = build_model("EqualWeightModel_v1", **bag)
    assert isinstance(ew, EqualWeightModel)
    assert ew.symbols == ("GLD", "IEF")


def test_unknown_model() -> None:
    with pytest.raises(ValueError) as err:
        build_model("Nope_v9", lookback=3)
    assert str(err.value) == "unknown model 'Nope_v9'; available: EqualWeightModel_v1, SectorRotationModel_v1"


def test_bad_value_is_the_models_error() -> None:
    with pytest.raises(ValueError, match="top_n"):
        build_model("SectorRotationModel_v1", top_n=0)


def test_accepted_params_with_var_keyword() -> None:
    def factory(a: int, *, b: int = 0, **rest: int) -> None: ...

    def strict(a: int, *args: int, b: int = 0) -> None: ...

    assert accepted_params(factory, {"a": 1, "z": 2}) == {"a": 1, "z": 2}
    assert accepted_params(strict, {"a": 1, "b": 2, "args": 3, "z": 4}) == {"a": 1, "b": 2}
