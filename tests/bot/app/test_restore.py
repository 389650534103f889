"""`tradebot restore FILE`: a `tradebot backup` archive put back, then verified (issue 11)."""
from __future__ import annotations

import io
import tarfile
from datetime import datetime, timezone
from pathlib import Path

import orjson
import pytest

from bot.app.backup import backup
from bot.app.locking import DataDirLock
from bot.cli.main import main
from bot.core.layout import LOCK_FILE
from bot.settings import Settings
from tests.audit.anchored import KEY, make_trail

NOW = datetime(2025, 3, 3, 15, 7, 9, tzinfo=timezone.utc)

pytestmark = pytest.mark.usefixtures("no_bot_env")


@pytest.fixture
def archive(tmp_path) -> Path:
    """A backup of a trail (rotated once) and its data directory, anchor included."""
    logs, data = make_trail(tmp_path / "old", rotations=1)
    return backup(Settings(_env_file=None, log_dir=logs, data_dir=data), tmp_path / "b.tar.gz", NOW).path


@pytest.fixture
def target(tmp_path, monkeypatch) -> tuple[Path, Path]:
    logs, data = tmp_path / "new" / "logs", tmp_path / "new" / "data"
    monkeypatch.setenv("BOT_LOG_DIR", str(logs))
    monkeypatch.setenv("BOT_DATA_DIR", str(data))
    monkeypatch.setenv("BOT_AUDIT_KEY", KEY.decode())
    return logs, data


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_backup_restored_elsewhere_verifies(tmp_path, archive, target, capsys):
    logs, data = target
    assert main(["restore", str(archive)]) == 0
    out = capsys.readouterr().out
    assert "restored" in out and "trail valid" in out, out
    assert files(logs) == files(tmp_path / "old" / "logs")
    assert files(data)["anchors/" + next((tmp_path / "old" / "data" / "anchors").iterdir()).name + "/trail.json"]


def test_a_restored_trail_that_was_altered_in_the_archive_exits_1(tmp_path, archive, target, capsys):
    edited = tmp_path / "edited.tar.gz"
    with tarfile.open(archive) as src, tarfile.open(edited, "w:gz") as dst:
        for m in src.getmembers():
            body = src.extractfile(m).read() if m.isfile() else None
            if m.name == "logs/trades.jsonl":
                body = body.replace(b'"price":500.0', b'"price":1.0')
                m.size = len(body)
            dst.addfile(m, io.BytesIO(body) if body is not None else None)
    assert main(["restore", str(edited)]) == 1
    assert "trail ALTERED" in capsys.readouterr().out


def test_a_log_directory_that_is_not_empty_is_refused_and_nothing_is_written(archive, target, capsys):
    logs, data = target
    logs.mkdir(parents=True)
    (logs / "orders.jsonl").write_bytes(b"{}\n")
    assert main(["restore", str(archive)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "not empty" in err and str(logs) in err
    assert files(logs) == {"orders.jsonl": b"{}\n"} and not data.exists()


def test_a_data_directory_holding_only_the_key_is_fine(archive, target, capsys):
    logs, data = target
    data.mkdir(parents=True)
    (data / "audit.key").write_bytes(KEY + b"\n")
    assert main(["restore", str(archive)]) == 0, capsys.readouterr()


def test_restore_is_refused_while_a_bot_holds_the_lock(archive, target, capsys):
    logs, data = target
    data.mkdir(parents=True)
    with DataDirLock(data / LOCK_FILE):
        assert main(["restore", str(archive)]) == 3
    assert "already running" in capsys.readouterr().err and not logs.exists()


def test_an_archive_with_a_path_outside_its_directories_is_refused(tmp_path, target, capsys):
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        body = orjson.dumps({"x": 1})
        info = tarfile.TarInfo("logs/../../escaped")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    assert main(["restore", str(evil)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "logs/../../escaped" in err
    assert not (tmp_path / "escaped").exists() and not target[0].exists()


def test_a_file_that_is_not_a_backup_is_one_clear_line(tmp_path, target, capsys):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello\n")
    assert main(["restore", str(bad)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "not a tradebot backup" in err
    assert main(["restore", str(tmp_path / "absent.tar.gz")]) == 2


def test_a_backup_without_an_anchor_is_restored_and_says_how_to_check_it(tmp_path, target, capsys):
    logs, data = make_trail(tmp_path / "old", anchor=False)
    archive = backup(Settings(_env_file=None, log_dir=logs, data_dir=data), tmp_path / "b.tar.gz", NOW).path
    assert main(["restore", str(archive)]) == 2
    out = capsys.readouterr()
    assert "restored" in out.out and "--no-anchor" in out.err and "--data-dir" not in out.err
    assert files(target[0]) == files(logs)
