"""Fixtures shared by every test: a simulated trail, the environment without BOT_ settings, a user
that file modes apply to (tests/unprivileged.py), and the check of every record written."""
from __future__ import annotations

import os

import pytest

from tests.trails import TWO_MODELS, is_bot_setting, simulate_trail
from tests.unprivileged import shared_tmp, unprivileged  # noqa: F401 - fixtures for every test


@pytest.fixture(scope="session")
def sim_trail(tmp_path_factory):
    """Six months simulated with two models and a commission. Read-only: copy it to damage it."""
    return simulate_trail(tmp_path_factory.mktemp("sim"), **TWO_MODELS)


@pytest.fixture
def no_bot_env(monkeypatch, tmp_path):
    """No BOT_ setting of the developer's environment, and the test's tmp_path as the working
    directory (so no .env is read): the one way a test gets settings of its own making. Modules
    that need it throughout say `pytestmark = pytest.mark.usefixtures("no_bot_env")`; a subprocess
    gets the same from `tests.trails.clean_env()`."""
    for name in [name for name in os.environ if is_bot_setting(name)]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def records_follow_the_declared_format(request, monkeypatch):
    """Every record any test writes through an AuditTrail is checked against the one declaration
    of the format (audit/format.py, generated from the record types): a field out of
    order or of the wrong type fails the test that wrote it. Tests that record made-up kinds on
    purpose say `@pytest.mark.undeclared_kinds`."""
    if request.node.get_closest_marker("undeclared_kinds"):
        yield
        return
    import orjson

    from audit.check import record_problems
    from audit.records import encode
    from audit.trail import AuditTrail
    original = AuditTrail.record
    wrong: list[str] = []

    def record(self, rec, **kw):
        ts = original(self, rec, **kw)
        written = orjson.loads(encode(rec, ts))
        wrong.extend(f"{rec.stream} {rec.event_type}: {p}" for p in record_problems(rec.stream, written))
        return ts

    monkeypatch.setattr(AuditTrail, "record", record)
    yield
    assert not wrong, "records that do not follow audit/format.py:\n" + "\n".join(wrong)
