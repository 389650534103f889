"""replay, report and logs explain on a trail line of the wrong type or missing a field: the
line is named (file:line) and the command goes on or stops cleanly, never a traceback."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

pytestmark = pytest.mark.usefixtures("no_bot_env")
ROOT = Path(__file__).resolve().parents[2]  # this checkout's code, whatever is installed


def _damage(sim_trail: Path, tmp_path: Path, stream: str, change) -> tuple[Path, str, int]:
    """A copy of the trail with the first record of `stream` changed; (dir, order id, line)."""
    logs = tmp_path / "logs"
    shutil.copytree(sim_trail, logs)
    lines = (logs / stream).read_bytes().splitlines()
    rec = orjson.loads(lines[0])
    change(rec)
    lines[0] = orjson.dumps(rec)
    (logs / stream).write_bytes(b"\n".join(lines) + b"\n")
    first_order = orjson.loads((logs / "orders.jsonl").read_bytes().splitlines()[0])["order_id"]
    return logs, first_order, 1


def _set(field: str, value):
    def change(rec: dict) -> None:
        rec[field] = value
    return change


def _drop(field: str):
    def change(rec: dict) -> None:
        del rec[field]
    return change


CASES = [
    ("trades.jsonl", _set("quantity", "12")),
    ("trades.jsonl", _set("price", "12")),
    ("trades.jsonl", _set("symbol", None)),
    ("trades.jsonl", _drop("side")),
    ("trades.jsonl", _drop("value")),
    ("orders.jsonl", _set("quantity", [1])),
    ("orders.jsonl", _set("symbol", {"a": 1})),
    ("performance.jsonl", _set("positions", "XLB")),
    ("decisions.jsonl", _set("scores", [1])),
    ("decisions.jsonl", _set("symbols", [1])),
    ("decisions.jsonl", _set("risk_checks", [1])),
]


@pytest.mark.slow
@pytest.mark.parametrize("stream,change", CASES)
def test_a_bad_line_is_named_and_no_command_crashes(sim_trail, tmp_path, stream, change):
    logs, order_id, line = _damage(sim_trail, tmp_path, stream, change)
    cycle = orjson.loads((logs / "performance.jsonl").read_bytes().splitlines()[0])["cycle_timestamp"]
    commands = [["replay", "--logs-dir", str(logs)],
                ["report", "--logs-dir", str(logs), "-o", str(tmp_path / "r.html")],
                ["logs", "--logs-dir", str(logs), "explain", order_id],
                ["replay", "--logs-dir", str(logs), "--cycle", cycle]]
    named = 0
    for argv in commands:
        out = subprocess.run([sys.executable, "-m", "bot", *argv], capture_output=True,
                             text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert "Traceback" not in out.stderr and out.returncode in (0, 1), (argv, out.stderr)
        named += f"{stream}:{line}" in out.stdout + out.stderr
    assert named  # at least the commands that read that line say where it is
