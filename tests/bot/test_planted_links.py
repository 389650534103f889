"""Issue 12: a symbolic link planted where the bot keeps a file of the trail or of the data
directory is never followed. Start-up stops with one line naming it (exit 2) before anything is
written; a link planted while the bot runs fails the open (O_NOFOLLOW), never the victim."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from audit.chain import ChainWriter
from audit.stream import repair_tail
from audit.trail import AuditTrail
from audit.writer import AuditWriteFailed, PlantedLink
from bot.app.locking import DataDirLock
from bot.watch.heartbeat import write_atomically
from tests.fakes import FakeClock, utc
from tests.trails import clean_env

KEY = b"test-audit-key-0123456789"
VICTIM_BYTES = b'{"precious": true}\nsomeone else\'s last line, without its newline'


def victim(tmp_path: Path) -> Path:
    v = tmp_path / "victim.txt"
    v.write_bytes(VICTIM_BYTES)
    v.chmod(0o640)
    return v


def assert_untouched(v: Path) -> None:
    assert v.read_bytes() == VICTIM_BYTES
    assert stat.S_IMODE(v.stat().st_mode) == 0o640
    assert not list(v.parent.glob(v.name + ".torn*"))


def tradebot(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = clean_env()
    env.update(BOT_LOG_DIR=str(tmp_path / "logs"), BOT_DATA_DIR=str(tmp_path / "data"),
               BOT_AUDIT_KEY=KEY.decode())
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


def assert_refused(proc: subprocess.CompletedProcess, link: Path) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert f"{link} is a symbolic link" in proc.stderr and "remove it" in proc.stderr


# -- at start-up ------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("planted", ["logs/orders.jsonl", "logs/production.log",
                                     "logs/trades.jsonl.chain", "data/tradebot.lock"])
def test_a_link_in_a_fresh_directory_stops_start_up_before_anything_is_written(tmp_path, planted):
    v = victim(tmp_path)
    link = tmp_path / planted
    link.parent.mkdir()
    link.symlink_to(v)
    assert_refused(tradebot(tmp_path, "cycle"), link)
    assert_untouched(v)
    assert not (tmp_path / "logs").exists() or os.listdir(tmp_path / "logs") == [link.name]
    assert not (tmp_path / "data").exists() or os.listdir(tmp_path / "data") == [link.name]


@pytest.fixture(scope="module")
def first_cycle(tmp_path_factory) -> Path:
    """The directories after one `tradebot cycle`: a trail, its anchor, the account, the state."""
    base = tmp_path_factory.mktemp("first")
    proc = tradebot(base, "cycle")
    assert proc.returncode == 0, proc.stderr
    return base


def _anchor_dir(base: Path) -> Path:
    (d,) = (base / "data" / "anchors").iterdir()
    return d


@pytest.mark.slow
@pytest.mark.parametrize("planted", [
    "logs/orders.jsonl", "logs/production.log", "logs/trades.jsonl.chain", "logs/events.jsonl",
    "logs/orders.jsonl.1", "data/tradebot.lock", "data/state.sqlite", "data/paper_account.sqlite",
    "data/heartbeat.json", "data/audit.key", "ANCHOR/orders.jsonl.head", "ANCHOR/trail.json"])
@pytest.mark.parametrize("command", [["cycle"], ["run", "--max-cycles", "1"]])
def test_a_link_planted_between_runs_stops_start_up_and_leaves_its_target_alone(
        first_cycle, tmp_path, planted, command):
    import shutil
    base = tmp_path / "base"
    shutil.copytree(first_cycle, base, symlinks=True)
    v = victim(tmp_path)
    link = base / planted.replace("ANCHOR", str(_anchor_dir(base).relative_to(base)))
    link.unlink(missing_ok=True)
    link.symlink_to(v)
    before = sorted(p.name for p in (base / "logs").iterdir())
    assert_refused(tradebot(base, *command), link)
    assert_untouched(v)
    assert sorted(p.name for p in (base / "logs").iterdir()) == before  # nothing written


def test_a_linked_anchors_directory_stops_start_up(first_cycle, tmp_path):
    import shutil
    base = tmp_path / "base"
    shutil.copytree(first_cycle, base, symlinks=True)
    elsewhere = tmp_path / "elsewhere"
    (base / "data" / "anchors").rename(elsewhere)
    (base / "data" / "anchors").symlink_to(elsewhere)
    kept = {p: p.read_bytes() for p in elsewhere.rglob("*") if p.is_file()}
    assert_refused(tradebot(base, "cycle"), base / "data" / "anchors")
    assert {p: p.read_bytes() for p in elsewhere.rglob("*") if p.is_file()} == kept


@pytest.mark.slow
def test_simulate_refuses_a_link_in_its_output_directory(tmp_path):
    v = victim(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "orders.jsonl").symlink_to(v)
    proc = tradebot(tmp_path, "simulate", "--start", "2024-01-02", "--end", "2024-01-10",
                    "--out", str(out))
    assert_refused(proc, out / "orders.jsonl")
    assert_untouched(v)


def test_the_trail_itself_refuses_a_link_in_its_directory(tmp_path):
    v = victim(tmp_path)
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "orders.jsonl").symlink_to(v)
    with pytest.raises(PlantedLink, match="orders.jsonl is a symbolic link"):
        AuditTrail(logs, FakeClock(utc(2025, 1, 2)), durable=True, key=KEY)
    assert_untouched(v)


# -- while running: every open refuses a link (O_NOFOLLOW) ------------------------------------------

def test_repair_tail_never_cuts_a_linked_file(tmp_path):
    v = victim(tmp_path)
    (tmp_path / "orders.jsonl").symlink_to(v)
    with pytest.raises(PlantedLink):
        repair_tail(tmp_path / "orders.jsonl", "20250102T000000", json_lines=True)
    assert_untouched(v)


def test_a_torn_file_is_never_moved_aside_onto_a_link(tmp_path):
    v = victim(tmp_path)
    path = tmp_path / "orders.jsonl"
    path.write_bytes(b'{"a": 1}\n{"torn')
    (tmp_path / "orders.jsonl.torn-20250102T000000").symlink_to(v)
    with pytest.raises(PlantedLink):
        repair_tail(path, "20250102T000000", json_lines=True)
    assert_untouched(v)
    assert path.read_bytes() == b'{"a": 1}\n{"torn'


def test_a_chain_sidecar_that_is_a_link_is_not_opened(tmp_path):
    v = victim(tmp_path)
    (tmp_path / "orders.jsonl.chain").symlink_to(v)
    with pytest.raises(PlantedLink):
        ChainWriter(tmp_path / "orders.jsonl.chain", KEY)
    assert_untouched(v)


def test_the_lock_file_that_is_a_link_is_not_truncated(tmp_path):
    v = victim(tmp_path)
    (tmp_path / "tradebot.lock").symlink_to(v)
    with pytest.raises(PlantedLink):
        DataDirLock(tmp_path / "tradebot.lock").acquire()
    assert_untouched(v)


def test_the_heartbeat_never_writes_through_a_planted_temporary_file(tmp_path):
    v = victim(tmp_path)
    (tmp_path / f".heartbeat.json.{os.getpid()}.tmp").symlink_to(v)
    with pytest.raises(PlantedLink):
        write_atomically(tmp_path / "heartbeat.json", b"{}")
    assert_untouched(v)


def test_a_link_planted_for_a_stream_while_the_bot_runs_fails_the_write_not_the_victim(tmp_path):
    """The guide's rotation (`mv orders.jsonl orders.jsonl.1`) makes the bot open a new file: a
    link put there in between is refused like an unwritable file (AuditWriteFailed)."""
    from audit.records import ManualCycle
    v = victim(tmp_path)
    logs = tmp_path / "logs"
    trail = AuditTrail(logs, FakeClock(utc(2025, 1, 2)), durable=True, key=KEY)
    (logs / "events.jsonl").rename(logs / "events.jsonl.1")
    (logs / "events.jsonl").symlink_to(v)
    with pytest.raises(AuditWriteFailed):
        trail.record(ManualCycle(message="after the move", cycle_timestamp=utc(2025, 1, 2)))
    assert_untouched(v)


@pytest.mark.parametrize("name", ["state.sqlite", "state.sqlite-wal", "paper_account.sqlite",
                                  "paper_account.sqlite-journal"])
def test_the_databases_are_never_opened_through_a_link(tmp_path, name):
    """SQLite follows links (Python cannot ask it not to): the stores look before they open."""
    from bot.adapters.sim_broker import SimBrokerConfig, SimulatedBroker
    from bot.adapters.state_store import StateStore
    from tests.fakes import FixedMarket
    v = victim(tmp_path)
    (tmp_path / name).symlink_to(v)
    with pytest.raises(PlantedLink, match=name):
        if name.startswith("state"):
            StateStore(tmp_path / "state.sqlite")
        else:
            SimulatedBroker(FixedMarket({"SPY": 100.0}), FakeClock(utc(2025, 1, 2)),
                            SimBrokerConfig(), tmp_path / "paper_account.sqlite")
    assert_untouched(v)
