"""Fixtures shared by the tests of the trail tools (query, replay, report)."""
from __future__ import annotations

import pytest

from tests.trails import TWO_MODELS, simulate_trail


@pytest.fixture(scope="session")
def sim_trail(tmp_path_factory):
    """Six months simulated with two models and a commission. Read-only: copy it to damage it."""
    return simulate_trail(tmp_path_factory.mktemp("sim"), **TWO_MODELS)
