"""Model names -> factories, and building a model from a common bag of parameters.

Only construction: it does not validate parameter values (each model's constructor does) and
holds no instances.
"""
from __future__ import annotations

import inspect
from types import MappingProxyType
from typing import Any, Callable, Mapping

from models.base import Model
from models.equal_weight import EqualWeightModel
from models.sector_rotation import SectorRotationModel

MODEL_FACTORIES: Mapping[str, Callable[..., Model]] = MappingProxyType(
    {
        SectorRotationModel.name: SectorRotationModel,
        EqualWeightModel.name: EqualWeightModel,
    }
)


def available_models() -> list[str]:
    """The registered model names, sorted."""
    return sorted(MODEL_FACTORIES)


def accepted_params(factory: Callable[..., Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """The subset of `params` that `factory` accepts by keyword (all of them if it takes **kwargs)."""
    sig = inspect.signature(factory)
    kinds = {p.name: p.kind for p in sig.parameters.values()}
    if inspect.Parameter.VAR_KEYWORD in kinds.values():
        return dict(params)
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {k: v for k, v in params.items() if kinds.get(k) in keyword}


def build_model(name: str, **params: Any) -> Model:
    """Build the model registered as `name`, passing only the params its factory accepts.

    Raises ValueError for an unknown name; the factory raises ValueError for bad values.
    """
    factory = MODEL_FACTORIES.get(name)
    if factory is None:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(available_models())}")
    return factory(**accepted_params(factory, params))
