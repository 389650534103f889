"""The live trail verifies itself every BOT_SELF_VERIFY_INTERVAL: the result is scraped from the
metrics over HTTP on 127.0.0.1, and a failure reaches a local webhook once, and events.jsonl."""
from __future__ import annotations

import socket
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from bot.app.runner import guarded_cycle
from bot.settings import Settings
from bot.watch.selfcheck import SelfVerify, verify_trail
from bot.wiring import build_bot
from tests.bot.watch.endpoints import Hook, scrape, value
from tests.fakes import FakeClock, utc

pytestmark = pytest.mark.usefixtures("no_bot_env")
KEY = "0123456789abcdef0123456789abcdef"
SLOT = utc(2025, 3, 3, 15, 0)


@pytest.fixture
def hook():
    h = Hook()
    yield h
    h.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def live_bot(tmp_path: Path, **extra):
    settings = Settings(data_dir=tmp_path / "data", log_dir=tmp_path / "logs", audit_key=KEY,
                        metrics_host="127.0.0.1", market_hours="always", **extra)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return build_bot(settings, FakeClock(SLOT), live=True)


def the(bot, kind):
    (found,) = [o for o in bot.observers if isinstance(o, kind)]
    return found


def cycle(bot, i: int) -> None:
    slot = SLOT + timedelta(minutes=15 * i)
    bot.deps.clock.t = slot
    guarded_cycle(bot, slot)


def events(tmp_path, kind):
    lines = (tmp_path / "logs" / "events.jsonl").read_bytes().splitlines()
    return [r for r in map(orjson.loads, lines) if r["event_type"] == kind]


def close(bot):
    for o in bot.observers:
        o.close()
    bot.deps.trail.close()


def tamper_first_trade(tmp_path) -> None:
    """Change a signed trade's price without changing the line's length (keyless tampering)."""
    path = tmp_path / "logs" / "trades.jsonl"
    data = bytearray(path.read_bytes())
    i = data.index(b'"price":') + len(b'"price":')
    data[i] = ord("9") if data[i] != ord("9") else ord("8")
    path.write_bytes(bytes(data))


@pytest.mark.slow
def test_a_trail_tampered_while_the_bot_runs_sets_the_gauge_to_0_and_alerts_once(tmp_path, hook):
    port = free_port()
    bot = live_bot(tmp_path, metrics_port=port, alert_webhook_url=hook.url,
                   self_verify_interval=1800)
    try:
        cycle(bot, 0)  # the first verify follows the first cycle
        s = scrape(port)
        assert value(s, "tradebot_trail_verify_ok") == 1
        assert value(s, "tradebot_trail_verify_problems") == 0
        assert value(s, "tradebot_trail_verify_timestamp_seconds") == SLOT.timestamp()
        tamper_first_trade(tmp_path)
        cycle(bot, 1)  # 15 minutes later: not due yet
        assert value(scrape(port), "tradebot_trail_verify_ok") == 1
        cycle(bot, 2)  # 30 minutes: due, and the edited trade is found
        s = scrape(port)
        assert value(s, "tradebot_trail_verify_ok") == 0
        assert value(s, "tradebot_trail_verify_problems") >= 1
        assert value(s, "tradebot_trail_verify_timestamp_seconds") == \
            (SLOT + timedelta(minutes=30)).timestamp()
        for i in (3, 4, 5, 6):  # still failing at the next verifies: no second alert or event
            cycle(bot, i)
        assert the(bot, SelfVerify).last.at == SLOT + timedelta(minutes=90)
    finally:
        close(bot)
    assert hook.events() == ["trail_verify_failed"]
    (_path, _headers, body), = hook.posts
    assert "trades.jsonl" in body["text"] and body["details"]["problems"] >= 1
    (event,) = events(tmp_path, "trail_verify_failed")
    assert "trades.jsonl" in event["message"] and event["problems"] >= 1
    said = [x for x in (tmp_path / "logs" / "production.log").read_text().splitlines()
            if "the live trail does not verify" in x]
    assert len(said) == 1 and " WARN " in said[0]


@pytest.mark.slow
def test_a_sound_trail_verifies_with_unsealed_lines_and_raises_nothing(tmp_path, hook):
    port = free_port()
    bot = live_bot(tmp_path, metrics_port=port, alert_webhook_url=hook.url,
                   self_verify_interval=60)
    try:
        for i in range(3):
            cycle(bot, i)
        bot.deps.trail.log("INFO", "a line after the last checkpoint")  # unsealed: not a failure
        the(bot, SelfVerify).check()
        assert value(scrape(port), "tradebot_trail_verify_ok") == 1
    finally:
        close(bot)
    assert hook.posts == [] and events(tmp_path, "trail_verify_failed") == []


