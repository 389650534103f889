"""`tradebot backup`: the whole trail and data directory in one private tar.gz, never the key."""
from __future__ import annotations

import gzip
import sqlite3
import stat
import tarfile
from datetime import datetime, timezone
from pathlib import Path

import pytest

from audit.records import ManualCycle
from audit.trail import AuditTrail
from bot.app.backup import backup, backup_main
from bot.app.locking import DataDirLock
from bot.core.errors import ConfigError
from bot.core.layout import KEY_FILE, LOCK_FILE
from bot.settings import Settings
from tests.fakes import FakeClock, utc
from tests.trails import clean_env, simulate_trail

NOW = datetime(2025, 3, 3, 15, 7, 9, tzinfo=timezone.utc)
KEY = b"0123456789abcdef-the-secret-audit-key"


pytestmark = pytest.mark.usefixtures("no_bot_env")


@pytest.fixture(scope="module")
def rotated_trail(tmp_path_factory) -> Path:
    """A simulated month, then a live trail on it rotated twice with compression: `.1.gz` and
    `.2.gz` segments beside the active files and their `.chain` sidecars."""
    base = tmp_path_factory.mktemp("rotated")
    logs = simulate_trail(base, "2024-01-01", "2024-01-31")
    key = (base / "data" / KEY_FILE).read_bytes().strip()
    clock = FakeClock(utc(2025, 1, 2, 15, 0))
    trail = AuditTrail(logs, clock, durable=True, key=key, compress=True)
    for n in range(2):
        clock.advance(60)
        trail.record(ManualCycle(message=f"before rotation {n}", cycle_timestamp=clock.now()))
        trail.rotate()
    trail.record(ManualCycle(message="after the rotations", cycle_timestamp=clock.now()))
    trail.close()
    return logs


@pytest.fixture
def setup(rotated_trail, tmp_path):
    """A trail (rotated, compressed, a plain `.N`, a torn line moved aside) and a live data
    directory: key, lock held, SQLite in WAL mode with rows not yet checkpointed."""
    logs = tmp_path / "logs"
    logs.mkdir()
    for f in rotated_trail.iterdir():
        (logs / f.name).write_bytes(f.read_bytes())
    (logs / "errors.jsonl.4").write_bytes(b'{"timestamp": "x"}\n')
    (logs / "orders.jsonl.torn-20250303T150000Z").write_bytes(b'{"half a li')
    data = tmp_path / "data"
    data.mkdir()
    (data / KEY_FILE).write_bytes(KEY + b"\n")
    (data / "heartbeat.json").write_bytes(b'{"slot": "2025-03-03T15:00:00+00:00"}\n')
    (data / "inbox").mkdir()
    (data / "inbox" / "note.json").write_bytes(b"{}\n")
    db = sqlite3.connect(data / "state.sqlite")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA wal_autocheckpoint=0")  # the rows stay in the -wal file
    db.execute("CREATE TABLE slots (slot TEXT PRIMARY KEY, done INTEGER)")
    db.executemany("INSERT INTO slots VALUES (?, ?)", [(f"2025-03-03T{h:02d}:00", h) for h in range(24)])
    db.commit()
    lock = DataDirLock(data / LOCK_FILE)
    lock.acquire()
    yield tmp_path, Settings(_env_file=None, log_dir=logs, data_dir=data)
    lock.release()
    db.close()


def members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


@pytest.mark.slow
def test_the_archive_holds_every_log_file_and_the_data_but_not_the_key_or_lock(setup):
    base, s = setup
    assert (s.data_dir / "state.sqlite-wal").stat().st_size > 0  # the rows are in the WAL
    result = backup(s, base / "backup.tar.gz", NOW)
    got = members(result.path)
    logs = {"logs/" + f.name for f in s.log_dir.iterdir()}
    assert {"logs/orders.jsonl.1.gz", "logs/orders.jsonl.2.gz", "logs/orders.jsonl.chain",
            "logs/production.log.2.gz", "logs/errors.jsonl.4", "logs/orders.jsonl.torn-20250303T150000Z",
            "logs/production.log"} <= logs
    assert set(got) == logs | {"data/heartbeat.json", "data/inbox/note.json", "data/state.sqlite"}
    for name in logs:
        assert got[name] == (s.log_dir / name.removeprefix("logs/")).read_bytes()
    assert result.files == len(got)
    assert result.bytes == result.path.stat().st_size
    assert all(KEY not in content for content in got.values())
    assert KEY not in gzip.decompress(result.path.read_bytes())


def test_rotated_gz_segments_are_stored_as_they_are(setup):
    base, s = setup
    got = members(backup(s, base / "b.tar.gz", NOW).path)
    gz = sorted(n for n in got if n.endswith(".gz"))
    assert len(gz) == 14  # 7 files x 2 segments
    for n in gz:
        assert got[n] == (s.log_dir / n.removeprefix("logs/")).read_bytes()
    assert b"before rotation 1" in gzip.decompress(got["logs/events.jsonl.1.gz"])


