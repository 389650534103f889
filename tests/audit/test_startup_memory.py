"""The writer's start-up in bounded memory: a 2 GiB sparse file or a 50 MB line planted in the
trail is damage (file:line, the segment sealed and set aside, the stream goes on), never read
into memory whole."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from audit.trail import AuditTrail
from tests.fakes import FakeClock, utc
from tests.trails import ROOT, clean_env

KEY = b"test-audit-key-0123456789"
SLOT = "2025-03-03T15:00:00+00:00"

# Start the trail in a child under a 1 GiB address-space limit; print the peak RSS it grew by.
_START = """
import resource, sys
from pathlib import Path
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from audit.records import ManualCycle
from tests.fakes import at
from audit.trail import AuditTrail
from tests.fakes import FakeClock, utc
def peak_kib():  # this process's own peak (ru_maxrss would carry the parent's over exec)
    return int(next(x for x in open("/proc/self/status") if x.startswith("VmHWM:")).split()[1])
before = peak_kib()
t = AuditTrail(Path(sys.argv[1]), FakeClock(utc(2025, 3, 4, 15)), durable=True,
               key=b"test-audit-key-0123456789", data_dir=Path(sys.argv[2]))
t.record(ManualCycle(message="after the start-up", cycle_timestamp=at("2025-03-04T15:00:00+00:00")))
t.close()
print((peak_kib() - before) >> 10)
"""


def _trail(tmp_path: Path) -> tuple[Path, Path]:
    logs, data = tmp_path / "logs", tmp_path / "data"
    t = AuditTrail(logs, FakeClock(utc(2025, 3, 3, 15)), durable=True, key=KEY, data_dir=data)
    from audit.records import ManualCycle
    from tests.fakes import at
    for i in range(4):
        t.record(ManualCycle(message=f"cycle {i}", cycle_timestamp=at(SLOT)))
    t.close()
    return logs, data


def _start(logs: Path, data: Path) -> int:
    proc = subprocess.run([sys.executable, "-c", _START, str(logs), str(data)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-800:]
    return int(proc.stdout.split()[-1])


def _events(logs: Path) -> list[dict]:
    return [orjson.loads(x) for x in (logs / "events.jsonl").read_bytes().splitlines()]


@pytest.mark.slow
def test_a_2gb_sparse_orders_file_is_set_aside_as_damage_within_1_gib(tmp_path):
    logs, data = _trail(tmp_path)
    with open(logs / "orders.jsonl", "wb") as f:
        f.truncate(2 << 30)  # `truncate -s 2G logs/orders.jsonl`: zeros without a newline
    grown_mib = _start(logs, data)
    assert grown_mib < 200
    damage = [e for e in _events(logs) if e["event_type"] == "damage" and e.get("at")]
    assert [e["at"] for e in damage] == ["orders.jsonl:1"]
    assert (logs / "orders.jsonl.1").stat().st_size == 2 << 30  # set aside whole, not copied
    assert (logs / "orders.jsonl").stat().st_size == 0  # the stream goes on in a new file
    assert not list(logs.glob("orders.jsonl.torn-*"))
    assert _events(logs)[-1]["message"] == "after the start-up"


@pytest.mark.slow
@pytest.mark.parametrize("last", [True, False])
def test_a_50mb_line_is_damage_without_being_read_into_memory(tmp_path, last):
    logs, data = _trail(tmp_path)
    signed = (logs / "events.jsonl").read_bytes()
    n = signed.count(b"\n")
    with open(logs / "events.jsonl", "ab") as f:
        f.write(b'{"x": "' + b"a" * (50 << 20) + b'"}\n')
        if not last:
            f.write(b'{"x": 1}\n')
    grown_mib = _start(logs, data)
    assert grown_mib < 64  # blocks of at most 8 MiB, never the 50 MB line
    damage = [e for e in _events(logs) if e["event_type"] == "damage" and e.get("at")]
    assert [e["at"] for e in damage] == [f"events.jsonl:{n + 1}"]
    aside = logs / "events.jsonl.1"
    assert aside.stat().st_size > 50 << 20
    with open(aside, "rb") as f:
        assert f.read(len(signed)) == signed


@pytest.mark.slow
def test_a_cycle_starts_on_a_2gb_sparse_orders_file_within_1_gib(tmp_path):
    """`truncate -s 2G logs/orders.jsonl` after a cycle: the next `tradebot cycle` runs under a
    1 GiB address-space limit, records the damage at the line after the bot's and goes on."""
    import resource

    def env() -> dict[str, str]:
        e = clean_env()
        e.update(BOT_LOG_DIR=str(tmp_path / "logs"), BOT_DATA_DIR=str(tmp_path / "data"))
        return e

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    first = subprocess.run([sys.executable, "-m", "bot", "cycle"], cwd=tmp_path, env=env(),
                           capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr[-800:]
    orders = tmp_path / "logs" / "orders.jsonl"
    n = orders.read_bytes().count(b"\n")
    with open(orders, "r+b") as f:
        f.truncate(2 << 30)
    proc = subprocess.run([sys.executable, "-m", "bot", "cycle"], cwd=tmp_path, env=env(),
                          capture_output=True, text=True, timeout=300, preexec_fn=limit)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-800:]
    damage = [e for e in _events(tmp_path / "logs") if e["event_type"] == "damage" and e.get("at")]
    assert [e["at"] for e in damage] == [f"orders.jsonl:{n + 1}"]
    assert (tmp_path / "logs" / "orders.jsonl.1").stat().st_size == 2 << 30


