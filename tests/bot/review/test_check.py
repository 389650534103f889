"""`tradebot replay` checks a trail against itself: a simulated trail is consistent; every kind
of damage done on purpose is reported with its file and line, and the exit code says so."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from bot.review.check import ERROR, WARNING, check
from tests.trails import ROOT, clean_env, copy_trail


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def _edit(path: Path, index: int, **changes) -> dict:
    lines = _lines(path)
    rec = orjson.loads(lines[index])
    rec.update(changes)
    lines[index] = orjson.dumps(rec) + b"\n"
    path.write_bytes(b"".join(lines))
    return rec


def _drop(path: Path, index: int) -> dict:
    lines = _lines(path)
    rec = orjson.loads(lines.pop(index))
    path.write_bytes(b"".join(lines))
    return rec


def _replay(logs: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot", "replay", "--logs-dir", str(logs), *extra],
                          cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=120)


def _errors(logs: Path) -> list[str]:
    return [str(f) for f in check(logs).findings if f.severity == ERROR]


@pytest.fixture
def damaged(sim_trail, tmp_path):
    return copy_trail(sim_trail, tmp_path / "logs")


@pytest.mark.slow
def test_a_simulated_trail_is_consistent_and_replay_exits_0(sim_trail):
    result = check(sim_trail)
    assert result.findings == []
    assert result.fills > 50 and result.cycles > 100 and result.orders == result.fills
    proc = _replay(sim_trail)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "consistent: 0 error(s), 0 warning(s)" in proc.stdout
    assert "SectorRotationModel_v1" in proc.stdout and "EqualWeightModel_v1" in proc.stdout


@pytest.mark.slow
def test_a_dropped_fill_is_found(damaged):
    lost = _drop(damaged / "trades.jsonl", 4)
    errors = _errors(damaged)
    assert any("a fill line is missing" in e and "performance.jsonl:" in e for e in errors), errors
    assert any(f"{lost['symbol']} " in e and "snapshot positions disagree" in e for e in errors)
    proc = _replay(damaged)
    assert proc.returncode == 1 and "INCONSISTENT" in proc.stdout


def test_an_edited_side_is_found_at_its_line(damaged):
    rec = _edit(damaged / "trades.jsonl", 7, side="sell")
    assert rec["side"] == "sell"
    errors = _errors(damaged)
    assert any(e.startswith("ERROR   trades.jsonl:8: trade side 'sell' differs from its order's "
                            "'buy'") for e in errors), errors
    assert any("trades.jsonl:8: new_position" in e for e in errors)


def test_a_removed_snapshot_is_a_gap_in_cycles(damaged):
    gone = _drop(damaged / "performance.jsonl", 40)
    errors = _errors(damaged)
    assert errors == [f"ERROR   gap in cycles: scheduled slot {gone['cycle_timestamp']} has no "
                      "cycle_complete in performance.jsonl (the simulation runs every NYSE "
                      "trading day 15 minutes before its close: 15:45 New York time, 12:45 on "
                      "early-close days)"]


def test_a_trade_without_its_order_and_a_wrong_value_and_symbol(damaged):
    order = _drop(damaged / "orders.jsonl", 0)
    _edit(damaged / "trades.jsonl", 2, value=123.45)
    _edit(damaged / "trades.jsonl", 5, symbol="ZZZ")
    errors = _errors(damaged)
    assert any(e.startswith("ERROR   trades.jsonl:1: trade of") and order["order_id"] in e
               for e in errors), errors
    assert any(e.startswith("ERROR   trades.jsonl:3: value 123.45 is not quantity x price")
               for e in errors)
    assert any(e.startswith("ERROR   trades.jsonl:6: trade symbol 'ZZZ' differs") for e in errors)


def test_a_snapshot_nav_that_is_not_cash_plus_positions(damaged):
    rec = _edit(damaged / "performance.jsonl", 10, nav=1.0)
    assert rec["positions"]
    errors = _errors(damaged)
    assert errors == [e for e in errors if "performance.jsonl:11: nav 1.00 is not cash plus" in e]
    assert errors


def test_rotated_and_compressed_files_are_read_in_order(damaged):
    import gzip
    lines = _lines(damaged / "trades.jsonl")
    third = len(lines) // 3
    (damaged / "trades.jsonl.2.gz").write_bytes(gzip.compress(b"".join(lines[:third])))
    (damaged / "trades.jsonl.1").write_bytes(b"".join(lines[third:2 * third]))
    (damaged / "trades.jsonl").write_bytes(b"".join(lines[2 * third:]))
    assert check(damaged).findings == []
    _edit(damaged / "trades.jsonl.1", 1, side="buy" if b'"side":"sell"' in lines[third + 1] else "sell")
    assert any(e.startswith("ERROR   trades.jsonl.1:2: trade side") for e in _errors(damaged))


# -- gaps in a live run: a trail written by hand -------------------------------------------------

class LiveTrail:
    def __init__(self, d: Path):
        self.d, self.n = d, 0

    def add(self, name: str, at: str, **rec) -> None:
        self.n += 1
        rec = {"timestamp": f"{at}.{self.n:06d}+00:00", **rec}
        with open(self.d / name, "ab") as f:
            f.write(orjson.dumps(rec) + b"\n")

    def started(self, at: str) -> None:
        self.add("events.jsonl", at, event_type="bot_started", message="", pid=1, command="run",
                 broker="sim", schedule="every 15 minutes", market_hours="always",
                 models="SectorRotationModel_v1", settings_sha256="", version="0")
        self.add("events.jsonl", at, event_type="account_checked", message="", nav=1000.0,
                 cash=1000.0, buying_power=1000.0, positions={}, prices={})

    def cycle(self, slot: str) -> None:
        self.add("performance.jsonl", slot, event_type="cycle_complete", nav=1000.0, cash=1000.0,
                 positions_count=0, positions={}, buying_power=1000.0,
                 cycle_timestamp=slot + "+00:00", orders=0, fills=0, errors=0, prices={})


def test_live_gaps_are_errors_unless_the_trail_says_why(tmp_path):
    t = LiveTrail(tmp_path)
    t.started("2025-11-18T14:00:01")
    t.cycle("2025-11-18T14:00:00")
    t.cycle("2025-11-18T14:15:00")
    t.cycle("2025-11-18T14:45:00")  # 14:30 is missing, and nothing says why
    t.add("errors.jsonl", "2025-11-18T15:00:02", event_type="cycle_error", error="boom",
          cycle_timestamp="2025-11-18T15:00:00+00:00")
    t.cycle("2025-11-18T15:15:00")
    t.started("2025-11-18T16:20:00")  # stopped 15:15..16:20: 15:30-16:00 missed, then 16:15 run
    t.add("events.jsonl", "2025-11-18T16:20:00", event_type="slot_missed", message="",
          missed=4, last_completed="2025-11-18T15:15:00+00:00",
          latest_due="2025-11-18T16:15:00+00:00", policy="run")
    t.cycle("2025-11-18T16:15:00")
    t.cycle("2025-11-18T16:30:00")
    findings = check(tmp_path).findings
    errors = [f.message for f in findings if f.severity == ERROR]
    warnings = [(str(f.where), f.message) for f in findings if f.severity == WARNING]
    assert errors == ["gap in cycles: scheduled slot 2025-11-18T14:30:00+00:00 has no "
                      "cycle_complete in performance.jsonl (BOT_SCHEDULE='every 15 minutes', "
                      "BOT_MARKET_HOURS='always')"]
    assert ("errors.jsonl:1", "slot 2025-11-18T15:00:00+00:00 has no cycle_complete: its cycle "
            "failed") in warnings
    missed = [w for w in warnings if "recorded as missed" in w[1]]
    assert missed == [("events.jsonl:5", "slots 2025-11-18T15:30:00+00:00 to 2025-11-18T16:00:00"
                       "+00:00 (3 slots) have no cycle_complete: recorded as missed")]


def test_a_run_of_consecutive_gaps_is_one_finding(tmp_path):
    t = LiveTrail(tmp_path)
    t.started("2025-11-18T14:00:01")
    t.cycle("2025-11-18T14:00:00")
    t.cycle("2025-11-18T15:15:00")  # 14:15..15:00 missing, nothing says why
    t.cycle("2025-11-18T15:45:00")  # 15:30 missing too: a second stretch
    errors = [f.message for f in check(tmp_path).findings if f.severity == ERROR]
    assert errors == [
        "gap in cycles: scheduled slots 2025-11-18T14:15:00+00:00 to 2025-11-18T15:00:00+00:00 "
        "(4 slots) have no cycle_complete in performance.jsonl (BOT_SCHEDULE='every 15 minutes', "
        "BOT_MARKET_HOURS='always')",
        "gap in cycles: scheduled slot 2025-11-18T15:30:00+00:00 has no cycle_complete in "
        "performance.jsonl (BOT_SCHEDULE='every 15 minutes', BOT_MARKET_HOURS='always')"]


@pytest.mark.slow
@pytest.mark.parametrize("bad", ["garbage", "2024-02-30", "2024-02-30T10:00"])
def test_a_bad_cycle_is_the_usage_and_one_line_exit_2(sim_trail, bad):
    proc = _replay(sim_trail, "--cycle", bad)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    usage, error = proc.stderr.splitlines()[0], proc.stderr.splitlines()[-1]
    assert usage.startswith("usage: tradebot replay")
    assert error.startswith(f"tradebot replay: error: argument --cycle: {bad!r} is not a")


def test_replay_explains_bad_arguments_in_one_line(tmp_path):
    proc = _replay(tmp_path / "nowhere")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "is not a directory" in proc.stderr


def test_replay_steps_say_why_nav_differs_and_never_print_negative_zero(sim_trail):
    from bot.cli.replay import _money
    assert [_money(x) for x in (-0.0, -0.004, -1e-12, -0.005, 1234.5)] == \
        ["0.00", "0.00", "0.00", "-0.01", "1,234.50"]
    proc = _replay(sim_trail, "--steps")
    assert proc.returncode == 0, proc.stderr
    assert "-0.00" not in proc.stdout
    assert "marked at its fill price" in proc.stdout and "trades.jsonl's nav" in proc.stdout


@pytest.mark.slow
def test_replay_tsv_is_csv_with_tabs(sim_trail):
    csv_out = _replay(sim_trail, "--format", "csv").stdout.splitlines()
    tsv_out = _replay(sim_trail, "--format", "tsv").stdout.splitlines()
    assert len(tsv_out) == len(csv_out) >= 2
    assert tsv_out[0].split("\t") == csv_out[0].split(",")
    assert "-0.00" not in "\n".join(csv_out)


def test_a_clock_step_owns_the_slots_between_its_readings_in_whole_seconds(tmp_path):
    t = LiveTrail(tmp_path)
    t.started("2025-11-18T14:00:01")
    t.cycle("2025-11-18T14:00:00")
    t.cycle("2025-11-18T14:15:00")
    # the clock jumped from 14:30:00.4 to 15:05:30.75: 14:30 (its reading cut to whole seconds),
    # 14:45 and 15:00 were stepped over
    t.add("events.jsonl", "2025-11-18T15:05:31", event_type="clock_step", message="",
          offset_seconds=2130.35, expected="2025-11-18T14:30:00.400000+00:00",
          clock="2025-11-18T15:05:30.750000+00:00")
    t.cycle("2025-11-18T15:15:00")
    findings = check(tmp_path).findings
    assert [f.message for f in findings if f.severity == ERROR] == []
    assert [(str(f.where), f.message) for f in findings if f.severity == WARNING] == [
        ("events.jsonl:3", "slots 2025-11-18T14:30:00+00:00 to 2025-11-18T15:00:00+00:00 "
         "(3 slots) have no cycle_complete: the system clock stepped over it (clock_step)")]


def test_every_error_or_event_naming_an_order_explains_an_unfilled_one():
    from dataclasses import fields

    from audit.records import ERRORS, EVENTS, RECORD_TYPES
    from bot.review.check import ORDER_NOTES
    naming = {kind for kind in RECORD_TYPES if kind.stream in (ERRORS, EVENTS)
              and "order_id" in {f.name for f in fields(kind)}}
    assert naming == set(ORDER_NOTES)


def test_a_record_kind_this_version_lacks_is_left_out_with_a_warning(tmp_path):
    t = LiveTrail(tmp_path)
    t.started("2025-11-18T14:00:01")
    t.cycle("2025-11-18T14:00:00")
    t.add("trades.jsonl", "2025-11-18T14:05:00", event_type="trade_amended_by_a_newer_version",
          order_id="o1", symbol="SPY", side="buy", quantity=1.0, price=1.0)
    t.add("performance.jsonl", "2025-11-18T14:06:00", event_type="snapshot_of_a_newer_version",
          nav=5.0)
    t.cycle("2025-11-18T14:15:00")
    with pytest.warns(UserWarning, match="not known to this version"):
        result = check(tmp_path)
    assert result.consistent and (result.fills, result.cycles) == (0, 2)
