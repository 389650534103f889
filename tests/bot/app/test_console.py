"""The console is a convenience: a stdout nobody reads, or one that is closed, never blocks or
stops trading (console lines are dropped; the trail is the record)."""
from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.app.console import Console
from tests.trails import clean_env

F_SETPIPE_SZ = 1031


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = clean_env()
    env.update(BOT_LOG_DIR=str(tmp_path / "logs"), BOT_DATA_DIR=str(tmp_path / "data"),
               BOT_SCHEDULE="every 1 second")
    env.update(extra)
    return env


def full_pipe() -> tuple[int, int]:
    """A pipe whose buffer is already full: the next write to it would block."""
    r, w = os.pipe()
    fcntl.fcntl(w, F_SETPIPE_SZ, 4096)
    os.set_blocking(w, False)
    try:
        while True:
            os.write(w, b"x" * 4096)
    except BlockingIOError:
        pass
    os.set_blocking(w, True)
    return r, w


def cycles(tmp_path: Path) -> list[dict]:
    perf = tmp_path / "logs" / "performance.jsonl"
    return [json.loads(x) for x in perf.read_text().splitlines()] if perf.exists() else []


def wait_for_cycles(tmp_path: Path, n: int, seconds: float = 45) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and len(cycles(tmp_path)) < n:
        time.sleep(0.1)
    return len(cycles(tmp_path))


def test_a_full_console_drops_lines_and_never_blocks():
    r, w = full_pipe()
    try:
        console = Console(w)
        started = time.monotonic()
        for i in range(5000):
            console.write(f"line {i}\n")
            console.flush()
        assert time.monotonic() - started < 2
        assert console.dropped > 0
        console.close(timeout=0.2)
    finally:
        os.close(r)
        os.close(w)


def test_a_closed_console_is_disabled_without_an_error():
    r, w = os.pipe()
    os.close(r)
    try:
        console = Console(w)
        console.write("nobody reads this\n")
        deadline = time.monotonic() + 5
        while not console.closed and time.monotonic() < deadline:
            time.sleep(0.01)
        assert console.closed
        console.write("nor this\n")  # no error either
        console.close(timeout=0.2)
    finally:
        os.close(w)


def test_a_console_read_to_the_end_gets_every_line():
    r, w = os.pipe()
    console = Console(w)
    for i in range(100):
        console.write(f"line {i}\n")
    console.close(timeout=5)
    os.close(w)
    with os.fdopen(r) as f:
        assert f.read().splitlines() == [f"line {i}" for i in range(100)]


@pytest.mark.slow
def test_run_with_a_stdout_nobody_reads_keeps_trading_and_stops_on_sigterm(tmp_path):
    r, w = full_pipe()
    bot = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=tmp_path, env=env_for(tmp_path),
                           stdout=w, stderr=subprocess.PIPE, text=True)
    os.close(w)
    try:
        assert wait_for_cycles(tmp_path, 4) >= 4, "trading froze behind a full console"
        bot.send_signal(signal.SIGTERM)
        started = time.monotonic()
        _, err = bot.communicate(timeout=20)
        assert time.monotonic() - started < 10
    finally:
        if bot.poll() is None:
            bot.kill()
        os.close(r)
    assert bot.returncode == 0, err
    events = [json.loads(x) for x in (tmp_path / "logs" / "events.jsonl").read_text().splitlines()]
    assert events[-1]["event_type"] == "bot_stopped" and "SIGTERM" in events[-1]["reason"]


@pytest.mark.slow
def test_run_piped_into_head_keeps_trading(tmp_path):
    bot = subprocess.Popen(f"{sys.executable} -m bot run --max-cycles 4 | head -1", shell=True,
                           cwd=tmp_path, env=env_for(tmp_path), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    out, err = bot.communicate(timeout=60)
    assert out.count("\n") == 1 and "Traceback" not in err, err
    assert len(cycles(tmp_path)) == 4
    events = [json.loads(x) for x in (tmp_path / "logs" / "events.jsonl").read_text().splitlines()]
    assert events[-1]["event_type"] == "bot_stopped"
    assert events[-1]["reason"] == "max cycles reached"
