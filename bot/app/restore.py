"""`tradebot restore FILE`: put a `tradebot backup` archive back, then verify the trail.

The archive's `logs/` goes to the configured log directory and `data/` to the data directory.
Both must be empty or absent (the data directory may already hold the audit key, which a backup
never holds, and the lock file): a restore never mixes two trails or overwrites a file. A bot
holding the data directory's lock stops it (exit 3). Every member is checked before anything is
written: only regular files and directories under `logs/` or `data/`, no absolute path, no
`..`, no link. Then the trail is verified with its anchor (restored with the data directory,
found by the trail id kept in the chains, so the new paths do not matter) and the exit code is
verify's.
"""
from __future__ import annotations

import os
import tarfile
from pathlib import Path, PurePosixPath

from bot.app.locking import DataDirLock
from bot.core.errors import ConfigError
from bot.core.layout import KEY_FILE, LOCK_FILE, lock_path
from bot.settings import Settings

_ROOTS = ("logs", "data")


def _members(path: Path) -> list[tuple[tarfile.TarInfo, str, PurePosixPath]]:
    """(member, root, path inside root) of every member, after checking each of them."""
    try:
        with tarfile.open(path, "r:gz") as tar:
            members = tar.getmembers()
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist: give the archive `tradebot backup` wrote") from None
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ConfigError(f"{path} is not a tradebot backup (a tar.gz): {exc}") from None
    out = []
    for m in members:
        p = PurePosixPath(m.name)
        if p.is_absolute() or ".." in p.parts or not p.parts or p.parts[0] not in _ROOTS:
            raise ConfigError(f"{path} holds {m.name!r}, outside logs/ and data/: not a tradebot "
                              "backup; nothing was restored")
        if not (m.isfile() or m.isdir()):
            raise ConfigError(f"{path} holds {m.name!r}, which is not a regular file or directory: "
                              "not a tradebot backup; nothing was restored")
        out.append((m, p.parts[0], PurePosixPath(*p.parts[1:])))
    if not any(root == "logs" for _m, root, _p in out):
        raise ConfigError(f"{path} has no logs/: it is not a tradebot backup; nothing was restored")
    return out


def _check_empty(directory: Path, allowed: tuple[str, ...], setting: str) -> None:
    if not directory.exists():
        return
    if not directory.is_dir():
        raise ConfigError(f"{directory} is not a directory: set {setting} to an empty or absent "
                          "directory to restore into")
    extra = sorted(p.name for p in directory.iterdir() if p.name not in allowed)
    if extra:
        raise ConfigError(f"{directory} is not empty ({', '.join(extra[:3])}"
                          f"{', ...' if len(extra) > 3 else ''}): a restore never mixes two trails; "
                          f"set {setting} to an empty or absent directory, or move it away first")


def _extract(path: Path, members, dirs: dict[str, Path]) -> int:
    """Write every member; returns the number of files written."""
    n = 0
    with tarfile.open(path, "r:gz") as tar:
        for m, root, rel in members:
            dest = dirs[root].joinpath(*rel.parts) if rel.parts else dirs[root]
            if m.isdir():
                dest.mkdir(parents=True, exist_ok=True, mode=0o700)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            src = tar.extractfile(m)
            assert src is not None, "members were checked to be regular files or directories"
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW,
                         0o600)
            with os.fdopen(fd, "wb") as out:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(dest, m.mode & 0o700 or 0o600)
            os.utime(dest, (m.mtime, m.mtime))
            n += 1
    return n


def restore(settings: Settings, path: Path) -> int:
    """Put the archive back; returns the number of files restored."""
    log_dir, data_dir = settings.log_dir, settings.data_dir
    members = _members(path)
    for m, root, rel in members:
        if root == "data" and rel.parts and rel.parts[0] in (KEY_FILE, LOCK_FILE) and len(rel.parts) == 1:
            raise ConfigError(f"{path} holds {m.name!r}, which a backup never holds: not a "
                              "tradebot backup; nothing was restored")
    lock = DataDirLock(lock_path(data_dir))
    if lock.path.exists():
        lock.acquire()  # LockHeld: a bot runs on this data directory (exit 3)
        lock.release()
    _check_empty(log_dir, (), "BOT_LOG_DIR")
    _check_empty(data_dir, (KEY_FILE, LOCK_FILE, log_dir.name if log_dir.parent == data_dir else ""),
                 "BOT_DATA_DIR")
    return _extract(path, members, {"logs": log_dir, "data": data_dir})


def restore_main(args, settings: Settings) -> int:
    """`tradebot restore FILE`: restore, say where, then verify (exit = verify's)."""
    from bot.app.verify import run_verify
    n = restore(settings, args.archive)
    print(f"restored {n} files from {args.archive} (logs/ -> {settings.log_dir}, data/ -> "
          f"{settings.data_dir}); verifying the trail:")
    return run_verify(settings, settings.log_dir, settings.data_dir,
                      no_anchor_hint="the backup holds none (made before anchors, or its data/ was "
                      "left out): check the chains alone with `tradebot audit verify --no-anchor`")
