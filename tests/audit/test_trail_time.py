"""Record time stamps never go backwards, whatever the clock does, across restarts too."""
from __future__ import annotations

from datetime import timedelta

import orjson

from audit.check import check_trail
from audit.records import ManualCycle
from audit.trail import AuditTrail
from tests.fakes import FakeClock, at, utc

KEY = b"test-audit-key-0123456789"


def stamps(log_dir, name="events.jsonl"):
    return [orjson.loads(x)["timestamp"] for x in (log_dir / name).read_bytes().splitlines()]


def test_a_clock_stepped_back_within_a_run_never_stamps_earlier(tmp_path):
    clock = FakeClock(utc(2025, 3, 3, 15))
    trail = AuditTrail(tmp_path, clock, durable=True, key=KEY)
    trail.record(ManualCycle(message="before", cycle_timestamp=at("2025-03-03T15:00:00+00:00")))
    clock.t -= timedelta(hours=2)
    trail.record(ManualCycle(message="after", cycle_timestamp=at("2025-03-03T13:00:00+00:00")))
    trail.log("INFO", "a production.log line")
    trail.close()
    assert stamps(tmp_path) == ["2025-03-03T15:00:00.000000+00:00"] * 2
    assert check_trail(tmp_path).ok


def test_a_clock_stepped_back_across_a_restart_never_stamps_earlier(tmp_path):
    trail = AuditTrail(tmp_path, FakeClock(utc(2025, 3, 3, 15)), durable=True, key=KEY)
    trail.record(ManualCycle(message="before", cycle_timestamp=at("2025-03-03T15:00:00+00:00")))
    trail.close()
    clock = FakeClock(utc(2025, 3, 3, 11))  # four hours behind after the restart
    trail = AuditTrail(tmp_path, clock, durable=True, key=KEY)
    trail.record(ManualCycle(message="after", cycle_timestamp=at("2025-03-03T11:00:00+00:00")))
    clock.t = utc(2025, 3, 3, 16)  # once the clock is past the trail, it stamps real time again
    trail.record(ManualCycle(message="later", cycle_timestamp=at("2025-03-03T16:00:00+00:00")))
    trail.close()
    got = stamps(tmp_path)
    assert got == sorted(got) and got[-1] == "2025-03-03T16:00:00.000000+00:00"
    assert all(ts >= "2025-03-03T15" for ts in got)
    log_times = [x.split(" ", 1)[0] for x in (tmp_path / "production.log").read_text().splitlines()]
    assert log_times == sorted(log_times)
    assert check_trail(tmp_path).ok
