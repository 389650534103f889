"""The tradebot command as a user runs it: subprocesses in a scratch directory."""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    env.update(BOT_LOG_DIR=str(tmp_path / "logs"), BOT_DATA_DIR=str(tmp_path / "data"), **extra)
    return env


def tradebot(tmp_path, *args, timeout=60, **extra):
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=tmp_path,
                          env=env_for(tmp_path, **extra), capture_output=True, text=True,
                          timeout=timeout)


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_every_command_has_help(tmp_path):
    for cmd in ([], ["run"], ["cycle"], ["simulate"], ["config"]):
        proc = tradebot(tmp_path, *cmd, "--help")
        assert proc.returncode == 0 and "usage: tradebot" in proc.stdout


def test_config_hides_secrets(tmp_path):
    proc = tradebot(tmp_path, "config", BOT_ALPACA_SECRET_KEY="CANARY-SECRET-42", BOT_SEED="9")
    assert proc.returncode == 0
    assert "BOT_SEED=9" in proc.stdout and "BOT_ALPACA_SECRET_KEY=**********" in proc.stdout
    assert "CANARY" not in proc.stdout + proc.stderr


def test_a_bad_setting_stops_before_anything_with_one_line(tmp_path):
    proc = tradebot(tmp_path, "run", BOT_SLIPPAGE_BPS="lots")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "BOT_SLIPPAGE_BPS='lots'" in proc.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "logs").exists()


def test_run_one_cycle_then_restart_in_the_same_slot(tmp_path):
    proc = tradebot(tmp_path, "run", "--max-cycles", "1")
    assert proc.returncode == 0, proc.stderr
    assert "cycle_complete" in proc.stdout
    logs = tmp_path / "logs"
    assert stat.S_IMODE(logs.stat().st_mode) == 0o700
    for name in ("orders.jsonl", "trades.jsonl", "performance.jsonl", "errors.jsonl",
                 "decisions.jsonl", "events.jsonl", "production.log"):
        assert stat.S_IMODE((logs / name).stat().st_mode) == 0o600
    for f in (tmp_path / "data").iterdir():
        assert stat.S_IMODE(f.stat().st_mode) & 0o077 == 0, f
    perf = lines(logs / "performance.jsonl")
    assert len(perf) == 1
    # `cycle` right after: that slot already ran, so this is a manual cycle of its own
    proc = tradebot(tmp_path, "cycle")
    assert proc.returncode == 0, proc.stderr
    orders = lines(logs / "orders.jsonl")
    assert len({o["order_id"] for o in orders}) == len(orders)
    perf = lines(logs / "performance.jsonl")
    assert len(perf) == 2 and perf[0]["cycle_timestamp"] != perf[1]["cycle_timestamp"]
    assert "manual_cycle" in [e["event_type"] for e in lines(logs / "events.jsonl")]


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path):
    proc = tradebot(tmp_path, "cycle", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "dry run for slot" in proc.stdout and "orders:" in proc.stdout
    assert "risk checks" in proc.stdout
    assert not (tmp_path / "logs").exists()


def test_a_second_runner_is_refused_and_sigterm_stops_the_first_cleanly(tmp_path):
    first = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=tmp_path,
                             env=env_for(tmp_path, BOT_SCHEDULE="every 10 seconds"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        perf = tmp_path / "logs" / "performance.jsonl"
        deadline = time.time() + 30
        while time.time() < deadline and not (perf.exists() and perf.stat().st_size):
            time.sleep(0.1)
        assert perf.stat().st_size, "the first cycle runs at once"
        second = tradebot(tmp_path, "run")
        assert second.returncode == 3
        assert "already running" in second.stderr and second.stderr.count("\n") == 1
        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err
    events = [e["event_type"] for e in lines(tmp_path / "logs" / "events.jsonl")]
    assert events[:2] == ["audit_key_generated", "bot_started"]  # a first start makes the key
    assert "lock_refused" in events and events[-1] == "bot_stopped"
    assert "SIGTERM" in (tmp_path / "logs" / "production.log").read_text()


def test_a_lock_left_by_a_killed_process_does_not_block(tmp_path):
    first = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=tmp_path,
                             env=env_for(tmp_path), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    lock = tmp_path / "data" / "tradebot.lock"
    deadline = time.time() + 30
    while time.time() < deadline and not (lock.exists() and lock.read_text().strip()):
        time.sleep(0.05)
    first.kill()
    first.wait()
    proc = tradebot(tmp_path, "cycle")
    assert proc.returncode == 0, proc.stderr


def test_simulate_validates_dates(tmp_path):
    proc = tradebot(tmp_path, "simulate", "--start", "2024-02-01", "--end", "2024-01-01")
    assert proc.returncode == 2 and "before --start" in proc.stderr
    proc = tradebot(tmp_path, "simulate", "--start", "2024-13-01", "--end", "2024-01-01")
    assert proc.returncode == 2 and "not a date" in proc.stderr


def test_dry_run_reads_the_real_account_and_the_kill_switch(tmp_path):
    assert tradebot(tmp_path, "run", "--max-cycles", "1").returncode == 0
    before = (tmp_path / "logs" / "orders.jsonl").read_bytes()
    (tmp_path / "data" / "KILL_SWITCH").touch()
    proc = tradebot(tmp_path, "cycle", "--dry-run", BOT_MODELS="EqualWeightModel_v1")
    assert proc.returncode == 0, proc.stderr
    assert "positions {" in proc.stdout and "positions {}" not in proc.stdout
    assert "kill switch engaged" in proc.stdout
    assert (tmp_path / "logs" / "orders.jsonl").read_bytes() == before


def test_dry_run_names_the_real_kill_switch_file_not_its_scratch_copy(tmp_path):
    """The dry run plans on a scratch copy of the data directory; deleting a file there resumes
    nothing, so the message must name the operator's own KILL_SWITCH, as an absolute path."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "KILL_SWITCH").touch()
    env = {**env_for(tmp_path), "BOT_DATA_DIR": "data"}  # relative to the working directory
    proc = subprocess.run([sys.executable, "-m", "bot", "cycle", "--dry-run"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    (line,) = [ln for ln in proc.stdout.splitlines() if ln.startswith("kill switch engaged")]
    assert f"kill-switch file {tmp_path / 'data' / 'KILL_SWITCH'} exists" in line, line
    assert "delete it to resume trading" in line
