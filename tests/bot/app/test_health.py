"""`tradebot health`, the heartbeat it reads, and the start-up writability check.

Permission cases need a user that permissions apply to: root ignores modes, so as root they
run in a subprocess as `nobody` (UID 65534) inside a world-traversable temporary directory.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from audit.records import PRODUCTION_LOG, STREAMS
from bot.app.health import check_health, check_writable, format_age, health_main
from bot.core.errors import ConfigError
from bot.core.layout import HEARTBEAT_FILE
from bot.core.observers import CycleReport
from bot.settings import Settings
from bot.watch.heartbeat import Heartbeat
from tests.trails import clean_env
from tests.unprivileged import User, give_to

SLOT = datetime(2025, 3, 3, 15, 0, tzinfo=timezone.utc)  # a Monday, 10:00 in New York


pytestmark = pytest.mark.usefixtures("no_bot_env")


def settings(base: Path, **changes) -> Settings:
    kw = dict(log_dir=base / "logs", data_dir=base / "data", schedule="every 15 minutes",
              market_hours="always")
    return Settings(_env_file=None, **{**kw, **changes})


def make_dirs(base: Path) -> Path:
    """A log directory with every stream file (as a trail leaves it) and a data directory."""
    logs = base / "logs"
    logs.mkdir(parents=True)
    (base / "data").mkdir()
    for name in (*STREAMS, PRODUCTION_LOG):
        (logs / name).write_bytes(b"")
    return base


def beat(base: Path, slot: datetime = SLOT, error: str | None = None, **summary) -> Heartbeat:
    hb = Heartbeat(base / "data" / HEARTBEAT_FILE,
                   {"schedule": "every 15 minutes", "market_hours": "always", **summary})
    hb.cycle_finished(CycleReport(slot, slot + timedelta(seconds=1), 2.5, error,
                                  None if error else 100_000.0, None if error else 1_000.0))
    return hb


# -- the heartbeat file -----------------------------------------------------------------------

def test_heartbeat_is_a_private_json_document_of_the_last_cycle(tmp_path):
    base = make_dirs(tmp_path)
    beat(base, broker="sim")
    path = base / "data" / HEARTBEAT_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = orjson.loads(path.read_bytes())
    assert doc == {"slot": "2025-03-03T15:00:00+00:00",
                   "started": "2025-03-03T15:00:01.000000+00:00",
                   "finished": "2025-03-03T15:00:03.500000+00:00", "seconds": 2.5, "ok": True,
                   "error": None, "broker_ok": True, "nav": 100_000.0, "cash": 1_000.0,
                   "pid": os.getpid(), "schedule": "every 15 minutes", "market_hours": "always",
                   "broker": "sim"}
    assert [p.name for p in (base / "data").iterdir()] == [HEARTBEAT_FILE]  # no temp file left


def test_a_failed_cycle_says_the_broker_was_not_confirmed(tmp_path):
    base = make_dirs(tmp_path)
    beat(base, error="ConnectionError: broker unreachable")
    doc = orjson.loads((base / "data" / HEARTBEAT_FILE).read_bytes())
    assert (doc["ok"], doc["broker_ok"], doc["error"]) == (
        False, False, "ConnectionError: broker unreachable")


def test_a_halt_keeps_the_last_cycle_and_adds_the_reason(tmp_path):
    base = make_dirs(tmp_path)
    beat(base)
    later = Heartbeat(base / "data" / HEARTBEAT_FILE, {"schedule": "every 15 minutes"},
                      now=lambda: SLOT + timedelta(hours=1))
    later.halted("reconcile found differences")  # a new process, halted before any cycle
    doc = orjson.loads((base / "data" / HEARTBEAT_FILE).read_bytes())
    assert doc["slot"] == "2025-03-03T15:00:00+00:00" and doc["nav"] == 100_000.0
    assert doc["halted"] == "reconcile found differences"
    assert doc["halted_at"] == "2025-03-03T16:00:00.000000+00:00"


def test_a_heartbeat_that_cannot_be_written_never_raises_and_warns_once(tmp_path, capsys):
    hb = Heartbeat(tmp_path / "missing" / HEARTBEAT_FILE, {})
    report = CycleReport(SLOT, SLOT, 1.0)
    hb.cycle_finished(report)
    hb.cycle_finished(report)
    hb.halted("stop")
    hb.close()
    err = capsys.readouterr().err
    assert err.count("cannot write the heartbeat") == 1 and str(tmp_path / "missing") in err


# -- health from the heartbeat ----------------------------------------------------------------

def test_healthy_after_a_fresh_heartbeat(tmp_path, capsys):
    base = make_dirs(tmp_path)
    beat(base)
    now = SLOT + timedelta(minutes=7)
    report = check_health(settings(base), now)
    assert report.ok and report.reasons == []
    assert health_main(settings(base), now) == 0
    assert capsys.readouterr().out == (
        "healthy: last cycle 2025-03-03T15:00:00+00:00 finished 6m 56s ago (nav 100,000.00)\n")


def test_stale_when_the_due_slot_is_long_past(tmp_path, capsys):
    base = make_dirs(tmp_path)
    beat(base)
    now = SLOT + timedelta(hours=3, minutes=10)
    report = check_health(settings(base), now)
    assert not report.ok
    (reason,) = report.reasons
    assert reason.startswith("stale: the last cycle was slot 2025-03-03T15:00:00+00:00")
    assert "slot 2025-03-03T18:00:00+00:00 was due 10m 00s ago" in reason
    assert health_main(settings(base), now) == 1
    assert capsys.readouterr().out.startswith("unhealthy: stale: ")


def test_a_due_slot_within_grace_may_still_be_running(tmp_path):
    base = make_dirs(tmp_path)
    beat(base)
    next_slot = SLOT + timedelta(minutes=15)
    s = settings(base, health_grace=300, fill_timeout=30)
    assert check_health(s, next_slot + timedelta(seconds=330)).ok
    late = check_health(s, next_slot + timedelta(seconds=331))
    assert not late.ok and "slot 2025-03-03T15:15:00+00:00 was due 5m 31s ago" in late.reasons[0]


def test_grace_does_not_cover_a_bot_that_was_down_before_the_slot(tmp_path):
    base = make_dirs(tmp_path)
    beat(base, slot=SLOT - timedelta(hours=2))
    report = check_health(settings(base), SLOT + timedelta(seconds=10))  # 15:00 just due
    assert not report.ok and "slot 2025-03-03T14:45:00+00:00 was due" in report.reasons[0]


def test_nyse_hours_count_the_last_session_over_a_weekend(tmp_path):
    base = make_dirs(tmp_path)
    friday_last = datetime(2025, 2, 28, 20, 45, tzinfo=timezone.utc)  # 15:45 New York
    sunday = datetime(2025, 3, 2, 18, 0, tzinfo=timezone.utc)
    s = settings(base, market_hours="nyse")
    beat(base, slot=friday_last)
    assert check_health(s, sunday).ok
    beat(base, slot=friday_last - timedelta(minutes=15))
    report = check_health(s, sunday)
    assert not report.ok and "slot 2025-02-28T20:45:00+00:00 was due" in report.reasons[0]


def test_unhealthy_when_the_last_cycle_failed(tmp_path):
    base = make_dirs(tmp_path)
    beat(base, error="ConnectionError: broker unreachable")
    report = check_health(settings(base), SLOT + timedelta(minutes=5))
    assert report.reasons == ["the last cycle (slot 2025-03-03T15:00:00+00:00) failed: "
                              "ConnectionError: broker unreachable"]


def test_unhealthy_when_the_broker_did_not_answer(tmp_path):
    base = make_dirs(tmp_path)
    beat(base)
    path = base / "data" / HEARTBEAT_FILE
    path.write_bytes(orjson.dumps({**orjson.loads(path.read_bytes()), "broker_ok": False}))
    report = check_health(settings(base), SLOT + timedelta(minutes=5))
    assert not report.ok and report.reasons[0].startswith("the broker did not answer")


def test_unhealthy_when_halted(tmp_path):
    base = make_dirs(tmp_path)
    hb = beat(base)
    hb.halted("the audit trail cannot be written")
    report = check_health(settings(base), SLOT + timedelta(minutes=5))
    assert report.reasons == ["trading halted: the audit trail cannot be written"]


def test_unhealthy_when_the_heartbeat_is_missing_or_garbled(tmp_path):
    base = make_dirs(tmp_path)
    report = check_health(settings(base), SLOT)
    assert report.reasons == [f"no heartbeat at {base / 'data' / HEARTBEAT_FILE}: no cycle has "
                              "finished with this data directory (is the bot running, and has "
                              "its first cycle run?)"]
    (base / "data" / HEARTBEAT_FILE).write_bytes(b'{"slot": "2025-03-03T15:0')
    assert "is not valid JSON" in check_health(settings(base), SLOT).reasons[0]


def test_unhealthy_when_the_log_directory_is_missing(tmp_path):
    base = make_dirs(tmp_path)
    beat(base)
    shutil.rmtree(base / "logs")
    report = check_health(settings(base), SLOT + timedelta(minutes=5))
    assert report.reasons == [
        f"the log directory {base / 'logs'} does not exist (or is not a directory)"]


def test_health_never_creates_or_changes_files(tmp_path):
    base = make_dirs(tmp_path)
    beat(base)

    def snapshot():
        return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in base.rglob("*")}

    before = snapshot()
    check_health(settings(base), SLOT + timedelta(hours=5))
    assert snapshot() == before


def test_format_age():
    assert [format_age(s) for s in (-3, 5, 65, 3600 + 120, 86400 * 2 + 3600 * 5)] == [
        "0s", "5s", "1m 05s", "1h 02m", "2d 5h"]


# -- permissions (as a user that permissions apply to) -----------------------------------------

HEALTH_SCRIPT = """
import json, sys
from datetime import datetime
from pathlib import Path
from bot.app.health import check_health
from bot.settings import Settings
base = Path(sys.argv[1])
s = Settings(_env_file=None, log_dir=base / "logs", data_dir=base / "data",
             schedule="every 15 minutes", market_hours="always")
