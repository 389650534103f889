"""One writer per trail: the log directory is locked as well as the data directory."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.app.locking import LogDirLock
from bot.core.errors import LockHeld
from bot.core.layout import LOG_LOCK_FILE
from tests.trails import clean_env


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = clean_env()
    env.update(BOT_LOG_DIR=str(tmp_path / "logs"), BOT_DATA_DIR=str(tmp_path / "data"))
    env.update(extra)
    return env


def test_a_second_lock_on_a_log_directory_is_refused_naming_it_and_the_holder(tmp_path):
    with LogDirLock(tmp_path / LOG_LOCK_FILE):
        with pytest.raises(LockHeld) as refused:
            LogDirLock(tmp_path / LOG_LOCK_FILE).acquire()
    message = str(refused.value)
    assert f"pid {os.getpid()}" in message and str(tmp_path) in message
    assert "BOT_LOG_DIR" in message and "\n" not in message
    LogDirLock(tmp_path / LOG_LOCK_FILE).acquire()  # released: free again


def test_a_lock_file_planted_as_a_link_is_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / LOG_LOCK_FILE).symlink_to(victim)
    with pytest.raises(OSError):
        LogDirLock(tmp_path / "logs" / LOG_LOCK_FILE).acquire()
    assert victim.read_text() == "precious\n"


@pytest.mark.slow
def test_two_runners_with_their_own_data_but_one_log_directory_the_second_is_refused(tmp_path):
    first = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=tmp_path,
                             env=env_for(tmp_path, BOT_SCHEDULE="every 10 seconds"),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        perf = tmp_path / "logs" / "performance.jsonl"
        deadline = time.time() + 30
        while time.time() < deadline and not (perf.exists() and perf.stat().st_size):
            time.sleep(0.1)
        assert perf.exists() and perf.stat().st_size, "the first runner never cycled"
        second = subprocess.run([sys.executable, "-m", "bot", "run"], cwd=tmp_path,
                                env=env_for(tmp_path, BOT_DATA_DIR=str(tmp_path / "data2")),
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 3, second.stderr
        assert second.stderr.count("\n") == 1 and "Traceback" not in second.stderr
        assert "log directory" in second.stderr and str(tmp_path / "logs") in second.stderr
        assert f"pid {first.pid}" in second.stderr
        # a locked trail is still read by the tools
        for args in (["logs", "nav"], ["audit", "check"], ["replay"]):
            reader = subprocess.run([sys.executable, "-m", "bot", *args], cwd=tmp_path,
                                    env=env_for(tmp_path), capture_output=True, text=True, timeout=60)
            assert reader.returncode == 0, (args, reader.stdout, reader.stderr)
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=30)
    started = [json.loads(x) for x in (tmp_path / "logs" / "events.jsonl").read_text().splitlines()
               if '"bot_started"' in x]
    assert len(started) == 1  # the second never wrote into the first's trail
    assert not (tmp_path / "data2" / "state.sqlite").exists()


@pytest.mark.slow
def test_a_backup_leaves_the_log_directory_lock_out(tmp_path):
    import tarfile
    run = dict(cwd=tmp_path, env=env_for(tmp_path), capture_output=True, text=True, timeout=60)
    done = subprocess.run([sys.executable, "-m", "bot", "cycle"], **run)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "logs" / LOG_LOCK_FILE).exists()
    out = tmp_path / "backup.tar.gz"
    done = subprocess.run([sys.executable, "-m", "bot", "backup", "--out", str(out)], **run)
    assert done.returncode == 0, done.stderr
    with tarfile.open(out) as tar:
        names = tar.getnames()
    assert "logs/events.jsonl" in names and f"logs/{LOG_LOCK_FILE}" not in names
