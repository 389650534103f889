"""audit/files.py: readers get lines in bounded memory, whatever a file holds."""
from __future__ import annotations

import resource
from pathlib import Path

import pytest

from audit import files
from audit.files import Line, iter_chunks, iter_lines_of
from audit.records import TradeExecuted, UnknownRecord
from tests.fakes import at


def _lines(path: Path, longs: list[Line]) -> list[tuple[int, bytes]]:
    out, n = [], 0
    for chunk in iter_chunks(path, on_long=longs.append):
        for raw in chunk.splitlines():
            n += 1
            if raw.strip():
                out.append((n, raw))
    return out


def test_a_line_over_the_limit_is_skipped_with_its_line_and_the_rest_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "MAX_LINE", 1000)
    path = tmp_path / "trades.jsonl"
    path.write_bytes(b'{"a":1}\n' + b"x" * 5000 + b'\n{"a":3}\n' + b"y" * 2500 + b'\n{"a":5}\n')
    longs: list[Line] = []
    got = _lines(path, longs)
    assert got == [(1, b'{"a":1}'), (3, b'{"a":3}'), (5, b'{"a":5}')]
    assert [str(w) for w in longs] == ["trades.jsonl:2", "trades.jsonl:4"]


def test_small_reads_give_the_same_lines(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "MAX_LINE", 64)
    path = tmp_path / "x.jsonl"
    body = b"".join(b"%d" % i * (i % 40) + b"\n" for i in range(1, 400)) + b"z" * 500 + b"\nend"
    path.write_bytes(body)
    longs: list[Line] = []
    got = _lines(path, longs)
    want = [(i + 1, raw) for i, raw in enumerate(body.split(b"\n"))
            if raw.strip() and len(raw) <= 64]
    too_long = [i + 1 for i, raw in enumerate(body.split(b"\n")) if len(raw) > 64]
    assert got == want and [w.line for w in longs] == too_long and 400 in too_long


@pytest.mark.slow
def test_a_2gb_sparse_file_is_read_in_bounded_memory(tmp_path, capsys):
    path = tmp_path / "orders.jsonl"
    with open(path, "wb") as f:
        f.write(b'{"a":1}\n')
        f.truncate(2 << 30)  # 2 GiB of zero bytes without a newline: costs no disk
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    got = list(iter_lines_of(path))
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert [raw for _w, raw in got] == [b'{"a":1}']
    assert "orders.jsonl:2: a line over 8 MiB skipped" in capsys.readouterr().err
    assert grown_mib < 200  # blocks of 8 MiB, never the 2 GiB line


def _limited(mib: int):
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (mib << 20, mib << 20))
    return limit


@pytest.mark.slow
def test_verify_and_the_readers_finish_on_a_2gb_sparse_file_within_1_gib(sim_trail, tmp_path):
    """A 2 GiB file of zeros appended to orders.jsonl: each command completes under a 1 GiB
    address-space limit (it used to need the whole file in memory), names the line, and
    verify calls the trail altered."""
    import shutil
    import subprocess
    import sys

    from tests.trails import ROOT, clean_env
    logs = tmp_path / "logs"
    shutil.copytree(sim_trail, logs)
    data = sim_trail.parent / "data"
    lines = (logs / "orders.jsonl").read_bytes().count(b"\n")
    with open(logs / "orders.jsonl", "r+b") as f:
        f.truncate(2 << 30)
    order_id = orders_first_id(sim_trail)
    for argv, codes in ((["audit", "verify", "--logs-dir", str(logs), "--data-dir", str(data)], (1,)),
                        (["replay", "--logs-dir", str(logs)], (0, 1)),
                        (["logs", "--logs-dir", str(logs), "explain", order_id], (0,))):
        proc = subprocess.run([sys.executable, "-m", "bot", *argv], cwd=ROOT,
                              env=clean_env(BOT_AUDIT_KEY_FILE=str(data / "audit.key")),
                              capture_output=True, text=True, timeout=300,
                              preexec_fn=_limited(1024))
        assert proc.returncode in codes and "Traceback" not in proc.stderr, (argv, proc.stderr[-800:])
        assert f"orders.jsonl:{lines + 1}: a line over 8 MiB skipped" in proc.stderr, argv


def orders_first_id(logs: Path) -> str:
    import orjson
    return orjson.loads((logs / "orders.jsonl").read_bytes().splitlines()[0])["order_id"]


def test_cycle_of_reads_a_records_slot_typed_or_not():
    trade = TradeExecuted(order_id="tb-1", symbol="SPY", side="buy", quantity=2.0, price=10.0,
                          value=20.0, new_position=2.0, nav=100.0, model="M", fill_id="f-1",
                          cycle_timestamp=at("2024-01-02T20:45:00+00:00"))
    newer = UnknownRecord(stream="events.jsonl", event_type="margin_call_x", timestamp=None,
                          fields={"cycle_timestamp": "2024-01-02T20:45:00+00:00"})
    assert files.cycle_of(newer) == at("2024-01-02T20:45:00+00:00") == files.cycle_of(trade)
    assert files.cycle_of(UnknownRecord(stream="events.jsonl", event_type="x", timestamp=None,
                                        fields={"cycle_timestamp": "soon"})) is None
