import pytest

from bot.core.scheduling import SlotPlanner, parse_schedule
from tests.fakes import utc


def test_every_15_minutes_is_aligned_to_the_clock():
    s = parse_schedule("every 15 minutes")
    assert s.latest_at_or_before(utc(2025, 11, 18, 14, 7, 31)) == utc(2025, 11, 18, 14, 0)
    assert s.next_after(utc(2025, 11, 18, 14, 7, 31)) == utc(2025, 11, 18, 14, 15)
    assert s.next_after(utc(2025, 11, 18, 14, 15)) == utc(2025, 11, 18, 14, 30)


@pytest.mark.parametrize("text,seconds", [("every 10 seconds", 10), ("every minute", 60),
                                          ("Every 2 Hours", 7200), ("every 1 hour", 3600)])
def test_every_words(text, seconds):
    assert parse_schedule(text).seconds == seconds


def test_daily_at_is_new_york_time_across_dst():
    s = parse_schedule("daily at 15:45")
    assert s.next_after(utc(2025, 1, 15, 12)) == utc(2025, 1, 15, 20, 45)   # EST
    assert s.next_after(utc(2025, 7, 15, 12)) == utc(2025, 7, 15, 19, 45)   # EDT
    assert s.latest_at_or_before(utc(2025, 7, 15, 12)) == utc(2025, 7, 14, 19, 45)


def test_at_market_open_skips_weekends_and_holidays():
    s = parse_schedule("at market open")
    assert s.next_after(utc(2025, 7, 3, 20)) == utc(2025, 7, 7, 13, 30)  # July 4th, weekend
    assert s.latest_at_or_before(utc(2025, 7, 6, 12)) == utc(2025, 7, 3, 13, 30)


@pytest.mark.parametrize("text", ["every fortnight", "daily at 25:00", "every 0 seconds", "hourly", ""])
def test_bad_schedules_are_refused(text):
    with pytest.raises(ValueError):
        parse_schedule(text)


def test_nyse_hours_keep_only_slots_in_session():
    p = SlotPlanner(parse_schedule("every 15 minutes"), nyse_hours=True)
    # Friday after the close -> Monday's open
    assert p.next_after(utc(2025, 11, 14, 21, 0)) == utc(2025, 11, 17, 14, 30)
    # Saturday: the latest due slot is Friday's last one before the 16:00 close
    assert p.latest_due(utc(2025, 11, 15, 12)) == utc(2025, 11, 14, 20, 45)
    # during the session slots pass through
    assert p.latest_due(utc(2025, 11, 17, 15, 7)) == utc(2025, 11, 17, 15, 0)
    assert p.count_between(utc(2025, 11, 14, 20, 45), utc(2025, 11, 17, 15, 0)) == 3


def test_always_hours_keep_every_slot():
    p = SlotPlanner(parse_schedule("every 15 minutes"), nyse_hours=False)
    assert p.latest_due(utc(2025, 11, 15, 3, 1)) == utc(2025, 11, 15, 3, 0)
    assert p.count_between(utc(2025, 11, 15, 0, 0), utc(2025, 11, 15, 3, 0)) == 12
