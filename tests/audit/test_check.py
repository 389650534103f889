"""`tradebot audit check`: a simulated trail passes; each kind of damage is named file:line."""
from __future__ import annotations

import gzip
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from audit.check import MAX_PER_FILE, check_trail
from audit.files import segments
from audit.records import STREAMS
from bot.cli.main import main
from tests.trails import copy_trail

SUMMARY = re.compile(r"(\d+) passed, (\d+) failed")


def run(capsys, logs: Path) -> tuple[int, list[str]]:
    code = main(["audit", "check", "--logs-dir", str(logs)])
    out = capsys.readouterr()
    return code, out.out.splitlines() + out.err.splitlines()


def lines_of(logs: Path) -> int:
    """Lines of every file of every stream, blank ones too."""
    return sum(len(_read(p).splitlines()) for name in STREAMS for p in segments(logs, name))


def _read(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()


@pytest.mark.slow
def test_a_simulated_trail_passes(sim_trail, capsys):
    assert (sim_trail / "errors.jsonl").stat().st_size == 0  # an empty stream is fine
    code, out = run(capsys, sim_trail)
    assert code == 0
    assert out == [f"{lines_of(sim_trail) + 1} passed, 0 failed"]  # every line, + production.log


def test_the_command_as_a_user_runs_it(sim_trail):
    proc = subprocess.run([sys.executable, "-m", "bot", "audit", "check", "--logs-dir", str(sim_trail)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.endswith(" passed, 0 failed\n"), proc.stdout
    help_text = subprocess.run([sys.executable, "-m", "bot", "audit", "check", "--help"],
                               capture_output=True, text=True).stdout
    assert "exit codes: 0 the trail conforms; 1 it does not" in " ".join(help_text.split())
    assert "2 bad arguments" in help_text


# ---------------------------------------------------------------- damaged trails
def _edit(path: Path, n: int, change) -> None:
    """Replace line n (1-based) of `path` with change(record) (a dict, or bytes as they are)."""
    lines = path.read_bytes().splitlines(keepends=True)
    new = change(orjson.loads(lines[n - 1]))
    lines[n - 1] = (new if isinstance(new, bytes) else orjson.dumps(new)) + b"\n"
    path.write_bytes(b"".join(lines))


def _set(key, value):
    return lambda r: {**r, key: value}


def _drop(key):
    return lambda r: {k: v for k, v in r.items() if k != key}


def _swap(a, b):
    def change(r):
        keys = list(r)
        i, j = keys.index(a), keys.index(b)
        keys[i], keys[j] = keys[j], keys[i]
        return {k: r[k] for k in keys}
    return change


def _front(key, value):
    return lambda r: {"timestamp": r["timestamp"], "event_type": r["event_type"], key: value,
                      **{k: v for k, v in r.items() if k not in ("timestamp", "event_type")}}


DAMAGE = {  # id: (file, line, change, words the problem line must hold)
    "wrong type": ("orders.jsonl", 3, _set("quantity", "10"), "field 'quantity' should be a number"),
    "bool is not a number": ("trades.jsonl", 2, _set("nav", True), "field 'nav' should be a number"),
    "float for an integer": ("performance.jsonl", 5, _set("orders", 1.5), "field 'orders' should be an integer"),
    "null where none may be": ("orders.jsonl", 2, _set("symbol", None), "field 'symbol' is null"),
    "too big for a double": ("trades.jsonl", 4, lambda r: orjson.dumps(r).replace(
        b'"nav":', b'"nav":1e999,"x":', 1), "finite number"),
    "missing field": ("performance.jsonl", 2, _drop("buying_power"), "missing field 'buying_power'"),
    "missing guide field of order_error": None,  # (built below: needs an errors line)
    "reordered fields": ("orders.jsonl", 4, _swap("side", "symbol"), "field 'side' is out of order"),
    "timestamp without microseconds": ("trades.jsonl", 3, lambda r: {
        **r, "timestamp": r["timestamp"][:19] + "+00:00"}, "is not UTC with six-digit microseconds"),
    "five-digit microseconds": ("orders.jsonl", 5, lambda r: {
        **r, "timestamp": r["timestamp"][:25] + "+00:00"}, "is not UTC with six-digit microseconds"),
    "Z instead of +00:00": ("performance.jsonl", 3, lambda r: {
        **r, "timestamp": r["timestamp"][:26] + "Z"}, "is not UTC with six-digit microseconds"),
    "not a real date": ("orders.jsonl", 6, lambda r: {
        **r, "timestamp": "2024-02-30" + r["timestamp"][10:]}, "not a real date and time"),
    "fractional cycle_timestamp": ("performance.jsonl", 4, lambda r: {
        **r, "cycle_timestamp": r["cycle_timestamp"][:19] + ".500000+00:00"}, "cycle_timestamp"),
    "unknown event_type": ("orders.jsonl", 7, _set("event_type", "trade_executed"),
                           "event_type 'trade_executed' does not belong in orders.jsonl"),
    "extra field before the documented ones": ("trades.jsonl", 5, _front("note", "x"),
                                               "extra field 'note' before the documented ones"),
    "side": ("orders.jsonl", 8, _set("side", "hold"), "side 'hold' is not 'buy' or 'sell'"),
    "quantity not positive": ("trades.jsonl", 6, lambda r: {**r, "quantity": 0.0, "value": 0.0},
                              "quantity 0.0 is not positive"),
    "value is not quantity x price": ("trades.jsonl", 7, lambda r: {**r, "value": r["value"] + 1},
                                      "is not quantity x price"),
    "positions_count": ("performance.jsonl", 6, lambda r: {**r, "positions_count": r["positions_count"] + 1},
                        "positions_count"),
    "timestamp goes backwards": ("performance.jsonl", 8, lambda r: {
        **r, "timestamp": "2000-01-03T20:45:00.000000+00:00"}, "timestamp goes backwards"),
    "not JSON": ("decisions.jsonl", 2, lambda r: b'{"timestamp": ', "not JSON"),
    "not an object": ("events.jsonl", 2, lambda r: b"[1, 2]", "not a JSON object"),
    "blank line": ("orders.jsonl", 9, lambda r: b"", "blank line"),
}
del DAMAGE["missing guide field of order_error"]


@pytest.mark.parametrize("name", list(DAMAGE))
def test_damage_is_named_by_file_and_line(sim_trail, tmp_path, capsys, name):
    file, line, change, words = DAMAGE[name]
    logs = copy_trail(sim_trail, tmp_path / "logs")
    _edit(logs / file, line, change)
    code, out = run(capsys, logs)
    assert code == 1
    problems = [x for x in out[:-1]]
    assert len(problems) == 1 and problems[0].startswith(f"{file}:{line}: "), out
    assert words in problems[0], problems[0]
    passed, failed = map(int, SUMMARY.fullmatch(out[-1]).groups())
    assert failed == 1 and passed == lines_of(logs)  # the other lines, + production.log


def test_an_order_error_needs_the_guides_fields(tmp_path, capsys, sim_trail):
    logs = copy_trail(sim_trail, tmp_path / "logs")
    good = {"timestamp": "2024-06-28T19:45:01.000000+00:00", "event_type": "order_error",
            "symbol": "SPY", "side": "buy", "quantity": 1.0, "error": "refused",
            "order_data": {"symbol": "SPY"}, "model": "M", "order_id": "tb-1",
            "cycle_timestamp": "2024-06-28T19:45:00+00:00"}
    bad = {k: v for k, v in good.items() if k != "order_data"}
    (logs / "errors.jsonl").write_bytes(orjson.dumps(good) + b"\n" + orjson.dumps(bad) + b"\n")
    code, out = run(capsys, logs)
    assert code == 1 and out[:-1] == ["errors.jsonl:2: missing field 'order_data'"]


def test_extra_fields_after_the_documented_ones_are_fine(sim_trail, tmp_path, capsys):
    logs = copy_trail(sim_trail, tmp_path / "logs")
    _edit(logs / "orders.jsonl", 2, lambda r: {**r, "host_note": "x"})
    assert run(capsys, logs)[0] == 0


def test_a_torn_last_line(sim_trail, tmp_path, capsys):
    logs = copy_trail(sim_trail, tmp_path / "logs")
    data = (logs / "trades.jsonl").read_bytes()
    (logs / "trades.jsonl").write_bytes(data[:-1])  # a whole record, but no newline
    n = data.count(b"\n")
    code, out = run(capsys, logs)
    assert code == 1 and out[:-1] == [f"trades.jsonl:{n}: the last line has no newline (a torn "
                                      "write: the bot moves it aside when it next starts)"]
    assert SUMMARY.fullmatch(out[-1]).group(2) == "1"
    (logs / "trades.jsonl").write_bytes(data[:-40])  # cut inside the record: one failed line
    code, out = run(capsys, logs)
    assert code == 1 and [x.split(": ")[0] for x in out[:-1]] == [f"trades.jsonl:{n}"] * 2
    assert "not JSON" in out[0] and SUMMARY.fullmatch(out[-1]).group(2) == "1"


def test_a_bad_line_in_a_gz_rotated_segment(sim_trail, tmp_path, capsys):
    logs = copy_trail(sim_trail, tmp_path / "logs")
    lines = (logs / "orders.jsonl").read_bytes().splitlines(keepends=True)
    older, newer = lines[:10], lines[10:]
    older[3] = older[3].replace(b'"side":"', b'"side":"x', 1)
    (logs / "orders.jsonl.1.gz").write_bytes(gzip.compress(b"".join(older)))
    (logs / "orders.jsonl").write_bytes(b"".join(newer))
    code, out = run(capsys, logs)
    assert code == 1 and len(out) == 2 and out[0].startswith("orders.jsonl.1.gz:4: side 'x")
    assert SUMMARY.fullmatch(out[-1]).groups() == (str(lines_of(logs)), "1")


def test_segments_are_read_oldest_first(sim_trail, tmp_path, capsys):
    """orders.jsonl.2 is older than .1: swapping them makes time go backwards at .1's line 1."""
    logs = copy_trail(sim_trail, tmp_path / "logs")
    lines = (logs / "orders.jsonl").read_bytes().splitlines(keepends=True)
    (logs / "orders.jsonl.2").write_bytes(b"".join(lines[:5]))
    (logs / "orders.jsonl.1").write_bytes(b"".join(lines[5:10]))
    (logs / "orders.jsonl").write_bytes(b"".join(lines[10:]))
    assert run(capsys, logs)[0] == 0
    (logs / "orders.jsonl.2").write_bytes(b"".join(lines[5:10]) + b"".join(lines[:5]))
    code, out = run(capsys, logs)
    assert code == 1 and out[0].startswith("orders.jsonl.2:6: timestamp goes backwards")


def test_a_garbage_file_is_capped_not_flooded(sim_trail, tmp_path, capsys):
    logs = copy_trail(sim_trail, tmp_path / "logs")
    (logs / "events.jsonl").write_bytes(b"garbage\n" * 100)
    code, out = run(capsys, logs)
    assert code == 1 and len(out) == MAX_PER_FILE + 2
    assert out[MAX_PER_FILE] == f"events.jsonl: ... {100 - MAX_PER_FILE} more problems"
    assert SUMMARY.fullmatch(out[-1]).group(2) == "100"


def test_production_log_must_be_there_and_utf8(sim_trail, tmp_path, capsys):
    logs = copy_trail(sim_trail, tmp_path / "logs")
    with open(logs / "production.log", "ab") as f:
        f.write(b"caf\xe9\n")
    n = (logs / "production.log").read_bytes().count(b"\n")
    code, out = run(capsys, logs)
    assert code == 1 and out[0] == f"production.log:{n}: not UTF-8 text (invalid continuation byte)"
    (logs / "production.log").unlink()
    code, out = run(capsys, logs)
    assert code == 1 and out[0].startswith("production.log: missing")


def test_a_missing_stream_fails(sim_trail, tmp_path, capsys):
    logs = copy_trail(sim_trail, tmp_path / "logs")
    (logs / "trades.jsonl").unlink()
    code, out = run(capsys, logs)
    assert code == 1 and out[0].startswith("trades.jsonl: missing")


def test_a_directory_without_a_trail_is_exit_1(tmp_path, capsys):
    code, out = run(capsys, tmp_path)
    assert code == 1 and out[0].startswith(f"{tmp_path}: no audit trail here")
    assert out[-1] == "0 passed, 1 failed"


@pytest.mark.parametrize("where", ["missing", "a file"])
def test_a_bad_directory_is_one_line_and_exit_2(tmp_path, capsys, where):
    target = tmp_path / "nope"
    if where == "a file":
        target.write_text("x")
    code, out = run(capsys, target)
    assert code == 2 and out == [f"tradebot: {target} is not a directory: give the log directory "
                                 "with --logs-dir DIR or BOT_LOG_DIR"]


def test_the_parallel_path_finds_the_same(sim_trail, tmp_path, monkeypatch):
    """Big trails are checked one file per worker: same problems, same order, same counts."""
    import audit.check
    logs = copy_trail(sim_trail, tmp_path / "logs")
    _edit(logs / "trades.jsonl", 3, _set("nav", "x"))
    _edit(logs / "orders.jsonl", 2, _drop("model"))
    one = check_trail(logs)
    monkeypatch.setattr(audit.check, "PARALLEL_MIN", 0)
    assert audit.check._jobs([logs / "orders.jsonl", logs / "trades.jsonl"]) >= 1
    many = check_trail(logs)
    assert (many.problems, many.passed, many.failed) == (one.problems, one.passed, one.failed)
    assert [p.split(":")[0] for p in one.problems] == ["orders.jsonl", "trades.jsonl"]


def test_the_log_directory_defaults_to_bot_log_dir(sim_trail, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("BOT_LOG_DIR", str(sim_trail))
    assert main(["audit", "check"]) == 0
    assert capsys.readouterr().out.endswith(" passed, 0 failed\n")
    monkeypatch.setenv("BOT_LOG_DIR", str(tmp_path / "nope"))
    assert main(["audit", "check"]) == 2
