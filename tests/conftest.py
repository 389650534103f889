"""Fixtures shared by the tests of the trail tools (query, replay, report)."""
from __future__ import annotations

import os

import pytest

from tests.trails import TWO_MODELS, simulate_trail


@pytest.fixture(scope="session")
def sim_trail(tmp_path_factory):
    """Six months simulated with two models and a commission. Read-only: copy it to damage it."""
    return simulate_trail(tmp_path_factory.mktemp("sim"), **TWO_MODELS)


@pytest.fixture
def no_bot_env(monkeypatch, tmp_path):
    """No BOT_ setting of the developer's environment, and a scratch working directory (so no
    .env is read): modules that need it say `pytestmark = pytest.mark.usefixtures("no_bot_env")`."""
    for k in list(os.environ):
        if k.startswith("BOT_"):
            monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)