def test_the_sqlite_copy_is_consistent_and_opens_on_its_own(setup):
    base, s = setup
    path = backup(s, base / "b.tar.gz", NOW).path
    out = base / "restored"
    with tarfile.open(path, "r:gz") as tar:
        tar.extract("data/state.sqlite", out, filter="data")
    assert not (out / "data" / "state.sqlite-wal").exists()
    db = sqlite3.connect(f"file:{out / 'data' / 'state.sqlite'}?mode=ro", uri=True)
    assert db.execute("SELECT count(*), sum(done) FROM slots").fetchone() == (24, sum(range(24)))
    assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    db.close()


def test_the_archive_is_private_and_never_overwrites(setup):
    base, s = setup
    path = backup(s, base / "b.tar.gz", NOW).path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = path.read_bytes()
    with pytest.raises(ConfigError, match=r"b\.tar\.gz already exists: give another --out"):
        backup(s, path, NOW)
    assert path.read_bytes() == before


def test_default_name_in_the_current_directory_and_what_it_says(setup, capsys):
    base, s = setup

    class Args:
        out = None

    assert backup_main(Args(), s) == 0
    (made,) = base.glob("tradebot-backup-*.tar.gz")
    assert len(made.name) == len("tradebot-backup-20250303T150709Z.tar.gz")
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"wrote {made}: {len(members(made))} files, ")
    assert out[1].startswith("the audit key is NOT included: back it up separately")
    assert backup(s, None, NOW).path == base / "tradebot-backup-20250303T150709Z.tar.gz"


def test_a_key_file_setting_inside_the_data_directory_is_left_out(setup):
    base, s = setup
    secret = s.data_dir / "secrets" / "trail.key"
    secret.parent.mkdir()
    secret.write_bytes(KEY)
    s = Settings(_env_file=None, log_dir=s.log_dir, data_dir=s.data_dir, audit_key_file=secret)
    got = members(backup(s, base / "b.tar.gz", NOW).path)
    assert "data/secrets/trail.key" not in got and "data/audit.key" not in got
    assert "data/state.sqlite" in got


def test_an_archive_written_into_the_log_directory_does_not_hold_itself(setup):
    base, s = setup
    path = backup(s, s.log_dir / "b.tar.gz", NOW).path
    assert "logs/b.tar.gz" not in members(path)


def test_a_missing_log_directory_is_one_clear_line(tmp_path):
    s = Settings(_env_file=None, log_dir=tmp_path / "nope", data_dir=tmp_path / "data")
    with pytest.raises(ConfigError, match=r"the log directory .*nope does not exist"):
        backup(s, tmp_path / "b.tar.gz", NOW)
    assert not (tmp_path / "b.tar.gz").exists()


def test_extracting_restores_the_trail_byte_for_byte(setup):
    base, s = setup
    path = backup(s, base / "b.tar.gz", NOW).path
    with tarfile.open(path, "r:gz") as tar:
        tar.extractall(base / "restored", filter="data")
    restored = base / "restored" / "logs"
    assert sorted(p.name for p in restored.iterdir()) == sorted(p.name for p in s.log_dir.iterdir())
    assert all((restored / p.name).read_bytes() == p.read_bytes() for p in s.log_dir.iterdir())


@pytest.mark.parametrize("out", ["no/such/dir/x.tar.gz", "no/such/dir/"])
def test_an_out_in_a_directory_that_does_not_exist_is_refused(setup, out):
    tmp, s = setup
    with pytest.raises(ConfigError, match=r"the directory \S*no/such(/dir)? does not exist: "
                       r"create it first"):
        backup(s, Path(str(tmp / out)), NOW)
    assert not (tmp / "no").exists()


@pytest.mark.slow
@pytest.mark.parametrize("logs", ["data", "data/logs"])
def test_a_log_directory_in_the_data_directory_is_refused_so_the_key_never_lands_in_a_backup(
        tmp_path, logs):
    """With BOT_LOG_DIR inside BOT_DATA_DIR the generated key sat beside the logs and `backup`
    stored logs/audit.key while saying the key was left out: the setting is refused (exit 2)."""
    import subprocess
    import sys
    env = clean_env()
    env.update(BOT_LOG_DIR=logs, BOT_DATA_DIR="data")
    for command in (["cycle"], ["backup", "--out", str(tmp_path / "b.tar.gz")]):
        proc = subprocess.run([sys.executable, "-m", "bot", *command], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
        assert "BOT_LOG_DIR" in proc.stderr and "BOT_DATA_DIR" in proc.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "b.tar.gz").exists()
