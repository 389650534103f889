"""Webhook alerts, received by a local HTTP server on 127.0.0.1 (no network)."""
from __future__ import annotations

import socket
from datetime import timedelta

import pytest

from bot.app.runner import guarded_cycle
from bot.core.observers import CycleReport
from bot.watch.alerts import WebhookAlerts
from tests.bot.watch.endpoints import TOKEN, Hook
from tests.fakes import SLOT, FakeClock, fill_disk, make_bot, utc


@pytest.fixture
def hook():
    h = Hook()
    yield h
    h.stop()


class Notes:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def __call__(self, level: str, message: str) -> None:
        self.lines.append((level, message))

    def text(self) -> str:
        return "\n".join(m for _, m in self.lines)


def alerts(url: str, after: int = 3, **kw) -> WebhookAlerts:
    kw.setdefault("clock", FakeClock(utc(2025, 3, 3, 15, 0, 7)))
    kw.setdefault("log", Notes())
    return WebhookAlerts(url, after, retry_pause=0, **kw)


def report(ok: bool, minute: int = 0) -> CycleReport:
    return CycleReport(SLOT + timedelta(minutes=minute), SLOT, 0.5,
                       None if ok else "RuntimeError: broker fell over")


def attach(bot, a: WebhookAlerts) -> None:
    bot.deps.trail.listeners.append(a)
    bot.observers = (*bot.observers, a)


def test_a_halt_posts_one_small_json_body(hook):
    a = alerts(hook.url)
    a.halted("the audit trail cannot be written\n(disk full)")
    a.halted("again")  # one halt, one alert
    a.close()
    ((path, headers, body),) = hook.posts
    assert path == f"/hooks/{TOKEN}"
    assert headers["Content-Type"] == "application/json"
    assert set(body) == {"text", "event", "bot", "timestamp", "details"}
    assert body["event"] == "halted" and body["bot"] == "tradebot"
    assert body["text"] == ("tradebot: trading halted: the audit trail cannot be written "
                            "(disk full)")
    assert "\n" not in body["text"]
    assert body["timestamp"] == "2025-03-03T15:00:07.000000+00:00"
    assert body["details"] == {"reason": "the audit trail cannot be written (disk full)"}


def test_the_kill_switch_alerts_once_per_engagement(tmp_path, hook):
    bot = make_bot(tmp_path)
    a = alerts(hook.url)
    attach(bot, a)
    kill = tmp_path / "KILL_SWITCH"
    slots = [SLOT + timedelta(minutes=15 * i) for i in range(6)]

    def cycle(i):
        bot.deps.clock.t = slots[i]
        guarded_cycle(bot, slots[i])

    kill.touch()
    for i in range(3):  # engaged three cycles running: one alert
        cycle(i)
    kill.unlink()
    cycle(3)  # a clear cycle re-arms
    kill.touch()
    cycle(4)
    cycle(5)
    a.close()
    assert hook.events() == ["kill_switch", "kill_switch"]
    first, second = (body for _, _, body in hook.posts)
    assert first["details"]["cycle_timestamp"] == "2025-03-03T15:00:00+00:00"
    assert second["details"]["cycle_timestamp"] == "2025-03-03T16:00:00+00:00"
    assert "kill switch engaged" in first["text"] and "KILL_SWITCH" in first["text"]


def test_a_failed_cycle_does_not_rearm_the_kill_switch(tmp_path, hook):
    bot = make_bot(tmp_path)
    a = alerts(hook.url, after=10)
    attach(bot, a)
    (tmp_path / "KILL_SWITCH").touch()
    guarded_cycle(bot, SLOT)
    real = bot.deps.broker.account
    bot.deps.broker.account = lambda: (_ for _ in ()).throw(RuntimeError("broker fell over"))
    bot.deps.clock.t = SLOT + timedelta(minutes=15)
    guarded_cycle(bot, bot.deps.clock.t)  # fails before the kill switch is looked at
    bot.deps.broker.account = real
    bot.deps.clock.t = SLOT + timedelta(minutes=30)
    guarded_cycle(bot, bot.deps.clock.t)
    a.close()
    assert hook.events() == ["kill_switch"]


