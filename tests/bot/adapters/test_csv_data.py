"""CsvMarketData: good files, missing files, bad rows, gaps, duplicates, price lookups."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.adapters.csv_data import CsvMarketData
from bot.core.calendar import session, trading_days
from bot.core.errors import DataError

UTC = timezone.utc
HEADER = "Date,Open,High,Low,Close,Volume"
# 2024-01-02 .. 2024-01-31: 21 sessions (Jan 1 and MLK day Jan 15 closed)
JAN = trading_days(date(2024, 1, 2), date(2024, 1, 31))


def tuples(history) -> dict:
    """The closes of a History as tuples (adapters return array('d') slices)."""
    return {k: tuple(v) for k, v in history.closes.items()}


def write(directory: Path, symbol: str, lines: list[str], header: str = HEADER) -> Path:
    path = directory / f"{symbol}.csv"
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def rows(days: list[date], start: float = 100.0) -> list[str]:
    return [f"{d},1,1,1,{start + i},1000" for i, d in enumerate(days)]


def close_of(d: date) -> float:
    return 100.0 + JAN.index(d)


def test_jan_fixture() -> None:
    assert len(JAN) == 21 and date(2024, 1, 15) not in JAN


def test_good_file(tmp_path: Path) -> None:
    write(tmp_path, "SPY", rows(JAN))
    data = CsvMarketData(tmp_path)
    h = data.history(["SPY"], date(2024, 1, 17), 5)  # sessions before Wed 17th: 9th to 16th
    assert h.as_of == date(2024, 1, 16)
    assert tuples(h) == {"SPY": (105.0, 106.0, 107.0, 108.0, 109.0)}
    assert h.problems == {}
    assert tuple(data.history(["SPY"], date(2024, 2, 1), 21).closes["SPY"]) == tuple(100.0 + i for i in range(21))
    h = data.history(["SPY"], date(2024, 1, 15), 1)  # MLK day: the window ends on Friday 12th
    assert tuple(h.as_of == date(2024, 1, 12) and h.closes["SPY"]) == (108.0,)


def test_header_case_extra_columns_bom_and_order(tmp_path: Path) -> None:
    lines = [f"{d},{1000},{200.0 + i},{100.0 + i}" for i, d in enumerate(JAN[:5])]
    path = tmp_path / "QQQ.csv"
    path.write_text("\ufeffdate,VOLUME,Adj Close, CLOSE \n" + "\n".join(lines) + "\n\n", encoding="utf-8")
    h = CsvMarketData(str(tmp_path)).history(["QQQ"], date(2024, 1, 9), 5)
    assert tuples(h) == {"QQQ": (100.0, 101.0, 102.0, 103.0, 104.0)}


def test_missing_file(tmp_path: Path) -> None:
    write(tmp_path, "SPY", rows(JAN))
    data = CsvMarketData(tmp_path)
    h = data.history(["SPY", "XLK"], date(2024, 1, 10), 3)
    assert set(h.closes) == {"SPY"}
    assert h.problems["XLK"] == f"no file XLK.csv in {tmp_path}: add it or remove the symbol"
    with pytest.raises(DataError) as err:
        data.price("XLK", datetime(2024, 1, 9, 20, 0, tzinfo=UTC))
    assert err.value.symbol == "XLK"
    assert err.value.reason == h.problems["XLK"]


def test_nothing_usable_gives_no_as_of(tmp_path: Path) -> None:
    h = CsvMarketData(tmp_path).history(["XLK", "../etc"], date(2024, 1, 10), 3)
    assert tuples(h) == {} and h.as_of is None
    assert "invalid symbol" in h.problems["../etc"]
    with pytest.raises(ValueError):
        CsvMarketData(tmp_path).history(["XLK"], date(2024, 1, 10), 0)


def test_files_are_loaded_lazily(tmp_path: Path) -> None:
    data = CsvMarketData(tmp_path)  # nothing there yet
    write(tmp_path, "SPY", rows(JAN))
    assert tuples(data.history(["SPY"], date(2024, 1, 4), 2)) == {"SPY": (100.0, 101.0)}


@pytest.mark.parametrize(
    ("close", "words"),
    [
        ("abc", "'abc' is not a positive number"),
        ("nan", "'nan' is not a positive number"),
        ("NaN", "'NaN' is not a positive number"),
        ("inf", "'inf' is not a positive number"),
        ("-5", "'-5' is not a positive number"),
        ("0", "'0' is not a positive number"),
        ("", "'' is not a positive number"),
    ],
)
def test_bad_close_is_dropped_and_flagged(tmp_path: Path, close: str, words: str) -> None:
    lines = rows(JAN)
    lines[5] = f"{JAN[5]},1,1,1,{close},1000"  # 2024-01-09, line 7 (header is line 1)
    write(tmp_path, "SPY", lines)
    data = CsvMarketData(tmp_path)
    before = data.history(["SPY"], JAN[5], 5)  # ends 01-08: untouched
    assert tuple(before.closes["SPY"]) == (100.0, 101.0, 102.0, 103.0, 104.0)
    touching = data.history(["SPY"], JAN[8], 5)
    assert tuples(touching) == {} and touching.as_of is None
    reason = touching.problems["SPY"]
    assert reason.startswith("SPY.csv line 7 (2024-01-09): ") and words in reason
    assert "fix or delete the row" in reason
    after = data.history(["SPY"], JAN[11], 5)  # 01-10 .. 01-17: past the bad row
    assert tuple(after.closes["SPY"]) == (106.0, 107.0, 108.0, 109.0, 110.0)
    with pytest.raises(DataError, match="SPY.csv line 7"):
        data.price("SPY", datetime(2024, 1, 9, 20, 0, tzinfo=UTC))
    assert data.price("SPY", datetime(2024, 1, 9, 14, 0, tzinfo=UTC)) == 104.0  # before the open


def test_short_row_does_not_crash(tmp_path: Path) -> None:
    lines = rows(JAN)
    lines[2] = f"{JAN[2]},1,1"
    write(tmp_path, "SPY", lines)
    h = CsvMarketData(tmp_path).history(["SPY"], JAN[4], 3)
    assert h.problems["SPY"].startswith("SPY.csv line 4 (2024-01-04)")


def test_gap_is_flagged(tmp_path: Path) -> None:
    days = [d for d in JAN if d != date(2024, 1, 9)]
    write(tmp_path, "SPY", rows(days))
    data = CsvMarketData(tmp_path)
    h = data.history(["SPY"], date(2024, 1, 12), 5)
    assert tuples(h) == {}
    assert h.problems["SPY"] == (
        "SPY.csv has no row for NYSE trading day 2024-01-09 (between lines 6 and 7): add it"
    )
    assert tuple(data.history(["SPY"], date(2024, 1, 9), 5).closes["SPY"]) == (100.0, 101.0, 102.0, 103.0, 104.0)
    assert data.history(["SPY"], date(2024, 1, 18), 5).closes["SPY"][0] == 105.0
    with pytest.raises(DataError, match="2024-01-09"):
        data.price("SPY", datetime(2024, 1, 9, 21, 30, tzinfo=UTC))
    with pytest.raises(DataError, match="SPY.csv"):
        data.price("SPY", datetime(2024, 1, 10, 12, 0, tzinfo=UTC))  # before the 10th's open


def test_holidays_are_not_gaps(tmp_path: Path) -> None:
    write(tmp_path, "SPY", rows(trading_days(date(2024, 3, 25), date(2024, 4, 5))))
    h = CsvMarketData(tmp_path).history(["SPY"], date(2024, 4, 6), 9)  # spans Good Friday
    assert h.problems == {} and len(h.closes["SPY"]) == 9


def test_duplicate_date(tmp_path: Path) -> None:
    lines = rows(JAN)
    lines.insert(4, f"{JAN[3]},1,1,1,999,1000")  # second row for 2024-01-05 at line 6
    write(tmp_path, "SPY", lines)
    data = CsvMarketData(tmp_path)
    h = data.history(["SPY"], JAN[6], 3)
    assert h.problems["SPY"] == (
        "SPY.csv line 6 (2024-01-05): duplicate date (also line 5): keep one row per date"
    )
    assert tuple(data.history(["SPY"], JAN[3], 3).closes["SPY"]) == (100.0, 101.0, 102.0)
    assert tuple(data.history(["SPY"], JAN[7], 3).closes["SPY"]) == (104.0, 105.0, 106.0)


def test_dates_not_increasing(tmp_path: Path) -> None:
    lines = rows(JAN[:6])
    lines[2], lines[3] = lines[3], lines[2]  # 01-05 then 01-04
    write(tmp_path, "SPY", lines)
    h = CsvMarketData(tmp_path).history(["SPY"], JAN[6], 6)
    assert h.problems["SPY"] == (
        "SPY.csv line 5 (2024-01-04): date is not after line 4 (2024-01-05): sort the rows by date"
    )


@pytest.mark.parametrize("bad_date", ["2024/01/05", "05-01-2024", "2024-02-30", "20240105", "x"])
def test_unparseable_date(tmp_path: Path, bad_date: str) -> None:
    lines = rows(JAN)
    lines[3] = f"{bad_date},1,1,1,103,1000"  # line 5, where 2024-01-05 should be
    write(tmp_path, "SPY", lines)
    data = CsvMarketData(tmp_path)
    h = data.history(["SPY"], JAN[5], 3)
    assert h.problems["SPY"] == (
        f"SPY.csv line 5: date {bad_date!r} is not a YYYY-MM-DD date in 1990-2100: "
        "fix or delete the row"
    )
    assert tuple(data.history(["SPY"], JAN[3], 3).closes["SPY"]) == (100.0, 101.0, 102.0)


def test_row_on_a_non_trading_day(tmp_path: Path) -> None:
    lines = rows(JAN[:4]) + ["2024-01-06,1,1,1,50,1000"] + rows(JAN[4:8], start=104.0)
    write(tmp_path, "SPY", lines)
    h = CsvMarketData(tmp_path).history(["SPY"], JAN[7], 6)
    assert h.problems["SPY"] == "SPY.csv line 6 (2024-01-06): not an NYSE trading day: delete the row"


def test_window_outside_the_file(tmp_path: Path) -> None:
    write(tmp_path, "SPY", rows(JAN))
    data = CsvMarketData(tmp_path)
    early = data.history(["SPY"], date(2024, 1, 5), 5)
    # a file that starts later is a fund not listed yet: absent, not a problem
    assert early.problems == {} and tuples(early) == {} and early.as_of is None
    late = data.history(["SPY"], date(2024, 2, 6), 3)
    assert late.problems["SPY"] == (
        "SPY.csv ends 2024-01-31: the 3 sessions before 2024-02-06 need rows through 2024-02-05: "
        "add the newer rows"
    )


def test_bad_header_and_empty_file(tmp_path: Path) -> None:
    write(tmp_path, "AAA", rows(JAN), header="Day,Open,High,Low,Price,Volume")
    (tmp_path / "BBB.csv").write_text("", encoding="utf-8")
    write(tmp_path, "CCC", ["2024-01-02,1,1,1,nan,1"])
    data = CsvMarketData(tmp_path)
    h = data.history(["AAA", "BBB", "CCC"], date(2024, 1, 5), 1)
    assert tuples(h) == {}
    assert h.problems["AAA"].startswith("AAA.csv line 1: header 'Day,Open,High,Low,Price,Volume'")
    assert h.problems["BBB"].startswith("BBB.csv line 1: header ''")
    assert h.problems["CCC"].startswith("CCC.csv has no usable rows; first problem: CCC.csv line 2")
    with pytest.raises(DataError, match="AAA.csv"):
        data.price("AAA", datetime(2024, 1, 3, 20, 0, tzinfo=UTC))


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "SPY.csv").write_bytes(HEADER.encode() + b"\n2024-01-02,1,1,1,\xff\xfe,1\n")
    h = CsvMarketData(tmp_path).history(["SPY"], date(2024, 1, 3), 1)
    assert "SPY.csv is not UTF-8" in h.problems["SPY"]


def test_price_lookups(tmp_path: Path) -> None:
    write(tmp_path, "SPY", rows(JAN))
    data = CsvMarketData(tmp_path)
    opens, closes_at = session(date(2024, 1, 10))  # type: ignore[misc]
    assert data.price("SPY", opens - timedelta(seconds=1)) == close_of(date(2024, 1, 9))
    assert data.price("SPY", opens) == close_of(date(2024, 1, 10))
    assert data.price("SPY", closes_at - timedelta(minutes=15)) == close_of(date(2024, 1, 10))  # look-ahead
    assert data.price("SPY", closes_at + timedelta(hours=2)) == close_of(date(2024, 1, 10))
    assert data.price("SPY", datetime(2024, 1, 13, 15, 0, tzinfo=UTC)) == close_of(date(2024, 1, 12))
    assert data.price("SPY", datetime(2024, 1, 15, 18, 0, tzinfo=UTC)) == close_of(date(2024, 1, 12))  # MLK
    # 01:00 UTC on the 11th is 20:00 on the 10th in New York
    assert data.price("SPY", datetime(2024, 1, 11, 1, 0, tzinfo=UTC)) == close_of(date(2024, 1, 10))
    with pytest.raises(ValueError):
        data.price("SPY", datetime(2024, 1, 10, 15, 0))


def test_price_outside_the_file(tmp_path: Path) -> None:
    write(tmp_path, "SPY", rows(JAN))
    data = CsvMarketData(tmp_path)
    with pytest.raises(DataError) as err:
        data.price("SPY", datetime(2024, 2, 1, 20, 0, tzinfo=UTC))
    assert err.value.reason == "SPY.csv has no row for 2024-02-01 (it covers 2024-01-02 to 2024-01-31): add it"
    with pytest.raises(DataError, match="SPY.csv has no row for 2023-12-29"):
        data.price("SPY", datetime(2024, 1, 2, 12, 0, tzinfo=UTC))  # before the first open
    assert data.price("SPY", datetime(2024, 2, 1, 12, 0, tzinfo=UTC)) == 120.0  # 07:00 NY: still Jan 31


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    missing=st.sets(st.integers(min_value=1, max_value=19), max_size=3),
    end=st.integers(min_value=1, max_value=21),
    bars=st.integers(min_value=1, max_value=21),
)
def test_window_flagged_iff_it_touches_a_gap(tmp_path: Path, missing: set[int], end: int, bars: int) -> None:
    kept = [d for i, d in enumerate(JAN) if i not in missing]
    write(tmp_path, "SPY", [f"{d},1,1,1,{close_of(d)},1" for d in kept])
    before = JAN[end] if end < len(JAN) else date(2024, 2, 1)
    h = CsvMarketData(tmp_path).history(["SPY"], before, bars)
    window = range(end - bars, end)
    if end - bars < 0:
        assert "SPY" not in h.closes and "SPY" not in h.problems
    elif missing & set(window):
        first_missing = JAN[min(missing & set(window))]
        assert h.problems["SPY"].startswith(f"SPY.csv has no row for NYSE trading day {first_missing}")
    else:
        assert tuple(h.closes["SPY"]) == tuple(close_of(JAN[i]) for i in window)
        assert h.as_of == JAN[end - 1]


cells = st.one_of(
    st.sampled_from(["2024-01-02", "2024-01-03", "2024-01-06", "2100-12-31", "1989-12-29", "nan", "-1", "0"]),
    st.sampled_from(["101.5", "1e400", "", " ", '"5"', "x", "2024-13-01"]),
    st.text(alphabet="0123456789-.,\"eE\n ", max_size=12),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(cells, min_size=0, max_size=7), max_size=8))
def test_garbage_never_crashes(tmp_path: Path, table: list[list[str]]) -> None:
    lines = [",".join(row) for row in table]
    write(tmp_path, "SPY", lines)
    data = CsvMarketData(tmp_path)
    h = data.history(["SPY"], date(2024, 1, 5), 2)
    assert not ("SPY" in h.closes and "SPY" in h.problems)  # neither: the file starts later
    if "SPY" in h.closes:
        assert all(c > 0 and c == c and c != float("inf") for c in h.closes["SPY"])
    for at in (datetime(2024, 1, 3, 20, 0, tzinfo=UTC), datetime(2100, 12, 31, 22, 0, tzinfo=UTC)):
        try:
            assert data.price("SPY", at) > 0
        except DataError as err:
            assert "SPY" in str(err)


def test_history_takes_bars_per_symbol(tmp_path: Path) -> None:
    write(tmp_path, "SPY", rows(JAN))
    write(tmp_path, "QQQ", rows(JAN))
    h = CsvMarketData(tmp_path).history(["SPY", "QQQ"], date(2024, 1, 12), {"SPY": 5, "QQQ": 2})
    assert len(h.closes["SPY"]) == 5 and tuple(h.closes["QQQ"]) == tuple(h.closes["SPY"][-2:])


# --- issue 12: a close far from the last accepted one, files that are not regular ---

def _jan_rows(closes: dict[date, float]) -> list[str]:
    return [f"{d},1,1,1,{closes.get(d, 220.656)},1000" for d in JAN]


def _at_close(d: date) -> datetime:
    s = session(d)
    assert s is not None
    return s[1] - timedelta(minutes=15)


def test_a_close_100x_the_last_accepted_one_is_a_data_error_and_trading_resumes(tmp_path: Path) -> None:
    bad = JAN[10]
    write(tmp_path, "SPY", _jan_rows({bad: 22065.6}))
    market = CsvMarketData(tmp_path)
    with pytest.raises(DataError) as info:
        market.price("SPY", _at_close(bad))
    assert info.value.kind == "data_error"
    assert "SPY.csv line 12" in info.value.reason and "BOT_MAX_CLOSE_MOVE" in info.value.reason
    assert market.price("SPY", _at_close(JAN[11])) == 220.656  # back within the limit: priced
    # the bad close never enters a model's inputs: its session holds the last accepted close
    h = market.history(["SPY"], JAN[12], 5)
    assert not h.problems and max(h.closes["SPY"]) == 220.656


def test_the_limit_is_relative_to_the_last_accepted_close_not_the_previous_row(tmp_path: Path) -> None:
    closes = {JAN[5]: 400.0, JAN[6]: 410.0, JAN[7]: 300.0}  # 400 and 410: both > 50% off 220
    write(tmp_path, "SPY", _jan_rows(closes))
    market = CsvMarketData(tmp_path)
    for d in (JAN[5], JAN[6]):
        with pytest.raises(DataError):
            market.price("SPY", _at_close(d))
    assert market.price("SPY", _at_close(JAN[7])) == 300.0  # +36% of 220.656: accepted


def test_a_wider_limit_accepts_the_move(tmp_path: Path) -> None:
    write(tmp_path, "SPY", _jan_rows({JAN[10]: 22065.6}))
    market = CsvMarketData(tmp_path, max_close_move=100.0)
    assert market.price("SPY", _at_close(JAN[10])) == 22065.6


def test_a_fall_beyond_the_limit_is_refused_too(tmp_path: Path) -> None:
    write(tmp_path, "SPY", _jan_rows({JAN[10]: 2.20656}))
    with pytest.raises(DataError):
        CsvMarketData(tmp_path).price("SPY", _at_close(JAN[10]))


def test_a_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    import os
    os.mkfifo(tmp_path / "SPY.csv")
    why = CsvMarketData(tmp_path).unusable("SPY")
    assert why is not None and "SPY.csv" in why and "not a regular file" in why


def test_a_link_to_a_device_is_refused(tmp_path: Path) -> None:
    (tmp_path / "SPY.csv").symlink_to("/dev/zero")
    why = CsvMarketData(tmp_path).unusable("SPY")
    assert why is not None and "not a regular file" in why


def test_a_link_to_a_regular_csv_file_is_read(tmp_path: Path) -> None:
    real = write(tmp_path, "REAL", rows(JAN))
    (tmp_path / "SPY.csv").symlink_to(real)
    assert CsvMarketData(tmp_path).unusable("SPY") is None


def test_a_file_over_the_size_limit_is_refused_without_reading_it(tmp_path: Path) -> None:
    from bot.adapters import csv_data as csvmod
    path = write(tmp_path, "SPY", rows(JAN))
    with open(path, "r+b") as f:
        f.truncate(csvmod.MAX_CSV_BYTES + 1)  # sparse: costs no disk
    why = CsvMarketData(tmp_path).unusable("SPY")
    assert why is not None and "SPY.csv" in why and "MiB" in why