def test_after_a_fix_a_new_failure_alerts_again(tmp_path, hook):
    bot = live_bot(tmp_path, alert_webhook_url=hook.url, self_verify_interval=60)
    outcomes = iter([(True, (), "trail valid"), (False, ("INVALID x",), "ALTERED"),
                     (True, (), "trail valid"), (False, ("INVALID y",), "ALTERED")])
    sv = the(bot, SelfVerify)
    sv._verify = lambda log_dir, key: next(outcomes)
    try:
        for i in range(4):
            cycle(bot, i)
    finally:
        close(bot)
    assert hook.events() == ["trail_verify_failed", "trail_verify_failed"]
    assert len(events(tmp_path, "trail_verify_failed")) == 2


def test_interval_0_turns_it_off_and_the_default_is_an_hour(tmp_path):
    bot = live_bot(tmp_path, self_verify_interval=0)
    try:
        assert not [o for o in bot.observers if isinstance(o, SelfVerify)]
    finally:
        close(bot)
    assert Settings().self_verify_interval == 3600


def test_a_bad_interval_is_one_line_and_exit_2(tmp_path):
    import subprocess
    import sys

    from tests.trails import ROOT, clean_env
    proc = subprocess.run([sys.executable, "-m", "bot", "run"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env=clean_env(
                              BOT_SELF_VERIFY_INTERVAL="-5", BOT_DATA_DIR=str(tmp_path / "d"),
                              BOT_LOG_DIR=str(tmp_path / "l"), PYTHONPATH=str(ROOT)))
    assert proc.returncode == 2
    assert "BOT_SELF_VERIFY_INTERVAL" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "l").exists() and not (tmp_path / "d").exists()


def test_verify_trail_reads_what_audit_verify_says(tmp_path):
    bot = live_bot(tmp_path, self_verify_interval=0)
    cycle(bot, 0)
    close(bot)
    ok, problems, summary = verify_trail(tmp_path / "logs", KEY.encode())
    assert ok and problems == () and summary.startswith("trail valid")
    tamper_first_trade(tmp_path)
    ok, problems, summary = verify_trail(tmp_path / "logs", KEY.encode())
    assert not ok and any("trades.jsonl" in p for p in problems)


def test_no_verify_after_a_cycle_whose_trail_could_not_be_written(tmp_path):
    """A full disk halts trading; the files may not even be readable (/dev/full reads forever)."""
    bot = live_bot(tmp_path, self_verify_interval=60)
    sv = the(bot, SelfVerify)
    calls = []
    sv._verify = lambda log_dir, key: calls.append(1) or (True, (), "trail valid")
    try:
        sv.write_failed("cannot write decisions.jsonl: No space left on device")
        from bot.core.observers import CycleReport
        sv.cycle_finished(CycleReport(SLOT, SLOT, 0.1, "the audit trail cannot be written"))
        assert calls == []
        cycle(bot, 0)  # records written again: the verify follows the cycle
        assert calls == [1]
    finally:
        close(bot)


def test_the_live_self_verify_checks_against_the_trails_anchor(tmp_path):
    """A chain cut back to its first record, and the lines after it edited, pass a check of the
    chains alone (the lines read as not yet signed); the live bot's self-verify holds the anchor,
    so it is caught."""
    from audit.trail import AuditTrail
    from audit.verify import verify
    from bot.watch.selfcheck import verify_trail
    from tests.fakes import FakeClock, utc
    key = b"self-verify-key-0123456789"
    trail = AuditTrail(tmp_path / "logs", FakeClock(utc(2025, 3, 3, 15)), durable=True, key=key,
                       data_dir=tmp_path / "data")
    trail.log("INFO", "a line", echo=False)
    trail.checkpoint()
    trail.close()
    logs = tmp_path / "logs"
    chain = (logs / "production.log.chain").read_bytes().splitlines(keepends=True)
    (logs / "production.log.chain").write_bytes(chain[0])  # its trail record only
    (logs / "production.log").write_bytes((logs / "production.log").read_bytes().replace(
        b"a line", b"B line"))
    assert verify(tmp_path / "logs", key).exit_code == 0  # the chains alone cannot tell
    ok, problems, _verdict = verify_trail(tmp_path / "logs", key, anchor=trail.anchor)
    assert not ok and any("production.log" in p for p in problems), problems
