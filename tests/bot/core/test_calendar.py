"""NYSE calendar: holidays, observed rules, special closures, early closes, sessions."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.calendar import (
    NY,
    early_close,
    holidays,
    is_open,
    is_trading_day,
    next_open,
    previous_trading_day,
    session,
    session_date,
    session_index,
    trading_days,
)

UTC = timezone.utc


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_2025_holidays_exactly() -> None:
    assert sorted(holidays(2025)) == [
        date(2025, 1, 1),
        date(2025, 1, 9),  # President Carter's funeral
        date(2025, 1, 20),
        date(2025, 2, 17),
        date(2025, 4, 18),
        date(2025, 5, 26),
        date(2025, 6, 19),
        date(2025, 7, 4),
        date(2025, 9, 1),
        date(2025, 11, 27),
        date(2025, 12, 25),
    ]
    for d in holidays(2025):
        assert not is_trading_day(d)


def test_2024_holidays_exactly() -> None:
    assert sorted(holidays(2024)) == [
        date(2024, 1, 1),
        date(2024, 1, 15),
        date(2024, 2, 19),
        date(2024, 3, 29),  # Good Friday
        date(2024, 5, 27),
        date(2024, 6, 19),
        date(2024, 7, 4),
        date(2024, 9, 2),
        date(2024, 11, 28),
        date(2024, 12, 25),
    ]


@pytest.mark.parametrize(
    "good_friday",
    [date(2024, 3, 29), date(2025, 4, 18), date(2000, 4, 21), date(2011, 4, 22), date(2038, 4, 23)],
)
def test_good_friday(good_friday: date) -> None:
    assert not is_trading_day(good_friday)
    assert is_trading_day(good_friday - timedelta(days=1))
    assert is_trading_day(good_friday + timedelta(days=3))  # Easter Monday is open


def test_juneteenth_from_2022_with_observed_days() -> None:
    assert is_trading_day(date(2021, 6, 18))  # before 2022: a normal Friday
    assert not is_trading_day(date(2022, 6, 20))  # Sunday the 19th -> Monday
    assert not is_trading_day(date(2023, 6, 19))
    assert not is_trading_day(date(2027, 6, 18))  # Saturday the 19th -> Friday
    assert is_trading_day(date(2022, 6, 17))


def test_new_year_observed_rules() -> None:
    assert not is_trading_day(date(2023, 1, 2))  # Sunday Jan 1 -> Monday
    assert is_trading_day(date(2021, 12, 31))  # Saturday Jan 1 2022: no Friday holiday
    assert is_trading_day(date(2027, 12, 31))  # same for 2028
    assert not is_trading_day(date(2024, 1, 1))


def test_independence_day_and_christmas_observed() -> None:
    assert not is_trading_day(date(2020, 7, 3))  # Saturday -> Friday
    assert not is_trading_day(date(2021, 7, 5))  # Sunday -> Monday
    assert not is_trading_day(date(2026, 7, 3))
    assert not is_trading_day(date(2021, 12, 24))  # Saturday Christmas -> Friday
    assert not is_trading_day(date(2022, 12, 26))  # Sunday Christmas -> Monday
    assert is_trading_day(date(2022, 12, 23))


def test_mlk_day_only_from_1998() -> None:
    assert is_trading_day(date(1997, 1, 20))
    assert not is_trading_day(date(1998, 1, 19))
    assert not is_trading_day(date(2024, 1, 15))


def test_other_fixed_rule_holidays() -> None:
    assert not is_trading_day(date(2023, 2, 20))  # Washington's Birthday
    assert not is_trading_day(date(2023, 5, 29))  # Memorial Day (last Monday)
    assert not is_trading_day(date(2023, 9, 4))  # Labor Day
    assert not is_trading_day(date(2023, 11, 23))  # Thanksgiving (4th Thursday)


@pytest.mark.parametrize(
    "closed",
    [
        date(1994, 4, 27),
        date(2001, 9, 11),
        date(2001, 9, 12),
        date(2001, 9, 13),
        date(2001, 9, 14),
        date(2004, 6, 11),
        date(2007, 1, 2),
        date(2012, 10, 29),
        date(2012, 10, 30),
        date(2018, 12, 5),
        date(2025, 1, 9),
    ],
)
def test_special_closures(closed: date) -> None:
    assert closed.weekday() < 5
    assert not is_trading_day(closed)
    assert session(closed) is None


def test_weekends_are_closed() -> None:
    assert not is_trading_day(date(2024, 6, 1))
    assert not is_trading_day(date(2024, 6, 2))
    assert is_trading_day(date(2024, 6, 3))


def test_trading_day_counts() -> None:
    assert len(trading_days(date(2023, 1, 1), date(2023, 12, 31))) == 250
    assert len(trading_days(date(2024, 1, 1), date(2024, 12, 31))) == 252
    assert len(trading_days(date(2022, 1, 1), date(2022, 12, 31))) == 251


def test_trading_days_inclusive_and_empty() -> None:
    assert trading_days(date(2024, 3, 28), date(2024, 4, 2)) == [
        date(2024, 3, 28),
        date(2024, 4, 1),
        date(2024, 4, 2),
    ]
    assert trading_days(date(2024, 3, 29), date(2024, 3, 31)) == []
    assert trading_days(date(2024, 4, 2), date(2024, 4, 1)) == []
    assert trading_days(date(2023, 12, 29), date(2024, 1, 2)) == [date(2023, 12, 29), date(2024, 1, 2)]


@pytest.mark.parametrize(
    "d",
    [
        date(2023, 7, 3),  # Monday before a Tuesday July 4
        date(2024, 7, 3),
        date(2025, 7, 3),
        date(2024, 11, 29),
        date(2025, 11, 28),
        date(2018, 12, 24),  # Monday Christmas Eve
        date(2024, 12, 24),
        date(2025, 12, 24),
    ],
)
def test_early_closes(d: date) -> None:
    assert early_close(d)
    s = session(d)
    assert s is not None and (s[1] - s[0]) == timedelta(hours=3, minutes=30)


@pytest.mark.parametrize(
    "d",
    [
        date(2020, 7, 2),  # July 3 itself is the holiday
        date(2020, 7, 3),
        date(2021, 7, 2),  # July 3 is a Saturday
        date(2023, 12, 22),  # Christmas Eve is a Sunday
        date(2021, 12, 23),
        date(2024, 7, 2),
        date(2024, 11, 28),  # Thanksgiving itself
        date(2024, 6, 1),  # a Saturday
    ],
)
def test_not_early_closes(d: date) -> None:
    assert not early_close(d)


def test_session_times_in_utc_across_dst() -> None:
    assert session(date(2024, 1, 2)) == (utc(2024, 1, 2, 14, 30), utc(2024, 1, 2, 21, 0))
    assert session(date(2024, 7, 2)) == (utc(2024, 7, 2, 13, 30), utc(2024, 7, 2, 20, 0))
    assert session(date(2024, 7, 3)) == (utc(2024, 7, 3, 13, 30), utc(2024, 7, 3, 17, 0))
    assert session(date(2024, 11, 29)) == (utc(2024, 11, 29, 14, 30), utc(2024, 11, 29, 18, 0))
    assert session(date(2024, 7, 6)) is None
    s = session(date(2024, 1, 2))
    assert s is not None and s[0].tzinfo is not None and s[0].utcoffset() == timedelta(0)


def test_is_open() -> None:
    assert not is_open(utc(2024, 1, 2, 14, 29, 59))
    assert is_open(utc(2024, 1, 2, 14, 30))
    assert is_open(utc(2024, 1, 2, 20, 59, 59))
    assert not is_open(utc(2024, 1, 2, 21, 0))
    assert not is_open(utc(2024, 7, 3, 17, 30))  # early close
    assert not is_open(utc(2024, 7, 4, 15, 0))  # holiday
    assert not is_open(utc(2024, 7, 6, 15, 0))  # Saturday
    ny = timezone(timedelta(hours=-5))
    assert is_open(datetime(2024, 1, 2, 9, 30, tzinfo=ny))
    with pytest.raises(ValueError):
        is_open(datetime(2024, 1, 2, 15, 0))


def test_next_open() -> None:
    assert next_open(utc(2024, 1, 2, 12, 0)) == utc(2024, 1, 2, 14, 30)
    assert next_open(utc(2024, 1, 2, 14, 30)) == utc(2024, 1, 3, 14, 30)  # strictly after
    assert next_open(utc(2024, 1, 5, 21, 0)) == utc(2024, 1, 8, 14, 30)  # Friday -> Monday
    assert next_open(utc(2024, 3, 28, 22, 0)) == utc(2024, 4, 1, 13, 30)  # over Good Friday
    assert next_open(utc(2001, 9, 10, 21, 0)) == utc(2001, 9, 17, 13, 30)
    # 00:30 UTC on Jan 3 is still Jan 2 in New York: the next open is Jan 3
    assert next_open(utc(2024, 1, 3, 0, 30)) == utc(2024, 1, 3, 14, 30)


def test_previous_trading_day() -> None:
    assert previous_trading_day(date(2024, 1, 2)) == date(2023, 12, 29)
    assert previous_trading_day(date(2024, 4, 1)) == date(2024, 3, 28)
    assert previous_trading_day(date(2024, 1, 3)) == date(2024, 1, 2)
    assert previous_trading_day(date(2024, 1, 6)) == date(2024, 1, 5)
    assert previous_trading_day(date(2001, 9, 17)) == date(2001, 9, 10)


def test_session_index_and_date() -> None:
    assert session_index(date(1990, 1, 1)) == 0
    assert session_date(0) == date(1990, 1, 2)
    i = session_index(date(2024, 1, 2))
    assert session_date(i) == date(2024, 1, 2)
    assert session_index(date(2024, 1, 1)) == i  # a holiday maps to the next session
    assert session_index(date(2025, 1, 1)) - i == 252
    assert session_date(i - 1) == date(2023, 12, 29)
    with pytest.raises(ValueError):
        session_date(-1)


def test_outside_range_raises() -> None:
    with pytest.raises(ValueError):
        is_trading_day(date(1989, 12, 29))
    with pytest.raises(ValueError):
        is_trading_day(date(2101, 1, 3))
    with pytest.raises(ValueError):
        trading_days(date(2100, 12, 1), date(2101, 1, 31))


dates = st.dates(min_value=date(1990, 1, 8), max_value=date(2100, 10, 1))


@settings(max_examples=200, deadline=None)
@given(dates, st.integers(min_value=0, max_value=60))
def test_indexes_agree_with_trading_days(start: date, span: int) -> None:
    end = start + timedelta(days=span)
    days = trading_days(start, end)
    assert session_index(end + timedelta(days=1)) - session_index(start) == len(days)
    assert all(is_trading_day(d) and session(d) is not None for d in days)
    for d in days:
        assert session_date(session_index(d)) == d
    if days:
        assert previous_trading_day(days[-1] + timedelta(days=1)) == days[-1]


@settings(max_examples=100, deadline=None)
@given(st.datetimes(min_value=datetime(1990, 1, 8), max_value=datetime(2100, 12, 20)))
def test_next_open_is_a_later_session_open(naive: datetime) -> None:
    at = naive.replace(tzinfo=UTC)
    nxt = next_open(at)
    assert nxt > at
    assert is_open(nxt)
    earlier = session(previous_trading_day(nxt.astimezone(NY).date()))
    assert earlier is not None and earlier[0] <= at  # no open is skipped