r = check_health(s, datetime.fromisoformat(sys.argv[2]))
print(json.dumps({"ok": r.ok, "reasons": r.reasons}))
"""


def health_as(user: User, base: Path) -> dict:
    proc = user.run(HEALTH_SCRIPT, str(base), (SLOT + timedelta(minutes=5)).isoformat())
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.slow
def test_healthy_as_the_unprivileged_user(unprivileged, shared_tmp):
    base = make_dirs(shared_tmp)
    beat(base)
    give_to(unprivileged, base)
    assert health_as(unprivileged, base) == {"ok": True, "reasons": []}


def test_unhealthy_when_the_log_directory_is_not_writable(unprivileged, shared_tmp):
    base = make_dirs(shared_tmp)
    beat(base)
    give_to(unprivileged, base)
    (base / "logs").chmod(0o555)
    out = health_as(unprivileged, base)
    assert out["reasons"] == [
        f"the log directory {base / 'logs'} is not writable by UID {unprivileged.uid}"]


def test_unhealthy_when_a_stream_file_is_not_writable(unprivileged, shared_tmp):
    base = make_dirs(shared_tmp)
    beat(base)
    give_to(unprivileged, base)
    (base / "logs" / "orders.jsonl").chmod(0o444)
    out = health_as(unprivileged, base)
    assert out["reasons"] == [
        f"the audit file {base / 'logs' / 'orders.jsonl'} is not writable by UID {unprivileged.uid}"]


def test_unhealthy_when_the_data_directory_is_not_writable(unprivileged, shared_tmp):
    base = make_dirs(shared_tmp)
    beat(base)
    give_to(unprivileged, base)
    (base / "data").chmod(0o555)
    out = health_as(unprivileged, base)
    assert out["reasons"] == [
        f"the data directory {base / 'data'} is not writable by UID {unprivileged.uid}"]


WRITABLE_SCRIPT = """
import sys
from pathlib import Path
from bot.core.errors import ConfigError
from bot.app.health import check_writable
try:
    check_writable(Path(sys.argv[1]), "log directory")
