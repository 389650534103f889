from datetime import datetime, timedelta, timezone

from audit.timestamps import format_slot, format_timestamp


def test_timestamp_keeps_zero_microseconds():
    t = datetime(2025, 11, 18, 14, 30, tzinfo=timezone.utc)
    assert format_timestamp(t) == "2025-11-18T14:30:00.000000+00:00"


def test_timestamp_converts_to_utc():
    t = datetime(2025, 11, 18, 9, 30, 0, 123456, tzinfo=timezone(timedelta(hours=-5)))
    assert format_timestamp(t) == "2025-11-18T14:30:00.123456+00:00"
    assert datetime.fromisoformat(format_timestamp(t)) == t


def test_slot_is_whole_seconds():
    t = datetime(2025, 11, 18, 14, 0, 0, 999, tzinfo=timezone.utc)
    assert format_slot(t) == "2025-11-18T14:00:00+00:00"