def test_an_over_long_torn_chain_tail_is_still_moved_aside_in_blocks(tmp_path, monkeypatch):
    """A chain goes on in its own file: an unterminated tail over MAX_LINE is moved aside (copied
    in blocks), never left for the next record to be glued onto; a stream's is left as damage."""
    from audit import files
    logs, data = _trail(tmp_path)
    monkeypatch.setattr(files, "MAX_LINE", 1000)
    tail = b"x" * 5000
    with open(logs / "events.jsonl.chain", "ab") as f:
        f.write(tail)
    with open(logs / "errors.jsonl", "ab") as f:
        f.write(tail)
    t = AuditTrail(logs, FakeClock(utc(2025, 3, 4, 15)), durable=True, key=KEY, data_dir=data)
    t.close()
    (aside,) = logs.glob("events.jsonl.chain.torn-*")
    assert aside.read_bytes() == tail
    assert (logs / "events.jsonl.chain").read_bytes().endswith(b"}\n")
    assert not list(logs.glob("errors.jsonl.torn-*"))
    damage = [e for e in _events(logs) if e["event_type"] == "damage" and e.get("at")]
    assert [e["at"] for e in damage] == ["errors.jsonl:1"]
    assert (logs / "errors.jsonl.1").read_bytes() == tail



@pytest.mark.slow
def test_the_trail_id_is_found_past_a_2gb_line_planted_in_a_chain_within_1_gib(tmp_path):
    """Start-up looks for the chain's trail record line by line: a 2 GiB line before it is
    skipped in blocks, not read into memory."""
    logs, _data = _trail(tmp_path)
    chain = logs / "events.jsonl.chain"
    records = chain.read_bytes()
    trail_id = orjson.loads(records.splitlines()[0])["trail_id"]
    with open(chain, "wb") as f:
        f.truncate(2 << 30)  # 2 GiB of zeros (sparse) before the records
        f.seek(0, 2)
        f.write(b"\n" + records)
    code = ("import resource, sys; from pathlib import Path; "
            "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)); "
            "from audit.trail import _trail_id_of; print(_trail_id_of(Path(sys.argv[1])))")
    proc = subprocess.run([sys.executable, "-c", code, str(chain)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-800:]
    assert proc.stdout.split() == [trail_id]