except ConfigError as exc:
    print(exc)
else:
    print("ok")
"""


def test_check_writable_names_the_directory_the_user_owner_mode_and_fix(unprivileged, shared_tmp):
    uid, gid = unprivileged.uid, unprivileged.gid
    logs = shared_tmp / "logs"
    logs.mkdir()
    logs.chmod(0o555)
    if os.geteuid() == 0:  # another user's directory (one of root's has its own advice)
        os.chown(logs, 4321, 4321)
    owner = logs.stat().st_uid
    proc = unprivileged.run(WRITABLE_SCRIPT, str(logs))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (
        f"the log directory {logs} is not writable by UID {uid} (GID {gid}): it belongs to UID "
        f"{owner} with mode 0555; chown it to {uid}:{gid} on the host, or run the container as "
        "the directory's owner (TRADEBOT_UID and TRADEBOT_GID in docker/.env, then `docker "
        "compose build`)\n")
    assert list(logs.iterdir()) == []


def test_check_writable_names_the_parent_it_cannot_create_in(unprivileged, shared_tmp):
    uid, gid = unprivileged.uid, unprivileged.gid
    parent = shared_tmp / "app"
    parent.mkdir()
    parent.chmod(0o555)
    if os.geteuid() == 0:  # another user's directory (one of root's has its own advice)
        os.chown(parent, 4321, 4321)
    proc = unprivileged.run(WRITABLE_SCRIPT, str(parent / "logs"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (
        f"the log directory {parent / 'logs'} cannot be created by UID {uid} (GID {gid}) "
        f"(Permission denied): its parent {parent} belongs to UID {parent.stat().st_uid} with "
        f"mode 0555; create it and chown it to {uid}:{gid} on the host, or run the container as "
        "the directory's owner (TRADEBOT_UID and TRADEBOT_GID in docker/.env, then `docker "
        "compose build`)\n")


def test_check_writable_creates_a_missing_directory_and_leaves_nothing_behind(tmp_path):
    path = tmp_path / "a" / "b" / "logs"
    check_writable(path, "log directory")
    assert path.is_dir() and list(path.iterdir()) == []


def test_check_writable_refuses_a_file(tmp_path):
    (tmp_path / "logs").write_text("not a directory")
    with pytest.raises(ConfigError, match=r"is a file, not a directory"):
        check_writable(tmp_path / "logs", "log directory")


# -- the real command -------------------------------------------------------------------------

@pytest.mark.slow
def test_run_one_cycle_then_health_says_stopped(tmp_path):
    env = clean_env(BOT_LOG_DIR=str(tmp_path / "logs"), BOT_DATA_DIR=str(tmp_path / "data"),
                    BOT_SCHEDULE="every 15 minutes", BOT_MARKET_HOURS="always")
    run = subprocess.run([sys.executable, "-m", "bot", "run", "--max-cycles", "1"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    doc = orjson.loads((tmp_path / "data" / HEARTBEAT_FILE).read_bytes())
    assert doc["ok"] is True and doc["broker_ok"] is True and doc["stopped"] == "max cycles reached"
    health = subprocess.run([sys.executable, "-m", "bot", "health"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    # --max-cycles ended the bot cleanly: health says so at once, not healthy for 20 minutes
    assert health.returncode == 1, health.stdout + health.stderr
    assert health.stdout.startswith("stopped: the bot stopped at ")
    assert health.stdout.rstrip().endswith("max cycles reached")
    (tmp_path / "data" / HEARTBEAT_FILE).unlink()
    sick = subprocess.run([sys.executable, "-m", "bot", "health"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert sick.returncode == 1 and sick.stdout.startswith("unhealthy: no heartbeat at ")



# -- a clean stop, and a start whose first slot is still ahead ------------------------------------

def test_a_clean_stop_is_written_and_health_says_stopped(tmp_path, capsys):
    base = make_dirs(tmp_path)
    hb = Heartbeat(base / "data" / HEARTBEAT_FILE, {"schedule": "every 15 minutes"},
                   now=lambda: SLOT + timedelta(minutes=5))
    hb.started()
    hb.cycle_finished(CycleReport(SLOT, SLOT + timedelta(seconds=1), 2.5, None, 100_000.0, 1_000.0))
    hb.stopped("SIGINT received")
    doc = orjson.loads((base / "data" / HEARTBEAT_FILE).read_bytes())
    assert doc["stopped"] == "SIGINT received" and doc["slot"] == "2025-03-03T15:00:00+00:00"
    assert doc["stopped_at"] == "2025-03-03T15:05:00.000000+00:00"
    now = SLOT + timedelta(minutes=7)  # within the schedule: a running bot would be healthy
    report = check_health(settings(base), now)
    assert not report.ok and report.state == "stopped"
    assert health_main(settings(base), now) == 1
    assert capsys.readouterr().out == (
        "stopped: the bot stopped at 2025-03-03T15:05:00.000000+00:00 (2m 00s ago): "
        "SIGINT received\n")


def test_a_new_start_clears_a_stop(tmp_path):
    base = make_dirs(tmp_path)
    beat(base)
    path = base / "data" / HEARTBEAT_FILE
    Heartbeat(path, {}, now=lambda: SLOT + timedelta(minutes=5)).stopped("SIGTERM received")
    Heartbeat(path, {}, now=lambda: SLOT + timedelta(minutes=6)).started()
    doc = orjson.loads(path.read_bytes())
    assert "stopped" not in doc and "stopped_at" not in doc
    assert doc["process_started"] == "2025-03-03T15:06:00.000000+00:00"
    assert check_health(settings(base), SLOT + timedelta(minutes=7)).ok


def test_starting_with_the_first_slot_hours_away_is_not_unhealthy(tmp_path, capsys):
    base = make_dirs(tmp_path)
    beat(base)  # the last cycle ran on the 3rd, 15:00 UTC
    restart = SLOT + timedelta(days=1, hours=1)  # a day later; BOT_MISSED_SLOT=skip: wait
    first = datetime(2025, 3, 4, 20, 45, tzinfo=timezone.utc)
    hb = Heartbeat(base / "data" / HEARTBEAT_FILE, {}, now=lambda: restart)
    hb.started()
    hb.waiting(first)
    daily = settings(base, schedule="daily at 15:45")
    now = restart + timedelta(hours=2)
    report = check_health(daily, now)
    assert report.ok and report.state == "starting"
    assert health_main(daily, now) == 0
    assert capsys.readouterr().out == (
        "starting, first slot at 2025-03-04T20:45:00+00:00 (in 2h 45m)\n")
    # once the first slot is long past with no cycle, it is stale again
    late = first + timedelta(hours=1)
    assert not check_health(daily, late).ok


def test_starting_while_the_first_cycle_runs(tmp_path):
    base = make_dirs(tmp_path)
    hb = Heartbeat(base / "data" / HEARTBEAT_FILE, {}, now=lambda: SLOT)
    hb.started()
    report = check_health(settings(base), SLOT + timedelta(seconds=20))
    assert report.ok and report.state == "starting"
    assert report.details[0] == "starting, the first cycle is running (started 20s ago)"
    # a first cycle that never finishes is not healthy for ever
    assert not check_health(settings(base), SLOT + timedelta(hours=1)).ok


def test_a_new_start_clears_an_earlier_halt(tmp_path):
    from bot.watch.heartbeat import Heartbeat
    path = tmp_path / "heartbeat.json"
    first = Heartbeat(path, {"schedule": "every 15 minutes"})
    first.halted("halted: disk full")
    assert "halted" in orjson.loads(path.read_bytes())
    Heartbeat(path, {"schedule": "every 15 minutes"}).started()
    assert "halted" not in orjson.loads(path.read_bytes())


@pytest.mark.slow
def test_a_running_bot_is_healthy_and_stopped_after_sigterm(tmp_path):
    import signal
    import time
    env = clean_env(BOT_LOG_DIR=str(tmp_path / "logs"), BOT_DATA_DIR=str(tmp_path / "data"),
                    BOT_SCHEDULE="every 15 minutes", BOT_MARKET_HOURS="always")
    bot = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=tmp_path, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        path = tmp_path / "data" / HEARTBEAT_FILE
        deadline = time.time() + 60
        while time.time() < deadline and not (path.exists() and b'"slot"' in path.read_bytes()):
            time.sleep(0.1)
        health = subprocess.run([sys.executable, "-m", "bot", "health"], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=60)
        assert health.returncode == 0 and health.stdout.startswith("healthy: "), health.stdout
        bot.send_signal(signal.SIGTERM)
        assert bot.wait(timeout=60) == 0
    finally:
        if bot.poll() is None:
            bot.kill()
    health = subprocess.run([sys.executable, "-m", "bot", "health"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert health.returncode == 1 and health.stdout.startswith("stopped: ")
    assert "SIGTERM received" in health.stdout


def test_a_last_cycle_ahead_of_a_clock_stepped_back_does_not_cover_the_due_slot(tmp_path):
    base = make_dirs(tmp_path)
    beat(base, slot=SLOT + timedelta(days=2))  # run while the clock was two days ahead
    now = SLOT + timedelta(hours=1, minutes=10)  # the clock is back; nothing has run since
    report = check_health(settings(base), now)
    assert not report.ok
    (reason,) = report.reasons
    assert reason.startswith("stale: the last cycle was slot 2025-03-05T15:00:00+00:00, ahead of "
                             "the clock (was it stepped back?)")
    assert "slot 2025-03-03T16:00:00+00:00 was due 10m 00s ago" in reason


def test_a_due_slot_after_a_clock_stepped_back_may_still_be_running(tmp_path):
    base = make_dirs(tmp_path)
    beat(base, slot=SLOT + timedelta(days=2))
    report = check_health(settings(base), SLOT + timedelta(seconds=20))
    assert report.ok, report.reasons
