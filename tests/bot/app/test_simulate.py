"""simulate on user CSV files: bad data is recorded, never traded on, never a crash."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from bot.adapters.synthetic_data import SyntheticMarket
from bot.app.simulate import simulate
from bot.core import calendar
from bot.core.scheduling import simulation_slots
from bot.review.check import check
from bot.settings import load_settings

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


@pytest.mark.slow
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


# -- slots: 15 minutes before each session's close ------------------------------------------

def _ny(slot) -> str:
    return slot.astimezone(calendar.NY).strftime("%Y-%m-%d %H:%M")


def test_an_ordinary_day_trades_at_15_45_new_york():
    assert [_ny(s) for s in simulation_slots(date(2024, 1, 2), date(2024, 1, 3))] == [
        "2024-01-02 15:45", "2024-01-03 15:45"]
    assert [_ny(s) for s in simulation_slots(date(2024, 7, 2), date(2024, 7, 2))] == ["2024-07-02 15:45"]


@pytest.mark.parametrize("day", [date(2019, 7, 3), date(2024, 11, 29), date(2024, 12, 24),
                                 date(2018, 12, 24), date(2025, 7, 3)])
def test_an_early_close_day_trades_at_12_45_before_its_13_00_close(day):
    assert calendar.early_close(day)
    [slot] = simulation_slots(day, day)
    assert _ny(slot) == f"{day} 12:45"
    assert calendar.is_open(slot) and slot.utcoffset() == timedelta(0)


def test_every_simulated_slot_is_inside_its_session():
    days = simulation_slots(date(2015, 1, 1), date(2024, 12, 31))
    assert len(days) == len(calendar.trading_days(date(2015, 1, 1), date(2024, 12, 31)))
    assert all(calendar.is_open(s) for s in days)
    assert sum(calendar.early_close(s.astimezone(calendar.NY).date()) for s in days) == 20  # as the issue counted


def test_a_simulation_over_early_closes_trades_before_each_close(tmp_path):
    logs = tmp_path / "logs"
    result = simulate(load_settings(data_dir=tmp_path / "data"), date(2024, 11, 25),
                      date(2024, 12, 31), logs, progress=None)
    perf = [json.loads(x) for x in (logs / "performance.jsonl").read_text().splitlines()]
    assert len(perf) == result.days
    by_day = {p["cycle_timestamp"][:10]: p["cycle_timestamp"] for p in perf}
    assert by_day["2024-11-29"] == "2024-11-29T17:45:00+00:00"  # 12:45 New York (EST)
    assert by_day["2024-12-24"] == "2024-12-24T17:45:00+00:00"
    assert by_day["2024-12-23"] == "2024-12-23T20:45:00+00:00"  # 15:45 on a full day
    for name in ("orders.jsonl", "trades.jsonl"):
        for rec in map(json.loads, (logs / name).read_text().splitlines()):
            assert calendar.is_open(datetime.fromisoformat(rec["cycle_timestamp"])), rec
    assert check(logs).findings == []  # replay's trail check expects the same slots


def test_risk_off_before_the_defensive_symbol_has_data_holds_with_a_warning(tmp_path):
    # TLT's file starts in 2023 (as real TLT starts in mid-2002): risk-off cycles of 2022 hold.
    csv_dir = tmp_path / "bars"
    write_csvs(csv_dir, date(2021, 1, 4), date(2023, 6, 30))
    tlt = (csv_dir / "TLT.csv").read_text().splitlines()
    (csv_dir / "TLT.csv").write_text("\n".join(tlt[:1] + [r for r in tlt[1:] if r >= "2023"]) + "\n")
    logs = tmp_path / "logs"
    simulate(load_settings(data_dir=tmp_path / "data"), date(2022, 1, 3), date(2023, 6, 30), logs,
             csv_dir=csv_dir, progress=None)

    def read(name):
        return [json.loads(x) for x in (logs / name).read_text().splitlines()]

    held = [d["cycle_timestamp"] for d in read("decisions.jsonl") if "TLT has no closes" in d["reason"]]
    warned = [e["cycle_timestamp"] for e in read("events.jsonl") if e["event_type"] == "risk_off_held"]
    first_tlt = next(r for r in tlt[1:] if r >= "2023")[:10]
    assert held and warned == held and all(h[:10] <= first_tlt for h in held)
    traded = {t["cycle_timestamp"] for t in read("trades.jsonl")}
    assert not traded & set(held)  # the sector positions stay
    positions = {p["cycle_timestamp"]: p["positions"] for p in read("performance.jsonl")}
    assert all(positions[h] and "TLT" not in positions[h] for h in held)


def test_simulation_started_records_the_version(tmp_path, monkeypatch):
    from importlib.metadata import version
    monkeypatch.chdir(tmp_path)
    simulate(load_settings(data_dir=tmp_path / "data"), date(2024, 1, 2), date(2024, 1, 5),
             tmp_path / "logs", progress=None)
    events = [json.loads(x) for x in (tmp_path / "logs" / "events.jsonl").read_text().splitlines()]
    started = next(e for e in events if e["event_type"] == "simulation_started")
    assert started["version"] == version("tradebot") and list(started)[-2:] == ["version", "run_id"]
    # the run id is the simulation's inputs: the same simulation again has the same one
    again = simulate(load_settings(data_dir=tmp_path / "data"), date(2024, 1, 2), date(2024, 1, 5),
                     tmp_path / "again", progress=None)
    assert again.days
    events = [json.loads(x) for x in (tmp_path / "again" / "events.jsonl").read_text().splitlines()]
    assert next(e for e in events if e["event_type"] == "simulation_started")["run_id"] == started["run_id"]


# -- arguments that cannot give a meaningful run stop before anything is written ---------------

def _tradebot(cwd: Path, *args: str, **env: str):
    import subprocess
    import sys

    from tests.trails import ROOT, clean_env
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=cwd,
                          env=clean_env(PYTHONPATH=str(ROOT), BOT_DATA_DIR=str(cwd / "data"), **env),
                          capture_output=True, text=True, timeout=120)


def _unusable_dirs(tmp_path: Path) -> dict[str, Path]:
    empty = tmp_path / "empty"
    empty.mkdir()
    other = tmp_path / "other"  # files, but none for the models' symbols, and one unreadable
    other.mkdir()
    (other / "AAPL.csv").write_text("Date,Close\n2024-01-02,100\n")
    (other / "SPY.csv").write_text("no header here\n")
    return {"missing": tmp_path / "nonexistent", "empty": empty, "no usable symbol": other}


@pytest.mark.slow
def test_a_csv_dir_without_usable_data_is_exit_2_before_anything_is_written(tmp_path):
    for what, directory in _unusable_dirs(tmp_path).items():
        for how in (("--csv-dir", str(directory)), ()):
            out = tmp_path / f"logs-{what}-{len(how)}"
            proc = _tradebot(tmp_path, "simulate", "--start", "2024-01-02", "--end", "2024-03-01",
                             "--out", str(out), *how,
                             **({} if how else {"BOT_CSV_DIR": str(directory)}))
            assert proc.returncode == 2, (what, proc.stdout, proc.stderr)
            assert proc.stderr.count("\n") == 1 and str(directory) in proc.stderr, proc.stderr
            assert "Traceback" not in proc.stderr and proc.stdout == ""
            assert not out.exists() and not (tmp_path / "data").exists(), what


@pytest.mark.slow
def test_a_run_mostly_before_the_data_says_so_and_why_spy_has_no_row(tmp_path):
    proc = _tradebot(tmp_path, "simulate", "--start", "1990-01-01", "--end", "1999-01-01",
                     "--out", str(tmp_path / "logs"))
    assert proc.returncode == 0, proc.stderr
    held = [x for x in proc.stdout.splitlines() if x.startswith("the models held")]
    assert held and "of 2,276 days" in held[0]
    assert "warning: that is most of the run" in proc.stdout
    assert "(SPY from 1998-01-0" in proc.stdout  # the benchmark row says where it starts

    nothing = _tradebot(tmp_path, "simulate", "--start", "1992-01-02", "--end", "1992-03-01",
                        "--out", str(tmp_path / "logs2"))
    assert nothing.returncode == 0, nothing.stderr
    assert "no buy&hold SPY row: SPY has no price in this range (" in nothing.stdout


def test_a_run_with_data_does_not_warn(sim_trail):
    from bot.app.simulate import SimulationResult, format_summary
    from bot.review.performance import Performance
    zero = Performance(0.0, 0.0, 0.0, 0.0, 0.0)
    r = SimulationResult(100, zero, zero, 1, 1, 0, Path("logs"), 1.0, 0.1, held_days=10)
    text = format_summary(r)
    assert "held (not enough data to decide) on 10 of 100 days" in text
    assert "warning" not in text


# -- issue 12: a close far from the last accepted one is refused, never traded -------------

def _spike(csv_dir: Path, symbol: str, row: int, factor: float) -> str:
    lines = (csv_dir / f"{symbol}.csv").read_text().splitlines()
    day, c = lines[row].split(",")[0], float(lines[row].split(",")[4]) * factor
    lines[row] = f"{day},{c},{c},{c},{c},1000"
    (csv_dir / f"{symbol}.csv").write_text("\n".join(lines) + "\n")
    return day


def _records(log_dir: Path, name: str) -> list[dict]:
    return [json.loads(x) for x in (log_dir / name).read_text().splitlines()]


def test_a_close_100x_too_high_is_a_data_error_and_never_traded(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    csv_dir = tmp_path / "bars"
    write_csvs(csv_dir, date(2021, 1, 4), date(2022, 12, 30))
    spiked = {sym: _spike(csv_dir, sym, 300, 100.0) for sym in SYMBOLS}  # every symbol, one day
    day = spiked["SPY"]
    result = simulate(load_settings(data_dir=tmp_path / "data"), date(2022, 1, 3),
                      date(2022, 12, 30), tmp_path / "logs", csv_dir=csv_dir, progress=None)
    errors = _records(tmp_path / "logs", "errors.jsonl")
    refused = {e["symbol"] for e in errors
               if e["event_type"] == "data_error" and "BOT_MAX_CLOSE_MOVE" in e["error"]}
    assert refused  # the held symbols, priced that day
    assert all("line 301" in e["error"] for e in errors if "BOT_MAX_CLOSE_MOVE" in e["error"])
    assert not [t for t in _records(tmp_path / "logs", "trades.jsonl")
                if t["cycle_timestamp"].startswith(day)]
    navs = [p["nav"] for p in _records(tmp_path / "logs", "performance.jsonl")]
    assert max(navs) < 2 * navs[0]  # the spike never priced the book
    assert result.final_nav < 2 * navs[0]
    after = [t for t in _records(tmp_path / "logs", "trades.jsonl") if t["cycle_timestamp"] > day]
    assert after  # trading resumed on the next close within the limit


def test_a_close_of_1e308_does_not_crash_the_summary(tmp_path, monkeypatch):
    from bot.app.simulate import format_summary
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BOT_MAX_CLOSE_MOVE", "1e308")  # the setting accepts any move
    csv_dir = tmp_path / "bars"
    write_csvs(csv_dir, date(2021, 1, 4), date(2022, 3, 31))
    _spike(csv_dir, "SPY", 300, 1e308 / 400)
    result = simulate(load_settings(data_dir=tmp_path / "data"), date(2022, 1, 3),
                      date(2022, 3, 31), tmp_path / "logs", csv_dir=csv_dir, progress=None)
    text = format_summary(result)
    assert "buy&hold SPY" in text or "no buy&hold SPY" in text
