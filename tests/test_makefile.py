"""`make run` as a newcomer runs it: in a terminal, then Ctrl-C."""
from __future__ import annotations

import os
import select
import shutil
import sys
import time
from pathlib import Path

import pytest

from tests.trails import clean_env

ROOT = Path(__file__).resolve().parent.parent

BIN = Path(sys.executable).parent

pytestmark = pytest.mark.skipif(
    not (shutil.which("make") and shutil.which("bash") and (BIN / "tradebot").exists()),
    reason="needs make, bash and tradebot installed beside the Python running the tests")


def _read_until(fd: int, needle: bytes, seconds: float) -> bytes:
    out, deadline = b"", time.time() + seconds
    while time.time() < deadline and needle not in out:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the terminal closed: everything has exited
                break
            if not chunk:
                break
            out += chunk
    return out


@pytest.mark.slow
def test_ctrl_c_in_a_terminal_stops_make_run_with_exit_0(tmp_path):
    import pty
    env = {k: v for k, v in clean_env().items() if not k.startswith("MAKE")}
    env.update(BOT_LOG_DIR=str(tmp_path / "logs"), BOT_DATA_DIR=str(tmp_path / "data"),
               BOT_SCHEDULE="every 10 seconds")
    # the venv running these tests stands in for .venv; -o: never (re)install it here
    argv = ["make", "-C", str(ROOT), "--no-print-directory", "-o", ".venv/.installed", "run",
            f"BIN={BIN}"]
    pid, fd = pty.fork()
    if pid == 0:  # the child: make in a new terminal, as a user's shell would start it
        os.execvpe(argv[0], argv, env)
    try:
        out = _read_until(fd, b"next cycle at", 60)
        assert b"next cycle at" in out, out.decode(errors="replace")
        os.write(fd, b"\x03")  # Ctrl-C: SIGINT to the terminal's foreground process group
        out += _read_until(fd, b"\x00never", 30)
        _, status = os.waitpid(pid, 0)
    finally:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
        os.close(fd)
    text = out.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert "Interrupt" not in text and "Error" not in text
    assert "bot_stopped: tradebot stopped: SIGINT received" in text
