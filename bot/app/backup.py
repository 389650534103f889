"""`tradebot backup`: one tar.gz of the whole trail and the data directory, never the audit key.

The archive holds `logs/` (every file of the log directory: streams, rotated `.N` and `.N.gz`
segments, `.chain` sidecars, production.log, torn lines moved aside) and `data/` (the data
directory without the audit key and the lock file). SQLite databases are copied with SQLite's
backup API, so a running bot can be backed up; their -wal/-shm files are then left out. The
archive is private (mode 0600) and never overwrites a file. `tradebot restore FILE` puts it back
(bot/app/restore.py) and verifies it.
"""
from __future__ import annotations

import os
import sqlite3
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from bot.core.errors import ConfigError
from bot.core.layout import KEY_FILE, LOCK_FILE, LOG_LOCK_FILE, key_path
from bot.settings import Settings

SQLITE_SUFFIX = ".sqlite"
_SQLITE_SIDE = ("-wal", "-shm", "-journal")


@dataclass(frozen=True)
class BackupResult:
    path: Path
    files: int  # files in the archive
    bytes: int  # size of the archive


def default_name(now: datetime) -> str:
    return f"tradebot-backup-{now.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}.tar.gz"


def _inside(path: Path, directory: Path) -> bool:
    try:
        path.resolve().relative_to(directory.resolve())
        return True
    except ValueError:
        return False


def _walk(root: Path, skip_dirs: tuple[Path, ...]) -> Iterator[Path]:
    """Every regular file under `root`, sorted, not following symlinked directories."""
    skip = {d.resolve() for d in skip_dirs}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if (here / d).resolve() not in skip)
        for name in sorted(filenames):
            path = here / name
            if path.is_file():  # sockets, fifos and dangling links are not backed up
                yield path


def _excluded_data(path: Path, data_dir: Path, settings: Settings) -> bool:
    """The audit key (wherever BOT_AUDIT_KEY_FILE points inside), its temporary files, the lock,
    and the side files of the SQLite databases copied through the backup API."""
    name = path.name
    key_tmp = name.startswith(f".{KEY_FILE}.") and name.endswith(".tmp")
    if path.parent.resolve() == data_dir.resolve() and (name in (KEY_FILE, LOCK_FILE) or key_tmp):
        return True
    if _is_key_file(path, settings):
        return True
    return name.endswith(tuple(SQLITE_SUFFIX + s for s in _SQLITE_SIDE))


def _is_key_file(path: Path, settings: Settings) -> bool:
    key_file = settings.audit_key_file
    return key_file is not None and path.resolve() == key_file.resolve()


def _add(tar: tarfile.TarFile, path: Path, arcname: str) -> int:
    """Add one file as it is; 0 when it vanished meanwhile (a rotation renamed it)."""
    try:
        tar.add(path, arcname, recursive=False)
    except FileNotFoundError:
        return 0
    return 1


def _add_sqlite(tar: tarfile.TarFile, path: Path, arcname: str, scratch: Path) -> None:
    """A consistent copy made by SQLite itself (the bot may be writing the database)."""
    copy = scratch / f"{len(os.listdir(scratch))}{SQLITE_SUFFIX}"
    src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(copy)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            dst.close()
    finally:
        src.close()
    info = tar.gettarinfo(copy, arcname)
    st = path.stat()
    info.mode, info.mtime, info.uid, info.gid = st.st_mode & 0o7777, st.st_mtime, st.st_uid, st.st_gid
    with open(copy, "rb") as f:
        tar.addfile(info, f)


def _open_new(path: Path) -> int:
    """Create `path` for writing with mode 0600; refuse an existing file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path} already exists: give another --out, or move the old backup "
                          "away first (a backup never overwrites a file)") from None
    except OSError as exc:
        raise ConfigError(f"cannot create the backup {path}: {exc.strerror or exc}: choose "
                          "a writable place with --out") from None
    os.fchmod(fd, 0o600)
    return fd


def backup(settings: Settings, out: Path | None, now: datetime) -> BackupResult:
    """Write the archive to `out` (default `tradebot-backup-<UTC time>.tar.gz` here)."""
    log_dir, data_dir = settings.log_dir, settings.data_dir
    if not log_dir.is_dir():
        raise ConfigError(f"the log directory {log_dir} does not exist: set BOT_LOG_DIR to the "
                          "directory of the trail to back up")
    path = out if out is not None else Path.cwd() / default_name(now)
    if path.is_dir():
        path = path / default_name(now)
    elif not path.parent.is_dir():
        raise ConfigError(f"--out {path}: the directory {path.parent} does not exist: create it "
                          "first, or give --out an existing directory (a backup never creates one)")
    fd = _open_new(path)
    files = 0
    try:
        with os.fdopen(fd, "wb") as raw, tempfile.TemporaryDirectory() as scratch, \
                tarfile.open(fileobj=raw, mode="w:gz") as tar:
            os.chmod(scratch, 0o700)
            me = path.resolve()
            for f in _walk(log_dir, (data_dir,) if _inside(data_dir, log_dir) else ()):
                if f.resolve() != me and not _is_key_file(f, settings) and \
                        f.relative_to(log_dir).as_posix() != LOG_LOCK_FILE:
                    files += _add(tar, f, "logs/" + f.relative_to(log_dir).as_posix())
            if data_dir.is_dir():
                for f in _walk(data_dir, (log_dir,) if _inside(log_dir, data_dir) else ()):
                    if f.resolve() == me or _excluded_data(f, data_dir, settings):
                        continue
                    arcname = "data/" + f.relative_to(data_dir).as_posix()
                    if f.name.endswith(SQLITE_SUFFIX):
                        _add_sqlite(tar, f, arcname, Path(scratch))
                        files += 1
                    else:
                        files += _add(tar, f, arcname)
            raw.flush()
            os.fsync(raw.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return BackupResult(path, files, path.stat().st_size)


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} bytes"  # pragma: no cover


def backup_main(args, settings: Settings) -> int:
    """`tradebot backup [--out FILE]`: write the archive and say what is (not) in it."""
    result = backup(settings, getattr(args, "out", None), datetime.now(timezone.utc))
    print(f"wrote {result.path}: {result.files} files, {_size(result.bytes)} "
          f"(logs/ = {settings.log_dir}, data/ = {settings.data_dir}; mode 0600)")
    print("the audit key is NOT included: back it up separately (BOT_AUDIT_KEY, "
          f"BOT_AUDIT_KEY_FILE or {key_path(settings.data_dir)}); without it the trail "
          "cannot be verified")
    return 0
