"""simulate on user CSV files: bad data is recorded, never traded on, never a crash."""
from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

from bot import calendar
from bot.data.synthetic import SyntheticMarket
from bot.settings import load_settings
from bot.simulate import simulate

SYMBOLS = ["XLB", "XLE", "XLF", "XLI", "XLK", "XLP", "XLU", "XLV", "XLY", "SPY", "TLT"]


def write_csvs(directory: Path, start: date, end: date) -> None:
    market = SyntheticMarket(7)
    days = calendar.trading_days(start, end)
    directory.mkdir()
    for sym in SYMBOLS:
        closes = market.history([sym], end + timedelta(days=1), len(days)).closes[sym]
        rows = ["Date,Open,High,Low,Close,Volume"]
        rows += [f"{d},{c},{c},{c},{c},1000" for d, c in zip(days, closes)]
        (directory / f"{sym}.csv").write_text("\n".join(rows) + "\n")


def test_simulate_from_csv_records_bad_data_and_goes_on(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    csv_dir = tmp_path / "bars"
    write_csvs(csv_dir, date(2021, 1, 4), date(2023, 6, 30))
    (csv_dir / "XLU.csv").unlink()  # a missing symbol
    xlk = (csv_dir / "XLK.csv").read_text().splitlines()
    xlk[400] = xlk[400].split(",")[0] + ",1,1,1,nan,1"  # a NaN close in 2022
    (csv_dir / "XLK.csv").write_text("\n".join(xlk) + "\n")
    bad_day = xlk[400].split(",")[0]

    result = simulate(load_settings(data_dir=tmp_path / "data"), date(2022, 1, 3),
                      date(2023, 6, 30), tmp_path / "logs", csv_dir=csv_dir, progress=None)
    assert result.days == len(calendar.trading_days(date(2022, 1, 3), date(2023, 6, 30)))
    errors = [json.loads(x) for x in (tmp_path / "logs" / "errors.jsonl").read_text().splitlines()]
    by_symbol = {(e["event_type"], e.get("symbol")) for e in errors}
    assert ("data_error", "XLU") in by_symbol and ("data_error", "XLK") in by_symbol
    assert any("XLU.csv" in e["error"] for e in errors)
    assert any(bad_day in e["error"] for e in errors if e.get("symbol") == "XLK")
    trades = [json.loads(x) for x in (tmp_path / "logs" / "trades.jsonl").read_text().splitlines()]
    assert trades and not any(t["symbol"] == "XLU" for t in trades)
    perf = (tmp_path / "logs" / "performance.jsonl").read_text().splitlines()
    assert len(perf) == result.days  # every cycle completed


def test_simulation_started_records_the_version(tmp_path, monkeypatch):
    from importlib.metadata import version
    monkeypatch.chdir(tmp_path)
    simulate(load_settings(data_dir=tmp_path / "data"), date(2024, 1, 2), date(2024, 1, 5),
             tmp_path / "logs", progress=None)
    events = [json.loads(x) for x in (tmp_path / "logs" / "events.jsonl").read_text().splitlines()]
    started = next(e for e in events if e["event_type"] == "simulation_started")
    assert started["version"] == version("tradebot") and list(started)[-1] == "version"