def test_n_failures_in_a_row_alert_once_per_streak(hook):
    a = alerts(hook.url, after=3)
    for ok in (False, False, True, False, False):  # broken streaks: nothing
        a.cycle_finished(report(ok))
    a.cycle_finished(report(False, 15))  # third in a row
    a.cycle_finished(report(False, 30))
    a.cycle_finished(report(False, 45))
    a.cycle_finished(report(True))
    for _ in range(3):
        a.cycle_finished(report(False))
    a.close()
    assert hook.events() == ["cycles_failing", "cycles_failing"]
    body = hook.posts[0][2]
    assert body["details"] == {"failures": 3, "error": "RuntimeError: broker fell over",
                               "cycle_timestamp": "2025-03-03T15:15:00+00:00"}
    assert body["text"].startswith("tradebot: 3 cycles failed in a row")


def test_an_unwritable_trail_alerts_once(tmp_path, hook, monkeypatch):
    bot = make_bot(tmp_path)
    a = alerts(hook.url, after=3)
    attach(bot, a)
    fill_disk(tmp_path / "logs" / "decisions.jsonl", monkeypatch.setattr)  # every write: ENOSPC
    with pytest.raises(Exception, match="audit trail cannot be written"):
        guarded_cycle(bot, SLOT)
    a.write_failed("cannot write decisions.jsonl: No space left on device")  # no second alert
    a.halted("the audit trail cannot be written")
    a.close()
    assert hook.events() == ["audit_write_failed", "halted"]
    details = hook.posts[0][2]["details"]
    assert "decisions.jsonl" in details["error"] and "No space left" in details["error"]


def test_a_500_is_tried_twice_then_logged_to_the_trail_without_the_url(tmp_path):
    hook = Hook(status=500)
    bot = make_bot(tmp_path)
    a = alerts(hook.url, log=bot.deps.trail.log)
    attach(bot, a)
    a.halted("test")  # must not raise
    a.close()
    hook.stop()
    assert hook.events() == ["halted", "halted"]  # at most two tries
    text = (tmp_path / "logs" / "production.log").read_text()
    (line,) = [x for x in text.splitlines() if "alert webhook" in x]
    assert "WARN" in line and "HTTP 500" in line and "trading goes on" in line
    assert TOKEN not in text and hook.url not in text


def test_a_4xx_is_not_tried_again():
    hook = Hook(status=404)
    a = alerts(hook.url)
    a.halted("test")
    a.close()
    hook.stop()
    assert hook.events() == ["halted"]
    assert "HTTP 404" in a._log.text()


def test_a_closed_port_logs_to_stderr_by_default_and_never_raises(capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/hooks/{TOKEN}"
    a = WebhookAlerts(url, 3, retry_pause=0)
    a.halted("test")
    a.cycle_finished(report(False))
    a.close()
    err = capsys.readouterr().err
    assert "the alert webhook did not take the halted alert after 2 tries" in err
    assert "refused" in err.lower()
    assert TOKEN not in err and url not in err
    assert TOKEN not in repr(a)


@pytest.mark.slow
def test_a_webhook_that_never_answers_times_out(tmp_path):
    hook = Hook(hang=True)
    a = alerts(hook.url, timeout=0.2)
    a.halted("test")
    a.close()
    hook.stop()
    assert len(hook.posts) == 2
    assert "timed out" in a._log.text() and TOKEN not in a._log.text()


def test_a_failing_log_falls_back_to_stderr(capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def broken_log(level, message):
        raise OSError("No space left on device")

    a = WebhookAlerts(f"http://127.0.0.1:{port}/{TOKEN}", 3, log=broken_log, retry_pause=0)
    a.halted("disk full")
    a.close()
    assert "the alert webhook did not take the halted alert" in capsys.readouterr().err
